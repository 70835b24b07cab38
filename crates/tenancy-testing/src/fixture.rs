//! A test's whole database lifetime in one call.

use sea_orm::{DatabaseConnection, DbErr};

use crate::{HarnessError, TestDatabase};

impl TestDatabase {
    /// Runs `test` on a fresh database and a pool on it
    /// ([`connect`](Self::connect)), then closes the pool and drops the
    /// database, whether `test` succeeded or not: the create, connect,
    /// close, close sequence every test would otherwise write out.
    ///
    /// `test` gets the database too, for its URL or a second pool. When it
    /// fails, its error is returned and the cleanup's own failure is only
    /// logged; when it panics, the database is still dropped (by the
    /// handle's `Drop`, on a thread of its own).
    ///
    /// ```
    /// use sea_orm::ConnectionTrait;
    /// use tenancy_testing::TestDatabase;
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let rows = TestDatabase::with(async |_db, conn| {
    ///     conn.execute_unprepared("CREATE TABLE note (id int)").await?;
    ///     let done = conn.execute_unprepared("INSERT INTO note VALUES (1), (2)").await?;
    ///     Ok::<_, Box<dyn std::error::Error>>(done.rows_affected())
    /// })
    /// .await?;
    /// assert_eq!(rows, 2);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `test`'s error; else [`HarnessError`] or [`DbErr`] (converted into
    /// `E`) when the database cannot be created, connected to, or dropped.
    pub async fn with<T, E>(
        test: impl AsyncFnOnce(&TestDatabase, &DatabaseConnection) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<HarnessError> + From<DbErr>,
    {
        let db = Self::create().await?;
        let conn = db.connect().await?;
        let outcome = test(&db, &conn).await;
        let closed = conn.close().await;
        let dropped = db.close().await;
        match outcome {
            Ok(value) => {
                closed?;
                dropped?;
                Ok(value)
            }
            Err(e) => {
                if let Err(cleanup) = closed {
                    tracing::warn!("closing the pool after a failed test failed too: {cleanup}");
                }
                if let Err(cleanup) = dropped {
                    tracing::warn!(
                        "dropping the database after a failed test failed too: {cleanup}"
                    );
                }
                Err(e)
            }
        }
    }
}
