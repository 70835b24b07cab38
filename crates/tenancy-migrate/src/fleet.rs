//! The handle every operation hangs off.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use sea_orm::DatabaseConnection;
use sea_orm_migration::MigratorTrait;
use tenancy_core::{SchemaNaming, SharedSchema};
use tenancy_sea_orm::{RegistryConfig, TenantRegistry};

use crate::Error;
use crate::citus::{CitusCheck, CitusMode};
use crate::lifecycle_events::{LifecycleEvent, LifecycleHandler};
use crate::pooler::DirectCheck;

/// Where the registry lives, how tenant ids map to schemas, what follows a
/// tenant's schema on the search path, and how many tenants migrate at once.
///
/// ```
/// use tenancy::migrate::FleetConfig;
/// let config = FleetConfig::default().with_concurrency(8);
/// assert_eq!(config.concurrency(), 8);
/// ```
#[derive(Debug, Clone)]
pub struct FleetConfig {
    registry: RegistryConfig,
    naming: SchemaNaming,
    shared: Vec<SharedSchema>,
    concurrency: usize,
    spare_pool: bool,
    audit: bool,
    actor: Option<String>,
    citus: CitusMode,
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            registry: RegistryConfig::default(),
            naming: SchemaNaming::default(),
            shared: vec![SharedSchema::public()],
            concurrency: Self::DEFAULT_CONCURRENCY,
            spare_pool: false,
            audit: false,
            actor: None,
            citus: CitusMode::Detect,
        }
    }
}

impl FleetConfig {
    /// Tenants migrated at once by default: enough to overlap round trips,
    /// few enough not to crowd a small database server's cores and locks.
    pub const DEFAULT_CONCURRENCY: usize = 4;

    /// The registry table (and its read cache) to use. To share an
    /// application's registry cache, so lifecycle calls invalidate it, use
    /// [`TenantFleet::with_registry`] instead: it takes the table from there.
    ///
    /// ```
    /// use tenancy::migrate::FleetConfig;
    /// use tenancy::orm::RegistryConfig;
    /// let config = FleetConfig::default().with_registry(RegistryConfig::default());
    /// # let _ = config;
    /// ```
    #[must_use]
    pub fn with_registry(mut self, registry: RegistryConfig) -> Self {
        self.registry = registry;
        self
    }

    /// How tenant ids map to schema names (default prefix `tenant_`).
    ///
    /// ```
    /// use tenancy::SchemaNaming;
    /// let config = tenancy::migrate::FleetConfig::default().with_naming(SchemaNaming::with_prefix("t_")?);
    /// assert_eq!(config.naming().prefix(), "t_");
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn with_naming(mut self, naming: SchemaNaming) -> Self {
        self.naming = naming;
        self
    }

    /// The schemas after the tenant's on the search path while migrating
    /// (default `public`, where extensions usually live).
    ///
    /// ```
    /// use tenancy::SharedSchema;
    /// let config = tenancy::migrate::FleetConfig::default()
    ///     .with_shared_schemas([SharedSchema::public(), SharedSchema::new("extensions")?]);
    /// assert_eq!(config.shared_schemas().len(), 2);
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn with_shared_schemas(mut self, shared: impl IntoIterator<Item = SharedSchema>) -> Self {
        self.shared = shared.into_iter().collect();
        self
    }

    /// How many tenants migrate at once (at least 1).
    ///
    /// ```
    /// assert_eq!(tenancy::migrate::FleetConfig::default().with_concurrency(0).concurrency(), 1);
    /// ```
    #[must_use]
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// Whether [`TenantFleet::create`] claims a spare schema, already
    /// migrated, when one is ready (default `false`). Spares are made by
    /// [`TenantFleet::refill_spares`] or a
    /// [`SpareRefiller`](crate::SpareRefiller); with none ready, `create`
    /// builds the schema as usual (see the crate docs on spare schemas).
    ///
    /// ```
    /// let config = tenancy::migrate::FleetConfig::default().with_spare_pool(true);
    /// assert!(config.spare_pool());
    /// ```
    #[must_use]
    pub fn with_spare_pool(mut self, enabled: bool) -> Self {
        self.spare_pool = enabled;
        self
    }

    /// Whether `create` claims spare schemas.
    ///
    /// ```
    /// assert!(!tenancy::migrate::FleetConfig::default().spare_pool());
    /// ```
    #[must_use]
    pub fn spare_pool(&self) -> bool {
        self.spare_pool
    }

    /// Records every lifecycle change (create, adopt, suspend, resume,
    /// rename, domain change, drop, each tenant's migrations) in the audit
    /// table beside the registry (`public.tenants_audit` by default, created
    /// by [`TenantFleet::install`]), in the same transaction as the change,
    /// and every failed attempt after its rollback. Off by default.
    ///
    /// Rows: `id`, `at` (the server's transaction time), `actor` (see
    /// [`with_actor`](Self::with_actor)), `action`
    /// ([`LifecycleAction::as_str`](crate::LifecycleAction::as_str)),
    /// `tenant_id`, `detail` (jsonb: schema, before/after values, migrations
    /// applied, or the error), `outcome` (`succeeded` or `failed`). A
    /// `failed` row is written after the failed call rolled back, best
    /// effort; a commit lost with its connection may leave a `failed` row
    /// beside the `succeeded` one it wrote, which is the proof.
    ///
    /// ```
    /// use tenancy::migrate::FleetConfig;
    /// assert!(FleetConfig::default().with_audit(true).audit());
    /// ```
    #[must_use]
    pub fn with_audit(mut self, audit: bool) -> Self {
        self.audit = audit;
        self
    }

    /// Who the audit table names as the actor of this fleet's changes (a
    /// user, a service); without it, the database role (`current_user`).
    /// For one call on behalf of someone, see [`TenantFleet::as_actor`].
    ///
    /// ```
    /// use tenancy::migrate::FleetConfig;
    /// let config = FleetConfig::default().with_audit(true).with_actor("deploy-bot");
    /// assert_eq!(config.actor(), Some("deploy-bot"));
    /// ```
    #[must_use]
    pub fn with_actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    /// Whether lifecycle changes are audited.
    ///
    /// ```
    /// assert!(!tenancy::migrate::FleetConfig::default().audit());
    /// ```
    #[must_use]
    pub fn audit(&self) -> bool {
        self.audit
    }

    /// The actor audit rows name, if set.
    ///
    /// ```
    /// assert_eq!(tenancy::migrate::FleetConfig::default().actor(), None);
    /// ```
    #[must_use]
    pub fn actor(&self) -> Option<&str> {
        self.actor.as_deref()
    }

    /// Whether `create` and `adopt` distribute tenant schemas with Citus
    /// schema-based sharding (default [`CitusMode::Detect`]: when the
    /// `citus` extension is installed). Declare
    /// [`CitusMode::Required`] on a Citus cluster, so that a fleet pointed
    /// at the wrong database fails instead of keeping tenants on one node.
    ///
    /// ```
    /// use tenancy::migrate::{CitusMode, FleetConfig};
    /// let config = FleetConfig::default().with_citus(CitusMode::Off);
    /// assert_eq!(config.citus(), CitusMode::Off);
    /// ```
    #[must_use]
    pub fn with_citus(mut self, mode: CitusMode) -> Self {
        self.citus = mode;
        self
    }

    /// The Citus mode (see [`with_citus`](Self::with_citus)).
    ///
    /// ```
    /// use tenancy::migrate::{CitusMode, FleetConfig};
    /// assert_eq!(FleetConfig::default().citus(), CitusMode::Detect);
    /// ```
    #[must_use]
    pub fn citus(&self) -> CitusMode {
        self.citus
    }

    /// The registry configuration.
    ///
    /// ```
    /// let config = tenancy::migrate::FleetConfig::default();
    /// assert_eq!(config.registry().qualified_table(), r#""public"."tenants""#);
    /// ```
    #[must_use]
    pub fn registry(&self) -> &RegistryConfig {
        &self.registry
    }

    /// The schema naming.
    ///
    /// ```
    /// assert_eq!(tenancy::migrate::FleetConfig::default().naming().prefix(), "tenant_");
    /// ```
    #[must_use]
    pub fn naming(&self) -> &SchemaNaming {
        &self.naming
    }

    /// The shared schemas.
    ///
    /// ```
    /// assert_eq!(tenancy::migrate::FleetConfig::default().shared_schemas()[0].as_str(), "public");
    /// ```
    #[must_use]
    pub fn shared_schemas(&self) -> &[SharedSchema] {
        &self.shared
    }

    /// Tenants migrated at once.
    ///
    /// ```
    /// assert_eq!(tenancy::migrate::FleetConfig::default().concurrency(), 4);
    /// ```
    #[must_use]
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }
}

/// Every tenant of one database, managed with one tenant migrator `M`: the
/// registry, each tenant's lifecycle, and migrations across all of them.
///
/// `M` is an ordinary sea-orm-migration `MigratorTrait`, written once and
/// applied to every tenant's schema, with its `seaql_migrations` table inside
/// that schema (so a dump or drop of the schema carries its history).
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
/// let fleet = TenantFleet::<TenantMigrator>::new(conn.clone());
/// fleet.install().await?; // the registry, public.tenants
/// let acme = fleet.create(&"acme".parse()?, NewTenant::new()).await?;
/// assert_eq!(acme.schema.as_str(), "tenant_acme");
/// # conn.close().await?;
/// # test_db.close().await?;
/// # Ok(()) }
/// ```
pub struct TenantFleet<M> {
    pub(crate) conn: DatabaseConnection,
    pub(crate) config: FleetConfig,
    /// Invalidated after each lifecycle change commits; the application's own
    /// when given with `with_registry`.
    pub(crate) registry: TenantRegistry,
    migrator: PhantomData<fn() -> M>,
    /// Fleet operations refuse a transaction-mode pooler (see `pooler`).
    direct: DirectCheck,
    /// Told every lifecycle change after it commits.
    pub(crate) lifecycle: Arc<[LifecycleHandler]>,
    /// Whether tenant schemas are distributed with Citus (see `citus`).
    pub(crate) citus: CitusCheck,
}

impl<M: MigratorTrait> TenantFleet<M> {
    /// A fleet on `conn` with the default configuration.
    ///
    /// ```
    /// # use sea_orm_migration::{MigrationTrait, MigratorTrait};
    /// # struct TenantMigrator;
    /// # impl MigratorTrait for TenantMigrator {
    /// #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
    /// # }
    /// # fn demo(conn: sea_orm::DatabaseConnection) {
    /// let fleet = tenancy::migrate::TenantFleet::<TenantMigrator>::new(conn);
    /// # }
    /// ```
    #[must_use]
    pub fn new(conn: DatabaseConnection) -> Self {
        Self::with_config(conn, FleetConfig::default())
    }

    /// A fleet on `conn` with `config`.
    ///
    /// ```
    /// # use sea_orm_migration::{MigrationTrait, MigratorTrait};
    /// # struct TenantMigrator;
    /// # impl MigratorTrait for TenantMigrator {
    /// #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
    /// # }
    /// # fn demo(conn: sea_orm::DatabaseConnection) {
    /// use tenancy::migrate::{FleetConfig, TenantFleet};
    /// let fleet = TenantFleet::<TenantMigrator>::with_config(conn, FleetConfig::default().with_concurrency(8));
    /// assert_eq!(fleet.config().concurrency(), 8);
    /// # }
    /// ```
    #[must_use]
    pub fn with_config(conn: DatabaseConnection, config: FleetConfig) -> Self {
        Self {
            registry: TenantRegistry::with_config(conn.clone(), config.registry().clone()),
            conn,
            config,
            migrator: PhantomData,
            direct: DirectCheck::default(),
            lifecycle: Arc::new([]),
            citus: CitusCheck::default(),
        }
    }

    /// Shares `registry`'s cache (typically the one of the application's
    /// `TenantDb`, [`TenantDb::registry`](tenancy_sea_orm::TenantDb::registry)):
    /// every lifecycle call then forgets the tenant's cached row once its
    /// change has committed, so a suspension is refused by the very next
    /// lookup in this process. The fleet also takes the registry's table
    /// from it, so the two cannot disagree about where the registry is.
    ///
    /// Other processes learn of the change through the `NOTIFY` every
    /// lifecycle call sends (see [`TenantRegistry::listen`]).
    ///
    /// ```
    /// use tenancy::migrate::{NewTenant, TenantFleet};
    /// use tenancy::orm::{Error, TenantDb};
    /// # use sea_orm_migration::{MigrationTrait, MigratorTrait};
    /// # struct TenantMigrator;
    /// # impl MigratorTrait for TenantMigrator {
    /// #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
    /// # }
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let test_db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = test_db.connect().await?;
    /// let db = TenantDb::new(conn.clone())?;
    /// let fleet = TenantFleet::<TenantMigrator>::new(conn.clone()).with_registry(db.registry().clone());
    /// # fleet.install().await?;
    /// let acme = "acme".parse()?;
    /// fleet.create(&acme, NewTenant::new()).await?;
    /// db.resolve(&acme).await?; // cached
    ///
    /// fleet.suspend(&acme).await?;
    /// assert!(matches!(db.resolve(&acme).await, Err(Error::Inaccessible { .. })));
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn with_registry(mut self, registry: TenantRegistry) -> Self {
        self.config = self.config.with_registry(registry.config().clone());
        self.registry = registry;
        self
    }

    /// Adds a handler told every lifecycle change of this fleet (and of its
    /// clones made afterwards) once it has committed: see
    /// [`LifecycleEvent`] for what is told when. Handlers run in the order
    /// added, before the call returns.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use tenancy::migrate::{LifecycleAction, NewTenant, TenantFleet};
    /// # use sea_orm_migration::{MigrationTrait, MigratorTrait};
    /// # struct TenantMigrator;
    /// # impl MigratorTrait for TenantMigrator {
    /// #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
    /// # }
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let test_db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = test_db.connect().await?;
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = Arc::clone(&seen);
    /// let fleet = TenantFleet::<TenantMigrator>::new(conn.clone()).on_lifecycle(move |event| {
    ///     log.lock().unwrap().push((event.action(), event.tenant().clone()));
    /// });
    /// fleet.install().await?;
    /// let acme = "acme".parse()?;
    /// fleet.create(&acme, NewTenant::new()).await?;
    /// fleet.suspend(&acme).await?;
    /// assert_eq!(
    ///     *seen.lock().unwrap(),
    ///     [(LifecycleAction::Created, acme.clone()), (LifecycleAction::Suspended, acme)]
    /// );
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn on_lifecycle(
        self,
        handler: impl Fn(&LifecycleEvent<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.on_lifecycle_handler(Arc::new(handler))
    }

    /// [`on_lifecycle`](Self::on_lifecycle) with a handler already shared
    /// (one `Arc` given to several fleets).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tenancy::migrate::{LifecycleEvent, LifecycleHandler};
    /// # fn demo<M: sea_orm_migration::MigratorTrait>(a: tenancy::migrate::TenantFleet<M>, b: tenancy::migrate::TenantFleet<M>) {
    /// let handler: LifecycleHandler =
    ///     Arc::new(|event: &LifecycleEvent<'_>| println!("{} {}", event.tenant(), event.action()));
    /// let (a, b) = (a.on_lifecycle_handler(handler.clone()), b.on_lifecycle_handler(handler));
    /// # let _ = (a, b);
    /// # }
    /// ```
    #[must_use]
    pub fn on_lifecycle_handler(mut self, handler: LifecycleHandler) -> Self {
        let mut handlers = self.lifecycle.to_vec();
        handlers.push(handler);
        self.lifecycle = handlers.into();
        self
    }

    /// This fleet acting on behalf of `actor`: the audit rows of calls made
    /// through the returned handle name it (see
    /// [`FleetConfig::with_actor`]). Cheap: it shares the connection pool,
    /// registry cache and handlers.
    ///
    /// ```
    /// use tenancy::migrate::{FleetConfig, NewTenant, TenantFleet};
    /// # use sea_orm_migration::{MigrationTrait, MigratorTrait};
    /// # struct TenantMigrator;
    /// # impl MigratorTrait for TenantMigrator {
    /// #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
    /// # }
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let test_db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = test_db.connect().await?;
    /// let config = FleetConfig::default().with_audit(true);
    /// let fleet = TenantFleet::<TenantMigrator>::with_config(conn.clone(), config);
    /// fleet.install().await?;
    /// let acme = "acme".parse()?;
    /// fleet.as_actor("alice@example.com").create(&acme, NewTenant::new()).await?;
    /// // public.tenants_audit: (actor 'alice@example.com', action 'created', tenant_id 'acme', ...)
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn as_actor(&self, actor: impl Into<String>) -> Self {
        let mut fleet = self.clone();
        fleet.config = fleet.config.with_actor(actor);
        fleet
    }

    /// The registry cache lifecycle calls invalidate (see
    /// [`with_registry`](Self::with_registry)).
    ///
    /// ```
    /// # fn demo<M: sea_orm_migration::MigratorTrait>(fleet: tenancy::migrate::TenantFleet<M>) {
    /// let db = tenancy::orm::TenantDb::new(fleet.connection().clone())
    ///     .map(|db| db.with_registry(fleet.registry().clone()));
    /// # }
    /// ```
    #[must_use]
    pub fn registry(&self) -> &TenantRegistry {
        &self.registry
    }

    /// The connection the fleet works on.
    ///
    /// ```
    /// # fn demo<M: sea_orm_migration::MigratorTrait>(fleet: tenancy::migrate::TenantFleet<M>) {
    /// let conn: &sea_orm::DatabaseConnection = fleet.connection();
    /// # }
    /// ```
    #[must_use]
    pub fn connection(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// The fleet's configuration.
    ///
    /// ```
    /// # fn demo<M: sea_orm_migration::MigratorTrait>(fleet: tenancy::migrate::TenantFleet<M>) {
    /// println!("registry: {}", fleet.config().registry().qualified_table());
    /// # }
    /// ```
    #[must_use]
    pub fn config(&self) -> &FleetConfig {
        &self.config
    }

    /// Every public operation starts here: refuses a connection seen to go
    /// through a transaction-mode pooler (checked once per fleet).
    pub(crate) async fn ensure_direct(&self) -> Result<(), Error> {
        self.direct.ensure(&self.conn).await
    }

    /// Whether tenant schemas are distributed with Citus, per the fleet's
    /// [`CitusMode`] (looked up once per fleet).
    pub(crate) async fn citus_enabled(&self) -> Result<bool, Error> {
        self.citus.enabled(&self.conn, self.config.citus).await
    }
}

impl<M> Clone for TenantFleet<M> {
    fn clone(&self) -> Self {
        Self {
            conn: self.conn.clone(),
            config: self.config.clone(),
            registry: self.registry.clone(),
            migrator: PhantomData,
            direct: self.direct.clone(),
            lifecycle: Arc::clone(&self.lifecycle),
            citus: self.citus.clone(),
        }
    }
}

impl<M> fmt::Debug for TenantFleet<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantFleet")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
