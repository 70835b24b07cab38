//! Progress events of fleet runs, for logs, metrics and progress bars.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tenancy_core::{SchemaName, TenantId};

use crate::Error;

/// How far a fleet run has got when an event fires.
///
/// `completed` counts the tenants that are done (succeeded, failed or
/// skipped), including the one a [`Finished`](MigrationEvent::Finished),
/// [`Failed`](MigrationEvent::Failed) or [`Skipped`](MigrationEvent::Skipped)
/// event is about, so the last event of a run has `completed == total`.
///
/// ```
/// let progress = tenancy::migrate::Progress::new(3, 4);
/// assert_eq!(progress.to_string(), "3/4");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Progress {
    /// Tenants done so far.
    pub completed: usize,
    /// Tenants in the run.
    pub total: usize,
}

impl Progress {
    /// `completed` of `total` tenants done (for event handlers' tests).
    ///
    /// ```
    /// assert_eq!(tenancy::migrate::Progress::new(0, 2).total, 2);
    /// ```
    #[must_use]
    pub fn new(completed: usize, total: usize) -> Self {
        Self { completed, total }
    }
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.completed, self.total)
    }
}

/// What happened to one tenant during [`TenantFleet::migrate_all`] or
/// [`TenantFleet::rollback_all`]. Every tenant gets either `Started` and then
/// `Finished` or `Failed`, or only `Skipped`.
///
/// Events borrow from the run; handlers that keep them copy what they need.
/// Handlers are called from the tasks migrating tenants, so several may run
/// at once, and they should return quickly.
///
/// [`TenantFleet::migrate_all`]: crate::TenantFleet::migrate_all
/// [`TenantFleet::rollback_all`]: crate::TenantFleet::rollback_all
///
/// ```
/// use tenancy::migrate::{MigrateAll, MigrationEvent};
///
/// let options = MigrateAll::new().on_event(|event| match event {
///     MigrationEvent::Finished { tenant, applied, progress, .. } => {
///         println!("[{progress}] {tenant}: {} applied", applied.len());
///     }
///     MigrationEvent::Failed { tenant, error, .. } => eprintln!("{tenant}: {error}"),
///     _ => {}
/// });
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum MigrationEvent<'a> {
    /// The tenant's transaction is about to open.
    Started {
        /// The tenant.
        tenant: &'a TenantId,
        /// Its schema.
        schema: &'a SchemaName,
        /// Progress before this tenant.
        progress: Progress,
    },
    /// The tenant's transaction committed.
    Finished {
        /// The tenant.
        tenant: &'a TenantId,
        /// Its schema.
        schema: &'a SchemaName,
        /// The migrations applied (for a rollback: reverted, newest first);
        /// empty when the tenant was already up to date.
        applied: &'a [String],
        /// Time spent on this tenant, waiting for its lock included.
        duration: Duration,
        /// Progress including this tenant.
        progress: Progress,
    },
    /// The tenant's transaction was rolled back.
    Failed {
        /// The tenant.
        tenant: &'a TenantId,
        /// Its schema.
        schema: &'a SchemaName,
        /// What went wrong.
        error: &'a Error,
        /// Time spent on this tenant.
        duration: Duration,
        /// Progress including this tenant.
        progress: Progress,
    },
    /// The tenant was not started because an earlier tenant failed and the
    /// run stops on the first failure.
    Skipped {
        /// The tenant.
        tenant: &'a TenantId,
        /// Its schema.
        schema: &'a SchemaName,
        /// Progress including this tenant.
        progress: Progress,
    },
}

impl MigrationEvent<'_> {
    /// The tenant the event is about.
    ///
    /// ```
    /// let options = tenancy::migrate::MigrateAll::new().on_event(|event| println!("{}", event.tenant()));
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn tenant(&self) -> &TenantId {
        match self {
            Self::Started { tenant, .. }
            | Self::Finished { tenant, .. }
            | Self::Failed { tenant, .. }
            | Self::Skipped { tenant, .. } => tenant,
        }
    }

    /// The run's progress when the event fired.
    ///
    /// ```
    /// let options = tenancy::migrate::MigrateAll::new().on_event(|event| {
    ///     let progress = event.progress();
    ///     println!("{}/{} tenants done", progress.completed, progress.total);
    /// });
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn progress(&self) -> Progress {
        match self {
            Self::Started { progress, .. }
            | Self::Finished { progress, .. }
            | Self::Failed { progress, .. }
            | Self::Skipped { progress, .. } => *progress,
        }
    }

    /// Whether this is the tenant's last event (anything but `Started`).
    ///
    /// ```
    /// let options = tenancy::migrate::MigrateAll::new().on_event(|event| {
    ///     if event.is_terminal() {
    ///         println!("{} is done", event.tenant());
    ///     }
    /// });
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn is_terminal(&self) -> bool {
        !matches!(self, Self::Started { .. })
    }
}

/// The callback a fleet run reports its [`MigrationEvent`]s to.
pub type EventHandler = Arc<dyn Fn(&MigrationEvent<'_>) + Send + Sync>;
