//! Running the chunks of a read across tenants: on one connection, or on
//! several that share one snapshot.
//!
//! Every transaction is `REPEATABLE READ READ ONLY` with the shared-only
//! search path. With more than one connection, the first exports its
//! snapshot (`pg_export_snapshot()`) and the others import it (`SET
//! TRANSACTION SNAPSHOT`) before any chunk runs, so every chunk reads the
//! same committed state, as on one connection, while the server works on
//! several chunks at once.

use futures_util::{StreamExt, stream};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, Statement,
    StreamTrait, TransactionTrait,
};

use super::CrossTenantRows;
use crate::Error;

fn db_err(source: DbErr) -> Error {
    Error::Database {
        action: "reading across tenants",
        source,
    }
}

/// The first statement of every reading transaction.
const READ_ONLY_SNAPSHOT: &str = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY";

/// The rows of every chunk, on up to `connections` transactions sharing one
/// snapshot, opened on the first poll. Chunk `i` runs on transaction
/// `i % connections`; rows of different transactions interleave.
pub(super) fn stream_chunks(
    conn: DatabaseConnection,
    search_path: String,
    statements: Vec<Statement>,
    connections: usize,
) -> CrossTenantRows {
    Box::pin(async_stream::try_stream! {
        let connections = connections.clamp(1, statements.len().max(1));
        if statements.is_empty() {
            return;
        }
        let leader = conn.begin().await.map_err(db_err)?;
        leader
            .execute_unprepared(&format!("{READ_ONLY_SNAPSHOT}; {search_path}"))
            .await
            .map_err(db_err)?;
        let mut txns = vec![leader];
        if connections > 1 {
            let snapshot = export_snapshot(&txns[0]).await?;
            // All imports happen here, while the exporting transaction is
            // open for certain (it must be, for an import to succeed).
            for _ in 1..connections {
                let txn = conn.begin().await.map_err(db_err)?;
                txn.execute_unprepared(&format!(
                    "{READ_ONLY_SNAPSHOT}; SET TRANSACTION SNAPSHOT {snapshot}; {search_path}"
                ))
                .await
                .map_err(db_err)?;
                txns.push(txn);
            }
        }
        let mut shares: Vec<Vec<Statement>> = vec![Vec::new(); txns.len()];
        for (i, statement) in statements.into_iter().enumerate() {
            shares[i % txns.len()].push(statement);
        }
        let mut rows = stream::select_all(
            txns.into_iter()
                .zip(shares)
                .map(|(txn, share)| run_share(txn, share)),
        );
        while let Some(row) = rows.next().await {
            yield row?;
        }
    })
}

/// One transaction's chunks, in order, then its commit.
fn run_share(txn: DatabaseTransaction, statements: Vec<Statement>) -> CrossTenantRows {
    Box::pin(async_stream::try_stream! {
        for statement in statements {
            let mut rows = txn.stream_raw(statement).await.map_err(db_err)?;
            while let Some(row) = rows.next().await {
                yield row.map_err(db_err)?;
            }
        }
        txn.commit().await.map_err(db_err)?;
    })
}

/// Exports `txn`'s snapshot and returns its identifier as an SQL literal.
///
/// `SET TRANSACTION SNAPSHOT` takes no parameter, so the identifier is
/// rendered here, the one place, and only when it is what PostgreSQL
/// produces (hexadecimal digits and dashes): nothing else can reach SQL.
async fn export_snapshot(txn: &DatabaseTransaction) -> Result<String, Error> {
    let row = txn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT pg_export_snapshot() AS snapshot",
        ))
        .await
        .map_err(db_err)?
        .ok_or_else(|| db_err(DbErr::RecordNotFound("pg_export_snapshot()".to_owned())))?;
    let id: String = row.try_get("", "snapshot").map_err(db_err)?;
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(db_err(DbErr::Custom(format!(
            "pg_export_snapshot() returned {id:?}, not a snapshot identifier"
        ))));
    }
    Ok(format!("'{id}'"))
}
