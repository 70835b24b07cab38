//! Which failures are worth retrying the whole transaction for.

use sea_orm::DbErr;

use crate::carried;
use tenancy_core::sqlstate;

use crate::connection::{is_stale_plan, sqlx_error};

/// What kind of failure an error is, as far as retrying goes.
///
/// Every kind but [`Other`](Self::Other) means the transaction was rolled
/// back (or never began) for a reason that has nothing to do with its
/// content, so running the whole transaction again, from `begin`, is
/// expected to succeed. Retry the transaction, never a single statement: the
/// server has already thrown away everything the transaction did.
///
/// One case needs care: a connection lost *during* `COMMIT`
/// ([`Error::commit_outcome_unknown`](crate::Error::commit_outcome_unknown)).
/// The server may have committed before the connection went, so retrying
/// blindly may do the work twice; retry only work that is idempotent or
/// that checks first (a unique key, an idempotency token).
///
/// ```
/// use tenancy::orm::FailureKind;
///
/// let err = sea_orm::DbErr::Custom("not a database failure".into());
/// assert_eq!(FailureKind::of(&err), FailureKind::Other);
/// assert!(!FailureKind::of(&err).is_retryable());
/// assert!(FailureKind::SerializationFailure.is_retryable());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// The connection was lost: the backend was terminated (57P01) or the
    /// server shut down (57P02, 57P03), a connection exception (class 08),
    /// or the socket failed (EOF, reset). The pool replaces the connection.
    ConnectionLost,
    /// `serialization_failure` (40001): a concurrent transaction conflicted
    /// under `REPEATABLE READ` or `SERIALIZABLE`.
    SerializationFailure,
    /// `deadlock_detected` (40P01): the server chose this transaction as the
    /// deadlock's victim.
    Deadlock,
    /// `cached plan must not change result type` (0A000 while revalidating a
    /// cached plan): see [`is_stale_plan_error`](crate::is_stale_plan_error).
    /// The connection that hit it is discarded.
    StalePlan,
    /// Anything else: retrying the same transaction would fail the same way.
    Other,
}

impl FailureKind {
    /// The kind of a SeaORM error (from a [`TenantTransaction`](crate::TenantTransaction),
    /// or any other SeaORM PostgreSQL connection).
    ///
    /// ```
    /// let lost = sea_orm::DbErr::Conn(sea_orm::RuntimeErr::SqlxError(std::sync::Arc::new(
    ///     sea_orm::sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into()),
    /// )));
    /// assert_eq!(tenancy::orm::FailureKind::of(&lost), tenancy::orm::FailureKind::ConnectionLost);
    /// ```
    #[must_use]
    pub fn of(err: &DbErr) -> Self {
        if let Some(carried) = carried::find(err) {
            return carried.kind();
        }
        let Some(e) = sqlx_error(err) else {
            return Self::Other;
        };
        if is_stale_plan(e) {
            return Self::StalePlan;
        }
        match e {
            sea_orm::sqlx::Error::Io(_) => Self::ConnectionLost,
            sea_orm::sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                match &*code {
                    sqlstate::SERIALIZATION_FAILURE => Self::SerializationFailure,
                    sqlstate::DEADLOCK_DETECTED => Self::Deadlock,
                    c if sqlstate::is_connection_lost(c) => Self::ConnectionLost,
                    _ => Self::Other,
                }
            }
            _ => Self::Other,
        }
    }

    /// Whether running the whole transaction again is expected to succeed.
    ///
    /// ```
    /// assert!(!tenancy::orm::FailureKind::Other.is_retryable());
    /// ```
    #[must_use]
    pub fn is_retryable(self) -> bool {
        !matches!(self, Self::Other)
    }
}

/// Whether the transaction that failed with `err` is worth running again
/// from the start: the connection was lost, a serialization failure, a
/// deadlock, or a stale prepared plan (see [`FailureKind`], and mind a
/// connection lost during `COMMIT`).
///
/// ```
/// use sea_orm::{ConnectionTrait, DbErr};
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let test_db = tenancy_testing::TestDatabase::create().await?;
/// # let conn = test_db.connect().await?;
/// # conn.execute_unprepared("CREATE SCHEMA tenant_acme").await?;
/// # let db = tenancy::orm::TenantDb::new(conn.clone())?;
/// # let acme = tenancy::Tenant::from_id("acme".parse()?)?;
/// let txn = db.begin(&acme).await?;
/// let err = txn.execute_unprepared("SELECT 1 / 0").await.unwrap_err();
/// assert!(!tenancy::orm::is_retryable(&err)); // it would divide by zero again
/// txn.rollback().await?;
/// # conn.close().await?;
/// # test_db.close().await?;
/// # Ok(()) }
/// ```
#[must_use]
pub fn is_retryable(err: &DbErr) -> bool {
    FailureKind::of(err).is_retryable()
}
