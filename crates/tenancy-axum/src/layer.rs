//! The tower layer: one tenant per request, or a refusal.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::response::{IntoResponse, Response};
use http::Request;
use http::request::Parts;
use tenancy_core::resolve::{Resolution, ResolveTenant, ResolverChain};
use tenancy_core::{TenantId, TenantStatus};
use tenancy_sea_orm::TenantDb;
use tower_layer::Layer;
use tower_service::Service;
use tracing::Instrument as _;

use crate::access::{Access, AccessCheck, AllowAll};
use crate::current::call_scoped;
use crate::error::{Error, ErrorKind};
use crate::extract::ScopedDb;
use crate::parts::HttpParts;

/// A tower layer that finds each request's tenant, checks it, and hands it
/// to the handlers, or answers the request itself with a safe error.
///
/// For every request, in this order:
/// 1. the [`ResolverChain`] reads the tenant id (host, path, header, verified
///    claim); none → 400 [`NoTenant`](ErrorKind::NoTenant), a badly named
///    one → 400 [`InvalidTenant`](ErrorKind::InvalidTenant);
/// 2. the [access check](Self::check_access) decides on the id alone:
///    [`Access::Unauthenticated`] → 401, [`Access::Deny`] → 404;
/// 3. the registry ([`TenantDb::resolve`], cached) decides: unknown or
///    deleted → 404, suspended → 403 [`Suspended`](ErrorKind::Suspended),
///    provisioning or database unavailable → 503, a broken registry → 500;
/// 4. the request goes on with a [`ScopedDb`] and
///    [`CurrentTenant`](crate::CurrentTenant) to extract, the
///    [current tenant](crate::current_tenant) set for its task, and a
///    `tenant_request` tracing span carrying `tenant`.
///
/// The layer does not rewrite the request's URI: with a
/// [`PathPrefixResolver`](tenancy_core::resolve::PathPrefixResolver), nest
/// the routes under the prefix (`Router::nest("/t/{tenant}", routes)`).
///
/// # Unknown and forbidden tenants look the same
///
/// A caller the access check denies gets the same 404, with the same body,
/// as a caller naming a tenant that does not exist, and the check runs before
/// the registry is read, so a refusal takes the same path whatever the
/// registry holds. Otherwise anyone could list a service's customers by
/// trying ids and watching 403s turn into 404s. Suspension is only disclosed
/// (403) to callers the check allows. If your tenant ids are public anyway
/// (they are the subdomains users type), [`distinguish_forbidden`](Self::distinguish_forbidden)
/// answers a denied caller on a registered tenant with 403.
///
/// # Errors never leak internals
///
/// Bodies are `{"error": <fixed message>, "code": <stable code>}` (see
/// [`ErrorKind`]); the cause of a 5xx (SQL, schema names, the server's
/// message) is logged with `tracing` at `error`, refusals at `debug`.
///
/// ```
/// use axum::{Router, routing::get};
/// use http::request::Parts;
/// use tenancy::web::{Access, CurrentTenant, TenancyLayer, VerifiedClaims};
/// use tenancy::{TenantId, TenantStatus};
/// use tenancy::resolve::{HeaderResolver, ResolverChain, SubdomainResolver};
///
/// # fn demo(db: tenancy::orm::TenantDb) {
/// let resolver = ResolverChain::new()
///     .with(SubdomainResolver::new("example.com"))
///     .with(HeaderResolver::default());
/// // The caller's verified `org` claim must name the tenant.
/// let members_only = |request: &Parts, tenant: &TenantId| {
///     match request.extensions.get::<VerifiedClaims>().and_then(|c| c.get("org")) {
///         None => Access::Unauthenticated,
///         Some(org) if org == tenant.as_str() => Access::Allow,
///         Some(_) => Access::Deny,
///     }
/// };
/// let app: Router = Router::new()
///     .route("/whoami", get(|CurrentTenant(t): CurrentTenant| async move { t.id().to_string() }))
///     .layer(TenancyLayer::new(db, resolver).check_access(members_only));
///     // .layer(your_auth_layer) goes here, outside: it runs first and inserts VerifiedClaims.
/// # }
/// ```
pub struct TenancyLayer<C = AllowAll> {
    db: TenantDb,
    resolver: ResolverChain,
    check: Arc<C>,
    distinguish_forbidden: bool,
}

/// What every request's service shares.
struct Shared<C> {
    db: TenantDb,
    resolver: ResolverChain,
    check: Arc<C>,
    distinguish_forbidden: bool,
}

impl TenancyLayer<AllowAll> {
    /// A layer resolving tenants with `resolver` and looking them up in
    /// `db`'s registry, letting every caller use every tenant: add a check
    /// with [`check_access`](Self::check_access).
    ///
    /// ```
    /// # fn demo(db: tenancy::orm::TenantDb) {
    /// use tenancy::resolve::{HeaderResolver, ResolverChain};
    /// let layer = tenancy::web::TenancyLayer::new(db, ResolverChain::new().with(HeaderResolver::default()));
    /// # }
    /// ```
    #[must_use]
    pub fn new(db: TenantDb, resolver: ResolverChain) -> Self {
        Self {
            db,
            resolver,
            check: Arc::new(AllowAll),
            distinguish_forbidden: false,
        }
    }
}

impl<C: AccessCheck> TenancyLayer<C> {
    /// The same layer with `check` deciding whether a request's caller may use
    /// the tenant it names (see [`AccessCheck`]).
    ///
    /// ```
    /// # fn demo(layer: tenancy::web::TenancyLayer) {
    /// use tenancy::web::Access;
    /// let layer = layer.check_access(|request: &http::request::Parts, _tenant: &tenancy::TenantId| {
    ///     if request.headers.contains_key("authorization") { Access::Allow } else { Access::Unauthenticated }
    /// });
    /// # }
    /// ```
    #[must_use]
    pub fn check_access<D: AccessCheck>(self, check: D) -> TenancyLayer<D> {
        TenancyLayer {
            db: self.db,
            resolver: self.resolver,
            check: Arc::new(check),
            distinguish_forbidden: self.distinguish_forbidden,
        }
    }

    /// Answers a caller the access check denies with 403 when the tenant is
    /// registered (404 otherwise), instead of 404 always. This tells callers
    /// which tenant ids exist: only for apps whose ids are public anyway.
    ///
    /// ```
    /// # fn demo(layer: tenancy::web::TenancyLayer) {
    /// let layer = layer.distinguish_forbidden();
    /// # }
    /// ```
    #[must_use]
    pub fn distinguish_forbidden(mut self) -> Self {
        self.distinguish_forbidden = true;
        self
    }
}

impl<C> Clone for TenancyLayer<C> {
    fn clone(&self) -> Self {
        Self {
            db: self.db.clone(),
            resolver: self.resolver.clone(),
            check: Arc::clone(&self.check),
            distinguish_forbidden: self.distinguish_forbidden,
        }
    }
}

impl<C> fmt::Debug for TenancyLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenancyLayer")
            .field("db", &self.db)
            .field("resolver", &self.resolver)
            .field("distinguish_forbidden", &self.distinguish_forbidden)
            .finish_non_exhaustive()
    }
}

impl<S, C> Layer<S> for TenancyLayer<C> {
    type Service = TenancyService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        TenancyService {
            inner,
            shared: Arc::new(Shared {
                db: self.db.clone(),
                resolver: self.resolver.clone(),
                check: Arc::clone(&self.check),
                distinguish_forbidden: self.distinguish_forbidden,
            }),
        }
    }
}

/// The service [`TenancyLayer`] wraps around a router or handler.
pub struct TenancyService<S, C = AllowAll> {
    inner: S,
    shared: Arc<Shared<C>>,
}

impl<S: Clone, C> Clone for TenancyService<S, C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: fmt::Debug, C> fmt::Debug for TenancyService<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenancyService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, C, B> Service<Request<B>> for TenancyService<S, C>
where
    S: Service<Request<B>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    C: AccessCheck,
    B: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The clone that was driven to readiness serves this request; the
        // fresh clone stays for the next (tower's documented pattern).
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let id = match shared.resolver.resolve(&HttpParts(&parts)) {
                Resolution::Found(id) => id,
                Resolution::NotPresent(why) => {
                    tracing::debug!(reason = %why, "no tenant in the request");
                    return Ok(Error::new(ErrorKind::NoTenant).into_response());
                }
                Resolution::Malformed(why) => {
                    return Ok(Error::with_source(ErrorKind::InvalidTenant, why).into_response());
                }
            };
            let span = tracing::info_span!("tenant_request", tenant = id.as_str());
            async move {
                let tenant = match admit(&shared, &parts, &id).await {
                    Ok(scoped) => scoped,
                    Err(refused) => return Ok(refused.into_response()),
                };
                let current = tenant.tenant().clone();
                parts.extensions.insert(tenant);
                let request = Request::from_parts(parts, body);
                call_scoped(current, || inner.call(request)).await
            }
            .instrument(span)
            .await
        })
    }
}

/// Steps 2 and 3: the access check, then the registry.
async fn admit<C: AccessCheck>(
    shared: &Shared<C>,
    parts: &Parts,
    id: &TenantId,
) -> Result<ScopedDb, Error> {
    let allowed = match shared.check.check(parts, id).await {
        Access::Allow => true,
        Access::Unauthenticated => return Err(Error::new(ErrorKind::Unauthenticated)),
        // Before the registry is read: the same path whatever it holds.
        Access::Deny if !shared.distinguish_forbidden => {
            return Err(Error::new(ErrorKind::NotFound));
        }
        Access::Deny => false,
    };
    match shared.db.resolve(id).await {
        Ok(tenant) if allowed => Ok(ScopedDb::new(shared.db.clone(), tenant)),
        // A denied caller learns "forbidden" for a registered tenant, never its status.
        Ok(_) => Err(Error::new(ErrorKind::Forbidden)),
        Err(tenancy_sea_orm::Error::Inaccessible { status, .. })
            if !allowed && status != TenantStatus::Deleted =>
        {
            Err(Error::new(ErrorKind::Forbidden))
        }
        Err(err) => Err(Error::from(err)),
    }
}
