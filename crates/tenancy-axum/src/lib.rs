//! axum and tower integration for tenancy: a layer that finds each request's
//! tenant, extractors for handlers, and error responses that never leak
//! internals.
//!
//! [`TenancyLayer`] resolves the tenant id of every request with a
//! [`ResolverChain`](tenancy_core::resolve::ResolverChain) (subdomain, path,
//! header, verified claim), runs your [access check](AccessCheck), looks the
//! tenant up in the registry ([`TenantDb::resolve`](tenancy_sea_orm::TenantDb::resolve),
//! cached) and refuses unknown, suspended and malformed tenants itself:
//!
//! | Status | When |
//! |--------|------|
//! | 400 | the request names no tenant, or names one badly |
//! | 401 | the access check wants credentials ([`Access::Unauthenticated`]) |
//! | 404 | no such tenant (or deleted), **or the access check denied the caller** |
//! | 403 | the tenant is suspended (told only to callers the check allows) |
//! | 503 | the database is unreachable, asked for a retry, or the tenant is still being created |
//! | 500 | anything else (a broken registry row, a route outside the layer) |
//!
//! An unknown tenant and someone else's tenant look the same (404, same
//! body), so callers cannot list tenant ids by probing; see
//! [`TenancyLayer`] and [`TenancyLayer::distinguish_forbidden`]. Bodies are
//! `{"error": <fixed message>, "code": <stable code>}`; SQL, schema names and
//! the database's messages go to the `tracing` log only ([`Error`]).
//!
//! Handlers then extract [`CurrentTenant`] or a [`ScopedDb`], which opens
//! transactions scoped to that tenant and to no other. Code deeper down can
//! read [`current_tenant`], and [`spawn_with_tenant`] carries it into
//! background tasks; requests run in a `tenant_request` span with a `tenant`
//! field.
//!
//! ```
//! use axum::{Json, Router, routing::get};
//! use sea_orm::ConnectionTrait;
//! use tenancy::web::{Error, ScopedDb, TenancyLayer};
//! use tenancy::resolve::{HeaderResolver, ResolverChain};
//! use tower::ServiceExt as _;
//!
//! /// Inserts a note into the request's tenant's schema.
//! async fn add_note(db: ScopedDb) -> Result<Json<String>, Error> {
//!     let txn = db.begin().await?;
//!     txn.execute_unprepared("INSERT INTO note VALUES ('hello')").await?;
//!     txn.commit().await?;
//!     Ok(Json(format!("noted for {}", db.tenant_id())))
//! }
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let test_db = tenancy_testing::TestDatabase::create().await?;
//! # let conn = test_db.connect().await?;
//! # conn.execute_unprepared(
//! #     "CREATE TABLE tenants (tenant_id text PRIMARY KEY, schema_name text NOT NULL UNIQUE, status text NOT NULL, display_name text NOT NULL DEFAULT '', domain text UNIQUE);
//! #      INSERT INTO tenants VALUES ('acme', 'tenant_acme', 'active');
//! #      CREATE SCHEMA tenant_acme; CREATE TABLE tenant_acme.note (body text)",
//! # ).await?;
//! let db = tenancy::orm::TenantDb::new(conn.clone())?;
//! let app = Router::new()
//!     .route("/notes", axum::routing::post(add_note))
//!     .layer(TenancyLayer::new(db, ResolverChain::new().with(HeaderResolver::default())));
//!
//! let request = |tenant: &str| {
//!     http::Request::post("/notes").header("x-tenant-id", tenant).body(axum::body::Body::empty())
//! };
//! assert_eq!(app.clone().oneshot(request("acme")?).await?.status(), 200);
//! assert_eq!(app.clone().oneshot(request("nobody")?).await?.status(), 404);
//! assert_eq!(app.oneshot(request("Not A Tenant")?).await?.status(), 400);
//! # conn.close().await?;
//! # test_db.close().await?;
//! # Ok(()) }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

mod access;
mod current;
mod error;
mod extract;
mod layer;
mod parts;

pub use access::{Access, AccessCheck, AllowAll};
pub use current::{current_tenant, scope_tenant, spawn_with_tenant};
pub use error::{Error, ErrorKind};
pub use extract::{CurrentTenant, ScopedDb};
pub use layer::{TenancyLayer, TenancyService};
pub use parts::VerifiedClaims;
