//! The admin CLI, embedded in your own migration binary.
//!
//! Migrations are compiled Rust, so the CLI cannot be a separate tool: like
//! sea-orm-migration's `run_cli`, it is a function your binary calls with its
//! tenant migrator `M` and its shared migrator `S`.
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
//!     tenancy_migrate::cli::run_cli::<TenantMigrator, SharedMigrator>().await
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
mod commands;
mod output;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use sea_orm_migration::MigratorTrait;

/// How a CLI run ended, as [`run_cli_with`] returns it; converts into the
/// process's [`ExitCode`].
///
/// ```
/// use tenancy_migrate::cli::Exit;
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
    /// assert_eq!(tenancy_migrate::cli::Exit::Failure.code(), 1);
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

/// Runs the admin CLI on the process's arguments, with `M` as the tenant
/// migrator and `S` as the shared one, printing to stdout and stderr.
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
///     tenancy_migrate::cli::run_cli::<TenantMigrator, SharedMigrator>().await
/// }
/// ```
pub async fn run_cli<M: MigratorTrait, S: MigratorTrait>() -> ExitCode {
    // Unlocked handles: a held `StdoutLock` would make this future `!Send`.
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    run_cli_with::<M, S, _, _>(std::env::args_os(), &mut out, &mut err)
        .await
        .into()
}

/// Runs the admin CLI on `args` (the program name first, as in
/// `std::env::args_os`), writing results to `out` and errors (one line each)
/// to `err`: the testable core of [`run_cli`].
///
/// `migrate` and `rollback` across the fleet also report progress on the
/// process's stderr while they run: a progress bar when it is a terminal,
/// one line per tenant otherwise.
///
/// ```
/// # use sea_orm_migration::{MigrationTrait, MigratorTrait};
/// # struct TenantMigrator;
/// # impl MigratorTrait for TenantMigrator {
/// #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
/// # }
/// use tenancy_migrate::cli::{run_cli_with, Exit};
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
    S: MigratorTrait,
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match args::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => return output::clap_error(&error, out, err),
    };
    commands::run::<M, S>(cli, out, err).await
}
