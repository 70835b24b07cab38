//! PostgreSQL details of this crate's transactions. Every decision on an
//! error is made on its SQLSTATE (the codes are in
//! [`tenancy_core::sqlstate`]) or constraint, never on its message.

use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};

/// Whether the server raised `err` with this SQLSTATE.
pub(crate) fn has_sqlstate(err: &DbErr, code: &str) -> bool {
    tenancy_sea_orm::sqlstate(err) == Some(code)
}

/// Makes a transaction `READ COMMITTED` whatever the database's or role's
/// `default_transaction_isolation`; valid only as its first statement.
///
/// Every transaction of this crate that takes a lock and then reads what
/// the lock's previous holder committed (a migrations ledger, a registry
/// row) needs it: under `repeatable read` or `serializable` the snapshot is
/// taken by the locking statement, before the wait, so the read would miss
/// that commit and apply a migration twice, or fail with a serialization
/// error where waiting was enough.
const READ_COMMITTED: &str = "SET TRANSACTION ISOLATION LEVEL READ COMMITTED";

/// Opens a `READ COMMITTED` transaction on `conn` and runs `first` (a
/// statement list, no parameters) in the same message as the setting, so
/// the setting costs no round trip of its own when there is a first
/// statement to send.
///
/// SeaORM's `begin_with_config` would send the setting as a separate
/// prepared statement after `BEGIN`; SeaORM cannot put it in the `BEGIN`
/// itself, so it goes first in the next message.
pub(crate) async fn begin_read_committed(
    conn: &DatabaseConnection,
    first: Option<&str>,
) -> Result<DatabaseTransaction, DbErr> {
    let txn = conn.begin().await?;
    let sql = match first {
        Some(first) => format!("{READ_COMMITTED}; {first}"),
        None => READ_COMMITTED.to_owned(),
    };
    txn.execute_unprepared(&sql).await?;
    Ok(txn)
}
