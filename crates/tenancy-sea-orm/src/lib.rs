//! Tenant-scoped SeaORM transactions on one shared pool.
//!
//! You keep your SeaORM entities and one `DatabaseConnection` (one pool for
//! every tenant). [`TenantDb`] opens transactions scoped to a tenant; inside
//! one, unqualified table names resolve to the tenant's schema, so
//! `project::Entity::find().all(&txn)` reads `"tenant_acme".project`.
//!
//! ```
//! use sea_orm::entity::prelude::*;
//! use sea_orm::{ActiveValue::Set, ConnectionTrait};
//! use tenancy::{Tenant, TenantId};
//! use tenancy::orm::TenantDb;
//!
//! mod note {
//!     use sea_orm::entity::prelude::*;
//!     #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
//!     #[sea_orm(table_name = "note")]
//!     pub struct Model {
//!         #[sea_orm(primary_key)]
//!         pub id: i32,
//!         pub body: String,
//!     }
//!     #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
//!     pub enum Relation {}
//!     impl ActiveModelBehavior for ActiveModel {}
//! }
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let test_db = tenancy_testing::TestDatabase::create().await?;
//! # let conn = test_db.connect().await?;
//! for schema in ["tenant_acme", "tenant_globex"] {
//!     conn.execute_unprepared(&format!(
//!         "CREATE SCHEMA {schema}; CREATE TABLE {schema}.note (id serial PRIMARY KEY, body text NOT NULL)"
//!     )).await?;
//! }
//! let db = TenantDb::new(conn)?;
//! let acme = Tenant::from_id(TenantId::new("acme")?)?;
//! let globex = Tenant::from_id(TenantId::new("globex")?)?;
//!
//! // The closure form commits on Ok and rolls back on Err, a panic or cancellation.
//! db.transaction::<_, _, DbErr>(&acme, async |txn| {
//!     note::ActiveModel { body: Set("acme's".to_owned()), ..Default::default() }.insert(txn).await?;
//!     Ok(())
//! }).await?;
//!
//! // The explicit form.
//! let txn = db.begin(&globex).await?;
//! assert!(note::Entity::find().all(&txn).await?.is_empty()); // globex sees none of acme's notes
//! txn.commit().await?;
//! # db.connection().clone().close().await?;
//! # test_db.close().await?;
//! # Ok(()) }
//! ```
//!
//! # Why per transaction
//!
//! The search path is pinned with `SET LOCAL`, which PostgreSQL undoes when
//! the transaction ends, whether it commits, rolls back, or the connection
//! drops it. A session-level `SET search_path` survives on a pooled
//! connection and hands the next request another tenant's schema (sqlx resets
//! nothing when a connection returns to the pool); one pool per tenant
//! multiplies connections by tenants. Scoping each transaction does neither:
//! everything the scope set lives and dies inside one transaction, which is
//! also what a transaction-mode pooler needs (see below for its one catch).
//!
//! A transaction opens with one message, `BEGIN; SET LOCAL search_path TO
//! "tenant_acme", "public"` (plus `SET LOCAL ROLE` and `statement_timeout` when
//! [`ScopeOptions`] asks), so scoping costs no extra round trip over a plain
//! SeaORM transaction. `BENCHMARKS.md` has the measured cost.
//!
//! A transaction dropped without commit (an early `?`, a panic, a cancelled
//! future) is rolled back before its connection serves anyone else, and a
//! transaction whose opening failed or was cancelled midway has its
//! connection closed rather than returned to the pool.
//!
//! # Search path and strict mode
//!
//! By default a tenant's search path is its schema, then `public`, so shared
//! tables and extensions installed in `public` resolve unqualified. The cost:
//! a table missing from the tenant's schema (a migration not applied yet)
//! silently resolves to a `public` table of the same name. [`TenantDb::strict`]
//! pins the tenant's schema alone, turning that into an error; shared tables
//! must then be schema-qualified. [`TenantDb::with_shared_schemas`] picks
//! other shared schemas (an `extensions` schema, say).
//!
//! A tenant whose schema does not exist at all is refused with
//! [`Error::SchemaMissing`] instead of falling through to `public`, and one
//! whose schema the transaction's role has no `USAGE` on with
//! [`Error::SchemaAccessDenied`]. Both are checked inside the opening message
//! of every transaction, so a schema dropped by another process is refused by
//! the very next transaction. Where the schema has sea-orm-migration's ledger
//! (`seaql_migrations`), the check is a `LOCK TABLE` on it in `ACCESS SHARE`
//! mode, which costs nothing measurable; elsewhere it is a `SELECT` that
//! fails without returning a row (see [`TenantDb::with_probe_table`]).
//!
//! # Registered tenants
//!
//! [`TenantDb::begin_registered`] and [`TenantDb::transaction_registered`] take
//! a `TenantId`, look it up in the registry table (`public.tenants`, see
//! [`TenantRegistry`]) through a bounded TTL cache, and refuse unknown and
//! suspended tenants with typed errors. Lifecycle changes reach the cache at
//! once in the process that makes them (a `TenantFleet` sharing the
//! registry) and, with [`TenantRegistry::listen`] on a direct connection,
//! in every other process within a moment; see the
//! [registry's documentation](TenantRegistry) for the details and the TTL
//! that remains as the fallback.
//!
//! # Prepared statements across tenants
//!
//! sqlx caches prepared statements per connection by SQL text, and the same
//! SQL serves every tenant. PostgreSQL re-plans a cached statement when the
//! search path changes, but fails with `cached plan must not change result
//! type` (SQLSTATE 0A000) when the statement's result columns differ between
//! the two schemas: two tenants at different migration levels, or a migration
//! that altered a table under a running application. This crate keeps the
//! cache (it is what makes spread-out traffic cheap) and recovers instead: when
//! the first statement of a transaction fails that way, the transaction is
//! rolled back, the connection's statement cache cleared and the transaction
//! begun again, invisibly. When a later statement fails that way, nothing can
//! be replayed: the error reaches you ([`is_stale_plan_error`] recognises it),
//! the connection is closed rather than pooled, and retrying the transaction
//! succeeds.
//!
//! # Connecting, and errors shown to users
//!
//! [`connect`] opens the pool with a short connect timeout
//! ([`DEFAULT_CONNECT_TIMEOUT`], 5 s, unless the options set one) and fails
//! with a one-line [`ConnectError`] naming the server's `host:port` and the
//! cause: connection refused, unknown host, authentication, unknown database
//! or no answer. (`Database::connect` retries a refused connection for 30 s
//! and then only says the pool timed out.) [`display_db_err`] shows a SeaORM
//! error without the ` at line N` sqlx appends to server errors, a line of
//! the server's C source.
//!
//! # Failed statements, commits and retrying
//!
//! A statement that fails on the server aborts its transaction (or
//! savepoint): PostgreSQL then ignores everything but a rollback, and answers
//! `COMMIT` with `ROLLBACK`. SeaORM reports that as a successful commit; this
//! crate does not send the COMMIT at all, rolls back and returns
//! [`Error::CommitRolledBack`] ([`TenantDb::transaction`]) or a `DbErr`
//! carrying it ([`TenantTransaction::commit`], see [`Error::in_db_err`]). To
//! let a statement fail without losing the transaction, run it in a nested
//! transaction (a savepoint) and roll that back.
//!
//! When the callback of [`TenantDb::transaction`] returns an error and the
//! rollback then fails too (a lost connection), the callback's error is
//! returned and the rollback failure logged; the server rolls back a
//! transaction whose connection is gone.
//!
//! [`FailureKind`] ([`is_retryable`], [`Error::kind`]) tells failures worth
//! running the whole transaction again for (a lost connection, a
//! serialization failure, a deadlock, a stale prepared plan) from the rest.
//! Retry from `begin`, never a single statement. A connection lost while
//! `COMMIT` was in flight is ambiguous ([`Error::commit_outcome_unknown`]):
//! the server may have committed, so retry only idempotent work, or check
//! first.
//!
//! # Behind PgBouncer and other poolers
//!
//! A transaction-mode pooler gives a client connection a server connection
//! per transaction. The scope is fine with that (`SET LOCAL`); sqlx's named
//! prepared statements are not: it names them per client connection
//! (`sqlx_s_1`, …) and reuses them in later transactions, which may run on a
//! server connection where the name is missing, taken, or another client's
//! statement. Through PgBouncer 1.18 that meant errors (`prepared statement
//! "sqlx_s_1" already exists`, `bind message supplies 3 parameters, but
//! prepared statement "sqlx_s_4" requires 1`) and, with two statements of the
//! same parameter types, acknowledged `INSERT`s that stored nothing.
//!
//! - **PgBouncer before 1.21**, transaction mode: use
//!   [`TenantDb::behind_pooler`] (pooler mode). Every statement of a scoped
//!   transaction is unnamed, registry lookups run as an unnamed statement in
//!   a short read-only transaction. Tested here against PgBouncer 1.18 with
//!   fewer server connections than client tasks. SeaORM queries on the same
//!   pool outside tenancy's transactions are not safe through it (named
//!   statements); a pooled connection that carries them is refused with
//!   [`Error::NamedStatementsBehindPooler`] and closed.
//! - **PgBouncer 1.21 or newer** with `max_prepared_statements` set: tracks
//!   named statements itself, so the default mode should work; not tested
//!   here.
//! - **RDS Proxy** pins a client to its database connection when it sees
//!   `SET` or prepared statements, which every scoped transaction sends: it
//!   then behaves like a direct connection with little multiplexing. Not
//!   tested here.
//! - `tenancy-migrate`'s fleet operations need a direct URL: through a
//!   transaction-mode pooler they refuse before doing anything.
//!
//! # Tracing
//!
//! Every transaction runs in a `tenant_transaction` span with `tenant` and
//! `schema` fields.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod carried;
mod connect;
mod connection;
mod db;
mod error;
mod listener;
mod options;
mod registry;
mod retry;
mod schema_check;
mod server_error;
mod transaction;

pub use connect::{ConnectCause, ConnectError, DEFAULT_CONNECT_TIMEOUT, connect};
pub use connection::is_stale_plan_error;
pub use db::TenantDb;
pub use error::{Error, ScopeLabel};
pub use listener::{LISTENER_APPLICATION_NAME, ListenerStatus, RegistryListener};
pub use options::ScopeOptions;
pub use registry::{RegistryConfig, TenantRegistry, read_record};
pub use retry::{FailureKind, is_retryable};
pub use server_error::{display_db_err, pg_error, sqlstate};
pub use tenancy_core::registry::{CorruptRecord, TenantRecord};
pub use transaction::{TenantTransaction, TransactionCallback};
