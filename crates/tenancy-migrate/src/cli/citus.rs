//! `citus …`: where each tenant lives on a Citus cluster, distributing the
//! tenants of a single-node fleet, and moving one to another worker.

use std::io::Write;

use clap::Subcommand;
use sea_orm_migration::MigratorTrait;
use tenancy_core::TenantId;

use super::Exit;
use super::output;
use crate::{CitusNode, Error, StatusFilter, TenantFleet};

#[derive(Debug, Subcommand)]
pub(crate) enum CitusCommand {
    /// Show each tenant's schema and the worker holding it.
    Nodes {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Distribute a tenant's schema to a worker (or every tenant's, with --all).
    Distribute {
        /// The tenant id.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<TenantId>,
        /// Every registered tenant not distributed yet; failures are reported
        /// and the others go on.
        #[arg(long)]
        all: bool,
    },
    /// Move a tenant to another worker, online (Citus's schema move).
    Move {
        /// The tenant id.
        id: TenantId,
        /// The worker, as HOST:PORT.
        #[arg(long, value_parser = parse_node)]
        to: CitusNode,
    },
}

fn parse_node(raw: &str) -> Result<CitusNode, String> {
    let (host, port) = raw
        .rsplit_once(':')
        .ok_or_else(|| format!("{raw:?} is not HOST:PORT"))?;
    let port = port
        .parse()
        .map_err(|_| format!("{port:?} is not a port number"))?;
    if host.is_empty() {
        return Err(format!("{raw:?} has no host"));
    }
    Ok(CitusNode::new(host, port))
}

pub(super) async fn execute<M: MigratorTrait>(
    fleet: &TenantFleet<M>,
    command: CitusCommand,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Result<Exit, Error> {
    Ok(match command {
        CitusCommand::Nodes { json } => {
            let nodes = fleet.tenant_nodes().await?;
            if json {
                return Ok(output::json(out, err, &nodes));
            }
            let rows: Vec<[String; 3]> = nodes
                .iter()
                .map(|t| {
                    let node = match (&t.node, t.distributed) {
                        (Some(node), _) => node.to_string(),
                        (None, true) => "(distributed, no tables yet)".to_owned(),
                        (None, false) => "(coordinator: not distributed)".to_owned(),
                    };
                    [t.tenant.to_string(), t.schema.to_string(), node]
                })
                .collect();
            let header = ["ID", "SCHEMA", "NODE"].map(str::to_owned);
            let mut widths = [0; 3];
            for row in std::iter::once(&header).chain(&rows) {
                for (width, cell) in widths.iter_mut().zip(row) {
                    *width = (*width).max(cell.chars().count());
                }
            }
            for row in std::iter::once(&header).chain(&rows) {
                let [id, schema, node] = row;
                let (w0, w1) = (widths[0], widths[1]);
                let _ = writeln!(out, "{id:<w0$}  {schema:<w1$}  {node}");
            }
            Exit::Success
        }
        CitusCommand::Distribute { id: Some(id), .. } => {
            let line = if fleet.distribute_tenant(&id).await? {
                format!("distributed tenant {id}")
            } else {
                format!("tenant {id} was distributed already")
            };
            let _ = writeln!(out, "{line}");
            Exit::Success
        }
        CitusCommand::Distribute { id: None, .. } => {
            let mut exit = Exit::Success;
            for tenant in fleet.list(StatusFilter::All).await?.tenants {
                if tenant.status == tenancy_core::TenantStatus::Deleted {
                    continue;
                }
                match fleet.distribute_tenant(&tenant.id).await {
                    Ok(true) => {
                        let _ = writeln!(out, "distributed tenant {}", tenant.id);
                    }
                    Ok(false) => {}
                    Err(e) => {
                        exit = output::fail(err, Exit::Failure, &e.to_string());
                    }
                }
            }
            exit
        }
        CitusCommand::Move { id, to } => {
            fleet.move_to_node(&id, &to).await?;
            let _ = writeln!(out, "moved tenant {id} to {to}");
            Exit::Success
        }
    })
}
