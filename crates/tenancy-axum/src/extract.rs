//! Extractors for handlers behind the layer.

use axum::extract::FromRequestParts;
use http::request::Parts;
use tenancy_core::{Tenant, TenantId};
use tenancy_sea_orm::{ScopeOptions, TenantDb, TenantTransaction, TransactionCallback};

use crate::error::{Error, ErrorKind};

/// The request's tenant: registered, active, and allowed by the access check.
///
/// Extracting it from a request the [`TenancyLayer`](crate::TenancyLayer) did
/// not see is a bug in the router's setup: answered 500 and logged.
///
/// ```
/// use tenancy::web::CurrentTenant;
///
/// async fn whoami(CurrentTenant(tenant): CurrentTenant) -> String {
///     tenant.id().to_string()
/// }
/// # let _: axum::Router = axum::Router::new().route("/whoami", axum::routing::get(whoami));
/// ```
// Exhaustive on purpose, like axum's `Path(pub T)` and `State(pub S)`: a
// handler destructures it in its signature, which `#[non_exhaustive]` forbids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentTenant(pub Tenant);

impl<S: Send + Sync> FromRequestParts<S> for CurrentTenant {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Error> {
        let scoped = ScopedDb::from_parts(parts)?;
        Ok(Self(scoped.tenant))
    }
}

/// The request's tenant with the database handle: opens transactions scoped
/// to that tenant, and only to it.
///
/// A handler cannot pick another tenant by mistake: there is no tenant
/// argument. Cheap to clone, and `'static`, so background work can take it
/// along (see [`spawn_with_tenant`](crate::spawn_with_tenant)).
///
/// ```
/// use axum::Json;
/// use sea_orm::{ConnectionTrait, DbErr, Statement};
/// use tenancy::web::{Error, ScopedDb};
///
/// async fn count_notes(db: ScopedDb) -> Result<Json<i64>, Error> {
///     let txn = db.begin().await?; // BEGIN; SET LOCAL search_path TO "tenant_…", "public"
///     let sql = Statement::from_string(txn.get_database_backend(), "SELECT count(*) AS n FROM note");
///     let row = txn.query_one_raw(sql).await?.ok_or(DbErr::RecordNotFound("count".into()))?;
///     let n: i64 = row.try_get("", "n")?;
///     txn.commit().await?;
///     Ok(Json(n))
/// }
/// # let _: axum::Router = axum::Router::new().route("/notes/count", axum::routing::get(count_notes));
/// ```
#[derive(Debug, Clone)]
pub struct ScopedDb {
    db: TenantDb,
    tenant: Tenant,
}

impl ScopedDb {
    /// A handle on `db` scoped to `tenant`: what the layer hands to handlers.
    /// Build one yourself for background jobs and tests.
    ///
    /// ```
    /// # fn demo(db: tenancy::orm::TenantDb) -> Result<(), Box<dyn std::error::Error>> {
    /// let acme = tenancy::Tenant::from_id("acme".parse()?)?;
    /// let scoped = tenancy::web::ScopedDb::new(db, acme);
    /// assert_eq!(scoped.tenant().id().as_str(), "acme");
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn new(db: TenantDb, tenant: Tenant) -> Self {
        Self { db, tenant }
    }

    /// The tenant every transaction of this handle is scoped to.
    ///
    /// ```
    /// # fn demo(scoped: tenancy::web::ScopedDb) {
    /// tracing::info!(tenant = %scoped.tenant_id(), "exporting");
    /// # }
    /// ```
    #[must_use]
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// The tenant's id.
    ///
    /// ```
    /// # fn demo(scoped: tenancy::web::ScopedDb) {
    /// let id: &tenancy::TenantId = scoped.tenant_id();
    /// # }
    /// ```
    #[must_use]
    pub fn tenant_id(&self) -> &TenantId {
        self.tenant.id()
    }

    /// The unscoped handle, for work on shared tables or another tenant
    /// (an admin endpoint): nothing scopes it to this request's tenant.
    ///
    /// ```
    /// # fn demo(scoped: tenancy::web::ScopedDb) {
    /// let shared: &sea_orm::DatabaseConnection = scoped.db().connection();
    /// # }
    /// ```
    #[must_use]
    pub fn db(&self) -> &TenantDb {
        &self.db
    }

    /// Opens a transaction scoped to the tenant ([`TenantDb::begin`]).
    ///
    /// # Errors
    /// As [`TenantDb::begin`]; `?` turns it into an [`Error`] (503 when no
    /// connection could be had, 500 otherwise).
    ///
    /// ```
    /// # async fn demo(scoped: tenancy::web::ScopedDb) -> Result<(), tenancy::web::Error> {
    /// let txn = scoped.begin().await?;
    /// // … entity queries on &txn …
    /// txn.commit().await?;
    /// # Ok(()) }
    /// ```
    pub async fn begin(&self) -> Result<TenantTransaction, tenancy_sea_orm::Error> {
        self.db.begin(&self.tenant).await
    }

    /// Opens a transaction scoped to the tenant with explicit options
    /// ([`TenantDb::begin_with`]).
    ///
    /// # Errors
    /// As [`TenantDb::begin_with`].
    ///
    /// ```
    /// # async fn demo(scoped: tenancy::web::ScopedDb) -> Result<(), tenancy::web::Error> {
    /// let read_only = tenancy::orm::ScopeOptions::new().access_mode(sea_orm::AccessMode::ReadOnly);
    /// let txn = scoped.begin_with(&read_only).await?;
    /// txn.rollback().await?;
    /// # Ok(()) }
    /// ```
    pub async fn begin_with(
        &self,
        options: &ScopeOptions,
    ) -> Result<TenantTransaction, tenancy_sea_orm::Error> {
        self.db.begin_with(&self.tenant, options).await
    }

    /// Runs `callback` in a transaction scoped to the tenant: commits on
    /// `Ok`, rolls back on `Err`, a panic or cancellation
    /// ([`TenantDb::transaction`]).
    ///
    /// # Errors
    /// The callback's error, or the scoping or commit error converted into `E`
    /// (`E = tenancy_axum::Error` answers them without leaking internals).
    ///
    /// ```
    /// use sea_orm::ConnectionTrait;
    ///
    /// # async fn demo(scoped: tenancy::web::ScopedDb) -> Result<(), tenancy::web::Error> {
    /// scoped
    ///     .transaction::<_, _, tenancy::web::Error>(async |txn| {
    ///         txn.execute_unprepared("INSERT INTO note VALUES ('hello')").await?;
    ///         Ok(())
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn transaction<F, T, E>(&self, callback: F) -> Result<T, E>
    where
        F: TransactionCallback<T, E>,
        T: Send,
        E: From<tenancy_sea_orm::Error> + Send,
    {
        self.db.transaction(&self.tenant, callback).await
    }

    /// The handle the layer put in the request.
    fn from_parts(parts: &Parts) -> Result<Self, Error> {
        parts.extensions.get::<Self>().cloned().ok_or_else(|| {
            Error::with_source(
                ErrorKind::Internal,
                "no tenant on this request: the route is not behind tenancy_axum::TenancyLayer; \
                 add the layer to the router (Router::layer) before extracting the tenant",
            )
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ScopedDb {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Error> {
        Self::from_parts(parts)
    }
}
