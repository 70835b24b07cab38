//! The tenant transaction: SeaORM's connection traits over one pooled
//! connection whose transaction pinned the tenant's search path.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use sea_orm::sqlx::Executor as _;
use sea_orm::{
    AccessMode, ConnectionTrait, DbBackend, DbErr, ExecResult, IsolationLevel, QueryResult,
    Statement, StreamTrait, TransactionError, TransactionOptions, TransactionSession,
    TransactionTrait,
};
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_core::transaction::TransactionManager as _;
use tokio::sync::Mutex;
use tracing::Instrument as _;

use crate::connection::{
    PgTransactionManager, ScopedConnection, Statements, exec_err, is_stale_plan, note_failure,
    query_err, sqlx_query,
};
use crate::error::{Error, ScopeLabel};

/// A transaction pinned to one tenant's schema.
///
/// Opened by [`TenantDb::begin`](crate::TenantDb::begin) (or used inside
/// [`TenantDb::transaction`](crate::TenantDb::transaction)). It implements
/// SeaORM's [`ConnectionTrait`], [`StreamTrait`], [`TransactionTrait`] and
/// [`TransactionSession`], so entities, `sea_query` statements and raw
/// statements work on it unchanged and resolve to the tenant's tables.
///
/// Ends with [`commit`](Self::commit) or [`rollback`](Self::rollback). Dropped
/// without either (an early `?`, a panic, a cancelled future) it rolls back:
/// the `ROLLBACK` is queued on the connection and sent before the connection
/// is used again, and since the search path was set with `SET LOCAL`, nothing
/// of the tenant is left on the pooled connection.
///
/// [`begin`](TransactionTrait::begin) on it opens a savepoint that keeps the
/// tenant's scope; rolling the savepoint back keeps it too.
///
/// ```
/// use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let test_db = tenancy_testing::TestDatabase::create().await?;
/// # let conn = test_db.connect().await?;
/// # conn.execute_unprepared("CREATE SCHEMA tenant_acme; CREATE TABLE tenant_acme.note (body text)").await?;
/// # let db = tenancy::orm::TenantDb::new(conn.clone())?;
/// # let acme = tenancy::Tenant::from_id("acme".parse()?)?;
/// let txn = db.begin(&acme).await?;
/// txn.execute_unprepared("INSERT INTO note VALUES ('kept')").await?;
///
/// let savepoint = txn.begin().await?; // SAVEPOINT, still scoped to tenant_acme
/// savepoint.execute_unprepared("INSERT INTO note VALUES ('undone')").await?;
/// savepoint.rollback().await?;
/// txn.commit().await?;
///
/// let count = Statement::from_string(DbBackend::Postgres, "SELECT count(*) AS n FROM tenant_acme.note");
/// let row = conn.query_one_raw(count).await?.expect("one row");
/// assert_eq!(row.try_get::<i64>("", "n")?, 1);
/// # conn.close().await?;
/// # test_db.close().await?;
/// # Ok(()) }
/// ```
pub struct TenantTransaction {
    conn: Arc<Mutex<ScopedConnection>>,
    /// This handle's nesting level: 1 for the transaction, 2+ for savepoints.
    depth: usize,
    open: bool,
    scope: Arc<ScopeLabel>,
    span: tracing::Span,
    /// Copied from the connection, so a statement can be built before the lock.
    statements: Statements,
}

impl TenantTransaction {
    pub(crate) fn new(conn: ScopedConnection, scope: Arc<ScopeLabel>, span: tracing::Span) -> Self {
        Self {
            statements: conn.statements,
            conn: Arc::new(Mutex::new(conn)),
            depth: 1,
            open: true,
            scope,
            span,
        }
    }

    /// Which tenant this transaction is scoped to.
    ///
    /// ```no_run
    /// # async fn demo(db: tenancy::orm::TenantDb, tenant: tenancy::Tenant) -> Result<(), tenancy::orm::Error> {
    /// let txn = db.begin(&tenant).await?;
    /// println!("working in {}", txn.scope());
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn scope(&self) -> &ScopeLabel {
        &self.scope
    }

    /// Commits the transaction (or releases the savepoint, when nested).
    ///
    /// ```
    /// use sea_orm::ConnectionTrait;
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let test_db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = test_db.connect().await?;
    /// # conn.execute_unprepared("CREATE SCHEMA tenant_acme; CREATE TABLE tenant_acme.note (body text)").await?;
    /// # let db = tenancy::orm::TenantDb::new(conn.clone())?;
    /// # let acme = tenancy::Tenant::from_id("acme".parse()?)?;
    /// let txn = db.begin(&acme).await?;
    /// txn.execute_unprepared("INSERT INTO note VALUES ('hello')").await?;
    /// txn.commit().await?; // visible to everyone from here on
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// When a statement of this transaction (or savepoint) failed, whether
    /// or not its error was handled, PostgreSQL cannot commit it: it is rolled
    /// back and the error carries [`Error::CommitRolledBack`] (get it with
    /// [`Error::in_db_err`]; its SQLSTATE is the failed statement's).
    /// A savepoint rolled back this way leaves the enclosing transaction
    /// usable.
    ///
    /// Otherwise the server's error, as [`DbErr`]; the transaction is then
    /// rolled back and the connection discarded rather than returned to the
    /// pool. If the connection was lost during the COMMIT, the outcome is
    /// unknown: see [`FailureKind`](crate::FailureKind).
    pub async fn commit(self) -> Result<(), DbErr> {
        self.end(true).await.map_err(DbErr::from)
    }

    /// Rolls the transaction back (or back to the savepoint, when nested).
    ///
    /// ```
    /// use sea_orm::{ConnectionTrait, DbBackend, Statement};
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let test_db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = test_db.connect().await?;
    /// # conn.execute_unprepared("CREATE SCHEMA tenant_acme; CREATE TABLE tenant_acme.note (body text)").await?;
    /// # let db = tenancy::orm::TenantDb::new(conn.clone())?;
    /// # let acme = tenancy::Tenant::from_id("acme".parse()?)?;
    /// let txn = db.begin(&acme).await?;
    /// txn.execute_unprepared("INSERT INTO note VALUES ('draft')").await?;
    /// txn.rollback().await?;
    ///
    /// let count = Statement::from_string(DbBackend::Postgres, "SELECT count(*) AS n FROM tenant_acme.note");
    /// let row = conn.query_one_raw(count).await?.expect("one row");
    /// assert_eq!(row.try_get::<i64>("", "n")?, 0);
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The server's error, as [`DbErr`]; the connection is then discarded.
    pub async fn rollback(self) -> Result<(), DbErr> {
        self.end(false).await.map_err(DbErr::from)
    }

    /// Runs `callback` in a savepoint of this transaction: released when it
    /// returns `Ok`, rolled back (leaving this transaction usable) when it
    /// returns `Err`. The async-closure form of SeaORM's
    /// `TransactionTrait::transaction`, as `DatabaseTransaction::transaction_async`
    /// is in SeaORM.
    ///
    /// ```
    /// use sea_orm::{ConnectionTrait, DbErr, TransactionError};
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let test_db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = test_db.connect().await?;
    /// # conn.execute_unprepared("CREATE SCHEMA tenant_acme; CREATE TABLE tenant_acme.note (body text)").await?;
    /// # let db = tenancy::orm::TenantDb::new(conn.clone())?;
    /// # let acme = tenancy::Tenant::from_id("acme".parse()?)?;
    /// let body = String::from("kept");
    /// db.transaction(&acme, async |txn| {
    ///     txn.execute_unprepared(&format!("INSERT INTO note VALUES ('{body}')")).await?;
    ///     let undone = txn
    ///         .transaction_async(async |inner| {
    ///             inner.execute_unprepared("INSERT INTO note VALUES ('undone')").await?;
    ///             Err::<(), _>(DbErr::Custom("changed my mind".into()))
    ///         })
    ///         .await;
    ///     assert!(matches!(undone, Err(TransactionError::Transaction(_))));
    ///     Ok::<_, DbErr>(())
    /// })
    /// .await?;
    /// # let n: i64 = conn.query_one_raw(sea_orm::Statement::from_string(
    /// #     sea_orm::DbBackend::Postgres, "SELECT count(*) FROM tenant_acme.note")).await?
    /// #     .expect("a row").try_get_by_index(0)?;
    /// # assert_eq!(n, 1);
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `TransactionError::Transaction` with the callback's error, or
    /// `TransactionError::Connection` when the savepoint could not be
    /// opened or released.
    pub async fn transaction_async<F, T, E>(&self, callback: F) -> Result<T, TransactionError<E>>
    where
        F: TransactionCallback<T, E>,
        T: Send,
        E: fmt::Display + fmt::Debug + Send,
    {
        let savepoint = self
            .savepoint()
            .await
            .map_err(TransactionError::Connection)?;
        savepoint.run(callback).await
    }

    /// Ends the transaction (or savepoint) and says exactly what happened.
    pub(crate) async fn end(mut self, commit: bool) -> Result<(), Error> {
        self.finish(commit).await
    }

    /// Rolls back after the caller's own error, which is what the caller
    /// needs to see: a failed rollback (most often the same lost connection)
    /// is logged, not returned. The server rolls back a transaction whose
    /// connection is gone, and a connection whose rollback failed is closed
    /// rather than pooled.
    pub(crate) async fn rollback_after_error(self) {
        let span = self.span.clone();
        if let Err(err) = self.end(false).await {
            tracing::warn!(
                parent: &span,
                error = %err,
                "rollback after the callback's error failed; returning the callback's error, \
                 the connection is closed rather than reused"
            );
        }
    }

    async fn finish(&mut self, commit: bool) -> Result<(), Error> {
        let span = self.span.clone();
        let mut guard = self.conn.lock().await;
        // Whatever happens now, Drop must not queue another rollback.
        self.open = false;
        // Cloned only for an error: this runs on every commit.
        let scope = || (*self.scope).clone();
        if guard.depth() != self.depth {
            // A nested transaction is still open above this one: COMMIT here
            // would only release the savepoint, and dropping the savepoint
            // later would undo everything. Closing the connection rolls it
            // all back on the server, which is at least what it says.
            guard.discard = true;
            let source = DbErr::Custom(format!(
                "cannot finish the transaction for {} while a nested transaction (savepoint) \
                 opened from it is still open; finish that first. Everything was rolled back",
                self.scope
            ));
            return Err(if commit {
                Error::Commit {
                    scope: scope(),
                    source,
                }
            } else {
                Error::Rollback {
                    scope: scope(),
                    source,
                }
            });
        }
        // A level that a failed statement aborted cannot commit: PostgreSQL
        // answers its COMMIT with ROLLBACK (and its RELEASE SAVEPOINT with an
        // error), and sqlx reports the former as success. Roll it back
        // instead, and say so.
        let failure = guard.failure.take();
        let committing = commit && failure.is_none();
        let result = if committing {
            PgTransactionManager::commit(&mut guard.conn)
                .instrument(span)
                .await
        } else {
            PgTransactionManager::rollback(&mut guard.conn)
                .instrument(span)
                .await
        };
        let result = result.map_err(exec_err);
        if let Err(err) = &result {
            guard.discard = true;
            // The enclosing level (if any) is in an unknown state: it must
            // not commit as if nothing happened.
            guard.failure = Some(failure.clone().unwrap_or_else(|| err.clone()));
        }
        match (failure, result) {
            (Some(source), result) if commit => {
                if let Err(err) = result {
                    tracing::warn!(
                        parent: &self.span,
                        error = %err,
                        "rolling back the aborted transaction for {} failed; the connection is \
                         closed rather than reused",
                        self.scope
                    );
                }
                Err(Error::CommitRolledBack {
                    scope: scope(),
                    source,
                })
            }
            (_, Ok(())) => Ok(()),
            (_, Err(source)) if committing => Err(Error::Commit {
                scope: scope(),
                source,
            }),
            (_, Err(source)) => Err(Error::Rollback {
                scope: scope(),
                source,
            }),
        }
    }

    /// Opens a savepoint sharing this transaction's connection and scope.
    async fn savepoint(&self) -> Result<Self, DbErr> {
        let mut guard = self.conn.lock().await;
        PgTransactionManager::begin(&mut guard.conn, None)
            .instrument(self.span.clone())
            .await
            .map_err(|err| {
                guard.discard = true;
                query_err(err)
            })?;
        let depth = guard.depth();
        Ok(Self {
            conn: Arc::clone(&self.conn),
            depth,
            open: true,
            scope: Arc::clone(&self.scope),
            span: self.span.clone(),
            statements: self.statements,
        })
    }

    /// Runs `callback` in this transaction, then commits on `Ok` and rolls
    /// back on `Err`, as SeaORM's `DatabaseTransaction` does.
    async fn run<F, T, E>(self, callback: F) -> Result<T, TransactionError<E>>
    where
        F: TransactionCallback<T, E>,
        T: Send,
        E: fmt::Display + fmt::Debug + Send,
    {
        match callback(&self).await {
            Ok(value) => {
                self.commit().await.map_err(TransactionError::Connection)?;
                Ok(value)
            }
            Err(err) => {
                self.rollback_after_error().await;
                Err(TransactionError::Transaction(err))
            }
        }
    }
}

/// What [`TenantDb::transaction`](crate::TenantDb::transaction) and its
/// relatives run: an async closure that borrows the transaction, and may
/// borrow from its caller too (`async |txn| { … }`, Rust 1.85 or later).
///
/// Implemented for every such closure that is `Send`; there is nothing to
/// implement by hand. To share a transaction body between call sites, write
/// an `async fn` that takes the transaction and call it from the closure,
/// rather than returning `impl TransactionCallback` from a function: the
/// compiler cannot see through such a return type that the future is `Send`
/// (which `tokio::spawn` and axum handlers need).
///
/// ```
/// use sea_orm::{ConnectionTrait, DbErr};
/// use tenancy::orm::{TenantDb, TenantTransaction};
///
/// async fn add_note(txn: &TenantTransaction, body: &str) -> Result<(), DbErr> {
///     txn.execute_raw(sea_orm::Statement::from_sql_and_values(
///         sea_orm::DbBackend::Postgres,
///         "INSERT INTO note (body) VALUES ($1)",
///         [body.into()],
///     ))
///     .await?;
///     Ok(())
/// }
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let test_db = tenancy_testing::TestDatabase::create().await?;
/// # let conn = test_db.connect().await?;
/// # conn.execute_unprepared("CREATE SCHEMA tenant_acme; CREATE TABLE tenant_acme.note (body text)").await?;
/// let db = TenantDb::new(conn)?;
/// let acme = tenancy::Tenant::from_id("acme".parse()?)?;
/// let body = String::from("borrowed, not moved");
/// let spawned = tokio::spawn(async move {
///     db.transaction(&acme, async |txn| add_note(txn, &body).await).await
/// });
/// spawned.await??;
/// # test_db.close().await?;
/// # Ok(()) }
/// ```
pub trait TransactionCallback<T, E>:
    for<'c> AsyncFnOnce(&'c TenantTransaction) -> Result<T, E> + Send
{
}

impl<F, T, E> TransactionCallback<T, E> for F where
    F: for<'c> AsyncFnOnce(&'c TenantTransaction) -> Result<T, E> + Send
{
}

/// Runs one statement, restarting the transaction once when the first
/// statement hits a stale prepared plan (see `ScopedConnection::restart`).
macro_rules! run_statement {
    ($txn:expr, |$conn:ident| $body:expr, $map_err:expr) => {{
        let mut guard = $txn.conn.lock().await;
        let first = {
            let $conn = &mut *guard.conn;
            $body.await
        };
        let result = match first {
            Err(err) if guard.can_restart_after(&err) => match guard.restart().await {
                Ok(()) => {
                    let $conn = &mut *guard.conn;
                    $body.await
                }
                Err(_) => Err(err),
            },
            other => other,
        };
        match result {
            Ok(value) => {
                guard.fresh = false;
                Ok(value)
            }
            Err(err) => {
                // Later statements of this transaction can no longer be restarted.
                guard.fresh = false;
                if is_stale_plan(&err) {
                    guard.discard = true;
                }
                let err = $map_err(err);
                guard.note_failure(&err);
                Err(err)
            }
        }
    }};
}

#[async_trait::async_trait]
impl ConnectionTrait for TenantTransaction {
    fn get_database_backend(&self) -> DbBackend {
        DbBackend::Postgres
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        let statements = self.statements;
        let statement = async {
            run_statement!(
                self,
                |conn| sqlx_query(&stmt, statements).execute(&mut *conn),
                exec_err
            )
        };
        statement
            .instrument(self.span.clone())
            .await
            .map(ExecResult::from)
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        let statement = async {
            run_statement!(
                self,
                |conn| conn.execute(AssertSqlSafe(sql.to_owned())),
                exec_err
            )
        };
        statement
            .instrument(self.span.clone())
            .await
            .map(ExecResult::from)
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        let statements = self.statements;
        let statement = async {
            run_statement!(
                self,
                |conn| sqlx_query(&stmt, statements).fetch_optional(&mut *conn),
                query_err
            )
        };
        let row = statement.instrument(self.span.clone()).await?;
        Ok(row.map(QueryResult::from))
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let statements = self.statements;
        let statement = async {
            run_statement!(
                self,
                |conn| sqlx_query(&stmt, statements).fetch_all(&mut *conn),
                query_err
            )
        };
        let rows = statement.instrument(self.span.clone()).await?;
        Ok(rows.into_iter().map(QueryResult::from).collect())
    }
}

impl StreamTrait for TenantTransaction {
    type Stream<'a> = BoxStream<'a, Result<QueryResult, DbErr>>;

    fn get_database_backend(&self) -> DbBackend {
        DbBackend::Postgres
    }

    fn stream_raw<'a>(
        &'a self,
        stmt: Statement,
    ) -> Pin<Box<dyn Future<Output = Result<Self::Stream<'a>, DbErr>> + 'a + Send>> {
        Box::pin(async move {
            // The lock is held for the life of the stream: the connection
            // cannot serve another statement while rows are still arriving.
            let mut guard = self.conn.lock().await;
            guard.fresh = false;
            let rows = async_stream::stream! {
                let scoped: &mut ScopedConnection = &mut guard;
                let mut rows = sqlx_query(&stmt, scoped.statements).fetch(&mut *scoped.conn);
                while let Some(row) = rows.next().await {
                    if let Err(err) = &row
                        && is_stale_plan(err)
                    {
                        // Rows may already have reached the caller, so this
                        // cannot be replayed; a retry on a fresh connection can.
                        scoped.discard = true;
                    }
                    let row = row.map(QueryResult::from).map_err(query_err);
                    if let Err(err) = &row {
                        note_failure(&mut scoped.failure, err);
                    }
                    yield row;
                }
            };
            Ok(rows.boxed())
        })
    }
}

#[async_trait::async_trait]
impl TransactionTrait for TenantTransaction {
    type Transaction = TenantTransaction;

    async fn begin(&self) -> Result<TenantTransaction, DbErr> {
        self.savepoint().await
    }

    async fn begin_with_config(
        &self,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<TenantTransaction, DbErr> {
        refuse_nested_config(isolation_level.is_some() || access_mode.is_some())?;
        self.savepoint().await
    }

    async fn begin_with_options(
        &self,
        options: TransactionOptions,
    ) -> Result<TenantTransaction, DbErr> {
        refuse_nested_config(options.isolation_level.is_some() || options.access_mode.is_some())?;
        self.savepoint().await
    }

    async fn transaction<F, T, E>(&self, callback: F) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(
                &'c TenantTransaction,
            ) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
            + Send,
        T: Send,
        E: fmt::Display + fmt::Debug + Send,
    {
        self.transaction_async(async move |txn: &TenantTransaction| callback(txn).await)
            .await
    }

    async fn transaction_with_config<F, T, E>(
        &self,
        callback: F,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(
                &'c TenantTransaction,
            ) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
            + Send,
        T: Send,
        E: fmt::Display + fmt::Debug + Send,
    {
        refuse_nested_config(isolation_level.is_some() || access_mode.is_some())
            .map_err(TransactionError::Connection)?;
        self.transaction(callback).await
    }
}

/// PostgreSQL fixes isolation and access mode when a transaction begins, so a
/// savepoint cannot change them; saying so beats silently ignoring them.
fn refuse_nested_config(requested: bool) -> Result<(), DbErr> {
    if requested {
        return Err(DbErr::Custom(
            "isolation level and access mode are fixed when the tenant transaction begins; \
             set them with ScopeOptions, not on a nested transaction"
                .to_owned(),
        ));
    }
    Ok(())
}

#[async_trait::async_trait]
impl TransactionSession for TenantTransaction {
    async fn commit(self) -> Result<(), DbErr> {
        TenantTransaction::commit(self).await
    }

    async fn rollback(self) -> Result<(), DbErr> {
        TenantTransaction::rollback(self).await
    }
}

impl Drop for TenantTransaction {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        match self.conn.try_lock() {
            // Queued, not sent: the next use of the connection (at the latest
            // the pool's check when it is returned) sends it first.
            Ok(mut guard) if guard.depth() == self.depth => {
                PgTransactionManager::start_rollback(&mut guard.conn);
                // Whatever failed in this level is rolled back with it.
                guard.failure = None;
            }
            // A savepoint above this level is still open: a queued rollback
            // would undo the wrong level. Close the connection instead.
            Ok(mut guard) => guard.discard = true,
            Err(_) => {
                // Only a concurrent user of a nested transaction can hold the
                // lock here. The transaction then stays open, and the
                // connection is closed instead of pooled once its last handle
                // is gone (see `ScopedConnection`'s Drop).
                tracing::warn!(
                    parent: &self.span,
                    "tenant transaction for {} dropped while its connection was in use; \
                     the connection will be closed instead of reused",
                    self.scope
                );
            }
        }
    }
}

impl fmt::Debug for TenantTransaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantTransaction")
            .field("scope", &self.scope)
            .field("open", &self.open)
            .finish_non_exhaustive()
    }
}
