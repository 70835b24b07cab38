//! Fleet operations need a direct connection: they refuse a transaction-mode
//! pooler (PgBouncer) with [`Error::BehindPooler`].
//!
//! They run through SeaORM and sea-orm-migration, whose statements are sqlx
//! named prepared statements, cached per client connection and reused in
//! later transactions and outside any transaction. Behind a transaction-mode
//! pooler (PgBouncer before 1.21) those meet other server connections, where
//! the name is missing, taken, or another client's statement; and reads
//! outside a transaction can have their Parse and Bind land on two different
//! server connections. Making every statement of sea-orm-migration unnamed is
//! not in our hands, and migrations are deploy-time work that can always use
//! the server's own address, so the fleet refuses instead of failing midway.
//!
//! # How a pooler is told apart
//!
//! A direct connection is one backend for its whole life. The probe holds
//! connection A of the pool inside a transaction, asks connection B for its
//! backend pid, ends A's transaction, and asks B again. Directly, B's pid
//! never changes. Through a transaction-mode pooler, B has no server
//! connection of its own between statements: PgBouncer hands out the most
//! recently released one first (its default, `server_round_robin = 0`),
//! which is A's, so B's second pid differs. A different pid proves a pooler;
//! the same pid proves nothing (a pooler configured round-robin, or a pool of
//! one connection, which cannot be probed), and the fleet then goes on. The
//! probe runs once per fleet (clones share it) and only simple-protocol
//! statements; connection A is closed afterwards rather than pooled, so a
//! cancelled probe cannot leave a transaction open on a pooled connection.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::sqlx::pool::PoolConnection;
use sea_orm::sqlx::{self, Postgres, Row as _};
use sea_orm::{DatabaseConnection, DatabaseConnectionType};
use tokio::sync::OnceCell;

use crate::Error;

/// Longer than any trivial statement takes on a live server: a second
/// connection that gets no answer while the first holds a transaction is
/// waiting for a pooler's only server connection (a pool of one), which
/// proves nothing either way, so the probe gives up instead of deciding.
const PROBE_WAIT: Duration = Duration::from_secs(5);

/// Whether the fleet's connection was seen to be direct; shared by clones.
#[derive(Clone, Default)]
pub(crate) struct DirectCheck(Arc<OnceCell<()>>);

impl DirectCheck {
    /// Ok when the connection is not seen to go through a transaction-mode
    /// pooler (cached once seen); [`Error::BehindPooler`] when it is.
    pub(crate) async fn ensure(&self, conn: &DatabaseConnection) -> Result<(), Error> {
        self.0
            .get_or_try_init(|| async {
                match probe(conn).await {
                    Some(Seen::Pooler { first, second }) => Err(Error::BehindPooler {
                        evidence: format!(
                            "one pooled connection answered from backend {first}, then from \
                             backend {second}"
                        ),
                    }),
                    Some(Seen::Direct) | None => Ok(()),
                }
            })
            .await
            .map(|&()| ())
    }
}

enum Seen {
    Direct,
    Pooler { first: i32, second: i32 },
}

/// `None` when the probe could not run (not a PostgreSQL pool, a pool of
/// one, an error or a timeout): the operation itself then reports whatever
/// is wrong.
async fn probe(conn: &DatabaseConnection) -> Option<Seen> {
    let DatabaseConnectionType::SqlxPostgresPoolConnection(_) = &conn.inner else {
        return None;
    };
    let pool = conn.get_postgres_connection_pool();
    if pool.options().get_max_connections() < 2 {
        tracing::debug!("pool of one connection: cannot check for a transaction-mode pooler");
        return None;
    }
    let outcome = tokio::time::timeout(PROBE_WAIT * 3, async {
        let mut held = pool.acquire().await?;
        held.close_on_drop();
        let mut other = pool.acquire().await?;
        sqlx::raw_sql("BEGIN").execute(&mut *held).await?;
        backend_pid(&mut held).await?;
        let Ok(first) = tokio::time::timeout(PROBE_WAIT, backend_pid(&mut other)).await else {
            other.close_on_drop();
            return Ok(None);
        };
        let first = first?;
        sqlx::raw_sql("COMMIT").execute(&mut *held).await?;
        let second = backend_pid(&mut other).await?;
        Ok::<_, sqlx::Error>(Some(if first == second {
            Seen::Direct
        } else {
            Seen::Pooler { first, second }
        }))
    })
    .await;
    match outcome {
        Ok(Ok(seen)) => seen,
        Ok(Err(err)) => {
            tracing::debug!("cannot check for a transaction-mode pooler: {err}");
            None
        }
        Err(_elapsed) => None,
    }
}

async fn backend_pid(conn: &mut PoolConnection<Postgres>) -> Result<i32, sqlx::Error> {
    // Simple protocol: no prepared statement, whatever sits in between.
    let row = sqlx::raw_sql("SELECT pg_backend_pid()")
        .fetch_one(&mut **conn)
        .await?;
    row.try_get(0)
}
