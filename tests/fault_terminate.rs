//! Fault: `pg_terminate_backend` of random pooled connections of the test's
//! own database while scoped transactions run on them.
//!
//! Afterwards every acknowledged commit is present exactly once, nothing
//! that failed before its `COMMIT` is, an ambiguous one (the connection died
//! after `COMMIT` was sent) is whole or absent, every row is in its own
//! tenant's schema, and the pool serves transactions again.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    clippy::cast_possible_truncation
)]

mod fault_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use fault_support::rng::Rng;
use fault_support::{
    BoxError, Workload, create_tenants, pg, pool, pool_recovers, run, seed, tenant_db, verify,
};
use tenancy_testing::TestDatabase;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn terminated_backends_lose_nothing_and_leak_nothing() -> Result<(), BoxError> {
    let seed = seed();
    let test_db = TestDatabase::create().await?;
    let admin = pool(&test_db, 1).await?;
    let tenants = Arc::new(create_tenants(&admin, 20).await?);
    let conn = pool(&test_db, 4).await?;
    let db = tenant_db(&conn)?;

    // The killer: its own connection, terminating only this database's
    // other backends (the pool's), every few milliseconds.
    let stop = Arc::new(AtomicBool::new(false));
    let kills = Arc::new(AtomicU64::new(0));
    let killer = {
        let (admin, stop, kills) = (admin.clone(), Arc::clone(&stop), Arc::clone(&kills));
        tokio::spawn(async move {
            let mut rng = Rng::new(seed ^ 0x6b69_6c6c);
            while !stop.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(2 + rng.below(12))).await;
                let (busy, idle) = pg::pool_backends(&admin).await?;
                let pool = if !busy.is_empty() && rng.below(4) != 0 {
                    busy
                } else {
                    idle
                };
                if pool.is_empty() {
                    continue;
                }
                let pid = pool[rng.below(pool.len() as u64) as usize];
                if pg::terminate(&admin, pid).await? {
                    kills.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok::<(), sea_orm::DbErr>(())
        })
    };

    let workload = Workload {
        transactions: 3_000,
        workers: 12,
        mix: [4, 4, 2, 2, 0],
        cancel_per_mille: 0,
        cancel_within: Duration::ZERO,
        sleep_ms: 1,
        seed,
    };
    let result = run(&db, &tenants, &workload).await;
    stop.store(true, Ordering::SeqCst);
    killer.await??;
    let counts = result.ledger.counts();
    let kills = kills.load(Ordering::Relaxed);
    eprintln!("terminate: {kills} backends killed; {counts}");
    for error in &counts.first_errors {
        eprintln!("  e.g. {error}");
    }
    result.assert_no_violations();
    assert!(kills > 0, "the killer never hit a backend");
    assert!(
        counts.errors > 0,
        "{kills} kills and not one failed transaction"
    );

    let verified = verify(&admin, &tenants, &result.ledger).await?;
    eprintln!("terminate: {verified:?}");
    assert!(verified.acknowledged_ops > 0);

    // The pool recovers: later transactions succeed, every one of them.
    pool_recovers(&db, &tenants, 100).await?;
    let idle_in_txn =
        pg::settle(&admin, pg::IDLE_IN_TRANSACTION, 0, Duration::from_secs(10)).await?;
    assert_eq!(idle_in_txn, 0, "backends left idle in transaction");

    conn.close().await?;
    admin.close().await?;
    test_db.close().await?;
    Ok(())
}
