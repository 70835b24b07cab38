//! The pooled connection under a tenant transaction, and the pieces of
//! SeaORM's PostgreSQL driver that are not public (binding a `Statement`,
//! mapping errors), mirrored so our transaction behaves like SeaORM's own.

use sea_orm::sea_query::Values;
use sea_orm::sqlx::pool::PoolConnection;
use sea_orm::sqlx::postgres::PgDatabaseError;
use sea_orm::sqlx::{self, Connection as _, Postgres};
use sea_orm::{
    ConnAcquireErr, DatabaseConnection, DatabaseConnectionType, DbErr, QueryResult, RuntimeErr,
    Statement,
};
use sea_query_sqlx::SqlxValues;
use sqlx_core::sql_str::{AssertSqlSafe, SqlSafeStr, SqlStr};
use sqlx_core::transaction::TransactionManager;
use tenancy_core::sqlstate;

pub(crate) type PgTransactionManager = <Postgres as sqlx::Database>::TransactionManager;

/// The server function that raises "cached plan must not change result
/// type" ([`sqlstate::FEATURE_NOT_SUPPORTED`]): a prepared statement's result
/// columns changed since it was prepared on this connection (another
/// tenant's table has another shape, or a migration altered the table).
/// Locale-independent, unlike the message.
const STALE_PLAN_ROUTINE: &str = "RevalidateCachedQuery";

/// A pooled connection inside a tenant transaction.
///
/// `discard` starts true and is cleared only once `BEGIN` succeeded: if the
/// begin fails or its future is dropped midway, the server may already be in a
/// transaction with the tenant's search path, and sqlx 0.9.0 would return that
/// connection to the pool as it is (its depth counter is still 0, so nothing
/// queues a rollback). Closing the connection instead is the only safe choice.
pub(crate) struct ScopedConnection {
    pub(crate) conn: PoolConnection<Postgres>,
    pub(crate) discard: bool,
    /// No statement of the user's has run yet, so a stale-plan failure can be
    /// retried transparently by beginning again.
    pub(crate) fresh: bool,
    pub(crate) begin_sql: SqlStr,
    /// The server error that aborted the innermost open level (transaction
    /// or savepoint), if one did: PostgreSQL then ignores everything but a
    /// rollback, and answers COMMIT with ROLLBACK (sqlx hides that answer).
    pub(crate) failure: Option<DbErr>,
    /// Pooler mode: every statement is sent unnamed (see [`Statements`]).
    pub(crate) statements: Statements,
}

/// How the statements of a scoped transaction are prepared.
///
/// Behind a transaction-mode pooler (PgBouncer before 1.21) a client
/// connection gets a server connection per transaction, while sqlx names its
/// prepared statements per client connection (`sqlx_s_1`, ...) and caches
/// them across transactions: a later transaction meets a server connection
/// where that name is missing, taken, or another client's statement. Unnamed
/// statements live only until the next statement of the same transaction,
/// which always runs on the same server connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Statements {
    /// sqlx's default: named and cached per connection by SQL text.
    #[default]
    Named,
    /// Unnamed, parsed again each time: nothing outlives the statement.
    Unnamed,
}

impl ScopedConnection {
    pub(crate) async fn open(
        conn: PoolConnection<Postgres>,
        begin_sql: String,
        statements: Statements,
    ) -> Result<Self, (Self, sqlx::Error)> {
        let mut scoped = Self {
            conn,
            discard: true,
            fresh: true,
            begin_sql: AssertSqlSafe(begin_sql).into_sql_str(),
            failure: None,
            statements,
        };
        match PgTransactionManager::begin(&mut scoped.conn, Some(scoped.begin_sql.clone())).await {
            Ok(()) => {
                scoped.discard = false;
                Ok(scoped)
            }
            Err(err) => Err((scoped, err)),
        }
    }

    /// After a failed opening: rolls the aborted transaction back and begins
    /// again with `begin_sql`, on the same connection. Any failure leaves the
    /// connection marked for discarding.
    pub(crate) async fn begin_again(&mut self, begin_sql: String) -> Result<(), sqlx::Error> {
        self.discard = true;
        self.begin_sql = AssertSqlSafe(begin_sql).into_sql_str();
        sqlx::raw_sql("ROLLBACK").execute(&mut *self.conn).await?;
        PgTransactionManager::begin(&mut self.conn, Some(self.begin_sql.clone())).await?;
        self.discard = false;
        Ok(())
    }

    /// Records a statement's error (see [`note_failure`]).
    pub(crate) fn note_failure(&mut self, err: &DbErr) {
        note_failure(&mut self.failure, err);
    }

    pub(crate) fn depth(&self) -> usize {
        PgTransactionManager::get_transaction_depth(&self.conn)
    }

    /// Whether `err` is a stale plan that [`Self::restart`] can recover from.
    /// A stale plan that cannot be recovered marks the connection for
    /// discarding, so its statement cache does not fail the next user too.
    pub(crate) fn can_restart_after(&mut self, err: &sqlx::Error) -> bool {
        if !is_stale_plan(err) {
            return false;
        }
        if self.fresh && self.depth() == 1 {
            return true;
        }
        self.discard = true;
        false
    }

    /// Rolls back, forgets the connection's prepared statements and begins
    /// again with the same scope. Nothing of the user's ran yet, so this is
    /// invisible to them.
    pub(crate) async fn restart(&mut self) -> Result<(), sqlx::Error> {
        let result = async {
            PgTransactionManager::rollback(&mut self.conn).await?;
            self.conn.clear_cached_statements().await?;
            PgTransactionManager::begin(&mut self.conn, Some(self.begin_sql.clone())).await
        }
        .await;
        if result.is_err() {
            self.discard = true;
        }
        result
    }
}

/// The sqlx error inside a SeaORM error, if SeaORM wrapped one: every
/// decision on a statement's failure starts here.
pub(crate) fn sqlx_error(err: &DbErr) -> Option<&sqlx::Error> {
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e))
        | DbErr::Conn(RuntimeErr::SqlxError(e)) => Some(e),
        _ => None,
    }
}

/// Records a statement's error in `failure` if it aborted the transaction.
/// Every error the server raises inside a transaction block aborts the
/// innermost level, and a lost connection aborts it all; client-side errors
/// (encoding a value, decoding a row) leave the transaction as it was.
pub(crate) fn note_failure(failure: &mut Option<DbErr>, err: &DbErr) {
    let aborts =
        sqlx_error(err).is_some_and(|e| matches!(e, sqlx::Error::Database(_) | sqlx::Error::Io(_)));
    if aborts && failure.is_none() {
        *failure = Some(err.clone());
    }
}

impl Drop for ScopedConnection {
    fn drop(&mut self) {
        // The last handle is gone; a transaction still open on the server here
        // means a rollback could not be queued, and the connection must not
        // reach another user with the tenant's search path.
        if self.discard || self.depth() > 0 {
            self.conn.close_on_drop();
        }
    }
}

/// Pooler mode takes only connections with no named statement cached:
/// sqlx looks a statement up in that cache before it looks at `persistent`,
/// so it would reuse a name left by queries run outside tenancy on the same
/// pool. Such a connection is closed when dropped, and the number of cached
/// statements returned.
pub(crate) fn refuse_named_statements(conn: &mut PoolConnection<Postgres>) -> Result<(), usize> {
    match conn.cached_statements_size() {
        0 => Ok(()),
        cached => {
            conn.close_on_drop();
            Err(cached)
        }
    }
}

/// One unscoped read that is safe behind a transaction-mode pooler: an
/// unnamed statement inside a read-only transaction. Outside a transaction
/// the pooler may hand the Bind to another server connection than the Parse
/// (sqlx syncs in between), where the unnamed statement is someone else's.
pub(crate) async fn query_one_unnamed(
    conn: &DatabaseConnection,
    stmt: &Statement,
) -> Result<Option<QueryResult>, DbErr> {
    let DatabaseConnectionType::SqlxPostgresPoolConnection(_) = &conn.inner else {
        return Err(DbErr::Custom(
            "pooler mode needs a PostgreSQL connection pool".to_owned(),
        ));
    };
    let mut pooled = conn
        .get_postgres_connection_pool()
        .acquire()
        .await
        .map_err(acquire_err)?;
    refuse_named_statements(&mut pooled).map_err(|cached| {
        DbErr::Custom(format!(
            "the pooled connection holds {cached} named prepared statements from queries run \
             outside tenancy on the same pool, which behind a transaction-mode pooler can run \
             another client's statement; the connection was closed, retry, and run unscoped \
             queries on a direct connection"
        ))
    })?;
    let mut scoped =
        ScopedConnection::open(pooled, "BEGIN READ ONLY".to_owned(), Statements::Unnamed)
            .await
            .map_err(|(_discarded, err)| conn_err(err))?;
    let row = sqlx_query(stmt, Statements::Unnamed)
        .fetch_optional(&mut *scoped.conn)
        .await
        .map_err(query_err)?;
    PgTransactionManager::commit(&mut scoped.conn)
        .await
        .map_err(exec_err)?;
    Ok(row.map(QueryResult::from))
}

/// Whether a SeaORM error is PostgreSQL's "cached plan must not change result
/// type" (SQLSTATE 0A000). A transaction that fails with it can be retried:
/// the connection it ran on is discarded, so the retry prepares afresh.
///
/// ```
/// assert!(!tenancy::orm::is_stale_plan_error(&sea_orm::DbErr::Custom("x".into())));
/// ```
#[must_use]
pub fn is_stale_plan_error(err: &DbErr) -> bool {
    sqlx_error(err).is_some_and(is_stale_plan)
}

pub(crate) fn is_stale_plan(err: &sqlx::Error) -> bool {
    // 0A000 is every "feature not supported" error; only the one raised while
    // revalidating a cached plan is cured by preparing again.
    pg_database_error(err).is_some_and(|e| {
        e.code() == sqlstate::FEATURE_NOT_SUPPORTED && e.routine() == Some(STALE_PLAN_ROUTINE)
    })
}

/// The server function that raised a database error (locale-independent,
/// unlike the message), if it is one.
pub(crate) fn routine(err: &sqlx::Error) -> Option<&str> {
    pg_database_error(err).and_then(PgDatabaseError::routine)
}

/// The SQLSTATE of a database error, if it is one.
pub(crate) fn sqlx_sqlstate(err: &sqlx::Error) -> Option<&str> {
    pg_database_error(err).map(PgDatabaseError::code)
}

/// PostgreSQL's own error inside a sqlx error, if the server raised one:
/// the one place this crate (and through [`pg_error`](crate::pg_error),
/// tenancy-migrate) reads a server error.
pub(crate) fn pg_database_error(err: &sqlx::Error) -> Option<&PgDatabaseError> {
    err.as_database_error()?
        .try_downcast_ref::<PgDatabaseError>()
}

/// The sqlx query for a SeaORM statement, named or unnamed.
///
/// sqlx 0.9.0 looks a statement up in the connection's cache before it looks
/// at `persistent`, so an unnamed query still reuses a named statement cached
/// for the same SQL text; pooler mode therefore refuses connections whose
/// cache is not empty ([`refuse_named_statements`]).
pub(crate) fn sqlx_query(
    stmt: &Statement,
    statements: Statements,
) -> sqlx::query::Query<'_, Postgres, SqlxValues> {
    let values = stmt
        .values
        .as_ref()
        .map_or(Values(Vec::new()), Clone::clone);
    sqlx::query_with(AssertSqlSafe(stmt.sql.as_str()), SqlxValues(values))
        .persistent(statements == Statements::Named)
}

pub(crate) fn exec_err(err: sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(err.into()))
}

pub(crate) fn query_err(err: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(err.into()))
}

pub(crate) fn conn_err(err: sqlx::Error) -> DbErr {
    DbErr::Conn(RuntimeErr::SqlxError(err.into()))
}

pub(crate) fn acquire_err(err: sqlx::Error) -> DbErr {
    match err {
        sqlx::Error::PoolTimedOut => DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
        sqlx::Error::PoolClosed => DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
        other => conn_err(other),
    }
}
