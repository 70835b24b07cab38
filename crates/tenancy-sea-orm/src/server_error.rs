//! Server errors as users read them.

use std::fmt;

use sea_orm::sqlx::postgres::PgDatabaseError;

use crate::connection::sqlx_error;
use sea_orm::DbErr;

/// `err` for a message shown to users: as SeaORM displays it, without the
/// ` at line N` sqlx appends to a server error (a line of the server's C
/// source, which tells a user nothing).
///
/// ```
/// use sea_orm::DbErr;
/// use tenancy_sea_orm::display_db_err;
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

fn pg_error(err: &DbErr) -> Option<&PgDatabaseError> {
    sqlx_error(err)?
        .as_database_error()?
        .try_downcast_ref::<PgDatabaseError>()
}
