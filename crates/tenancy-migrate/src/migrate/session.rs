//! The dedicated session a tenant's migrations run on when some of them must
//! run outside a transaction (`CREATE INDEX CONCURRENTLY`).
//!
//! Outside a transaction neither of the usual tools works: `SET LOCAL` lasts
//! for one transaction, and a transaction-scoped advisory lock ends with it.
//! So the tenant gets a connection of its own, opened outside the fleet's
//! pool and closed afterwards, that
//! - has the tenant's search path from its startup packet (a connection
//!   parameter, not a `SET`), so the path can never outlive it on a pooled
//!   connection, and unqualified DDL and the ledger resolve in the tenant's
//!   schema for every statement, including those of transactions the
//!   migration opens itself with `SchemaManager::begin`;
//! - holds the tenant's lock as a session-level advisory lock, on the key of
//!   the transaction-scoped one, for the whole run;
//! - is never reconnected: if it is lost, the lock ended with it, so the next
//!   statement fails instead of running unlocked on a new session.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sea_orm::sqlx;
use sea_orm::sqlx::postgres::PgPoolOptions;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseConnectionType, DbBackend, DbErr, RuntimeErr,
    SqlxPostgresConnector, Statement,
};
use tenancy_core::{SchemaName, SharedSchema};

use crate::tenant_txn::{migration_path, tenant_lock_key};

/// How long a statement waits for the session's one connection, or for a
/// replacement that is then refused. Our statements are sequential, so the
/// connection is free whenever one is sent; only a lost connection (or a
/// migration using the outer connection while a transaction of its own
/// holds it) waits at all.
const ACQUIRE_WAIT: Duration = Duration::from_secs(10);

/// Polling the lock: first and longest pause between two attempts.
const LOCK_POLL_FIRST: Duration = Duration::from_millis(20);
const LOCK_POLL_MAX: Duration = Duration::from_millis(500);

/// A tenant's own session, locked. Call [`close`](Self::close) or
/// [`abandon`](Self::abandon) when done; dropped instead (a cancelled run),
/// the connection closes and the server releases the lock when the session
/// ends (an index build in progress finishes first: the server notices the
/// missing client only when it next talks to it).
pub(super) struct TenantSession {
    conn: DatabaseConnection,
    lock_key: String,
    /// Set when the pool tried to replace a lost connection.
    lost: Arc<AtomicBool>,
}

impl TenantSession {
    /// Opens the session and waits for the tenant's lock.
    ///
    /// The lock is polled with `pg_try_advisory_lock`, not waited for with
    /// `pg_advisory_lock`: a waiting statement keeps its snapshot, and
    /// `CREATE INDEX CONCURRENTLY` in the lock holder waits for every older
    /// snapshot, so the two would deadlock and PostgreSQL would abort one,
    /// possibly the index build.
    pub(super) async fn open(
        fleet_conn: &DatabaseConnection,
        schema: &SchemaName,
        shared: &[SharedSchema],
    ) -> Result<Self, DbErr> {
        let DatabaseConnectionType::SqlxPostgresPoolConnection(_) = &fleet_conn.inner else {
            return Err(DbErr::Custom(
                "migrations that run outside a transaction need a PostgreSQL connection pool"
                    .to_owned(),
            ));
        };
        let options = (*fleet_conn.get_postgres_connection_pool().connect_options())
            .clone()
            .options([("search_path", migration_path(schema, shared).to_value())]);
        let lost = Arc::new(AtomicBool::new(false));
        let opened = Arc::new(AtomicBool::new(false));
        let (lost_flag, opened_flag) = (Arc::clone(&lost), Arc::clone(&opened));
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .idle_timeout(None)
            .max_lifetime(None)
            .test_before_acquire(false)
            .acquire_timeout(ACQUIRE_WAIT)
            .after_connect(move |_, _| {
                let first = !opened_flag.swap(true, Ordering::SeqCst);
                if !first {
                    lost_flag.store(true, Ordering::SeqCst);
                }
                Box::pin(async move {
                    if first {
                        Ok(())
                    } else {
                        Err(sqlx::Error::Protocol(
                            "the tenant's migration connection was lost; not reconnecting, \
                             since its lock ended with it"
                                .to_owned(),
                        ))
                    }
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| DbErr::Conn(RuntimeErr::SqlxError(Arc::new(e))))?;
        let session = Self {
            conn: SqlxPostgresConnector::from_sqlx_postgres_pool(pool),
            lock_key: tenant_lock_key(schema),
            lost,
        };
        match session.lock(schema).await {
            Ok(()) => Ok(session),
            Err(err) => {
                session.close_connection().await;
                Err(err)
            }
        }
    }

    async fn lock(&self, schema: &SchemaName) -> Result<(), DbErr> {
        let try_lock = Statement::from_string(
            DbBackend::Postgres,
            format!("SELECT pg_try_advisory_lock({}) AS locked", self.lock_key),
        );
        let mut pause = LOCK_POLL_FIRST;
        loop {
            let row = self
                .conn
                .query_one_raw(try_lock.clone())
                .await?
                .ok_or_else(|| DbErr::Custom("pg_try_advisory_lock returned no row".to_owned()))?;
            if row.try_get::<bool>("", "locked")? {
                return Ok(());
            }
            if pause == LOCK_POLL_FIRST {
                tracing::info!(%schema, "waiting for another run migrating this tenant");
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(LOCK_POLL_MAX);
        }
    }

    /// The session, for running migrations and recording them.
    pub(super) fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// `err`, saying so when the connection was lost under it.
    pub(super) fn explain(&self, err: DbErr) -> DbErr {
        if self.lost.load(Ordering::SeqCst) {
            DbErr::Custom(format!(
                "the connection to PostgreSQL was lost during the run, and with it the \
                 tenant's lock, so it was not replaced: {}",
                tenancy_sea_orm::display_db_err(&err)
            ))
        } else {
            err
        }
    }

    /// Releases the lock and closes the connection, after a run that went
    /// well. Errors are only logged: closing ends the session, which
    /// releases the lock in any case.
    pub(super) async fn close(self) {
        let unlock = format!("SELECT pg_advisory_unlock({})", self.lock_key);
        if let Err(error) = self.conn.execute_unprepared(&unlock).await {
            tracing::debug!(%error, "releasing a tenant's migration lock failed");
        }
        self.close_connection().await;
    }

    /// Closes the connection after a failure, without a statement that
    /// would wait for a replacement if the connection was lost: the server
    /// releases the lock when the session ends.
    pub(super) async fn abandon(self) {
        self.close_connection().await;
    }

    async fn close_connection(self) {
        if let Err(error) = self.conn.close().await {
            tracing::debug!(%error, "closing a tenant's migration connection failed");
        }
    }
}
