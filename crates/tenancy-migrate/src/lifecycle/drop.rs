//! Removing a tenant: soft (status `deleted`) or hard (schema and row gone).

use sea_orm::{ConnectionTrait, DatabaseTransaction};
use sea_orm_migration::MigratorTrait;
use tenancy_core::{TenantId, TenantStatus};
use tracing::Instrument;

use super::sql::{RECORD_COLUMNS, statement, tenant_err};
use super::update::{Changed, RowUpdate};
use super::{DropConfirmation, DropMode, DropOutcome};
use crate::audit::record_detail;
use crate::lifecycle_events::{LifecycleAction, LifecycleEvent};
use crate::pg::begin_read_committed;
use crate::registry::record_from_row;
use crate::{Error, TenantFleet, TenantRecord, tenant_txn};

impl<M: MigratorTrait> TenantFleet<M> {
    /// Removes a tenant.
    ///
    /// - [`DropMode::Soft`] marks it `deleted` in one `UPDATE`: its schema and
    ///   data are kept, the SeaORM layer refuses access, and
    ///   [`resume`](Self::resume) refuses to bring it back. Soft-dropping a
    ///   deleted tenant changes nothing.
    /// - [`DropMode::Hard`] runs `DROP SCHEMA … CASCADE` and deletes the
    ///   registry row in one transaction, only if the
    ///   [`DropConfirmation`] names this very tenant. It first takes the
    ///   tenant's migration lock, so a migration of this tenant running
    ///   elsewhere finishes (or rolls back) before the schema goes. A
    ///   registered tenant whose schema is already gone is unregistered all
    ///   the same, and reported as [`DropOutcome::SchemaWasMissing`]. Dropping
    ///   a schema with very many tables can exceed the server's
    ///   `max_locks_per_transaction`; raise it for such tenants.
    ///
    /// Other processes keep resolving the tenant until their registry cache
    /// expires (see [`suspend`](Self::suspend)); in this process, call
    /// `db.registry().invalidate(&id)`. After a hard drop, every process's
    /// next transaction on the schema is refused (`SchemaMissing`).
    ///
    /// # Errors
    /// - [`Error::DropNotConfirmed`]: a hard drop whose confirmation names
    ///   another id (nothing is touched);
    /// - [`Error::UnknownTenant`]: the id is not registered;
    /// - [`Error::SchemaShared`]: the registry row (written by hand) points
    ///   at a shared schema; nothing is dropped;
    /// - [`Error::Tenant`]: a database error (the transaction is rolled back).
    ///
    /// ```
    /// use sea_orm::{ConnectionTrait, DbBackend, Statement};
    /// use tenancy::migrate::{DropConfirmation, DropMode, DropOutcome, Error, NewTenant, TenantFleet};
    /// # use sea_orm_migration::{MigrationTrait, MigratorTrait};
    /// # struct TenantMigrator;
    /// # impl MigratorTrait for TenantMigrator {
    /// #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
    /// # }
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let test_db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = test_db.connect().await?;
    /// let fleet = TenantFleet::<TenantMigrator>::new(conn.clone());
    /// fleet.install().await?;
    /// let acme = "acme".parse()?;
    /// fleet.create(&acme, NewTenant::new()).await?;
    ///
    /// let wrong = fleet.drop_tenant(&acme, DropMode::Hard(DropConfirmation::new("initech"))).await;
    /// assert!(matches!(wrong, Err(Error::DropNotConfirmed { .. })));
    ///
    /// let outcome = fleet.drop_tenant(&acme, DropMode::Hard(DropConfirmation::new("acme"))).await?;
    /// assert!(matches!(outcome, DropOutcome::Dropped(_)));
    /// assert_eq!(fleet.get(&acme).await?, None);
    /// let schemas = conn
    ///     .query_all_raw(Statement::from_string(
    ///         DbBackend::Postgres,
    ///         "SELECT 1 FROM pg_namespace WHERE nspname = 'tenant_acme'",
    ///     ))
    ///     .await?;
    /// assert!(schemas.is_empty());
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    pub async fn drop_tenant(&self, id: &TenantId, mode: DropMode) -> Result<DropOutcome, Error> {
        self.ensure_direct().await?;
        let hard = matches!(mode, DropMode::Hard(_));
        let span = tracing::info_span!("tenant_drop", tenant = %id, hard);
        let result = async {
            match mode {
                DropMode::Soft => self.soft_drop(id).await,
                DropMode::Hard(confirmation) => self
                    .hard_drop(id, &confirmation)
                    .await
                    .map(|outcome| (outcome.record().clone(), outcome)),
            }
        }
        .instrument(span)
        .await;
        let (before, outcome) = self
            .audit_failure(LifecycleAction::Dropped, id, result)
            .await?;
        self.emit(&LifecycleEvent::Dropped {
            before: &before,
            outcome: &outcome,
        });
        Ok(outcome)
    }

    /// Returns the row before the change too, for the event.
    async fn soft_drop(&self, id: &TenantId) -> Result<(TenantRecord, DropOutcome), Error> {
        let Changed { before, after } = self
            .update_row(
                id,
                RowUpdate {
                    action: Some(LifecycleAction::Dropped),
                    set: "status = $2, updated_at = now()",
                    refuse_deleted: false,
                },
                [TenantStatus::Deleted.as_str().into()],
            )
            .await
            .map_err(tenant_err(id))?
            .ok_or_else(|| Error::UnknownTenant { tenant: id.clone() })??;
        tracing::info!(schema = %after.schema, "tenant soft-deleted; schema kept");
        Ok((before, DropOutcome::SoftDeleted(after)))
    }

    async fn hard_drop(
        &self,
        id: &TenantId,
        confirmation: &DropConfirmation,
    ) -> Result<DropOutcome, Error> {
        if !confirmation.confirms(id) {
            return Err(Error::DropNotConfirmed { tenant: id.clone() });
        }
        // READ COMMITTED: the DELETE after the lock wait must see a concurrent
        // drop's commit (and find no row) instead of failing to serialize.
        let txn = begin_read_committed(&self.conn, None)
            .await
            .map_err(tenant_err(id))?;
        let result = match self.hard_drop_in(&txn, id).await {
            Ok(outcome) => {
                let mut detail = record_detail(outcome.record());
                detail["mode"] = "hard".into();
                detail["schema_dropped"] = outcome.schema_dropped().into();
                self.audit_in(&txn, LifecycleAction::Dropped, id, detail)
                    .await
                    .map(|()| outcome)
            }
            Err(err) => Err(err),
        };
        let outcome = self.finish(txn, id, result).await?;
        match &outcome {
            DropOutcome::SchemaWasMissing(record) => tracing::warn!(
                schema = %record.schema,
                "tenant unregistered; its schema was already missing"
            ),
            other => tracing::info!(schema = %other.record().schema, "tenant and schema dropped"),
        }
        Ok(outcome)
    }

    /// The hard drop's statements, in `txn`.
    ///
    /// The row is read without a lock, the tenant's advisory lock is taken,
    /// then the schema dropped and the row deleted: the advisory lock comes
    /// before any registry row lock, the order a migration run uses too.
    async fn hard_drop_in(
        &self,
        txn: &DatabaseTransaction,
        id: &TenantId,
    ) -> Result<DropOutcome, Error> {
        let table = self.registry_table();
        let row = txn
            .query_one_raw(statement(
                format!(
                    "SELECT {RECORD_COLUMNS}, \
                     EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = schema_name) \
                         AS schema_exists \
                     FROM {table} WHERE tenant_id = $1"
                ),
                [id.as_str().into()],
            ))
            .await
            .map_err(tenant_err(id))?
            .ok_or_else(|| Error::UnknownTenant { tenant: id.clone() })?;
        let record = record_from_row(&row)?;
        self.refuse_shared(id, &record.schema)?;
        let schema_exists: bool = row.try_get("", "schema_exists").map_err(tenant_err(id))?;
        if schema_exists {
            tenant_txn::lock_schema(txn, &record.schema, self.config.shared_schemas())
                .await
                .map_err(tenant_err(id))?;
            // IF EXISTS: a concurrent hard drop of this tenant may have
            // dropped it while we waited for the lock; the DELETE below then
            // finds no row and reports the tenant unknown.
            txn.execute_unprepared(&format!(
                "DROP SCHEMA IF EXISTS {} CASCADE",
                record.schema.quoted()
            ))
            .await
            .map_err(tenant_err(id))?;
        }
        let deleted = txn
            .execute_raw(statement(
                format!("DELETE FROM {table} WHERE tenant_id = $1 AND schema_name = $2"),
                [id.as_str().into(), record.schema.as_str().into()],
            ))
            .await
            .map_err(tenant_err(id))?;
        if deleted.rows_affected() == 0 {
            return Err(Error::UnknownTenant { tenant: id.clone() });
        }
        Ok(if schema_exists {
            DropOutcome::Dropped(record)
        } else {
            DropOutcome::SchemaWasMissing(record)
        })
    }
}
