//! Registry rows written by hand that do not validate: each is its tenant's
//! problem, never the whole fleet's, and no lifecycle call half-applies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support_migrate;

use sea_orm::{ConnectionTrait, DatabaseConnection};
use support_migrate::{Migrator, TestResult, add_tenants, fleet_db, id, query_all};
use tenancy_migrate::{Error, MigrateAll, StatusFilter};

/// Plants the bad rows: an invalid tenant id (with a newline), an invalid
/// schema name, and, with the status check dropped as a hand-made registry
/// may lack it, an unknown status and a NULL status.
async fn plant_bad_rows(conn: &DatabaseConnection) -> TestResult {
    conn.execute_unprepared(
        "ALTER TABLE public.tenants DROP CONSTRAINT tenants_status_check;
         ALTER TABLE public.tenants ALTER COLUMN status DROP NOT NULL;
         INSERT INTO public.tenants (tenant_id, schema_name, status) VALUES
             (E'bad id\n0 tenants: healthy', 'tenant_bad', 'active'),
             ('badschema', 'Tenant Evil', 'active'),
             ('badstatus', 'tenant_badstatus', 'archived'),
             ('nullstatus', 'tenant_nullstatus', NULL)",
    )
    .await?;
    Ok(())
}

const BAD: [&str; 4] = [
    "bad id\n0 tenants: healthy",
    "badschema",
    "badstatus",
    "nullstatus",
];

async fn raw_status(conn: &DatabaseConnection, tenant: &str) -> Option<String> {
    let rows = query_all(
        conn,
        "SELECT status FROM public.tenants WHERE tenant_id = $1",
        vec![tenant.into()],
    )
    .await
    .unwrap();
    rows[0].try_get("", "status").unwrap()
}

#[tokio::test]
async fn a_corrupt_row_is_its_tenants_problem_and_the_rest_goes_on() -> TestResult {
    let (db, conn, fleet) = fleet_db::<Migrator>().await?;
    add_tenants(&conn, &["acme", "globex"]).await?;
    plant_bad_rows(&conn).await?;

    let list = fleet.list(StatusFilter::All).await?;
    let good: Vec<&str> = list.tenants.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(good, ["acme", "globex"]);
    let bad: Vec<&str> = list.corrupt.iter().map(|c| c.tenant.as_str()).collect();
    assert_eq!(bad, BAD);
    assert!(
        list.corrupt[1].reason.contains("Tenant Evil"),
        "{:?}",
        list.corrupt[1]
    );

    let report = fleet.migrate_all(MigrateAll::new()).await?;
    assert_eq!(report.succeeded().count(), 2, "{report}");
    assert!(!report.is_success(), "{report}");
    let bad: Vec<&str> = report.corrupt.iter().map(|c| c.tenant.as_str()).collect();
    // Every corrupt row but the ones whose status says they are out of the
    // run: here all of them (an unreadable status is not a reason to skip).
    assert_eq!(bad, BAD, "{report}");
    assert!(
        report.to_string().contains("4 unreadable registry rows"),
        "{report}"
    );
    for tenant in ["acme", "globex"] {
        assert!(report.tenant(&id(tenant)).unwrap().is_success());
    }

    let status = fleet.fleet_status().await?;
    assert_eq!(status.totals.tenants, 2);
    assert_eq!(status.totals.up_to_date, 2);
    assert_eq!(status.corrupt.len(), 4);
    assert!(!status.is_up_to_date(), "{status}");

    let health = fleet.health().await?;
    assert_eq!(health.tenants, 2);
    assert_eq!(health.corrupt.len(), 4);
    assert!(!health.is_healthy(), "{health}");
    let text = health.to_string();
    // The id's newline is escaped: it cannot forge a report line.
    assert!(text.contains(r#""bad id\n0 tenants: healthy""#), "{text}");
    assert!(!text.lines().any(|l| l.starts_with("0 tenants")), "{text}");

    db.close().await?;
    Ok(())
}

#[tokio::test]
async fn a_lifecycle_update_on_a_corrupt_row_changes_nothing() -> TestResult {
    let (db, conn, fleet) = fleet_db::<Migrator>().await?;
    plant_bad_rows(&conn).await?;

    let err = fleet.suspend(&id("badschema")).await.unwrap_err();
    assert!(matches!(err, Error::CorruptRegistry { .. }), "{err}");
    assert_eq!(
        raw_status(&conn, "badschema").await.as_deref(),
        Some("active")
    );

    let err = fleet.resume(&id("badstatus")).await.unwrap_err();
    assert!(matches!(err, Error::CorruptRegistry { .. }), "{err}");
    assert_eq!(
        raw_status(&conn, "badstatus").await.as_deref(),
        Some("archived")
    );

    let err = fleet
        .rename(&id("badschema"), "New name")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::CorruptRegistry { .. }), "{err}");
    let rows = query_all(
        &conn,
        "SELECT display_name FROM public.tenants WHERE tenant_id = 'badschema'",
        vec![],
    )
    .await?;
    assert_eq!(rows[0].try_get::<String>("", "display_name")?, "");

    db.close().await?;
    Ok(())
}
