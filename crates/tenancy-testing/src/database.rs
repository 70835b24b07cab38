//! The throwaway database handle.

use std::fmt;
use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

use crate::error::HarnessError;
use crate::naming::{new_database_name, redact, url_with_database};
use crate::source::{HarnessConfig, Source, resolve};
use crate::{admin, sweep};

/// A fresh, empty database that is dropped again by [`close`](Self::close) or, failing
/// that, when the handle is dropped.
pub struct TestDatabase {
    name: String,
    url: String,
    server_url: String,
    source: Source,
    /// Set once the database has been (or is being) dropped, so `Drop` does not repeat it.
    dropped: bool,
}

impl TestDatabase {
    /// Creates a fresh database on the first server that answers, following
    /// [`HarnessConfig::from_env`] (see the [crate docs](crate)).
    ///
    /// # Errors
    ///
    /// [`HarnessError::EnvUrlUnreachable`] if `TENANCY_TEST_DATABASE_URL` is set but its
    /// server does not answer, [`HarnessError::NoServer`] if no server answers at all,
    /// [`HarnessError::CreateDatabase`] if `CREATE DATABASE` fails.
    pub async fn create() -> Result<Self, HarnessError> {
        Self::create_with(HarnessConfig::from_env()).await
    }

    /// Like [`create`](Self::create), with an explicit fallback chain instead of the
    /// environment.
    ///
    /// # Errors
    ///
    /// As for [`create`](Self::create), plus [`HarnessError::InvalidUrl`] if the chosen
    /// server URL cannot carry a database name.
    pub async fn create_with(config: HarnessConfig) -> Result<Self, HarnessError> {
        Self::create_in(config, "").await
    }

    /// Like [`create`](Self::create), with the database's default collation
    /// from the ICU locale `locale` (for example `en-US`), for tests whose
    /// outcome depends on how the server sorts text: `ORDER BY` then differs
    /// from byte order (`a_c < a-b < aa`).
    ///
    /// ```
    /// use sea_orm::{ConnectionTrait, DbBackend, Statement};
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let db = tenancy_testing::TestDatabase::create_with_icu_locale("en-US").await?;
    /// let conn = db.connect().await?;
    /// let row = conn
    ///     .query_one_raw(Statement::from_string(
    ///         DbBackend::Postgres,
    ///         "SELECT 'a_c' < 'a-b' AS icu",
    ///     ))
    ///     .await?
    ///     .ok_or("no row")?;
    /// assert!(row.try_get::<bool>("", "icu")?);
    /// conn.close().await?;
    /// db.close().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As for [`create`](Self::create); [`HarnessError::CreateDatabase`] also
    /// when the server lacks ICU support or does not know the locale.
    pub async fn create_with_icu_locale(locale: &str) -> Result<Self, HarnessError> {
        let options = format!(
            " TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE '{}'",
            locale.replace('\'', "''")
        );
        Self::create_in(HarnessConfig::from_env(), &options).await
    }

    /// Creates the database with `options` appended to `CREATE DATABASE`.
    async fn create_in(config: HarnessConfig, options: &str) -> Result<Self, HarnessError> {
        let server = resolve(&config).await?;
        sweep::sweep_once(&server.conn, &server.url).await;
        let name = new_database_name();
        let created = match url_with_database(&server.url, &name) {
            Ok(url) => admin::create_database(&server.conn, &name, options)
                .await
                .map(|()| url)
                .map_err(|source| HarnessError::CreateDatabase {
                    name: name.clone(),
                    source,
                }),
            Err(source) => Err(HarnessError::InvalidUrl {
                url: redact(&server.url),
                source,
            }),
        };
        admin::close_quietly(server.conn).await;
        let url = created?;
        tracing::debug!("created test database {name} on {}", server.source);
        Ok(Self {
            name,
            url,
            server_url: server.url,
            source: server.source,
            dropped: false,
        })
    }

    /// The URL of the fresh database.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database name (`tenancy_test_<unix secs>_<pid>_<n>`).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL of the maintenance database on the same server, for statements that must
    /// not run inside the test database (`CREATE DATABASE`, catalog checks, ...).
    #[must_use]
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// Which server of the fallback chain this database lives on.
    #[must_use]
    pub fn source(&self) -> Source {
        self.source
    }

    /// Connection options for the fresh database: a small pool (at most 8 connections),
    /// short timeouts so a wedged test fails instead of hanging, no statement logging.
    #[must_use]
    pub fn connect_options(&self) -> ConnectOptions {
        let mut opts = ConnectOptions::new(self.url.clone());
        opts.max_connections(8)
            .min_connections(0)
            .connect_timeout(Duration::from_secs(5))
            .acquire_timeout(Duration::from_secs(10))
            .sqlx_logging(false);
        opts
    }

    /// Opens a pool on the fresh database with [`connect_options`](Self::connect_options).
    ///
    /// # Errors
    ///
    /// The connection error, if the server does not accept the connection.
    pub async fn connect(&self) -> Result<DatabaseConnection, DbErr> {
        Database::connect(self.connect_options()).await
    }

    /// Drops the database, terminating any connection still open on it.
    ///
    /// # Errors
    ///
    /// [`HarnessError::DropDatabase`] if the server cannot be reached or refuses; the
    /// database is then left for the sweep of a later run.
    pub async fn close(mut self) -> Result<(), HarnessError> {
        // Whatever happens now, Drop must not try again.
        self.dropped = true;
        admin::drop_database_on(&self.server_url, &self.name)
            .await
            .map_err(|source| HarnessError::DropDatabase {
                name: self.name.clone(),
                source,
            })?;
        tracing::debug!("dropped test database {}", self.name);
        Ok(())
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        self.dropped = true;
        let server_url = self.server_url.clone();
        let name = self.name.clone();
        // We may be inside a runtime, where blocking on another future panics, and that
        // runtime may be shutting down (a panicking test): use a thread with its own.
        let worker = std::thread::Builder::new()
            .name("tenancy-testing-drop".to_owned())
            .spawn(move || -> Result<(), String> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot build a runtime: {e}"))?;
                runtime
                    .block_on(admin::drop_database_on(&server_url, &name))
                    .map_err(|e| e.to_string())
            });
        let outcome = match worker {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|_| Err("the drop thread panicked".to_owned())),
            Err(e) => Err(format!("cannot spawn the drop thread: {e}")),
        };
        match outcome {
            Ok(()) => tracing::debug!("dropped test database {} on drop", self.name),
            Err(e) => tracing::warn!(
                "test database {} was not closed and dropping it failed ({e}); \
                 a later run will sweep it",
                self.name
            ),
        }
    }
}

impl fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestDatabase")
            .field("name", &self.name)
            .field("url", &redact(&self.url))
            .field("server_url", &redact(&self.server_url))
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}
