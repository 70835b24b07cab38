#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Migration status of one tenant and of the whole fleet, for tenants up to
//! date, behind, without a migrations table, and without a schema.

mod support_migrate;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use tenancy_core::TenantStatus;
use tenancy_migrate::{Error, MigrateAll, SchemaState, TenantFleet};

use support_migrate::*;

/// `current` (all three migrations), `behind` (two), `bare` (a schema and no
/// migrations table), `ghost` (no schema), `future` (all three plus one this
/// build does not know), `gone` (soft-deleted), and a `seaql_migrations` in
/// public that must never be mistaken for a tenant's.
async fn mixed_fleet(conn: &DatabaseConnection) -> TestResult {
    add_tenants(conn, &["current", "behind", "bare", "future"]).await?;
    add_tenant_with(conn, "ghost", "active", false).await?;
    add_tenant_with(conn, "gone", "deleted", true).await?;
    TenantFleet::<Migrator>::new(conn.clone())
        .migrate_tenant(&id("behind"))
        .await?;
    let v3 = TenantFleet::<MigratorV3>::new(conn.clone());
    v3.migrate_tenant(&id("current")).await?;
    v3.migrate_tenant(&id("future")).await?;
    conn.execute_unprepared(
        "INSERT INTO tenant_future.seaql_migrations (version, applied_at) VALUES ('m0099_from_the_future', 0)",
    )
    .await?;
    v3.migrate_shared::<SharedMigrator>().await?;
    Ok(())
}

#[tokio::test]
async fn tenant_status_reports_applied_and_pending() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let conn = conn.clone();
        let fleet = fleet_on::<MigratorV3>(&conn).await?;
        mixed_fleet(&conn).await?;

        let current = fleet.tenant_status(&id("current")).await?;
        assert_eq!(current.applied, strings(&[M1, M2, M3]));
        assert!(current.pending.is_empty());
        assert!(current.is_up_to_date());
        assert_eq!(current.schema, schema("current"));

        let behind = fleet.tenant_status(&id("behind")).await?;
        assert_eq!(behind.applied, strings(&[M1, M2]));
        assert_eq!(behind.pending, strings(&[M3]));
        assert!(!behind.is_up_to_date());

        // No migrations table: everything pending (public's table is not theirs),
        // and reading the status created nothing.
        let bare = fleet.tenant_status(&id("bare")).await?;
        assert!(bare.applied.is_empty());
        assert_eq!(bare.pending, strings(&[M1, M2, M3]));
        assert!(!table_exists(&conn, "tenant_bare", "seaql_migrations").await?);

        let err = fleet.tenant_status(&id("ghost")).await.unwrap_err();
        assert!(matches!(err, Error::SchemaMissing { .. }), "{err:?}");
        let err = fleet.tenant_status(&id("nobody")).await.unwrap_err();
        assert!(matches!(err, Error::UnknownTenant { .. }), "{err:?}");
        // A version the migrator does not know is an error here (fleet_status lists it).
        let err = fleet.tenant_status(&id("future")).await.unwrap_err();
        assert!(
            matches!(&err, Error::Tenant { tenant, .. } if *tenant == id("future")),
            "{err:?}"
        );

        Ok(())
    })
    .await
}

#[tokio::test]
async fn fleet_status_reports_every_kind_of_tenant() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let conn = conn.clone();
        let fleet = fleet_on::<MigratorV3>(&conn).await?;
        mixed_fleet(&conn).await?;

        let status = fleet.fleet_status().await?;
        assert_eq!(status.migrations, strings(&[M1, M2, M3]));
        let ids: Vec<String> = status
            .tenants
            .iter()
            .map(|t| t.tenant.to_string())
            .collect();
        assert_eq!(
            ids,
            ["bare", "behind", "current", "future", "ghost"],
            "deleted tenants are left out"
        );

        let current = status.tenant(&id("current")).unwrap();
        assert_eq!(current.state, SchemaState::Migrated);
        assert_eq!(current.status, TenantStatus::Active);
        assert_eq!(current.applied, strings(&[M1, M2, M3]));
        assert!(current.pending.is_empty() && current.unknown.is_empty());
        assert!(current.is_up_to_date());

        let behind = status.tenant(&id("behind")).unwrap();
        assert_eq!(behind.applied, strings(&[M1, M2]));
        assert_eq!(behind.pending, strings(&[M3]));
        assert!(behind.is_behind());

        let bare = status.tenant(&id("bare")).unwrap();
        assert_eq!(bare.state, SchemaState::NoMigrationsTable);
        assert!(bare.applied.is_empty());
        assert_eq!(bare.pending, strings(&[M1, M2, M3]));
        assert!(bare.is_behind());

        let ghost = status.tenant(&id("ghost")).unwrap();
        assert_eq!(ghost.state, SchemaState::MissingSchema);
        assert!(!ghost.is_up_to_date() && !ghost.is_behind());

        let future = status.tenant(&id("future")).unwrap();
        assert!(future.is_up_to_date());
        assert_eq!(future.unknown, strings(&["m0099_from_the_future"]));

        let totals = status.totals;
        assert_eq!(totals.tenants, 5);
        assert_eq!(totals.up_to_date, 2);
        assert_eq!(totals.behind, 2);
        assert_eq!(totals.missing_table, 1);
        assert_eq!(totals.missing_schema, 1);
        assert_eq!(totals.with_unknown, 1);
        assert_eq!(totals.pending_migrations, 4);
        assert!(!status.is_up_to_date());
        assert_eq!(
            status.to_string(),
            "5 tenants: 2 up to date, 2 behind (4 pending migrations; 1 without a migrations table), \
             1 missing schema, 1 with unknown migrations"
        );

        // Migrating the fleet brings the others up to date; the ghost fails, and
        // so does `future` (sea-orm-migration refuses versions it does not know).
        let report = fleet.migrate_all(MigrateAll::new()).await?;
        let failed: Vec<String> = report.failed().map(|t| t.tenant.to_string()).collect();
        assert_eq!(failed, ["future", "ghost"]);
        let status = fleet.fleet_status().await?;
        assert_eq!(status.totals.up_to_date, 4);
        assert_eq!(status.totals.missing_schema, 1);

        Ok(())
    })
    .await
}

#[tokio::test]
async fn fleet_status_of_an_empty_fleet() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let conn = conn.clone();
        let fleet = fleet_on::<MigratorV3>(&conn).await?;
        let status = fleet.fleet_status().await?;
        assert!(status.tenants.is_empty());
        assert!(status.is_up_to_date());
        Ok(())
    })
    .await
}

/// 200 tenants in four states, made with batched raw SQL; the fleet view must
/// agree with the per-tenant view for every one of them.
#[tokio::test]
async fn fleet_status_over_200_tenants_agrees_with_tenant_status() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let conn = conn.clone();
        let fleet = fleet_on::<MigratorV3>(&conn).await?;
        let mut ddl = String::new();
        let mut expected = Vec::new();
        for i in 0..200 {
            let raw = format!("t{i:03}");
            let s = schema(&raw);
            let applied: &[&str] = match i % 4 {
                0 => &[M1, M2, M3],
                1 => &[M1],
                2 => &[],
                _ => &[M1, M2],
            };
            ddl.push_str(&format!("CREATE SCHEMA {};", s.quoted()));
            if i % 4 != 2 {
                ddl.push_str(&format!(
                    "CREATE TABLE {}.seaql_migrations (version varchar PRIMARY KEY, applied_at bigint NOT NULL);",
                    s.quoted()
                ));
                for version in applied {
                    ddl.push_str(&format!(
                        "INSERT INTO {}.seaql_migrations VALUES ('{version}', 0);",
                        s.quoted()
                    ));
                }
            }
            conn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO public.tenants (tenant_id, schema_name, status) VALUES ($1, $2, 'active')",
                [raw.as_str().into(), s.as_str().into()],
            ))
            .await?;
            expected.push((raw, applied.len()));
        }
        conn.execute_unprepared(&ddl).await?;

        let status = fleet.fleet_status().await?;
        assert_eq!(status.tenants.len(), 200);
        assert_eq!(status.totals.up_to_date, 50);
        assert_eq!(status.totals.behind, 150);
        assert_eq!(status.totals.missing_table, 50);
        assert_eq!(status.totals.pending_migrations, 50 * 2 + 50 * 3 + 50);
        for (line, (raw, applied)) in status.tenants.iter().zip(&expected) {
            assert_eq!(line.tenant.as_str(), raw);
            assert_eq!(line.applied.len(), *applied, "{raw}");
            let single = fleet.tenant_status(&line.tenant).await?;
            assert_eq!(single.applied, line.applied, "{raw}");
            assert_eq!(single.pending, line.pending, "{raw}");
        }

        Ok(())
    })
    .await
}
