//! Running migrations: one tenant, the whole fleet, and the shared schema.
//!
//! Every tenant is migrated in ONE transaction opened by
//! [`begin_for_migration`](crate::tenant_txn::begin_for_migration): the search path pinned to the tenant's schema, the
//! tenant's advisory lock held, each migration a savepoint of it. So a failure
//! rolls the tenant back whole, a crash (the connection dies) leaves it
//! untouched, and two runners at once apply each migration exactly once: the
//! second waits for the lock, then finds nothing pending.
//!
//! A tenant whose migrator has migrations that run outside a transaction
//! (`use_transaction()` is `Some(false)`) is migrated by [`mixed`] instead, on
//! a dedicated session ([`session`]) holding the same lock for the whole run.

mod fleet_run;
pub(crate) mod mixed;
mod runner_slot;
mod session;
mod tenant;

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use sea_orm_migration::MigratorTrait;
use tenancy_core::{AdvisoryLock, SearchPath, TenantId};

use crate::events::{EventHandler, MigrationEvent};
use crate::migrator::migration_names;
use crate::pg::begin_read_committed;
use crate::report::{Direction, FleetReport, TenantReport};
use crate::tenant_txn::{LockWait, apply_pending, create_ledger};
use crate::{Error, TenantFleet};

use fleet_run::run_fleet;
use tenant::{finish, run_tenant};
pub(crate) use tenant::{open_error, registered_tenant};

/// Options of a fleet run ([`TenantFleet::migrate_all`],
/// [`TenantFleet::rollback_all`]).
///
/// Which tenants: every tenant that is not soft-deleted by default, the ones
/// [`TenantFleet::fleet_status`] and [`TenantFleet::health`] count. Tenants
/// `suspended` or still `provisioning` are migrated so that they work the
/// moment they are resumed, with no migration step in the resume path;
/// [`only_active`](Self::only_active) restricts a run to active tenants.
/// Soft-`deleted` tenants (kept, never served again) are never part of a
/// fleet run; migrate one explicitly with [`TenantFleet::migrate_tenant`].
///
/// ```
/// use tenancy::migrate::{MigrateAll, MigrationEvent};
///
/// let options = MigrateAll::new()
///     .concurrency(8)
///     .stop_on_first_failure(true)
///     .on_event(|event| {
///         if let MigrationEvent::Failed { tenant, error, .. } = event {
///             eprintln!("{tenant}: {error}");
///         }
///     });
/// # let _ = options;
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct MigrateAll {
    only_active: bool,
    concurrency: Option<usize>,
    stop_on_first_failure: bool,
    on_event: Option<EventHandler>,
}

impl MigrateAll {
    /// The defaults: active, suspended and provisioning tenants, the fleet's
    /// [`concurrency`](crate::FleetConfig::concurrency), go on after a
    /// failure, no event handler.
    ///
    /// ```
    /// let options = tenancy::migrate::MigrateAll::new();
    /// # let _ = options;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Only `active` tenants (default `false`: `suspended` and `provisioning`
    /// ones too).
    ///
    /// ```
    /// let options = tenancy::migrate::MigrateAll::new().only_active(true); // skip suspended tenants
    /// # let _ = options;
    /// ```
    pub fn only_active(mut self, only_active: bool) -> Self {
        self.only_active = only_active;
        self
    }

    /// How many tenants to work on at once (at least 1; default the fleet's
    /// [`concurrency`](crate::FleetConfig::concurrency)). Each one holds a
    /// pooled connection for its whole transaction.
    ///
    /// ```
    /// let options = tenancy::migrate::MigrateAll::new().concurrency(16);
    /// # let _ = options;
    /// ```
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = Some(concurrency.max(1));
        self
    }

    /// Whether to start no further tenant once one has failed (default
    /// `false`: every tenant is attempted). Tenants already running finish;
    /// the ones never started are reported [`Skipped`](crate::Outcome::Skipped).
    ///
    /// ```
    /// let options = tenancy::migrate::MigrateAll::new().stop_on_first_failure(true);
    /// # let _ = options;
    /// ```
    pub fn stop_on_first_failure(mut self, stop: bool) -> Self {
        self.stop_on_first_failure = stop;
        self
    }

    /// Calls `handler` with every [`MigrationEvent`] of the run.
    ///
    /// ```
    /// let options = tenancy::migrate::MigrateAll::new().on_event(|event| {
    ///     if event.is_terminal() {
    ///         println!("{} done ({})", event.tenant(), event.progress());
    ///     }
    /// });
    /// # let _ = options;
    /// ```
    pub fn on_event(
        mut self,
        handler: impl Fn(&MigrationEvent<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.on_event = Some(Arc::new(handler));
        self
    }

    /// Calls an already shared handler with every [`MigrationEvent`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tenancy::migrate::{EventHandler, MigrateAll, MigrationEvent};
    ///
    /// let handler: EventHandler = Arc::new(|event: &MigrationEvent<'_>| println!("{}", event.tenant()));
    /// let up = MigrateAll::new().on_event_handler(Arc::clone(&handler));
    /// let down = MigrateAll::new().on_event_handler(handler);
    /// # let _ = (up, down);
    /// ```
    pub fn on_event_handler(mut self, handler: EventHandler) -> Self {
        self.on_event = Some(handler);
        self
    }
}

impl fmt::Debug for MigrateAll {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MigrateAll")
            .field("only_active", &self.only_active)
            .field("concurrency", &self.concurrency)
            .field("stop_on_first_failure", &self.stop_on_first_failure)
            .field(
                "on_event",
                &self.on_event.as_ref().map(|_| "Fn(&MigrationEvent)"),
            )
            .finish()
    }
}

impl<M: MigratorTrait> TenantFleet<M> {
    /// Applies `M`'s pending migrations to one tenant's schema, in one
    /// transaction holding the tenant's advisory lock. Works in any status.
    ///
    /// ```
    /// use tenancy::migrate::{NewTenant, TenantFleet};
    /// # use sea_orm_migration::{MigrationTrait, MigratorTrait};
    /// # struct TenantMigrator;
    /// # impl MigratorTrait for TenantMigrator {
    /// #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
    /// # }
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let test_db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = test_db.connect().await?;
    /// # let fleet = TenantFleet::<TenantMigrator>::new(conn.clone());
    /// # fleet.install().await?;
    /// # fleet.create(&"acme".parse()?, NewTenant::new()).await?;
    /// let report = fleet.migrate_tenant(&"acme".parse()?).await?;
    /// assert!(report.is_success());
    /// assert!(report.applied.is_empty()); // `create` applied everything already
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Migrations outside a transaction
    ///
    /// A migration whose `use_transaction()` returns `Some(false)` (for
    /// `CREATE INDEX CONCURRENTLY`) runs outside a transaction. The tenant is
    /// then migrated on a connection of its own, outside the fleet's pool and
    /// closed afterwards, whose search path is the tenant's from the moment
    /// it connects (a connection parameter: nothing is `SET` on a pooled
    /// connection), holding the tenant's advisory lock as a session lock
    /// until the end. The connection is never replaced: if it is lost, so is
    /// the lock, and the run fails. Pending migrations run in order, each
    /// stretch of transactional ones as one transaction and each other one on
    /// its own, recorded only once it succeeded and left no `INVALID` index
    /// in the schema. A failure keeps what was committed before it
    /// ([`Error::OutsideTransactionFailed`] and [`Error::PartlyMigrated`]
    /// list it); the failed migration runs again
    /// next time, so it must be re-runnable: after a crash mid-build, an
    /// `INVALID` index is left that it has to drop first.
    ///
    /// ```
    /// use sea_orm_migration::prelude::*;
    /// use tenancy::migrate::{NewTenant, TenantFleet};
    ///
    /// struct CreateNotes;
    /// impl MigrationName for CreateNotes {
    ///     fn name(&self) -> &str {
    ///         "m0001_create_notes"
    ///     }
    /// }
    /// #[async_trait::async_trait]
    /// impl MigrationTrait for CreateNotes {
    ///     async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
    ///         manager.get_connection().execute_unprepared("CREATE TABLE notes (body text)").await.map(drop)
    ///     }
    /// }
    ///
    /// struct IndexNotes;
    /// impl MigrationName for IndexNotes {
    ///     fn name(&self) -> &str {
    ///         "m0002_index_notes"
    ///     }
    /// }
    /// #[async_trait::async_trait]
    /// impl MigrationTrait for IndexNotes {
    ///     async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
    ///         let db = manager.get_connection();
    ///         // Re-runnable: drops the INVALID index an interrupted build leaves.
    ///         // One statement per call: several in one string form a transaction.
    ///         db.execute_unprepared("DROP INDEX CONCURRENTLY IF EXISTS notes_body_idx").await?;
    ///         db.execute_unprepared("CREATE INDEX CONCURRENTLY notes_body_idx ON notes (body)").await?;
    ///         Ok(())
    ///     }
    ///
    ///     fn use_transaction(&self) -> Option<bool> {
    ///         Some(false)
    ///     }
    /// }
    ///
    /// struct TenantMigrator;
    /// impl MigratorTrait for TenantMigrator {
    ///     fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    ///         vec![Box::new(CreateNotes), Box::new(IndexNotes)]
    ///     }
    /// }
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let test_db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = test_db.connect().await?;
    /// let fleet = TenantFleet::<TenantMigrator>::new(conn.clone());
    /// fleet.install().await?;
    /// let acme = "acme".parse()?;
    /// fleet.create(&acme, NewTenant::new()).await?; // both migrations, the index outside a transaction
    /// let report = fleet.migrate_tenant(&acme).await?;
    /// assert!(report.applied.is_empty());
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::UnknownTenant`]; [`Error::SchemaMissing`];
    /// [`Error::SchemaShared`]; [`Error::Migration`] when a migration (or
    /// the commit) fails, after which the tenant is exactly as before;
    /// [`Error::OutsideTransactionFailed`] when a migration that runs outside
    /// a transaction fails (it is not recorded); [`Error::PartlyMigrated`]
    /// when a transactional one fails after a commit of this run;
    /// [`Error::Tenant`] or [`Error::Database`] for other database errors;
    /// [`Error::DuplicateMigrationName`] when two of `M`'s migrations share a name (nothing runs).
    pub async fn migrate_tenant(&self, id: &TenantId) -> Result<TenantReport, Error> {
        self.ensure_direct().await?;
        let record = registered_tenant(self, id).await?;
        let started = Instant::now();
        // Waiting never comes back empty-handed.
        let applied = run_tenant(self, &record, Direction::Up, 0, LockWait::Wait)
            .await?
            .unwrap_or_default();
        Ok(TenantReport::succeeded(
            record.id,
            record.schema,
            Direction::Up,
            applied,
            started.elapsed(),
        ))
    }

    /// Migrates every tenant of the fleet (see [`MigrateAll`] for which
    /// ones), `options.concurrency` at a time, each as
    /// [`migrate_tenant`](Self::migrate_tenant) does.
    ///
    /// A tenant's failure is logged with `tracing::error!` (fields `tenant`,
    /// `schema`, `error`), reported as a [`MigrationEvent::Failed`], and
    /// recorded in the returned report; it does not fail the call. A
    /// migration that panics is caught and recorded as
    /// [`Error::Panicked`] for its tenant.
    ///
    /// ```
    /// use tenancy::migrate::{MigrateAll, NewTenant, TenantFleet};
    /// # use sea_orm_migration::{MigrationTrait, MigratorTrait};
    /// # struct TenantMigrator;
    /// # impl MigratorTrait for TenantMigrator {
    /// #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
    /// # }
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let test_db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = test_db.connect().await?;
    /// # let fleet = TenantFleet::<TenantMigrator>::new(conn.clone());
    /// # fleet.install().await?;
    /// # fleet.create(&"acme".parse()?, NewTenant::new()).await?;
    /// # fleet.create(&"globex".parse()?, NewTenant::new()).await?;
    /// let report = fleet.migrate_all(MigrateAll::new().concurrency(2)).await?;
    /// assert!(report.is_success(), "{report}");
    /// assert_eq!(report.succeeded().count(), 2);
    /// assert_eq!(report.failed().count() + report.skipped().count(), 0);
    /// assert_eq!(report.applied_total(), 0); // `create` migrated them already
    /// assert!(report.tenant(&"acme".parse()?).is_some_and(|t| t.is_success()));
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Only when the registry cannot be read ([`Error::Database`],
    /// [`Error::CorruptRegistry`]) or two of `M`'s migrations share a name
    /// ([`Error::DuplicateMigrationName`]); nothing has been migrated then.
    /// Failed tenants are in the report, not an `Err`: call
    /// [`FleetReport::into_result`] to make them one.
    pub async fn migrate_all(&self, options: MigrateAll) -> Result<FleetReport, Error> {
        self.ensure_direct().await?;
        run_fleet(self, Direction::Up, 0, &options).await
    }

    /// Reverts the last `steps` applied migrations of one tenant (their
    /// `down`), newest first, in one transaction holding the tenant's lock.
    /// The report's `applied` lists the reverted migrations. This includes
    /// the `down` of migrations whose `up` runs outside a transaction: write
    /// it so that it can run in one (`DROP INDEX`, not `DROP INDEX
    /// CONCURRENTLY`).
    ///
    /// ```
    /// use sea_orm_migration::prelude::*;
    /// use tenancy::migrate::{NewTenant, TenantFleet};
    ///
    /// struct CreateNotes;
    ///
    /// impl MigrationName for CreateNotes {
    ///     fn name(&self) -> &str {
    ///         "m0001_create_notes"
    ///     }
    /// }
    ///
    /// #[async_trait::async_trait]
    /// impl MigrationTrait for CreateNotes {
    ///     async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
    ///         manager.get_connection().execute_unprepared("CREATE TABLE notes (body text)").await.map(drop)
    ///     }
    ///
    ///     async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
    ///         manager.get_connection().execute_unprepared("DROP TABLE notes").await.map(drop)
    ///     }
    /// }
    ///
    /// struct TenantMigrator;
    ///
    /// impl MigratorTrait for TenantMigrator {
    ///     fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    ///         vec![Box::new(CreateNotes)]
    ///     }
    /// }
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let test_db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = test_db.connect().await?;
    /// let fleet = TenantFleet::<TenantMigrator>::new(conn.clone());
    /// fleet.install().await?;
    /// let acme = "acme".parse()?;
    /// fleet.create(&acme, NewTenant::new()).await?;
    ///
    /// let report = fleet.rollback_tenant(&acme, 1).await?;
    /// assert_eq!(report.applied, ["m0001_create_notes"]); // reverted
    /// let report = fleet.migrate_tenant(&acme).await?;
    /// assert_eq!(report.applied, ["m0001_create_notes"]); // applied again
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`migrate_tenant`](Self::migrate_tenant), with [`Error::RevertFailed`]
    /// instead of [`Error::Migration`], and [`Error::RollbackUnsupported`]
    /// when a migration to revert has no `down()`: rollback needs one on
    /// every migration it reverts. The tenant is unchanged then.
    pub async fn rollback_tenant(&self, id: &TenantId, steps: u32) -> Result<TenantReport, Error> {
        self.ensure_direct().await?;
        let record = registered_tenant(self, id).await?;
        let started = Instant::now();
        let reverted = run_tenant(self, &record, Direction::Down, steps, LockWait::Wait)
            .await?
            .unwrap_or_default();
        Ok(TenantReport::succeeded(
            record.id,
            record.schema,
            Direction::Down,
            reverted,
            started.elapsed(),
        ))
    }

    /// Reverts the last `steps` applied migrations of every tenant of the
    /// fleet, as [`migrate_all`](Self::migrate_all) runs them.
    ///
    /// ```
    /// # async fn demo<M: sea_orm_migration::MigratorTrait>(fleet: tenancy::migrate::TenantFleet<M>) -> Result<(), tenancy::migrate::Error> {
    /// use tenancy::migrate::MigrateAll;
    ///
    /// // Err(FleetRunError) naming every tenant that could not be rolled back.
    /// let report = fleet
    ///     .rollback_all(1, MigrateAll::new().stop_on_first_failure(true))
    ///     .await?
    ///     .into_result()?;
    /// println!("{report}");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Only when the registry cannot be read, or [`Error::DuplicateMigrationName`].
    pub async fn rollback_all(
        &self,
        steps: u32,
        options: MigrateAll,
    ) -> Result<FleetReport, Error> {
        self.ensure_direct().await?;
        run_fleet(self, Direction::Down, steps, &options).await
    }

    /// Applies the pending migrations of `S`, a migrator for the shared
    /// tables (plans, billing, anything not per tenant), to the registry's
    /// schema (`public` by default), and returns their names.
    ///
    /// One transaction with the search path pinned to that schema alone, so
    /// `S`'s tables and its own `seaql_migrations` land there and nowhere
    /// else, and an advisory lock, so replicas starting at once apply each
    /// migration once. Tenant migrators never run here: they only run inside
    /// a tenant's transaction, whose schema can never be `public` or a
    /// shared schema.
    ///
    /// ```
    /// use tenancy::migrate::TenantFleet;
    /// # use sea_orm_migration::{MigrationTrait, MigratorTrait};
    /// # struct SharedMigrator;
    /// # impl MigratorTrait for SharedMigrator {
    /// #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
    /// # }
    /// # struct TenantMigrator;
    /// # impl MigratorTrait for TenantMigrator {
    /// #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
    /// # }
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let test_db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = test_db.connect().await?;
    /// # let fleet = TenantFleet::<TenantMigrator>::new(conn.clone());
    /// let applied = fleet.migrate_shared::<SharedMigrator>().await?; // into `public`
    /// assert!(applied.is_empty()); // this migrator has no migrations
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::SharedMigration`]; the shared schema is unchanged then.
    /// [`Error::DuplicateMigrationName`] when two of `S`'s migrations share a name.
    pub async fn migrate_shared<S: MigratorTrait>(&self) -> Result<Vec<String>, Error> {
        migration_names::<S>()?;
        self.ensure_direct().await?;
        let schema = self.config.registry().schema();
        let fail = |migration, source| Error::SharedMigration {
            schema: schema.clone(),
            migration,
            source,
        };
        let txn = begin_read_committed(
            &self.conn,
            Some(&format!(
                "{}; SELECT pg_advisory_xact_lock({}); {}",
                SearchPath::set_local_shared_statement(schema),
                AdvisoryLock::SharedMigration.shared_key(schema),
                create_ledger::<S>().map_err(|e| fail(None, e))?,
            )),
        )
        .await
        .map_err(|e| fail(None, e))?;
        let result = apply_pending::<S>(&txn).await;
        finish::<S>(txn, result, Direction::Up)
            .await
            .map_err(|(migration, source)| fail(migration, source))
    }
}
