//! Keeping spares current (`migrate_all`) and reading their state
//! (`spare_status`, `health`).

use std::collections::BTreeSet;
use std::time::Instant;

use futures_util::{StreamExt, stream};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr};
use sea_orm_migration::MigratorTrait;
use tenancy_core::SchemaName;
use tenancy_core::sqlstate::UNDEFINED_TABLE;

use super::sql::statement;
use super::{SpareMigrations, SpareReport, SpareStatus};
use crate::migrator::migration_names;
use crate::pg::{begin_read_committed, has_sqlstate};
use crate::report::Outcome;
use crate::tenant_txn::{apply_pending, prepare_for_migration, qualified_ledger};
use crate::{Error, TenantFleet};

impl<M: MigratorTrait> TenantFleet<M> {
    /// The pool's rows, or none when the pool's table is not installed
    /// (a registry installed by an older version, before `install` ran
    /// again): fleet runs and health checks then have no spares to look at.
    pub(super) async fn spare_rows(&self) -> Result<Vec<String>, DbErr> {
        let tables = self
            .spare_tables()
            .map_err(|e| DbErr::Custom(e.to_string()))?;
        let installed: bool = self
            .conn
            .query_one_raw(statement(
                "SELECT to_regclass($1) IS NOT NULL AS installed".to_owned(),
                [tables.table.as_str().into()],
            ))
            .await?
            .map(|row| row.try_get("", "installed"))
            .transpose()?
            .unwrap_or(false);
        if !installed {
            return Ok(Vec::new());
        }
        self.conn
            .query_all_raw(statement(
                format!("SELECT schema_name FROM {} ORDER BY 1", tables.table),
                [],
            ))
            .await?
            .iter()
            .map(|row| row.try_get("", "schema_name"))
            .collect()
    }

    /// Brings every spare to the latest version, `concurrency` at a time,
    /// each in one transaction holding its row (so a claim skips it, and it
    /// skips a spare being claimed or migrated by another runner) and its
    /// schema's migration lock.
    pub(crate) async fn migrate_spares(
        &self,
        concurrency: usize,
    ) -> Result<Vec<SpareReport>, Error> {
        let rows = self.spare_rows().await.map_err(|source| Error::Database {
            action: "listing spare schemas",
            source,
        })?;
        let spares: Vec<SchemaName> = rows.iter().filter_map(|s| self.spare_name(s)).collect();
        let mut reports: Vec<SpareReport> = stream::iter(spares)
            .map(|spare| self.migrate_spare(spare))
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        reports.sort_by(|a, b| a.schema.cmp(&b.schema));
        Ok(reports)
    }

    async fn migrate_spare(&self, spare: SchemaName) -> SpareReport {
        let started = Instant::now();
        let result = match begin_read_committed(&self.conn, None).await {
            Ok(txn) => {
                let result = self.migrate_spare_in(&txn, &spare).await;
                match result {
                    Ok(Some(applied)) => txn
                        .commit()
                        .await
                        .map(|()| Some(applied))
                        .map_err(|e| spare_error(&spare, None, e)),
                    other => {
                        if let Err(error) = txn.rollback().await {
                            tracing::debug!(%error, "rolling back a spare's migration failed");
                        }
                        other
                    }
                }
            }
            Err(source) => Err(spare_error(&spare, None, source)),
        };
        let (outcome, applied, error) = match result {
            Ok(Some(applied)) => (Outcome::Succeeded, applied, None),
            Ok(None) => (Outcome::Skipped, Vec::new(), None),
            Err(error) => {
                tracing::error!(spare = %spare, %error, "{error}");
                (Outcome::Failed, Vec::new(), Some(error))
            }
        };
        SpareReport {
            schema: spare,
            outcome,
            applied,
            duration: started.elapsed(),
            error,
        }
    }

    /// `None` when the spare is held by another transaction or gone.
    async fn migrate_spare_in(
        &self,
        txn: &DatabaseTransaction,
        spare: &SchemaName,
    ) -> Result<Option<Vec<String>>, Error> {
        let tables = self.spare_tables()?;
        let held = txn
            .query_one_raw(statement(
                format!(
                    "SELECT 1 AS held FROM {} WHERE schema_name = $1 FOR UPDATE SKIP LOCKED",
                    tables.table
                ),
                [spare.as_str().into()],
            ))
            .await
            .map_err(|e| spare_error(spare, None, e))?;
        if held.is_none() {
            return Ok(None);
        }
        prepare_for_migration::<M>(txn, spare, self.config.shared_schemas())
            .await
            .map_err(|e| spare_error(spare, None, e))?;
        apply_pending::<M>(txn)
            .await
            .map(Some)
            .map_err(|f| spare_error(spare, f.migration, f.source))
    }

    /// Every spare's state: its schema exists, its ledger against `M`.
    pub(crate) async fn read_spare_status(&self) -> Result<SpareStatus, Error> {
        let db_err = |source| Error::Database {
            action: "reading the spare pool",
            source,
        };
        let known = migration_names::<M>()?;
        let rows = self.spare_rows().await.map_err(db_err)?;
        let mut status = SpareStatus::default();
        let mut named = Vec::new();
        for stored in rows {
            match self.spare_name(&stored) {
                Some(spare) => named.push(spare),
                None => status.unusable.push(stored),
            }
        }
        let names: Vec<String> = named.iter().map(ToString::to_string).collect();
        let ledger_table = M::migration_table_name().to_string();
        let present: BTreeSet<(String, bool)> = self
            .conn
            .query_all_raw(statement(
                "SELECT n.nspname::text AS schema, c.oid IS NOT NULL AS has_ledger \
                 FROM pg_catalog.pg_namespace n \
                 LEFT JOIN pg_catalog.pg_class c \
                   ON c.relnamespace = n.oid AND c.relname = $2::name AND c.relkind = 'r' \
                 WHERE n.nspname = ANY($1)"
                    .to_owned(),
                [names.into(), ledger_table.into()],
            ))
            .await
            .map_err(db_err)?
            .iter()
            .map(|row| Ok((row.try_get("", "schema")?, row.try_get("", "has_ledger")?)))
            .collect::<Result<_, DbErr>>()
            .map_err(db_err)?;
        for spare in named {
            let applied: Vec<String> = if present.contains(&(spare.to_string(), true)) {
                let ledger = qualified_ledger::<M>(&spare).map_err(db_err)?;
                let read = self
                    .conn
                    .query_all_raw(statement(format!("SELECT version FROM {ledger}"), []))
                    .await;
                match read {
                    Ok(rows) => rows
                        .iter()
                        .map(|row| row.try_get("", "version"))
                        .collect::<Result<_, DbErr>>()
                        .map_err(db_err)?,
                    // Claimed (renamed) since the catalog was read: no
                    // longer a spare.
                    Err(e) if has_sqlstate(&e, UNDEFINED_TABLE) => continue,
                    Err(e) => return Err(db_err(e)),
                }
            } else if present.contains(&(spare.to_string(), false)) {
                Vec::new()
            } else {
                status.missing.push(spare);
                continue;
            };
            let pending: Vec<String> = known
                .iter()
                .filter(|m| !applied.contains(m))
                .cloned()
                .collect();
            let unknown: Vec<String> = applied
                .iter()
                .filter(|v| !known.contains(v))
                .cloned()
                .collect();
            if !unknown.is_empty() {
                status.ahead.push(SpareMigrations {
                    schema: spare,
                    migrations: unknown,
                });
            } else if !pending.is_empty() {
                status.behind.push(SpareMigrations {
                    schema: spare,
                    migrations: pending,
                });
            } else {
                status.ready.push(spare);
            }
        }
        Ok(status)
    }
}

fn spare_error(spare: &SchemaName, migration: Option<String>, source: DbErr) -> Error {
    Error::Spare {
        schema: spare.clone(),
        action: "migrating it",
        migration,
        source,
    }
}
