#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// `MigrationTrait` (async_trait) spells its argument `&SchemaManager`.
#![allow(elided_lifetimes_in_paths)]
//! Migrations that run outside a transaction (`use_transaction()` is
//! `Some(false)`): `CREATE INDEX CONCURRENTLY` on tenants holding data,
//! mixed with transactional migrations, two runners at once, a backend
//! terminated in the middle of the index build, the runner process killed
//! there, and per-tenant failures.

mod support_migrate;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};
use sea_orm_migration::{MigrationName, MigrationTrait, MigratorTrait, SchemaManager};
use tenancy_migrate::{Error, MigrateAll, NewTenant, TenantFleet, TenantReport};

use support_migrate::{
    BoxError, TestDatabase, TestResult, fleet_db, fleet_on, id, query_all, schema, strings,
    versions,
};

const ITEMS: &str = "n0001_create_items";
const INDEX: &str = "n0002_index_items_concurrently";
const NOTE: &str = "n0003_add_note";
const UNIQUE: &str = "n0002_unique_items_concurrently";
const NAIVE: &str = "n0002_index_items_if_not_exists";
const FAILING: &str = "n0002_fails_while_marked";
const INDEX_NAME: &str = "items_name_idx";

async fn exec(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    manager
        .get_connection()
        .execute_unprepared(sql)
        .await
        .map(drop)
}

/// A migration given by its statements, each sent on its own (PostgreSQL
/// runs a multi-statement message as one transaction, where `CONCURRENTLY`
/// is refused); `outside` makes it run outside a transaction.
macro_rules! migration {
    ($ty:ident, $name:expr, outside: $outside:expr, up: [$($up:expr),+]) => {
        struct $ty;
        impl MigrationName for $ty {
            fn name(&self) -> &str {
                $name
            }
        }
        #[async_trait::async_trait]
        impl MigrationTrait for $ty {
            async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                $(exec(manager, $up).await?;)+
                Ok(())
            }
            fn use_transaction(&self) -> Option<bool> {
                if $outside { Some(false) } else { None }
            }
        }
    };
}

migration!(CreateItems, ITEMS, outside: false,
    up: ["CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL)"]);
// Re-runnable: an INVALID index left by an interrupted run is dropped first.
migration!(IndexItems, INDEX, outside: true,
    up: ["DROP INDEX CONCURRENTLY IF EXISTS items_name_idx",
         "CREATE INDEX CONCURRENTLY items_name_idx ON items (name)"]);
migration!(AddNote, NOTE, outside: false,
    up: ["ALTER TABLE items ADD COLUMN note text"]);
migration!(UniqueItems, UNIQUE, outside: true,
    up: ["DROP INDEX CONCURRENTLY IF EXISTS items_name_idx",
         "CREATE UNIQUE INDEX CONCURRENTLY items_name_idx ON items (name)"]);
// Fails while `public.fail_outside` exists.
migration!(FailingOutside, FAILING, outside: true,
    up: ["SELECT 1 / (to_regclass('public.fail_outside') IS NULL)::int"]);
// Not re-runnable: after an interrupted run it would skip the INVALID index.
migration!(NaiveIndex, NAIVE, outside: true,
    up: ["CREATE INDEX CONCURRENTLY IF NOT EXISTS items_name_idx ON items (name)"]);

struct V1;
impl MigratorTrait for V1 {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateItems)]
    }
}

/// A transactional migration, one outside, another transactional one.
struct V3;
impl MigratorTrait for V3 {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateItems),
            Box::new(IndexItems),
            Box::new(AddNote),
        ]
    }
}

struct V3Unique;
impl MigratorTrait for V3Unique {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateItems),
            Box::new(UniqueItems),
            Box::new(AddNote),
        ]
    }
}

struct V3Failing;
impl MigratorTrait for V3Failing {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateItems),
            Box::new(FailingOutside),
            Box::new(AddNote),
        ]
    }
}

struct V2Naive;
impl MigratorTrait for V2Naive {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateItems), Box::new(NaiveIndex)]
    }
}

/// Tenants created at `V1`, each holding `rows` items.
async fn tenants_with_items(
    fleet: &TenantFleet<V1>,
    conn: &DatabaseConnection,
    raws: &[&str],
    rows: u32,
) -> TestResult {
    for raw in raws {
        fleet.create(&id(raw), NewTenant::new()).await?;
        conn.execute_unprepared(&format!(
            "INSERT INTO {}.items (name) SELECT 'item ' || g FROM generate_series(1, {rows}) g",
            schema(raw).quoted()
        ))
        .await?;
    }
    Ok(())
}

/// `Some(valid)` for the tenant's index, `None` when it does not exist.
async fn index_valid(conn: &DatabaseConnection, raw: &str) -> Result<Option<bool>, DbErr> {
    let rows = query_all(
        conn,
        "SELECT i.indisvalid AS valid FROM pg_catalog.pg_index i \
         JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relname = $2",
        vec![schema(raw).as_str().into(), INDEX_NAME.into()],
    )
    .await?;
    rows.first()
        .map(|r| r.try_get::<bool>("", "valid"))
        .transpose()
}

async fn count(conn: &DatabaseConnection, sql: &str) -> Result<i64, DbErr> {
    let rows = query_all(conn, sql, vec![]).await?;
    rows[0].try_get::<i64>("", "n")
}

/// Waits, up to a minute, until `sql` counts at least one row.
async fn wait_until(conn: &DatabaseConnection, sql: &str) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(conn, sql).await? == 0 {
        assert!(Instant::now() < deadline, "timed out waiting for: {sql}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Waits, up to a minute, until no advisory lock is held in the database:
/// a session ends a moment after its connection closes.
async fn wait_no_advisory_locks(conn: &DatabaseConnection) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(
        conn,
        "SELECT count(*) AS n FROM pg_catalog.pg_locks \
         WHERE locktype = 'advisory' AND database = \
         (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())",
    )
    .await?
        > 0
    {
        assert!(Instant::now() < deadline, "advisory locks left behind");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// The `CREATE INDEX CONCURRENTLY` in progress, waiting for a lock.
const INDEX_BUILD_WAITING: &str = "SELECT count(*) AS n FROM pg_catalog.pg_stat_activity \
     WHERE datname = current_database() AND query LIKE 'CREATE INDEX CONCURRENTLY%' \
     AND wait_event_type = 'Lock'";

/// Holds a row lock on the tenant's `items`: an index build on it waits for
/// this transaction, with its INVALID index already in the catalog.
async fn gate(conn: &DatabaseConnection, raw: &str) -> Result<DatabaseTransaction, DbErr> {
    let txn = conn.begin().await?;
    txn.execute_unprepared(&format!(
        "INSERT INTO {}.items (name) VALUES ('gate')",
        schema(raw).quoted()
    ))
    .await?;
    Ok(txn)
}

fn tenant_report<'a>(reports: &'a [TenantReport], raw: &str) -> &'a TenantReport {
    reports
        .iter()
        .find(|r| r.tenant.as_str() == raw)
        .expect("tenant in report")
}

#[tokio::test]
async fn create_index_concurrently_runs_outside_a_transaction_in_every_tenant() -> TestResult {
    let (db, conn, v1) = fleet_db::<V1>().await?;
    let raws = ["acme", "globex", "initech"];
    tenants_with_items(&v1, &conn, &raws, 2_000).await?;

    let fleet = TenantFleet::<V3>::new(conn.clone());
    let report = fleet.migrate_all(MigrateAll::new().concurrency(2)).await?;
    assert!(report.is_success(), "{report}");
    for raw in raws {
        assert_eq!(report.tenant(&id(raw)).unwrap().applied, [INDEX, NOTE]);
        assert_eq!(index_valid(&conn, raw).await?, Some(true), "{raw}");
        assert_eq!(
            versions(&conn, schema(raw).as_str()).await?,
            Some(strings(&[ITEMS, INDEX, NOTE]))
        );
    }
    assert_eq!(index_valid(&conn, "public").await?, None);
    // Nothing leaks onto the fleet's pool: no session setting, no lock.
    let path = query_all(&conn, "SELECT current_setting('search_path') AS p", vec![]).await?;
    assert_eq!(path[0].try_get::<String>("", "p")?, "\"$user\", public");
    wait_no_advisory_locks(&conn).await?;

    // The health check's reference schema is migrated the same way, and
    // dropped again.
    let health = fleet.health().await?;
    assert!(health.is_healthy(), "{health}");
    let scratch = query_all(
        &conn,
        "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname LIKE 'tenancy\\_health\\_%'",
        vec![],
    )
    .await?;
    assert!(scratch.is_empty());

    // Nothing pending: a second run applies nothing.
    let again = fleet.migrate_all(MigrateAll::new()).await?;
    assert!(again.is_success(), "{again}");
    assert_eq!(again.applied_total(), 0);
    conn.close().await?;
    db.close().await?;
    Ok(())
}

#[tokio::test]
async fn migrate_tenant_and_create_apply_transactional_and_outside_migrations_in_order()
-> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let conn = conn.clone();
        let fleet = fleet_on::<V3>(&conn).await?;
        let record = fleet.create(&id("acme"), NewTenant::new()).await?;
        assert_eq!(record.status, tenancy_core::TenantStatus::Active);
        assert_eq!(index_valid(&conn, "acme").await?, Some(true));
        assert_eq!(
            versions(&conn, "tenant_acme").await?,
            Some(strings(&[ITEMS, INDEX, NOTE]))
        );
        let report = fleet.migrate_tenant(&id("acme")).await?;
        assert!(report.applied.is_empty());
        wait_no_advisory_locks(&conn).await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn two_runners_at_once_apply_the_outside_migration_once() -> TestResult {
    let (db, conn, v1) = fleet_db::<V1>().await?;
    tenants_with_items(&v1, &conn, &["acme", "globex"], 500).await?;
    let gate_conn = db.connect().await?;
    let gate_txn = gate(&gate_conn, "acme").await?;

    // Two processes' worth: each runner on a pool of its own.
    let (conn_a, conn_b) = (db.connect().await?, db.connect().await?);
    let fleet_a = TenantFleet::<V3>::new(conn_a.clone());
    let fleet_b = TenantFleet::<V3>::new(conn_b.clone());
    let run_a =
        tokio::spawn(async move { fleet_a.migrate_all(MigrateAll::new().concurrency(1)).await });
    // Runner A is building acme's index, held at the gate.
    wait_until(&conn, INDEX_BUILD_WAITING).await?;
    let run_b =
        tokio::spawn(async move { fleet_b.migrate_all(MigrateAll::new().concurrency(1)).await });
    // Runner B is polling acme's lock (A's session is busy with the build).
    wait_until(
        &conn,
        "SELECT count(*) AS n FROM pg_catalog.pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'SELECT pg_try_advisory_lock%'",
    )
    .await?;
    gate_txn.rollback().await?;

    let (a, b) = (run_a.await??, run_b.await??);
    assert!(a.is_success(), "{a}");
    assert!(b.is_success(), "{b}");
    for raw in ["acme", "globex"] {
        let applied_by = [&a, &b]
            .iter()
            .filter(|r| {
                r.tenant(&id(raw))
                    .unwrap()
                    .applied
                    .contains(&INDEX.to_owned())
            })
            .count();
        assert_eq!(applied_by, 1, "{raw}: {a} / {b}");
        assert_eq!(index_valid(&conn, raw).await?, Some(true));
        assert_eq!(
            versions(&conn, schema(raw).as_str()).await?,
            Some(strings(&[ITEMS, INDEX, NOTE]))
        );
    }
    wait_no_advisory_locks(&conn).await?;
    for c in [conn_a, conn_b, gate_conn, conn] {
        c.close().await?;
    }
    db.close().await?;
    Ok(())
}

/// Starts a `V3` run, waits until acme's index build is held at the gate,
/// and terminates the backend building it.
async fn terminate_mid_index_build<M: MigratorTrait + Send + Sync + 'static>(
    db: &tenancy_testing::TestDatabase,
    conn: &DatabaseConnection,
) -> Result<tenancy_migrate::FleetReport, BoxError> {
    let gate_conn = db.connect().await?;
    let gate_txn = gate(&gate_conn, "acme").await?;
    let fleet = TenantFleet::<M>::new(conn.clone());
    let run =
        tokio::spawn(async move { fleet.migrate_all(MigrateAll::new().concurrency(1)).await });
    wait_until(conn, INDEX_BUILD_WAITING).await?;
    conn.execute_unprepared(
        "SELECT pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'CREATE INDEX CONCURRENTLY%'",
    )
    .await?;
    let report = run.await??;
    gate_txn.rollback().await?;
    gate_conn.close().await?;
    Ok(report)
}

#[tokio::test]
async fn a_backend_killed_mid_build_leaves_an_invalid_index_that_the_rerun_replaces() -> TestResult
{
    let (db, conn, v1) = fleet_db::<V1>().await?;
    tenants_with_items(&v1, &conn, &["acme", "globex"], 500).await?;

    let report = terminate_mid_index_build::<V3>(&db, &conn).await?;
    let acme = report.tenant(&id("acme")).unwrap();
    match acme.error.as_ref() {
        Some(Error::OutsideTransactionFailed {
            migration, applied, ..
        }) => {
            assert_eq!(migration, INDEX);
            assert!(applied.is_empty(), "{applied:?}");
        }
        other => panic!("expected OutsideTransactionFailed, got {other:?}"),
    }
    let message = acme.error.as_ref().unwrap().to_string();
    assert!(
        message.contains("acme") && message.contains(INDEX),
        "{message}"
    );
    // The crash left what CREATE INDEX CONCURRENTLY leaves: an INVALID
    // index, and the migration unrecorded.
    assert_eq!(index_valid(&conn, "acme").await?, Some(false));
    assert_eq!(
        versions(&conn, "tenant_acme").await?,
        Some(strings(&[ITEMS]))
    );
    // The other tenant went on.
    assert!(
        report.tenant(&id("globex")).unwrap().is_success(),
        "{report}"
    );
    assert_eq!(index_valid(&conn, "globex").await?, Some(true));
    wait_no_advisory_locks(&conn).await?;

    // The re-run drops the INVALID index and builds it again.
    let fleet = TenantFleet::<V3>::new(conn.clone());
    let rerun = fleet.migrate_all(MigrateAll::new()).await?;
    assert!(rerun.is_success(), "{rerun}");
    assert_eq!(rerun.tenant(&id("acme")).unwrap().applied, [INDEX, NOTE]);
    assert!(rerun.tenant(&id("globex")).unwrap().applied.is_empty());
    assert_eq!(index_valid(&conn, "acme").await?, Some(true));
    assert_eq!(
        versions(&conn, "tenant_acme").await?,
        Some(strings(&[ITEMS, INDEX, NOTE]))
    );
    conn.close().await?;
    db.close().await?;
    Ok(())
}

#[tokio::test]
async fn a_rerun_that_would_keep_an_invalid_index_is_refused() -> TestResult {
    let (db, conn, v1) = fleet_db::<V1>().await?;
    tenants_with_items(&v1, &conn, &["acme"], 500).await?;
    let report = terminate_mid_index_build::<V2Naive>(&db, &conn).await?;
    assert!(!report.is_success(), "{report}");
    assert_eq!(index_valid(&conn, "acme").await?, Some(false));

    // IF NOT EXISTS skips the INVALID index: recording that would hide it.
    let fleet = TenantFleet::<V2Naive>::new(conn.clone());
    let rerun = fleet.migrate_tenant(&id("acme")).await;
    let Err(err @ Error::OutsideTransactionFailed { .. }) = rerun else {
        panic!("expected a refusal, got {rerun:?}");
    };
    let message = err.to_string();
    assert!(
        message.contains("INVALID index items_name_idx")
            && message.contains("DROP INDEX CONCURRENTLY IF EXISTS"),
        "{message}"
    );
    assert_eq!(
        versions(&conn, "tenant_acme").await?,
        Some(strings(&[ITEMS]))
    );
    conn.close().await?;
    db.close().await?;
    Ok(())
}

#[tokio::test]
async fn failures_are_reported_per_tenant_and_the_others_migrate() -> TestResult {
    let (db, conn, v1) = fleet_db::<V1>().await?;
    tenants_with_items(&v1, &conn, &["acme", "globex", "initech"], 200).await?;
    // globex: a duplicate name, so the unique index build fails.
    conn.execute_unprepared("INSERT INTO tenant_globex.items (name) VALUES ('item 1')")
        .await?;
    // initech: the column the last (transactional) migration adds exists.
    conn.execute_unprepared("ALTER TABLE tenant_initech.items ADD COLUMN note text")
        .await?;

    let fleet = TenantFleet::<V3Unique>::new(conn.clone());
    let report = fleet.migrate_all(MigrateAll::new().concurrency(3)).await?;
    let reports = report.tenants.as_slice();
    assert!(tenant_report(reports, "acme").is_success(), "{report}");
    assert_eq!(tenant_report(reports, "acme").applied, [UNIQUE, NOTE]);

    match tenant_report(reports, "globex").error.as_ref() {
        Some(Error::OutsideTransactionFailed {
            tenant,
            migration,
            applied,
            source,
            ..
        }) => {
            assert_eq!(tenant.as_str(), "globex");
            assert_eq!(migration, UNIQUE);
            assert!(applied.is_empty());
            assert!(
                source.to_string().contains("could not create unique index"),
                "{source}"
            );
        }
        other => panic!("globex: {other:?}"),
    }
    assert_eq!(index_valid(&conn, "globex").await?, Some(false));
    assert_eq!(
        versions(&conn, "tenant_globex").await?,
        Some(strings(&[ITEMS]))
    );

    // initech: the index was committed before the failing transactional
    // migration, and stays.
    match tenant_report(reports, "initech").error.as_ref() {
        Some(Error::PartlyMigrated {
            migration, applied, ..
        }) => {
            assert_eq!(migration.as_deref(), Some(NOTE));
            assert_eq!(applied, &[UNIQUE]);
        }
        other => panic!("initech: {other:?}"),
    }
    assert_eq!(index_valid(&conn, "initech").await?, Some(true));
    assert_eq!(
        versions(&conn, "tenant_initech").await?,
        Some(strings(&[ITEMS, UNIQUE]))
    );
    wait_no_advisory_locks(&conn).await?;
    conn.close().await?;
    db.close().await?;
    Ok(())
}

#[tokio::test]
async fn a_create_whose_outside_migration_fails_stays_provisioning_until_migrated() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let conn = conn.clone();
        let fleet = fleet_on::<V3Failing>(&conn).await?;
        conn.execute_unprepared("CREATE TABLE public.fail_outside ()")
            .await?;

        let created = fleet.create(&id("acme"), NewTenant::new()).await;
        let Err(err @ Error::ProvisioningUnfinished { .. }) = created else {
            panic!("expected ProvisioningUnfinished, got {created:?}");
        };
        let Error::ProvisioningUnfinished { tenant, source } = &err else {
            unreachable!()
        };
        assert_eq!(tenant.as_str(), "acme");
        match source.as_ref() {
            Error::OutsideTransactionFailed {
                migration, applied, ..
            } => {
                assert_eq!(migration, FAILING);
                assert_eq!(applied, &[ITEMS]);
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("stays provisioning"), "{err}");
        // Registered, not served, with what was committed before the failure.
        let record = fleet.get(&id("acme")).await?.unwrap();
        assert_eq!(record.status, tenancy_core::TenantStatus::Provisioning);
        assert_eq!(
            versions(&conn, "tenant_acme").await?,
            Some(strings(&[ITEMS]))
        );

        conn.execute_unprepared("DROP TABLE public.fail_outside")
            .await?;
        let report = fleet.migrate_tenant(&id("acme")).await?;
        assert_eq!(report.applied, [FAILING, NOTE]);
        let record = fleet.resume(&id("acme")).await?;
        assert_eq!(record.status, tenancy_core::TenantStatus::Active);
        wait_no_advisory_locks(&conn).await?;
        Ok(())
    })
    .await
}

/// Where the child runner connects; set only for the child.
const CHILD_URL: &str = "TENANCY_OUTSIDE_TXN_CHILD_URL";

/// The child of the kill test: this test binary run again with
/// `CHILD_URL` set. Does nothing otherwise.
#[tokio::test]
#[ignore = "run as a child process by the kill test"]
async fn child_migrate_all() -> TestResult {
    let Ok(url) = std::env::var(CHILD_URL) else {
        return Ok(());
    };
    let conn = sea_orm::Database::connect(url.as_str()).await?;
    let fleet = TenantFleet::<V3>::new(conn);
    fleet.migrate_all(MigrateAll::new().concurrency(1)).await?;
    Ok(())
}

#[tokio::test]
async fn a_runner_killed_mid_build_leaves_the_migration_unrecorded_and_the_rerun_converges()
-> TestResult {
    let (db, conn, v1) = fleet_db::<V1>().await?;
    tenants_with_items(&v1, &conn, &["acme", "globex"], 500).await?;
    let gate_conn = db.connect().await?;
    let gate_txn = gate(&gate_conn, "acme").await?;

    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "child_migrate_all",
            "--exact",
            "--ignored",
            "--test-threads=1",
        ])
        .env(CHILD_URL, db.url())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    wait_until(&conn, INDEX_BUILD_WAITING).await?;
    child.kill()?;
    child.wait()?;
    // The orphaned backend finishes its build once the gate opens, then
    // finds its client gone: the index is built but never recorded.
    gate_txn.rollback().await?;

    let fleet = TenantFleet::<V3>::new(conn.clone());
    let rerun = fleet.migrate_all(MigrateAll::new()).await?;
    assert!(rerun.is_success(), "{rerun}");
    for raw in ["acme", "globex"] {
        assert_eq!(
            rerun.tenant(&id(raw)).unwrap().applied,
            [INDEX, NOTE],
            "{raw}"
        );
        assert_eq!(index_valid(&conn, raw).await?, Some(true));
        assert_eq!(
            versions(&conn, schema(raw).as_str()).await?,
            Some(strings(&[ITEMS, INDEX, NOTE]))
        );
    }
    wait_no_advisory_locks(&conn).await?;
    gate_conn.close().await?;
    conn.close().await?;
    db.close().await?;
    Ok(())
}
