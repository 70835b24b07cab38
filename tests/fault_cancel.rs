//! Fault: the client gives up. Scoped transactions' futures are dropped at
//! random points (waiting for a connection, mid-`BEGIN`, mid-statement,
//! mid-savepoint, mid-`COMMIT`), as `tokio::time::timeout` or a closed HTTP
//! request does.
//!
//! Afterwards nothing acknowledged is lost, nothing cancelled before its
//! `COMMIT` is present, no backend of the database is left idle in a
//! transaction, no pooled connection carries a tenant's search path, and
//! cancellations cause no error in later transactions.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

mod fault_support;

use std::sync::Arc;
use std::time::Duration;

use fault_support::{
    BoxError, Workload, create_tenants, pg, pool, pool_recovers, run, seed, tenant_db, verify,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use tenancy::TenantScope as _;
use tenancy_testing::TestDatabase;

const POOL: u32 = 4;

/// No backend idle in a transaction, and every pooled connection (all
/// `POOL` of them at once) on the server's default search path.
async fn nothing_left_behind(
    admin: &DatabaseConnection,
    conn: &DatabaseConnection,
) -> Result<(), BoxError> {
    let idle_in_txn =
        pg::settle(admin, pg::IDLE_IN_TRANSACTION, 0, Duration::from_secs(10)).await?;
    assert_eq!(idle_in_txn, 0, "backends left idle in transaction");
    let mut probes = Vec::new();
    for _ in 0..POOL {
        let conn = conn.clone();
        probes.push(tokio::spawn(async move {
            // Holding each connection a moment makes the probes use them all.
            conn.query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT current_setting('search_path') AS path, pg_sleep(0.1)::text AS slept",
            ))
            .await
            .map(|row| row.unwrap().try_get::<String>("", "path").unwrap())
        }));
    }
    for probe in probes {
        let path = probe.await??;
        assert_eq!(
            path, "\"$user\", public",
            "a pooled connection kept a tenant's search path"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_cancellations_lose_nothing_and_leave_no_open_transaction() -> Result<(), BoxError> {
    let seed = seed();
    let test_db = TestDatabase::create().await?;
    let admin = pool(&test_db, 1).await?;
    let tenants = Arc::new(create_tenants(&admin, 20).await?);
    let conn = pool(&test_db, POOL).await?;
    let db = tenant_db(&conn)?;

    let workload = Workload {
        transactions: 3_000,
        workers: 12,
        mix: [4, 4, 2, 2, 0],
        cancel_per_mille: 400,
        cancel_within: Duration::from_millis(6),
        sleep_ms: 2,
        seed,
    };
    let result = run(&db, &tenants, &workload).await;
    let counts = result.ledger.counts();
    eprintln!("cancel: {counts}");
    result.assert_no_violations();
    assert!(counts.cancelled > 0, "no transaction was cancelled");
    // Cancellation breaks nothing for the next user of a connection.
    assert_eq!(
        counts.errors, 0,
        "errors without any fault but cancellation: {:?}",
        counts.first_errors
    );

    let verified = verify(&admin, &tenants, &result.ledger).await?;
    eprintln!("cancel: {verified:?}");
    nothing_left_behind(&admin, &conn).await?;
    pool_recovers(&db, &tenants, 100).await?;

    conn.close().await?;
    admin.close().await?;
    test_db.close().await?;
    Ok(())
}

/// Cancellations at points made certain: a statement that runs for a while,
/// and a `COMMIT` that runs for a while (a deferred constraint trigger sleeps
/// at commit time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_mid_statement_and_mid_commit() -> Result<(), BoxError> {
    let test_db = TestDatabase::create().await?;
    let admin = pool(&test_db, 1).await?;
    let tenants = create_tenants(&admin, 2).await?;
    let (acme, globex) = (&tenants[0], &tenants[1]);
    admin
        .execute_unprepared(&format!(
            "CREATE FUNCTION public.slow_commit() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN PERFORM pg_sleep(0.3); RETURN NULL; END $$;
             CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON {}.items
                 DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.slow_commit()",
            acme.schema().quoted()
        ))
        .await?;
    let conn = pool(&test_db, POOL).await?;
    let db = tenant_db(&conn)?;
    let insert = |op: i64, tenant: &str| {
        Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO items (op, tenant, note) VALUES ($1, $2, 'main')",
            [op.into(), tenant.into()],
        )
    };

    let mut mid_commit_present = 0;
    for round in 0..4_i64 {
        // Mid-statement: the insert ran, the statement after it is cut off.
        let op = round * 10;
        let cut = tokio::time::timeout(Duration::from_millis(50), async {
            let txn = db.begin(globex).await?;
            txn.execute_raw(insert(op, "f001")).await?;
            txn.execute_unprepared("SELECT pg_sleep(0.3)").await?;
            txn.commit().await?;
            Ok::<(), BoxError>(())
        })
        .await;
        assert!(cut.is_err(), "the statement finished before the timeout");

        // Mid-commit: COMMIT was sent and is running the deferred trigger.
        let op = round * 10 + 1;
        let txn = db.begin(acme).await?;
        txn.execute_raw(insert(op, "f000")).await?;
        let cut = tokio::time::timeout(Duration::from_millis(50), txn.commit()).await;
        assert!(cut.is_err(), "the commit finished before the timeout");

        // Acknowledged ones, on the same few connections, right after.
        for (tenant, id) in [(acme, "f000"), (globex, "f001")] {
            let txn = db.begin(tenant).await?;
            txn.execute_raw(insert(round * 10 + 5, id)).await?;
            txn.commit().await?;
        }
        let row = admin
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT (SELECT count(*) FROM tenant_f001.items WHERE op = $1) AS cut_statement,
                        (SELECT count(*) FROM tenant_f000.items WHERE op = $2) AS cut_commit",
                [(round * 10).into(), (round * 10 + 1).into()],
            ))
            .await?
            .unwrap();
        assert_eq!(
            row.try_get::<i64>("", "cut_statement")?,
            0,
            "a cancelled transaction's row is present"
        );
        // The server may finish a COMMIT whose client has gone: present or
        // absent, never twice.
        let cut_commit = row.try_get::<i64>("", "cut_commit")?;
        assert!(cut_commit <= 1, "op present {cut_commit} times");
        mid_commit_present += cut_commit;
    }
    eprintln!("mid-commit cancellations that committed anyway: {mid_commit_present} of 4");

    // Every acknowledged row is there, once.
    for (schema, rows) in [("tenant_f000", 4), ("tenant_f001", 4)] {
        let acked = pg::count(
            &admin,
            &format!("SELECT count(*) FROM {schema}.items WHERE op % 10 = 5"),
        )
        .await?;
        assert_eq!(acked, rows, "acknowledged rows lost in {schema}");
    }
    // The cut-off statements and commits finish on the server within a
    // second; then nothing may be left open.
    nothing_left_behind(&admin, &conn).await?;
    pool_recovers(&db, &tenants, 20).await?;

    conn.close().await?;
    admin.close().await?;
    test_db.close().await?;
    Ok(())
}
