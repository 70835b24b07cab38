//! The fault suite's workload and its bookkeeping: tenants with identical
//! `items` tables, workers running scoped transactions whose every outcome is
//! written down (acknowledged, failed, ambiguous), and the final check that
//! the database holds exactly what was acknowledged, nothing foreign, nothing
//! twice.
//!
//! Each fault test adds its fault (killed backends, cancelled futures) to
//! this workload; the soak runs it at size.

#![allow(dead_code, unreachable_pub)]

pub mod pg;
pub mod rng;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt as _;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, Statement,
    StreamTrait as _, TransactionTrait,
};
use tenancy::sea_orm::{
    Error as ScopeError, RegistryConfig, TenantDb, TenantRegistry, TenantTransaction,
};
use tenancy::{Tenant, TenantId, TenantScope as _};
use tenancy_testing::TestDatabase;
use tokio::sync::Mutex;

use rng::Rng;

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
             schema_name text NOT NULL UNIQUE, status text NOT NULL)"
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

/// What one transaction of the workload does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `begin`, insert one row, a read check, `commit`.
    Write,
    /// The closure API: insert one row inside `TenantDb::transaction`, or
    /// (odd ops) `TenantDb::transaction_registered`, by id.
    ClosureWrite,
    /// Read the tenant's rows and check none is foreign; commit. Every
    /// third one first streams the rows and stops after two, leaving the
    /// rest of the result unread on the connection.
    Read,
    /// Insert a row, then a savepoint whose row is kept (released) and one
    /// whose row is rolled back (after a failed statement, half the time);
    /// commit. Expects two rows, never the third.
    Savepoints,
    /// A caller's bug: a statement fails, the error is ignored, and the
    /// transaction is committed. PostgreSQL answers that COMMIT with a
    /// rollback, so `commit` must fail; if it returned `Ok`, an acknowledged
    /// row would be missing.
    SwallowedError,
}

impl Kind {
    /// The notes of the rows this transaction leaves when it commits.
    fn expected_notes(self) -> &'static [&'static str] {
        match self {
            Self::Write | Self::ClosureWrite | Self::SwallowedError => &[NOTE_MAIN],
            Self::Read => &[],
            Self::Savepoints => &[NOTE_MAIN, NOTE_RELEASED],
        }
    }
}

const NOTE_MAIN: &str = "main";
const NOTE_RELEASED: &str = "savepoint released";
/// A row written in a savepoint that was rolled back: must never exist.
const NOTE_UNDONE: &str = "savepoint rolled back";

/// How a transaction ended, as its caller saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `commit` returned `Ok`: its rows must be there.
    Acknowledged,
    /// Failed or cancelled before `COMMIT` was sent: its rows must not be there.
    Failed,
    /// Failed or cancelled after `COMMIT` was sent: either all of its rows
    /// or none may be there, never some, never twice.
    Ambiguous,
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

/// What a run did, as counted by its workers.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    pub transactions: u64,
    pub acknowledged: u64,
    pub failed: u64,
    pub ambiguous: u64,
    pub cancelled: u64,
    pub errors: u64,
    pub by_kind: HashMap<String, u64>,
    pub first_errors: Vec<String>,
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kinds: Vec<_> = self.by_kind.iter().collect();
        kinds.sort();
        write!(
            f,
            "{} transactions ({}): {} acknowledged, {} failed before COMMIT, {} ambiguous; \
             {} cancelled, {} errors",
            self.transactions,
            kinds
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            self.acknowledged,
            self.failed,
            self.ambiguous,
            self.cancelled,
            self.errors
        )
    }
}

/// One transaction's entry in the ledger.
#[derive(Debug, Clone, Copy)]
struct Entry {
    tenant: usize,
    kind: Kind,
    outcome: Outcome,
}

/// Every transaction's outcome, by op id.
#[derive(Default)]
pub struct Ledger {
    entries: std::sync::Mutex<HashMap<i64, Entry>>,
    counts: std::sync::Mutex<Counts>,
}

impl Ledger {
    fn record(&self, op: i64, entry: Entry, cancelled: bool, error: Option<String>) {
        self.entries.lock().unwrap().insert(op, entry);
        let mut counts = self.counts.lock().unwrap();
        counts.transactions += 1;
        *counts
            .by_kind
            .entry(format!("{:?}", entry.kind))
            .or_default() += 1;
        match entry.outcome {
            Outcome::Acknowledged => counts.acknowledged += 1,
            Outcome::Failed => counts.failed += 1,
            Outcome::Ambiguous => counts.ambiguous += 1,
        }
        if cancelled {
            counts.cancelled += 1;
        }
        if let Some(error) = error {
            counts.errors += 1;
            if counts.first_errors.len() < 5 {
                counts.first_errors.push(error);
            }
        }
    }

    pub fn counts(&self) -> Counts {
        self.counts.lock().unwrap().clone()
    }

    /// About how much memory the ledger itself holds (KiB): part of the
    /// process's RSS growth over a run is this bookkeeping, not the library.
    pub fn approx_kib(&self) -> u64 {
        let entries = self.entries.lock().unwrap();
        let per_slot = std::mem::size_of::<(i64, Entry)>() + 1;
        (entries.capacity() * per_slot / 1024) as u64
    }
}

/// Why a transaction of the workload failed.
#[derive(Debug)]
enum Failure {
    Scope(ScopeError),
    Db(DbErr),
    /// A scope saw a row of another tenant: the one failure that is never
    /// excused by a fault.
    Foreign(String),
}

impl From<ScopeError> for Failure {
    fn from(err: ScopeError) -> Self {
        Self::Scope(err)
    }
}

impl From<DbErr> for Failure {
    fn from(err: DbErr) -> Self {
        Self::Db(err)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Scope(err) => write!(f, "{err}"),
            Self::Db(err) => write!(f, "{err}"),
            Self::Foreign(msg) => write!(f, "{msg}"),
        }
    }
}

/// How far a transaction got, as its worker saw it.
#[derive(Default)]
struct CommitSent {
    /// `COMMIT` may have reached the server.
    sent: AtomicBool,
    /// The closure API's callback returned an error.
    callback_failed: AtomicBool,
}

impl CommitSent {
    fn mark(&self) {
        self.sent.store(true, Ordering::SeqCst);
    }
    fn get(&self) -> bool {
        self.sent.load(Ordering::SeqCst)
    }
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

fn pick_kind(rng: &mut Rng, mix: [u32; 5]) -> Kind {
    let total: u32 = mix.iter().sum();
    let mut roll = u32::try_from(rng.below(u64::from(total))).unwrap();
    for (weight, kind) in mix.iter().zip([
        Kind::Write,
        Kind::ClosureWrite,
        Kind::Read,
        Kind::Savepoints,
        Kind::SwallowedError,
    ]) {
        if roll < *weight {
            return kind;
        }
        roll -= weight;
    }
    Kind::Read
}

fn insert(op: i64, tenant: &str, note: &str) -> Statement {
    Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO items (op, tenant, note) VALUES ($1, $2, $3)",
        [op.into(), tenant.into(), note.into()],
    )
}

/// Counts the rows of other tenants the scope can see through the
/// unqualified name: must be zero.
async fn check_scope(txn: &TenantTransaction, tenant: &str) -> Result<(), Failure> {
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(*) FILTER (WHERE tenant <> $1) AS foreign_rows, \
                    current_schema() AS schema FROM items",
            [tenant.into()],
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("no row".into()))?;
    let foreign: i64 = row.try_get("", "foreign_rows")?;
    let schema: String = row.try_get("", "schema")?;
    if foreign != 0 || schema != format!("tenant_{tenant}") {
        return Err(Failure::Foreign(format!(
            "scope of {tenant} resolved `items` in schema {schema} and saw {foreign} foreign rows"
        )));
    }
    Ok(())
}

async fn maybe_sleep(txn: &TenantTransaction, sleep_ms: Option<u32>) -> Result<(), DbErr> {
    if let Some(ms) = sleep_ms {
        txn.execute_unprepared(&format!("SELECT pg_sleep({ms} / 1000.0)"))
            .await?;
    }
    Ok(())
}

async fn one_transaction(
    db: &TenantDb,
    tenant: &Tenant,
    op: i64,
    kind: Kind,
    sleep_ms: Option<u32>,
    commit_sent: Arc<CommitSent>,
) -> Result<(), Failure> {
    let id = tenant.id().as_str().to_owned();
    match kind {
        Kind::ClosureWrite => {
            let body = write_body(op, id, sleep_ms, Arc::clone(&commit_sent));
            if op % 2 == 1 {
                db.transaction_registered(tenant.id(), body).await
            } else {
                db.transaction(tenant, body).await
            }
        }
        Kind::Write | Kind::Read | Kind::Savepoints | Kind::SwallowedError => {
            let txn = db.begin(tenant).await?;
            match kind {
                Kind::Write => {
                    txn.execute_raw(insert(op, &id, NOTE_MAIN)).await?;
                }
                Kind::SwallowedError => {
                    txn.execute_raw(insert(op, &id, NOTE_MAIN)).await?;
                    check_scope(&txn, &id).await?;
                    let failed = txn.execute_unprepared("SELECT 1 / 0").await;
                    assert!(failed.is_err(), "1 / 0 succeeded");
                    commit_sent.mark();
                    txn.commit().await?;
                    return Ok(());
                }
                Kind::Savepoints => {
                    txn.execute_raw(insert(op, &id, NOTE_MAIN)).await?;
                    let kept = txn.begin().await?;
                    kept.execute_raw(insert(op, &id, NOTE_RELEASED)).await?;
                    kept.commit().await?;
                    let undone = txn.begin().await?;
                    undone.execute_raw(insert(op, &id, NOTE_UNDONE)).await?;
                    maybe_sleep(&undone, sleep_ms).await?;
                    if op % 2 == 0 {
                        // Rolling back to the savepoint recovers the
                        // transaction from a failed statement.
                        let failed = undone.execute_unprepared("SELECT 1 / 0").await;
                        assert!(failed.is_err(), "1 / 0 succeeded");
                    }
                    undone.rollback().await?;
                }
                Kind::Read if op % 3 == 0 => {
                    let mut rows = txn
                        .stream_raw(Statement::from_string(
                            DbBackend::Postgres,
                            "SELECT tenant FROM items",
                        ))
                        .await?;
                    for _ in 0..2 {
                        if let Some(row) = rows.next().await {
                            let owner: String = row?.try_get("", "tenant")?;
                            if owner != id {
                                return Err(Failure::Foreign(format!(
                                    "scope of {id} streamed a row of {owner}"
                                )));
                            }
                        }
                    }
                }
                Kind::Read | Kind::ClosureWrite => {}
            }
            maybe_sleep(&txn, sleep_ms).await?;
            check_scope(&txn, &id).await?;
            commit_sent.mark();
            txn.commit().await?;
            Ok(())
        }
    }
}

/// The callback of [`Kind::ClosureWrite`].
fn write_body(
    op: i64,
    id: String,
    sleep_ms: Option<u32>,
    marker: Arc<CommitSent>,
) -> impl for<'c> FnOnce(
    &'c TenantTransaction,
) -> std::pin::Pin<Box<dyn Future<Output = Result<(), Failure>> + Send + 'c>>
+ Send {
    move |txn| {
        Box::pin(async move {
            let result = async {
                txn.execute_raw(insert(op, &id, NOTE_MAIN)).await?;
                maybe_sleep(txn, sleep_ms).await?;
                check_scope(txn, &id).await
            }
            .await;
            match result {
                // Returning Ok makes `transaction` send COMMIT next.
                Ok(()) => marker.mark(),
                // `transaction` must hand this error back, whatever its
                // rollback meets (a dead connection, say).
                Err(_) => marker.callback_failed.store(true, Ordering::SeqCst),
            }
            result
        })
    }
}

/// What the final check found.
#[derive(Debug, Default)]
pub struct Verified {
    pub rows: u64,
    pub acknowledged_ops: u64,
    pub ambiguous_present: u64,
    pub ambiguous_absent: u64,
}

/// Reads every tenant's rows and the shared table, and compares them with
/// the ledger: acknowledged transactions all there, exactly once; failed
/// ones absent; ambiguous ones whole or absent; every row in its own
/// tenant's schema; nothing in `public.items`; no rolled-back savepoint row.
pub async fn verify(
    conn: &DatabaseConnection,
    tenants: &[Tenant],
    ledger: &Ledger,
) -> Result<Verified, BoxError> {
    let shared = pg::count(conn, "SELECT count(*) FROM public.items").await?;
    assert_eq!(shared, 0, "{shared} rows fell through to public.items");

    // (op, note) -> how many times, per schema's tenant index.
    let mut found: HashMap<(i64, String), Vec<usize>> = HashMap::new();
    let mut rows = 0;
    for chunk in tenants.chunks(200).enumerate() {
        let (chunk_no, chunk) = chunk;
        let sql = chunk
            .iter()
            .enumerate()
            .map(|(i, t)| {
                format!(
                    "SELECT {} AS idx, op, tenant, note FROM {}.items",
                    chunk_no * 200 + i,
                    t.schema().quoted()
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        for row in conn
            .query_all_raw(Statement::from_string(DbBackend::Postgres, sql))
            .await?
        {
            let idx = usize::try_from(row.try_get::<i32>("", "idx")?)?;
            let op: i64 = row.try_get("", "op")?;
            let owner: String = row.try_get("", "tenant")?;
            let note: String = row.try_get("", "note")?;
            assert_eq!(
                owner,
                tenants[idx].id().as_str(),
                "foreign row: op {op} of tenant {owner} is in {}",
                tenants[idx].schema()
            );
            assert_ne!(
                note, NOTE_UNDONE,
                "op {op}: a rolled-back savepoint's row is present"
            );
            found.entry((op, note)).or_default().push(idx);
            rows += 1;
        }
    }

    let entries = ledger.entries.lock().unwrap();
    for ((op, note), places) in &found {
        let entry = entries
            .get(op)
            .unwrap_or_else(|| panic!("row of op {op} ({note}) belongs to no transaction"));
        assert_eq!(
            places.len(),
            1,
            "op {op} ({note}) is present {} times: done twice",
            places.len()
        );
        assert_eq!(
            places[0], entry.tenant,
            "op {op} landed in another tenant's schema"
        );
    }
    let mut verified = Verified {
        rows,
        ..Verified::default()
    };
    for (op, entry) in entries.iter() {
        let expected = entry.kind.expected_notes();
        let present = expected
            .iter()
            .filter(|note| found.contains_key(&(*op, (**note).to_owned())))
            .count();
        match entry.outcome {
            Outcome::Acknowledged => {
                assert_eq!(
                    present,
                    expected.len(),
                    "op {op} ({:?}) was acknowledged but {present} of its {} rows are present: \
                     lost",
                    entry.kind,
                    expected.len()
                );
                if !expected.is_empty() {
                    verified.acknowledged_ops += 1;
                }
            }
            Outcome::Failed => assert_eq!(
                present, 0,
                "op {op} ({:?}) failed before COMMIT but {present} of its rows are present",
                entry.kind
            ),
            Outcome::Ambiguous => {
                assert!(
                    present == 0 || present == expected.len(),
                    "op {op} ({:?}) is half there: {present} of {} rows",
                    entry.kind,
                    expected.len()
                );
                if expected.is_empty() {
                } else if present == 0 {
                    verified.ambiguous_absent += 1;
                } else {
                    verified.ambiguous_present += 1;
                }
            }
        }
    }
    Ok(verified)
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
