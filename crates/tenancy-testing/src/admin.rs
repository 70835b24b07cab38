//! Short-lived connections to a server's maintenance database.

use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, DatabaseConnection, DbErr};
use tenancy_sea_orm::ConnectError;

use crate::naming::quote_ident;

/// Short, so that an absent server costs little before the next fallback is tried.
const ADMIN_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// One connection, never pooled across calls: a pool belongs to the tokio runtime that
/// created it, and tests (and `Drop`) run on many different runtimes. A failure names the
/// server's host:port and the cause (refused, unknown host, authentication, no answer).
pub(crate) async fn connect(server_url: &str) -> Result<DatabaseConnection, ConnectError> {
    let mut opts = ConnectOptions::new(server_url);
    opts.max_connections(1)
        .min_connections(0)
        .connect_timeout(ADMIN_CONNECT_TIMEOUT)
        .acquire_timeout(ADMIN_CONNECT_TIMEOUT)
        .sqlx_logging(false);
    tenancy_sea_orm::connect(opts).await
}

/// `options` follow the name verbatim (empty, or ` TEMPLATE … ICU_LOCALE …`).
pub(crate) async fn create_database(
    conn: &DatabaseConnection,
    name: &str,
    options: &str,
) -> Result<(), DbErr> {
    conn.execute_unprepared(&format!("CREATE DATABASE {}{options}", quote_ident(name)))
        .await
        .map(drop)
}

/// `WITH (FORCE)` (Postgres 13+) so that pools a test leaked do not block the drop.
pub(crate) async fn drop_database(conn: &DatabaseConnection, name: &str) -> Result<(), DbErr> {
    conn.execute_unprepared(&format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        quote_ident(name)
    ))
    .await
    .map(drop)
}

/// Connects, drops, disconnects.
pub(crate) async fn drop_database_on(server_url: &str, name: &str) -> Result<(), DbErr> {
    let conn = connect(server_url).await?;
    let dropped = drop_database(&conn, name).await;
    close_quietly(conn).await;
    dropped
}

pub(crate) async fn close_quietly(conn: DatabaseConnection) {
    if let Err(e) = conn.close().await {
        tracing::debug!("closing an admin connection failed: {e}");
    }
}
