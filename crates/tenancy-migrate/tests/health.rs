//! The health report against a real fleet with every kind of problem planted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// `SchemaManager<'_>` in an async_trait method fails with E0195; migrations
// are written the way sea-orm-migration documents them.
#![allow(elided_lifetimes_in_paths)]

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};
use sea_orm_migration::prelude::*;
use tenancy_core::{SchemaName, SearchPath, TenantId};
use tenancy_migrate::TenantFleet;
use tenancy_testing::TestDatabase;

struct CreateProjects;

// Named by hand: DeriveMigrationName takes the module's name, and both
// migrations live in this one file.
impl MigrationName for CreateProjects {
    fn name(&self) -> &str {
        "m0001_create_projects"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateProjects {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("CREATE TABLE projects (id serial PRIMARY KEY, name text NOT NULL)")
            .await
            .map(drop)
    }
}

struct AddCode;

impl MigrationName for AddCode {
    fn name(&self) -> &str {
        "m0002_add_code"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddCode {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE projects ADD COLUMN code text")
            .await
            .map(drop)
    }
}

struct OneStep;

impl MigratorTrait for OneStep {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateProjects)]
    }
}

struct Latest;

impl MigratorTrait for Latest {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateProjects), Box::new(AddCode)]
    }
}

/// A tenant set up by hand: schema, registry row, migrations of `M`.
async fn tenant<M: MigratorTrait>(conn: &DatabaseConnection, id: &str) {
    let schema = format!("tenant_{id}");
    register(conn, id, &schema).await;
    conn.execute_unprepared(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let txn = conn.begin().await.unwrap();
    let path = SearchPath::new(SchemaName::new(&schema).unwrap());
    txn.execute_unprepared(&path.set_local_statement())
        .await
        .unwrap();
    M::up(&txn, None).await.unwrap();
    txn.commit().await.unwrap();
}

async fn register(conn: &DatabaseConnection, id: &str, schema: &str) {
    conn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO public.tenants (tenant_id, schema_name, status) VALUES ($1, $2, 'active')",
        [id.into(), schema.into()],
    ))
    .await
    .unwrap();
}

fn id(raw: &str) -> TenantId {
    TenantId::new(raw).unwrap()
}

#[tokio::test]
async fn a_healthy_fleet_reports_healthy() {
    let test_db = TestDatabase::create().await.unwrap();
    let conn = test_db.connect().await.unwrap();
    let fleet = TenantFleet::<Latest>::new(conn.clone());
    fleet.install().await.unwrap();
    tenant::<Latest>(&conn, "acme").await;
    tenant::<Latest>(&conn, "globex").await;

    let report = fleet.health().await.unwrap();
    assert!(report.is_healthy(), "{report}");
    assert_eq!(report.tenants, 2);
    assert!(report.shadowing.is_empty(), "{report}");
    assert!(
        report.to_string().starts_with("2 tenants: healthy"),
        "{report}"
    );

    // The reference schema was built in a rolled-back transaction.
    let leftovers = conn
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenancy_health_%'",
        ))
        .await
        .unwrap();
    assert!(leftovers.is_empty());

    conn.close().await.unwrap();
    test_db.close().await.unwrap();
}

#[tokio::test]
async fn every_planted_problem_is_found() {
    let test_db = TestDatabase::create().await.unwrap();
    let conn = test_db.connect().await.unwrap();
    let fleet = TenantFleet::<Latest>::new(conn.clone());
    fleet.install().await.unwrap();

    tenant::<Latest>(&conn, "fine").await;
    tenant::<OneStep>(&conn, "behind").await;
    tenant::<Latest>(&conn, "edited").await;
    conn.execute_unprepared("ALTER TABLE tenant_edited.projects ADD COLUMN by_hand int")
        .await
        .unwrap();
    register(&conn, "ghost", "tenant_ghost").await; // no schema
    conn.execute_unprepared("CREATE SCHEMA tenant_stray") // prefix, unregistered
        .await
        .unwrap();
    conn.execute_unprepared(
        "CREATE SCHEMA legacy; CREATE TABLE legacy.seaql_migrations (version text primary key, applied_at bigint)",
    )
    .await
    .unwrap();
    conn.execute_unprepared("CREATE SCHEMA reporting; CREATE TABLE public.projects (id int)")
        .await
        .unwrap();

    let report = fleet.health().await.unwrap();
    assert!(!report.is_healthy());
    assert_eq!(report.tenants, 4);
    assert_eq!(
        report.missing_schemas,
        vec![(id("ghost"), "tenant_ghost".parse().unwrap())]
    );
    assert_eq!(report.orphan_schemas, vec!["legacy", "tenant_stray"]);
    assert_eq!(
        report.pending,
        vec![(id("behind"), vec!["m0002_add_code".to_owned()])]
    );
    assert_eq!(report.drifted, vec![id("edited")]);
    let shadowed: Vec<&TenantId> = report.shadowing.iter().map(|(t, _)| t).collect();
    assert_eq!(shadowed, vec![&id("behind"), &id("edited"), &id("fine")]);
    assert!(
        report
            .shadowing
            .iter()
            .all(|(_, tables)| tables == &["projects"])
    );

    let summary = report.to_string();
    for needle in [
        "4 tenants: problems found",
        "missing schema: tenant ghost",
        "orphan schema: legacy",
        "pending: tenant behind: m0002_add_code",
        "drifted: tenant edited",
        "warning: tenant fine has tables also in a shared schema: projects",
    ] {
        assert!(summary.contains(needle), "{needle:?} not in\n{summary}");
    }

    conn.close().await.unwrap();
    test_db.close().await.unwrap();
}
