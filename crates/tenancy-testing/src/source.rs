//! Where test databases come from: the fallback chain.

use std::fmt;

use sea_orm::DatabaseConnection;

use crate::error::HarnessError;
use crate::naming::redact;
use crate::{admin, container};

/// Environment variable naming a Postgres server to create test databases on.
pub const ENV_URL_VAR: &str = "TENANCY_TEST_DATABASE_URL";

/// The local server tried last.
pub const LOCAL_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Which server a [`TestDatabase`](crate::TestDatabase) lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The server named by `TENANCY_TEST_DATABASE_URL`.
    EnvUrl,
    /// A `postgres:17-alpine` container started by this process.
    Container,
    /// The local server (by default at 127.0.0.1:5432).
    LocalServer,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::EnvUrl => ENV_URL_VAR,
            Self::Container => "a Docker container (postgres:17-alpine)",
            Self::LocalServer => "the local server at 127.0.0.1:5432",
        })
    }
}

/// The fallback chain, made explicit so tests can inject it instead of mutating the
/// process environment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HarnessConfig {
    /// A server URL that must be used when set (no fallback if it is unreachable).
    pub env_url: Option<String>,
    /// Whether to try a Docker container when `env_url` is `None`.
    pub try_docker: bool,
    /// The server tried last.
    pub local_url: String,
}

impl HarnessConfig {
    /// An explicit chain: `env_url` if set (and nothing else), else Docker
    /// when `try_docker`, else `local_url`.
    ///
    /// ```
    /// use tenancy_testing::HarnessConfig;
    ///
    /// let local_only = HarnessConfig::new(None, false, "postgres://postgres@127.0.0.1:5432/postgres");
    /// assert!(!local_only.try_docker);
    /// ```
    #[must_use]
    pub fn new(env_url: Option<String>, try_docker: bool, local_url: impl Into<String>) -> Self {
        Self {
            env_url,
            try_docker,
            local_url: local_url.into(),
        }
    }

    /// The chain [`TestDatabase::create`](crate::TestDatabase::create) uses:
    /// `TENANCY_TEST_DATABASE_URL` (ignored when empty), then Docker, then [`LOCAL_URL`].
    #[must_use]
    pub fn from_env() -> Self {
        let env_url = match std::env::var(ENV_URL_VAR) {
            Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
            Ok(_) | Err(std::env::VarError::NotPresent) => None,
            Err(std::env::VarError::NotUnicode(_)) => {
                tracing::warn!("{ENV_URL_VAR} is not valid UTF-8; ignoring it");
                None
            }
        };
        Self {
            env_url,
            try_docker: true,
            local_url: LOCAL_URL.to_owned(),
        }
    }
}

/// A server that answered, with an open admin connection to its maintenance database.
pub(crate) struct Server {
    pub(crate) url: String,
    pub(crate) source: Source,
    pub(crate) conn: DatabaseConnection,
}

pub(crate) async fn resolve(config: &HarnessConfig) -> Result<Server, HarnessError> {
    if let Some(url) = &config.env_url {
        // No fallback: silently testing against another server than the one asked for
        // would hide a broken CI setup.
        return match admin::connect(url).await {
            Ok(conn) => Ok(Server {
                url: url.clone(),
                source: Source::EnvUrl,
                conn,
            }),
            Err(source) => Err(HarnessError::EnvUrlUnreachable {
                url: redact(url),
                source,
            }),
        };
    }
    if config.try_docker
        && let Some(url) = container::server_url().await
    {
        match admin::connect(url).await {
            Ok(conn) => {
                return Ok(Server {
                    url: url.to_owned(),
                    source: Source::Container,
                    conn,
                });
            }
            Err(e) => tracing::warn!(
                "the PostgreSQL container at {} does not answer ({e}); trying the local server",
                redact(url)
            ),
        }
    }
    match admin::connect(&config.local_url).await {
        Ok(conn) => Ok(Server {
            url: config.local_url.clone(),
            source: Source::LocalServer,
            conn,
        }),
        Err(source) => Err(HarnessError::NoServer {
            local_url: redact(&config.local_url),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_display_where_they_point() {
        assert_eq!(Source::EnvUrl.to_string(), "TENANCY_TEST_DATABASE_URL");
        assert_eq!(
            Source::Container.to_string(),
            "a Docker container (postgres:17-alpine)"
        );
        assert_eq!(
            Source::LocalServer.to_string(),
            "the local server at 127.0.0.1:5432"
        );
    }
}
