//! Reading PostgreSQL's own error out of a SeaORM error: every decision on
//! an error is made on its SQLSTATE or constraint, never on its message.

use sea_orm::sqlx::postgres::PgDatabaseError;
use sea_orm::{DbErr, RuntimeErr};

/// SQLSTATE `unique_violation`.
pub(crate) const UNIQUE_VIOLATION: &str = "23505";
/// SQLSTATE `duplicate_schema`.
pub(crate) const DUPLICATE_SCHEMA: &str = "42P06";
/// SQLSTATE `invalid_schema_name`: what casting a missing schema to
/// `regnamespace` raises.
pub(crate) const INVALID_SCHEMA_NAME: &str = "3F000";
/// SQLSTATE `undefined_table`.
pub(crate) const UNDEFINED_TABLE: &str = "42P01";

/// The server's error inside a SeaORM error, if the server raised one.
pub(crate) fn pg_error(err: &DbErr) -> Option<&PgDatabaseError> {
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e))
        | DbErr::Conn(RuntimeErr::SqlxError(e)) => {
            e.as_database_error()?.try_downcast_ref::<PgDatabaseError>()
        }
        _ => None,
    }
}

/// Whether the server raised `err` with this SQLSTATE.
pub(crate) fn has_sqlstate(err: &DbErr, code: &str) -> bool {
    pg_error(err).is_some_and(|e| e.code() == code)
}
