//! The command line, as clap parses it.

use clap::{Args, Parser, Subcommand};
use tenancy_core::{SchemaName, TenantId, TenantStatus};

/// Manage the tenants of one database and their migrations.
#[derive(Debug, Parser)]
#[command(long_about = None)]
pub(crate) struct Cli {
    /// The PostgreSQL database to manage.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub(crate) database_url: Option<String>,

    /// Seconds to wait for the database to answer before giving up.
    #[arg(
        long,
        env = "TENANCY_CONNECT_TIMEOUT",
        global = true,
        value_name = "SECONDS",
        default_value_t = 5,
        value_parser = clap::value_parser!(u16).range(1..=3600)
    )]
    pub(crate) connect_timeout: u16,

    /// How many tenants migrate or roll back at once.
    #[arg(long, global = true, value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) concurrency: Option<u16>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create or upgrade the tenant registry (safe to run at every deploy).
    Install,
    /// Register a tenant, create its schema and run every migration.
    Create {
        /// The tenant id.
        id: TenantId,
        /// Its display name.
        #[arg(long)]
        name: Option<String>,
        /// Its domain or subdomain.
        #[arg(long)]
        domain: Option<String>,
    },
    /// List the registered tenants.
    List {
        /// Only tenants in this status (provisioning, active, suspended, deleted).
        #[arg(long)]
        status: Option<TenantStatus>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Refuse access to a tenant, keeping its data.
    Suspend {
        /// The tenant id.
        id: TenantId,
    },
    /// Give a suspended (or provisioning) tenant access again.
    Resume {
        /// The tenant id.
        id: TenantId,
    },
    /// Change a tenant's display name.
    Rename {
        /// The tenant id.
        id: TenantId,
        /// The new display name.
        name: String,
    },
    /// Drop a tenant: its schema and data (needs --yes), or only mark it deleted (--soft).
    Drop {
        /// The tenant id.
        id: TenantId,
        /// Mark the tenant deleted and keep its schema.
        #[arg(long)]
        soft: bool,
        /// Confirm dropping the tenant's schema and every row in it.
        #[arg(long)]
        yes: bool,
    },
    /// Register an existing schema as a tenant and migrate it.
    Adopt {
        /// The tenant id.
        id: TenantId,
        /// The existing schema.
        schema: SchemaName,
    },
    /// Apply pending migrations to every tenant, or to one.
    Migrate {
        #[command(flatten)]
        target: Target,
        /// Start no further tenant once one has failed.
        #[arg(long)]
        stop_on_failure: bool,
    },
    /// Revert the latest migrations of every tenant, or of one.
    Rollback {
        #[command(flatten)]
        target: Target,
        /// How many migrations to revert per tenant.
        #[arg(long, default_value_t = 1)]
        steps: u32,
    },
    /// Show applied and pending migrations per tenant.
    Status {
        #[command(flatten)]
        target: Target,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check for missing or orphan schemas, pending migrations and drift.
    Health {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Manage the shared schema's own migrations.
    Shared {
        #[command(subcommand)]
        command: SharedCommand,
    },
}

/// One tenant (`--tenant ID`), or every tenant when absent.
#[derive(Debug, Args)]
pub(crate) struct Target {
    /// Only this tenant.
    #[arg(long, value_name = "ID")]
    pub(crate) tenant: Option<TenantId>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SharedCommand {
    /// Apply the shared migrator's pending migrations.
    Migrate,
}
