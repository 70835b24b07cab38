//! A small multi-tenant HTTP API with axum: one pool, one schema per tenant.
//!
//! `cargo run --example axum_app` takes a throwaway database (as the
//! quickstart does), creates the tenants `acme` and `globex`, and serves on
//! 127.0.0.1:3000 (or `$PORT`) until Ctrl-C:
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
//! The tenant comes from the subdomain of `Host` under `example.test`
//! (`acme.example.test` → `acme`), falling back to the `X-Tenant-ID` header.
//! No tenant → 400, a badly named one → 400, an unregistered one → 404, a
//! suspended one → 403.
//!
//! # ⚠️ STUB AUTHENTICATION — DO NOT COPY INTO PRODUCTION ⚠️
//!
//! **This example does not verify JWTs or any credential.** The
//! `X-Stub-Verified-Tenant` header stands in for the tenant claim of a
//! *verified* token, and any client can set it to anything. In production,
//! take the tenant claim from your authentication layer's verified claims
//! (signature, issuer, audience and expiry checked), never from a header the
//! client controls. What the example does show is the check itself: a
//! request without the claim is refused with 401, and a caller whose claim
//! names another tenant than the one the request addresses is refused with
//! 403 — resolving a tenant is not authorization.

#![allow(clippy::print_stdout, clippy::print_stderr, unreachable_pub)]
// Migrations take `&SchemaManager` as sea-orm-migration documents them.
#![allow(elided_lifetimes_in_paths)]

use axum::extract::{FromRequestParts, Path, State};
use axum::http::{StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, Database, DatabaseConnection, DbErr};
use sea_orm::{EntityTrait, ModelTrait, QueryOrder};
use sea_orm_migration::prelude::*;
use tenancy::core::resolve::{
    HeaderResolver, RequestParts, Resolution, ResolveTenant, ResolverChain, SubdomainResolver,
};
use tenancy::migrate::{NewTenant, TenantFleet};
use tenancy::sea_orm::{Error as TenancyError, TenantDb};
use tenancy::{Tenant, TenantId};
use tenancy_testing::TestDatabase;

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

/// A throwaway database with the tenants `acme` and `globex`.
pub(crate) struct Demo {
    pub(crate) test_db: TestDatabase,
    pub(crate) conn: DatabaseConnection,
    /// Used by the integration test, to suspend a tenant.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fleet: TenantFleet<TenantMigrator>,
    pub(crate) db: TenantDb,
}

/// Creates the throwaway database, the registry and the two tenants.
///
/// # Errors
/// When no PostgreSQL is reachable or a tenant cannot be created.
pub(crate) async fn setup() -> Result<Demo, Box<dyn std::error::Error>> {
    let test_db = TestDatabase::create().await?;
    let conn = Database::connect(test_db.connect_options()).await?;
    let fleet = TenantFleet::<TenantMigrator>::new(conn.clone());
    fleet.install().await?;
    for (id, name) in [("acme", "Acme Corp"), ("globex", "Globex")] {
        let new = NewTenant::new().display_name(name);
        fleet.create(&TenantId::new(id)?, new).await?;
    }
    let db = TenantDb::new(conn.clone())?;
    Ok(Demo {
        test_db,
        conn,
        fleet,
        db,
    })
}

/// An error answered as `{"error": "..."}` with its status.
#[derive(Debug)]
pub(crate) struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.1 });
        (self.0, Json(body)).into_response()
    }
}

impl From<DbErr> for ApiError {
    fn from(err: DbErr) -> Self {
        Self(StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
    }
}

impl From<TenancyError> for ApiError {
    fn from(err: TenancyError) -> Self {
        let status = match &err {
            TenancyError::UnknownTenant { .. } => StatusCode::NOT_FOUND,
            TenancyError::Inaccessible { .. } => StatusCode::FORBIDDEN,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self(status, err.to_string())
    }
}

/// The app's shared state: the pool and how to find a request's tenant.
#[derive(Clone, Debug)]
pub(crate) struct AppState {
    db: TenantDb,
    resolver: ResolverChain,
}

/// The parts of an axum request that tenancy's resolvers read.
struct HttpParts<'a>(&'a Parts);

impl RequestParts for HttpParts<'_> {
    fn host(&self) -> Option<&str> {
        let host = self.0.headers.get(header::HOST);
        host.and_then(|v| v.to_str().ok()).or(self.0.uri.host())
    }
    fn path(&self) -> Option<&str> {
        Some(self.0.uri.path())
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.0.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The request's tenant, registered, active, and matching the caller's claim.
#[derive(Debug)]
pub(crate) struct Scoped(pub(crate) Tenant);

impl FromRequestParts<AppState> for Scoped {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // STUB: a real app reads this claim from its auth layer's verified token.
        let claim = match HttpParts(parts).header(STUB_VERIFIED_TENANT) {
            Some(claim) => claim.to_owned(),
            None => return Err(ApiError(StatusCode::UNAUTHORIZED, "not signed in".into())),
        };
        let id = match state.resolver.resolve(&HttpParts(parts)) {
            Resolution::Found(id) => id,
            Resolution::NotPresent(_) => {
                let msg = "no tenant in the request".into();
                return Err(ApiError(StatusCode::BAD_REQUEST, msg));
            }
            Resolution::Malformed(why) => {
                return Err(ApiError(StatusCode::BAD_REQUEST, why.to_string()));
            }
        };
        let tenant = state.db.resolve(&id).await?;
        if claim != id.as_str() {
            let msg = format!("the caller does not belong to tenant {id}");
            return Err(ApiError(StatusCode::FORBIDDEN, msg));
        }
        Ok(Self(tenant))
    }
}

/// A new project.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct NewProject {
    name: String,
}

async fn list(
    State(app): State<AppState>,
    Scoped(tenant): Scoped,
) -> Result<Json<Vec<project::Model>>, ApiError> {
    let rows = app
        .db
        .transaction::<_, _, ApiError>(&tenant, |txn| {
            Box::pin(async move {
                let query = project::Entity::find().order_by_asc(project::Column::Id);
                Ok(query.all(txn).await?)
            })
        })
        .await?;
    Ok(Json(rows))
}

async fn create(
    State(app): State<AppState>,
    Scoped(tenant): Scoped,
    Json(new): Json<NewProject>,
) -> Result<(StatusCode, Json<project::Model>), ApiError> {
    if new.name.trim().is_empty() {
        let msg = "a project needs a name".into();
        return Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, msg));
    }
    let row = app
        .db
        .transaction::<_, _, ApiError>(&tenant, |txn| {
            Box::pin(async move {
                let model = project::ActiveModel {
                    name: Set(new.name),
                    ..Default::default()
                };
                Ok(model.insert(txn).await?)
            })
        })
        .await?;
    Ok((StatusCode::CREATED, Json(row)))
}

fn not_found(id: i32) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, format!("no project {id}"))
}

async fn show(
    State(app): State<AppState>,
    Scoped(tenant): Scoped,
    Path(id): Path<i32>,
) -> Result<Json<project::Model>, ApiError> {
    let row = app
        .db
        .transaction::<_, _, ApiError>(&tenant, |txn| {
            Box::pin(async move { Ok(project::Entity::find_by_id(id).one(txn).await?) })
        })
        .await?;
    row.map(Json).ok_or_else(|| not_found(id))
}

async fn delete(
    State(app): State<AppState>,
    Scoped(tenant): Scoped,
    Path(id): Path<i32>,
) -> Result<StatusCode, ApiError> {
    app.db
        .transaction::<_, _, ApiError>(&tenant, |txn| {
            Box::pin(async move {
                let row = project::Entity::find_by_id(id).one(txn).await?;
                row.ok_or_else(|| not_found(id))?.delete(txn).await?;
                Ok(())
            })
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The API: tenant from the subdomain of `Host`, then `X-Tenant-ID`.
pub(crate) fn router(db: TenantDb) -> Router {
    let resolver = ResolverChain::new()
        .with(SubdomainResolver::new(BASE_DOMAIN))
        .with(HeaderResolver::default());
    Router::new()
        .route("/projects", get(list).post(create))
        .route("/projects/{id}", get(show).delete(delete))
        .with_state(AppState { db, resolver })
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
    let demo = setup().await?;
    println!(
        "PostgreSQL: {} ({})",
        demo.test_db.source(),
        demo.test_db.name()
    );
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
    demo.test_db.close().await?;
    Ok(())
}
