//! A fleet run with failures, as an error.

use std::fmt;

use tenancy_core::TenantId;

use super::{Direction, FleetReport};
use crate::Error;

/// A fleet run in which some tenant failed, was skipped after a failure, or
/// had a registry row that does not validate, as an error: what
/// [`FleetReport::into_result`] returns, so that a deploy step cannot take
/// "0 succeeded, 2 failed" for success.
///
/// Its message names every failed tenant with its error (each failed
/// tenant's transaction was rolled back whole: it is as it was before the
/// run); [`report`](Self::report) has the whole run. It converts into
/// [`Error::FleetRun`], so `?` works in functions returning
/// [`Error`].
///
/// ```
/// use tenancy::migrate::{FleetRunError, MigrateAll, TenantFleet};
///
/// async fn deploy<M: sea_orm_migration::MigratorTrait>(fleet: &TenantFleet<M>) -> Result<(), tenancy::migrate::Error> {
///     let report = fleet.migrate_all(MigrateAll::new()).await?.into_result()?;
///     println!("{report}");
///     Ok(())
/// }
///
/// fn alert(error: &FleetRunError) {
///     for (tenant, error) in error.failures() {
///         eprintln!("{tenant}: {error}");
///     }
/// }
/// ```
#[derive(Debug)]
pub struct FleetRunError {
    report: FleetReport,
}

impl FleetRunError {
    pub(super) fn new(report: FleetReport) -> Self {
        Self { report }
    }

    /// The whole run: every tenant's outcome, the unreadable registry rows.
    ///
    /// ```
    /// fn succeeded(error: &tenancy::migrate::FleetRunError) -> usize {
    ///     error.report().succeeded().count()
    /// }
    /// ```
    #[must_use]
    pub fn report(&self) -> &FleetReport {
        &self.report
    }

    /// The run's report, to keep after the error.
    ///
    /// ```
    /// fn keep(error: tenancy::migrate::FleetRunError) -> tenancy::migrate::FleetReport {
    ///     error.into_report()
    /// }
    /// ```
    #[must_use]
    pub fn into_report(self) -> FleetReport {
        self.report
    }

    /// Each failed tenant with its error, ordered by tenant id.
    ///
    /// ```
    /// fn failed_ids(error: &tenancy::migrate::FleetRunError) -> Vec<String> {
    ///     error.failures().map(|(tenant, _)| tenant.to_string()).collect()
    /// }
    /// ```
    pub fn failures(&self) -> impl Iterator<Item = (&TenantId, &Error)> {
        self.report
            .failed()
            .filter_map(|t| t.error.as_ref().map(|error| (&t.tenant, error)))
    }
}

impl fmt::Display for FleetRunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let report = &self.report;
        let action = match report.direction {
            Direction::Up => "migrating",
            Direction::Down => "rolling back",
        };
        let failed = report.failed().count();
        write!(
            f,
            "{action} the fleet failed: {failed} of {} tenants failed",
            report.tenants.len()
        )?;
        let skipped = report.skipped().count();
        if skipped > 0 {
            write!(f, ", {skipped} not started after a failure")?;
        }
        match report.corrupt.len() {
            0 => {}
            1 => write!(f, ", 1 unreadable registry row")?,
            n => write!(f, ", {n} unreadable registry rows")?,
        }
        let spares_failed = report.spares.iter().filter(|s| s.error.is_some()).count();
        if spares_failed > 0 {
            write!(f, ", {spares_failed} spare schemas failed")?;
        }
        // Every failed tenant's error names the tenant already.
        for (_, error) in self.failures() {
            write!(f, "; {error}")?;
        }
        for row in &report.corrupt {
            write!(f, "; {row}")?;
        }
        for error in report.spares.iter().filter_map(|s| s.error.as_ref()) {
            write!(f, "; {error}")?;
        }
        if failed > 0 {
            write!(
                f,
                "; each failed tenant was left as it was: fix the cause and run again (tenants \
                 already done are not redone)"
            )?;
        }
        if !report.corrupt.is_empty() {
            write!(
                f,
                "; fix or remove the unreadable rows by hand, then run again"
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for FleetRunError {}
