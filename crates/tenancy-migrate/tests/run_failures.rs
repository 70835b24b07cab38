//! Failing fleet runs are errors when asked (`FleetReport::into_result`),
//! and a rollback of a migration without `down()` says so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// `MigrationTrait` (async_trait) spells its argument `&SchemaManager`.
#![allow(elided_lifetimes_in_paths)]

mod support_migrate;

use sea_orm::{ConnectionTrait, DbErr};
use sea_orm_migration::{MigrationName, MigrationTrait, MigratorTrait, SchemaManager};
use support_migrate::{
    CrashMigrator, Migrator, TestDatabase, TestResult, add_tenants, fleet_on, id, table_exists,
    versions,
};
use tenancy_migrate::{Error, MigrateAll, NewTenant, Outcome};

#[tokio::test]
async fn a_run_with_failed_tenants_is_an_error_naming_each_of_them() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let conn = conn.clone();
        let fleet = fleet_on::<CrashMigrator>(&conn).await?;
        add_tenants(&conn, &["acme", "globex", "initech"]).await?;
        // initech migrates before the switch is on; the others then fail.
        fleet.migrate_tenant(&id("initech")).await?;
        conn.execute_unprepared("CREATE TABLE public.crash_switch ()")
            .await?;

        let report = fleet.migrate_all(MigrateAll::new()).await?;
        assert_eq!(report.failed().count(), 2, "{report}");
        let error = report.into_result().expect_err("two tenants failed");
        let failed: Vec<&str> = error.failures().map(|(t, _)| t.as_str()).collect();
        assert_eq!(failed, ["acme", "globex"]);
        let message = error.to_string();
        assert!(
            message.starts_with("migrating the fleet failed: 2 of 3 tenants failed"),
            "{message}"
        );
        for tenant in ["migrating tenant acme", "migrating tenant globex"] {
            assert!(message.contains(tenant), "{message}");
        }
        assert!(message.contains("simulated crash"), "{message}");
        assert!(!message.contains("initech"), "{message}");
        assert_eq!(error.report().succeeded().count(), 1);

        // One `?` in a function returning the crate's error.
        let as_crate_error: Error = error.into();
        assert!(matches!(&as_crate_error, Error::FleetRun(e) if e.failures().count() == 2));

        // Skipped tenants make it an error too.
        let report = fleet
            .migrate_all(MigrateAll::new().concurrency(1).stop_on_first_failure(true))
            .await?;
        let message = report.into_result().unwrap_err().to_string();
        assert!(
            message.contains("1 of 3 tenants failed, 2 not started after a failure"),
            "{message}"
        );

        // A run in which every tenant succeeds is the report itself.
        conn.execute_unprepared("DROP TABLE public.crash_switch")
            .await?;
        let report = fleet.migrate_all(MigrateAll::new()).await?.into_result()?;
        assert_eq!(report.succeeded().count(), 3);
        Ok(())
    })
    .await
}

const NO_DOWN: &str = "m0002_add_index_without_down";

/// A migration that, as many do, has no `down()`.
struct AddIndexWithoutDown;

impl MigrationName for AddIndexWithoutDown {
    fn name(&self) -> &str {
        NO_DOWN
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddIndexWithoutDown {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("CREATE TABLE tags (name text PRIMARY KEY)")
            .await
            .map(drop)
    }
}

struct NoDownMigrator;

impl MigratorTrait for NoDownMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut migrations = Migrator::migrations();
        migrations.truncate(1);
        migrations.push(Box::new(AddIndexWithoutDown));
        migrations
    }
}

#[tokio::test]
async fn rolling_back_a_migration_without_down_says_rollback_needs_it() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let conn = conn.clone();
        let fleet = fleet_on::<NoDownMigrator>(&conn).await?;
        let acme = id("acme");
        fleet.create(&acme, NewTenant::new()).await?;
        let before = versions(&conn, "tenant_acme").await?;

        let error = fleet.rollback_tenant(&acme, 2).await.unwrap_err();
        match &error {
            Error::RollbackUnsupported {
                tenant, migration, ..
            } => {
                assert_eq!(tenant, &acme);
                assert_eq!(migration.as_deref(), Some(NO_DOWN));
            }
            other => panic!("expected RollbackUnsupported, got {other:?}"),
        }
        let message = error.to_string();
        assert!(
            message.contains("tenant acme")
                && message.contains(NO_DOWN)
                && message.contains("rollback needs a down()"),
            "{message}"
        );
        assert!(!message.contains("We Don't Do That Here"), "{message}");
        // Nothing was reverted: the table and the ledger are as they were.
        assert!(table_exists(&conn, "tenant_acme", "tags").await?);
        assert_eq!(versions(&conn, "tenant_acme").await?, before);

        // Across the fleet: the tenant's failure, and an error with into_result.
        let report = fleet.rollback_all(1, MigrateAll::new()).await?;
        let tenant = report.tenant(&acme).unwrap();
        assert_eq!(tenant.outcome, Outcome::Failed);
        assert!(matches!(
            tenant.error,
            Some(Error::RollbackUnsupported { .. })
        ));
        let message = report.into_result().unwrap_err().to_string();
        assert!(
            message.starts_with("rolling back the fleet failed") && message.contains("down()"),
            "{message}"
        );
        Ok(())
    })
    .await
}

#[cfg(feature = "cli")]
#[tokio::test]
async fn the_cli_says_rollback_needs_down() -> TestResult {
    use tenancy_migrate::FleetConfig;
    use tenancy_migrate::cli::{AdminCli, Exit};

    TestDatabase::with(async |db, conn| -> TestResult {
        let conn = conn.clone();
        let fleet = fleet_on::<NoDownMigrator>(&conn).await?;
        fleet.create(&id("acme"), NewTenant::new()).await?;
        for args in [
            &["admin", "rollback", "--tenant", "acme"][..],
            &["admin", "rollback"],
        ] {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let exit = AdminCli::<NoDownMigrator>::new(FleetConfig::default())
                .run_with(
                    [&args[..1], &["--database-url", db.url()], &args[1..]].concat(),
                    &mut out,
                    &mut err,
                )
                .await;
            assert_eq!(exit, Exit::Failure);
            let err = String::from_utf8(err)?;
            let last = err.lines().last().unwrap_or_default();
            assert!(
                last.contains(NO_DOWN) && last.contains("rollback needs a down()"),
                "{err}"
            );
        }
        Ok(())
    })
    .await
}
