//! What a migration or rollback run did, tenant by tenant.

mod failure;

use std::fmt;
use std::time::Duration;

use tenancy_core::{SchemaName, TenantId};

use crate::printable::printable_list;
use crate::{CorruptRecord, Error};

pub use failure::FleetRunError;

/// Which way a run moved the tenants' schemas.
///
/// ```
/// use tenancy::migrate::{Direction, FleetReport};
///
/// fn verb(report: &FleetReport) -> &'static str {
///     match report.direction {
///         Direction::Up => "migrated",
///         Direction::Down => "rolled back",
///     }
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Direction {
    /// Pending migrations applied (`up`).
    Up,
    /// Applied migrations reverted (`down`).
    Down,
}

impl Direction {
    fn verb(self) -> &'static str {
        match self {
            Self::Up => "migrated",
            Self::Down => "rolled back",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Self::Up => "applied",
            Self::Down => "reverted",
        }
    }
}

/// How one tenant's part of a run ended.
///
/// ```
/// use tenancy::migrate::{Outcome, TenantReport};
///
/// fn symbol(report: &TenantReport) -> char {
///     match report.outcome {
///         Outcome::Succeeded => '✓',
///         Outcome::Failed => '✗',
///         Outcome::Skipped => '-',
///     }
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Outcome {
    /// The tenant's transaction committed (possibly with nothing to do).
    Succeeded,
    /// The tenant's transaction was rolled back; the report's `error` says why.
    Failed,
    /// The tenant was never started: the run stopped on an earlier failure.
    Skipped,
}

/// One tenant's part of a run.
///
/// `error` is `Some` exactly when `outcome` is [`Outcome::Failed`].
///
/// ```
/// fn log(report: &tenancy::migrate::TenantReport) {
///     match &report.error {
///         Some(error) => eprintln!("{} ({}): {error}", report.tenant, report.schema),
///         None => println!("{} in {:.2?}: {:?}", report.tenant, report.duration, report.applied),
///     }
/// }
/// ```
#[derive(Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct TenantReport {
    /// The tenant.
    pub tenant: TenantId,
    /// Its schema.
    pub schema: SchemaName,
    /// Which way the run went.
    pub direction: Direction,
    /// How it ended.
    pub outcome: Outcome,
    /// The migrations applied in order, or for a rollback
    /// ([`Direction::Down`]) reverted, newest first. Empty unless the tenant
    /// succeeded: a failed tenant's transaction is rolled back whole.
    pub applied: Vec<String>,
    /// Time spent on the tenant, waiting for its lock included (serialized
    /// as `duration_seconds`, a number).
    #[cfg_attr(
        feature = "serde",
        serde(
            rename = "duration_seconds",
            serialize_with = "crate::serde_support::seconds"
        )
    )]
    pub duration: Duration,
    /// Whether another runner held the tenant when this run first reached
    /// it, so this run came back to it after all the others and waited for
    /// it. Its `applied` is then empty when the other runner migrated it:
    /// done elsewhere, and not redone.
    pub deferred: bool,
    /// Why the tenant failed (serialized as its message).
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::serde_support::display_opt")
    )]
    pub error: Option<Error>,
}

impl TenantReport {
    pub(crate) fn succeeded(
        tenant: TenantId,
        schema: SchemaName,
        direction: Direction,
        applied: Vec<String>,
        duration: Duration,
    ) -> Self {
        Self {
            tenant,
            schema,
            direction,
            outcome: Outcome::Succeeded,
            applied,
            deferred: false,
            duration,
            error: None,
        }
    }

    pub(crate) fn failed(
        tenant: TenantId,
        schema: SchemaName,
        direction: Direction,
        error: Error,
        duration: Duration,
    ) -> Self {
        Self {
            tenant,
            schema,
            direction,
            outcome: Outcome::Failed,
            applied: Vec::new(),
            deferred: false,
            duration,
            error: Some(error),
        }
    }

    pub(crate) fn skipped(tenant: TenantId, schema: SchemaName, direction: Direction) -> Self {
        Self {
            tenant,
            schema,
            direction,
            outcome: Outcome::Skipped,
            applied: Vec::new(),
            deferred: false,
            duration: Duration::ZERO,
            error: None,
        }
    }

    /// Whether the tenant's transaction committed.
    ///
    /// ```
    /// fn check(report: &tenancy::migrate::TenantReport) {
    ///     assert_eq!(report.is_success(), report.error.is_none() && report.outcome == tenancy::migrate::Outcome::Succeeded);
    /// }
    /// ```
    #[must_use]
    pub fn is_success(&self) -> bool {
        self.outcome == Outcome::Succeeded
    }
}

impl fmt::Display for TenantReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.outcome, &self.error) {
            (Outcome::Failed, Some(error)) => write!(f, "{}: failed: {error}", self.tenant),
            (Outcome::Skipped, _) => write!(f, "{}: skipped", self.tenant),
            _ if self.applied.is_empty() && self.deferred => {
                write!(
                    f,
                    "{}: nothing to do (another runner migrated it)",
                    self.tenant
                )
            }
            _ if self.applied.is_empty() => write!(f, "{}: nothing to do", self.tenant),
            _ => write!(
                f,
                "{}: {} {} ({:.2?})",
                self.tenant,
                self.direction.noun(),
                printable_list(&self.applied),
                self.duration,
            ),
        }
    }
}

/// What a fleet run did: one [`TenantReport`] per tenant, ordered by tenant
/// id.
///
/// Per-tenant failures do not make the run itself an `Err`: one tenant's
/// failure does not stop the others, and they are here, in
/// [`failed`](Self::failed). Turn them into an error with
/// [`into_result`](Self::into_result), or check
/// [`is_success`](Self::is_success) (a CLI exits non-zero when it is false).
///
/// The [`Display`](fmt::Display) output is a one-line summary, e.g.
/// `migrated 6 tenants: 5 succeeded, 1 failed, 0 skipped; 10 migrations applied in 1.20s`.
///
/// ```
/// fn exit_code(report: &tenancy::migrate::FleetReport) -> i32 {
///     println!("{report}"); // the one-line summary
///     for tenant in report.failed() {
///         eprintln!("{tenant}");
///     }
///     if report.is_success() { 0 } else { 1 }
/// }
/// ```
#[derive(Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct FleetReport {
    /// Which way the run went.
    pub direction: Direction,
    /// Every tenant of the run, ordered by tenant id.
    pub tenants: Vec<TenantReport>,
    /// Registry rows of the run's statuses (or of an unreadable status) that
    /// do not validate: those tenants were not migrated, and the run is not a
    /// success. Fix the rows by hand, then run again.
    pub corrupt: Vec<CorruptRecord>,
    /// The spare schemas brought current after the tenants (going up only;
    /// see [`TenantFleet::refill_spares`](crate::TenantFleet::refill_spares)),
    /// ordered by schema. A failed spare makes the run fail too: its
    /// migration is likely to fail on the next tenant created.
    pub spares: Vec<crate::SpareReport>,
    /// Wall time of the whole run (serialized as `duration_seconds`, a
    /// number).
    #[cfg_attr(
        feature = "serde",
        serde(
            rename = "duration_seconds",
            serialize_with = "crate::serde_support::seconds"
        )
    )]
    pub duration: Duration,
}

impl FleetReport {
    pub(crate) fn new(
        direction: Direction,
        tenants: Vec<TenantReport>,
        corrupt: Vec<CorruptRecord>,
        duration: Duration,
    ) -> Self {
        Self {
            direction,
            tenants,
            corrupt,
            spares: Vec::new(),
            duration,
        }
    }

    /// The tenants whose transaction committed.
    ///
    /// ```
    /// fn done(report: &tenancy::migrate::FleetReport) -> Vec<&str> {
    ///     report.succeeded().map(|t| t.tenant.as_str()).collect()
    /// }
    /// ```
    pub fn succeeded(&self) -> impl Iterator<Item = &TenantReport> {
        self.with_outcome(Outcome::Succeeded)
    }

    /// The tenants whose transaction was rolled back, each with its error.
    ///
    /// ```
    /// fn print_failures(report: &tenancy::migrate::FleetReport) {
    ///     for tenant in report.failed() {
    ///         eprintln!("{}: {}", tenant.tenant, tenant.error.as_ref().expect("failed tenants have an error"));
    ///     }
    /// }
    /// ```
    pub fn failed(&self) -> impl Iterator<Item = &TenantReport> {
        self.with_outcome(Outcome::Failed)
    }

    /// The tenants never started because the run stopped on a failure.
    ///
    /// ```
    /// fn to_retry(report: &tenancy::migrate::FleetReport) -> usize {
    ///     report.failed().count() + report.skipped().count()
    /// }
    /// ```
    pub fn skipped(&self) -> impl Iterator<Item = &TenantReport> {
        self.with_outcome(Outcome::Skipped)
    }

    /// Whether every tenant succeeded and no registry row of the run was
    /// unreadable (also true for an empty fleet).
    ///
    /// ```
    /// fn exit_code(report: &tenancy::migrate::FleetReport) -> i32 {
    ///     if report.is_success() { 0 } else { 1 }
    /// }
    /// ```
    #[must_use]
    pub fn is_success(&self) -> bool {
        self.corrupt.is_empty()
            && self.tenants.iter().all(TenantReport::is_success)
            && self.spares.iter().all(|s| s.outcome != Outcome::Failed)
    }

    /// The report when the run is a [success](Self::is_success), otherwise
    /// a [`FleetRunError`] naming every failed tenant with its error (and
    /// every unreadable registry row): the way to make a deploy step fail
    /// when a tenant did. It converts into [`Error::FleetRun`], so one `?`
    /// does it.
    ///
    /// ```
    /// use tenancy::migrate::{MigrateAll, NewTenant, TenantFleet};
    /// # use sea_orm_migration::{MigrationTrait, MigratorTrait};
    /// # struct TenantMigrator;
    /// # impl MigratorTrait for TenantMigrator {
    /// #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
    /// # }
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let test_db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = test_db.connect().await?;
    /// let fleet = TenantFleet::<TenantMigrator>::new(conn.clone());
    /// fleet.install().await?;
    /// fleet.create(&"acme".parse()?, NewTenant::new()).await?;
    ///
    /// // Err(FleetRunError) unless every tenant migrated.
    /// let report = fleet.migrate_all(MigrateAll::new()).await?.into_result()?;
    /// println!("{report}");
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`FleetRunError`] when a tenant failed or was skipped, or a registry
    /// row of the run was unreadable.
    pub fn into_result(self) -> Result<Self, FleetRunError> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(FleetRunError::new(self))
        }
    }

    /// Migrations applied (or reverted) across all tenants.
    ///
    /// ```
    /// fn summary(report: &tenancy::migrate::FleetReport) -> String {
    ///     format!("{} migrations over {} tenants", report.applied_total(), report.tenants.len())
    /// }
    /// ```
    #[must_use]
    pub fn applied_total(&self) -> usize {
        self.tenants.iter().map(|t| t.applied.len()).sum()
    }

    /// The report of one tenant.
    ///
    /// ```
    /// fn applied_for(report: &tenancy::migrate::FleetReport, id: &tenancy::TenantId) -> usize {
    ///     report.tenant(id).map_or(0, |t| t.applied.len())
    /// }
    /// ```
    #[must_use]
    pub fn tenant(&self, id: &TenantId) -> Option<&TenantReport> {
        self.tenants
            .binary_search_by(|t| t.tenant.cmp(id))
            .ok()
            .and_then(|i| self.tenants.get(i))
    }

    fn with_outcome(&self, outcome: Outcome) -> impl Iterator<Item = &TenantReport> {
        self.tenants.iter().filter(move |t| t.outcome == outcome)
    }
}

impl fmt::Display for FleetReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.tenants.len();
        write!(
            f,
            "{} {count} tenant{}: {} succeeded, {} failed, {} skipped; {} migration{} {} in {:.2?}",
            self.direction.verb(),
            plural(count),
            self.succeeded().count(),
            self.failed().count(),
            self.skipped().count(),
            self.applied_total(),
            plural(self.applied_total()),
            self.direction.noun(),
            self.duration,
        )?;
        if !self.spares.is_empty() {
            let failed = self
                .spares
                .iter()
                .filter(|s| s.outcome == Outcome::Failed)
                .count();
            let applied: usize = self.spares.iter().map(|s| s.applied.len()).sum();
            write!(
                f,
                "; {} spare{}: {failed} failed, {applied} migration{} applied",
                self.spares.len(),
                plural(self.spares.len()),
                plural(applied),
            )?;
        }
        match self.corrupt.len() {
            0 => Ok(()),
            1 => write!(f, "; 1 unreadable registry row"),
            n => write!(f, "; {n} unreadable registry rows"),
        }
    }
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}
