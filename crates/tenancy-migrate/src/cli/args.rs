//! The command line, as clap parses it.
//!
//! The command is assembled from parts because what it offers depends on the
//! binary: `--database-url` and `--connect-timeout` only when the CLI
//! connects by itself (not when given the application's fleet), and
//! `shared migrate` only when there is a shared migrator.

use clap::{ArgMatches, Args, FromArgMatches, Subcommand};
use tenancy_core::{SchemaName, TenantId, TenantStatus};

/// How to reach the database, when the CLI connects by itself.
#[derive(Debug, Args)]
pub(crate) struct Connect {
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
}

/// What the CLI offers, and how `--version` reads.
pub(crate) struct Shape<'a> {
    /// Whether `--database-url` and `--connect-timeout` exist.
    pub(crate) connects: bool,
    /// Whether `shared migrate` exists.
    pub(crate) shared: bool,
    /// `-V`.
    pub(crate) version: &'a str,
    /// `--version`.
    pub(crate) long_version: &'a str,
}

/// A parsed command line.
#[derive(Debug)]
pub(crate) struct Cli {
    /// `Some` exactly when the CLI connects by itself.
    pub(crate) connect: Option<Connect>,
    pub(crate) command: Command,
}

impl Cli {
    /// Parses `args` (the program name first) for a CLI of `shape`.
    pub(crate) fn parse<I, T>(shape: &Shape<'_>, args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        // `--version` prints the name, so it is the binary's, as in usage lines.
        let name = args
            .first()
            .and_then(|program| std::path::Path::new(program).file_stem())
            .map_or_else(|| "admin".to_owned(), |s| s.to_string_lossy().into_owned());
        let mut command = Command::augment_subcommands(clap::Command::new(name));
        if shape.shared {
            command = SharedTop::augment_subcommands(command);
        }
        if shape.connects {
            command = Connect::augment_args(command);
        }
        // Set last: augmenting takes the parts' doc comments for `about`.
        let command = command
            .about("Manage the tenants of one database and their migrations.")
            .version(shape.version.to_owned())
            .long_version(shape.long_version.to_owned())
            .subcommand_required(true)
            .arg_required_else_help(true);
        let matches = command.try_get_matches_from(args)?;
        let connect = if shape.connects {
            Some(Connect::from_arg_matches(&matches)?)
        } else {
            None
        };
        Ok(Self {
            connect,
            command: parse_command(&matches)?,
        })
    }
}

fn parse_command(matches: &ArgMatches) -> Result<Command, clap::Error> {
    if matches
        .subcommand_name()
        .is_some_and(SharedTop::has_subcommand)
    {
        let SharedTop::Shared { command } = SharedTop::from_arg_matches(matches)?;
        return Ok(Command::Shared(command));
    }
    Command::from_arg_matches(matches)
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create or upgrade the tenant registry (safe to run at every deploy).
    Install,
    /// Register a tenant, create its schema and run every migration.
    Create {
        /// The tenant id.
        id: TenantId,
        #[command(flatten)]
        details: Details,
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
        #[command(flatten)]
        details: Details,
    },
    /// Apply pending migrations to every tenant, or to one.
    Migrate {
        #[command(flatten)]
        run: Run,
        /// Start no further tenant once one has failed.
        #[arg(long)]
        stop_on_failure: bool,
    },
    /// Revert the latest migrations of every tenant, or of one (every
    /// migration reverted needs a `down()`).
    Rollback {
        #[command(flatten)]
        run: Run,
        /// How many migrations to revert per tenant.
        #[arg(long, default_value_t = 1)]
        steps: u32,
    },
    /// Show applied and pending migrations per tenant.
    Status {
        /// Only this tenant.
        #[arg(long, value_name = "ID")]
        tenant: Option<TenantId>,
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
    /// The pool of spare schemas, already migrated, that `create` renames
    /// when the fleet has the spare pool enabled.
    Spares {
        #[command(subcommand)]
        command: SparesCommand,
    },
    /// Write a tenant (schema, data, migration ledger, registry row) to a
    /// new file, from one consistent snapshot.
    Export {
        /// The tenant id.
        id: TenantId,
        /// The file to write; refused if it exists.
        #[arg(long, short = 'o', value_name = "FILE")]
        out: std::path::PathBuf,
    },
    /// Make a tenant from an export file, all or nothing; never overwrites.
    Import {
        /// The export file.
        file: std::path::PathBuf,
        /// Register it under this id (and its schema) instead of the exported one.
        #[arg(long = "as", value_name = "ID")]
        as_id: Option<TenantId>,
        /// Register it without the exported domain.
        #[arg(long)]
        no_domain: bool,
    },
    /// Copy a tenant to a new tenant id in this database (without its domain).
    Clone {
        /// The tenant to copy.
        source: TenantId,
        /// The new tenant's id.
        new: TenantId,
    },
    /// Citus clusters: each tenant's worker, distributing tenants, moving one.
    Citus {
        #[command(subcommand)]
        command: super::citus::CitusCommand,
    },
    /// The shared schema's own migrations (only with a shared migrator).
    #[command(skip)]
    Shared(SharedCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum SparesCommand {
    /// Make spare schemas until the pool has COUNT of them.
    Refill {
        /// How many spares the pool should have.
        count: usize,
    },
    /// Show the pool: ready spares, and any behind, ahead, missing or unusable.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Drop spare schemas, newest first, until KEEP are left.
    Drop {
        /// How many spares to keep.
        #[arg(long, default_value_t = 0)]
        keep: usize,
    },
}

/// A new tenant's registry details (`create`, `adopt`).
#[derive(Debug, Args)]
pub(crate) struct Details {
    /// Its display name.
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Its domain or subdomain.
    #[arg(long)]
    pub(crate) domain: Option<String>,
}

/// The options of `migrate` and `rollback`: one tenant, or the whole fleet
/// some at a time.
#[derive(Debug, Args)]
pub(crate) struct Run {
    /// Only this tenant.
    #[arg(long, value_name = "ID")]
    pub(crate) tenant: Option<TenantId>,
    /// How many tenants to work on at once (default: the fleet's
    /// configured concurrency).
    #[arg(
        long,
        conflicts_with = "tenant",
        value_parser = clap::value_parser!(u16).range(1..)
    )]
    pub(crate) concurrency: Option<u16>,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `shared …`, a part of its own so that it exists only with a shared
/// migrator.
#[derive(Debug, Subcommand)]
enum SharedTop {
    /// Manage the shared schema's own migrations.
    Shared {
        #[command(subcommand)]
        command: SharedCommand,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SharedCommand {
    /// Apply the shared migrator's pending migrations.
    Migrate,
}
