//! Tenant registry, tenant lifecycle and migrations across every tenant
//! schema, driven from your application or your migration binary.
//!
//! You write tenant migrations once, as ordinary sea-orm-migration
//! `MigrationTrait`s collected in a `MigratorTrait`, with unqualified table
//! names. [`TenantFleet`] applies them to every tenant's schema: each tenant in
//! one transaction that pins its search path and holds a per-tenant advisory
//! lock, with its `seaql_migrations` ledger inside its own schema, so a dump or
//! a drop of the schema carries its history. Shared tables get their own
//! migrator, run by [`TenantFleet::migrate_shared`] in the shared schema.
//!
//! # The walk-through: registry, create, migrate all, health
//!
//! ```
//! use sea_orm_migration::prelude::*;
//! use tenancy::TenantId;
//! use tenancy::migrate::{MigrateAll, NewTenant, TenantFleet};
//!
//! struct CreateProjects;
//!
//! impl MigrationName for CreateProjects {
//!     fn name(&self) -> &str {
//!         "m20260101_000001_create_projects"
//!     }
//! }
//!
//! #[async_trait::async_trait]
//! impl MigrationTrait for CreateProjects {
//!     async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
//!         // Unqualified: it lands in whichever tenant schema is being migrated.
//!         manager
//!             .get_connection()
//!             .execute_unprepared("CREATE TABLE projects (id serial PRIMARY KEY, name text NOT NULL)")
//!             .await
//!             .map(drop)
//!     }
//! }
//!
//! struct TenantMigrator;
//!
//! impl MigratorTrait for TenantMigrator {
//!     fn migrations() -> Vec<Box<dyn MigrationTrait>> {
//!         vec![Box::new(CreateProjects)]
//!     }
//! }
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let test_db = tenancy_testing::TestDatabase::create().await?;
//! # let conn = test_db.connect().await?;
//! let fleet = TenantFleet::<TenantMigrator>::new(conn);
//!
//! // The registry (public.tenants), created or upgraded by the library's own
//! // migrations; safe at every start-up, from every replica.
//! fleet.install().await?;
//!
//! // A tenant: registry row, schema and all migrations, in one transaction.
//! fleet.create(&TenantId::new("acme")?, NewTenant::new().display_name("Acme")).await?;
//! fleet.create(&TenantId::new("globex")?, NewTenant::new()).await?;
//!
//! // Every tenant, four at a time by default; a failing tenant is rolled back
//! // and reported, the others go on. `into_result` turns any failure into
//! // an error naming each failed tenant, so a deploy cannot miss it.
//! let report = fleet.migrate_all(MigrateAll::new()).await?.into_result()?;
//! println!("{report}");
//!
//! // Pending migrations of every tenant without a round trip per tenant.
//! assert!(fleet.fleet_status().await?.is_up_to_date());
//!
//! // Missing or orphan schemas, pending or unknown migrations, drift, shadowed tables.
//! let health = fleet.health().await?;
//! assert!(health.is_healthy(), "{health}");
//! # fleet.connection().clone().close().await?;
//! # test_db.close().await?;
//! # Ok(()) }
//! ```
//!
//! # Guarantees
//!
//! - Every lifecycle call ([`create`](TenantFleet::create),
//!   [`adopt`](TenantFleet::adopt), [`drop_tenant`](TenantFleet::drop_tenant),
//!   …) is one transaction: a failure leaves nothing behind.
//! - A tenant's migration run is one transaction holding that tenant's
//!   advisory lock: a failure (or a crash, or a lost connection) leaves the
//!   tenant fully migrated or untouched, two runners started at once apply
//!   each migration exactly once, and the next run resumes.
//! - Runners divide the fleet: going up, a runner passes over a tenant
//!   another runner holds and comes back to it after all the others (see
//!   [`TenantReport::deferred`]), so N runners work on N tenants at once.
//! - All of this holds whatever the database's or role's
//!   `default_transaction_isolation`: every transaction that takes a lock and
//!   then reads what the lock's previous holder committed (migrations,
//!   [`install`](TenantFleet::install),
//!   [`migrate_shared`](TenantFleet::migrate_shared), lifecycle calls,
//!   rollbacks) runs at `READ COMMITTED`.
//! - Tenant migrations never run against a shared schema: the tenant's
//!   schema must exist (checked under the lock) before anything runs.
//! - Migrations that cannot run inside a transaction (`CREATE INDEX
//!   CONCURRENTLY`) are not supported for tenants.
//! - A fleet run ([`migrate_all`](TenantFleet::migrate_all),
//!   [`rollback_all`](TenantFleet::rollback_all)) returns `Ok` with a
//!   [`FleetReport`] even when tenants failed, since one tenant's failure
//!   does not stop the others; [`FleetReport::into_result`] makes any
//!   failure an [`Error::FleetRun`] naming each failed tenant.
//! - Rollback runs each migration's `down()`: a migration without one
//!   (sea-orm-migration's default) cannot be rolled back, and the revert
//!   fails with [`Error::RollbackUnsupported`], changing nothing.
//!
//! - A registry row written by hand that does not validate (an invalid id
//!   or schema name, an unknown or NULL status) is that tenant's problem:
//!   [`list`](TenantFleet::list), [`migrate_all`](TenantFleet::migrate_all),
//!   [`fleet_status`](TenantFleet::fleet_status) and
//!   [`health`](TenantFleet::health) report it as a [`CorruptRecord`] and go
//!   on with the others; a lifecycle call on it fails with
//!   [`Error::CorruptRegistry`] and changes nothing.
//! - Names read from the database are escaped in every `Display` of a report
//!   (a schema called `"x\n0 tenants: healthy"` prints quoted, on its own
//!   line), and server errors are shown without sqlx's ` at line N`.
//! - Fleet operations need a direct connection to PostgreSQL: through a
//!   transaction-mode pooler (PgBouncer) they refuse with
//!   [`Error::BehindPooler`] before doing anything (see the README's
//!   "Behind PgBouncer"). The application's tenant transactions may go
//!   through one (`TenantDb::behind_pooler`).
//!
//! Two tenant ids that map to the same schema (`acme-corp`, `acme_corp`) are
//! refused with [`Error::SchemaTaken`].
//!
//! # Spare schemas: sign-up without running migrations
//!
//! With [`FleetConfig::with_spare_pool`], [`create`](TenantFleet::create)
//! renames a spare schema migrated ahead of time
//! ([`refill_spares`](TenantFleet::refill_spares), a [`SpareRefiller`]) in
//! the transaction that writes the registry row, so sign-up costs a rename
//! whatever the number of migrations; with no spare ready it builds the
//! schema as before. Spares are recorded in a table beside the registry
//! (`{registry}_spares`), never in the registry the request path reads;
//! [`migrate_all`](TenantFleet::migrate_all) keeps them current and
//! [`health`](TenantFleet::health) reports them apart from orphans
//! ([`SpareStatus`]).
//!
//! # One tenant at a time: export, import, clone, move
//!
//! [`TenantFleet::export_tenant`] writes a tenant (schema, data, sequence
//! values, ledger, registry row) to any `AsyncWrite` from one snapshot,
//! reading the catalog for its schema only, so it stays fast among
//! thousands of schemas; [`TenantFleet::import_tenant`] makes it again, here
//! or in another database, under the same or a new id, all or nothing;
//! [`TenantFleet::clone_tenant`] copies one inside a database; and
//! [`TenantFleet::move_tenant`] moves one to another database in resumable
//! steps. A moved tenant's row stays here with its
//! [`placement`](TenantFleet::placement), and fleet-wide calls here leave it
//! out. The format and what is carried: [`transfer`].
//!
//! # Lifecycle events and audit
//!
//! Handlers added with [`TenantFleet::on_lifecycle`] are told each change
//! ([`LifecycleEvent`]) after it committed, never for a failed call. With
//! [`FleetConfig::with_audit`], each change also writes an audit row (who,
//! what, when, outcome) beside the registry in the change's own
//! transaction, and each failed call a `failed` row after its rollback.
//!
//! # Reading across tenants
//!
//! [`TenantFleet::read_across`] runs one select written for one tenant over
//! every tenant (chunked `UNION ALL`, each branch qualified by its tenant's
//! schema, one read-only snapshot) and streams the rows with a `tenant_id`
//! column; tenants not at the migration it needs are skipped and reported.
//!
//! # Citus
//!
//! On a Citus coordinator, tenant schemas are distributed to workers
//! ([`CitusMode`], detected by default): [`create`](TenantFleet::create)
//! and [`adopt`](TenantFleet::adopt) distribute the schema and fail with
//! [`Error::NotDistributed`] rather than leave it on the coordinator;
//! [`distribute_tenant`](TenantFleet::distribute_tenant) converts tenants
//! made before, [`tenant_nodes`](TenantFleet::tenant_nodes) and
//! [`move_to_node`](TenantFleet::move_to_node) show and move them, and
//! [`health`](TenantFleet::health) reports tenants left on the coordinator
//! and shared tables that must be [reference tables](reference_table).
//! Fleet queries never rely on physical columns (`tableoid`, `ctid`), which
//! on Citus describe a worker's shard (see the README's Citus section).
#![cfg_attr(docsrs, feature(doc_cfg))]

mod across;
mod audit;
mod citus;
mod error;
mod events;
mod fleet;
mod health;
mod lifecycle;
mod lifecycle_events;
mod migrate;
mod migrator;
mod pg;
mod pooler;
mod printable;
mod registry;
mod report;
#[cfg(feature = "serde")]
mod serde_support;
mod spares;
mod status;
mod tenant_txn;
pub mod transfer;

#[cfg(feature = "cli")]
#[cfg_attr(docsrs, doc(cfg(feature = "cli")))]
pub mod cli;

pub use across::{CrossTenantRead, CrossTenantRows, ReadAcross, SkipReason, SkippedTenant};
pub use citus::{CitusMode, CitusNode, TenantNode, reference_table};
pub use error::{Error, ErrorKind};
pub use events::{EventHandler, MigrationEvent, Progress};
pub use fleet::{FleetConfig, TenantFleet};
pub use health::HealthReport;
pub use lifecycle::{DropConfirmation, DropMode, DropOutcome, NewTenant};
pub use lifecycle_events::{LifecycleAction, LifecycleEvent, LifecycleHandler};
pub use migrate::MigrateAll;
pub use registry::{CorruptRecord, StatusFilter, TenantList, TenantRecord};
pub use report::{Direction, FleetReport, FleetRunError, Outcome, TenantReport};
pub use spares::{SpareMigrations, SpareRefiller, SpareReport, SpareStatus};
pub use status::{
    FleetStatus, FleetTotals, MigrationStatusReport, SchemaState, TenantMigrationStatus,
};
pub use transfer::{CloneReport, ExportSummary, ImportOptions, ImportSummary, MoveReport};
