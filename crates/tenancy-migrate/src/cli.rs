//! The admin CLI, embedded in your own migration binary.
//!
//! Migrations are compiled Rust, so the CLI cannot be a separate tool: like
//! sea-orm-migration's `run_cli`, it is a function your binary calls with its
//! tenant migrator `M` (and, if it has one, its shared migrator `S`).
//!
//! With the default configuration (registry `public.tenants`, schemas
//! `tenant_<id>`, shared schema `public`), connecting to `--database-url`:
//!
//! ```no_run
//! # use sea_orm_migration::{MigrationTrait, MigratorTrait};
//! # struct TenantMigrator;
//! # impl MigratorTrait for TenantMigrator {
//! #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
//! # }
//! # struct SharedMigrator;
//! # impl MigratorTrait for SharedMigrator {
//! #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
//! # }
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     tenancy::migrate::cli::run_cli::<TenantMigrator, SharedMigrator>().await
//! }
//! ```
//!
//! An application with its own configuration (schema prefix, registry
//! location, shared schemas) hands the CLI that configuration, or its
//! whole [`TenantFleet`], with [`AdminCli`], so the CLI creates and migrates
//! exactly the schemas the application uses (as sea-orm-migration's
//! `run_cli_with_connection` takes the application's connection):
//!
//! ```no_run
//! # use sea_orm_migration::{MigrationTrait, MigratorTrait};
//! # struct TenantMigrator;
//! # impl MigratorTrait for TenantMigrator {
//! #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
//! # }
//! use tenancy::SchemaNaming;
//! use tenancy::migrate::cli::AdminCli;
//! use tenancy::migrate::FleetConfig;
//!
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     let Ok(naming) = SchemaNaming::with_prefix("org_") else {
//!         return std::process::ExitCode::FAILURE;
//!     };
//!     let config = FleetConfig::default().with_naming(naming);
//!     AdminCli::<TenantMigrator>::new(config)
//!         .version(env!("CARGO_PKG_VERSION"))
//!         .run()
//!         .await
//! }
//! ```
//!
//! Then `my-migrator --database-url postgres://… create acme --name Acme`,
//! `my-migrator migrate`, `my-migrator health --json`, and so on (`--help`
//! lists them all; `DATABASE_URL` works in place of `--database-url`).
//!
//! # Exit codes
//!
//! - `0`: done (and, for `health`, the fleet is healthy).
//! - `1`: an operation failed, a tenant failed to migrate, a registry row is
//!   unreadable, or the fleet is not healthy. The error is one line on
//!   stderr, naming the tenant.
//! - `2`: bad usage, or a hard `drop` without `--yes`.
//! - `3`: the database could not be reached (within `--connect-timeout`,
//!   5 s by default, or `TENANCY_CONNECT_TIMEOUT`), or `health` could not
//!   run its check: the fleet's health is unknown, which a monitor should
//!   treat differently from "unhealthy". One line on stderr names the
//!   server's `host:port`, the cause and what to set.
//!
//! Names read from the database (schemas, tables, display names, the ids
//! of unreadable registry rows) are printed quoted and escaped when they
//! hold anything but plain printable text, so no name can forge a line of
//! output.

mod args;
mod citus;
mod commands;
mod output;
mod progress;

use std::ffi::OsString;
use std::fmt;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use futures_util::future::BoxFuture;
use sea_orm_migration::{MigrationTrait, MigratorTrait};

use crate::{Error, FleetConfig, TenantFleet};

/// How a CLI run ended, as [`run_cli_with`] returns it; converts into the
/// process's [`ExitCode`].
///
/// ```
/// use tenancy::migrate::cli::Exit;
/// assert_eq!(Exit::Usage.code(), 2);
/// assert_eq!(Exit::Unavailable.code(), 3);
/// let _code: std::process::ExitCode = Exit::Success.into();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done; exit code 0.
    Success,
    /// An operation failed, or the fleet is not healthy; exit code 1.
    Failure,
    /// Bad usage or a missing confirmation; exit code 2.
    Usage,
    /// The database could not be reached, or `health` could not check the
    /// fleet; exit code 3.
    Unavailable,
}

impl Exit {
    /// The process exit code.
    ///
    /// ```
    /// assert_eq!(tenancy::migrate::cli::Exit::Failure.code(), 1);
    /// ```
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Failure => 1,
            Self::Usage => 2,
            Self::Unavailable => 3,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        Self::from(exit.code())
    }
}

/// The admin CLI for an application's fleet: its configuration, or its
/// [`TenantFleet`] itself, its tenant migrator `M`, and optionally a shared
/// migrator.
///
/// - [`new`](Self::new) connects to `--database-url` (or `DATABASE_URL`)
///   and manages the fleet as `config` describes it;
/// - [`with_fleet`](Self::with_fleet) works on the application's own fleet
///   (its connection and configuration): the CLI then has no
///   `--database-url` and leaves the connection open when done.
///
/// `shared migrate` exists only with a [`shared_migrator`](Self::shared_migrator).
///
/// ```
/// use tenancy::SchemaNaming;
/// use tenancy::migrate::cli::{AdminCli, Exit};
/// use tenancy::migrate::{FleetConfig, TenantFleet};
/// # use sea_orm_migration::{MigrationTrait, MigratorTrait};
/// # struct TenantMigrator;
/// # impl MigratorTrait for TenantMigrator {
/// #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
/// # }
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let test_db = tenancy_testing::TestDatabase::create().await?;
/// # let conn = test_db.connect().await?;
/// let config = FleetConfig::default().with_naming(SchemaNaming::with_prefix("org_")?);
/// let fleet = TenantFleet::<TenantMigrator>::with_config(conn.clone(), config);
///
/// let (mut out, mut err) = (Vec::new(), Vec::new());
/// for args in [&["admin", "install"][..], &["admin", "create", "acme"]] {
///     let exit = AdminCli::with_fleet(fleet.clone()).run_with(args, &mut out, &mut err).await;
///     assert_eq!(exit, Exit::Success);
/// }
/// assert!(String::from_utf8(out)?.contains("schema org_acme"));
/// # conn.close().await?;
/// # test_db.close().await?;
/// # Ok(()) }
/// ```
#[must_use]
pub struct AdminCli<M> {
    source: Source<M>,
    shared: Option<Shared<M>>,
    version: Option<String>,
}

/// Where the CLI's fleet comes from.
enum Source<M> {
    /// Connect to `--database-url`; manage the fleet with this configuration.
    Connect(FleetConfig),
    /// The application's fleet.
    Fleet(TenantFleet<M>),
}

/// The shared migrator `S`, its type erased so that having none needs no
/// placeholder type.
struct Shared<M> {
    migrate: MigrateShared<M>,
    migrations: fn() -> Vec<Box<dyn MigrationTrait>>,
}

/// [`TenantFleet::migrate_shared`] for one shared migrator.
type MigrateShared<M> = for<'a> fn(&'a TenantFleet<M>) -> BoxFuture<'a, Result<Vec<String>, Error>>;

fn migrate_shared<M: MigratorTrait, S: MigratorTrait + 'static>(
    fleet: &TenantFleet<M>,
) -> BoxFuture<'_, Result<Vec<String>, Error>> {
    Box::pin(fleet.migrate_shared::<S>())
}

impl<M: MigratorTrait> AdminCli<M> {
    /// A CLI that connects to `--database-url` (or `DATABASE_URL`) and
    /// manages the fleet as `config` describes it: its registry location,
    /// schema naming, shared schemas and concurrency.
    ///
    /// ```no_run
    /// # use sea_orm_migration::{MigrationTrait, MigratorTrait};
    /// # struct TenantMigrator;
    /// # impl MigratorTrait for TenantMigrator {
    /// #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
    /// # }
    /// # async fn demo() -> std::process::ExitCode {
    /// use tenancy::migrate::cli::AdminCli;
    /// use tenancy::migrate::FleetConfig;
    ///
    /// AdminCli::<TenantMigrator>::new(FleetConfig::default().with_concurrency(8)).run().await
    /// # }
    /// ```
    pub fn new(config: FleetConfig) -> Self {
        Self {
            source: Source::Connect(config),
            shared: None,
            version: None,
        }
    }

    /// A CLI on the application's own `fleet`: its connection and its
    /// configuration. There is no `--database-url` then, and the connection
    /// stays open when the CLI is done.
    ///
    /// ```no_run
    /// # use sea_orm_migration::{MigrationTrait, MigratorTrait};
    /// # struct TenantMigrator;
    /// # impl MigratorTrait for TenantMigrator {
    /// #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
    /// # }
    /// # async fn demo(conn: sea_orm::DatabaseConnection, config: tenancy::migrate::FleetConfig) -> std::process::ExitCode {
    /// use tenancy::migrate::cli::AdminCli;
    /// use tenancy::migrate::TenantFleet;
    ///
    /// let fleet = TenantFleet::<TenantMigrator>::with_config(conn, config);
    /// AdminCli::with_fleet(fleet).run().await
    /// # }
    /// ```
    pub fn with_fleet(fleet: TenantFleet<M>) -> Self {
        Self {
            source: Source::Fleet(fleet),
            shared: None,
            version: None,
        }
    }

    /// Adds `shared migrate`, which applies `S`'s migrations to the shared
    /// schema ([`TenantFleet::migrate_shared`]).
    ///
    /// ```
    /// # use sea_orm_migration::{MigrationTrait, MigratorTrait};
    /// # struct TenantMigrator;
    /// # impl MigratorTrait for TenantMigrator {
    /// #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
    /// # }
    /// # struct SharedMigrator;
    /// # impl MigratorTrait for SharedMigrator {
    /// #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
    /// # }
    /// use tenancy::migrate::cli::{AdminCli, Exit};
    /// use tenancy::migrate::FleetConfig;
    ///
    /// # #[tokio::main] async fn main() {
    /// let (mut out, mut err) = (Vec::new(), Vec::new());
    /// let exit = AdminCli::<TenantMigrator>::new(FleetConfig::default())
    ///     .shared_migrator::<SharedMigrator>()
    ///     .run_with(["admin", "shared", "--help"], &mut out, &mut err)
    ///     .await;
    /// assert_eq!(exit, Exit::Success);
    /// # }
    /// ```
    pub fn shared_migrator<S: MigratorTrait + 'static>(mut self) -> Self {
        self.shared = Some(Shared {
            migrate: migrate_shared::<M, S>,
            migrations: S::migrations,
        });
        self
    }

    /// The version `-V` prints, usually your binary's
    /// (`env!("CARGO_PKG_VERSION")`); `--version` adds tenancy-migrate's
    /// version and the latest migration of each migrator.
    ///
    /// ```
    /// # use sea_orm_migration::{MigrationTrait, MigratorTrait};
    /// # struct TenantMigrator;
    /// # impl MigratorTrait for TenantMigrator {
    /// #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
    /// # }
    /// use tenancy::migrate::cli::{AdminCli, Exit};
    /// use tenancy::migrate::FleetConfig;
    ///
    /// # #[tokio::main] async fn main() {
    /// let (mut out, mut err) = (Vec::new(), Vec::new());
    /// let exit = AdminCli::<TenantMigrator>::new(FleetConfig::default())
    ///     .version("1.4.2")
    ///     .run_with(["admin", "-V"], &mut out, &mut err)
    ///     .await;
    /// assert_eq!(exit, Exit::Success);
    /// assert!(String::from_utf8_lossy(&out).contains("1.4.2"));
    /// # }
    /// ```
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Runs the CLI on the process's arguments, printing to stdout and
    /// stderr; fleet runs show a progress bar when stderr is a terminal, one
    /// line per tenant otherwise.
    ///
    /// ```no_run
    /// # use sea_orm_migration::{MigrationTrait, MigratorTrait};
    /// # struct TenantMigrator;
    /// # impl MigratorTrait for TenantMigrator {
    /// #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
    /// # }
    /// #[tokio::main]
    /// async fn main() -> std::process::ExitCode {
    ///     let config = tenancy::migrate::FleetConfig::default();
    ///     tenancy::migrate::cli::AdminCli::<TenantMigrator>::new(config).run().await
    /// }
    /// ```
    pub async fn run(self) -> ExitCode {
        // Unlocked handles: a held `StdoutLock` would make this future `!Send`.
        let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
        let progress = if err.is_terminal() {
            progress::Mode::Bar
        } else {
            progress::Mode::Lines
        };
        self.execute(std::env::args_os(), &mut out, &mut err, progress)
            .await
            .into()
    }

    /// Runs the CLI on `args` (the program name first, as in
    /// `std::env::args_os`), writing results to `out` and errors (one line
    /// each) and the progress of fleet runs (one line per tenant) to `err`.
    ///
    /// ```
    /// # use sea_orm_migration::{MigrationTrait, MigratorTrait};
    /// # struct TenantMigrator;
    /// # impl MigratorTrait for TenantMigrator {
    /// #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
    /// # }
    /// use tenancy::migrate::cli::{AdminCli, Exit};
    /// use tenancy::migrate::FleetConfig;
    ///
    /// # #[tokio::main] async fn main() {
    /// let (mut out, mut err) = (Vec::new(), Vec::new());
    /// let exit = AdminCli::<TenantMigrator>::new(FleetConfig::default())
    ///     .run_with(["admin", "--help"], &mut out, &mut err)
    ///     .await;
    /// assert_eq!(exit, Exit::Success);
    /// let help = String::from_utf8_lossy(&out);
    /// assert!(help.contains("migrate") && !help.contains("shared"));
    /// # }
    /// ```
    pub async fn run_with<I, T>(self, args: I, out: &mut impl Write, err: &mut impl Write) -> Exit
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        self.execute(args, out, err, progress::Mode::Lines).await
    }

    async fn execute<I, T>(
        self,
        args: I,
        out: &mut impl Write,
        err: &mut impl Write,
        progress: progress::Mode,
    ) -> Exit
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let ours = format!("tenancy-migrate {}", env!("CARGO_PKG_VERSION"));
        let version = self.version.clone().unwrap_or_else(|| ours.clone());
        let mut long_version = self.migrations();
        long_version.insert_str(0, &format!("{ours}\n"));
        if let Some(version) = &self.version {
            long_version.insert_str(0, &format!("{version}\n"));
        }
        let shape = args::Shape {
            connects: matches!(self.source, Source::Connect(_)),
            shared: self.shared.is_some(),
            version: &version,
            long_version: &long_version,
        };
        let cli = match args::Cli::parse(&shape, args) {
            Ok(cli) => cli,
            Err(error) => return output::clap_error(&error, out, err),
        };
        commands::run(self, cli, progress, out, err).await
    }

    /// What `--version` says of the migrators.
    fn migrations(&self) -> String {
        let mut text = format!("tenant migrations: {}", latest(&M::migrations()));
        if let Some(shared) = &self.shared {
            text.push_str(&format!(
                "\nshared migrations: {}",
                latest(&(shared.migrations)())
            ));
        }
        text
    }
}

/// "3, the latest m0003_…", or "none".
fn latest(migrations: &[Box<dyn MigrationTrait>]) -> String {
    match migrations.last() {
        Some(last) => format!("{}, the latest {}", migrations.len(), last.name()),
        None => "none".to_owned(),
    }
}

impl<M> fmt::Debug for AdminCli<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.source {
            Source::Connect(config) => format!("connect with {config:?}"),
            Source::Fleet(fleet) => format!("{fleet:?}"),
        };
        f.debug_struct("AdminCli")
            .field("source", &source)
            .field("shared_migrator", &self.shared.is_some())
            .field("version", &self.version)
            .finish()
    }
}

/// Runs the admin CLI on the process's arguments, with `M` as the tenant
/// migrator and `S` as the shared one, the default [`FleetConfig`], and the
/// database at `--database-url` (or `DATABASE_URL`), printing to stdout and
/// stderr. [`AdminCli`] takes your application's configuration or fleet
/// instead, and makes the shared migrator optional.
///
/// Call it from your migration binary's `main`; see the [module
/// documentation](self) for the commands and exit codes.
///
/// ```no_run
/// # use sea_orm_migration::{MigrationTrait, MigratorTrait};
/// # struct TenantMigrator;
/// # impl MigratorTrait for TenantMigrator {
/// #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
/// # }
/// # struct SharedMigrator;
/// # impl MigratorTrait for SharedMigrator {
/// #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
/// # }
/// #[tokio::main]
/// async fn main() -> std::process::ExitCode {
///     tenancy::migrate::cli::run_cli::<TenantMigrator, SharedMigrator>().await
/// }
/// ```
pub async fn run_cli<M: MigratorTrait, S: MigratorTrait + 'static>() -> ExitCode {
    AdminCli::<M>::new(FleetConfig::default())
        .shared_migrator::<S>()
        .run()
        .await
}

/// [`run_cli`] on `args` (the program name first, as in
/// `std::env::args_os`), writing results to `out`, and errors (one line
/// each) and the progress of fleet runs to `err`.
///
/// ```
/// # use sea_orm_migration::{MigrationTrait, MigratorTrait};
/// # struct TenantMigrator;
/// # impl MigratorTrait for TenantMigrator {
/// #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
/// # }
/// use tenancy::migrate::cli::{run_cli_with, Exit};
///
/// # #[tokio::main] async fn main() {
/// let (mut out, mut err) = (Vec::new(), Vec::new());
/// let exit = run_cli_with::<TenantMigrator, TenantMigrator, _, _>(["admin", "--help"], &mut out, &mut err).await;
/// assert_eq!(exit, Exit::Success);
/// assert!(String::from_utf8_lossy(&out).contains("migrate"));
/// # }
/// ```
pub async fn run_cli_with<M, S, I, T>(args: I, out: &mut impl Write, err: &mut impl Write) -> Exit
where
    M: MigratorTrait,
    S: MigratorTrait + 'static,
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    AdminCli::<M>::new(FleetConfig::default())
        .shared_migrator::<S>()
        .run_with(args, out, err)
        .await
}
