//! What an [`Error`] means to a caller, without matching its variants.

use sea_orm::DbErr;
use tenancy_core::TenantId;
use tenancy_sea_orm::FailureKind;

use super::Error;

/// What kind of failure an [`Error`] is, for callers that map errors (to
/// HTTP statuses, exit codes, retries) without matching every variant; new
/// variants of [`Error`] fall into one of these.
///
/// ```
/// use tenancy::migrate::{Error, ErrorKind};
///
/// let err = Error::UnknownTenant { tenant: "acme".parse()? };
/// assert_eq!(err.kind(), ErrorKind::NotFound);
/// assert!(err.is_not_found());
/// # Ok::<(), tenancy::NameError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A value given was not valid (a tenant id or schema name, a migrator
    /// whose migrations share a name). Nothing was done.
    InvalidInput,
    /// The tenant is not registered, or its schema does not exist.
    NotFound,
    /// Something of the same name exists already: the tenant id, its schema
    /// (unowned, or owned by another tenant), or its domain.
    Conflict,
    /// A safety rule refused the call (a shared schema, a deleted tenant, a
    /// drop without confirmation, a connection pooler, a rollback past a
    /// migration without `down()`). Nothing was done.
    Refused,
    /// The database could not be reached, or asked for a retry (lost
    /// connection, serialization failure, deadlock): running the call again
    /// is expected to succeed.
    Unavailable,
    /// A registry row does not validate; fix or remove it by hand.
    Corrupt,
    /// A migration, a revert or a database statement failed (or migration
    /// code panicked); running it again would fail the same way.
    Failed,
}

impl Error {
    /// The tenant the error is about, when it is about one (a
    /// [`CorruptRegistry`](Self::CorruptRegistry) row's id is not a valid
    /// tenant id, so it has none).
    ///
    /// ```
    /// let err = tenancy::migrate::Error::UnknownTenant { tenant: "acme".parse()? };
    /// assert_eq!(err.tenant().map(|t| t.as_str()), Some("acme"));
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn tenant(&self) -> Option<&TenantId> {
        match self {
            Self::TenantExists { tenant }
            | Self::SchemaTaken { tenant, .. }
            | Self::SchemaExists { tenant, .. }
            | Self::DomainTaken { tenant, .. }
            | Self::SchemaShared { tenant, .. }
            | Self::SchemaMissing { tenant, .. }
            | Self::UnknownTenant { tenant }
            | Self::TenantDeleted { tenant }
            | Self::DropNotConfirmed { tenant }
            | Self::Migration { tenant, .. }
            | Self::PartlyMigrated { tenant, .. }
            | Self::OutsideTransactionFailed { tenant, .. }
            | Self::ProvisioningUnfinished { tenant, .. }
            | Self::Tenant { tenant, .. }
            | Self::RevertFailed { tenant, .. }
            | Self::RollbackUnsupported { tenant, .. }
            | Self::Panicked { tenant, .. }
            | Self::ExportUnsupported { tenant, .. }
            | Self::ExportFailed { tenant, .. }
            | Self::ImportFailed { tenant, .. }
            | Self::TenantMoved { tenant, .. }
            | Self::MoveInProgress { tenant, .. }
            | Self::MoveConflict { tenant, .. }
            | Self::NotDistributed { tenant, .. } => Some(tenant),
            Self::InvalidName(_)
            | Self::Database { .. }
            | Self::CorruptRegistry { .. }
            | Self::FleetRun(_)
            | Self::SharedMigration { .. }
            | Self::BehindPooler { .. }
            | Self::DuplicateMigrationName { .. }
            | Self::Spare { .. }
            | Self::SparesUnsupported { .. }
            | Self::InvalidExport { .. }
            | Self::TransferIo { .. }
            | Self::UnsupportedRead { .. }
            | Self::CitusMissing => None,
        }
    }

    /// What kind of failure this is (see [`ErrorKind`]). A database
    /// failure is [`ErrorKind::Unavailable`] when retrying can help, as
    /// [`is_retryable`](Self::is_retryable) says.
    ///
    /// ```
    /// use tenancy::migrate::{Error, ErrorKind};
    /// let err = Error::TenantDeleted { tenant: "acme".parse()? };
    /// assert_eq!(err.kind(), ErrorKind::Refused);
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        if self.is_retryable() {
            return ErrorKind::Unavailable;
        }
        match self {
            Self::InvalidName(_)
            | Self::DuplicateMigrationName { .. }
            | Self::InvalidExport { .. }
            | Self::UnsupportedRead { .. } => ErrorKind::InvalidInput,
            Self::UnknownTenant { .. } | Self::SchemaMissing { .. } => ErrorKind::NotFound,
            Self::TenantExists { .. }
            | Self::SchemaTaken { .. }
            | Self::SchemaExists { .. }
            | Self::DomainTaken { .. }
            | Self::MoveInProgress { .. }
            | Self::MoveConflict { .. } => ErrorKind::Conflict,
            Self::SchemaShared { .. }
            | Self::TenantDeleted { .. }
            | Self::DropNotConfirmed { .. }
            | Self::BehindPooler { .. }
            | Self::RollbackUnsupported { .. }
            | Self::SparesUnsupported { .. }
            | Self::ExportUnsupported { .. }
            | Self::TenantMoved { .. }
            | Self::CitusMissing => ErrorKind::Refused,
            Self::CorruptRegistry { .. } => ErrorKind::Corrupt,
            Self::ProvisioningUnfinished { source, .. } => source.kind(),
            Self::Migration { .. }
            | Self::PartlyMigrated { .. }
            | Self::OutsideTransactionFailed { .. }
            | Self::Tenant { .. }
            | Self::Database { .. }
            | Self::RevertFailed { .. }
            | Self::FleetRun(_)
            | Self::SharedMigration { .. }
            | Self::Spare { .. }
            | Self::Panicked { .. }
            | Self::ExportFailed { .. }
            | Self::ImportFailed { .. }
            | Self::TransferIo { .. }
            | Self::NotDistributed { .. } => ErrorKind::Failed,
        }
    }

    /// The server's error, where there is one.
    ///
    /// ```
    /// let err = tenancy::migrate::Error::UnknownTenant { tenant: "acme".parse()? };
    /// assert!(err.db_err().is_none());
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn db_err(&self) -> Option<&DbErr> {
        match self {
            Self::Migration { source, .. }
            | Self::Tenant { source, .. }
            | Self::Database { source, .. }
            | Self::RevertFailed { source, .. }
            | Self::SharedMigration { source, .. }
            | Self::Spare { source, .. }
            | Self::ExportFailed { source, .. }
            | Self::ImportFailed { source, .. } => Some(source),
            Self::PartlyMigrated { source, .. } | Self::OutsideTransactionFailed { source, .. } => {
                Some(source)
            }
            Self::ProvisioningUnfinished { source, .. } => source.db_err(),
            _ => None,
        }
    }

    /// How the server's error classifies for retrying, as
    /// `tenancy_sea_orm::Error::kind` does for a tenant transaction;
    /// [`FailureKind::Other`] when there is no server error.
    ///
    /// ```
    /// use tenancy::orm::FailureKind;
    /// let err = tenancy::migrate::Error::UnknownTenant { tenant: "acme".parse()? };
    /// assert_eq!(err.failure_kind(), FailureKind::Other);
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn failure_kind(&self) -> FailureKind {
        self.db_err().map_or(FailureKind::Other, FailureKind::of)
    }

    /// Whether running the call again is expected to succeed: the database
    /// could not be reached (no connection from the pool, a lost
    /// connection), or the server asked for a retry (serialization failure,
    /// deadlock). Every such failure rolled its transaction back.
    ///
    /// ```
    /// let err = tenancy::migrate::Error::UnknownTenant { tenant: "acme".parse()? };
    /// assert!(!err.is_retryable());
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        self.db_err().is_some_and(|err| {
            matches!(err, DbErr::ConnectionAcquire(_) | DbErr::Conn(_))
                || FailureKind::of(err).is_retryable()
        })
    }

    /// Whether the tenant (or its schema) does not exist
    /// ([`ErrorKind::NotFound`]).
    ///
    /// ```
    /// let err = tenancy::migrate::Error::UnknownTenant { tenant: "acme".parse()? };
    /// assert!(err.is_not_found());
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        self.kind() == ErrorKind::NotFound
    }

    /// Whether something of the same name exists already
    /// ([`ErrorKind::Conflict`]).
    ///
    /// ```
    /// let err = tenancy::migrate::Error::TenantExists { tenant: "acme".parse()? };
    /// assert!(err.is_conflict());
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn is_conflict(&self) -> bool {
        self.kind() == ErrorKind::Conflict
    }

    /// Whether a safety rule refused the call and nothing was done
    /// ([`ErrorKind::Refused`]).
    ///
    /// ```
    /// let err = tenancy::migrate::Error::DropNotConfirmed { tenant: "acme".parse()? };
    /// assert!(err.is_refused());
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn is_refused(&self) -> bool {
        self.kind() == ErrorKind::Refused
    }
}
