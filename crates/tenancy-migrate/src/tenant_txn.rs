//! One tenant's migration transaction: the unit every lifecycle call and every
//! fleet run is built from.

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, Statement, Value,
};
use sea_orm_migration::{MigrationTrait, MigratorTrait, SchemaManager};
use tenancy_core::sqlstate::LOCK_NOT_AVAILABLE;
use tenancy_core::{AdvisoryLock, SchemaName, SearchPath, SharedSchema, TableName};

use crate::pg::begin_read_committed;

/// The scoping, locking and existence check of [`begin_for_migration`], on a
/// transaction already open (creation runs `CREATE SCHEMA` first).
pub(crate) async fn lock_schema(
    txn: &DatabaseTransaction,
    schema: &SchemaName,
    shared: &[SharedSchema],
) -> Result<(), DbErr> {
    txn.execute_unprepared(&lock_statement(schema, shared))
        .await
        .map(drop)
}

/// Scoping, lock and existence check as one statement list.
fn lock_statement(schema: &SchemaName, shared: &[SharedSchema]) -> String {
    format!(
        "{}; SELECT pg_advisory_xact_lock({})",
        migration_path(schema, shared).set_local_statement(),
        tenant_lock_key(schema),
    )
}

/// [`lock_statement`] that does not wait: when another session holds the
/// tenant's lock, it fails with SQLSTATE 55P03 (`lock_not_available`),
/// before anything else of the list runs. A `DO` block, so that the
/// refusal stops the list in the same message; the key is SQL built from
/// a validated, quoted name, which cannot contain the block's delimiter.
fn try_lock_statement(schema: &SchemaName, shared: &[SharedSchema]) -> String {
    format!(
        "{}; DO $tenancy$ BEGIN IF NOT pg_try_advisory_xact_lock({}) THEN \
         RAISE EXCEPTION USING ERRCODE = '{LOCK_NOT_AVAILABLE}', \
         MESSAGE = 'another runner holds this tenant''s migration lock'; END IF; END $tenancy$",
        migration_path(schema, shared).set_local_statement(),
        tenant_lock_key(schema),
    )
}

/// Whether opening a tenant's migration transaction waits for its lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockWait {
    /// Wait for another runner to finish with the tenant.
    Wait,
    /// Fail at once with SQLSTATE 55P03 if another runner holds it.
    Try,
}

/// The search path a tenant's migrations run with: the tenant's schema
/// first, so unqualified DDL and the ledger land there, then `shared`.
pub(crate) fn migration_path(schema: &SchemaName, shared: &[SharedSchema]) -> SearchPath {
    SearchPath::with_shared(schema.clone(), shared.iter().cloned())
}

/// The SQL expression of the tenant's advisory lock key, for the
/// transaction-scoped lock above and the session-scoped one that
/// migrations outside a transaction hold (the two conflict across
/// sessions, and are re-entrant within one).
///
/// The schema's OID is unique while it exists, so it keys the lock; the
/// cast fails with SQLSTATE 3F000 when the schema is missing.
pub(crate) fn tenant_lock_key(schema: &SchemaName) -> String {
    AdvisoryLock::TenantMigration.key(schema)
}

/// Opens a SeaORM transaction for migrating one tenant's schema:
/// - pins the search path to the tenant's schema, then `shared`, so
///   sea-orm-migration's unqualified `seaql_migrations` table and every
///   unqualified `CREATE TABLE` land in the tenant's schema;
/// - takes the tenant's transaction-scoped advisory lock, so two runners
///   (two replicas booting) serialise per tenant and each migration applies
///   once; the lock ends with the transaction, also on a crash;
/// - fails with SQLSTATE 3F000 when the schema does not exist, which matters:
///   with the tenant's schema missing, unqualified DDL would go to `public`;
/// - makes sure `M`'s ledger exists, as [`apply_pending`] expects it;
/// - reads at `READ COMMITTED` whatever the database's default, so the
///   ledger read after the lock wait sees the previous holder's commit.
///
/// All in one message, one round trip after `BEGIN`.
pub(crate) async fn begin_for_migration<M: MigratorTrait>(
    conn: &DatabaseConnection,
    schema: &SchemaName,
    shared: &[SharedSchema],
) -> Result<DatabaseTransaction, DbErr> {
    begin_read_committed(conn, Some(&preparation::<M>(schema, shared)?)).await
}

/// [`begin_for_migration`], or with [`LockWait::Try`] a failure with
/// SQLSTATE 55P03 when another runner holds the tenant (nothing else of
/// the preparation ran; the caller's transaction is aborted).
pub(crate) async fn begin_for_migration_with<M: MigratorTrait>(
    conn: &DatabaseConnection,
    schema: &SchemaName,
    shared: &[SharedSchema],
    wait: LockWait,
) -> Result<DatabaseTransaction, DbErr> {
    match wait {
        LockWait::Wait => begin_for_migration::<M>(conn, schema, shared).await,
        LockWait::Try => {
            let sql = format!(
                "{}; {}",
                try_lock_statement(schema, shared),
                create_ledger::<M>()?
            );
            begin_read_committed(conn, Some(&sql)).await
        }
    }
}

/// [`lock_schema`], and in the same message `M`'s ledger created if missing,
/// as [`apply_pending`] expects it. `txn` must have been opened with
/// [`begin_read_committed`] when other sessions may migrate the schema.
pub(crate) async fn prepare_for_migration<M: MigratorTrait>(
    txn: &DatabaseTransaction,
    schema: &SchemaName,
    shared: &[SharedSchema],
) -> Result<(), DbErr> {
    txn.execute_unprepared(&preparation::<M>(schema, shared)?)
        .await
        .map(drop)
}

/// The statements of [`prepare_for_migration`].
fn preparation<M: MigratorTrait>(
    schema: &SchemaName,
    shared: &[SharedSchema],
) -> Result<String, DbErr> {
    Ok(format!(
        "{}; {}",
        lock_statement(schema, shared),
        create_ledger::<M>()?
    ))
}

/// A migration step that failed, and which migration it was when known.
#[derive(Debug)]
pub(crate) struct MigrationFailure {
    pub(crate) migration: Option<String>,
    pub(crate) source: DbErr,
}

impl From<DbErr> for MigrationFailure {
    fn from(source: DbErr) -> Self {
        Self {
            migration: None,
            source,
        }
    }
}

/// Applies every pending migration of `M` in `txn` and returns their names
/// in order.
///
/// This drives `M`'s migrations itself rather than through `M::up`, for
/// speed: `up` re-creates the migrations table four times and wraps every
/// migration in a savepoint, about a dozen round trips per tenant, while the
/// whole tenant is one transaction anyway (a failure rolls all of it back).
/// The ledger is sea-orm-migration's own table and format, so `M::status`,
/// `M::down` and the sea-orm-migration CLI read it as their own.
///
/// A pending migration that must run outside a transaction is refused with
/// a message that says so (PostgreSQL's own refusal of its `CONCURRENTLY`
/// statement would not say why), and the caller rolls `txn` back; callers
/// that can run one use [`apply_pending_batch`].
pub(crate) async fn apply_pending<M: MigratorTrait>(
    txn: &DatabaseTransaction,
) -> Result<Vec<String>, MigrationFailure> {
    let batch = apply_pending_batch::<M>(txn).await?;
    match batch.next_outside {
        None => Ok(batch.applied),
        Some(migration) => Err(MigrationFailure {
            source: DbErr::Custom(format!(
                "it runs outside a transaction (use_transaction() is Some(false)), which is \
                 not supported here; applied before it in this transaction: {}",
                if batch.applied.is_empty() {
                    "none".to_owned()
                } else {
                    batch.applied.join(", ")
                }
            )),
            migration: Some(migration),
        }),
    }
}

/// What [`apply_pending_batch`] did, and where it stopped.
#[derive(Debug)]
pub(crate) struct Batch {
    /// The migrations applied and recorded in the transaction, in order.
    pub(crate) applied: Vec<String>,
    /// The next pending migration, one that must run outside a
    /// transaction, when the batch stopped before it.
    pub(crate) next_outside: Option<String>,
}

/// Whether a migration asks to run outside a transaction: `Some(false)`
/// only; `None` means a transaction on PostgreSQL, as sea-orm-migration
/// itself decides.
pub(crate) fn runs_outside_transaction(migration: &dyn MigrationTrait) -> bool {
    migration.use_transaction() == Some(false)
}

/// Whether any of `M`'s migrations runs outside a transaction.
pub(crate) fn has_outside_transaction<M: MigratorTrait>() -> bool {
    M::migrations()
        .iter()
        .any(|m| runs_outside_transaction(m.as_ref()))
}

/// Applies `M`'s pending migrations in `txn`, in order, up to (not
/// including) the first one that must run outside a transaction, and
/// records them in the ledger; see [`apply_pending`].
pub(crate) async fn apply_pending_batch<M: MigratorTrait>(
    txn: &DatabaseTransaction,
) -> Result<Batch, MigrationFailure> {
    // The ledger exists: `prepare_for_migration` made sure of it.
    let applied = applied_versions::<M>(txn).await?;
    let migrations = M::migrations();
    let unknown: Vec<&String> = applied
        .iter()
        .filter(|version| !migrations.iter().any(|m| m.name() == version.as_str()))
        .collect();
    if let Some(first) = unknown.first() {
        // Named as the failing migration: it is the one the refusal is about,
        // not whichever migration happens to be pending.
        let all: Vec<&str> = unknown.iter().map(|v| v.as_str()).collect();
        return Err(MigrationFailure {
            migration: Some((*first).clone()),
            source: DbErr::Custom(format!(
                "applied but unknown to this migrator: {} (applied by a newer build, or \
                 renamed); refusing to migrate further: deploy the build that has them, or \
                 restore their names",
                all.join(", ")
            )),
        });
    }
    let manager = SchemaManager::new(txn);
    let mut done = Vec::new();
    let mut next_outside = None;
    for migration in migrations.iter().filter(|m| !applied.contains(m.name())) {
        if runs_outside_transaction(migration.as_ref()) {
            next_outside = Some(migration.name().to_owned());
            break;
        }
        migration
            .up(&manager)
            .await
            .map_err(|source| MigrationFailure {
                migration: Some(migration.name().to_owned()),
                source,
            })?;
        done.push(migration.name().to_owned());
    }
    record_applied::<M>(txn, &done).await?;
    Ok(Batch {
        applied: done,
        next_outside,
    })
}

/// The versions in `M`'s ledger, which must exist.
pub(crate) async fn applied_versions<M: MigratorTrait>(
    conn: &impl ConnectionTrait,
) -> Result<BTreeSet<String>, DbErr> {
    conn.query_all_raw(Statement::from_string(
        DbBackend::Postgres,
        format!("SELECT version FROM {}", ledger_table::<M>()?),
    ))
    .await?
    .iter()
    .map(|row| row.try_get::<String>("", "version"))
    .collect()
}

/// Records `names` as applied now in `M`'s ledger, in one statement.
pub(crate) async fn record_applied<M: MigratorTrait>(
    conn: &impl ConnectionTrait,
    names: &[String],
) -> Result<(), DbErr> {
    if names.is_empty() {
        return Ok(());
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let rows: Vec<String> = (1..=names.len())
        .map(|i| format!("(${i}, ${})", names.len() + 1))
        .collect();
    let mut values: Vec<Value> = names.iter().map(|name| name.as_str().into()).collect();
    values.push(now.into());
    conn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!(
            "INSERT INTO {} (version, applied_at) VALUES {}",
            ledger_table::<M>()?,
            rows.join(", ")
        ),
        values,
    ))
    .await
    .map(drop)
}

/// Creates `M`'s ledger if missing, as sea-orm-migration's `install` would.
pub(crate) fn create_ledger<M: MigratorTrait>() -> Result<String, DbErr> {
    Ok(format!(
        "CREATE TABLE IF NOT EXISTS {} \
         (version varchar NOT NULL PRIMARY KEY, applied_at bigint NOT NULL)",
        ledger_table::<M>()?
    ))
}

/// `M`'s migrations table in `schema`, for reading a schema that is not
/// on the search path (a spare, before it is claimed).
pub(crate) fn qualified_ledger<M: MigratorTrait>(schema: &SchemaName) -> Result<String, DbErr> {
    Ok(format!("{}.{}", schema.quoted(), ledger_table::<M>()?))
}

/// `M`'s migrations table, unqualified so that it resolves in the tenant's
/// schema, first on the search path.
fn ledger_table<M: MigratorTrait>() -> Result<String, DbErr> {
    TableName::new(&M::migration_table_name().to_string())
        .map(|name| name.quoted())
        .map_err(|e| DbErr::Custom(format!("unusable migrations table name: {e}")))
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
