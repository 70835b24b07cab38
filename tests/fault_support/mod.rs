//! The fault suite's workload and its bookkeeping: tenants with identical
//! `items` tables, workers running scoped transactions whose every outcome is
//! written down (acknowledged, failed, ambiguous), and the final check that
//! the database holds exactly what was acknowledged, nothing foreign, nothing
//! twice.
//!
//! Each fault test adds its fault (killed backends, cancelled futures) to
//! this workload; the soak runs it at size.

#![allow(dead_code, unreachable_pub)]

mod ledger;
pub mod pg;
pub mod rng;
mod workload;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, Statement,
};
use tenancy::orm::{RegistryConfig, TenantRegistry};
use tenancy::{ScopeError, Tenant, TenantDb, TenantId, TenantScope as _};
use tenancy_testing::TestDatabase;
use tokio::sync::Mutex;

use ledger::{Entry, Ledger, Outcome};
use rng::Rng;
use workload::{CommitSent, Failure, Kind, one_transaction, pick_kind};

// Each test binary uses a part of these.
#[allow(unused_imports)]
pub use ledger::{Counts, Verified, verify};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A pool of `max` connections on the test database, failing fast instead of
/// waiting 30 s when something is wedged.
pub async fn pool(test_db: &TestDatabase, max: u32) -> Result<DatabaseConnection, DbErr> {
    let mut opts: ConnectOptions = test_db.connect_options();
    opts.max_connections(max)
        .acquire_timeout(Duration::from_secs(20));
    Database::connect(opts).await
}

/// Creates `count` tenants (`f000`, `f001`, ...), each a schema holding an
/// `items` table, plus an empty `public.items` of the same shape: a scope
/// that fell through to `public` would write there, and the final check
/// wants it empty.
pub async fn create_tenants(
    conn: &DatabaseConnection,
    count: usize,
) -> Result<Vec<Tenant>, BoxError> {
    let table = "(id bigserial PRIMARY KEY, op bigint NOT NULL, tenant text NOT NULL, \
                 note text NOT NULL)";
    conn.execute_unprepared(&format!(
        "CREATE TABLE public.items {table};
         CREATE TABLE public.tenants (tenant_id text PRIMARY KEY, \
             schema_name text NOT NULL UNIQUE, status text NOT NULL, display_name text NOT NULL DEFAULT '', domain text UNIQUE)"
    ))
    .await?;
    let mut tenants = Vec::with_capacity(count);
    let mut sql = String::new();
    for i in 0..count {
        let tenant = Tenant::from_id(TenantId::new(&format!("f{i:03}"))?)?;
        let schema = tenant.schema().quoted();
        sql.push_str(&format!(
            "CREATE SCHEMA {schema}; CREATE TABLE {schema}.items {table};
             INSERT INTO public.tenants VALUES ('{}', '{}', 'active');",
            tenant.id().as_str(),
            tenant.schema().as_str()
        ));
        tenants.push(tenant);
        if sql.len() > 50_000 {
            conn.execute_unprepared(&std::mem::take(&mut sql)).await?;
        }
    }
    if !sql.is_empty() {
        conn.execute_unprepared(&sql).await?;
    }
    Ok(tenants)
}

/// The handle under test: one pool, and a registry read on every
/// by-id transaction (no cache), so registry lookups meet the faults too.
pub fn tenant_db(conn: &DatabaseConnection) -> Result<TenantDb, ScopeError> {
    let registry = TenantRegistry::with_config(
        conn.clone(),
        RegistryConfig::default().with_ttl(Duration::ZERO),
    );
    Ok(TenantDb::new(conn.clone())?.with_registry(registry))
}

/// The workload's shape.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Transactions to run in all (every kind counts).
    pub transactions: u64,
    /// Concurrent workers (more than the pool has connections).
    pub workers: u64,
    /// Weights of [`Kind::Write`], [`Kind::ClosureWrite`], [`Kind::Read`],
    /// [`Kind::Savepoints`], [`Kind::SwallowedError`].
    pub mix: [u32; 5],
    /// Cancel this many transactions in 1000 by dropping their future after
    /// a random delay up to `cancel_within`.
    pub cancel_per_mille: u32,
    /// The longest delay before a cancellation.
    pub cancel_within: Duration,
    /// A `pg_sleep` of this many milliseconds inside some transactions, so
    /// cancellations and kills land mid-statement too.
    pub sleep_ms: u32,
    pub seed: u64,
}

/// Runs `workload` on `db` over `tenants`, recording every outcome in the
/// returned ledger. A foreign row seen inside a scope is reported in the
/// returned list, never excused.
pub async fn run(db: &TenantDb, tenants: &Arc<Vec<Tenant>>, workload: &Workload) -> RunResult {
    let ledger = Arc::new(Ledger::default());
    let next_op = Arc::new(AtomicU64::new(0));
    let violations = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for worker in 0..workload.workers {
        let (db, tenants, ledger, next_op, violations, workload) = (
            db.clone(),
            Arc::clone(tenants),
            Arc::clone(&ledger),
            Arc::clone(&next_op),
            Arc::clone(&violations),
            workload.clone(),
        );
        handles.push(tokio::spawn(async move {
            let mut rng =
                Rng::new(workload.seed ^ (worker + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            loop {
                let op = next_op.fetch_add(1, Ordering::SeqCst);
                if op >= workload.transactions {
                    break;
                }
                let op = i64::try_from(op).unwrap();
                let tenant = rng.below(tenants.len() as u64) as usize;
                let kind = pick_kind(&mut rng, workload.mix);
                let sleep = workload.sleep_ms > 0 && rng.below(4) == 0;
                let cancel_after = (rng.below(1000) < u64::from(workload.cancel_per_mille))
                    .then(|| rng.duration_below(workload.cancel_within));
                let commit_sent = Arc::new(CommitSent::default());
                let work = one_transaction(
                    &db,
                    &tenants[tenant],
                    op,
                    kind,
                    sleep.then_some(workload.sleep_ms),
                    Arc::clone(&commit_sent),
                );
                let (result, cancelled) = match cancel_after {
                    Some(after) => match tokio::time::timeout(after, work).await {
                        Ok(result) => (result, false),
                        Err(_) => (Ok(()), true),
                    },
                    None => (work.await, false),
                };
                let outcome = match (&result, cancelled) {
                    (Ok(()), false) => Outcome::Acknowledged,
                    // The server rolled it back, whatever `commit` said.
                    (Err(_), false) if kind == Kind::SwallowedError => Outcome::Failed,
                    _ if commit_sent.get() => Outcome::Ambiguous,
                    _ => Outcome::Failed,
                };
                let error = match result {
                    Err(Failure::Scope(err))
                        if commit_sent.callback_failed.load(Ordering::SeqCst) =>
                    {
                        let msg = format!(
                            "op {op}: the callback's error was replaced by the library's: {err}"
                        );
                        violations.lock().await.push(msg.clone());
                        Some(msg)
                    }
                    Err(Failure::Foreign(msg)) => {
                        violations.lock().await.push(msg.clone());
                        Some(msg)
                    }
                    // The failure this kind of transaction must end in.
                    Err(_) if kind == Kind::SwallowedError => None,
                    Err(err) => Some(err.to_string()),
                    Ok(()) if kind == Kind::SwallowedError && !cancelled => {
                        let msg = format!(
                            "op {op}: COMMIT after a failed statement returned Ok, but the \
                             server rolled the transaction back: an acknowledged commit is lost"
                        );
                        violations.lock().await.push(msg.clone());
                        Some(msg)
                    }
                    Ok(()) => None,
                };
                ledger.record(
                    op,
                    Entry {
                        tenant,
                        kind,
                        outcome,
                    },
                    cancelled,
                    error,
                );
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    let violations = violations.lock().await.clone();
    RunResult { ledger, violations }
}

/// The ledger of a run and the violations its workers saw (a foreign row
/// in a scope, an acknowledged commit the server rolled back).
pub struct RunResult {
    pub ledger: Arc<Ledger>,
    pub violations: Vec<String>,
}

impl RunResult {
    /// Fails with the number of violations and the first few.
    #[track_caller]
    pub fn assert_no_violations(&self) {
        assert!(
            self.violations.is_empty(),
            "{} violations, the first: {:#?}",
            self.violations.len(),
            &self.violations[..self.violations.len().min(3)]
        );
    }
}

/// The seed: `TENANCY_FAULT_SEED` to replay a run, else the clock. Printed
/// so a failing run can be replayed.
pub fn seed() -> u64 {
    let seed = std::env::var("TENANCY_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("fault seed: {seed} (replay with TENANCY_FAULT_SEED={seed})");
    seed
}

/// Runs `n` plain scoped transactions that must all succeed: the pool works.
pub async fn pool_recovers(db: &TenantDb, tenants: &[Tenant], n: usize) -> Result<(), BoxError> {
    for i in 0..n {
        let tenant = &tenants[i % tenants.len()];
        let txn = db.begin(tenant).await?;
        let schema: String = txn
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT current_schema() AS s",
            ))
            .await?
            .ok_or("no row")?
            .try_get("", "s")?;
        assert_eq!(schema, tenant.schema().as_str());
        txn.commit().await?;
    }
    Ok(())
}
