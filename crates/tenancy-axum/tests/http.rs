//! The layer and extractors driven over HTTP (`tower::ServiceExt::oneshot`)
//! against a real PostgreSQL: every status code, bodies free of internals,
//! the current tenant, and scoped writes landing in the right schema.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::middleware::{Next, from_fn};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use http::request::Parts;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
};
use serde_json::Value;
use tenancy_axum::{
    Access, CurrentTenant, Error, ScopedDb, TenancyLayer, VerifiedClaims, current_tenant,
    spawn_with_tenant,
};
use tenancy_core::TenantId;
use tenancy_core::resolve::{HeaderResolver, ResolverChain};
use tenancy_sea_orm::TenantDb;
use tenancy_testing::TestDatabase;
use tower::ServiceExt as _;

/// Tenants in every state, one with a schema name that does not validate and
/// one registered without a schema. `public.note` is a canary: a scoped write
/// that fell through the search path would land there.
const SETUP: &str = "
    CREATE TABLE public.tenants (tenant_id text PRIMARY KEY, schema_name text NOT NULL UNIQUE,
                                 status text NOT NULL, display_name text NOT NULL DEFAULT '', domain text UNIQUE);
    INSERT INTO public.tenants VALUES
        ('acme', 'tenant_acme', 'active'), ('globex', 'tenant_globex', 'active'),
        ('initech', 'tenant_initech', 'suspended'), ('hooli', 'tenant_hooli', 'deleted'),
        ('newco', 'tenant_newco', 'provisioning'), ('broken', 'Secret Schema!', 'active'),
        ('ghost', 'tenant_ghost', 'active');
    CREATE TABLE public.note (id serial PRIMARY KEY, body text NOT NULL);
    CREATE SCHEMA tenant_acme; CREATE TABLE tenant_acme.note (id serial PRIMARY KEY, body text NOT NULL);
    CREATE SCHEMA tenant_globex; CREATE TABLE tenant_globex.note (id serial PRIMARY KEY, body text NOT NULL);
    CREATE SCHEMA tenant_initech; CREATE TABLE tenant_initech.note (id serial PRIMARY KEY, body text NOT NULL);
";

/// Words that must never reach a caller: SQL, schema names, server messages.
const INTERNALS: [&str; 12] = [
    "tenant_acme",
    "tenant_ghost",
    "tenant_newco",
    "tenant_initech",
    "schema",
    "Secret",
    "SELECT",
    "relation",
    "missing_table",
    "127.0.0.1",
    "refused",
    "postgres",
];

async fn database() -> (TestDatabase, DatabaseConnection) {
    let test_db = TestDatabase::create().await.unwrap();
    let conn = test_db.connect().await.unwrap();
    conn.execute_unprepared(SETUP).await.unwrap();
    (test_db, conn)
}

async fn finish(test_db: TestDatabase, conn: DatabaseConnection) {
    conn.close().await.unwrap();
    test_db.close().await.unwrap();
}

/// Stands in for an authentication layer: turns `x-test-org` into a
/// verified `org` claim. (A real one verifies a token first.)
async fn fake_auth(mut request: Request, next: Next) -> Response {
    let org = request
        .headers()
        .get("x-test-org")
        .and_then(|v| v.to_str().ok());
    if let Some(org) = org.map(str::to_owned) {
        request
            .extensions_mut()
            .insert(VerifiedClaims::new().with("org", org));
    }
    next.run(request).await
}

/// The caller's verified `org` must name the tenant.
fn same_org(request: &Parts, tenant: &TenantId) -> Access {
    match request
        .extensions
        .get::<VerifiedClaims>()
        .and_then(|c| c.get("org"))
    {
        None => Access::Unauthenticated,
        Some(org) if org == tenant.as_str() => Access::Allow,
        Some(_) => Access::Deny,
    }
}

async fn whoami(CurrentTenant(tenant): CurrentTenant) -> String {
    tenant.id().to_string()
}

async fn add_note(db: ScopedDb, body: String) -> Result<StatusCode, Error> {
    db.transaction::<_, _, Error>(async move |txn| {
        let insert = Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO note (body) VALUES ($1)",
            [body.into()],
        );
        txn.execute_raw(insert).await?;
        Ok(())
    })
    .await?;
    Ok(StatusCode::CREATED)
}

async fn list_notes(db: ScopedDb) -> Result<Json<Vec<String>>, Error> {
    let txn = db.begin().await?;
    let sql = Statement::from_string(DbBackend::Postgres, "SELECT body FROM note ORDER BY id");
    let rows = txn.query_all_raw(sql).await?;
    txn.commit().await?;
    let bodies = rows.iter().map(|row| row.try_get::<String>("", "body"));
    Ok(Json(bodies.collect::<Result<_, _>>()?))
}

/// A failing statement: its error names the table and carries the SQL.
async fn broken_sql(db: ScopedDb) -> Result<(), Error> {
    let txn = db.begin().await?;
    txn.execute_unprepared("SELECT * FROM missing_table")
        .await?;
    Ok(())
}

/// Code with no extractor at hand, deep in the call stack.
fn audit_label() -> String {
    current_tenant().map_or_else(|| "nobody".into(), |t| t.id().to_string())
}

async fn deep() -> String {
    audit_label()
}

async fn spawned() -> String {
    spawn_with_tenant(async { audit_label() }).await.unwrap()
}

async fn plain_spawn() -> String {
    tokio::spawn(async { audit_label() }).await.unwrap()
}

fn routes() -> Router {
    Router::new()
        .route("/whoami", get(whoami))
        .route("/notes", get(list_notes).post(add_note))
        .route("/broken-sql", get(broken_sql))
        .route("/deep", get(deep))
        .route("/spawned", get(spawned))
        .route("/plain-spawn", get(plain_spawn))
}

fn header_chain() -> ResolverChain {
    ResolverChain::new().with(HeaderResolver::default())
}

fn app(db: TenantDb) -> Router {
    let layer = TenancyLayer::new(db, header_chain()).check_access(same_org);
    routes().layer(layer).layer(from_fn(fake_auth))
}

/// A request for `path` addressing `tenant`, from a caller of `org`.
fn request(
    method: &str,
    path: &str,
    tenant: Option<&str>,
    org: Option<&str>,
    body: &str,
) -> Request {
    let mut builder = http::Request::builder().method(method).uri(path);
    if let Some(tenant) = tenant {
        builder = builder.header("x-tenant-id", tenant);
    }
    if let Some(org) = org {
        builder = builder.header("x-test-org", org);
    }
    builder.body(Body::from(body.to_owned())).unwrap()
}

#[derive(Debug)]
struct Reply {
    status: u16,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {self:?}"))
    }

    fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }

    /// Asserts the body is `{"error", "code"}` with no internals in it.
    fn assert_clean(&self) {
        let json = self.json();
        let keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["code", "error"], "{self:?}");
        for word in INTERNALS {
            assert!(!self.body.contains(word), "{word:?} leaked: {self:?}");
        }
    }
}

async fn send(app: &Router, request: Request) -> Reply {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    Reply {
        status,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

async fn get_as(app: &Router, path: &str, tenant: Option<&str>, org: Option<&str>) -> Reply {
    send(app, request("GET", path, tenant, org, "")).await
}

#[tokio::test]
async fn every_refusal_has_its_status_and_a_clean_body() {
    let (test_db, conn) = database().await;
    let app = app(TenantDb::new(conn.clone()).unwrap());

    let ok = get_as(&app, "/whoami", Some("acme"), Some("acme")).await;
    assert_eq!((ok.status, ok.body.as_str()), (200, "acme"));

    // 400: no tenant, or a badly named one (not echoed back).
    let reply = get_as(&app, "/whoami", None, Some("acme")).await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (400, "no_tenant"),
        "{reply:?}"
    );
    reply.assert_clean();
    let reply = get_as(&app, "/whoami", Some("Acme_Corp"), Some("acme")).await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (400, "invalid_tenant"),
        "{reply:?}"
    );
    assert!(!reply.body.contains("Acme_Corp"), "{reply:?}");
    reply.assert_clean();

    // 401: no credentials, whether the tenant exists or not.
    for tenant in ["acme", "initrode"] {
        let reply = get_as(&app, "/whoami", Some(tenant), None).await;
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (401, "unauthenticated"),
            "{reply:?}"
        );
        reply.assert_clean();
    }

    // 404: unknown, deleted, and someone else's tenant look exactly the same.
    let unknown = get_as(&app, "/whoami", Some("initrode"), Some("initrode")).await;
    assert_eq!(
        (unknown.status, unknown.code().as_str()),
        (404, "tenant_not_found")
    );
    unknown.assert_clean();
    for (tenant, org) in [
        ("acme", "globex"),
        ("initrode", "globex"),
        ("initech", "globex"),
        ("hooli", "hooli"),
    ] {
        let reply = get_as(&app, "/whoami", Some(tenant), Some(org)).await;
        assert_eq!(
            (reply.status, &reply.body),
            (404, &unknown.body),
            "{tenant} as {org}"
        );
    }

    // 403: a suspended tenant, told only to its own members.
    let reply = get_as(&app, "/whoami", Some("initech"), Some("initech")).await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (403, "tenant_suspended"),
        "{reply:?}"
    );
    reply.assert_clean();

    // 503: still being created.
    let reply = get_as(&app, "/whoami", Some("newco"), Some("newco")).await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (503, "unavailable"),
        "{reply:?}"
    );
    reply.assert_clean();

    // 500s that would leak: an unusable registry row, a registered tenant
    // without a schema, a failing statement.
    for (tenant, path) in [
        ("broken", "/whoami"),
        ("ghost", "/notes"),
        ("acme", "/broken-sql"),
    ] {
        let reply = get_as(&app, path, Some(tenant), Some(tenant)).await;
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (500, "internal"),
            "{reply:?}"
        );
        reply.assert_clean();
    }

    finish(test_db, conn).await;
}

#[tokio::test]
async fn distinguish_forbidden_answers_403_for_registered_tenants_only() {
    let (test_db, conn) = database().await;
    let db = TenantDb::new(conn.clone()).unwrap();
    let layer = TenancyLayer::new(db, header_chain())
        .check_access(same_org)
        .distinguish_forbidden();
    let app = routes().layer(layer).layer(from_fn(fake_auth));

    for (tenant, status, code) in [
        ("acme", 403, "forbidden"),
        ("initech", 403, "forbidden"), // suspended: its status stays hidden
        ("hooli", 404, "tenant_not_found"),
        ("initrode", 404, "tenant_not_found"),
    ] {
        let reply = get_as(&app, "/whoami", Some(tenant), Some("globex")).await;
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (status, code),
            "{tenant}"
        );
        reply.assert_clean();
    }
    finish(test_db, conn).await;
}

#[tokio::test]
async fn scoped_writes_land_in_the_tenant_schema() {
    let (test_db, conn) = database().await;
    let app = app(TenantDb::new(conn.clone()).unwrap());

    for (tenant, body) in [("acme", "a1"), ("globex", "g1"), ("acme", "a2")] {
        let reply = send(
            &app,
            request("POST", "/notes", Some(tenant), Some(tenant), body),
        )
        .await;
        assert_eq!(reply.status, 201, "{reply:?}");
    }
    // A refused caller writes nothing.
    let reply = send(
        &app,
        request("POST", "/notes", Some("acme"), Some("globex"), "x"),
    )
    .await;
    assert_eq!(reply.status, 404);

    let read = |schema: &str| {
        let sql = format!("SELECT body FROM {schema}.note ORDER BY id");
        let conn = conn.clone();
        async move {
            let rows = conn.query_all_raw(Statement::from_string(DbBackend::Postgres, sql));
            let rows = rows.await.unwrap();
            rows.iter()
                .map(|row| row.try_get::<String>("", "body").unwrap())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(read("tenant_acme").await, ["a1", "a2"]);
    assert_eq!(read("tenant_globex").await, ["g1"]);
    assert!(
        read("public").await.is_empty(),
        "nothing fell through to public"
    );

    let reply = get_as(&app, "/notes", Some("globex"), Some("globex")).await;
    assert_eq!(
        (reply.status, reply.json()),
        (200, serde_json::json!(["g1"]))
    );
    finish(test_db, conn).await;
}

#[tokio::test]
async fn the_current_tenant_reaches_deep_code_and_spawned_tasks() {
    let (test_db, conn) = database().await;
    let app = app(TenantDb::new(conn.clone()).unwrap());

    assert_eq!(current_tenant(), None);
    for tenant in ["acme", "globex"] {
        let reply = get_as(&app, "/deep", Some(tenant), Some(tenant)).await;
        assert_eq!((reply.status, reply.body.as_str()), (200, tenant));
        let reply = get_as(&app, "/spawned", Some(tenant), Some(tenant)).await;
        assert_eq!((reply.status, reply.body.as_str()), (200, tenant));
    }
    // A task-local: a plain `tokio::spawn` does not carry it.
    let reply = get_as(&app, "/plain-spawn", Some("acme"), Some("acme")).await;
    assert_eq!(reply.body, "nobody");
    assert_eq!(
        current_tenant(),
        None,
        "nothing is left behind after a request"
    );
    finish(test_db, conn).await;
}

#[tokio::test]
async fn an_unreachable_database_is_503() {
    // Nothing listens on port 1 of the loopback: every connection is refused.
    let mut options = ConnectOptions::new("postgres://postgres@127.0.0.1:1/postgres");
    options
        .connect_lazy(true)
        .acquire_timeout(Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(2));
    let conn = Database::connect(options).await.unwrap();
    let app = app(TenantDb::new(conn).unwrap());
    let reply = get_as(&app, "/whoami", Some("acme"), Some("acme")).await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (503, "unavailable"),
        "{reply:?}"
    );
    reply.assert_clean();
}

#[tokio::test]
async fn a_database_lost_after_the_lookup_is_503() {
    let (test_db, conn) = database().await;
    let app = app(TenantDb::new(conn.clone()).unwrap());
    // Cache acme's registry row, then take the pool away.
    let reply = get_as(&app, "/notes", Some("acme"), Some("acme")).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    conn.clone().close().await.unwrap();

    let reply = send(
        &app,
        request("POST", "/notes", Some("acme"), Some("acme"), "lost"),
    )
    .await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (503, "unavailable"),
        "{reply:?}"
    );
    reply.assert_clean();
    // Not cached: the registry lookup itself fails.
    let reply = get_as(&app, "/whoami", Some("globex"), Some("globex")).await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (503, "unavailable"),
        "{reply:?}"
    );
    test_db.close().await.unwrap();
}

#[tokio::test]
async fn a_route_outside_the_layer_is_a_500_not_a_panic() {
    let app = Router::new().route("/whoami", get(whoami));
    let reply = get_as(&app, "/whoami", Some("acme"), Some("acme")).await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (500, "internal"),
        "{reply:?}"
    );
    reply.assert_clean();
}
