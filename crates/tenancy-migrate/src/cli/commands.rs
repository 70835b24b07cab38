//! Each subcommand, on the application's fleet or one connected to
//! `--database-url`.

use std::io::Write;
use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, DbBackend, Statement};
use sea_orm_migration::MigratorTrait;
use tenancy_core::TenantId;

use super::args::{Cli, Command, Connect, Details, Run, SharedCommand, SparesCommand};
use super::output::{self, Action, Situation};
use super::progress::{self, with_progress};
use super::{AdminCli, Exit, Shared, Source};
use crate::pg::has_sqlstate;
use crate::printable::{printable, printable_list};
use crate::{
    DropConfirmation, DropMode, DropOutcome, Error, ImportOptions, MigrateAll, NewTenant,
    SchemaState, StatusFilter, TenantFleet, TenantReport,
};
use tenancy_core::sqlstate::UNDEFINED_TABLE;

/// Runs a parsed command line to its exit code.
pub(super) async fn run<M: MigratorTrait>(
    admin: AdminCli<M>,
    cli: Cli,
    progress: progress::Mode,
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
    let connects = cli.connect.is_some();
    let fleet = match (admin.source, cli.connect) {
        (Source::Fleet(fleet), _) => fleet,
        (Source::Connect(config), Some(connect)) => match connect_to(connect).await {
            Ok(conn) => TenantFleet::with_config(conn, config),
            Err((exit, message)) => return output::fail(err, exit, &message),
        },
        // The parser offers the connection options exactly when connecting.
        (Source::Connect(_), None) => {
            return output::fail(err, Exit::Usage, "no database: pass --database-url");
        }
    };
    let action = match &cli.command {
        Command::Create { .. } => Action::Create,
        Command::Adopt { .. } => Action::Adopt,
        _ => Action::Other,
    };
    // A health check that could not run says nothing about the fleet's
    // health: its own exit code, so monitors tell it from "unhealthy".
    let is_health = matches!(cli.command, Command::Health { .. });
    let context = Context {
        fleet: &fleet,
        shared: admin.shared.as_ref(),
        connects,
        progress,
    };
    let exit = match context.execute(cli.command, out, err).await {
        Ok(exit) => exit,
        Err(error) => {
            let registry = context.missing_registry(&error).await;
            let situation = Situation {
                action,
                connects,
                missing_registry: registry.as_deref(),
            };
            let exit = output::error(err, &error, &situation);
            if is_health { Exit::Unavailable } else { exit }
        }
    };
    // A connection of our own is closed politely, which spares the server
    // "connection reset" log lines; the application's stays open.
    if connects {
        let _ = fleet.connection().clone().close().await;
    }
    exit
}

/// A file the command could not open: one line naming it, exit 1.
fn file_error(
    err: &mut impl Write,
    verb: &str,
    path: &std::path::Path,
    e: &std::io::Error,
) -> Exit {
    let hint = if e.kind() == std::io::ErrorKind::AlreadyExists {
        "; choose another path or remove it first"
    } else {
        ""
    };
    output::fail(
        err,
        Exit::Failure,
        &format!(
            "cannot {verb} {}: {e}{hint}",
            printable(&path.display().to_string())
        ),
    )
}

/// Connects to `--database-url`, or the exit code and line saying why not.
async fn connect_to(connect: Connect) -> Result<sea_orm::DatabaseConnection, (Exit, String)> {
    let Some(url) = connect.database_url else {
        return Err((
            Exit::Usage,
            "no database: pass --database-url or set DATABASE_URL".to_owned(),
        ));
    };
    let timeout = connect.connect_timeout;
    let mut options = ConnectOptions::new(url);
    options.connect_timeout(Duration::from_secs(u64::from(timeout)));
    tenancy_sea_orm::connect(options).await.map_err(|e| {
        (
            Exit::Unavailable,
            format!(
                "{e}; set --database-url (or DATABASE_URL) to a reachable server, or raise \
                 --connect-timeout (or TENANCY_CONNECT_TIMEOUT; now {timeout}s)"
            ),
        )
    })
}

/// What every command works with.
struct Context<'a, M> {
    fleet: &'a TenantFleet<M>,
    shared: Option<&'a Shared<M>>,
    connects: bool,
    progress: progress::Mode,
}

impl<M: MigratorTrait> Context<'_, M> {
    async fn execute(
        &self,
        command: Command,
        out: &mut impl Write,
        err: &mut impl Write,
    ) -> Result<Exit, Error> {
        let fleet = self.fleet;
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
            Command::Create { id, details } => {
                let record = fleet.create(&id, new_tenant(details)).await?;
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
                done(out, format!("renamed tenant {id} to {}", printable(&name)))
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
            Command::Adopt {
                id,
                schema,
                details,
            } => {
                let (record, applied) = fleet.adopt(&id, schema, new_tenant(details)).await?;
                let (id, schema, n) = (record.id, record.schema, applied.len());
                done(
                    out,
                    format!("adopted schema {schema} as tenant {id}; applied {n} migration(s)"),
                )
            }
            Command::Migrate {
                run,
                stop_on_failure,
            } => {
                let options = MigrateAll::new().stop_on_first_failure(stop_on_failure);
                self.run(None, run, options, out, err).await?
            }
            Command::Rollback { run, steps } => {
                self.run(Some(steps), run, MigrateAll::new(), out, err)
                    .await?
            }
            Command::Status { tenant, json } => self.status(tenant, json, out, err).await?,
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
            Command::Spares { command } => match command {
                SparesCommand::Refill { count } => {
                    let made = fleet.refill_spares(count).await?;
                    done(out, format!("made {made} spare schema(s) (target {count})"))
                }
                SparesCommand::Status { json } => {
                    let status = fleet.spare_status().await?;
                    let exit = if json {
                        output::json(out, err, &status)
                    } else {
                        done(out, status.to_string())
                    };
                    if status.is_healthy() {
                        exit
                    } else {
                        Exit::Failure
                    }
                }
                SparesCommand::Drop { keep } => {
                    let dropped = fleet.drop_spares(keep).await?;
                    done(out, format!("dropped {dropped} spare schema(s)"))
                }
            },
            Command::Export { id, out: path } => {
                let file = match tokio::fs::File::create_new(&path).await {
                    Ok(file) => file,
                    Err(e) => return Ok(file_error(err, "create", &path, &e)),
                };
                let mut writer = tokio::io::BufWriter::new(file);
                match fleet.export_tenant(&id, &mut writer).await {
                    Ok(summary) => done(
                        out,
                        format!(
                            "exported tenant {id} (schema {}, {} tables, {} bytes) to {}",
                            summary.schema,
                            summary.tables,
                            summary.bytes,
                            printable(&path.display().to_string())
                        ),
                    ),
                    Err(error) => {
                        // No half-written file that looks like a backup.
                        drop(writer);
                        let _ = tokio::fs::remove_file(&path).await;
                        return Err(error);
                    }
                }
            }
            Command::Import {
                file: path,
                as_id,
                no_domain,
            } => {
                let file = match tokio::fs::File::open(&path).await {
                    Ok(file) => file,
                    Err(e) => return Ok(file_error(err, "read", &path, &e)),
                };
                let mut options = ImportOptions::new();
                if let Some(id) = as_id {
                    options = options.as_tenant(id);
                }
                if no_domain {
                    options = options.domain(None);
                }
                let summary = fleet
                    .import_tenant(tokio::io::BufReader::new(file), options)
                    .await?;
                done(
                    out,
                    format!(
                        "imported tenant {} as {} (schema {}, {} tables, {} rows)",
                        summary.source,
                        summary.record.id,
                        summary.record.schema,
                        summary.tables,
                        summary.rows
                    ),
                )
            }
            Command::Clone { source, new } => {
                let report = fleet.clone_tenant(&source, &new).await?;
                done(
                    out,
                    format!(
                        "cloned tenant {source} to {new} (schema {}, {} rows)",
                        report.import.record.schema, report.import.rows
                    ),
                )
            }
            Command::Citus { command } => super::citus::execute(fleet, command, out, err).await?,
            Command::Shared(SharedCommand::Migrate) => {
                let Some(shared) = self.shared else {
                    // The parser offers `shared` only with a shared migrator.
                    return Ok(output::fail(
                        err,
                        Exit::Usage,
                        "this binary has no shared migrator",
                    ));
                };
                let applied = (shared.migrate)(fleet).await?;
                let list = if applied.is_empty() {
                    "nothing to apply".to_owned()
                } else {
                    applied.join(", ")
                };
                done(out, format!("shared schema: {list}"))
            }
        })
    }

    /// Migrates (`steps: None`) or rolls back one tenant, or every tenant
    /// with progress; prints the report, one error line per failed tenant,
    /// exit 1 if any.
    async fn run(
        &self,
        steps: Option<u32>,
        run: Run,
        mut options: MigrateAll,
        out: &mut impl Write,
        err: &mut impl Write,
    ) -> Result<Exit, Error> {
        let fleet = self.fleet;
        if let Some(id) = run.tenant {
            let report = match steps {
                None => fleet.migrate_tenant(&id).await?,
                Some(steps) => fleet.rollback_tenant(&id, steps).await?,
            };
            return Ok(tenant_report(out, err, &report, run.json));
        }
        if let Some(concurrency) = run.concurrency {
            options = options.concurrency(usize::from(concurrency));
        }
        let report = with_progress(self.progress, options, err, |options| async move {
            match steps {
                None => fleet.migrate_all(options).await,
                Some(steps) => fleet.rollback_all(steps, options).await,
            }
        })
        .await?;
        let mut exit = if run.json {
            output::json(out, err, &report)
        } else {
            let _ = writeln!(out, "{report}");
            Exit::Success
        };
        let situation = Situation {
            action: Action::Other,
            connects: self.connects,
            missing_registry: None,
        };
        for failed in report.failed() {
            if let Some(error) = &failed.error {
                exit = output::error(err, error, &situation);
            }
        }
        for error in report.spares.iter().filter_map(|s| s.error.as_ref()) {
            exit = output::error(err, error, &situation);
        }
        Ok(output::corrupt(err, &report.corrupt).unwrap_or(exit))
    }

    async fn status(
        &self,
        tenant: Option<TenantId>,
        json: bool,
        out: &mut impl Write,
        err: &mut impl Write,
    ) -> Result<Exit, Error> {
        let fleet = self.fleet;
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
                let _ = writeln!(out, "  pending {}", printable(pending));
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
            let pending = || {
                format!(
                    "{} pending: {}",
                    tenant.pending.len(),
                    printable_list(&tenant.pending)
                )
            };
            let state = match tenant.state {
                SchemaState::MissingSchema => tenant.state.to_string(),
                _ if tenant.pending.is_empty() => "up to date".to_owned(),
                SchemaState::NoMigrationsTable => format!("{}; {}", tenant.state, pending()),
                _ => pending(),
            };
            let _ = write!(
                out,
                "{} ({}, {}): {state}",
                tenant.tenant, tenant.schema, tenant.status
            );
            if !tenant.unknown.is_empty() {
                let _ = write!(
                    out,
                    "; applied but unknown to this build: {}",
                    printable_list(&tenant.unknown)
                );
            }
            let _ = writeln!(out);
        }
        Ok(output::corrupt(err, &status.corrupt).unwrap_or(Exit::Success))
    }

    /// The registry's table when `error` is a missing table and the
    /// registry is missing: the error then means "run `install` first".
    async fn missing_registry(&self, error: &Error) -> Option<String> {
        let (Error::Database { source, .. } | Error::Tenant { source, .. }) = error else {
            return None;
        };
        if !has_sqlstate(source, UNDEFINED_TABLE) {
            return None;
        }
        let table = self.fleet.config().registry().qualified_table();
        let row = self
            .fleet
            .connection()
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT to_regclass($1) IS NULL AS missing",
                [table.clone().into()],
            ))
            .await
            .ok()??;
        row.try_get::<bool>("", "missing")
            .ok()
            .filter(|missing| *missing)
            .map(|_| table)
    }
}

fn new_tenant(details: Details) -> NewTenant {
    let mut new = NewTenant::new().display_name(details.name.unwrap_or_default());
    if let Some(domain) = details.domain {
        new = new.domain(domain);
    }
    new
}

fn tenant_report(
    out: &mut impl Write,
    err: &mut impl Write,
    report: &TenantReport,
    json: bool,
) -> Exit {
    if json {
        return output::json(out, err, report);
    }
    let _ = writeln!(out, "{report}");
    Exit::Success
}
