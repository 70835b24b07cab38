//! DEMO FALLBACK — NOT FOR YOUR APPLICATION.
//!
//! The examples connect as an application does, to `DATABASE_URL`. So that
//! they also run with no set-up beyond a PostgreSQL server, they fall back to
//! this when `DATABASE_URL` is unset: a throwaway database from tenancy's
//! test harness (`tenancy-testing`, which is not published), created on the
//! first server that answers (`TENANCY_TEST_DATABASE_URL`, a Docker
//! container, or `postgres://postgres@127.0.0.1:5432`) and dropped when the
//! example ends. Your application has no fallback: it fails when its
//! database is not configured.

use sea_orm::DatabaseConnection;
use tenancy_testing::TestDatabase;

/// A fresh database and one pool on it; close the pool, then the database.
///
/// # Errors
/// When no PostgreSQL answers (the message says what to set), or the
/// database cannot be created.
pub(crate) async fn throwaway_database()
-> Result<(DatabaseConnection, TestDatabase), Box<dyn std::error::Error>> {
    let test_db = TestDatabase::create().await?;
    println!(
        "DATABASE_URL is not set: demo fallback to the throwaway database {} on {} \
         (dropped at the end)",
        test_db.name(),
        test_db.source()
    );
    let conn = test_db.connect().await?;
    Ok((conn, test_db))
}
