//! Each subcommand, on a fleet connected to the database.

use std::io::Write;
use std::time::Duration;

use sea_orm::ConnectOptions;
use sea_orm_migration::MigratorTrait;
use tenancy_core::TenantId;

use super::Exit;
use super::args::{Cli, Command, SharedCommand, Target};
use super::output;
use crate::{
    DropConfirmation, DropMode, DropOutcome, Error, FleetConfig, FleetReport, MigrateAll,
    NewTenant, StatusFilter, TenantFleet, TenantReport,
};

/// Runs a parsed command line to its exit code.
pub(super) async fn run<M: MigratorTrait, S: MigratorTrait>(
    cli: Cli,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Exit {
    // Refused before connecting: a missing confirmation must never reach the
    // database, and it is a usage error whatever the database's state.
    if let Command::Drop {
        id,
        soft: false,
        yes: false,
    } = &cli.command
    {
        return output::fail(
            err,
            Exit::Usage,
            &format!(
                "refusing to drop tenant {id} and its schema without confirmation; pass --yes \
                 to drop it for good, or --soft to only mark it deleted"
            ),
        );
    }
    let Some(url) = cli.database_url else {
        return output::fail(
            err,
            Exit::Usage,
            "no database: pass --database-url or set DATABASE_URL",
        );
    };
    let timeout = cli.connect_timeout;
    let mut options = ConnectOptions::new(url);
    options.connect_timeout(Duration::from_secs(u64::from(timeout)));
    let conn = match tenancy_sea_orm::connect(options).await {
        Ok(conn) => conn,
        Err(e) => {
            let message = format!(
                "{e}; set --database-url (or DATABASE_URL) to a reachable server, or raise \
                 --connect-timeout (or TENANCY_CONNECT_TIMEOUT; now {timeout}s)"
            );
            return output::fail(err, Exit::Unavailable, &message);
        }
    };
    let mut config = FleetConfig::default();
    if let Some(concurrency) = cli.concurrency {
        config = config.with_concurrency(usize::from(concurrency));
    }
    let fleet = TenantFleet::<M>::with_config(conn, config);
    // A health check that could not run says nothing about the fleet's
    // health: its own exit code, so monitors tell it from "unhealthy".
    let is_health = matches!(cli.command, Command::Health { .. });
    let exit = match execute::<M, S>(&fleet, cli.command, out, err).await {
        Ok(exit) => exit,
        Err(error) if is_health => {
            output::error(err, &error);
            Exit::Unavailable
        }
        Err(error) => output::error(err, &error),
    };
    // Closing politely spares the server "connection reset" log lines.
    let _ = fleet.connection().clone().close().await;
    exit
}

async fn execute<M: MigratorTrait, S: MigratorTrait>(
    fleet: &TenantFleet<M>,
    command: Command,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Result<Exit, Error> {
    let done = |out: &mut dyn Write, line: String| {
        let _ = writeln!(out, "{line}");
        Exit::Success
    };
    Ok(match command {
        Command::Install => {
            fleet.install().await?;
            let table = fleet.config().registry().qualified_table();
            done(out, format!("registry {table} is installed and up to date"))
        }
        Command::Create { id, name, domain } => {
            let mut new = NewTenant::new().display_name(name.unwrap_or_default());
            if let Some(domain) = domain {
                new = new.domain(domain);
            }
            let record = fleet.create(&id, new).await?;
            done(
                out,
                format!("created tenant {} (schema {})", record.id, record.schema),
            )
        }
        Command::List { status, json } => {
            let filter = status.map_or(StatusFilter::All, StatusFilter::Only);
            let list = fleet.list(filter).await?;
            let exit = if json {
                output::json(out, err, &list.tenants)
            } else {
                output::table(out, &list.tenants);
                Exit::Success
            };
            // The rest is listed; each unreadable row is one error line.
            output::corrupt(err, &list.corrupt).unwrap_or(exit)
        }
        Command::Suspend { id } => {
            fleet.suspend(&id).await?;
            done(out, format!("suspended tenant {id}"))
        }
        Command::Resume { id } => {
            fleet.resume(&id).await?;
            done(out, format!("resumed tenant {id}"))
        }
        Command::Rename { id, name } => {
            fleet.rename(&id, &name).await?;
            done(out, format!("renamed tenant {id} to {name:?}"))
        }
        Command::Drop { id, soft, .. } => {
            let mode = if soft {
                DropMode::Soft
            } else {
                DropMode::Hard(DropConfirmation::new(id.as_str()))
            };
            let line = match fleet.drop_tenant(&id, mode).await? {
                DropOutcome::SoftDeleted(r) => {
                    format!("marked tenant {} deleted; schema {} kept", r.id, r.schema)
                }
                DropOutcome::Dropped(r) => {
                    format!("dropped tenant {} and schema {}", r.id, r.schema)
                }
                other => format!(
                    "unregistered tenant {}; its schema {} was already gone",
                    other.record().id,
                    other.record().schema
                ),
            };
            done(out, line)
        }
        Command::Adopt { id, schema } => {
            let (record, applied) = fleet.adopt(&id, schema, NewTenant::new()).await?;
            let (id, schema, n) = (record.id, record.schema, applied.len());
            done(
                out,
                format!("adopted schema {schema} as tenant {id}; applied {n} migration(s)"),
            )
        }
        Command::Migrate {
            target,
            stop_on_failure,
        } => {
            let options = MigrateAll::new().stop_on_first_failure(stop_on_failure);
            match target.tenant {
                Some(id) => tenant_report(out, &fleet.migrate_tenant(&id).await?),
                None => fleet_run(fleet, None, options, out, err).await?,
            }
        }
        Command::Rollback {
            target: Target { tenant: Some(id) },
            steps,
        } => tenant_report(out, &fleet.rollback_tenant(&id, steps).await?),
        Command::Rollback {
            target: Target { tenant: None },
            steps,
        } => fleet_run(fleet, Some(steps), MigrateAll::new(), out, err).await?,
        Command::Status { target, json } => status(fleet, target.tenant, json, out, err).await?,
        Command::Health { json } => {
            let report = fleet.health().await?;
            let exit = if json {
                output::json(out, err, &report)
            } else {
                // The report ends its own last line.
                done(out, report.to_string().trim_end().to_owned())
            };
            if report.is_healthy() {
                exit
            } else {
                Exit::Failure
            }
        }
        Command::Shared {
            command: SharedCommand::Migrate,
        } => {
            let applied = fleet.migrate_shared::<S>().await?;
            let list = if applied.is_empty() {
                "nothing to apply".to_owned()
            } else {
                applied.join(", ")
            };
            done(out, format!("shared schema: {list}"))
        }
    })
}

fn tenant_report(out: &mut impl Write, report: &TenantReport) -> Exit {
    let _ = writeln!(out, "{report}");
    Exit::Success
}

/// Migrates (`steps: None`) or rolls back every tenant with progress, then
/// prints the report; one error line per failed tenant, exit 1 if any.
async fn fleet_run<M: MigratorTrait>(
    fleet: &TenantFleet<M>,
    steps: Option<u32>,
    options: MigrateAll,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Result<Exit, Error> {
    let (options, bar) = output::with_progress(options);
    let result: Result<FleetReport, Error> = match steps {
        None => fleet.migrate_all(options).await,
        Some(steps) => fleet.rollback_all(steps, options).await,
    };
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = result?;
    let _ = writeln!(out, "{report}");
    let mut exit = Exit::Success;
    for failed in report.failed() {
        if let Some(error) = &failed.error {
            exit = output::error(err, error);
        }
    }
    Ok(output::corrupt(err, &report.corrupt).unwrap_or(exit))
}

async fn status<M: MigratorTrait>(
    fleet: &TenantFleet<M>,
    tenant: Option<TenantId>,
    json: bool,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Result<Exit, Error> {
    if let Some(id) = tenant {
        let status = fleet.tenant_status(&id).await?;
        if json {
            return Ok(output::json(out, err, &status));
        }
        let _ = writeln!(
            out,
            "{} ({}): {} applied, {} pending",
            status.tenant,
            status.schema,
            status.applied.len(),
            status.pending.len()
        );
        for pending in &status.pending {
            let _ = writeln!(out, "  pending {pending}");
        }
        return Ok(Exit::Success);
    }
    let status = fleet.fleet_status().await?;
    if json {
        let exit = output::json(out, err, &status);
        return Ok(output::corrupt(err, &status.corrupt).unwrap_or(exit));
    }
    let _ = writeln!(out, "{status}");
    for tenant in &status.tenants {
        let _ = writeln!(
            out,
            "{} ({}, {:?}): {} pending",
            tenant.tenant,
            tenant.schema,
            tenant.state,
            tenant.pending.len()
        );
    }
    Ok(output::corrupt(err, &status.corrupt).unwrap_or(Exit::Success))
}
