//! What the suite asks PostgreSQL about its own throwaway database: its
//! backends, their states, advisory locks. Every query is limited to the
//! current database, so other users of the server are never looked at, let
//! alone terminated.

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};

/// The `count(*)`-like first column of `sql`'s one row.
pub async fn count(conn: &DatabaseConnection, sql: &str) -> Result<i64, DbErr> {
    conn.query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await?
        .ok_or_else(|| DbErr::Custom(format!("no row from {sql}")))?
        .try_get_by_index(0)
}

/// Client backends of this database other than the asking one, by state.
pub const OTHER_BACKENDS: &str = "SELECT count(*) FROM pg_stat_activity \
     WHERE datname = current_database() AND pid <> pg_backend_pid() \
       AND backend_type = 'client backend'";

pub const IDLE_IN_TRANSACTION: &str = "SELECT count(*) FROM pg_stat_activity \
     WHERE datname = current_database() AND pid <> pg_backend_pid() \
       AND state LIKE 'idle in transaction%'";

/// Advisory locks held or awaited in this database, by anyone.
pub const ADVISORY_LOCKS: &str = "SELECT count(*) FROM pg_locks \
     WHERE locktype = 'advisory' \
       AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";

/// Advisory locks awaited (not granted) in this database.
pub const ADVISORY_WAITS: &str = "SELECT count(*) FROM pg_locks \
     WHERE locktype = 'advisory' AND NOT granted \
       AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";

/// The pids of this database's other client backends: the pool's
/// connections. Those inside a transaction come first, so kills land
/// mid-transaction more often than on idle pooled connections.
pub async fn pool_backends(conn: &DatabaseConnection) -> Result<(Vec<i32>, Vec<i32>), DbErr> {
    let rows = conn
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT pid, state <> 'idle' AS busy FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
               AND backend_type = 'client backend'",
        ))
        .await?;
    let (mut busy, mut idle) = (Vec::new(), Vec::new());
    for row in rows {
        let pid: i32 = row.try_get("", "pid")?;
        let is_busy: Option<bool> = row.try_get("", "busy")?;
        if is_busy.unwrap_or(false) {
            busy.push(pid);
        } else {
            idle.push(pid);
        }
    }
    Ok((busy, idle))
}

/// Terminates `pid` if it is still a backend of this database (it may have
/// gone, or been reused by another database's backend, since it was listed).
pub async fn terminate(conn: &DatabaseConnection, pid: i32) -> Result<bool, DbErr> {
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT coalesce(bool_or(pg_terminate_backend(pid)), false) AS killed \
             FROM pg_stat_activity WHERE pid = $1 AND datname = current_database()",
            [pid.into()],
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("no row".into()))?;
    row.try_get("", "killed")
}

/// Polls `sql` until it returns `want` or `within` has passed; returns the
/// last value. For states that settle asynchronously (a backend noticing its
/// client is gone, a pooled connection's queued rollback being flushed).
pub async fn settle(
    conn: &DatabaseConnection,
    sql: &str,
    want: i64,
    within: Duration,
) -> Result<i64, DbErr> {
    let deadline = Instant::now() + within;
    loop {
        let value = count(conn, sql).await?;
        if value == want || Instant::now() >= deadline {
            return Ok(value);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `VmRSS` of this process in KiB, from `/proc/self/status` (Linux).
pub fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}
