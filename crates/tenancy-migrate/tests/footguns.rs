#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// `MigrationTrait` (async_trait) spells its argument `&SchemaManager`.
#![allow(elided_lifetimes_in_paths)]
//! Migration footguns: duplicate names, migrations applied but unknown to
//! the binary, drift through schema-local types, status lookups under a
//! non-C collation, and provisioning tenants in fleet runs.

mod support_migrate;

use sea_orm::{ConnectionTrait, DbErr};
use sea_orm_migration::{MigrationName, MigrationTrait, MigratorTrait, SchemaManager};
use tenancy_core::{SharedSchema, TenantStatus};
use tenancy_migrate::{Error, FleetConfig, MigrateAll, NewTenant, TenantFleet};
use tenancy_testing::TestDatabase;

use support_migrate::*;

const DUP: &str = "m0002_orders";

/// What `#[derive(DeriveMigrationName)]` gives two migrations of one file
/// (`m0002_orders.rs`): the same name.
macro_rules! same_file_migration {
    ($ty:ident, $sql:expr) => {
        struct $ty;
        impl MigrationName for $ty {
            fn name(&self) -> &str {
                DUP
            }
        }
        #[async_trait::async_trait]
        impl MigrationTrait for $ty {
            async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                manager
                    .get_connection()
                    .execute_unprepared($sql)
                    .await
                    .map(drop)
            }
        }
    };
}
same_file_migration!(CreateOrders, "CREATE TABLE orders (id int)");
same_file_migration!(CreateOrderLines, "CREATE TABLE order_lines (id int)");

struct V1;
impl MigratorTrait for V1 {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateProjects)]
    }
}

struct Duplicated;
impl MigratorTrait for Duplicated {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateProjects),
            Box::new(CreateOrders),
            Box::new(CreateOrderLines),
        ]
    }
}

fn is_duplicate(err: &Error) -> bool {
    matches!(
        err,
        Error::DuplicateMigrationName { name, first: 2, second: 3, .. } if name == DUP
    )
}

#[tokio::test]
async fn duplicate_migration_names_are_refused_before_anything_runs() -> TestResult {
    let (db, conn, v1) = fleet_db::<V1>().await?;
    v1.create(&id("old"), NewTenant::new()).await?;
    let fleet = TenantFleet::<Duplicated>::new(conn.clone());

    // An existing tenant: the second migration was silently skipped.
    let err = fleet.migrate_all(MigrateAll::new()).await.unwrap_err();
    assert!(is_duplicate(&err), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(DUP) && message.contains("2 and 3") && message.contains("Duplicated"),
        "{message}"
    );
    assert!(is_duplicate(
        &fleet.migrate_tenant(&id("old")).await.unwrap_err()
    ));
    assert_eq!(versions(&conn, "tenant_old").await?, Some(strings(&[M1])));

    // A new tenant: the ledger's raw duplicate-key error, now refused up
    // front, leaving nothing behind.
    let err = fleet
        .create(&id("new"), NewTenant::new())
        .await
        .unwrap_err();
    assert!(is_duplicate(&err), "{err:?}");
    assert_eq!(fleet.get(&id("new")).await?, None);
    assert!(!table_exists(&conn, "tenant_new", "seaql_migrations").await?);

    // Status, health and the shared schema say the same.
    assert!(is_duplicate(&fleet.fleet_status().await.unwrap_err()));
    assert!(is_duplicate(
        &fleet.tenant_status(&id("old")).await.unwrap_err()
    ));
    assert!(is_duplicate(&fleet.health().await.unwrap_err()));
    assert!(is_duplicate(
        &v1.migrate_shared::<Duplicated>().await.unwrap_err()
    ));
    assert!(!table_exists(&conn, "public", "orders").await?);

    conn.close().await?;
    db.close().await?;
    Ok(())
}

/// Records a migration this binary does not know in a tenant's ledger, as a
/// newer build would have.
async fn apply_unknown(conn: &sea_orm::DatabaseConnection, schema: &str) -> Result<(), DbErr> {
    conn.execute_unprepared(&format!(
        "INSERT INTO {schema}.seaql_migrations (version, applied_at) VALUES ('m9999_from_a_newer_build', 0)"
    ))
    .await
    .map(drop)
}

#[tokio::test]
async fn health_reports_migrations_applied_but_unknown() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let conn = conn.clone();
        let fleet = fleet_on::<V1>(&conn).await?;
        fleet.create(&id("acme"), NewTenant::new()).await?;
        fleet.create(&id("globex"), NewTenant::new()).await?;
        apply_unknown(&conn, "tenant_acme").await?;

        let health = fleet.health().await?;
        assert!(!health.is_healthy(), "{health}");
        assert_eq!(
            health.unknown,
            [(id("acme"), strings(&["m9999_from_a_newer_build"]))]
        );
        assert!(health.drifted.is_empty(), "{health}");
        assert!(
            health.to_string().contains("m9999_from_a_newer_build"),
            "{health}"
        );

        Ok(())
    })
    .await
}

#[tokio::test]
async fn refusing_a_tenant_with_unknown_migrations_names_the_unknown_one() -> TestResult {
    let (db, conn, v1) = fleet_db::<V1>().await?;
    v1.create(&id("acme"), NewTenant::new()).await?;
    apply_unknown(&conn, "tenant_acme").await?;
    // M2 is pending and innocent.
    let fleet = TenantFleet::<Migrator>::new(conn.clone());
    let err = fleet.migrate_tenant(&id("acme")).await.unwrap_err();
    assert!(
        matches!(&err, Error::Migration { migration: Some(m), .. } if m == "m9999_from_a_newer_build"),
        "{err:?}"
    );
    assert!(!err.to_string().contains(M2), "{err}");
    assert_eq!(
        versions(&conn, "tenant_acme").await?,
        Some(strings(&[M1, "m9999_from_a_newer_build"]))
    );

    conn.close().await?;
    db.close().await?;
    Ok(())
}

/// Columns typed by an enum, a domain, a composite type and an array of the
/// enum, all in the tenant's own schema, and by an enum of a shared schema.
struct TypedColumns;
impl MigrationName for TypedColumns {
    fn name(&self) -> &str {
        "m0002_typed_columns"
    }
}
#[async_trait::async_trait]
impl MigrationTrait for TypedColumns {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE TYPE mood AS ENUM ('ok', 'sad');
                 CREATE DOMAIN positive AS int CHECK (VALUE > 0);
                 CREATE TYPE pair AS (a int, b int);
                 CREATE TABLE things (
                     m mood, moods mood[], p positive, c pair, cur currency,
                     v varchar(20), n numeric(10, 2)
                 )",
            )
            .await
            .map(drop)
    }
}

struct Typed;
impl MigratorTrait for Typed {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateProjects), Box::new(TypedColumns)]
    }
}

#[tokio::test]
async fn drift_ignores_where_a_type_lives_and_still_sees_real_drift() -> TestResult {
    let db = TestDatabase::create().await?;
    let conn = db.connect().await?;
    conn.execute_unprepared("CREATE SCHEMA kit; CREATE TYPE kit.currency AS ENUM ('eur', 'usd')")
        .await?;
    let config = FleetConfig::default()
        .with_shared_schemas([SharedSchema::public(), SharedSchema::new("kit")?]);
    let fleet = TenantFleet::<Typed>::with_config(conn.clone(), config);
    fleet.install().await?;
    fleet.create(&id("acme"), NewTenant::new()).await?;
    fleet.create(&id("globex"), NewTenant::new()).await?;

    let health = fleet.health().await?;
    assert!(health.is_healthy(), "{health}");

    // A column changed by hand is drift.
    conn.execute_unprepared("ALTER TABLE tenant_globex.things ALTER COLUMN m TYPE text")
        .await?;
    let health = fleet.health().await?;
    assert_eq!(health.drifted, [id("globex")], "{health}");

    conn.close().await?;
    db.close().await?;
    Ok(())
}

#[tokio::test]
async fn status_finds_every_tenant_under_a_non_c_collation() -> TestResult {
    let db = TestDatabase::create_with_icu_locale("en-US").await?;
    let conn = db.connect().await?;
    let fleet = TenantFleet::<V1>::new(conn.clone());
    fleet.install().await?;
    let raws = ["a_c", "a-b", "aa", "b", "a"];
    for raw in raws {
        fleet.create(&id(raw), NewTenant::new()).await?;
    }
    let status = fleet.fleet_status().await?;
    for raw in raws {
        assert!(
            status.tenant(&id(raw)).is_some_and(|t| t.tenant == id(raw)),
            "{raw} not found"
        );
    }
    assert!(status.tenant(&id("zz")).is_none());

    conn.close().await?;
    db.close().await?;
    Ok(())
}

#[tokio::test]
async fn fleet_runs_migrate_provisioning_tenants_as_status_counts_them() -> TestResult {
    let (db, conn, v1) = fleet_db::<V1>().await?;
    v1.create(
        &id("staged"),
        NewTenant::new().status(TenantStatus::Provisioning),
    )
    .await?;
    let fleet = TenantFleet::<Migrator>::new(conn.clone());
    assert_eq!(fleet.fleet_status().await?.totals.behind, 1);

    let report = fleet.migrate_all(MigrateAll::new()).await?;
    assert!(report.is_success(), "{report}");
    let status = fleet.fleet_status().await?;
    assert!(status.is_up_to_date(), "{status}");
    let health = fleet.health().await?;
    assert!(health.is_healthy(), "{health}");
    // Opened later, it needs no migration step.
    fleet.resume(&id("staged")).await?;
    assert_eq!(
        versions(&conn, "tenant_staged").await?,
        Some(strings(&[M1, M2]))
    );

    conn.close().await?;
    db.close().await?;
    Ok(())
}

#[cfg(feature = "cli")]
#[tokio::test]
async fn cli_health_fails_on_migrations_applied_but_unknown() -> TestResult {
    use tenancy_migrate::cli::{Exit, run_cli_with};

    TestDatabase::with(async |db, conn| -> TestResult {
        let conn = conn.clone();
        let fleet = fleet_on::<Migrator>(&conn).await?;
        fleet.create(&id("acme"), NewTenant::new()).await?;
        apply_unknown(&conn, "tenant_acme").await?;
        let argv = ["admin", "--database-url", db.url(), "health"];
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let exit = run_cli_with::<Migrator, SharedMigrator, _, _>(argv, &mut out, &mut err).await;
        let out = String::from_utf8(out)?;
        assert_ne!(exit, Exit::Success, "{out}");
        assert!(out.contains("m9999_from_a_newer_build"), "{out}");

        Ok(())
    })
    .await
}
