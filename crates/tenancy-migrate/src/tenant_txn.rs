//! One tenant's migration transaction: the unit every lifecycle call and every
//! fleet run is built from.

use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};
use sea_orm_migration::MigratorTrait;
use tenancy_core::{SchemaName, SearchPath, SharedSchema};

/// High 32 bits of every advisory lock key this crate takes, so our locks
/// never collide with an application's own (ASCII "tnnc").
const LOCK_CLASS: i64 = 0x746e_6e63;

/// Opens a SeaORM transaction for work on one tenant's schema:
/// - pins the search path to the tenant's schema, then `shared`, so
///   sea-orm-migration's unqualified `seaql_migrations` table and every
///   unqualified `CREATE TABLE` land in the tenant's schema;
/// - takes the tenant's transaction-scoped advisory lock, so two runners
///   (two replicas booting) serialise per tenant and each migration applies
///   once; the lock ends with the transaction, also on a crash;
/// - fails with SQLSTATE 3F000 when the schema does not exist, which matters:
///   with the tenant's schema missing, unqualified DDL would go to `public`.
///
/// All three in one message, one round trip.
pub(crate) async fn begin_for_schema(
    conn: &DatabaseConnection,
    schema: &SchemaName,
    shared: &[SharedSchema],
) -> Result<DatabaseTransaction, DbErr> {
    let txn = conn.begin().await?;
    lock_schema(&txn, schema, shared).await?;
    Ok(txn)
}

/// The scoping, locking and existence check of [`begin_for_schema`], on a
/// transaction already open (creation runs `CREATE SCHEMA` first).
pub(crate) async fn lock_schema(
    txn: &DatabaseTransaction,
    schema: &SchemaName,
    shared: &[SharedSchema],
) -> Result<(), DbErr> {
    let path = SearchPath::with_shared(schema.clone(), shared.iter().cloned());
    // The schema's OID is unique while it exists, so it keys the lock; the
    // cast fails when the schema is missing.
    txn.execute_unprepared(&format!(
        "{}; SELECT pg_advisory_xact_lock(({LOCK_CLASS}::bigint << 32) | {}::oid::bigint)",
        path.set_local_statement(),
        schema.regnamespace(),
    ))
    .await
    .map(drop)
}

/// Applies every pending migration of `M` in `txn` (each one a savepoint of
/// it) and returns their names in order.
pub(crate) async fn apply_pending<M: MigratorTrait>(
    txn: &DatabaseTransaction,
) -> Result<Vec<String>, DbErr> {
    let pending: Vec<String> = M::get_pending_migrations(txn)
        .await?
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    if !pending.is_empty() {
        M::up(txn, None).await?;
    }
    Ok(pending)
}

/// Rolls back the last `steps` applied migrations of `M` in `txn` and
/// returns their names, newest first.
pub(crate) async fn revert_applied<M: MigratorTrait>(
    txn: &DatabaseTransaction,
    steps: u32,
) -> Result<Vec<String>, DbErr> {
    let applied: Vec<String> = M::get_applied_migrations(txn)
        .await?
        .iter()
        .rev()
        .take(steps as usize)
        .map(|m| m.name().to_owned())
        .collect();
    if !applied.is_empty() {
        M::down(txn, Some(steps)).await?;
    }
    Ok(applied)
}
