//! Removal of databases left behind by crashed runs.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

use crate::admin;
use crate::error::HarnessError;
use crate::naming::{is_stale, redact, unix_now};

/// Servers already swept by this process.
static SWEPT: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// Drops the databases on `server_url` (a maintenance-database URL) that this crate
/// created more than [`STALE_AFTER`](crate::STALE_AFTER) ago, and returns how many it
/// dropped.
///
/// Only names of the form `tenancy_test_<unix secs>_<pid>_<n>` are considered; younger
/// ones may belong to a run still in progress and are left alone.
/// [`TestDatabase::create`](crate::TestDatabase::create) calls this once per process
/// and server, so calling it yourself is rarely needed.
///
/// # Errors
///
/// [`HarnessError::Connect`] or [`HarnessError::ListDatabases`] when the server cannot
/// be queried; [`HarnessError::DropDatabase`] for the first stale database that could
/// not be dropped (the others are still attempted).
pub async fn sweep_stale(server_url: &str) -> Result<u64, HarnessError> {
    let conn = admin::connect(server_url)
        .await
        .map_err(|source| HarnessError::Connect {
            url: redact(server_url),
            source,
        })?;
    let swept = sweep_with(&conn, server_url).await;
    admin::close_quietly(conn).await;
    swept
}

/// The automatic sweep: at most once per server per process, and never fatal, since a
/// failed sweep does not stop this run from getting its own database.
pub(crate) async fn sweep_once(conn: &DatabaseConnection, server_url: &str) {
    let first = SWEPT
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(HashSet::new)
        .insert(server_url.to_owned());
    if !first {
        return;
    }
    match sweep_with(conn, server_url).await {
        Ok(0) => {}
        Ok(n) => tracing::debug!(
            "dropped {n} stale test database(s) on {}",
            redact(server_url)
        ),
        Err(e) => tracing::warn!("stale test database sweep failed: {e}"),
    }
}

async fn sweep_with(conn: &DatabaseConnection, server_url: &str) -> Result<u64, HarnessError> {
    let rows = conn
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            r"SELECT datname::text AS datname FROM pg_database WHERE datname LIKE 'tenancy\_test\_%'",
        ))
        .await
        .map_err(|source| HarnessError::ListDatabases {
            url: redact(server_url),
            source,
        })?;
    let now = unix_now();
    let mut dropped = 0;
    let mut first_error = None;
    for row in rows {
        let name: String = match row.try_get("", "datname") {
            Ok(name) => name,
            Err(e) => {
                tracing::warn!("unreadable pg_database row during sweep: {e}");
                continue;
            }
        };
        if !is_stale(&name, now) {
            continue;
        }
        match admin::drop_database(conn, &name).await {
            Ok(()) => {
                tracing::debug!("dropped stale test database {name}");
                dropped += 1;
            }
            Err(source) => {
                tracing::warn!("cannot drop stale test database {name}: {source}");
                first_error.get_or_insert(HarnessError::DropDatabase { name, source });
            }
        }
    }
    first_error.map_or(Ok(dropped), Err)
}
