//! Every scoped transaction runs in one `tenant_transaction` span carrying
//! the tenant and the schema, so logs and traces say whose data a statement
//! touched.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt;
use std::sync::{Arc, Mutex};

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use tenancy_core::{Tenant, TenantId};
use tenancy_sea_orm::TenantDb;
use tenancy_testing::TestDatabase;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::{Layer, Registry};

/// A span's name and its fields as (name, value) pairs.
type SpanRecord = (String, Vec<(String, String)>);

/// Every span opened.
#[derive(Clone, Default)]
struct SpanLog(Arc<Mutex<Vec<SpanRecord>>>);

struct FieldsVisitor(Vec<(String, String)>);

impl Visit for FieldsVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

impl<S: tracing::Subscriber> Layer<S> for SpanLog {
    fn on_new_span(&self, attrs: &Attributes<'_>, _id: &Id, _ctx: Context<'_, S>) {
        let mut visitor = FieldsVisitor(Vec::new());
        attrs.record(&mut visitor);
        self.0
            .lock()
            .unwrap()
            .push((attrs.metadata().name().to_owned(), visitor.0));
    }
}

// A current-thread runtime keeps every poll on this thread, where the
// subscriber is installed.
#[tokio::test(flavor = "current_thread")]
async fn one_span_per_transaction_with_tenant_and_schema() {
    let test_db = TestDatabase::create().await.unwrap();
    let conn = test_db.connect().await.unwrap();
    conn.execute_unprepared("CREATE SCHEMA tenant_acme")
        .await
        .unwrap();
    let db = TenantDb::new(conn.clone()).unwrap();
    let acme = Tenant::from_id(TenantId::new("acme").unwrap()).unwrap();

    let log = SpanLog::default();
    let subscriber = Registry::default().with(log.clone());
    let guard = tracing::subscriber::set_default(subscriber);
    for _ in 0..2 {
        let txn = db.begin(&acme).await.unwrap();
        txn.query_one_raw(Statement::from_string(DbBackend::Postgres, "SELECT 1"))
            .await
            .unwrap();
        txn.commit().await.unwrap();
    }
    drop(guard);

    let spans = log.0.lock().unwrap().clone();
    let scoped: Vec<_> = spans
        .iter()
        .filter(|(name, _)| name == "tenant_transaction")
        .collect();
    assert_eq!(scoped.len(), 2, "one span per transaction: {spans:?}");
    for (_, fields) in scoped {
        assert!(
            fields.contains(&("tenant".to_owned(), "acme".to_owned())),
            "{fields:?}"
        );
        assert!(
            fields.contains(&("schema".to_owned(), "tenant_acme".to_owned())),
            "{fields:?}"
        );
    }

    conn.close().await.unwrap();
    test_db.close().await.unwrap();
}
