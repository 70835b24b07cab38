//! What export and import share on their sqlx connection: getting one,
//! the session settings data is written and read under, and errors.
//!
//! Both run on a connection of their own taken from the fleet's sqlx pool
//! rather than through SeaORM, since `COPY` streams are sqlx's alone.

use std::sync::Arc;

use sea_orm::sqlx::pool::PoolConnection;
use sea_orm::sqlx::postgres::{PgConnection, PgPool, PgRow, Postgres};
use sea_orm::sqlx::{self, Row};
use sea_orm::{DatabaseConnection, DatabaseConnectionType, DbErr, RuntimeErr};
use tenancy_core::SearchPath;
use tenancy_core::registry::TenantRecord;

use crate::Error;
use crate::registry::corrupt_error;

/// The settings the data sections are written and read under, so every
/// value's text is the same on both sides whatever the servers' or roles'
/// defaults: unambiguous dates, intervals and `bytea`, floats that round
/// trip exactly, timestamps in UTC. Recorded in the manifest.
pub(super) const DATA_SETTINGS: &[(&str, &str)] = &[
    ("DateStyle", "ISO, YMD"),
    ("IntervalStyle", "postgres"),
    ("extra_float_digits", "3"),
    ("bytea_output", "hex"),
    ("TimeZone", "UTC"),
];

/// The fleet's sqlx pool; export and import need PostgreSQL.
pub(super) fn pool_of(conn: &DatabaseConnection) -> Result<&PgPool, DbErr> {
    if let DatabaseConnectionType::SqlxPostgresPoolConnection(_) = &conn.inner {
        Ok(conn.get_postgres_connection_pool())
    } else {
        Err(DbErr::Conn(RuntimeErr::Internal(
            "export and import need a PostgreSQL connection pool (sea-orm's sqlx-postgres)"
                .to_owned(),
        )))
    }
}

/// The pooled connection of one export or import. If the call is
/// cancelled (its future dropped) inside its transaction, the connection
/// is closed instead of going back to the pool with the transaction open.
pub(super) struct Session {
    conn: PoolConnection<Postgres>,
    ended: bool,
}

impl Session {
    pub(super) async fn acquire(pool: &PgPool) -> Result<Self, sqlx::Error> {
        Ok(Self {
            conn: pool.acquire().await?,
            ended: false,
        })
    }

    pub(super) fn conn(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    /// Ends the transaction with `COMMIT` or `ROLLBACK`; once that has
    /// succeeded the connection may go back to the pool.
    pub(super) async fn end(&mut self, statement: &'static str) -> Result<(), sqlx::Error> {
        sqlx::raw_sql(statement).execute(&mut *self.conn).await?;
        self.ended = true;
        Ok(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if !self.ended {
            self.conn.close_on_drop();
        }
    }
}

/// A sqlx error as the `DbErr` the rest of the crate reads SQLSTATEs from.
pub(super) fn db_err(err: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(Arc::new(err)))
}

/// Pins `path` and `settings` for the current transaction only. The export
/// passes [`DATA_SETTINGS`]; the import passes the manifest's, so data is
/// read under the settings it was written under even if a later version
/// writes with others. Only settings named in [`DATA_SETTINGS`] are
/// accepted, and values are bound (`set_config`), never spliced.
pub(super) async fn set_local_settings<'a>(
    conn: &mut PgConnection,
    path: &SearchPath,
    settings: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), SettingError> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(path.set_local_statement()))
        .execute(&mut *conn)
        .await?;
    for (name, value) in settings {
        if !DATA_SETTINGS.iter().any(|(known, _)| *known == name) {
            return Err(SettingError::Unknown(name.to_owned()));
        }
        sqlx::query("SELECT set_config($1, $2, true)")
            .bind(name)
            .bind(value)
            .persistent(false)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Why the session could not be set up for the data.
#[derive(Debug)]
pub(super) enum SettingError {
    /// The manifest names a setting this version does not apply.
    Unknown(String),
    /// The server refused.
    Database(sqlx::Error),
}

impl From<sqlx::Error> for SettingError {
    fn from(err: sqlx::Error) -> Self {
        Self::Database(err)
    }
}

/// Reads a registry row through sqlx, validated as every other read of it is.
pub(super) fn record_from_row(row: &PgRow) -> Result<TenantRecord, Error> {
    TenantRecord::from_columns(|column| {
        row.try_get::<Option<String>, _>(column)
            .map_err(|e| e.to_string())
    })
    .map_err(corrupt_error)
}
