//! The axum example served on 127.0.0.1 and driven over real HTTP, against a
//! real PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../examples/axum_app.rs"]
mod app;

use serde_json::Value;
use std::net::SocketAddr;
use tenancy::TenantId;
use tenancy_testing::TestDatabase;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A response: status code and body parsed as JSON (`Null` when empty).
#[derive(Debug)]
struct Reply {
    status: u16,
    body: Value,
}

/// A tiny HTTP/1.1 client: one request per connection, read to EOF.
async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Reply {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        request.push_str("Content-Type: application/json\r\n");
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));

    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a complete response");
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned()))
    };
    Reply { status, body }
}

/// Headers for a caller of `tenant` addressing it by subdomain.
fn as_member(tenant: &str) -> [(String, String); 2] {
    [
        ("Host".into(), format!("{tenant}.{}", app::BASE_DOMAIN)),
        (app::STUB_VERIFIED_TENANT.into(), tenant.into()),
    ]
}

fn refs(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

fn names(reply: &Reply) -> Vec<&str> {
    let rows = reply.body.as_array().expect("a JSON array");
    rows.iter().map(|p| p["name"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn tenants_are_isolated_over_http() {
    let test_db = TestDatabase::create().await.unwrap();
    let demo = app::setup(test_db.connect().await.unwrap()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(axum::serve(listener, app::router(demo.db.clone())).into_future());

    let acme = as_member("acme");
    let acme = refs(&acme);
    let globex = as_member("globex");
    let globex = refs(&globex);
    let post = |headers, name: &str| {
        let body = serde_json::json!({ "name": name });
        async move { call(addr, "POST", "/projects", headers, Some(&body)).await }
    };

    // Each tenant creates projects in its own schema: acme 2, globex 5.
    for name in ["Rocket skates", "Giant magnet"] {
        let reply = post(&acme, name).await;
        assert_eq!(reply.status, 201, "{reply:?}");
        assert_eq!(reply.body["name"], name);
    }
    let mut globex_ids = Vec::new();
    for n in 1..=5 {
        let reply = post(&globex, &format!("Doomsday device {n}")).await;
        assert_eq!(reply.status, 201, "{reply:?}");
        globex_ids.push(reply.body["id"].as_i64().unwrap());
    }
    let globex_last = globex_ids.last().copied().unwrap();
    assert_eq!(globex_last, 5);

    // Lists are per tenant.
    let reply = call(addr, "GET", "/projects", &acme, None).await;
    assert_eq!(reply.status, 200);
    assert_eq!(names(&reply), ["Rocket skates", "Giant magnet"]);
    let reply = call(addr, "GET", "/projects", &globex, None).await;
    assert_eq!(names(&reply).len(), 5);

    // Reads of acme's own rows work; globex's id 5 does not exist for acme.
    let reply = call(addr, "GET", "/projects/1", &acme, None).await;
    assert_eq!(
        (reply.status, &reply.body["name"]),
        (200, &"Rocket skates".into())
    );
    let globex_path = format!("/projects/{globex_last}");
    let reply = call(addr, "GET", &globex_path, &acme, None).await;
    assert_eq!(reply.status, 404, "{reply:?}");
    let reply = call(addr, "DELETE", &globex_path, &acme, None).await;
    assert_eq!(reply.status, 404, "{reply:?}");
    let reply = call(addr, "GET", &globex_path, &globex, None).await;
    assert_eq!(reply.status, 200, "globex still has its project: {reply:?}");
    assert_eq!(reply.body["name"], "Doomsday device 5");

    // Delete within the tenant: 204, then 404.
    let reply = call(addr, "DELETE", "/projects/2", &acme, None).await;
    assert_eq!(reply.status, 204, "{reply:?}");
    let reply = call(addr, "DELETE", "/projects/2", &acme, None).await;
    assert_eq!(reply.status, 404);
    let reply = call(addr, "GET", "/projects/2", &globex, None).await;
    assert_eq!(reply.status, 200, "acme's delete left globex's row 2 alone");

    // The X-Tenant-ID fallback under the bare base domain.
    let bare = [
        ("Host", app::BASE_DOMAIN),
        ("X-Tenant-ID", "globex"),
        (app::STUB_VERIFIED_TENANT, "globex"),
    ];
    let reply = call(addr, "GET", "/projects", &bare, None).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(names(&reply).len(), 5);
    // The subdomain wins over the header.
    let both = [acme[0], ("X-Tenant-ID", "globex"), acme[1]];
    let reply = call(addr, "GET", "/projects", &both, None).await;
    assert_eq!(names(&reply), ["Rocket skates"]);

    // No tenant anywhere, or a badly named one: 400.
    let none = [
        ("Host", app::BASE_DOMAIN),
        (app::STUB_VERIFIED_TENANT, "acme"),
    ];
    let reply = call(addr, "GET", "/projects", &none, None).await;
    assert_eq!(reply.status, 400, "{reply:?}");
    assert_eq!(reply.body["code"], "no_tenant");
    for host in ["acme_.example.test", "a.b.example.test"] {
        let bad = [("Host", host), (app::STUB_VERIFIED_TENANT, "acme")];
        let reply = call(addr, "GET", "/projects", &bad, None).await;
        assert_eq!(reply.status, 400, "{host}: {reply:?}");
    }

    // An unregistered tenant: 404.
    let unknown = as_member("initech");
    let unknown = call(addr, "GET", "/projects", &refs(&unknown), None).await;
    assert_eq!(unknown.status, 404, "{unknown:?}");

    // STUB verified claim: missing → 401; another tenant → 404, the very
    // answer an unregistered tenant gets, so callers cannot probe for ids.
    let reply = call(addr, "GET", "/projects", &acme[..1], None).await;
    assert_eq!(reply.status, 401, "{reply:?}");
    let wrong = [acme[0], (app::STUB_VERIFIED_TENANT, "globex")];
    let reply = call(addr, "GET", "/projects", &wrong, None).await;
    assert_eq!(
        (reply.status, &reply.body),
        (404, &unknown.body),
        "{reply:?}"
    );
    let reply = post(&wrong, "Sneaky").await;
    assert_eq!(reply.status, 404, "{reply:?}");
    let reply = call(addr, "GET", "/projects", &acme, None).await;
    assert_eq!(
        names(&reply),
        ["Rocket skates"],
        "the refused POST wrote nothing"
    );

    // A suspended tenant: 403, and its data is untouched.
    let globex_id = TenantId::new("globex").unwrap();
    demo.fleet.suspend(&globex_id).await.unwrap();
    demo.db.registry().invalidate(&globex_id);
    let reply = call(addr, "GET", "/projects", &globex, None).await;
    assert_eq!(reply.status, 403, "{reply:?}");
    assert_eq!(reply.body["code"], "tenant_suspended");
    let reply = call(addr, "GET", "/projects", &acme, None).await;
    assert_eq!(names(&reply), ["Rocket skates"]);

    server.abort();
    let _ = server.await;
    demo.conn.close().await.unwrap();
    test_db.close().await.unwrap();
}
