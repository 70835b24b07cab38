//! A tenancy [`Error`] carried inside a SeaORM [`DbErr`], for the methods whose
//! signature SeaORM fixes (`commit()` returns `DbErr`).
//!
//! It travels as a database error: the failure it reports is the server's
//! (the statement that aborted the transaction), so `DbErr::sql_err()` and
//! SQLSTATE checks see that statement's code, while the message says what
//! happened to the transaction. [`Error::in_db_err`] gets the typed error back.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use sea_orm::sqlx::error::{DatabaseError, ErrorKind};
use sea_orm::{DbErr, RuntimeErr};

use crate::connection::sqlx_error;
use crate::error::Error;

#[derive(Debug)]
pub(crate) struct Carried {
    error: Error,
    message: String,
}

pub(crate) fn into_db_err(error: Error) -> DbErr {
    let message = error.to_string();
    let carried = Carried { error, message };
    DbErr::Exec(RuntimeErr::SqlxError(Arc::new(
        sea_orm::sqlx::Error::Database(Box::new(carried)),
    )))
}

/// The tenancy error inside `err`, if `err` was made by [`into_db_err`].
pub(crate) fn find(err: &DbErr) -> Option<&Error> {
    sqlx_error(err)?
        .as_database_error()
        .and_then(|db| db.try_downcast_ref::<Carried>())
        .map(|carried| &carried.error)
}

/// The server error the carried error reports, if any.
fn cause(error: &Error) -> Option<&dyn DatabaseError> {
    let Error::CommitRolledBack { source, .. } = error else {
        return None;
    };
    sqlx_error(source)?.as_database_error()
}

impl fmt::Display for Carried {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for Carried {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.error.source()
    }
}

impl DatabaseError for Carried {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        cause(&self.error).and_then(DatabaseError::code)
    }

    fn as_error(&self) -> &(dyn StdError + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn StdError + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn StdError + Send + Sync + 'static> {
        self
    }

    fn constraint(&self) -> Option<&str> {
        cause(&self.error).and_then(DatabaseError::constraint)
    }

    fn table(&self) -> Option<&str> {
        cause(&self.error).and_then(DatabaseError::table)
    }

    fn kind(&self) -> ErrorKind {
        cause(&self.error).map_or(ErrorKind::Other, DatabaseError::kind)
    }
}
