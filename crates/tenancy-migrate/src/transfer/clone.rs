//! Cloning a tenant inside one database: the export streamed straight into
//! the import, through memory, with no file in between.

use sea_orm::{DbErr, RuntimeErr};
use sea_orm_migration::MigratorTrait;
use tenancy_core::TenantId;

use super::session::pool_of;
use super::{ExportSummary, ImportOptions, ImportSummary};
use crate::lifecycle_events::{LifecycleAction, LifecycleEvent};
use crate::{Error, TenantFleet};

/// How much of the export may wait in memory for the import to take it.
const PIPE_BUFFER: usize = 1024 * 1024;

/// What [`TenantFleet::clone_tenant`] did: what was read from the source,
/// and the new tenant.
///
/// ```
/// fn log(report: &tenancy::migrate::CloneReport) {
///     println!("{} cloned to {} ({} rows)", report.export.tenant, report.import.record.id, report.import.rows);
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct CloneReport {
    /// The source tenant's export.
    pub export: ExportSummary,
    /// The new tenant.
    pub import: ImportSummary,
}

impl<M: MigratorTrait> TenantFleet<M> {
    /// Copies tenant `source` to a new tenant `new` in the same database:
    /// schema, data, sequence values, migration ledger, display name and
    /// status; not the domain (domains are unique; give the copy one with
    /// [`set_domain`](Self::set_domain)). It is an
    /// [`export_tenant`](Self::export_tenant) streamed into an
    /// [`import_tenant`](Self::import_tenant), with their guarantees: one
    /// consistent snapshot of the source, and a copy made whole in one
    /// transaction or not at all. It uses two of the pool's connections at
    /// once.
    ///
    /// ```
    /// use tenancy::migrate::{NewTenant, TenantFleet};
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
    /// let template = "demo-template".parse()?;
    /// fleet.create(&template, NewTenant::new().display_name("Demo")).await?;
    ///
    /// let report = fleet.clone_tenant(&template, &"trial-42".parse()?).await?;
    /// assert_eq!(report.import.record.schema.as_str(), "tenant_trial_42");
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Those of [`export_tenant`](Self::export_tenant) for `source` and of
    /// [`import_tenant`](Self::import_tenant) for `new`; the first failure
    /// is reported, and nothing of `new` is left behind. On a pool of one
    /// connection, [`Error::Tenant`] at once, saying so.
    pub async fn clone_tenant(
        &self,
        source: &TenantId,
        new: &TenantId,
    ) -> Result<CloneReport, Error> {
        // Export and import each hold a connection for the whole copy: with
        // one, the second would wait for the pool's acquire timeout.
        let one = |message: String| Error::Tenant {
            tenant: source.clone(),
            source: DbErr::Conn(RuntimeErr::Internal(message)),
        };
        let max = pool_of(&self.conn)
            .map_err(|e| one(e.to_string()))?
            .options()
            .get_max_connections();
        if max < 2 {
            return Err(one(format!(
                "cloning needs two connections at once (one exporting, one importing) and the \
                 fleet's pool allows {max}; raise its max_connections"
            )));
        }
        let (writer, reader) = tokio::io::duplex(PIPE_BUFFER);
        let options = ImportOptions::new().as_tenant(new.clone()).domain(None);
        let export = async move {
            // The writer is dropped when the export ends, so an import
            // still reading sees the end instead of waiting forever.
            let mut writer = writer;
            self.export_unaudited(source, &mut writer).await
        };
        let import = self.import_as(reader, options, Some(source));
        let result = match tokio::join!(export, import) {
            (Ok((export, _)), Ok(import)) => Ok(CloneReport { export, import }),
            // The import failing closes the pipe, which the export then
            // reports as a broken write: the import's error is the cause.
            // The export failing otherwise cuts the import's input short:
            // the export's error is the cause.
            (Ok(_) | Err(Error::TransferIo { .. }), Err(err)) | (Err(err), _) => Err(err),
        };
        // The import wrote the `cloned` audit row in its transaction.
        let report = self
            .audit_failure(LifecycleAction::Cloned, new, result)
            .await?;
        self.emit(&LifecycleEvent::Cloned {
            source,
            record: &report.import.record,
        });
        Ok(report)
    }
}
