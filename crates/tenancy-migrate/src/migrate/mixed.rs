//! Migrating a tenant whose migrator has migrations that run outside a
//! transaction: the pending ones in order, each maximal run of transactional
//! migrations as one transaction, each other migration on its own, all on
//! the tenant's locked [`TenantSession`].

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};
use sea_orm_migration::{MigratorTrait, SchemaManager};
use tenancy_core::{SchemaName, SharedSchema, TenantId};

use super::session::TenantSession;
use super::tenant::finish;
use crate::report::Direction;
use crate::tenant_txn::{apply_pending_batch, begin_for_migration, record_applied};
use crate::{Error, TenantRecord};

/// The fleet's pieces a mixed run needs.
pub(crate) struct Target<'a> {
    pub(crate) conn: &'a sea_orm::DatabaseConnection,
    pub(crate) tenant: &'a TenantId,
    pub(crate) schema: &'a SchemaName,
    pub(crate) shared: &'a [SharedSchema],
}

impl<'a> Target<'a> {
    pub(crate) fn new(
        conn: &'a sea_orm::DatabaseConnection,
        record: &'a TenantRecord,
        shared: &'a [SharedSchema],
    ) -> Self {
        Self {
            conn,
            tenant: &record.id,
            schema: &record.schema,
            shared,
        }
    }
}

/// Applies `M`'s pending migrations to the tenant, those that must run
/// outside a transaction included, and returns the names applied.
///
/// `already` are migrations applied (and committed) for this tenant earlier
/// in the same call, by the caller: they are reported as kept should this
/// run fail.
///
/// # Errors
/// [`Error::SchemaMissing`] or [`Error::Tenant`] when the session cannot be
/// opened or locked; [`Error::Migration`] when the first transaction fails
/// and nothing of the call was kept; [`Error::OutsideTransactionFailed`]
/// when a migration outside a transaction fails; [`Error::PartlyMigrated`]
/// otherwise.
pub(crate) async fn run_mixed<M: MigratorTrait>(
    target: &Target<'_>,
    already: Vec<String>,
) -> Result<Vec<String>, Error> {
    let session = TenantSession::open(target.conn, target.schema, target.shared)
        .await
        .map_err(|source| super::tenant::open_error_for(target.tenant, target.schema, source))?;
    let mut applied = already;
    let result = run_locked::<M>(target, &session, &mut applied).await;
    if result.is_ok() {
        session.close().await;
    } else {
        session.abandon().await;
    }
    let Err(failure) = result else {
        return Ok(applied);
    };
    let (tenant, schema) = (target.tenant.clone(), target.schema.clone());
    Err(match failure {
        Failed::InTransaction { migration, source } if applied.is_empty() => Error::Migration {
            tenant,
            schema,
            migration,
            source,
        },
        Failed::InTransaction { migration, source } => Error::PartlyMigrated {
            tenant,
            schema,
            migration,
            applied,
            source: Box::new(source),
        },
        Failed::Outside { migration, source } => Error::OutsideTransactionFailed {
            tenant,
            schema,
            migration,
            applied,
            source: Box::new(source),
        },
    })
}

/// A failed step of a mixed run.
enum Failed {
    /// A transaction, rolled back; the migration when known.
    InTransaction {
        migration: Option<String>,
        source: DbErr,
    },
    /// A migration outside a transaction, unrecorded.
    Outside { migration: String, source: DbErr },
}

/// The run itself, with the lock held; `applied` grows with every commit.
async fn run_locked<M: MigratorTrait>(
    target: &Target<'_>,
    session: &TenantSession,
    applied: &mut Vec<String>,
) -> Result<(), Failed> {
    let in_txn = |migration, source| Failed::InTransaction {
        migration,
        source: session.explain(source),
    };
    loop {
        // A transaction for the transactional migrations up to the next
        // one outside: it re-reads the ledger under the lock (READ
        // COMMITTED), so what another run committed before is skipped.
        let txn = begin_for_migration::<M>(session.conn(), target.schema, target.shared)
            .await
            .map_err(|e| in_txn(None, e))?;
        let batch = apply_pending_batch::<M>(&txn).await;
        let next_outside = batch.as_ref().ok().and_then(|b| b.next_outside.clone());
        let names = finish::<M>(txn, batch.map(|b| b.applied), Direction::Up)
            .await
            .map_err(|(migration, source)| in_txn(migration, source))?;
        applied.extend(names);
        let Some(name) = next_outside else {
            return Ok(());
        };
        run_outside::<M>(target, session, &name)
            .await
            .map_err(|source| Failed::Outside {
                migration: name.clone(),
                source: session.explain(source),
            })?;
        applied.push(name);
    }
}

/// Runs one migration outside a transaction, checks that it left no
/// invalid index, and records it: only after all of that succeeded, so a
/// migration that failed or was interrupted is run again next time.
async fn run_outside<M: MigratorTrait>(
    target: &Target<'_>,
    session: &TenantSession,
    name: &str,
) -> Result<(), DbErr> {
    let migrations = M::migrations();
    let migration = migrations
        .iter()
        .find(|m| m.name() == name)
        .ok_or_else(|| DbErr::Custom(format!("{name} vanished from the migrator")))?;
    tracing::info!(
        migration = name,
        "applying a migration outside a transaction"
    );
    migration.up(&SchemaManager::new(session.conn())).await?;
    refuse_invalid_indexes(session, target.schema).await?;
    record_applied::<M>(session.conn(), &[name.to_owned()]).await
}

/// Fails when the tenant's schema holds an invalid index: what a failed or
/// interrupted `CREATE INDEX CONCURRENTLY` leaves behind, and what a re-run
/// with `IF NOT EXISTS` then skips, so that recording the migration would
/// mark a broken index as done.
async fn refuse_invalid_indexes(session: &TenantSession, schema: &SchemaName) -> Result<(), DbErr> {
    let rows = session
        .conn()
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT c.relname::text AS name FROM pg_catalog.pg_index i \
             JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND NOT i.indisvalid ORDER BY 1",
            [schema.as_str().into()],
        ))
        .await?;
    let invalid: Vec<String> = rows
        .iter()
        .map(|row| row.try_get::<String>("", "name"))
        .collect::<Result<_, _>>()?;
    if invalid.is_empty() {
        return Ok(());
    }
    Err(DbErr::Custom(format!(
        "after it the schema holds the INVALID index {} (left by an interrupted or failed CREATE INDEX \
         CONCURRENTLY, which CREATE INDEX CONCURRENTLY IF NOT EXISTS then skips), so it is not \
         recorded as applied: have the migration run DROP INDEX CONCURRENTLY IF EXISTS before \
         creating the index",
        invalid.join(", ")
    )))
}
