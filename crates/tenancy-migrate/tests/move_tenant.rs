//! Moving a tenant between two real databases: the happy path, a failed
//! import that is undone at once, moves cut short at each step and
//! resumed, a conflicting copy that stops the move before anything is
//! dropped, and cancelling.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support_migrate;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use support_migrate::{Migrator, TestResult};
use tenancy_core::{TenantId, TenantStatus};
use tenancy_migrate::{Error, ImportOptions, NewTenant, StatusFilter, TenantFleet};
use tenancy_testing::TestDatabase;

/// Two databases with an installed fleet each; `acme` (active, two
/// projects) in the first.
struct Pair {
    dbs: [TestDatabase; 2],
    here: TenantFleet<Migrator>,
    there: TenantFleet<Migrator>,
}

impl Pair {
    async fn new() -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let dbs = [TestDatabase::create().await?, TestDatabase::create().await?];
        let here = TenantFleet::<Migrator>::new(dbs[0].connect().await?);
        let there = TenantFleet::<Migrator>::new(dbs[1].connect().await?);
        here.install().await?;
        there.install().await?;
        here.create(&acme(), NewTenant::new().display_name("Acme"))
            .await?;
        here.connection()
            .execute_unprepared("INSERT INTO tenant_acme.projects (name) VALUES ('a'), ('b')")
            .await?;
        Ok(Self { dbs, here, there })
    }

    async fn close(self) -> TestResult {
        self.here.connection().clone().close().await?;
        self.there.connection().clone().close().await?;
        let [a, b] = self.dbs;
        a.close().await?;
        b.close().await?;
        Ok(())
    }
}

fn acme() -> TenantId {
    "acme".parse().unwrap()
}

async fn one(conn: &DatabaseConnection, sql: &str) -> Option<String> {
    let row = conn
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql.to_owned()))
        .await
        .unwrap()?;
    row.try_get_by_index::<Option<String>>(0).unwrap()
}

async fn row_state(conn: &DatabaseConnection) -> Option<String> {
    one(
        conn,
        "SELECT concat_ws(' ', status, coalesce(placement, '-'), coalesce(moving_to, '-')) \
         FROM public.tenants WHERE tenant_id = 'acme'",
    )
    .await
}

async fn projects(conn: &DatabaseConnection) -> Option<String> {
    one(
        conn,
        "SELECT string_agg(name, ',' ORDER BY id) FROM tenant_acme.projects",
    )
    .await
}

#[tokio::test]
async fn a_move_copies_the_tenant_drops_it_here_and_records_where_it_went() -> TestResult {
    let pair = Pair::new().await?;
    let report = pair.here.move_tenant(&acme(), &pair.there, "db-2").await?;
    assert!(!report.resumed);
    assert_eq!(report.status, TenantStatus::Active);
    assert_eq!(report.import.as_ref().unwrap().rows, 4); // two projects, two ledger rows

    let (here, there) = (pair.here.connection(), pair.there.connection());
    assert_eq!(row_state(here).await.as_deref(), Some("active db-2 -"));
    assert_eq!(
        one(here, "SELECT to_regnamespace('tenant_acme')::text").await,
        None
    );
    assert_eq!(row_state(there).await.as_deref(), Some("active - -"));
    assert_eq!(projects(there).await.as_deref(), Some("a,b"));
    assert_eq!(pair.here.placement(&acme()).await?.as_deref(), Some("db-2"));

    // Fleet-wide calls here leave it out; calls on it say where it went.
    assert!(pair.here.list(StatusFilter::All).await?.tenants.is_empty());
    assert!(pair.here.health().await?.is_healthy());
    assert_eq!(pair.here.fleet_status().await?.totals.tenants, 0);
    let again = pair.here.move_tenant(&acme(), &pair.there, "db-3").await;
    assert!(
        matches!(&again, Err(Error::TenantMoved { placement, .. }) if placement == "db-2"),
        "{again:?}"
    );
    pair.close().await
}

#[tokio::test]
async fn a_failed_import_is_undone_at_once_and_a_retry_completes() -> TestResult {
    let pair = Pair::new().await?;
    let there = pair.there.connection();
    // The schema is taken there (unregistered): the import is refused.
    there
        .execute_unprepared("CREATE SCHEMA tenant_acme")
        .await?;
    let err = pair
        .here
        .move_tenant(&acme(), &pair.there, "db-2")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SchemaExists { .. }), "{err}");
    // The source is as it was: active, not moving, its data in place.
    let here = pair.here.connection();
    assert_eq!(row_state(here).await.as_deref(), Some("active - -"));
    assert_eq!(projects(here).await.as_deref(), Some("a,b"));
    assert_eq!(row_state(there).await, None);

    there.execute_unprepared("DROP SCHEMA tenant_acme").await?;
    pair.here.move_tenant(&acme(), &pair.there, "db-2").await?;
    assert_eq!(projects(there).await.as_deref(), Some("a,b"));
    pair.close().await
}

/// What step 1 of a move leaves behind when the process dies right after.
async fn cut_after_suspending(conn: &DatabaseConnection, to: &str) -> TestResult {
    conn.execute_unprepared(&format!(
        "UPDATE public.tenants SET moving_to = '{to}', status_before_move = status, \
         status = 'suspended' WHERE tenant_id = 'acme'"
    ))
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_move_cut_short_resumes_from_where_it_stopped() -> TestResult {
    let pair = Pair::new().await?;
    let (here, there) = (pair.here.connection(), pair.there.connection());

    // Cut after step 1: the retry resumes and imports.
    cut_after_suspending(here, "db-2").await?;
    let other = pair.here.move_tenant(&acme(), &pair.there, "db-3").await;
    assert!(
        matches!(&other, Err(Error::MoveInProgress { moving_to, .. }) if moving_to == "db-2"),
        "{other:?}"
    );
    let report = pair.here.move_tenant(&acme(), &pair.there, "db-2").await?;
    assert!(report.resumed);
    assert!(report.import.is_some());
    assert_eq!(row_state(there).await.as_deref(), Some("active - -"));
    assert_eq!(row_state(here).await.as_deref(), Some("active db-2 -"));
    pair.close().await?;

    // Cut after step 2 (the copy there committed): the retry checks the
    // copy and only finishes.
    let pair = Pair::new().await?;
    let (here, there) = (pair.here.connection(), pair.there.connection());
    cut_after_suspending(here, "db-2").await?;
    let mut file = Vec::new();
    pair.here.export_tenant(&acme(), &mut file).await?;
    pair.there
        .import_tenant(&file[..], ImportOptions::new().status(TenantStatus::Active))
        .await?;
    let report = pair.here.move_tenant(&acme(), &pair.there, "db-2").await?;
    assert!(report.resumed && report.import.is_none());
    assert_eq!(row_state(here).await.as_deref(), Some("active db-2 -"));
    assert_eq!(projects(there).await.as_deref(), Some("a,b"));
    pair.close().await
}

#[tokio::test]
async fn a_different_copy_there_stops_the_move_before_anything_is_dropped() -> TestResult {
    let pair = Pair::new().await?;
    let (here, there) = (pair.here.connection(), pair.there.connection());

    // A tenant of that id was there before: refused, and undone here.
    pair.there.create(&acme(), NewTenant::new()).await?;
    let err = pair
        .here
        .move_tenant(&acme(), &pair.there, "db-2")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TenantExists { .. }), "{err}");
    assert_eq!(row_state(here).await.as_deref(), Some("active - -"));

    // Resuming onto a copy that differs: nothing is dropped here.
    cut_after_suspending(here, "db-2").await?;
    let err = pair
        .here
        .move_tenant(&acme(), &pair.there, "db-2")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MoveConflict { .. }), "{err}");
    assert!(err.to_string().contains("projects=2"), "{err}");
    assert_eq!(projects(here).await.as_deref(), Some("a,b"));
    assert_eq!(projects(there).await, None);

    // Cancelled: the tenant has its status back here.
    let record = pair.here.cancel_move(&acme()).await?;
    assert_eq!(record.status, TenantStatus::Active);
    assert_eq!(row_state(here).await.as_deref(), Some("active - -"));
    pair.close().await
}
