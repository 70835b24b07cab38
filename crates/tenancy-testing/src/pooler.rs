//! Reaching a throwaway database through a transaction-mode PgBouncer.
//!
//! The pooler tests need a PgBouncer in front of the test server; `.ci/run` starts one
//! (`.ci/pgbouncer.sh`) and names it in `TENANCY_TEST_PGBOUNCER=host:port`. The harness
//! does not start PgBouncer itself: a process started from a test binary would outlive
//! it (tests have no process-exit hook), and a stray pooler on a shared machine is worse
//! than a skipped test. Without the variable, [`TestDatabase::pooler_connect_options`]
//! returns `None` and the pooler tests print why they were skipped.
//!
//! The PgBouncer must forward every database (a wildcard entry,
//! `* = host=... port=...`) to the server the throwaway databases live on, and let the
//! harness's user in (`auth_type = trust` on CI).

use std::time::Duration;

use sea_orm::ConnectOptions;
use url::Url;

use crate::TestDatabase;
use crate::error::HarnessError;

/// Environment variable naming the PgBouncer (`host:port`) in front of the test server.
pub const PGBOUNCER_VAR: &str = "TENANCY_TEST_PGBOUNCER";

/// The PgBouncer named by [`PGBOUNCER_VAR`], as `(host, port)`; `None` when it is unset
/// or empty.
///
/// # Errors
///
/// [`HarnessError::InvalidPooler`] when the variable is set but is not `host:port`.
pub fn pgbouncer_address() -> Result<Option<(String, u16)>, HarnessError> {
    let value = match std::env::var(PGBOUNCER_VAR) {
        Ok(value) if !value.trim().is_empty() => value.trim().to_owned(),
        Ok(_) | Err(std::env::VarError::NotPresent) => return Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(HarnessError::InvalidPooler {
                value: "<not UTF-8>".to_owned(),
            });
        }
    };
    parse_address(&value)
        .map(Some)
        .ok_or(HarnessError::InvalidPooler { value })
}

fn parse_address(value: &str) -> Option<(String, u16)> {
    let (host, port) = value.rsplit_once(':')?;
    let port = port.parse().ok()?;
    (!host.is_empty()).then(|| (host.to_owned(), port))
}

/// The message a pooler test prints when it is skipped.
#[must_use]
pub fn pgbouncer_skip_message(test: &str) -> String {
    format!(
        "SKIPPED {test}: no PgBouncer to test through; set {PGBOUNCER_VAR}=host:port \
         (`eval \"$(bash .ci/pgbouncer.sh start)\"` starts one; `bash .ci/run` does)"
    )
}

impl TestDatabase {
    /// The URL of this database through the PgBouncer of [`PGBOUNCER_VAR`] (same user,
    /// password and database; the pooler's host and port), or `None` when it is unset.
    ///
    /// # Errors
    ///
    /// [`HarnessError::InvalidPooler`] when the variable is malformed,
    /// [`HarnessError::InvalidUrl`] when this database's URL cannot take its address.
    pub fn pooler_url(&self) -> Result<Option<String>, HarnessError> {
        let Some((host, port)) = pgbouncer_address()? else {
            return Ok(None);
        };
        let invalid = |source| HarnessError::InvalidUrl {
            url: crate::naming::redact(self.url()),
            source,
        };
        let mut url = Url::parse(self.url()).map_err(invalid)?;
        url.set_host(Some(&host)).map_err(invalid)?;
        url.set_port(Some(port))
            .map_err(|()| HarnessError::InvalidPooler {
                value: format!("{host}:{port}"),
            })?;
        Ok(Some(url.into()))
    }

    /// Connection options for this database through the PgBouncer of [`PGBOUNCER_VAR`],
    /// like [`connect_options`](Self::connect_options), or `None` when it is unset.
    ///
    /// A pool through the pooler is not a pool of server connections: its connections
    /// are PgBouncer clients, and only what runs inside one transaction is guaranteed
    /// one server connection.
    ///
    /// # Errors
    ///
    /// As [`pooler_url`](Self::pooler_url).
    pub fn pooler_connect_options(&self) -> Result<Option<ConnectOptions>, HarnessError> {
        Ok(self.pooler_url()?.map(|url| {
            let mut opts = ConnectOptions::new(url);
            opts.max_connections(8)
                .min_connections(0)
                .connect_timeout(Duration::from_secs(5))
                .acquire_timeout(Duration::from_secs(30))
                .sqlx_logging(false);
            opts
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_address;

    #[test]
    fn addresses_are_host_and_port() {
        assert_eq!(
            parse_address("127.0.0.1:6432"),
            Some(("127.0.0.1".to_owned(), 6432))
        );
        assert_eq!(parse_address("127.0.0.1"), None);
        assert_eq!(parse_address(":6432"), None);
        assert_eq!(parse_address("host:port"), None);
    }
}
