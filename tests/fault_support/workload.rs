//! One transaction of the workload: what each kind does, and how far it
//! got before it ended (so a failure can be told from an ambiguous commit).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::StreamExt as _;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, StreamTrait as _, TransactionTrait};
use tenancy::{ScopeError, Tenant, TenantDb, TenantTransaction};

use super::rng::Rng;

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
    pub fn expected_notes(self) -> &'static [&'static str] {
        match self {
            Self::Write | Self::ClosureWrite | Self::SwallowedError => &[NOTE_MAIN],
            Self::Read => &[],
            Self::Savepoints => &[NOTE_MAIN, NOTE_RELEASED],
        }
    }
}

pub const NOTE_MAIN: &str = "main";
pub const NOTE_RELEASED: &str = "savepoint released";
/// A row written in a savepoint that was rolled back: must never exist.
pub const NOTE_UNDONE: &str = "savepoint rolled back";

/// Why a transaction of the workload failed.
#[derive(Debug)]
pub enum Failure {
    Scope(ScopeError),
    Db(DbErr),
    /// A scope saw a row of another tenant: the one failure that is never
    /// excused by a fault.
    Foreign(String),
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
pub struct CommitSent {
    /// `COMMIT` may have reached the server.
    sent: AtomicBool,
    /// The closure API's callback returned an error.
    pub callback_failed: AtomicBool,
}

impl CommitSent {
    pub fn mark(&self) {
        self.sent.store(true, Ordering::SeqCst);
    }
    pub fn get(&self) -> bool {
        self.sent.load(Ordering::SeqCst)
    }
}

pub fn pick_kind(rng: &mut Rng, mix: [u32; 5]) -> Kind {
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

pub async fn one_transaction(
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
            let marker = Arc::clone(&commit_sent);
            let body = async move |txn: &TenantTransaction| {
                write_body(txn, op, &id, sleep_ms, &marker).await
            };
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
async fn write_body(
    txn: &TenantTransaction,
    op: i64,
    id: &str,
    sleep_ms: Option<u32>,
    marker: &CommitSent,
) -> Result<(), Failure> {
    {
        let result = async {
            txn.execute_raw(insert(op, id, NOTE_MAIN)).await?;
            maybe_sleep(txn, sleep_ms).await?;
            check_scope(txn, id).await
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
    }
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
