//! The tenant registry, read side: which tenants exist, which schema each one
//! lives in, and whether it may be used right now.
//!
//! # The contract
//!
//! The registry's table, columns, row type and validation are defined once,
//! in [`tenancy_core::registry`], for this crate (which reads the table) and
//! `tenancy-migrate` (which creates and writes it). By default the table is
//! `"public"."tenants"` ([`RegistryConfig::with_table`] moves it).
//!
//! A lookup is one statement, `SELECT tenant_id, schema_name, display_name,
//! domain, status FROM <table> WHERE tenant_id = $1`. The tenant id is always
//! a bound parameter; the table name reaches the SQL only through
//! [`TableName::qualified`], so nothing a request carries is ever spliced
//! into SQL. Values read back are validated again
//! ([`TenantRecord::from_columns`]): a row written by hand with a schema name
//! like `public` is reported as [`Error::CorruptRegistry`] naming the column
//! and the value, never used.
//!
//! # Caching
//!
//! [`TenantRegistry`] caches rows for [`RegistryConfig::ttl`]; its own docs
//! say how lifecycle changes reach the cache (shared registry, `NOTIFY` and
//! [`TenantRegistry::listen`], the TTL as fallback).
//!
//! # The negative cache
//!
//! An unknown tenant id is cached too, for the much shorter
//! [`RegistryConfig::negative_ttl`] (2 s by default). Tenant ids come from
//! requests, so without it a flood of requests for a nonexistent tenant (a
//! typo'd subdomain, a scanner) would each cost a database round trip; with
//! it, a tenant created a moment ago by another process is still found
//! within a couple of seconds.
//!
//! Concurrent misses for the same id may each query the database: the cache
//! is synchronous and the query is not, and a few duplicate reads on a cold
//! key cost less than coordinating them.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::sync::Cache;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, QueryResult, Statement};
use tenancy_core::registry::{CorruptRecord, RegistryTable, TenantRecord, columns};
use tenancy_core::{SharedSchema, TableName, Tenant, TenantId};

use crate::Error;
use crate::connection::{Statements, query_one_unnamed};
use crate::display_db_err;

/// Where the registry table is and how long its rows are cached.
///
/// Defaults: table `"public"."tenants"`, [`ttl`](Self::ttl) 30 s,
/// [`negative_ttl`](Self::negative_ttl) 2 s, [`capacity`](Self::capacity)
/// 10 000 entries.
///
/// ```
/// use std::time::Duration;
/// use tenancy::{SharedSchema, TableName};
/// use tenancy::orm::RegistryConfig;
///
/// let config = RegistryConfig::default()
///     .with_table(SharedSchema::new("control")?, TableName::new("registry")?)
///     .with_ttl(Duration::from_secs(10));
/// assert_eq!(config.qualified_table(), r#""control"."registry""#);
/// assert_eq!(config.ttl(), Duration::from_secs(10));
/// assert_eq!(config.negative_ttl(), Duration::from_secs(2));
/// # Ok::<(), tenancy::NameError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    location: RegistryTable,
    ttl: Duration,
    negative_ttl: Duration,
    capacity: u64,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            location: RegistryTable::default(),
            ttl: Duration::from_secs(30),
            negative_ttl: Duration::from_secs(2),
            capacity: 10_000,
        }
    }
}

impl RegistryConfig {
    /// Reads the registry from `schema.table` instead of `public.tenants`.
    ///
    /// ```
    /// use tenancy::{SharedSchema, TableName};
    /// let config = tenancy::orm::RegistryConfig::default()
    ///     .with_table(SharedSchema::public(), TableName::new("tenant_registry")?);
    /// assert_eq!(config.table().as_str(), "tenant_registry");
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn with_table(self, schema: SharedSchema, table: TableName) -> Self {
        self.with_location(RegistryTable::new(schema, table))
    }

    /// Reads the registry from `location` (see [`with_table`](Self::with_table)).
    ///
    /// ```
    /// use tenancy::registry::RegistryTable;
    /// let config = tenancy::orm::RegistryConfig::default().with_location(RegistryTable::default());
    /// assert_eq!(config.location(), &RegistryTable::default());
    /// ```
    #[must_use]
    pub fn with_location(self, location: RegistryTable) -> Self {
        Self { location, ..self }
    }

    /// Where the registry table is.
    ///
    /// ```
    /// let config = tenancy::orm::RegistryConfig::default();
    /// assert_eq!(config.location().qualified(), r#""public"."tenants""#);
    /// ```
    #[must_use]
    pub fn location(&self) -> &RegistryTable {
        &self.location
    }

    /// How long a registered tenant's row is cached: the longest a change
    /// made by another process goes unseen. [`Duration::ZERO`] turns the
    /// cache off for registered tenants.
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = tenancy::orm::RegistryConfig::default().with_ttl(Duration::from_secs(5));
    /// assert_eq!(config.ttl(), Duration::from_secs(5));
    /// ```
    #[must_use]
    pub fn with_ttl(self, ttl: Duration) -> Self {
        Self { ttl, ..self }
    }

    /// How long an unknown tenant id is remembered as unknown.
    /// [`Duration::ZERO`] turns the negative cache off.
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = tenancy::orm::RegistryConfig::default().with_negative_ttl(Duration::ZERO);
    /// assert!(config.negative_ttl().is_zero());
    /// ```
    #[must_use]
    pub fn with_negative_ttl(self, negative_ttl: Duration) -> Self {
        Self {
            negative_ttl,
            ..self
        }
    }

    /// The most tenant ids (known and unknown) the cache holds; the least
    /// recently and least frequently used are evicted first.
    ///
    /// ```
    /// let config = tenancy::orm::RegistryConfig::default().with_capacity(500);
    /// assert_eq!(config.capacity(), 500);
    /// ```
    #[must_use]
    pub fn with_capacity(self, capacity: u64) -> Self {
        Self { capacity, ..self }
    }

    /// The shared schema holding the registry table.
    ///
    /// ```
    /// assert_eq!(tenancy::orm::RegistryConfig::default().schema().as_str(), "public");
    /// ```
    #[must_use]
    pub fn schema(&self) -> &SharedSchema {
        self.location.schema()
    }

    /// The registry table's name.
    ///
    /// ```
    /// assert_eq!(tenancy::orm::RegistryConfig::default().table().as_str(), "tenants");
    /// ```
    #[must_use]
    pub fn table(&self) -> &TableName {
        self.location.table()
    }

    /// The registry table as it appears in SQL: `"schema"."table"`.
    ///
    /// ```
    /// assert_eq!(
    ///     tenancy::orm::RegistryConfig::default().qualified_table(),
    ///     r#""public"."tenants""#,
    /// );
    /// ```
    #[must_use]
    pub fn qualified_table(&self) -> String {
        self.location.qualified()
    }

    /// How long a registered tenant's row is cached.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(tenancy::orm::RegistryConfig::default().ttl(), Duration::from_secs(30));
    /// ```
    #[must_use]
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// How long an unknown tenant id is cached as unknown.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(tenancy::orm::RegistryConfig::default().negative_ttl(), Duration::from_secs(2));
    /// ```
    #[must_use]
    pub fn negative_ttl(&self) -> Duration {
        self.negative_ttl
    }

    /// The most entries the cache holds.
    ///
    /// ```
    /// assert_eq!(tenancy::orm::RegistryConfig::default().capacity(), 10_000);
    /// ```
    #[must_use]
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// How long `entry` may be cached: `ttl` for a registered tenant,
    /// `negative_ttl` for an unknown one.
    fn ttl_for(&self, entry: Option<&TenantRecord>) -> Duration {
        if entry.is_some() {
            self.ttl
        } else {
            self.negative_ttl
        }
    }
}

/// Looks tenants up in the registry table, with a cache in front.
///
/// Reads the [registry columns](tenancy_core::registry::columns) from
/// `"public"."tenants"` (or the table of [`RegistryConfig::with_table`]);
/// other columns are ignored. Registered tenants are cached for
/// [`RegistryConfig::ttl`], unknown ids for [`RegistryConfig::negative_ttl`].
/// Changes made by a `TenantFleet` sharing this registry take effect at once;
/// [`listen`](Self::listen) brings other processes' changes within a moment
/// (see below). Clones share the cache.
///
/// # How changes reach the cache
///
/// Resolving a tenant happens on every request, so [`TenantRegistry`] keeps the
/// rows it has read in a bounded in-memory cache (`moka`) for
/// [`RegistryConfig::ttl`] (30 s by default). A change to a tenant's row
/// reaches the cache in one of three ways:
///
/// - **In this process**: `tenancy-migrate`'s lifecycle calls (create, adopt,
///   suspend, resume, rename, re-domain, drop) made through a `TenantFleet`
///   that shares this registry (`TenantFleet::with_registry`) call
///   [`TenantRegistry::invalidate`] once their change has committed: the next
///   lookup sees it.
/// - **In other processes, within a moment**: every lifecycle call sends `NOTIFY` on
///   [`NOTIFY_CHANNEL`](tenancy_core::registry::NOTIFY_CHANNEL) inside its
///   transaction. [`TenantRegistry::listen`] keeps a connection that listens
///   and invalidates the tenant named by each notification, typically well
///   under a second after the commit. It needs a *direct* connection: a
///   transaction-mode pooler (PgBouncer) cannot carry `LISTEN`.
/// - **Otherwise, within the TTL**: without a listener, while it is
///   reconnecting, or for a row changed by hand (no `NOTIFY`), a cached row
///   is read again once `ttl` has passed. When the listener reconnects it
///   forgets every cached row, since notifications sent while it was away are
///   lost.
///
/// Database errors and unusable rows are never cached; the next call asks
/// again.
///
/// ```
/// use sea_orm::ConnectionTrait;
/// use tenancy::TenantScope;
/// use tenancy::orm::TenantRegistry;
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let db = tenancy_testing::TestDatabase::create().await?;
/// # let conn = db.connect().await?;
/// conn.execute_unprepared(
///     "CREATE TABLE tenants (tenant_id text PRIMARY KEY, schema_name text NOT NULL UNIQUE, \
///      status text NOT NULL, display_name text NOT NULL DEFAULT '', domain text UNIQUE);
///      INSERT INTO tenants VALUES ('acme', 'tenant_acme', 'active')",
/// )
/// .await?;
///
/// let registry = TenantRegistry::new(conn.clone());
/// let tenant = registry.resolve(&"acme".parse()?).await?;
/// assert_eq!(tenant.schema().as_str(), "tenant_acme");
/// # conn.close().await?;
/// # db.close().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TenantRegistry {
    conn: DatabaseConnection,
    config: Arc<RegistryConfig>,
    /// Built once from the config: the table name never changes.
    select_sql: Arc<str>,
    /// `None` is a cached "not registered".
    cache: Cache<TenantId, Option<TenantRecord>>,
    /// Bumped by every invalidation. A lookup that started before an
    /// invalidation may have read the row before the change being
    /// invalidated; comparing epochs keeps it from caching that stale row.
    epoch: Arc<AtomicU64>,
    /// Pooler mode: lookups are unnamed statements in a read-only transaction.
    statements: Statements,
}

impl TenantRegistry {
    /// A registry on `conn` with the default [`RegistryConfig`].
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = db.connect().await?;
    /// let registry = tenancy::orm::TenantRegistry::new(conn.clone());
    /// assert_eq!(registry.config().qualified_table(), r#""public"."tenants""#);
    /// # conn.close().await?;
    /// # db.close().await?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn new(conn: DatabaseConnection) -> Self {
        Self::with_config(conn, RegistryConfig::default())
    }

    /// A registry on `conn` with `config`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tenancy::orm::{RegistryConfig, TenantRegistry};
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = db.connect().await?;
    /// let config = RegistryConfig::default().with_ttl(Duration::from_secs(5));
    /// let registry = TenantRegistry::with_config(conn.clone(), config);
    /// assert_eq!(registry.config().ttl(), Duration::from_secs(5));
    /// # conn.close().await?;
    /// # db.close().await?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn with_config(conn: DatabaseConnection, config: RegistryConfig) -> Self {
        let select_sql = format!(
            "SELECT {} FROM {} WHERE {} = $1",
            columns::SELECT_LIST,
            config.qualified_table(),
            columns::TENANT_ID,
        );
        let config = Arc::new(config);
        let cache = Cache::builder()
            .max_capacity(config.capacity)
            .expire_after(EntryExpiry(Arc::clone(&config)))
            .build();
        Self {
            conn,
            config,
            select_sql: select_sql.into(),
            cache,
            epoch: Arc::new(AtomicU64::new(0)),
            statements: Statements::Named,
        }
    }

    /// Pooler mode (see [`TenantDb::behind_pooler`](crate::TenantDb::behind_pooler),
    /// which sets it on its registry): each lookup that reaches the database
    /// runs as an unnamed statement inside a short read-only transaction, so
    /// it is safe behind a transaction-mode pooler such as PgBouncer before
    /// 1.21. Costs two more round trips per lookup (`BEGIN`, `COMMIT`); the
    /// cache in front is unchanged.
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = db.connect().await?;
    /// let registry = tenancy::orm::TenantRegistry::new(conn.clone()).behind_pooler();
    /// assert!(registry.is_behind_pooler());
    /// # conn.close().await?;
    /// # db.close().await?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn behind_pooler(mut self) -> Self {
        self.statements = Statements::Unnamed;
        self
    }

    /// Whether lookups run in [pooler mode](Self::behind_pooler).
    ///
    /// ```
    /// # fn demo(registry: tenancy::orm::TenantRegistry) {
    /// let pooled = registry.behind_pooler();
    /// assert!(pooled.is_behind_pooler());
    /// # }
    /// ```
    #[must_use]
    pub fn is_behind_pooler(&self) -> bool {
        self.statements == Statements::Unnamed
    }

    /// The configuration this registry was built with.
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = db.connect().await?;
    /// let registry = tenancy::orm::TenantRegistry::new(conn.clone());
    /// assert_eq!(registry.config().capacity(), 10_000);
    /// # conn.close().await?;
    /// # db.close().await?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// The tenant with this id, if it is registered and active; cached.
    ///
    /// # Errors
    /// - [`Error::UnknownTenant`] if no row has this id;
    /// - [`Error::Inaccessible`] if its status is not `active` (provisioning,
    ///   suspended or deleted), with that status;
    /// - [`Error::Registry`] if the registry cannot be read;
    /// - [`Error::CorruptRegistry`] if its row does not validate.
    ///
    /// ```
    /// use sea_orm::ConnectionTrait;
    /// use tenancy::{TenantScope, TenantStatus};
    /// use tenancy::orm::{Error, TenantRegistry};
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = db.connect().await?;
    /// # conn.execute_unprepared(
    /// #     "CREATE TABLE tenants (tenant_id text PRIMARY KEY, schema_name text NOT NULL UNIQUE, \
    /// #      status text NOT NULL, display_name text NOT NULL DEFAULT '', domain text UNIQUE);
    /// #      INSERT INTO tenants VALUES ('acme', 'tenant_acme', 'active'),
    /// #                                 ('initech', 'tenant_initech', 'suspended')",
    /// # ).await?;
    /// let registry = TenantRegistry::new(conn.clone());
    /// let acme = registry.resolve(&"acme".parse()?).await?;
    /// assert_eq!(acme.schema().as_str(), "tenant_acme");
    ///
    /// let refused = registry.resolve(&"initech".parse()?).await;
    /// assert!(matches!(refused, Err(Error::Inaccessible { status: TenantStatus::Suspended, .. })));
    /// let unknown = registry.resolve(&"nobody".parse()?).await;
    /// assert!(matches!(unknown, Err(Error::UnknownTenant { .. })));
    /// # conn.close().await?;
    /// # db.close().await?;
    /// # Ok(()) }
    /// ```
    pub async fn resolve(&self, id: &TenantId) -> Result<Tenant, Error> {
        match self.entry(id).await? {
            None => Err(Error::UnknownTenant { tenant: id.clone() }),
            Some(entry) if !entry.status.allows_access() => Err(Error::Inaccessible {
                tenant: entry.id,
                status: entry.status,
            }),
            Some(entry) => Ok(entry.tenant()),
        }
    }

    /// The registry row for this id, whatever its status (`None`: not
    /// registered); cached like [`resolve`](Self::resolve).
    ///
    /// # Errors
    /// [`Error::Registry`] if the registry cannot be read;
    /// [`Error::CorruptRegistry`] if the row does not validate.
    ///
    /// ```
    /// use sea_orm::ConnectionTrait;
    /// use tenancy::TenantStatus;
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = db.connect().await?;
    /// # conn.execute_unprepared(
    /// #     "CREATE TABLE tenants (tenant_id text PRIMARY KEY, schema_name text NOT NULL UNIQUE, \
    /// #      status text NOT NULL, display_name text NOT NULL DEFAULT '', domain text UNIQUE);
    /// #      INSERT INTO tenants VALUES ('initech', 'tenant_initech', 'suspended')",
    /// # ).await?;
    /// let registry = tenancy::orm::TenantRegistry::new(conn.clone());
    /// let entry = registry.entry(&"initech".parse()?).await?;
    /// assert_eq!(entry.map(|e| e.status), Some(TenantStatus::Suspended));
    /// assert_eq!(registry.entry(&"nobody".parse()?).await?, None);
    /// # conn.close().await?;
    /// # db.close().await?;
    /// # Ok(()) }
    /// ```
    pub async fn entry(&self, id: &TenantId) -> Result<Option<TenantRecord>, Error> {
        if let Some(cached) = self.cache.get(id) {
            return Ok(cached);
        }
        // Read the epoch before the query: if an invalidation lands while the
        // query is in flight, the row we get may predate the change.
        let epoch = self.epoch.load(Ordering::SeqCst);
        let fetched = self.fetch(id).await?;
        if !self.config.ttl_for(fetched.as_ref()).is_zero() {
            self.cache.insert(id.clone(), fetched.clone());
            // Checked after the insert, not before: an invalidation that bumps
            // the epoch after this check also removes this entry, since it
            // calls `Cache::invalidate` after bumping; one that bumped before
            // is caught here. Either way no stale row outlives it.
            if self.epoch.load(Ordering::SeqCst) != epoch {
                self.cache.invalidate(id);
            }
        }
        Ok(fetched)
    }

    /// The registry row for this id, read from the database now: one round
    /// trip, bypassing the cache and leaving it unchanged.
    ///
    /// # Errors
    /// [`Error::Registry`] if the registry cannot be read;
    /// [`Error::CorruptRegistry`] if the row does not validate.
    ///
    /// ```
    /// use sea_orm::ConnectionTrait;
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = db.connect().await?;
    /// # conn.execute_unprepared(
    /// #     "CREATE TABLE tenants (tenant_id text PRIMARY KEY, schema_name text NOT NULL UNIQUE, \
    /// #      status text NOT NULL, display_name text NOT NULL DEFAULT '', domain text UNIQUE);
    /// #      INSERT INTO tenants VALUES ('acme', 'tenant_acme', 'active')",
    /// # ).await?;
    /// let registry = tenancy::orm::TenantRegistry::new(conn.clone());
    /// let entry = registry.fetch(&"acme".parse()?).await?;
    /// assert_eq!(entry.map(|e| e.schema.to_string()).as_deref(), Some("tenant_acme"));
    /// # conn.close().await?;
    /// # db.close().await?;
    /// # Ok(()) }
    /// ```
    pub async fn fetch(&self, id: &TenantId) -> Result<Option<TenantRecord>, Error> {
        tracing::debug!(tenant = %id, table = %self.config.qualified_table(), "reading the tenant registry");
        let statement = Statement::from_sql_and_values(
            DbBackend::Postgres,
            &*self.select_sql,
            [id.as_str().into()],
        );
        let row = match self.statements {
            Statements::Named => self.conn.query_one_raw(statement).await,
            Statements::Unnamed => query_one_unnamed(&self.conn, &statement).await,
        };
        let row = row.map_err(|source| Error::Registry {
            tenant: id.clone(),
            reason: format!(
                "cannot query {}: {}",
                self.config.qualified_table(),
                display_db_err(&source)
            ),
            source: Some(source),
        })?;
        let Some(row) = row else {
            return Ok(None);
        };
        read_record(&row)
            .map(Some)
            .map_err(|record| Error::CorruptRegistry {
                tenant: id.clone(),
                record,
            })
    }

    /// Forgets what is cached for this id, so the next lookup reads the
    /// registry. Call it after changing the tenant's row (once the change
    /// has committed), so a suspension takes effect at once in this process.
    ///
    /// ```
    /// use sea_orm::ConnectionTrait;
    /// use tenancy::orm::Error;
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = db.connect().await?;
    /// # conn.execute_unprepared(
    /// #     "CREATE TABLE tenants (tenant_id text PRIMARY KEY, schema_name text NOT NULL UNIQUE, \
    /// #      status text NOT NULL, display_name text NOT NULL DEFAULT '', domain text UNIQUE);
    /// #      INSERT INTO tenants VALUES ('acme', 'tenant_acme', 'active')",
    /// # ).await?;
    /// let registry = tenancy::orm::TenantRegistry::new(conn.clone());
    /// let acme = "acme".parse()?;
    /// registry.resolve(&acme).await?;
    ///
    /// conn.execute_unprepared("UPDATE tenants SET status = 'suspended' WHERE tenant_id = 'acme'")
    ///     .await?;
    /// registry.invalidate(&acme);
    /// assert!(matches!(registry.resolve(&acme).await, Err(Error::Inaccessible { .. })));
    /// # conn.close().await?;
    /// # db.close().await?;
    /// # Ok(()) }
    /// ```
    pub fn invalidate(&self, id: &TenantId) {
        // Bump first, then remove: see `entry` for why this order matters.
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.cache.invalidate(id);
    }

    /// Forgets every cached entry (after a bulk change to the registry).
    ///
    /// ```
    /// use sea_orm::ConnectionTrait;
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = db.connect().await?;
    /// # conn.execute_unprepared(
    /// #     "CREATE TABLE tenants (tenant_id text PRIMARY KEY, schema_name text NOT NULL UNIQUE, \
    /// #      status text NOT NULL, display_name text NOT NULL DEFAULT '', domain text UNIQUE)",
    /// # ).await?;
    /// let registry = tenancy::orm::TenantRegistry::new(conn.clone());
    /// let acme = "acme".parse()?;
    /// assert_eq!(registry.entry(&acme).await?, None);
    ///
    /// conn.execute_unprepared("INSERT INTO tenants VALUES ('acme', 'tenant_acme', 'active')")
    ///     .await?;
    /// registry.invalidate_all();
    /// assert!(registry.entry(&acme).await?.is_some());
    /// # conn.close().await?;
    /// # db.close().await?;
    /// # Ok(()) }
    /// ```
    pub fn invalidate_all(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.cache.invalidate_all();
    }
}

impl fmt::Debug for TenantRegistry {
    // By hand: moka's `Debug` lists every cached entry, which for a full
    // cache is ten thousand lines of log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantRegistry")
            .field("config", &self.config)
            .field("cached_entries", &self.cache.entry_count())
            .field("statements", &self.statements)
            .finish_non_exhaustive()
    }
}

/// Per-entry lifetimes: registered tenants live `ttl`, unknown ids
/// `negative_ttl`.
struct EntryExpiry(Arc<RegistryConfig>);

/// Reads a registry row (selected with
/// [`columns::SELECT_LIST`]) into the record it holds, validating every
/// value: the one place a row of the registry is turned into a
/// [`TenantRecord`], for this crate and `tenancy-migrate`.
///
/// # Errors
/// [`CorruptRecord`] when a value is missing, not text, or does not validate.
///
/// ```
/// use sea_orm::{ConnectionTrait, DbBackend, Statement};
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let db = tenancy_testing::TestDatabase::create().await?;
/// # let conn = db.connect().await?;
/// let row = conn
///     .query_one_raw(Statement::from_string(
///         DbBackend::Postgres,
///         "SELECT 'acme' AS tenant_id, 'tenant_acme' AS schema_name, '' AS display_name, \
///          NULL::text AS domain, 'paused' AS status",
///     ))
///     .await?
///     .expect("one row");
/// let bad = tenancy::orm::read_record(&row).unwrap_err();
/// assert!(bad.to_string().contains("paused"));
/// # conn.close().await?;
/// # db.close().await?;
/// # Ok(()) }
/// ```
pub fn read_record(row: &QueryResult) -> Result<TenantRecord, CorruptRecord> {
    TenantRecord::from_columns(|column| {
        row.try_get::<Option<String>>("", column)
            .map_err(|err| display_db_err(&err).to_string())
    })
}

impl Expiry<TenantId, Option<TenantRecord>> for EntryExpiry {
    fn expire_after_create(
        &self,
        _id: &TenantId,
        entry: &Option<TenantRecord>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(self.0.ttl_for(entry.as_ref()))
    }

    // moka's default keeps the old deadline on replacement; a fresh row
    // (e.g. an unknown id that became registered) gets its own lifetime.
    fn expire_after_update(
        &self,
        _id: &TenantId,
        entry: &Option<TenantRecord>,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(self.0.ttl_for(entry.as_ref()))
    }
}
