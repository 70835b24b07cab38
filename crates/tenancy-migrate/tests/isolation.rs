#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// `MigrationTrait` (async_trait) spells its argument `&SchemaManager`.
#![allow(elided_lifetimes_in_paths)]
//! Every library transaction that must see another session's commit after
//! taking a lock, on databases whose default isolation level is `repeatable
//! read` or `serializable`, with two runners at once.
//!
//! Each test interleaves the two runners deterministically: a transaction of
//! the test holds a lock the first runner needs after taking the library's
//! lock (the `gate` table, or a table of the tenant), and lets go only once
//! the second runner is seen waiting in `pg_locks`. The second runner has
//! then started its transaction before the first commits, which is what made
//! it miss the first runner's commit.

mod support_migrate;

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};
use sea_orm_migration::{MigrationName, MigrationTrait, MigratorTrait, SchemaManager};
use tenancy_core::TenantStatus;
use tenancy_migrate::{
    DropConfirmation, DropMode, DropOutcome, Error, MigrateAll, NewTenant, TenantFleet,
};
use tenancy_testing::TestDatabase;

use support_migrate::*;

const GATED: &str = "m0002_gated_orders";
const GATED_SHARED: &str = "s0001_gated_invoices";

/// Waits on `public.gate` (held by the test), then creates a table: run
/// twice in one schema, it fails with `relation "orders" already exists`.
struct GatedOrders;
impl MigrationName for GatedOrders {
    fn name(&self) -> &str {
        GATED
    }
}
#[async_trait::async_trait]
impl MigrationTrait for GatedOrders {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("SELECT count(*) FROM public.gate; CREATE TABLE orders (id int)")
            .await
            .map(drop)
    }
    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("SELECT count(*) FROM public.gate; DROP TABLE orders")
            .await
            .map(drop)
    }
}

/// The same for the shared schema.
struct GatedInvoices;
impl MigrationName for GatedInvoices {
    fn name(&self) -> &str {
        GATED_SHARED
    }
}
#[async_trait::async_trait]
impl MigrationTrait for GatedInvoices {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("SELECT count(*) FROM public.gate; CREATE TABLE invoices (id int)")
            .await
            .map(drop)
    }
}

/// Migration 1 only.
struct V1;
impl MigratorTrait for V1 {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateProjects)]
    }
}

/// Migration 1, then the gated one.
struct Gated;
impl MigratorTrait for Gated {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateProjects), Box::new(GatedOrders)]
    }
}

struct SharedGated;
impl MigratorTrait for SharedGated {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(GatedInvoices)]
    }
}

const LEVELS: [&str; 2] = ["repeatable read", "serializable"];

/// A fresh database whose default isolation level is `level`, with a pool
/// opened after the setting (it applies to new sessions only).
async fn database(level: &str) -> Result<(TestDatabase, DatabaseConnection), BoxError> {
    let db = TestDatabase::create().await?;
    let admin = db.connect().await?;
    admin
        .execute_unprepared(&format!(
            "ALTER DATABASE \"{}\" SET default_transaction_isolation = '{level}'",
            db.name()
        ))
        .await?;
    admin.close().await?;
    let conn = db.connect().await?;
    let row = query_all(
        &conn,
        "SELECT current_setting('transaction_isolation') AS level",
        vec![],
    )
    .await?;
    assert_eq!(
        row[0].try_get::<String>("", "level")?,
        level,
        "the setting took"
    );
    conn.execute_unprepared("CREATE TABLE public.gate (id int)")
        .await?;
    Ok((db, conn))
}

/// Closes the test's pools, then drops its database.
async fn close_all(
    db: TestDatabase,
    pools: impl IntoIterator<Item = DatabaseConnection>,
) -> TestResult {
    for pool in pools {
        pool.close().await?;
    }
    db.close().await?;
    Ok(())
}

/// Opens a transaction of the test holding `lock_sql`'s lock.
async fn hold(
    db: &TestDatabase,
    lock_sql: &str,
) -> Result<(DatabaseConnection, DatabaseTransaction), BoxError> {
    let conn = db.connect().await?;
    let txn = conn.begin().await?;
    txn.execute_unprepared(lock_sql).await?;
    Ok((conn, txn))
}

const HOLD_GATE: &str = "LOCK TABLE public.gate IN ACCESS EXCLUSIVE MODE";

/// Waits (bounded) until at least `count` lock requests of `locktype` wait
/// in this database.
async fn wait_for_waiters(conn: &DatabaseConnection, locktype: &str, count: i64) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = query_all(
            conn,
            "SELECT count(*) AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE NOT l.granted AND l.locktype = $1 AND a.datname = current_database()",
            vec![locktype.into()],
        )
        .await?;
        if rows[0].try_get::<i64>("", "n")? >= count {
            return Ok(());
        }
        assert!(
            Instant::now() < deadline,
            "never saw {count} waiting {locktype} lock requests"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two fleets, as two replicas: each its own pool.
async fn two_fleets<M: MigratorTrait>(
    db: &TestDatabase,
) -> Result<(TenantFleet<M>, TenantFleet<M>), BoxError> {
    Ok((
        TenantFleet::<M>::new(db.connect().await?),
        TenantFleet::<M>::new(db.connect().await?),
    ))
}

#[tokio::test]
async fn two_migrate_all_runs_apply_each_migration_once_whatever_the_default_isolation()
-> TestResult {
    const TENANTS: [&str; 4] = ["t1", "t2", "t3", "t4"];
    for level in LEVELS {
        let (db, conn) = database(level).await?;
        let v1 = TenantFleet::<V1>::new(conn.clone());
        v1.install().await?;
        for raw in TENANTS {
            v1.create(&id(raw), NewTenant::new()).await?;
        }
        let (a, b) = two_fleets::<Gated>(&db).await?;
        let (gate_conn, gate) = hold(&db, HOLD_GATE).await?;
        let options = || MigrateAll::new().concurrency(TENANTS.len());
        let runs = async { tokio::join!(a.migrate_all(options()), b.migrate_all(options())) };
        let release = async {
            // One runner per tenant holds its lock and waits at the gate; the
            // other waits for the tenant's lock.
            wait_for_waiters(&conn, "advisory", 4).await?;
            wait_for_waiters(&conn, "relation", 4).await?;
            gate.commit().await?;
            TestResult::Ok(())
        };
        let ((ra, rb), released) = tokio::join!(runs, release);
        released?;
        let (ra, rb) = (ra?, rb?);
        assert!(ra.is_success(), "{level}: {ra}");
        assert!(rb.is_success(), "{level}: {rb}");
        for raw in TENANTS {
            let applied: Vec<String> = [&ra, &rb]
                .iter()
                .flat_map(|r| r.tenant(&id(raw)).unwrap().applied.clone())
                .collect();
            assert_eq!(applied, [GATED], "{level}: {raw} applied once");
            assert_eq!(
                versions(&conn, schema(raw).as_str()).await?,
                Some(strings(&[M1, GATED])),
                "{level}: {raw}"
            );
        }

        // Rolling back from two runners at once: each reverts what is
        // applied when it holds the lock, never a migration twice.
        let (gate_txn_conn, gate) = hold(&db, HOLD_GATE).await?;
        let runs =
            async { tokio::join!(a.rollback_all(1, options()), b.rollback_all(1, options())) };
        let release = async {
            wait_for_waiters(&conn, "advisory", 4).await?;
            wait_for_waiters(&conn, "relation", 4).await?;
            gate.commit().await?;
            TestResult::Ok(())
        };
        let ((ra, rb), released) = tokio::join!(runs, release);
        released?;
        let (ra, rb) = (ra?, rb?);
        assert!(ra.is_success(), "{level}: {ra}");
        assert!(rb.is_success(), "{level}: {rb}");
        for raw in TENANTS {
            let mut reverted: Vec<String> = [&ra, &rb]
                .iter()
                .flat_map(|r| r.tenant(&id(raw)).unwrap().applied.clone())
                .collect();
            reverted.sort();
            assert_eq!(reverted, [M1, GATED], "{level}: {raw} each reverted once");
            assert_eq!(versions(&conn, schema(raw).as_str()).await?, Some(vec![]));
        }
        close_all(
            db,
            [
                gate_conn,
                gate_txn_conn,
                a.connection().clone(),
                b.connection().clone(),
                conn,
            ],
        )
        .await?;
    }
    Ok(())
}

#[tokio::test]
async fn two_installs_create_the_registry_once_whatever_the_default_isolation() -> TestResult {
    for level in LEVELS {
        let (db, conn) = database(level).await?;
        // The versions table exists already (empty), so the first installer
        // can be held reading it while the second waits for the lock.
        conn.execute_unprepared(
            "CREATE TABLE public.tenancy_registry_migrations \
             (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await?;
        let (a, b) = two_fleets::<V1>(&db).await?;
        let (gate_conn, gate) = hold(
            &db,
            "LOCK TABLE public.tenancy_registry_migrations IN ACCESS EXCLUSIVE MODE",
        )
        .await?;
        let runs = async { tokio::join!(a.install(), b.install()) };
        let release = async {
            wait_for_waiters(&conn, "advisory", 1).await?;
            wait_for_waiters(&conn, "relation", 1).await?;
            gate.commit().await?;
            TestResult::Ok(())
        };
        let ((ra, rb), released) = tokio::join!(runs, release);
        released?;
        ra.map_err(|e| format!("{level}: {e}"))?;
        rb.map_err(|e| format!("{level}: {e}"))?;
        let rows = query_all(
            &conn,
            "SELECT version FROM public.tenancy_registry_migrations",
            vec![],
        )
        .await?;
        // One row per registry migration (registry, spare pool, placement,
        // audit table): each once.
        assert_eq!(rows.len(), 4, "{level}");
        close_all(
            db,
            [
                gate_conn,
                a.connection().clone(),
                b.connection().clone(),
                conn,
            ],
        )
        .await?;
    }
    Ok(())
}

#[tokio::test]
async fn two_shared_migrations_apply_once_whatever_the_default_isolation() -> TestResult {
    for level in LEVELS {
        let (db, conn) = database(level).await?;
        let (a, b) = two_fleets::<V1>(&db).await?;
        let (gate_conn, gate) = hold(&db, HOLD_GATE).await?;
        let runs = async {
            tokio::join!(
                a.migrate_shared::<SharedGated>(),
                b.migrate_shared::<SharedGated>()
            )
        };
        let release = async {
            wait_for_waiters(&conn, "advisory", 1).await?;
            wait_for_waiters(&conn, "relation", 1).await?;
            gate.commit().await?;
            TestResult::Ok(())
        };
        let ((ra, rb), released) = tokio::join!(runs, release);
        released?;
        let mut applied = ra.map_err(|e| format!("{level}: {e}"))?;
        applied.extend(rb.map_err(|e| format!("{level}: {e}"))?);
        assert_eq!(applied, [GATED_SHARED], "{level}: applied once");
        assert_eq!(
            versions(&conn, "public").await?,
            Some(strings(&[GATED_SHARED]))
        );
        close_all(
            db,
            [
                gate_conn,
                a.connection().clone(),
                b.connection().clone(),
                conn,
            ],
        )
        .await?;
    }
    Ok(())
}

#[tokio::test]
async fn two_creates_of_one_tenant_have_one_winner_whatever_the_default_isolation() -> TestResult {
    for level in LEVELS {
        let (db, conn) = database(level).await?;
        TenantFleet::<V1>::new(conn.clone()).install().await?;
        let (a, b) = two_fleets::<Gated>(&db).await?;
        let (gate_conn, gate) = hold(&db, HOLD_GATE).await?;
        let acme = id("acme");
        let runs = async {
            tokio::join!(
                a.create(&acme, NewTenant::new()),
                b.create(&acme, NewTenant::new())
            )
        };
        let release = async {
            // One creator waits at the gate, the other for its registry row.
            wait_for_waiters(&conn, "relation", 1).await?;
            wait_for_waiters(&conn, "transactionid", 1).await?;
            gate.commit().await?;
            TestResult::Ok(())
        };
        let ((ra, rb), released) = tokio::join!(runs, release);
        released?;
        let (won, lost) = if ra.is_ok() { (ra, rb) } else { (rb, ra) };
        won.map_err(|e| format!("{level}: {e}"))?;
        assert!(
            matches!(lost, Err(Error::TenantExists { .. })),
            "{level}: {lost:?}"
        );
        assert_eq!(
            versions(&conn, schema("acme").as_str()).await?,
            Some(strings(&[M1, GATED]))
        );
        close_all(
            db,
            [
                gate_conn,
                a.connection().clone(),
                b.connection().clone(),
                conn,
            ],
        )
        .await?;
    }
    Ok(())
}

#[tokio::test]
async fn two_hard_drops_of_one_tenant_have_one_winner_whatever_the_default_isolation() -> TestResult
{
    for level in LEVELS {
        let (db, conn) = database(level).await?;
        let fleet = TenantFleet::<V1>::new(conn.clone());
        fleet.install().await?;
        let acme = id("acme");
        fleet.create(&acme, NewTenant::new()).await?;
        let (a, b) = two_fleets::<V1>(&db).await?;
        // The first dropper holds the tenant's lock and waits to drop its
        // table; the second has read the row and waits for the lock.
        let (gate_conn, gate) =
            hold(&db, "LOCK TABLE tenant_acme.projects IN ACCESS SHARE MODE").await?;
        let mode = || DropMode::Hard(DropConfirmation::new("acme"));
        let runs =
            async { tokio::join!(a.drop_tenant(&acme, mode()), b.drop_tenant(&acme, mode())) };
        let release = async {
            wait_for_waiters(&conn, "relation", 1).await?;
            wait_for_waiters(&conn, "advisory", 1).await?;
            gate.commit().await?;
            TestResult::Ok(())
        };
        let ((ra, rb), released) = tokio::join!(runs, release);
        released?;
        let (won, lost) = if ra.is_ok() { (ra, rb) } else { (rb, ra) };
        assert!(
            matches!(won, Ok(DropOutcome::Dropped(_))),
            "{level}: {won:?}"
        );
        assert!(
            matches!(lost, Err(Error::UnknownTenant { .. })),
            "{level}: {lost:?}"
        );
        assert_eq!(fleet.get(&acme).await?, None);
        close_all(
            db,
            [
                gate_conn,
                a.connection().clone(),
                b.connection().clone(),
                conn,
            ],
        )
        .await?;
    }
    Ok(())
}

#[tokio::test]
async fn status_changes_wait_for_a_concurrent_registry_write_whatever_the_default_isolation()
-> TestResult {
    for level in LEVELS {
        let (db, conn) = database(level).await?;
        let fleet = TenantFleet::<V1>::new(conn.clone());
        fleet.install().await?;
        let acme = id("acme");
        fleet.create(&acme, NewTenant::new()).await?;
        // Another session changes the row (as a rename would) and has not
        // committed yet when the suspension starts.
        let (gate_conn, gate) = hold(
            &db,
            "UPDATE public.tenants SET display_name = 'Acme Corp' WHERE tenant_id = 'acme'",
        )
        .await?;
        let run = fleet.suspend(&acme);
        let release = async {
            wait_for_waiters(&gate_conn, "transactionid", 1).await?;
            gate.commit().await?;
            TestResult::Ok(())
        };
        let (suspended, released) = tokio::join!(run, release);
        released?;
        let record = suspended.map_err(|e| format!("{level}: {e}"))?;
        assert_eq!(record.status, TenantStatus::Suspended, "{level}");
        assert_eq!(
            record.display_name, "Acme Corp",
            "{level}: the other write is kept"
        );
        close_all(db, [gate_conn, conn]).await?;
    }
    Ok(())
}
