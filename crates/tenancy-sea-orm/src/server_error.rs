//! Server errors as users read them.

use std::fmt;

use sea_orm::sqlx::postgres::PgDatabaseError;

use crate::connection::{pg_database_error, sqlx_error};
use sea_orm::DbErr;

/// `err` for a message shown to users: as SeaORM displays it, without the
/// ` at line N` sqlx appends to a server error (a line of the server's C
/// source, which tells a user nothing).
///
/// ```
/// use sea_orm::DbErr;
/// use tenancy::orm::display_db_err;
///
/// let err = DbErr::Custom("no such tenant".into());
/// assert_eq!(display_db_err(&err).to_string(), err.to_string());
/// ```
#[must_use]
pub fn display_db_err(err: &DbErr) -> impl fmt::Display + '_ {
    DbErrDisplay(err)
}

struct DbErrDisplay<'a>(&'a DbErr);

impl fmt::Display for DbErrDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.to_string();
        let Some((pg, line)) = pg_error(self.0).and_then(|pg| Some((pg, pg.line()?))) else {
            return f.write_str(&text);
        };
        let with_line = format!("{} at line {line}", pg.message());
        f.write_str(&text.replacen(&with_line, pg.message(), 1))
    }
}

/// PostgreSQL's own error inside a SeaORM error, if the server raised one:
/// its SQLSTATE, constraint, routine, detail. Decide on these, never on the
/// message (it is translated with the server's locale).
///
/// ```
/// let err = sea_orm::DbErr::Custom("not from the server".into());
/// assert!(tenancy::orm::pg_error(&err).is_none());
/// ```
#[must_use]
pub fn pg_error(err: &DbErr) -> Option<&PgDatabaseError> {
    pg_database_error(sqlx_error(err)?)
}

/// The SQLSTATE the server raised `err` with, if it did; compare it with
/// the codes in [`tenancy_core::sqlstate`].
///
/// ```
/// use sea_orm::ConnectionTrait;
/// use tenancy_core::sqlstate;
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let test_db = tenancy_testing::TestDatabase::create().await?;
/// # let conn = test_db.connect().await?;
/// let err = conn.execute_unprepared("SELECT * FROM no_such_table").await.unwrap_err();
/// assert_eq!(tenancy::orm::sqlstate(&err), Some(sqlstate::UNDEFINED_TABLE));
/// # conn.close().await?;
/// # test_db.close().await?;
/// # Ok(()) }
/// ```
#[must_use]
pub fn sqlstate(err: &DbErr) -> Option<&str> {
    pg_error(err).map(PgDatabaseError::code)
}
