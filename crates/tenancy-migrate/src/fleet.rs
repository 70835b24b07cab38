//! The handle every operation hangs off.

use std::fmt;
use std::marker::PhantomData;

use sea_orm::DatabaseConnection;
use sea_orm_migration::MigratorTrait;
use tenancy_core::{SchemaNaming, SharedSchema};
use tenancy_sea_orm::{RegistryConfig, TenantRegistry};

use crate::Error;
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
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            registry: RegistryConfig::default(),
            naming: SchemaNaming::default(),
            shared: vec![SharedSchema::public()],
            concurrency: Self::DEFAULT_CONCURRENCY,
            spare_pool: false,
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
}

impl<M> Clone for TenantFleet<M> {
    fn clone(&self) -> Self {
        Self {
            conn: self.conn.clone(),
            config: self.config.clone(),
            registry: self.registry.clone(),
            migrator: PhantomData,
            direct: self.direct.clone(),
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
