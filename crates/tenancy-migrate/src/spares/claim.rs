//! Claiming a spare for a new tenant, inside `create`'s transaction.

use sea_orm::{ConnectionTrait, DatabaseTransaction, TransactionTrait};
use sea_orm_migration::MigratorTrait;
use tenancy_core::sqlstate::DUPLICATE_SCHEMA;
use tenancy_core::{SchemaName, TenantId};

use super::sql::statement;
use crate::migrator::migration_names;
use crate::pg::has_sqlstate;
use crate::tenant_txn::{has_outside_transaction, qualified_ledger};
use crate::{Error, TenantFleet};

/// Spares looked at before falling back to building the schema: a spare is
/// passed over only when its row was written by hand or a newer build
/// migrated it, so a handful is plenty.
const CANDIDATES: usize = 4;

impl<M: MigratorTrait> TenantFleet<M> {
    /// With the pool enabled, takes a ready spare and renames it to
    /// `schema`, inside `txn` (the transaction that has just written the
    /// tenant's registry row): if anything later fails, the rename and the
    /// removal of the spare's row roll back with the registry row, and the
    /// spare is a spare again. `None` when the pool is off or empty: the
    /// caller creates the schema.
    ///
    /// Two concurrent sign-ups never get the same spare: each locks the row
    /// it takes and skips rows others have locked. The caller then takes
    /// the tenant's lock (keyed by the schema's OID, which the rename
    /// keeps) and applies whatever the spare lacks.
    pub(crate) async fn claim_spare(
        &self,
        txn: &DatabaseTransaction,
        id: &TenantId,
        schema: &SchemaName,
    ) -> Result<Option<SchemaName>, Error> {
        if !self.config.spare_pool() || has_outside_transaction::<M>() {
            return Ok(None);
        }
        let tenant_err = |source| Error::Tenant {
            tenant: id.clone(),
            source,
        };
        let tables = self.spare_tables()?;
        let next = self.next_spare_sql(&tables);
        let mut rejected: Vec<String> = Vec::new();
        for _ in 0..CANDIDATES {
            let Some(row) = txn
                .query_one_raw(statement(next.clone(), [rejected.clone().into()]))
                .await
                .map_err(tenant_err)?
            else {
                return Ok(None);
            };
            let stored: String = row.try_get("", "schema_name").map_err(tenant_err)?;
            let Some(spare) = self.spare_name(&stored) else {
                tracing::error!(
                    spare = %stored,
                    "the spare pool lists a schema that is not named as a spare; passed over \
                     (remove the row from {} by hand)",
                    tables.table
                );
                rejected.push(stored);
                continue;
            };
            if !self.spare_is_claimable(txn, &spare).await? {
                rejected.push(stored);
                continue;
            }
            txn.execute_raw(statement(
                format!("DELETE FROM {} WHERE schema_name = $1", tables.table),
                [spare.as_str().into()],
            ))
            .await
            .map_err(tenant_err)?;
            txn.execute_unprepared(&format!(
                "ALTER SCHEMA {} RENAME TO {}",
                spare.quoted(),
                schema.quoted()
            ))
            .await
            .map_err(|source| {
                if has_sqlstate(&source, DUPLICATE_SCHEMA) {
                    Error::SchemaExists {
                        tenant: id.clone(),
                        schema: schema.clone(),
                    }
                } else {
                    tenant_err(source)
                }
            })?;
            return Ok(Some(spare));
        }
        Ok(None)
    }

    /// Whether every migration in the spare's ledger is one of `M`'s: a
    /// spare made by a newer build (during a rolling deploy) would make a
    /// tenant this build refuses to migrate. Read in a savepoint, so a
    /// ledger missing from a spare tampered with fails only the check.
    async fn spare_is_claimable(
        &self,
        txn: &DatabaseTransaction,
        spare: &SchemaName,
    ) -> Result<bool, Error> {
        let known = migration_names::<M>()?;
        let sql = match qualified_ledger::<M>(spare) {
            Ok(ledger) => format!("SELECT version FROM {ledger}"),
            Err(err) => {
                tracing::warn!(%spare, error = %err, "spare passed over");
                return Ok(false);
            }
        };
        let savepoint = txn.begin().await.map_err(|source| Error::Spare {
            schema: spare.clone(),
            action: "reading its migrations",
            migration: None,
            source,
        })?;
        let read = savepoint.query_all_raw(statement(sql, [])).await;
        let versions: Result<Vec<String>, _> = read.and_then(|rows| {
            rows.iter()
                .map(|row| row.try_get::<String>("", "version"))
                .collect()
        });
        let claimable = match versions {
            Ok(versions) => {
                let unknown: Vec<&String> = versions
                    .iter()
                    .filter(|v| !known.iter().any(|k| k == *v))
                    .collect();
                if !unknown.is_empty() {
                    tracing::warn!(
                        %spare,
                        ?unknown,
                        "spare passed over: migrated by a build that knows more migrations"
                    );
                }
                unknown.is_empty()
            }
            Err(error) => {
                tracing::warn!(%spare, %error, "spare passed over: its migrations cannot be read");
                false
            }
        };
        // Released either way: a failed read must not abort the sign-up.
        if claimable {
            savepoint.commit().await
        } else {
            savepoint.rollback().await
        }
        .map_err(|source| Error::Spare {
            schema: spare.clone(),
            action: "reading its migrations",
            migration: None,
            source,
        })?;
        Ok(claimable)
    }
}
