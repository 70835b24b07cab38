//! Requests run in a `tenant_request` span carrying the tenant, and what a
//! 500 keeps from the caller is logged instead.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use sea_orm::ConnectionTrait;
use tenancy_axum::{Error, ScopedDb, TenancyLayer};
use tenancy_core::resolve::{HeaderResolver, ResolverChain};
use tenancy_sea_orm::TenantDb;
use tenancy_testing::TestDatabase;
use tower::ServiceExt as _;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::{Layer, Registry};

/// A span's or event's name (events: their level) and fields.
type Record = (String, Vec<(String, String)>);

#[derive(Clone, Default)]
struct Log {
    spans: Arc<Mutex<Vec<Record>>>,
    events: Arc<Mutex<Vec<Record>>>,
}

struct Fields(Vec<(String, String)>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Log {
    fn on_new_span(&self, attrs: &Attributes<'_>, _id: &Id, _ctx: Context<'_, S>) {
        let mut fields = Fields(Vec::new());
        attrs.record(&mut fields);
        let name = attrs.metadata().name().to_owned();
        self.spans.lock().unwrap().push((name, fields.0));
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields(Vec::new());
        event.record(&mut fields);
        let level = event.metadata().level().to_string();
        self.events.lock().unwrap().push((level, fields.0));
    }
}

async fn missing_table(db: ScopedDb) -> Result<(), Error> {
    let txn = db.begin().await?;
    txn.execute_unprepared("SELECT * FROM missing_table")
        .await?;
    Ok(())
}

// A current-thread runtime keeps every poll on this thread, where the
// subscriber is installed.
#[tokio::test(flavor = "current_thread")]
async fn the_tenant_is_on_the_span_and_hidden_causes_are_logged() {
    let test_db = TestDatabase::create().await.unwrap();
    let conn = test_db.connect().await.unwrap();
    conn.execute_unprepared(
        "CREATE TABLE tenants (tenant_id text PRIMARY KEY, schema_name text NOT NULL UNIQUE,
                               status text NOT NULL, display_name text NOT NULL DEFAULT '', domain text UNIQUE);
         INSERT INTO tenants VALUES ('acme', 'tenant_acme', 'active');
         CREATE SCHEMA tenant_acme",
    )
    .await
    .unwrap();
    let db = TenantDb::new(conn.clone()).unwrap();
    let resolver = ResolverChain::new().with(HeaderResolver::default());
    let app = Router::new()
        .route("/fail", get(missing_table))
        .layer(TenancyLayer::new(db, resolver));

    let log = Log::default();
    let guard = tracing::subscriber::set_default(Registry::default().with(log.clone()));
    let request = http::Request::get("/fail")
        .header("x-tenant-id", "acme")
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    drop(guard);
    assert_eq!(response.status(), 500);

    let spans = log.spans.lock().unwrap().clone();
    let request_spans: Vec<_> = spans
        .iter()
        .filter(|(n, _)| n == "tenant_request")
        .collect();
    assert_eq!(request_spans.len(), 1, "{spans:?}");
    assert!(
        request_spans[0]
            .1
            .contains(&("tenant".into(), "acme".into())),
        "{spans:?}"
    );

    let events = log.events.lock().unwrap().clone();
    let errors: Vec<_> = events
        .iter()
        .filter(|(level, _)| *level == Level::ERROR.to_string())
        .collect();
    assert_eq!(errors.len(), 1, "{events:?}");
    let cause = errors[0].1.iter().find(|(name, _)| name == "cause");
    let cause = cause.map(|(_, value)| value.as_str()).unwrap_or_default();
    assert!(
        cause.contains("missing_table"),
        "the cause is logged: {events:?}"
    );

    conn.close().await.unwrap();
    test_db.close().await.unwrap();
}
