//! Throwaway Postgres databases for tenancy's tests and examples.
//!
//! [`TestDatabase::create`] gives every test its own fresh, empty database, on the first
//! server of this chain that works:
//!
//! 1. `TENANCY_TEST_DATABASE_URL`, a server URL (e.g.
//!    `postgres://user:pass@host:5432/postgres`); its database is used as the maintenance
//!    database and test databases are created next to it. If it is set but unreachable,
//!    that is an error ([`HarnessError::EnvUrlUnreachable`]): there is no silent fallback.
//! 2. A `postgres:17-alpine` container, when a Docker engine answers. At most one is
//!    started per process and shared by all its tests. A Ryuk container removes it once
//!    the process has exited (set `TESTCONTAINERS_RYUK_DISABLED=true` to opt out; then
//!    remove leftovers with `docker rm -f $(docker ps -aq --filter label=org.tenancy-rs.testing)`).
//! 3. The local server at `postgres://postgres@127.0.0.1:5432/postgres`.
//!
//! If none answers, [`HarnessError::NoServer`] says what to set up. [`HarnessConfig`]
//! makes the chain explicit for callers that must not depend on the environment.
//!
//! Databases are named `tenancy_test_<unix secs>_<pid>_<n>`, so parallel tests and
//! parallel test binaries never collide. The first [`TestDatabase::create`] of a process
//! drops databases of that form older than an hour, left by crashed runs
//! ([`sweep_stale`]); younger ones may belong to a run in progress and are never touched.
//!
//! [`TestDatabase::pooler_connect_options`] reaches the same database through a
//! transaction-mode PgBouncer named by `TENANCY_TEST_PGBOUNCER` (`.ci/run` starts one),
//! for the pooler tests; see [`PGBOUNCER_VAR`].
//!
//! [`TestDatabase::close`] drops the database (`WITH (FORCE)`, so connections still open
//! do not block it; Postgres 13+). If a test panics before closing, `Drop` does the
//! same on a helper thread, best-effort: failures are logged with `tracing`, never raised.
//!
//! ```
//! use sea_orm::{ConnectionTrait, DbBackend, Statement};
//! use tenancy_testing::TestDatabase;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let db = TestDatabase::create().await?;
//!     let conn = db.connect().await?;
//!     conn.execute_unprepared("CREATE TABLE note (id int PRIMARY KEY)").await?;
//!     conn.execute_unprepared("INSERT INTO note VALUES (1), (2)").await?;
//!     let rows = conn
//!         .query_all_raw(Statement::from_string(DbBackend::Postgres, "SELECT id FROM note"))
//!         .await?;
//!     assert_eq!(rows.len(), 2);
//!     conn.close().await?;
//!     db.close().await?;
//!     Ok(())
//! }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

mod admin;
mod container;
mod database;
mod error;
mod fixture;
mod naming;
mod pooler;
mod source;
mod sweep;

pub use database::TestDatabase;
pub use error::HarnessError;
pub use naming::{DATABASE_PREFIX, STALE_AFTER};
pub use pooler::{PGBOUNCER_VAR, pgbouncer_address, pgbouncer_skip_message};
pub use source::{ENV_URL_VAR, HarnessConfig, LOCAL_URL, Source};
pub use sweep::sweep_stale;
