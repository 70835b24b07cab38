//! The PostgreSQL error codes (SQLSTATEs) tenancy decides on, named once.
//!
//! Every decision on a server error is made on its SQLSTATE (or constraint,
//! or raising routine), never on its message, which is translated with the
//! server's locale. This module holds only the codes and what they mean
//! here; reading a code out of an error is the database crates' job
//! (`tenancy_sea_orm::sqlstate`).
//!
//! ```
//! use tenancy_core::sqlstate;
//!
//! assert_eq!(sqlstate::INVALID_SCHEMA_NAME, "3F000");
//! assert!(sqlstate::is_connection_lost("08006"));
//! assert!(!sqlstate::is_connection_lost("42P01"));
//! ```
//!
//! See PostgreSQL's "Appendix A. PostgreSQL Error Codes" for the full list.

/// `feature_not_supported`. Raised with routine `RevalidateCachedQuery` it is
/// "cached plan must not change result type": a prepared statement's result
/// columns changed since it was prepared (another tenant's table has another
/// shape). Other errors share the code, so check the routine too.
pub const FEATURE_NOT_SUPPORTED: &str = "0A000";

/// The class of every `connection_exception` (`08000`, `08003`, `08006`, …):
/// the session is gone.
pub const CONNECTION_EXCEPTION_CLASS: &str = "08";

/// `division_by_zero`. tenancy's opening statement divides by zero when the
/// transaction's role lacks `USAGE` on the tenant's schema.
pub const DIVISION_BY_ZERO: &str = "22012";

/// `invalid_parameter_value`, as `SET ROLE` raises it for a role the
/// connecting user may not switch to.
pub const INVALID_PARAMETER_VALUE: &str = "22023";

/// `unique_violation`: a registry row with this id, schema or domain exists.
pub const UNIQUE_VIOLATION: &str = "23505";

/// `read_only_sql_transaction`: a write in a `READ ONLY` transaction.
pub const READ_ONLY_SQL_TRANSACTION: &str = "25006";

/// `invalid_authorization_specification`: an unknown role, or no
/// `pg_hba.conf` entry for this client.
pub const INVALID_AUTHORIZATION_SPECIFICATION: &str = "28000";

/// `invalid_password`.
pub const INVALID_PASSWORD: &str = "28P01";

/// `invalid_catalog_name`: the database in the URL does not exist.
pub const INVALID_CATALOG_NAME: &str = "3D000";

/// `invalid_schema_name`: what casting a missing schema to `regnamespace`
/// raises, so tenancy's checks fail with it when a tenant's schema is gone.
pub const INVALID_SCHEMA_NAME: &str = "3F000";

/// `serialization_failure`: a concurrent transaction conflicted under
/// `REPEATABLE READ` or `SERIALIZABLE`; running the transaction again is
/// expected to succeed.
pub const SERIALIZATION_FAILURE: &str = "40001";

/// `deadlock_detected`: the server chose this transaction as the deadlock's
/// victim; running it again is expected to succeed.
pub const DEADLOCK_DETECTED: &str = "40P01";

/// `insufficient_privilege`.
pub const INSUFFICIENT_PRIVILEGE: &str = "42501";

/// `undefined_table`: a missing table (a tenant's probe table, the registry
/// before `install`).
pub const UNDEFINED_TABLE: &str = "42P01";

/// `duplicate_schema`: `CREATE SCHEMA` of a schema that exists.
pub const DUPLICATE_SCHEMA: &str = "42P06";

/// `undefined_object`, as `SET ROLE` raises it for a role that does not exist.
pub const UNDEFINED_OBJECT: &str = "42704";

/// `lock_not_available`: a lock that was only to be tried is held by
/// another session (a fleet runner finding a tenant another runner is
/// migrating).
pub const LOCK_NOT_AVAILABLE: &str = "55P03";

/// `query_canceled`: `statement_timeout`, or `pg_cancel_backend`.
pub const QUERY_CANCELED: &str = "57014";

/// `admin_shutdown`: the backend was terminated (`pg_terminate_backend`) or
/// the server is shutting down.
pub const ADMIN_SHUTDOWN: &str = "57P01";

/// `crash_shutdown`: another backend crashed and the server is restarting.
pub const CRASH_SHUTDOWN: &str = "57P02";

/// `cannot_connect_now`: the server is starting up or shutting down.
pub const CANNOT_CONNECT_NOW: &str = "57P03";

/// Whether `code` means the session is gone: a connection exception
/// (class 08), or the backend terminated or the server shut down
/// (`57P01`, `57P02`, `57P03`). The pool replaces such a connection.
///
/// ```
/// use tenancy_core::sqlstate;
/// assert!(sqlstate::is_connection_lost(sqlstate::ADMIN_SHUTDOWN));
/// assert!(!sqlstate::is_connection_lost(sqlstate::QUERY_CANCELED));
/// ```
#[must_use]
pub fn is_connection_lost(code: &str) -> bool {
    code.starts_with(CONNECTION_EXCEPTION_CLASS)
        || [ADMIN_SHUTDOWN, CRASH_SHUTDOWN, CANNOT_CONNECT_NOW].contains(&code)
}

/// Whether `code` means the server refused who is connecting (unknown role,
/// no `pg_hba.conf` entry, wrong password).
///
/// ```
/// assert!(tenancy_core::sqlstate::is_authentication_failure("28P01"));
/// ```
#[must_use]
pub fn is_authentication_failure(code: &str) -> bool {
    [INVALID_AUTHORIZATION_SPECIFICATION, INVALID_PASSWORD].contains(&code)
}
