//! A small multi-tenant HTTP API with axum: one pool, one schema per tenant.
//!
//! `cargo run --example axum_app --features axum` connects to `DATABASE_URL`,
//! as your application would, creates the tenants `acme` and `globex` there
//! if they are missing, and serves on 127.0.0.1:3000 (or `$PORT`) until
//! Ctrl-C. With `DATABASE_URL` unset, a demo fallback
//! (`shared/demo_fallback.rs`, not for your application) uses a throwaway
//! database, as the quickstart does:
//!
//! ```text
//! curl -H 'Host: acme.example.test' -H 'X-Stub-Verified-Tenant: acme' \
//!      -H 'Content-Type: application/json' -d '{"name":"Rocket skates"}' \
//!      http://127.0.0.1:3000/projects
//! curl -H 'X-Tenant-ID: acme' -H 'X-Stub-Verified-Tenant: acme' http://127.0.0.1:3000/projects
//! ```
//!
//! Routes: `GET /projects`, `POST /projects` (`{"name": ...}` → 201),
//! `GET /projects/{id}` and `DELETE /projects/{id}` (404 when the id is not a
//! project of *this* tenant). Every handler runs in a transaction scoped to
//! the request's tenant, so another tenant's rows are unreachable.
//!
//! The web layer is `tenancy::web` (feature `axum`): a `TenancyLayer` finds
//! the tenant in the subdomain of `Host` under `example.test`
//! (`acme.example.test` → `acme`), falling back to the `X-Tenant-ID` header,
//! and refuses what it cannot serve: no tenant or a badly named one → 400,
//! no credentials → 401, an unregistered tenant **or one the caller does not
//! belong to** → 404 (the same answer, so callers cannot probe for tenant
//! ids), a suspended one → 403 (to its members), database down → 503.
//! Bodies are `{"error", "code"}` with fixed messages: SQL and schema names go
//! to the log, never to the caller.
//!
//! # ⚠️ STUB AUTHENTICATION — DO NOT COPY INTO PRODUCTION ⚠️
//!
//! **This example does not verify JWTs or any credential.** The
//! `X-Stub-Verified-Tenant` header stands in for the tenant claim of a
//! *verified* token, and any client can set it to anything. In production,
//! your authentication middleware verifies the token (signature, issuer,
//! audience and expiry) and inserts its claims as `VerifiedClaims`; never
//! take them from a header the client controls. What the example does show
//! is the access check itself: a request without the claim is refused with
//! 401, and a caller whose claim names another tenant than the one the
//! request addresses gets 404 — resolving a tenant is not authorization.

#![allow(clippy::print_stdout, clippy::print_stderr, unreachable_pub)]
// Migrations take `&SchemaManager` as sea-orm-migration documents them.
#![allow(elided_lifetimes_in_paths)]

use axum::extract::{Path, Request};
use axum::http::{StatusCode, request::Parts};
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectOptions, DatabaseConnection, DbErr};
use sea_orm::{EntityTrait, ModelTrait, QueryOrder};
use sea_orm_migration::prelude::*;
use tenancy::resolve::{HeaderResolver, ResolverChain, SubdomainResolver};
use tenancy::web::{Access, ScopedDb, TenancyLayer, VerifiedClaims};
use tenancy::{NewTenant, ScopeError, TenantDb, TenantFleet, TenantId};

/// Only for running without `DATABASE_URL`: see the file.
#[cfg_attr(test, allow(dead_code))]
#[path = "shared/demo_fallback.rs"]
mod demo_fallback;

/// The base domain whose subdomains name tenants.
pub(crate) const BASE_DOMAIN: &str = "example.test";
/// **STUB**: stands in for the tenant claim of a verified JWT. Not secure.
pub(crate) const STUB_VERIFIED_TENANT: &str = "x-stub-verified-tenant";

/// A tenant's projects. No schema name: the tenant's search path picks it.
mod project {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
    #[sea_orm(table_name = "project")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub name: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The one tenant migration: the `project` table.
pub(crate) struct CreateProject;

impl MigrationName for CreateProject {
    fn name(&self) -> &str {
        "m20260101_000001_create_project"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateProject {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let id = ColumnDef::new("id")
            .integer()
            .not_null()
            .auto_increment()
            .primary_key()
            .to_owned();
        let table = Table::create()
            .table("project")
            .col(id)
            .col(ColumnDef::new("name").string().not_null())
            .to_owned();
        manager.create_table(table).await
    }
}

/// The tenant migrator.
pub(crate) struct TenantMigrator;

impl MigratorTrait for TenantMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateProject)]
    }
}

/// The app's database, with the tenants `acme` and `globex`.
pub(crate) struct Demo {
    pub(crate) conn: DatabaseConnection,
    /// Used by the integration test, to suspend a tenant.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fleet: TenantFleet<TenantMigrator>,
    pub(crate) db: TenantDb,
}

/// Installs the registry and creates the two tenants where they are missing.
///
/// # Errors
/// When the database cannot be reached or a tenant cannot be created.
pub(crate) async fn setup(conn: DatabaseConnection) -> Result<Demo, Box<dyn std::error::Error>> {
    let fleet = TenantFleet::<TenantMigrator>::new(conn.clone());
    fleet.install().await?;
    for (id, name) in [("acme", "Acme Corp"), ("globex", "Globex")] {
        let id = TenantId::new(id)?;
        if fleet.get(&id).await?.is_none() {
            fleet
                .create(&id, NewTenant::new().display_name(name))
                .await?;
        }
    }
    let db = TenantDb::new(conn.clone())?;
    Ok(Demo { conn, fleet, db })
}

/// A handler's error: this app's own refusals, or a database error that
/// `tenancy::web::Error` answers (503 or 500) without leaking SQL.
#[derive(Debug)]
pub(crate) enum ApiError {
    NoProject(i32),
    EmptyName,
    Database(tenancy::web::Error),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            Self::NoProject(id) => (StatusCode::NOT_FOUND, format!("no project {id}")),
            Self::EmptyName => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "a project needs a name".into(),
            ),
            Self::Database(err) => return err.into_response(),
        };
        (status, Json(serde_json::json!({ "error": message }))).into_response()
    }
}

impl From<DbErr> for ApiError {
    fn from(err: DbErr) -> Self {
        Self::Database(err.into())
    }
}

impl From<ScopeError> for ApiError {
    fn from(err: ScopeError) -> Self {
        Self::Database(err.into())
    }
}

/// **STUB** authentication: trusts `X-Stub-Verified-Tenant` as if it were the
/// `tenant_id` claim of a verified token. A real app verifies a token here.
async fn stub_auth(mut request: Request, next: Next) -> Response {
    let claim = request.headers().get(STUB_VERIFIED_TENANT);
    if let Some(tenant) = claim.and_then(|v| v.to_str().ok()).map(str::to_owned) {
        let claims = VerifiedClaims::new().with("tenant_id", tenant);
        request.extensions_mut().insert(claims);
    }
    next.run(request).await
}

/// The access check: the caller's verified claim must name the tenant the
/// request addresses.
fn member_of(request: &Parts, tenant: &TenantId) -> Access {
    let claims = request.extensions.get::<VerifiedClaims>();
    match claims.and_then(|claims| claims.get("tenant_id")) {
        None => Access::Unauthenticated,
        Some(claim) if claim == tenant.as_str() => Access::Allow,
        Some(_) => Access::Deny,
    }
}

/// A new project.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct NewProject {
    name: String,
}

async fn list(db: ScopedDb) -> Result<Json<Vec<project::Model>>, ApiError> {
    let txn = db.begin().await?;
    let rows = project::Entity::find()
        .order_by_asc(project::Column::Id)
        .all(&txn)
        .await?;
    txn.commit().await?;
    Ok(Json(rows))
}

async fn create(
    db: ScopedDb,
    Json(new): Json<NewProject>,
) -> Result<(StatusCode, Json<project::Model>), ApiError> {
    if new.name.trim().is_empty() {
        return Err(ApiError::EmptyName);
    }
    let row = db
        .transaction::<_, _, ApiError>(async |txn| {
            let model = project::ActiveModel {
                name: Set(new.name),
                ..Default::default()
            };
            Ok(model.insert(txn).await?)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(row)))
}

async fn show(db: ScopedDb, Path(id): Path<i32>) -> Result<Json<project::Model>, ApiError> {
    let txn = db.begin().await?;
    let row = project::Entity::find_by_id(id).one(&txn).await?;
    txn.commit().await?;
    row.map(Json).ok_or(ApiError::NoProject(id))
}

async fn delete(db: ScopedDb, Path(id): Path<i32>) -> Result<StatusCode, ApiError> {
    db.transaction::<_, _, ApiError>(async |txn| {
        let row = project::Entity::find_by_id(id).one(txn).await?;
        row.ok_or(ApiError::NoProject(id))?.delete(txn).await?;
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The API: tenant from the subdomain of `Host`, then `X-Tenant-ID`; the
/// caller's (stub) claim must name it.
pub(crate) fn router(db: TenantDb) -> Router {
    let resolver = ResolverChain::new()
        .with(SubdomainResolver::new(BASE_DOMAIN))
        .with(HeaderResolver::default());
    Router::new()
        .route("/projects", get(list).post(create))
        .route("/projects/{id}", get(show).delete(delete))
        .layer(TenancyLayer::new(db, resolver).check_access(member_of))
        // Outermost, so it runs first: authentication before tenancy.
        .layer(from_fn(stub_auth))
}

/// Serves until Ctrl-C; any error is printed as one line (its message,
/// which says what to set), never as a Debug dump.
#[cfg_attr(test, allow(dead_code))]
#[tokio::main]
async fn main() -> std::process::ExitCode {
    match serve().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg_attr(test, allow(dead_code))]
async fn serve() -> Result<(), Box<dyn std::error::Error>> {
    // One pool for every tenant, from the application's configuration.
    let (conn, throwaway) = match std::env::var("DATABASE_URL") {
        Ok(url) => {
            println!("connecting to DATABASE_URL");
            let conn = tenancy::orm::connect(ConnectOptions::new(url))
                .await
                .map_err(|err| format!("{err} (check DATABASE_URL)"))?;
            (conn, None)
        }
        Err(std::env::VarError::NotPresent) => {
            let (conn, test_db) = demo_fallback::throwaway_database().await?;
            (conn, Some(test_db))
        }
        Err(err) => return Err(format!("DATABASE_URL: {err}").into()),
    };
    let demo = setup(conn).await?;
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!(
        "serving tenants acme and globex on http://{}",
        listener.local_addr()?
    );
    println!("(STUB auth: send X-Stub-Verified-Tenant; Ctrl-C to stop)");
    axum::serve(listener, router(demo.db))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    demo.conn.close().await?;
    if let Some(test_db) = throwaway {
        test_db.close().await?;
    }
    Ok(())
}
