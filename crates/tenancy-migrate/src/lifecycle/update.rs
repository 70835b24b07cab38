//! Reading and changing one tenant's registry row: status, display name,
//! domain. Each change is a single `UPDATE … RETURNING`.

use sea_orm::{ConnectionTrait, DatabaseTransaction, Value};
use sea_orm_migration::MigratorTrait;
use tenancy_core::{TenantId, TenantStatus};
use tracing::Instrument;

use super::normalize_domain;
use super::sql::{RECORD_COLUMNS, notify, rollback, statement, tenant_err};
use crate::audit::change_detail;
use crate::lifecycle_events::{LifecycleAction, LifecycleEvent};
use crate::pg::begin_read_committed;
use crate::registry::record_from_row;
use crate::{Error, TenantFleet, TenantRecord};

/// A registry row before and after one change, as committed.
#[derive(Debug)]
pub(super) struct Changed {
    pub(super) before: TenantRecord,
    pub(super) after: TenantRecord,
}

/// What [`TenantFleet::update_row`] changes, and how it is audited.
pub(super) struct RowUpdate<'a> {
    /// The audit action, or `None` for a step of another call (the
    /// status a staged creation ends with), audited by that call.
    pub(super) action: Option<LifecycleAction>,
    /// The `SET` list, parameters from `$2`.
    pub(super) set: &'a str,
    /// Refuse (roll back) when the row is `deleted` before the change.
    pub(super) refuse_deleted: bool,
}

impl<M: MigratorTrait> TenantFleet<M> {
    /// The registry row of `id`, whatever its status; `None` if it is not
    /// registered. Uncached: it asks the database.
    ///
    /// # Errors
    /// [`Error::Tenant`] when the registry cannot be read,
    /// [`Error::CorruptRegistry`] for a row that does not validate.
    ///
    /// ```
    /// use tenancy::migrate::{NewTenant, TenantFleet};
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
    /// assert_eq!(fleet.get(&acme).await?, None);
    ///
    /// fleet.create(&acme, NewTenant::new().display_name("Acme")).await?;
    /// let record = fleet.get(&acme).await?.expect("registered");
    /// assert_eq!(record.display_name, "Acme");
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    pub async fn get(&self, id: &TenantId) -> Result<Option<TenantRecord>, Error> {
        self.ensure_direct().await?;
        let row = self
            .conn
            .query_one_raw(statement(
                format!(
                    "SELECT {RECORD_COLUMNS} FROM {} WHERE tenant_id = $1",
                    self.registry_table()
                ),
                [id.as_str().into()],
            ))
            .await
            .map_err(tenant_err(id))?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// Suspends a tenant: it stays registered with its schema and data, and
    /// the SeaORM layer refuses access to it until it is
    /// [resumed](Self::resume). Suspending a suspended tenant changes nothing.
    ///
    /// Takes effect at once for new transactions in this process once you
    /// call `db.registry().invalidate(&id)`; other processes see it within
    /// their registry cache TTL (30 s by default). Transactions already open
    /// run to their end.
    ///
    /// # Errors
    /// [`Error::UnknownTenant`], [`Error::TenantDeleted`] (a deleted tenant
    /// stays deleted), [`Error::Tenant`] for a database error.
    ///
    /// ```
    /// use tenancy::TenantStatus;
    /// use tenancy::migrate::{NewTenant, TenantFleet};
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
    /// assert_eq!(fleet.suspend(&acme).await?.status, TenantStatus::Suspended);
    /// assert_eq!(fleet.resume(&acme).await?.status, TenantStatus::Active);
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    pub async fn suspend(&self, id: &TenantId) -> Result<TenantRecord, Error> {
        self.ensure_direct().await?;
        let span = tracing::info_span!("tenant_suspend", tenant = %id);
        let action = LifecycleAction::Suspended;
        let result = self
            .set_status(id, TenantStatus::Suspended, Some(action))
            .instrument(span)
            .await;
        let Changed { before, after } = self.audit_failure(action, id, result).await?;
        self.emit(&LifecycleEvent::Suspended {
            before: &before,
            after: &after,
        });
        Ok(after)
    }

    /// Makes a tenant active again: a suspended one, or one created as
    /// [`Provisioning`](TenantStatus::Provisioning) and now ready. Resuming
    /// an active tenant changes nothing. The same caching applies as for
    /// [`suspend`](Self::suspend).
    ///
    /// # Errors
    /// [`Error::UnknownTenant`], [`Error::TenantDeleted`] (a soft-deleted
    /// tenant cannot come back this way), [`Error::Tenant`] for a database
    /// error.
    ///
    /// ```
    /// use tenancy::TenantStatus;
    /// use tenancy::migrate::{DropMode, Error, NewTenant, TenantFleet};
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
    /// fleet.create(&acme, NewTenant::new().status(TenantStatus::Provisioning)).await?;
    /// // ... seed the tenant's data, then open it:
    /// assert_eq!(fleet.resume(&acme).await?.status, TenantStatus::Active);
    ///
    /// fleet.drop_tenant(&acme, DropMode::Soft).await?;
    /// assert!(matches!(fleet.resume(&acme).await, Err(Error::TenantDeleted { .. })));
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    pub async fn resume(&self, id: &TenantId) -> Result<TenantRecord, Error> {
        self.ensure_direct().await?;
        let span = tracing::info_span!("tenant_resume", tenant = %id);
        let action = LifecycleAction::Resumed;
        let result = self
            .set_status(id, TenantStatus::Active, Some(action))
            .instrument(span)
            .await;
        let Changed { before, after } = self.audit_failure(action, id, result).await?;
        self.emit(&LifecycleEvent::Resumed {
            before: &before,
            after: &after,
        });
        Ok(after)
    }

    /// Changes a tenant's display name (whatever its status).
    ///
    /// # Errors
    /// [`Error::UnknownTenant`], [`Error::Tenant`] for a database error.
    ///
    /// ```
    /// use tenancy::migrate::{NewTenant, TenantFleet};
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
    /// fleet.create(&acme, NewTenant::new().display_name("Acme")).await?;
    /// assert_eq!(fleet.rename(&acme, "Acme Corp").await?.display_name, "Acme Corp");
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    pub async fn rename(&self, id: &TenantId, display_name: &str) -> Result<TenantRecord, Error> {
        self.ensure_direct().await?;
        let span = tracing::info_span!("tenant_rename", tenant = %id);
        let action = LifecycleAction::Renamed;
        let result = async {
            self.update_row(
                id,
                RowUpdate {
                    action: Some(action),
                    set: "display_name = $2, updated_at = now()",
                    refuse_deleted: false,
                },
                [display_name.into()],
            )
            .await
            .map_err(tenant_err(id))?
            .ok_or_else(|| unknown(id))?
        }
        .instrument(span)
        .await;
        let Changed { before, after } = self.audit_failure(action, id, result).await?;
        self.emit(&LifecycleEvent::Renamed {
            before: &before,
            after: &after,
        });
        Ok(after)
    }

    /// Sets a tenant's domain (stored lowercase, see
    /// [`NewTenant::domain`](crate::NewTenant::domain)), or clears it with
    /// `None`.
    ///
    /// # Errors
    /// [`Error::UnknownTenant`], [`Error::DomainTaken`] when another tenant
    /// uses the domain, [`Error::Tenant`] for a database error.
    ///
    /// ```
    /// use tenancy::migrate::{Error, NewTenant, TenantFleet};
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
    /// let (acme, initech) = ("acme".parse()?, "initech".parse()?);
    /// fleet.create(&acme, NewTenant::new().domain("acme.example.com")).await?;
    /// fleet.create(&initech, NewTenant::new()).await?;
    ///
    /// let taken = fleet.set_domain(&initech, Some("ACME.example.com".into())).await;
    /// assert!(matches!(taken, Err(Error::DomainTaken { .. })));
    /// let record = fleet.set_domain(&initech, Some("initech.example.com".into())).await?;
    /// assert_eq!(record.domain.as_deref(), Some("initech.example.com"));
    /// assert_eq!(fleet.set_domain(&acme, None).await?.domain, None);
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    pub async fn set_domain(
        &self,
        id: &TenantId,
        domain: Option<String>,
    ) -> Result<TenantRecord, Error> {
        self.ensure_direct().await?;
        let span = tracing::info_span!("tenant_set_domain", tenant = %id);
        let action = LifecycleAction::DomainChanged;
        let result = async {
            let domain = domain.map(normalize_domain);
            match self
                .update_row(
                    id,
                    RowUpdate {
                        action: Some(action),
                        set: "domain = $2, updated_at = now()",
                        refuse_deleted: false,
                    },
                    [domain.clone().into()],
                )
                .await
            {
                Ok(Some(changed)) => changed,
                Ok(None) => Err(unknown(id)),
                Err(source) => Err(self
                    .registry_write_error(id, None, domain.as_deref(), source)
                    .await),
            }
        }
        .instrument(span)
        .await;
        let Changed { before, after } = self.audit_failure(action, id, result).await?;
        self.emit(&LifecycleEvent::DomainChanged {
            before: &before,
            after: &after,
        });
        Ok(after)
    }

    /// Sets the status of a tenant that is not deleted, atomically: a
    /// deleted row is left untouched (the transaction rolls back, and the
    /// call reports it), so a suspend or resume racing a soft drop never
    /// brings the tenant back.
    pub(super) async fn set_status(
        &self,
        id: &TenantId,
        status: TenantStatus,
        action: Option<LifecycleAction>,
    ) -> Result<Changed, Error> {
        let deleted = TenantStatus::Deleted.as_str();
        let changed = self
            .update_row(
                id,
                RowUpdate {
                    action,
                    // The CASE keeps a deleted row deleted even if the
                    // check on the locked row were ever bypassed.
                    set: "status = CASE WHEN status = $3 THEN status ELSE $2 END, \
                          updated_at = CASE WHEN status = $3 THEN updated_at ELSE now() END",
                    refuse_deleted: true,
                },
                [status.as_str().into(), deleted.into()],
            )
            .await
            .map_err(tenant_err(id))?
            .ok_or_else(|| unknown(id))??;
        tracing::info!(status = %changed.after.status, "tenant status set");
        Ok(changed)
    }

    /// `UPDATE` of `id`'s row with the `SET` list `update.set` (parameters
    /// from `$2`, bound to `values`; every caller bumps `updated_at`), and
    /// its audit row, returning the row before and after; `None` when `id`
    /// is not registered.
    ///
    /// In a transaction, and only on a row that validates before and after:
    /// a row written by hand that does not is left exactly as it was (an
    /// unknown status is not turned into a known one behind the owner's
    /// back), and the inner `Err` says what is wrong with it.
    ///
    /// The outer `Result` is the statements', the inner one reading the row.
    ///
    /// Its own `READ COMMITTED` transaction: at `repeatable read` or
    /// `serializable`, an `UPDATE` that waited for a concurrent change of the
    /// row fails to serialize instead of applying on top of it.
    pub(super) async fn update_row(
        &self,
        id: &TenantId,
        update: RowUpdate<'_>,
        values: impl IntoIterator<Item = Value>,
    ) -> Result<Option<Result<Changed, Error>>, sea_orm::DbErr> {
        let txn = begin_read_committed(&self.conn, None).await?;
        let mut result = self.update_row_in(&txn, id, &update, values).await;
        if let (Ok(Some(Ok(changed))), Some(action)) = (&result, update.action) {
            let mut detail = change_detail(&changed.before, &changed.after);
            if action == LifecycleAction::Dropped {
                detail["mode"] = "soft".into();
            }
            if let Err(err) = self.audit_in(&txn, action, id, detail).await {
                result = Ok(Some(Err(err)));
            }
        }
        if let Ok(Some(Ok(_))) = result {
            // Delivered with the commit, never without it.
            if let Err(err) = notify(&txn, id).await {
                result = Err(err);
            }
        }
        match result {
            Ok(Some(Ok(record))) => {
                let committed = txn.commit().await;
                // Even when the commit's outcome is unknown: forgetting a
                // row that did not change costs one lookup.
                self.registry.invalidate(id);
                committed?;
                Ok(Some(Ok(record)))
            }
            other => {
                rollback(txn, id).await;
                other
            }
        }
    }

    async fn update_row_in(
        &self,
        txn: &DatabaseTransaction,
        id: &TenantId,
        update: &RowUpdate<'_>,
        values: impl IntoIterator<Item = Value>,
    ) -> Result<Option<Result<Changed, Error>>, sea_orm::DbErr> {
        let table = self.registry_table();
        let before = txn
            .query_one_raw(statement(
                format!("SELECT {RECORD_COLUMNS} FROM {table} WHERE tenant_id = $1 FOR UPDATE"),
                [id.as_str().into()],
            ))
            .await?;
        let before = match before.as_ref().map(record_from_row) {
            None => return Ok(None),
            Some(Err(corrupt)) => return Ok(Some(Err(corrupt))),
            Some(Ok(before)) => before,
        };
        if update.refuse_deleted && before.status == TenantStatus::Deleted {
            return Ok(Some(Err(Error::TenantDeleted { tenant: id.clone() })));
        }
        let set = update.set;
        let after = txn
            .query_one_raw(statement(
                format!("UPDATE {table} SET {set} WHERE tenant_id = $1 RETURNING {RECORD_COLUMNS}"),
                std::iter::once(id.as_str().into()).chain(values),
            ))
            .await?;
        Ok(after
            .as_ref()
            .map(|row| record_from_row(row).map(|after| Changed { before, after })))
    }
}

/// The error for an id with no registry row.
fn unknown(id: &TenantId) -> Error {
    Error::UnknownTenant { tenant: id.clone() }
}
