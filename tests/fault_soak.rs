//! Soak: reads, writes (both APIs), savepoints (one released, one rolled
//! back) and cancellations at random points, over at least 100 tenants on a
//! pool of 4 connections, checked against the ledger at the end.
//!
//! `soak_smoke` runs in CI. The full run is a command (README, Development;
//! figures in BENCHMARKS.md):
//!
//! ```sh
//! cargo test --test fault_soak -- --ignored --nocapture soak_full
//! ```
//!
//! sized by `TENANCY_SOAK_TRANSACTIONS` (default 100000) and
//! `TENANCY_SOAK_TENANTS` (default 200); it prints its counts and the
//! process's RSS (`VmRSS`) at start, peak and end.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

mod fault_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fault_support::{
    BoxError, Workload, create_tenants, pg, pool, pool_recovers, run, seed, tenant_db, verify,
};
use tenancy_testing::TestDatabase;

const POOL: u32 = 4;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
        })
        .unwrap_or(default)
}

async fn soak(tenant_count: usize, transactions: u64) -> Result<(), BoxError> {
    let seed = seed();
    let test_db = TestDatabase::create().await?;
    let admin = pool(&test_db, 1).await?;
    let tenants = Arc::new(create_tenants(&admin, tenant_count).await?);
    let conn = pool(&test_db, POOL).await?;
    let db = tenant_db(&conn)?;

    // RSS at start, then sampled through the run for its peak.
    let rss_start = pg::rss_kib().unwrap_or(0);
    let peak = Arc::new(AtomicU64::new(rss_start));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
        tokio::spawn(async move {
            // The peak, and a sample every 20 s to show the trend.
            let started = Instant::now();
            let mut samples = Vec::new();
            while !done.load(Ordering::SeqCst) {
                let rss = pg::rss_kib().unwrap_or(0);
                peak.fetch_max(rss, Ordering::Relaxed);
                if started.elapsed().as_secs() >= 20 * (samples.len() as u64 + 1) {
                    samples.push(rss);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            samples
        })
    };

    let workload = Workload {
        transactions,
        workers: 16,
        mix: [3, 3, 3, 2, 1],
        cancel_per_mille: 50,
        cancel_within: Duration::from_millis(5),
        sleep_ms: 1,
        seed,
    };
    let started = Instant::now();
    let result = run(&db, &tenants, &workload).await;
    let elapsed = started.elapsed();
    done.store(true, Ordering::SeqCst);
    let samples = sampler.await?;
    let rss_end = pg::rss_kib().unwrap_or(0);
    let counts = result.ledger.counts();
    eprintln!(
        "soak: {tenant_count} tenants, pool {POOL}, {} workers, {:.1} s ({:.0} transactions/s)",
        workload.workers,
        elapsed.as_secs_f64(),
        counts.transactions as f64 / elapsed.as_secs_f64()
    );
    eprintln!("soak: {counts}");
    eprintln!(
        "soak: RSS (VmRSS) {rss_start} KiB at start, {} KiB peak, {rss_end} KiB at end \
         (the test's own ledger holds about {} KiB of it); every 20 s: {samples:?} KiB",
        peak.load(Ordering::Relaxed),
        result.ledger.approx_kib()
    );
    result.assert_no_violations();
    assert_eq!(counts.transactions, transactions);
    assert_eq!(
        counts.errors, 0,
        "errors without any fault but cancellation: {:?}",
        counts.first_errors
    );

    let verified = verify(&admin, &tenants, &result.ledger).await?;
    eprintln!("soak: {verified:?}");
    let idle_in_txn =
        pg::settle(&admin, pg::IDLE_IN_TRANSACTION, 0, Duration::from_secs(10)).await?;
    assert_eq!(idle_in_txn, 0, "backends left idle in transaction");
    pool_recovers(&db, &tenants, 50).await?;

    conn.close().await?;
    admin.close().await?;
    test_db.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn soak_smoke() -> Result<(), BoxError> {
    soak(120, 3_000).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "the full soak (100k transactions by default); see the README's Development section"]
async fn soak_full() -> Result<(), BoxError> {
    let tenants = env_or("TENANCY_SOAK_TENANTS", 200);
    let transactions = env_or("TENANCY_SOAK_TRANSACTIONS", 100_000);
    soak(usize::try_from(tenants)?, transactions).await
}
