//! Making one spare, and dropping one: each one transaction.

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr};
use sea_orm_migration::MigratorTrait;
use tenancy_core::SchemaName;

use super::sql::statement;
use crate::pg::begin_read_committed;
use crate::tenant_txn::{apply_pending, prepare_for_migration};
use crate::{Error, TenantFleet};

/// What ended a transaction of the pool, and what to do with it.
enum Step<T> {
    /// Commit: the work is done.
    Done(T),
    /// Roll back: nothing to do (the pool is full, or empty).
    Nothing,
}

impl<M: MigratorTrait> TenantFleet<M> {
    /// Makes one spare, unless the pool already has `target`: a new schema
    /// numbered from the pool's sequence, migrated to the latest version
    /// and recorded, in one transaction. Refillers take turns on the
    /// pool's lock, so concurrent refills do not overshoot `target`.
    pub(super) async fn make_spare(&self, target: usize) -> Result<Option<SchemaName>, Error> {
        let db_err = |source| Error::Database {
            action: "refilling the spare pool",
            source,
        };
        // Before the transaction: the lookup takes a connection of its own.
        let citus = self.citus_enabled().await?;
        // READ COMMITTED: the count after the lock wait must see the spares
        // the previous holder committed.
        let txn = begin_read_committed(&self.conn, Some(&self.refill_lock()))
            .await
            .map_err(db_err)?;
        let result = self.make_spare_in(&txn, target, citus).await;
        end(txn, result).await
    }

    async fn make_spare_in(
        &self,
        txn: &DatabaseTransaction,
        target: usize,
        citus: bool,
    ) -> Result<Step<SchemaName>, Error> {
        let db_err = |source| Error::Database {
            action: "refilling the spare pool",
            source,
        };
        let tables = self.spare_tables()?;
        if count(txn, &tables.table).await.map_err(db_err)? >= target {
            return Ok(Step::Nothing);
        }
        let number: i64 = txn
            .query_one_raw(statement(
                "SELECT nextval($1::regclass) AS n".to_owned(),
                [tables.sequence.as_str().into()],
            ))
            .await
            .and_then(|row| {
                row.ok_or_else(|| DbErr::Custom("nextval returned no row".to_owned()))?
                    .try_get("", "n")
            })
            .map_err(db_err)?;
        // A sequence starts at 1 and only grows: never negative.
        let spare = self
            .config
            .naming()
            .spare_schema(u64::try_from(number).unwrap_or_default())?;
        let spare_err = |action, migration, source| Error::Spare {
            schema: spare.clone(),
            action,
            migration,
            source,
        };
        if citus {
            crate::citus::enable_schema_sharding(txn)
                .await
                .map_err(db_err)?;
        }
        txn.execute_unprepared(&format!("CREATE SCHEMA {}", spare.quoted()))
            .await
            .map_err(|e| spare_err("creating it", None, e))?;
        prepare_for_migration::<M>(txn, &spare, self.config.shared_schemas())
            .await
            .map_err(|e| spare_err("locking it", None, e))?;
        apply_pending::<M>(txn)
            .await
            .map_err(|f| spare_err("migrating it", f.migration, f.source))?;
        txn.execute_raw(statement(
            format!("INSERT INTO {} (schema_name) VALUES ($1)", tables.table),
            [spare.as_str().into()],
        ))
        .await
        .map_err(|e| spare_err("recording it", None, e))?;
        Ok(Step::Done(spare))
    }

    /// Drops the newest spare, unless the pool has `keep` or fewer: its
    /// row and its schema, in one transaction. Spares being claimed or
    /// migrated are skipped, and rows that do not name one of this fleet's
    /// spares (written by hand) are never acted on: they are listed in
    /// [`SpareStatus::unusable`](crate::SpareStatus::unusable).
    pub(super) async fn drop_spare(&self, keep: usize) -> Result<Option<SchemaName>, Error> {
        let db_err = |source| Error::Database {
            action: "dropping spare schemas",
            source,
        };
        let txn = begin_read_committed(&self.conn, Some(&self.refill_lock()))
            .await
            .map_err(db_err)?;
        let result = self.drop_spare_in(&txn, keep).await;
        end(txn, result).await
    }

    async fn drop_spare_in(
        &self,
        txn: &DatabaseTransaction,
        keep: usize,
    ) -> Result<Step<SchemaName>, Error> {
        let db_err = |source| Error::Database {
            action: "dropping spare schemas",
            source,
        };
        let tables = self.spare_tables()?;
        if count(txn, &tables.table).await.map_err(db_err)? <= keep {
            return Ok(Step::Nothing);
        }
        let rows = txn
            .query_all_raw(statement(
                format!(
                    "SELECT s.schema_name FROM {} s \
                     WHERE NOT EXISTS (SELECT 1 FROM {} r WHERE r.schema_name = s.schema_name) \
                     ORDER BY s.created_at DESC, s.schema_name DESC FOR UPDATE OF s SKIP LOCKED",
                    tables.table,
                    self.config.registry().qualified_table(),
                ),
                [],
            ))
            .await
            .map_err(db_err)?;
        let mut newest = None;
        for row in &rows {
            let stored: String = row.try_get("", "schema_name").map_err(db_err)?;
            if let Some(spare) = self.spare_name(&stored) {
                newest = Some(spare);
                break;
            }
        }
        let Some(spare) = newest else {
            return Ok(Step::Nothing);
        };
        let spare_err = |source| Error::Spare {
            schema: spare.clone(),
            action: "dropping it",
            migration: None,
            source,
        };
        txn.execute_raw(statement(
            format!("DELETE FROM {} WHERE schema_name = $1", tables.table),
            [spare.as_str().into()],
        ))
        .await
        .map_err(spare_err)?;
        txn.execute_unprepared(&format!("DROP SCHEMA IF EXISTS {} CASCADE", spare.quoted()))
            .await
            .map_err(spare_err)?;
        Ok(Step::Done(spare))
    }
}

/// Spares recorded, whatever their state.
async fn count(txn: &DatabaseTransaction, table: &str) -> Result<usize, DbErr> {
    let n: i64 = txn
        .query_one_raw(statement(format!("SELECT count(*) AS n FROM {table}"), []))
        .await?
        .ok_or_else(|| DbErr::Custom("count(*) returned no row".to_owned()))?
        .try_get("", "n")?;
    Ok(usize::try_from(n).unwrap_or_default())
}

/// Commits a transaction that did its work, rolls back one that had
/// nothing to do or failed.
async fn end<T>(
    txn: DatabaseTransaction,
    result: Result<Step<T>, Error>,
) -> Result<Option<T>, Error> {
    match result {
        Ok(Step::Done(value)) => {
            txn.commit()
                .await
                .map(|()| Some(value))
                .map_err(|source| Error::Database {
                    action: "committing a change of the spare pool",
                    source,
                })
        }
        Ok(Step::Nothing) => {
            rollback(txn).await;
            Ok(None)
        }
        Err(err) => {
            rollback(txn).await;
            Err(err)
        }
    }
}

/// A failed rollback is only logged: the server discards the transaction
/// with its connection.
async fn rollback(txn: DatabaseTransaction) {
    if let Err(error) = txn.rollback().await {
        tracing::debug!(%error, "rolling back a spare pool transaction failed");
    }
}
