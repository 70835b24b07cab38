//! Export, import, clone and move tell their lifecycle events after they
//! commit and write their audit rows, like every other lifecycle call; a
//! clone or a move tells only its own event, not its export's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support_migrate;

use std::sync::{Arc, Mutex};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use support_migrate::{Migrator, TestResult, id};
use tenancy_migrate::{Error, FleetConfig, ImportOptions, NewTenant, TenantFleet};
use tenancy_testing::TestDatabase;

type Log = Arc<Mutex<Vec<String>>>;

/// An audited fleet whose handler logs `action tenant schema`.
fn audited(conn: DatabaseConnection, log: &Log) -> TenantFleet<Migrator> {
    let log = Arc::clone(log);
    TenantFleet::<Migrator>::with_config(conn, FleetConfig::default().with_audit(true))
        .on_lifecycle(move |event| {
            log.lock().unwrap().push(format!(
                "{} {} {}",
                event.action(),
                event.tenant(),
                event.schema()
            ));
        })
}

fn take(log: &Log) -> Vec<String> {
    std::mem::take(&mut *log.lock().unwrap())
}

/// The audit rows after the `skip` oldest, as `action outcome tenant detail-field`.
async fn audit(conn: &DatabaseConnection, skip: i64, field: &str) -> Vec<String> {
    conn.query_all_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT action || ' ' || outcome || ' ' || tenant_id || ' ' || coalesce(detail ->> $2, '-') \
         FROM public.tenants_audit ORDER BY id OFFSET $1",
        [skip.into(), field.into()],
    ))
    .await
    .unwrap()
    .iter()
    .map(|row| row.try_get_by_index::<String>(0).unwrap())
    .collect()
}

#[tokio::test]
async fn transfers_tell_one_event_each_and_write_their_audit_rows() -> TestResult {
    let dbs = [TestDatabase::create().await?, TestDatabase::create().await?];
    let (here_conn, there_conn) = (dbs[0].connect().await?, dbs[1].connect().await?);
    let log = Log::default();
    let here = audited(here_conn.clone(), &log);
    let there = audited(there_conn.clone(), &log);
    here.install().await?;
    there.install().await?;
    here.create(&id("acme"), NewTenant::new().display_name("Acme"))
        .await?;
    assert_eq!(take(&log), ["created acme tenant_acme"]);
    assert_eq!(
        audit(&here_conn, 0, "schema").await,
        ["created succeeded acme tenant_acme"]
    );

    // Export: an event and a row written after it, naming the schema.
    let mut file = Vec::new();
    here.export_tenant(&id("acme"), &mut file).await?;
    assert_eq!(take(&log), ["exported acme tenant_acme"]);
    assert_eq!(
        audit(&here_conn, 1, "schema").await,
        ["exported succeeded acme tenant_acme"]
    );

    // Import under a new id, in the other database.
    let options = ImportOptions::new().as_tenant(id("acme2"));
    there.import_tenant(file.as_slice(), options).await?;
    assert_eq!(take(&log), ["imported acme2 tenant_acme2"]);
    assert_eq!(
        audit(&there_conn, 0, "exported_as").await,
        ["imported succeeded acme2 acme"]
    );

    // The same again collides: no event, one `failed` row, nothing else.
    let options = ImportOptions::new().as_tenant(id("acme2"));
    let again = there.import_tenant(file.as_slice(), options).await;
    assert!(
        matches!(again, Err(Error::TenantExists { .. })),
        "{again:?}"
    );
    assert_eq!(take(&log), Vec::<String>::new());
    assert_eq!(
        audit(&there_conn, 1, "schema").await,
        ["imported failed acme2 -"]
    );

    // Clone: one `cloned` event and row naming the source, no `exported`.
    here.clone_tenant(&id("acme"), &id("demo")).await?;
    assert_eq!(take(&log), ["cloned demo tenant_demo"]);
    assert_eq!(
        audit(&here_conn, 2, "source").await,
        ["cloned succeeded demo acme"]
    );

    // Move: `imported` there (that fleet's own event and row), `moved` here.
    here.move_tenant(&id("demo"), &there, "db-2").await?;
    assert_eq!(
        take(&log),
        ["imported demo tenant_demo", "moved demo tenant_demo"]
    );
    assert_eq!(
        audit(&here_conn, 3, "placement").await,
        ["moved succeeded demo db-2"]
    );
    assert_eq!(
        audit(&there_conn, 2, "exported_as").await,
        ["imported succeeded demo demo"]
    );

    // A failed move (the tenant is gone from here now) is a `failed` row, no event.
    let moved_again = here.move_tenant(&id("demo"), &there, "db-3").await;
    assert!(moved_again.is_err());
    assert_eq!(take(&log), Vec::<String>::new());
    assert_eq!(
        audit(&here_conn, 4, "schema").await,
        ["moved failed demo -"]
    );

    here_conn.close().await?;
    there_conn.close().await?;
    let [a, b] = dbs;
    a.close().await?;
    b.close().await?;
    Ok(())
}
