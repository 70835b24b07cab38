//! Connecting with a short timeout and an error that says why: the server's
//! `host:port` and the cause (refused, unknown host, authentication, no
//! answer), instead of sqlx's "pool timed out" after 30 s.
//!
//! sqlx's pool retries a refused connection until its acquire timeout and
//! then reports only the timeout, so the cause is lost; one direct connection
//! attempt first, bounded by the same timeout, keeps it.

use std::fmt;
use std::time::Duration;

use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection, PgDatabaseError};
use sea_orm::sqlx::{self, Connection};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr, RuntimeErr};
use tenancy_core::sqlstate;

/// The connect timeout [`connect`] uses when the options set none: long
/// enough for a server in another region, short enough that a wrong URL
/// fails before anyone wonders whether it hangs.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a connection could not be made, in [`ConnectError::cause`].
///
/// ```
/// use tenancy::orm::ConnectCause;
/// assert_eq!(ConnectCause::Refused.to_string(), "connection refused (is the server running and listening on that port?)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectCause {
    /// Nothing listens at that host and port.
    Refused,
    /// The host name does not resolve.
    UnknownHost(String),
    /// The server refused the user or password (SQLSTATE class 28).
    Authentication(String),
    /// The database named in the URL does not exist.
    UnknownDatabase(String),
    /// No answer within the connect timeout.
    Timeout(Duration),
    /// The URL cannot be parsed.
    InvalidUrl(String),
    /// Anything else, with the driver's or server's message.
    Other(String),
}

impl fmt::Display for ConnectCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused => f.write_str(
                "connection refused (is the server running and listening on that port?)",
            ),
            Self::UnknownHost(detail) => {
                write!(f, "cannot resolve the host name ({detail})")
            }
            Self::Authentication(message) => {
                write!(
                    f,
                    "authentication failed: {message} (check the user and password)"
                )
            }
            Self::UnknownDatabase(message) => {
                write!(f, "{message} (check the database name in the URL)")
            }
            Self::Timeout(timeout) => write!(
                f,
                "no answer within {}s (check the host, the port and any firewall between, or \
                 raise the connect timeout)",
                timeout.as_secs_f32()
            ),
            Self::InvalidUrl(message) => write!(f, "invalid database URL: {message}"),
            Self::Other(message) => f.write_str(message),
        }
    }
}

/// A connection that could not be made: where to, and why. One line; the
/// caller adds what to set (its flag or environment variable).
///
/// ```
/// use tenancy::orm::{ConnectCause, ConnectError};
///
/// let err = ConnectError::new(Some("db.internal:5432".into()), ConnectCause::Refused);
/// assert_eq!(
///     err.to_string(),
///     "cannot connect to PostgreSQL at db.internal:5432: connection refused (is the server \
///      running and listening on that port?)"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub struct ConnectError {
    /// `host:port` (or the socket directory), when the URL says.
    pub endpoint: Option<String>,
    /// Why.
    pub cause: ConnectCause,
}

impl ConnectError {
    /// An error for `endpoint` with `cause`.
    ///
    /// ```
    /// use tenancy::orm::{ConnectCause, ConnectError};
    /// let err = ConnectError::new(None, ConnectCause::InvalidUrl("empty host".into()));
    /// assert!(err.endpoint.is_none());
    /// ```
    #[must_use]
    pub fn new(endpoint: Option<String>, cause: ConnectCause) -> Self {
        Self { endpoint, cause }
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.endpoint {
            Some(endpoint) => write!(
                f,
                "cannot connect to PostgreSQL at {}: {}",
                endpoint.escape_debug(),
                self.cause
            ),
            None => write!(f, "cannot connect to PostgreSQL: {}", self.cause),
        }
    }
}

impl From<ConnectError> for DbErr {
    fn from(err: ConnectError) -> Self {
        DbErr::Conn(RuntimeErr::Internal(err.to_string()))
    }
}

/// Opens a pool with `options`, failing within its connect timeout
/// ([`DEFAULT_CONNECT_TIMEOUT`] when unset) with a [`ConnectError`] naming
/// the server's `host:port` and the cause. An unset acquire timeout is set
/// to the same value, so a pool that cannot reach the server later fails as
/// fast.
///
/// ```
/// use std::time::Duration;
/// use sea_orm::ConnectOptions;
/// use tenancy::orm::{connect, ConnectCause};
///
/// # #[tokio::main] async fn main() {
/// let mut options = ConnectOptions::new("postgres://postgres@127.0.0.1:1/app");
/// options.connect_timeout(Duration::from_secs(2));
/// let err = connect(options).await.unwrap_err();
/// assert_eq!(err.cause, ConnectCause::Refused);
/// assert_eq!(err.endpoint.as_deref(), Some("127.0.0.1:1"));
/// # }
/// ```
///
/// # Errors
/// [`ConnectError`] when no connection could be made within the timeout.
pub async fn connect(mut options: ConnectOptions) -> Result<DatabaseConnection, ConnectError> {
    let timeout = options
        .get_connect_timeout()
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    options.connect_timeout(timeout);
    if options.get_acquire_timeout().is_none() {
        options.acquire_timeout(timeout);
    }
    let pg: PgConnectOptions = options.get_url().parse().map_err(|e: sqlx::Error| {
        ConnectError::new(None, ConnectCause::InvalidUrl(e.to_string()))
    })?;
    probe(&pg, timeout).await?;
    let fail = |cause| ConnectError::new(Some(endpoint(&pg)), cause);
    Database::connect(options).await.map_err(|e| {
        fail(match &e {
            DbErr::Conn(RuntimeErr::SqlxError(sqlx)) => cause_of(sqlx, timeout),
            other => ConnectCause::Other(other.to_string()),
        })
    })
}

/// Opens and closes one connection, so that a refused connection, an unknown
/// host or a wrong password fails at once, instead of after sqlx's pool has
/// retried it until its acquire timeout.
pub(crate) async fn probe(pg: &PgConnectOptions, timeout: Duration) -> Result<(), ConnectError> {
    let fail = |cause| ConnectError::new(Some(endpoint(pg)), cause);
    if pg.get_socket().is_none() && !pg.get_host().starts_with('/') {
        let lookup = tokio::net::lookup_host((pg.get_host(), pg.get_port()));
        match tokio::time::timeout(timeout, lookup).await {
            Err(_) => return Err(fail(ConnectCause::Timeout(timeout))),
            Ok(Err(e)) => return Err(fail(ConnectCause::UnknownHost(e.to_string()))),
            Ok(Ok(_)) => {}
        }
    }
    match tokio::time::timeout(timeout, PgConnection::connect_with(pg)).await {
        Err(_) => Err(fail(ConnectCause::Timeout(timeout))),
        Ok(Err(e)) => Err(fail(cause_of(&e, timeout))),
        Ok(Ok(probe)) => {
            // Closing politely spares the server a "connection reset" log line.
            let _ = probe.close().await;
            Ok(())
        }
    }
}

/// `host:port`, or the socket directory and port.
pub(crate) fn endpoint(pg: &PgConnectOptions) -> String {
    match pg.get_socket() {
        Some(socket) => format!("{}:{}", socket.display(), pg.get_port()),
        None if pg.get_host().contains(':') => format!("[{}]:{}", pg.get_host(), pg.get_port()),
        None => format!("{}:{}", pg.get_host(), pg.get_port()),
    }
}

pub(crate) fn cause_of(err: &sqlx::Error, timeout: Duration) -> ConnectCause {
    match err {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            ConnectCause::Refused
        }
        sqlx::Error::PoolTimedOut => ConnectCause::Timeout(timeout),
        sqlx::Error::Configuration(e) => ConnectCause::InvalidUrl(e.to_string()),
        sqlx::Error::Database(db) => {
            let message = db.message().to_owned();
            match db
                .try_downcast_ref::<PgDatabaseError>()
                .map(PgDatabaseError::code)
            {
                Some(code) if sqlstate::is_authentication_failure(code) => {
                    ConnectCause::Authentication(message)
                }
                Some(sqlstate::INVALID_CATALOG_NAME) => ConnectCause::UnknownDatabase(message),
                _ => ConnectCause::Other(message),
            }
        }
        other => ConnectCause::Other(other.to_string()),
    }
}
