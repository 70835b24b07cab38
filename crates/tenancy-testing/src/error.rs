//! The one error type of the harness.

use sea_orm::DbErr;
use tenancy_sea_orm::ConnectError;

/// Why no throwaway database could be provided (or removed).
///
/// URLs in these errors have their password masked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// Nothing in the fallback chain answered.
    #[error(
        "no PostgreSQL for tests: set TENANCY_TEST_DATABASE_URL=postgres://user:pass@host:port/db, \
         run a Docker engine, or start a local server at {local_url} \
         (e.g. `pg_ctlcluster 15 main start`); the local server: {source}"
    )]
    NoServer {
        /// The local server URL that was tried last.
        local_url: String,
        /// Why the local server could not be reached.
        #[source]
        source: ConnectError,
    },

    /// `TENANCY_TEST_DATABASE_URL` is set but its server does not answer. There is no
    /// fallback in that case: the user asked for that server.
    #[error(
        "TENANCY_TEST_DATABASE_URL={url} is set, but that server is unreachable: {source}; \
         point TENANCY_TEST_DATABASE_URL at a running server, or unset it to use Docker or \
         the local server"
    )]
    EnvUrlUnreachable {
        /// The URL from the environment.
        url: String,
        /// The connection error.
        #[source]
        source: ConnectError,
    },

    /// A server URL is not a URL.
    #[error("invalid PostgreSQL URL {url}: {source}")]
    InvalidUrl {
        /// The offending URL.
        url: String,
        /// The parse error.
        #[source]
        source: url::ParseError,
    },

    /// `TENANCY_TEST_PGBOUNCER` is set but is not `host:port`.
    #[error(
        "TENANCY_TEST_PGBOUNCER={value:?} is not host:port (e.g. 127.0.0.1:6432); fix or unset it"
    )]
    InvalidPooler {
        /// The variable's value.
        value: String,
    },

    /// Connecting to a server's maintenance database failed.
    #[error("{source} (server {url})")]
    Connect {
        /// The server URL.
        url: String,
        /// The connection error.
        #[source]
        source: ConnectError,
    },

    /// `CREATE DATABASE` failed.
    #[error("cannot create test database {name}: {source}")]
    CreateDatabase {
        /// The database name.
        name: String,
        /// The server's error.
        #[source]
        source: DbErr,
    },

    /// `DROP DATABASE` failed.
    #[error("cannot drop test database {name}: {source}")]
    DropDatabase {
        /// The database name.
        name: String,
        /// The server's error.
        #[source]
        source: DbErr,
    },

    /// Listing databases for the stale-database sweep failed.
    #[error("cannot list databases on {url} for the stale sweep: {source}")]
    ListDatabases {
        /// The server URL.
        url: String,
        /// The server's error.
        #[source]
        source: DbErr,
    },
}
