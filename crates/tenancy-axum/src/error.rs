//! What a caller is told when a request cannot be served, and what is logged.

use std::error::Error as StdError;
use std::fmt;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sea_orm::DbErr;
use tenancy_core::TenantStatus;

/// Why a request was refused or failed, as far as a caller may know.
///
/// Each kind has one status code and one fixed message: what reaches the
/// caller never depends on the internal error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request names no tenant (400).
    NoTenant,
    /// The request names a tenant badly: `acme_.example.com`, `X-Tenant-ID: ACME` (400).
    InvalidTenant,
    /// No such tenant, or one the caller may not see (404). The two look the
    /// same unless the layer was built with
    /// [`distinguish_forbidden`](crate::TenancyLayer::distinguish_forbidden).
    NotFound,
    /// The access check asked for credentials the request does not carry (401).
    Unauthenticated,
    /// The access check refused a registered tenant, and the layer was told
    /// to say so (403).
    Forbidden,
    /// The tenant exists and the caller may use it, but it is suspended (403).
    Suspended,
    /// The database cannot be reached or asked for a retry (503).
    Unavailable,
    /// Anything else: a bug or a misconfiguration, logged in full (500).
    Internal,
}

impl ErrorKind {
    /// The HTTP status this kind is answered with.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use tenancy::web::ErrorKind;
    /// assert_eq!(ErrorKind::NotFound.status(), StatusCode::NOT_FOUND);
    /// assert_eq!(ErrorKind::Unavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
    /// ```
    #[must_use]
    pub fn status(self) -> StatusCode {
        match self {
            Self::NoTenant | Self::InvalidTenant => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::Suspended => StatusCode::FORBIDDEN,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable, machine-readable code (the `code` field of the body).
    ///
    /// ```
    /// assert_eq!(tenancy::web::ErrorKind::NoTenant.code(), "no_tenant");
    /// ```
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::NoTenant => "no_tenant",
            Self::InvalidTenant => "invalid_tenant",
            Self::NotFound => "tenant_not_found",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::Suspended => "tenant_suspended",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }

    /// The message a caller sees (the `error` field of the body).
    ///
    /// ```
    /// assert_eq!(tenancy::web::ErrorKind::NotFound.message(), "no such tenant");
    /// ```
    #[must_use]
    pub fn message(self) -> &'static str {
        match self {
            Self::NoTenant => "the request names no tenant",
            Self::InvalidTenant => "the request does not name a valid tenant",
            Self::NotFound => "no such tenant",
            Self::Unauthenticated => "sign in to use this tenant",
            Self::Forbidden => "you may not use this tenant",
            Self::Suspended => "this tenant is suspended",
            Self::Unavailable => "the service is unavailable; try again shortly",
            Self::Internal => "internal server error",
        }
    }
}

/// An error answered with a fixed status and message, never with its cause.
///
/// The layer refuses requests with it, and handlers can return it for
/// database errors: `?` converts a [`tenancy_sea_orm::Error`] or a SeaORM
/// [`DbErr`] into [`ErrorKind::Unavailable`] (503) when the database is
/// unreachable or asked for a retry, and [`ErrorKind::Internal`] (500)
/// otherwise. The cause (SQL, schema names, the server's message) stays in
/// [`source`](StdError::source) and is logged with `tracing` when the error
/// becomes a response; the body is `{"error": <message>, "code": <code>}`.
///
/// ```
/// use axum::response::IntoResponse;
/// use tenancy::web::{Error, ErrorKind};
///
/// let err = Error::from(sea_orm::DbErr::Custom(r#"relation "tenant_acme.project" does not exist"#.into()));
/// assert_eq!(err.kind(), ErrorKind::Internal);
/// assert_eq!(err.to_string(), "internal server error"); // the cause is not in Display
/// assert!(std::error::Error::source(&err).is_some()); // but kept for your logs
/// assert_eq!(err.into_response().status(), 500);
/// ```
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl Error {
    /// An error of this kind with no cause.
    ///
    /// ```
    /// let err = tenancy::web::Error::new(tenancy::web::ErrorKind::NotFound);
    /// assert_eq!(err.status(), 404);
    /// ```
    #[must_use]
    pub fn new(kind: ErrorKind) -> Self {
        Self { kind, source: None }
    }

    /// An error of this kind caused by `source` (logged, never shown).
    ///
    /// ```
    /// use tenancy::web::{Error, ErrorKind};
    /// let err = Error::with_source(ErrorKind::Internal, std::io::Error::other("disk full"));
    /// assert_eq!(err.to_string(), "internal server error");
    /// ```
    #[must_use]
    pub fn with_source(
        kind: ErrorKind,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        Self {
            kind,
            source: Some(source.into()),
        }
    }

    /// What went wrong, as far as a caller may know.
    ///
    /// ```
    /// use tenancy::web::{Error, ErrorKind};
    /// assert_eq!(Error::new(ErrorKind::NoTenant).kind(), ErrorKind::NoTenant);
    /// ```
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The HTTP status of the response.
    ///
    /// ```
    /// use tenancy::web::{Error, ErrorKind};
    /// assert_eq!(Error::new(ErrorKind::InvalidTenant).status(), 400);
    /// ```
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// Logs the error: causes of 5xx at `error`, refusals at `debug` (they
    /// are the caller's doing, and a flood of them must not flood the logs).
    fn log(&self) {
        // tenancy's errors and SeaORM's carry their causes in their own messages.
        let cause = self.source.as_deref().map(tracing::field::display);
        if self.status().is_server_error() {
            tracing::error!(code = self.kind.code(), cause, "request failed");
        } else {
            tracing::debug!(code = self.kind.code(), cause, "request refused");
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.message())
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn StdError + 'static))
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        self.log();
        let body = serde_json::json!({ "error": self.kind.message(), "code": self.kind.code() });
        (self.status(), Json(body)).into_response()
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self::new(kind)
    }
}

impl From<tenancy_sea_orm::Error> for Error {
    /// Unknown and inaccessible tenants keep their meaning (404, 403; a
    /// deleted tenant is 404); database failures are 503 when retrying can
    /// help and 500 otherwise.
    fn from(err: tenancy_sea_orm::Error) -> Self {
        use tenancy_sea_orm::Error as E;
        let kind = match &err {
            E::UnknownTenant { .. }
            | E::Inaccessible {
                status: TenantStatus::Deleted,
                ..
            } => ErrorKind::NotFound,
            E::Inaccessible {
                status: TenantStatus::Suspended,
                ..
            } => ErrorKind::Suspended,
            // Still being created (it will be there in a moment), or no connection.
            E::Inaccessible { .. } | E::Connection { .. } => ErrorKind::Unavailable,
            E::Registry {
                source: Some(source),
                ..
            } if unavailable(source) => ErrorKind::Unavailable,
            other if other.is_retryable() => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        };
        Self::with_source(kind, err)
    }
}

impl From<DbErr> for Error {
    /// 503 when the database is unreachable or the transaction is worth
    /// retrying ([`tenancy_sea_orm::is_retryable`]), 500 otherwise.
    fn from(err: DbErr) -> Self {
        let kind = if unavailable(&err) {
            ErrorKind::Unavailable
        } else {
            ErrorKind::Internal
        };
        Self::with_source(kind, err)
    }
}

/// Whether `err` means the database cannot serve right now: no connection
/// from the pool, a lost connection, or a failure worth retrying.
fn unavailable(err: &DbErr) -> bool {
    matches!(err, DbErr::ConnectionAcquire(_) | DbErr::Conn(_))
        || tenancy_sea_orm::is_retryable(err)
}
