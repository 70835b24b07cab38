#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// `MigrationTrait` (async_trait) spells its argument `&SchemaManager`.
#![allow(elided_lifetimes_in_paths)]
//! Several runners of `migrate_all` on one fleet divide it: each passes over
//! the tenants another holds and comes back to them at the end, and every
//! migration is still applied exactly once, whatever the database's default
//! isolation level.

mod support_migrate;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, TransactionTrait};
use sea_orm_migration::{MigrationName, MigrationTrait, MigratorTrait, SchemaManager};
use tenancy_core::{AdvisoryLock, SharedSchema};
use tenancy_migrate::{FleetReport, MigrateAll, NewTenant, TenantFleet};
use tenancy_testing::TestDatabase;

use support_migrate::*;

const SLOW: &str = "m0003_slow_notes";

/// Counts its runs in `public.runs` (inside the tenant's transaction, so
/// only committed runs count), waits at `public.gate` while the test holds
/// it, sleeps a little, and creates a table: a second run in one schema
/// would fail on the table.
struct SlowNotes;
impl MigrationName for SlowNotes {
    fn name(&self) -> &str {
        SLOW
    }
}
#[async_trait::async_trait]
impl MigrationTrait for SlowNotes {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO public.runs (schema_name) VALUES (current_schema()); \
                 SELECT count(*) FROM public.gate; SELECT pg_sleep(0.01); \
                 CREATE TABLE notes (id int)",
            )
            .await
            .map(drop)
    }
}

struct Slow;
impl MigratorTrait for Slow {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateProjects),
            Box::new(AddCode),
            Box::new(SlowNotes),
        ]
    }
}

const TENANTS: usize = 60;
const CONCURRENCY: usize = 4;

/// Waits (bounded) until `count` sessions of this database wait for a
/// relation lock: the runners' workers blocked at the gate.
async fn wait_at_gate(conn: &DatabaseConnection, count: i64) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = query_all(
            conn,
            "SELECT count(*) AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE NOT l.granted AND l.locktype = 'relation' AND a.datname = current_database()",
            vec![],
        )
        .await?;
        if rows[0].try_get::<i64>("", "n")? >= count {
            return Ok(());
        }
        assert!(
            Instant::now() < deadline,
            "never saw {count} runners' workers at the gate"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn runs_per_schema(conn: &DatabaseConnection) -> Result<BTreeMap<String, i64>, DbErr> {
    let rows = query_all(
        conn,
        "SELECT schema_name, count(*) AS n FROM public.runs GROUP BY 1",
        vec![],
    )
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("", "schema_name")?, r.try_get("", "n")?)))
        .collect()
}

#[tokio::test]
async fn runners_divide_the_fleet_and_apply_each_migration_once() -> TestResult {
    for (level, runners) in [("read committed", 2), ("repeatable read", 3)] {
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
        conn.execute_unprepared(
            "CREATE TABLE public.runs (schema_name text NOT NULL); CREATE TABLE public.gate (id int)",
        )
        .await?;
        let old = TenantFleet::<Migrator>::new(conn.clone());
        old.install().await?;
        for i in 0..TENANTS {
            old.create(&id(&format!("t{i:02}")), NewTenant::new())
                .await?;
        }

        // The test holds the gate until every runner has a worker on each
        // of its `CONCURRENCY` tenants: the runners hold distinct tenants
        // at once, which is the division.
        let gate_conn = db.connect().await?;
        let gate = gate_conn.begin().await?;
        gate.execute_unprepared("LOCK TABLE public.gate IN ACCESS EXCLUSIVE MODE")
            .await?;
        // Every runner slot taken: the runners all start at the first
        // tenant and meet at once, which is what this test is about (with
        // slots, they start apart: `a_second_runner_starts_halfway`).
        hold_every_slot(&gate).await?;
        let mut fleets = Vec::new();
        for _ in 0..runners {
            fleets.push(TenantFleet::<Slow>::new(db.connect().await?));
        }
        let runs = futures_util::future::join_all(
            fleets
                .iter()
                .map(|f| f.migrate_all(MigrateAll::new().concurrency(CONCURRENCY))),
        );
        let release = async {
            wait_at_gate(&conn, i64::try_from(runners * CONCURRENCY)?).await?;
            gate.commit().await?;
            TestResult::Ok(())
        };
        let (reports, released) = tokio::join!(runs, release);
        released?;
        let reports: Vec<FleetReport> = reports.into_iter().collect::<Result<_, _>>()?;

        for report in &reports {
            assert!(report.is_success(), "{level}: {report}");
            assert_eq!(report.tenants.len(), TENANTS, "{level}: {report}");
            assert!(
                report.applied_total() >= CONCURRENCY,
                "{level}: every runner migrated the tenants it held at the gate: {report}"
            );
        }
        // Each tenant's migration applied by exactly one runner; a runner
        // that came back to a tenant another migrated reports it done
        // there, not failed.
        let total: usize = reports.iter().map(FleetReport::applied_total).sum();
        assert_eq!(total, TENANTS, "{level}");
        let runs = runs_per_schema(&conn).await?;
        assert_eq!(runs.len(), TENANTS, "{level}");
        for i in 0..TENANTS {
            let raw = format!("t{i:02}");
            let by: Vec<&Vec<String>> = reports
                .iter()
                .map(|r| &r.tenant(&id(&raw)).unwrap().applied)
                .filter(|a| !a.is_empty())
                .collect();
            assert_eq!(by, [&vec![SLOW.to_owned()]], "{level}: {raw}");
            assert_eq!(runs.get(schema(&raw).as_str()), Some(&1), "{level}: {raw}");
            assert_eq!(
                versions(&conn, schema(&raw).as_str()).await?,
                Some(strings(&[M1, M2, SLOW])),
                "{level}: {raw}"
            );
        }
        let deferred = reports
            .iter()
            .flat_map(|r| &r.tenants)
            .filter(|t| t.deferred)
            .count();
        assert!(
            deferred >= (runners - 1) * CONCURRENCY,
            "{level}: tenants held at the gate were passed over by the other runners"
        );
        assert!(fleets[0].fleet_status().await?.is_up_to_date());

        gate_conn.close().await?;
        for fleet in fleets {
            fleet.connection().clone().close().await?;
        }
        conn.close().await?;
        db.close().await?;
    }
    Ok(())
}

/// Takes all eight runner slots in `txn`, as eight runners would.
async fn hold_every_slot(txn: &impl ConnectionTrait) -> Result<(), DbErr> {
    for slot in 0..8 {
        let key = AdvisoryLock::RunnerSlot(slot).shared_key(&SharedSchema::public());
        txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({key})"))
            .await?;
    }
    Ok(())
}

/// With slot 0 taken by another runner, a runner starts halfway through
/// the fleet and still goes round all of it.
#[tokio::test]
async fn a_second_runner_starts_halfway() -> TestResult {
    let db = TestDatabase::create().await?;
    let conn = db.connect().await?;
    conn.execute_unprepared(
        "CREATE TABLE public.runs (schema_name text NOT NULL); CREATE TABLE public.gate (id int)",
    )
    .await?;
    let old = TenantFleet::<Migrator>::new(conn.clone());
    old.install().await?;
    for i in 0..10 {
        old.create(&id(&format!("t{i:02}")), NewTenant::new())
            .await?;
    }
    let started = |fleet: TenantFleet<Slow>| async move {
        let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = std::sync::Arc::clone(&order);
        let options = MigrateAll::new().concurrency(1).on_event(move |event| {
            if let tenancy_migrate::MigrationEvent::Started { tenant, .. } = event {
                seen.lock().unwrap().push(tenant.to_string());
            }
        });
        let report = fleet.migrate_all(options).await?;
        assert!(report.is_success(), "{report}");
        let order = order.lock().unwrap().clone();
        Result::<Vec<String>, Box<dyn std::error::Error + Send + Sync>>::Ok(order)
    };

    let other = conn.begin().await?;
    let key = AdvisoryLock::RunnerSlot(0).shared_key(&SharedSchema::public());
    other
        .execute_unprepared(&format!("SELECT pg_advisory_xact_lock({key})"))
        .await?;
    let order = started(TenantFleet::<Slow>::new(db.connect().await?)).await?;
    other.rollback().await?;
    let expected: Vec<String> = (5..10).chain(0..5).map(|i| format!("t{i:02}")).collect();
    assert_eq!(order, expected);
    let runs = runs_per_schema(&conn).await?;
    assert_eq!(runs.len(), 10);
    assert!(runs.values().all(|&n| n == 1), "{runs:?}");

    conn.close().await?;
    db.close().await?;
    Ok(())
}
