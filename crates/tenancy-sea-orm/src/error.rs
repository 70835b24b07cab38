use std::fmt;

use sea_orm::DbErr;
use tenancy_core::registry::CorruptRecord;
use tenancy_core::{RoleName, SchemaName, TenantId, TenantScope, TenantStatus};

use crate::carried;
// Server errors are shown without sqlx's ` at line N`.
use crate::display_db_err;
use crate::retry::FailureKind;

/// Which tenant an error is about: its id when the scope knows one, and its schema.
///
/// ```
/// use tenancy::Tenant;
/// use tenancy::orm::ScopeLabel;
///
/// let tenant = Tenant::from_id("acme".parse()?)?;
/// assert_eq!(ScopeLabel::of(&tenant).to_string(), "tenant acme (schema tenant_acme)");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ScopeLabel {
    /// The tenant id, if the scope has one.
    pub tenant: Option<TenantId>,
    /// The tenant's schema.
    pub schema: SchemaName,
}

impl ScopeLabel {
    /// The label of a scope.
    ///
    /// ```
    /// use tenancy::orm::ScopeLabel;
    /// let schema: tenancy::SchemaName = "legacy".parse()?;
    /// assert_eq!(ScopeLabel::of(&schema).to_string(), "schema legacy");
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn of(scope: &(impl TenantScope + ?Sized)) -> Self {
        Self {
            tenant: scope.tenant_id().cloned(),
            schema: scope.schema().clone(),
        }
    }
}

impl fmt::Display for ScopeLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.tenant {
            Some(tenant) => write!(f, "tenant {tenant} (schema {})", self.schema),
            None => write!(f, "schema {}", self.schema),
        }
    }
}

/// Everything that can go wrong opening, scoping or finishing a tenant
/// transaction. Every variant names the tenant.
///
/// Errors of the statements a user runs inside a transaction stay SeaORM's
/// [`DbErr`], so entity code is unchanged; `Error` converts into `DbErr` for
/// closures that return `Result<_, DbErr>`.
///
/// ```
/// use tenancy::orm::Error;
///
/// let err = Error::UnknownTenant { tenant: "acme".parse()? };
/// assert_eq!(err.to_string(), "tenant acme is not registered");
/// let db_err: sea_orm::DbErr = err.into();
/// assert!(db_err.to_string().contains("tenant acme is not registered"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection is not a SeaORM PostgreSQL pool (SQLite, MySQL, mock).
    #[error(
        "tenancy needs a PostgreSQL connection pool, got a {backend} connection; connect with a \
         postgres:// URL"
    )]
    NotPostgres {
        /// The backend SeaORM reports.
        backend: String,
    },

    /// No connection could be had from the pool (timeout, closed pool, server down).
    #[error(
        "cannot open a transaction for {scope}: no database connection ({})",
        display_db_err(source)
    )]
    Connection {
        /// The tenant.
        scope: ScopeLabel,
        /// The pool's error.
        #[source]
        source: DbErr,
    },

    /// The tenant's schema does not exist, so its queries would fall through
    /// to the shared schemas. Refused instead.
    #[error(
        "the schema of {scope} does not exist; create the tenant (or adopt its schema) before \
         using it"
    )]
    SchemaMissing {
        /// The tenant.
        scope: ScopeLabel,
    },

    /// The tenant's schema exists but the transaction's role has no `USAGE` on
    /// it, so PostgreSQL would skip it on the search path and resolve every
    /// table in the shared schemas. Refused instead.
    #[error(
        "the role {} has no USAGE privilege on the schema of {scope}; grant it \
         (GRANT USAGE ON SCHEMA {} TO ...) or scope with another role",
        role.as_ref().map_or("of this connection", RoleName::as_str),
        scope.schema.quoted()
    )]
    SchemaAccessDenied {
        /// The tenant.
        scope: ScopeLabel,
        /// The role set with [`ScopeOptions::role`](crate::ScopeOptions::role), if any.
        role: Option<RoleName>,
    },

    /// The tenant's schema has no [probe table](crate::TenantDb::with_probe_table):
    /// it was made by hand or not migrated yet. Refused rather than trusted.
    #[error(
        "the schema of {scope} has no table {} (the probe table this TenantDb \
         checks every transaction with); migrate the tenant, or choose a table \
         every tenant schema has",
        table.quoted()
    )]
    ProbeTableMissing {
        /// The tenant.
        scope: ScopeLabel,
        /// The probe table.
        table: tenancy_core::TableName,
    },

    /// `SET LOCAL ROLE` named a role that does not exist or that the
    /// connecting user is not a member of.
    #[error("cannot switch to role {role} for {scope}: {}", display_db_err(source))]
    Role {
        /// The tenant.
        scope: ScopeLabel,
        /// The role.
        role: RoleName,
        /// The server's refusal.
        #[source]
        source: DbErr,
    },

    /// `BEGIN` or the scoping statements failed for another reason.
    #[error("cannot begin a transaction for {scope}: {}", display_db_err(source))]
    Begin {
        /// The tenant.
        scope: ScopeLabel,
        /// The server's error.
        #[source]
        source: DbErr,
    },

    /// Pooler mode ([`TenantDb::behind_pooler`](crate::TenantDb::behind_pooler)):
    /// the pooled connection holds named prepared statements that queries run
    /// outside tenancy (SeaORM on the same pool) left in sqlx's cache. sqlx
    /// would reuse them for the same SQL, and behind a transaction-mode pooler
    /// such a name can run another client's statement. The connection is
    /// closed, so retrying gets a clean one.
    #[error(
        "cannot open a pooler-mode transaction for {scope}: the pooled connection holds \
         {cached} named prepared statements from queries run outside tenancy on the same pool, \
         which behind a transaction-mode pooler can run another client's statement; the \
         connection was closed, retry. Run unscoped queries on a direct connection (or inside \
         a tenancy transaction), not on the pool given to TenantDb"
    )]
    NamedStatementsBehindPooler {
        /// The tenant.
        scope: ScopeLabel,
        /// How many named statements the connection had cached.
        cached: usize,
    },

    /// `COMMIT` failed. When the server refused it (a deferred constraint, a
    /// serialization failure) the transaction was rolled back; when the
    /// connection was lost while the COMMIT was in flight, nobody knows
    /// whether it committed: see [`Error::commit_outcome_unknown`].
    #[error("commit failed for {scope}: {}", display_db_err(source))]
    Commit {
        /// The tenant.
        scope: ScopeLabel,
        /// The server's error.
        #[source]
        source: DbErr,
    },

    /// A statement of the transaction failed on the server and the caller went
    /// on to commit anyway (the statement's error was ignored): PostgreSQL
    /// answers such a COMMIT with ROLLBACK, so nothing of the transaction was
    /// saved. `source` is the statement's error.
    #[error(
        "the transaction for {scope} was rolled back, not committed: a statement in it failed \
         ({}) and its error was ignored; nothing of the transaction was saved. Return the \
         statement's error instead of ignoring it, or run statements that may fail inside a \
         nested transaction (a savepoint) and roll that back",
        display_db_err(source)
    )]
    CommitRolledBack {
        /// The tenant.
        scope: ScopeLabel,
        /// The error of the statement that aborted the transaction.
        #[source]
        source: DbErr,
    },

    /// `ROLLBACK` failed (the connection is discarded, not returned to the pool).
    #[error("rollback failed for {scope}: {}", display_db_err(source))]
    Rollback {
        /// The tenant.
        scope: ScopeLabel,
        /// The server's error.
        #[source]
        source: DbErr,
    },

    /// The registry has no tenant with this id.
    #[error("tenant {tenant} is not registered")]
    UnknownTenant {
        /// The tenant id looked up.
        tenant: TenantId,
    },

    /// The tenant is registered but its status refuses access.
    #[error("tenant {tenant} is {status}; access is refused until it is active again")]
    Inaccessible {
        /// The tenant id looked up.
        tenant: TenantId,
        /// Its status in the registry.
        status: TenantStatus,
    },

    /// The registry could not be read.
    #[error("cannot look up tenant {tenant} in the registry: {reason}")]
    Registry {
        /// The tenant id looked up.
        tenant: TenantId,
        /// What went wrong.
        reason: String,
        /// The underlying error, when the database raised one.
        #[source]
        source: Option<DbErr>,
    },

    /// The tenant's registry row does not validate (written by hand: an
    /// invalid schema name, an unknown status, a NULL). Access is refused
    /// until the row is fixed.
    #[error("cannot use tenant {tenant}: {record}; fix or remove the row in the registry table")]
    CorruptRegistry {
        /// The tenant id looked up.
        tenant: TenantId,
        /// The row as stored, and what is wrong with it.
        record: CorruptRecord,
    },
}

impl Error {
    /// The tenant id the error is about, if known.
    ///
    /// ```
    /// let err = tenancy::orm::Error::UnknownTenant { tenant: "acme".parse()? };
    /// assert_eq!(err.tenant().map(|t| t.as_str()), Some("acme"));
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn tenant(&self) -> Option<&TenantId> {
        match self {
            Self::NotPostgres { .. } => None,
            Self::Connection { scope, .. }
            | Self::SchemaMissing { scope }
            | Self::SchemaAccessDenied { scope, .. }
            | Self::ProbeTableMissing { scope, .. }
            | Self::Role { scope, .. }
            | Self::Begin { scope, .. }
            | Self::NamedStatementsBehindPooler { scope, .. }
            | Self::Commit { scope, .. }
            | Self::CommitRolledBack { scope, .. }
            | Self::Rollback { scope, .. } => scope.tenant.as_ref(),
            Self::UnknownTenant { tenant }
            | Self::Inaccessible { tenant, .. }
            | Self::Registry { tenant, .. }
            | Self::CorruptRegistry { tenant, .. } => Some(tenant),
        }
    }
}

impl Error {
    /// What kind of failure this is, for deciding whether to run the
    /// transaction again (see [`FailureKind`]). Scoping refusals (unknown
    /// tenant, missing schema, role) are [`FailureKind::Other`].
    ///
    /// ```
    /// use tenancy::orm::{Error, FailureKind};
    /// let err = Error::UnknownTenant { tenant: "acme".parse()? };
    /// assert_eq!(err.kind(), FailureKind::Other);
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::Connection { source, .. }
            | Self::Begin { source, .. }
            | Self::Commit { source, .. }
            | Self::CommitRolledBack { source, .. }
            | Self::Rollback { source, .. }
            | Self::Registry {
                source: Some(source),
                ..
            } => FailureKind::of(source),
            _ => FailureKind::Other,
        }
    }

    /// Whether running the whole transaction again is expected to succeed
    /// (`self.kind().is_retryable()`). Mind
    /// [`commit_outcome_unknown`](Self::commit_outcome_unknown) first.
    ///
    /// ```
    /// let err = tenancy::orm::Error::UnknownTenant { tenant: "acme".parse()? };
    /// assert!(!err.is_retryable());
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        self.kind().is_retryable()
    }

    /// Whether nobody knows if the transaction committed: the connection was
    /// lost while `COMMIT` was in flight, and the server may have committed
    /// just before. Check (by a unique key, an idempotency token) before
    /// running the transaction again, or make it idempotent.
    ///
    /// Every other error of a transaction means it did not commit.
    ///
    /// ```
    /// let err = tenancy::orm::Error::UnknownTenant { tenant: "acme".parse()? };
    /// assert!(!err.commit_outcome_unknown());
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn commit_outcome_unknown(&self) -> bool {
        matches!(self, Self::Commit { source, .. } if FailureKind::of(source) == FailureKind::ConnectionLost)
    }

    /// The tenancy error a SeaORM error carries, if any. Methods whose
    /// signature SeaORM fixes return [`DbErr`]; for
    /// [`TenantTransaction::commit`](crate::TenantTransaction::commit) this
    /// recovers [`Error::CommitRolledBack`].
    ///
    /// ```
    /// use sea_orm::ConnectionTrait;
    /// use tenancy::orm::Error;
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let test_db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = test_db.connect().await?;
    /// # conn.execute_unprepared("CREATE SCHEMA tenant_acme").await?;
    /// # let db = tenancy::orm::TenantDb::new(conn.clone())?;
    /// # let acme = tenancy::Tenant::from_id("acme".parse()?)?;
    /// let txn = db.begin(&acme).await?;
    /// let _ignored = txn.execute_unprepared("SELECT 1 / 0").await; // aborts the transaction
    /// let err = txn.commit().await.unwrap_err();
    /// assert!(matches!(Error::in_db_err(&err), Some(Error::CommitRolledBack { .. })));
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn in_db_err(err: &DbErr) -> Option<&Self> {
        carried::find(err)
    }
}

impl From<Error> for DbErr {
    fn from(err: Error) -> Self {
        match err {
            // Keep the server's error where there is one, so `DbErr::sql_err()` and
            // SQLSTATE checks still work on it; the tenant is in the span.
            Error::Commit { source, .. } | Error::Rollback { source, .. } => source,
            rolled_back @ Error::CommitRolledBack { .. } => carried::into_db_err(rolled_back),
            other => DbErr::Custom(other.to_string()),
        }
    }
}
