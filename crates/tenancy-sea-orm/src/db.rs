//! The entry point: one shared pool, one scoped transaction at a time.

use std::fmt;
use std::sync::Arc;

use sea_orm::sqlx::PgPool;
use sea_orm::{DatabaseConnection, DatabaseConnectionType, DbErr};
use tenancy_core::{
    SchemaName, SearchPath, SharedSchema, TableName, Tenant, TenantId, TenantScope, sqlstate,
};
use tracing::Instrument as _;

use crate::connection::{
    ScopedConnection, Statements, acquire_err, conn_err, refuse_named_statements, routine,
    sqlx_sqlstate,
};
use crate::error::{Error, ScopeLabel};
use crate::options::ScopeOptions;
use crate::registry::TenantRegistry;
use crate::schema_check::{SchemaCheck, SchemaProbe, lock_may_fall_back};
use crate::transaction::{TenantTransaction, TransactionCallback};

/// Tenant-scoped transactions over one SeaORM `DatabaseConnection` (one pool
/// for every tenant).
///
/// Every transaction opened here starts with one message,
/// `BEGIN; SET LOCAL search_path TO "tenant_acme", "public"; …`, so scoping
/// costs no extra round trip, and ends with the transaction: nothing of a
/// tenant is left on a pooled connection. Behind a transaction-mode pooler
/// such as PgBouncer before 1.21, use [pooler mode](Self::behind_pooler).
///
/// Cloning is cheap (the pool and registry cache are shared).
///
/// ```
/// use sea_orm::{ConnectionTrait, DbBackend, Statement};
/// use tenancy::{Tenant, TenantId};
/// use tenancy::orm::TenantDb;
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let test_db = tenancy_testing::TestDatabase::create().await?;
/// # let conn = test_db.connect().await?;
/// conn.execute_unprepared("CREATE SCHEMA tenant_acme; CREATE TABLE tenant_acme.note (body text)").await?;
/// let db = TenantDb::new(conn)?;
/// let acme = Tenant::from_id(TenantId::new("acme")?)?;
///
/// db.transaction::<_, _, sea_orm::DbErr>(&acme, async |txn| {
///     txn.execute_unprepared("INSERT INTO note VALUES ('hello')").await?; // tenant_acme.note
///     Ok(())
/// }).await?;
///
/// let txn = db.begin(&acme).await?;
/// let row = txn
///     .query_one_raw(Statement::from_string(DbBackend::Postgres, "SELECT count(*) AS n FROM note"))
///     .await?
///     .expect("one row");
/// assert_eq!(row.try_get::<i64>("", "n")?, 1);
/// txn.commit().await?;
/// # db.connection().clone().close().await?;
/// # test_db.close().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TenantDb {
    conn: DatabaseConnection,
    pool: PgPool,
    shared: Option<Arc<[SharedSchema]>>,
    options: ScopeOptions,
    registry: TenantRegistry,
    /// How each opening message checks the tenant's schema.
    probe: SchemaProbe,
    /// Named (sqlx's default) or unnamed: [`TenantDb::behind_pooler`].
    statements: Statements,
}

impl TenantDb {
    /// Wraps a SeaORM PostgreSQL connection. Scopes use their own search path
    /// (by default the tenant's schema, then `public`), the server's default
    /// transaction settings, and the registry at `public.tenants`.
    ///
    /// ```
    /// # async fn demo(conn: sea_orm::DatabaseConnection) -> Result<(), tenancy::orm::Error> {
    /// let db = tenancy::orm::TenantDb::new(conn)?; // one pool, every tenant
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::NotPostgres`] for any other kind of connection.
    pub fn new(conn: DatabaseConnection) -> Result<Self, Error> {
        let pool = match &conn.inner {
            DatabaseConnectionType::SqlxPostgresPoolConnection(_) => {
                conn.get_postgres_connection_pool().clone()
            }
            _ => {
                return Err(Error::NotPostgres {
                    backend: format!(
                        "{:?}",
                        sea_orm::ConnectionTrait::get_database_backend(&conn)
                    ),
                });
            }
        };
        let registry = TenantRegistry::new(conn.clone());
        Ok(Self {
            conn,
            pool,
            shared: None,
            options: ScopeOptions::default(),
            registry,
            probe: SchemaProbe::ledger(),
            statements: Statements::Named,
        })
    }

    /// Pooler mode, for a pool that reaches PostgreSQL through a
    /// transaction-mode pooler such as PgBouncer before 1.21: every statement
    /// of a scoped transaction is sent as an unnamed prepared statement, and
    /// registry lookups run in a short read-only transaction with an unnamed
    /// statement too.
    ///
    /// sqlx names prepared statements per client connection (`sqlx_s_1`, …)
    /// and reuses them in later transactions, which a transaction-mode pooler
    /// may run on another server connection: there the name is missing,
    /// already taken, or another client's statement (an acknowledged `INSERT`
    /// that stored nothing, a read that ran as an `INSERT`). An unnamed
    /// statement only lives until the next statement of the same transaction,
    /// on the same server connection. The price is one parse per statement
    /// (`BENCHMARKS.md` has the measured cost); the opening `BEGIN; SET LOCAL
    /// …`, `COMMIT` and `ROLLBACK` are simple queries in both modes.
    ///
    /// What is supported behind such a pooler: scoped transactions and
    /// registry lookups of a `TenantDb` in this mode. Not supported: SeaORM
    /// queries on the same pool outside tenancy's transactions (they use named
    /// statements; run them on a direct connection), and `tenancy-migrate`'s
    /// fleet operations, which refuse a pooler and need a direct URL. A pooled
    /// connection that carries named statements cached by such queries is
    /// refused ([`Error::NamedStatementsBehindPooler`]) and closed.
    ///
    /// ```
    /// use sea_orm::ConnectionTrait;
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let test_db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = test_db.connect().await?;
    /// # conn.execute_unprepared("CREATE SCHEMA tenant_acme; CREATE TABLE tenant_acme.note (body text)").await?;
    /// // `conn` would be a pool on PgBouncer's address, e.g. postgres://app@pgbouncer:6432/app.
    /// let db = tenancy::orm::TenantDb::new(conn)?.behind_pooler();
    /// assert!(db.is_behind_pooler());
    /// let acme = tenancy::Tenant::from_id("acme".parse()?)?;
    /// let txn = db.begin(&acme).await?;
    /// txn.execute_raw(sea_orm::Statement::from_sql_and_values(
    ///     sea_orm::DbBackend::Postgres,
    ///     "INSERT INTO note VALUES ($1)", // an unnamed statement
    ///     ["hello".into()],
    /// )).await?;
    /// txn.commit().await?;
    /// # db.connection().clone().close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn behind_pooler(mut self) -> Self {
        self.statements = Statements::Unnamed;
        self.registry = self.registry.behind_pooler();
        self
    }

    /// Whether this handle is in [pooler mode](Self::behind_pooler).
    ///
    /// ```
    /// # fn demo(db: tenancy::orm::TenantDb) {
    /// assert!(!db.is_behind_pooler() || db.registry().is_behind_pooler());
    /// # }
    /// ```
    #[must_use]
    pub fn is_behind_pooler(&self) -> bool {
        self.statements == Statements::Unnamed
    }

    /// Strict mode: every transaction's search path holds the tenant's schema
    /// alone, whatever the scope says. A table missing from the tenant's
    /// schema is then an error instead of resolving to a `public` table of the
    /// same name. Shared tables must be schema-qualified.
    ///
    /// ```
    /// # fn demo(db: tenancy::orm::TenantDb) {
    /// let db = db.strict();
    /// # }
    /// ```
    #[must_use]
    pub fn strict(self) -> Self {
        self.with_shared_schemas([])
    }

    /// Puts these shared schemas after the tenant's on every transaction's
    /// search path (for example an `extensions` schema), instead of the
    /// scope's own choice. An empty list is [strict mode](Self::strict).
    ///
    /// ```
    /// # fn demo(db: tenancy::orm::TenantDb) -> Result<(), tenancy::NameError> {
    /// use tenancy::SharedSchema;
    /// let db = db.with_shared_schemas([SharedSchema::new("extensions")?, SharedSchema::public()]);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn with_shared_schemas(mut self, shared: impl IntoIterator<Item = SharedSchema>) -> Self {
        self.shared = Some(shared.into_iter().collect());
        self
    }

    /// Checks every tenant's schema with a lock on `table`, which every
    /// tenant schema must have: a schema without it is refused with
    /// [`Error::ProbeTableMissing`].
    ///
    /// Every transaction's opening message checks that the tenant's schema
    /// exists and that the role may use it (PostgreSQL silently skips a
    /// missing or unusable schema on the search path, so unqualified names
    /// would resolve in the shared schemas). `LOCK TABLE "tenant_acme".table
    /// IN ACCESS SHARE MODE` does that without a plan, at no measurable cost
    /// (`BENCHMARKS.md`, "Schema check"); the lock conflicts only with `ACCESS
    /// EXCLUSIVE` (`DROP`, most `ALTER TABLE`s of that table, `DROP SCHEMA …
    /// CASCADE`, which therefore waits for the tenant's open transactions).
    /// The role needs `SELECT` on the table: without it, as without `USAGE`
    /// on the schema, the transaction is refused with
    /// [`Error::SchemaAccessDenied`].
    ///
    /// By default a `TenantDb` already locks sea-orm-migration's ledger,
    /// `seaql_migrations`, in schemas that have it and the role may read, and
    /// checks other schemas with a `SELECT` the server must plan (1.2× a
    /// plain transaction). Name a table here when your ledger has another name
    /// ([`MigratorTrait::migration_table_name`]), or to refuse schemas that
    /// lack the table rather than check them the slower way.
    ///
    /// [`MigratorTrait::migration_table_name`]: https://docs.rs/sea-orm-migration/2/sea_orm_migration/migrator/trait.MigratorTrait.html#method.migration_table_name
    ///
    /// ```
    /// use sea_orm::ConnectionTrait;
    /// use tenancy::{TableName, Tenant};
    /// use tenancy::orm::{Error, TenantDb};
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let test_db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = test_db.connect().await?;
    /// conn.execute_unprepared(
    ///     "CREATE SCHEMA tenant_acme; CREATE TABLE tenant_acme.seaql_migrations (version text);
    ///      CREATE SCHEMA tenant_globex",
    /// ).await?;
    /// let db = TenantDb::new(conn)?.with_probe_table(TableName::new("seaql_migrations")?);
    ///
    /// db.begin(&Tenant::from_id("acme".parse()?)?).await?.commit().await?;
    /// let globex = Tenant::from_id("globex".parse()?)?; // a schema, but never migrated
    /// assert!(matches!(db.begin(&globex).await, Err(Error::ProbeTableMissing { .. })));
    /// let ghost = Tenant::from_id("ghost".parse()?)?; // no schema at all
    /// assert!(matches!(db.begin(&ghost).await, Err(Error::SchemaMissing { .. })));
    /// # db.connection().clone().close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn with_probe_table(mut self, table: TableName) -> Self {
        self.probe = SchemaProbe::Required(table);
        self
    }

    /// Settings applied to every transaction opened without explicit options.
    ///
    /// ```
    /// # fn demo(db: tenancy::orm::TenantDb) {
    /// use std::time::Duration;
    /// let db = db.with_options(tenancy::orm::ScopeOptions::new().statement_timeout(Duration::from_secs(10)));
    /// # }
    /// ```
    #[must_use]
    pub fn with_options(mut self, options: ScopeOptions) -> Self {
        self.options = options;
        self
    }

    /// Uses this registry for [`begin_registered`](Self::begin_registered) and
    /// [`resolve`](Self::resolve) (a custom table, cache TTL or capacity).
    ///
    /// ```
    /// # fn demo(db: tenancy::orm::TenantDb) {
    /// use std::time::Duration;
    /// use tenancy::orm::{RegistryConfig, TenantRegistry};
    /// let registry = TenantRegistry::with_config(
    ///     db.connection().clone(),
    ///     RegistryConfig::default().with_ttl(Duration::from_secs(5)),
    /// );
    /// let db = db.with_registry(registry);
    /// # }
    /// ```
    #[must_use]
    pub fn with_registry(mut self, registry: TenantRegistry) -> Self {
        // In pooler mode, whatever the registry was built with.
        self.registry = if self.is_behind_pooler() {
            registry.behind_pooler()
        } else {
            registry
        };
        self
    }

    /// The wrapped connection, for unscoped work on shared tables.
    ///
    /// ```
    /// # fn demo(db: tenancy::orm::TenantDb) {
    /// let shared: &sea_orm::DatabaseConnection = db.connection();
    /// # }
    /// ```
    #[must_use]
    pub fn connection(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// The tenant registry this handle resolves tenant ids with.
    ///
    /// ```
    /// # fn demo(db: tenancy::orm::TenantDb, id: tenancy::TenantId) {
    /// db.registry().invalidate(&id); // after suspending `id` in this process
    /// # }
    /// ```
    #[must_use]
    pub fn registry(&self) -> &TenantRegistry {
        &self.registry
    }

    /// The search path a transaction for `scope` pins.
    ///
    /// ```
    /// # fn demo(db: tenancy::orm::TenantDb) -> Result<(), Box<dyn std::error::Error>> {
    /// let tenant = tenancy::Tenant::from_id("acme".parse()?)?;
    /// assert_eq!(db.strict().search_path(&tenant).to_string(), r#""tenant_acme""#);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn search_path(&self, scope: &(impl TenantScope + ?Sized)) -> SearchPath {
        match &self.shared {
            Some(shared) => SearchPath::with_shared(scope.schema().clone(), shared.iter().cloned()),
            None => scope.search_path(),
        }
    }

    /// Opens a transaction scoped to `scope`, with this handle's options.
    ///
    /// ```
    /// use sea_orm::ConnectionTrait;
    /// use tenancy::Tenant;
    /// use tenancy::orm::Error;
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let test_db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = test_db.connect().await?;
    /// # conn.execute_unprepared("CREATE SCHEMA tenant_acme; CREATE TABLE tenant_acme.note (body text)").await?;
    /// # let db = tenancy::orm::TenantDb::new(conn.clone())?;
    /// # let acme = tenancy::Tenant::from_id("acme".parse()?)?;
    /// let txn = db.begin(&acme).await?;
    /// txn.execute_unprepared("INSERT INTO note VALUES ('hello')").await?; // tenant_acme.note
    /// txn.commit().await?;
    ///
    /// // No schema, no transaction: queries never fall through to `public`.
    /// let ghost = Tenant::from_id("ghost".parse()?)?;
    /// assert!(matches!(db.begin(&ghost).await, Err(Error::SchemaMissing { .. })));
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Connection`] when the pool has no connection to give,
    /// [`Error::SchemaMissing`] when the tenant's schema does not exist, and
    /// [`Error::SchemaAccessDenied`] when the role has no `USAGE` on it
    /// (checked inside the opening message of every transaction, so a schema
    /// dropped a moment ago by another process is refused at once),
    /// [`Error::Role`] when a configured role cannot be assumed,
    /// [`Error::Begin`] for any other failure of the opening statement.
    /// A failed or cancelled begin closes its connection rather than pooling
    /// it.
    pub async fn begin(
        &self,
        scope: &(impl TenantScope + ?Sized),
    ) -> Result<TenantTransaction, Error> {
        self.begin_with(scope, &self.options).await
    }

    /// Opens a transaction scoped to `scope`, with explicit options instead of
    /// this handle's.
    ///
    /// ```
    /// use sea_orm::{AccessMode, ConnectionTrait};
    /// use tenancy::orm::ScopeOptions;
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let test_db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = test_db.connect().await?;
    /// # conn.execute_unprepared("CREATE SCHEMA tenant_acme; CREATE TABLE tenant_acme.note (body text)").await?;
    /// # let db = tenancy::orm::TenantDb::new(conn.clone())?;
    /// # let acme = tenancy::Tenant::from_id("acme".parse()?)?;
    /// let read_only = ScopeOptions::new().access_mode(AccessMode::ReadOnly);
    /// let txn = db.begin_with(&acme, &read_only).await?;
    /// assert!(txn.execute_unprepared("INSERT INTO note VALUES ('no')").await.is_err());
    /// txn.rollback().await?;
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`begin`](Self::begin).
    pub async fn begin_with(
        &self,
        scope: &(impl TenantScope + ?Sized),
        options: &ScopeOptions,
    ) -> Result<TenantTransaction, Error> {
        let label = Arc::new(ScopeLabel::of(scope));
        let span = tracing::info_span!(
            "tenant_transaction",
            tenant = label.tenant.as_ref().map(TenantId::as_str),
            schema = label.schema.as_str(),
        );
        let path = self.search_path(scope);
        let role = options.role_name();
        let (check, may_fall_back) = self.probe.check(path.tenant(), role);
        let begin_sql = options.begin_statement(&path, check);
        let required = self.probe.required_table();
        let opened = async {
            let mut conn = self.pool.acquire().await.map_err(|err| Error::Connection {
                scope: (*label).clone(),
                source: acquire_err(err),
            })?;
            if self.is_behind_pooler() {
                refuse_named_statements(&mut conn).map_err(|cached| {
                    Error::NamedStatementsBehindPooler {
                        scope: (*label).clone(),
                        cached,
                    }
                })?;
            }
            match ScopedConnection::open(conn, begin_sql, self.statements).await {
                Ok(opened) => Ok(opened),
                // The ledger is missing or out of reach: the SELECT check
                // tells whether the schema itself is, on the same connection.
                Err((mut failed, err)) if may_fall_back && lock_may_fall_back(&err) => {
                    self.probe.remember_without_ledger(path.tenant(), role);
                    let select = options.begin_statement(&path, SchemaCheck::Select);
                    match failed.begin_again(select).await {
                        Ok(()) => Ok(failed),
                        Err(err) => Err(begin_error(&label, options, None, err)),
                    }
                }
                Err((_discarded, err)) => Err(begin_error(&label, options, required, err)),
            }
        }
        .instrument(span.clone())
        .await?;
        Ok(TenantTransaction::new(opened, label, span))
    }

    /// Runs `callback` in a transaction scoped to `scope`: commits when it
    /// returns `Ok`, rolls back when it returns `Err`. A panic inside it, or
    /// dropping the returned future, rolls back too.
    ///
    /// `E` is the callback's error type; scoping errors convert into it
    /// (`DbErr` works, as does any error with `From<tenancy_sea_orm::Error>`).
    ///
    /// ```
    /// use sea_orm::{ConnectionTrait, DbErr};
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let test_db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = test_db.connect().await?;
    /// # conn.execute_unprepared("CREATE SCHEMA tenant_acme; CREATE TABLE tenant_acme.note (body text)").await?;
    /// # let db = tenancy::orm::TenantDb::new(conn.clone())?;
    /// # let acme = tenancy::Tenant::from_id("acme".parse()?)?;
    /// let result = db
    ///     .transaction::<_, (), DbErr>(&acme, async |txn| {
    ///         txn.execute_unprepared("INSERT INTO note VALUES ('undone')").await?;
    ///         Err(DbErr::Custom("changed my mind".into())) // rolls the insert back
    ///     })
    ///     .await;
    /// assert!(result.is_err());
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The callback's error (even when the rollback after it fails, say on a
    /// lost connection: that failure is logged), or the scoping or commit
    /// error converted into `E`. When the callback returns `Ok` after a
    /// statement failed (its error ignored), PostgreSQL cannot commit:
    /// [`Error::CommitRolledBack`], nothing was saved.
    pub async fn transaction<F, T, E>(
        &self,
        scope: &(impl TenantScope + ?Sized),
        callback: F,
    ) -> Result<T, E>
    where
        F: TransactionCallback<T, E>,
        T: Send,
        E: From<Error> + Send,
    {
        let txn = self.begin(scope).await?;
        match callback(&txn).await {
            Ok(value) => {
                txn.end(true).await?;
                Ok(value)
            }
            Err(err) => {
                txn.rollback_after_error().await;
                Err(err)
            }
        }
    }

    /// Does nothing: every transaction checks its schema (existence and
    /// `USAGE`) inside its opening message, so there is nothing to forget.
    /// Earlier versions trusted a schema seen to exist for a minute.
    ///
    /// ```
    /// # fn demo(db: tenancy::orm::TenantDb) -> Result<(), tenancy::NameError> {
    /// # #[allow(deprecated)]
    /// db.forget_schema(&"tenant_acme".parse()?); // not needed any more
    /// # Ok(()) }
    /// ```
    #[deprecated(note = "every transaction checks its schema; there is nothing to forget")]
    pub fn forget_schema(&self, schema: &SchemaName) {
        let _ = schema;
    }

    /// Looks `id` up in the registry (cached) and returns the tenant, only if
    /// it is active.
    ///
    /// ```
    /// use tenancy::TenantScope;
    /// # use sea_orm::ConnectionTrait;
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let test_db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = test_db.connect().await?;
    /// # conn.execute_unprepared("CREATE SCHEMA tenant_acme; CREATE TABLE tenant_acme.note (body text)").await?;
    /// # let db = tenancy::orm::TenantDb::new(conn.clone())?;
    /// # let acme = tenancy::Tenant::from_id("acme".parse()?)?;
    /// # conn.execute_unprepared(
    /// #     "CREATE TABLE tenants (tenant_id text PRIMARY KEY, schema_name text NOT NULL UNIQUE, status text NOT NULL, display_name text NOT NULL DEFAULT '', domain text UNIQUE);
    /// #      INSERT INTO tenants VALUES ('acme', 'tenant_acme', 'active')",
    /// # ).await?;
    /// let acme = db.resolve(&"acme".parse()?).await?;
    /// assert_eq!(acme.schema().as_str(), "tenant_acme");
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::UnknownTenant`], [`Error::Inaccessible`] (suspended,
    /// provisioning, deleted) or [`Error::Registry`].
    pub async fn resolve(&self, id: &TenantId) -> Result<Tenant, Error> {
        self.registry.resolve(id).await
    }

    /// Opens a transaction for a registered, active tenant, by id.
    ///
    /// ```
    /// use sea_orm::ConnectionTrait;
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let test_db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = test_db.connect().await?;
    /// # conn.execute_unprepared("CREATE SCHEMA tenant_acme; CREATE TABLE tenant_acme.note (body text)").await?;
    /// # let db = tenancy::orm::TenantDb::new(conn.clone())?;
    /// # let acme = tenancy::Tenant::from_id("acme".parse()?)?;
    /// # conn.execute_unprepared(
    /// #     "CREATE TABLE tenants (tenant_id text PRIMARY KEY, schema_name text NOT NULL UNIQUE, status text NOT NULL, display_name text NOT NULL DEFAULT '', domain text UNIQUE);
    /// #      INSERT INTO tenants VALUES ('acme', 'tenant_acme', 'active')",
    /// # ).await?;
    /// let txn = db.begin_registered(&"acme".parse()?).await?;
    /// txn.execute_unprepared("INSERT INTO note VALUES ('hello')").await?;
    /// txn.commit().await?;
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`resolve`](Self::resolve), then as [`begin`](Self::begin).
    pub async fn begin_registered(&self, id: &TenantId) -> Result<TenantTransaction, Error> {
        let tenant = self.resolve(id).await?;
        self.begin(&tenant).await
    }

    /// [`transaction`](Self::transaction) for a registered, active tenant, by id.
    ///
    /// ```
    /// use sea_orm::{ConnectionTrait, DbErr};
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let test_db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = test_db.connect().await?;
    /// # conn.execute_unprepared("CREATE SCHEMA tenant_acme; CREATE TABLE tenant_acme.note (body text)").await?;
    /// # let db = tenancy::orm::TenantDb::new(conn.clone())?;
    /// # let acme = tenancy::Tenant::from_id("acme".parse()?)?;
    /// # conn.execute_unprepared(
    /// #     "CREATE TABLE tenants (tenant_id text PRIMARY KEY, schema_name text NOT NULL UNIQUE, status text NOT NULL, display_name text NOT NULL DEFAULT '', domain text UNIQUE);
    /// #      INSERT INTO tenants VALUES ('acme', 'tenant_acme', 'active')",
    /// # ).await?;
    /// db.transaction_registered::<_, _, DbErr>(&"acme".parse()?, async |txn| {
    ///     txn.execute_unprepared("INSERT INTO note VALUES ('hello')").await?;
    ///     Ok(())
    /// })
    /// .await?;
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`resolve`](Self::resolve), then as [`transaction`](Self::transaction).
    pub async fn transaction_registered<F, T, E>(&self, id: &TenantId, callback: F) -> Result<T, E>
    where
        F: TransactionCallback<T, E>,
        T: Send,
        E: From<Error> + Send,
    {
        let tenant = self.resolve(id).await?;
        self.transaction(&tenant, callback).await
    }
}

/// Turns a failed opening statement into the error that says what to do.
fn begin_error(
    label: &ScopeLabel,
    options: &ScopeOptions,
    probe: Option<&TableName>,
    err: sea_orm::sqlx::Error,
) -> Error {
    let scope = label.clone();
    let role = options.role_name();
    match (sqlx_sqlstate(&err), probe, role) {
        // Raised by the regnamespace check or the probe lock.
        (Some(sqlstate::INVALID_SCHEMA_NAME), _, _) => Error::SchemaMissing { scope },
        // The probe table is not in the tenant's schema.
        (Some(sqlstate::UNDEFINED_TABLE), Some(table), _) => Error::ProbeTableMissing {
            scope,
            table: table.clone(),
        },
        // Raised by the USAGE check.
        (Some(sqlstate::DIVISION_BY_ZERO), _, _) => Error::SchemaAccessDenied {
            scope,
            role: role.cloned(),
        },
        // From the probe lock's ACL check (SET ROLE's is raised by another
        // server function).
        (Some(sqlstate::INSUFFICIENT_PRIVILEGE), Some(_), _)
            if routine(&err) == Some("aclcheck_error") =>
        {
            Error::SchemaAccessDenied {
                scope,
                role: role.cloned(),
            }
        }
        // What SET ROLE raises for a role that is missing or not ours.
        (
            Some(
                sqlstate::UNDEFINED_OBJECT
                | sqlstate::INSUFFICIENT_PRIVILEGE
                | sqlstate::INVALID_PARAMETER_VALUE,
            ),
            _,
            Some(role),
        ) => Error::Role {
            scope,
            role: role.clone(),
            source: conn_err(err),
        },
        _ => Error::Begin {
            scope,
            source: DbErr::Conn(sea_orm::RuntimeErr::SqlxError(err.into())),
        },
    }
}

impl fmt::Debug for TenantDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantDb")
            .field("shared", &self.shared)
            .field("options", &self.options)
            .field("registry", &self.registry)
            .field("statements", &self.statements)
            .finish_non_exhaustive()
    }
}
