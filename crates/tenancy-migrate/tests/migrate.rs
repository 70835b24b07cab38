#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Tenant migrations against a real server: one transaction per tenant, fleet
//! runs, failures, concurrency, crashes, rollbacks and the shared schema.

mod support_migrate;

use std::sync::{Arc, Mutex};

use sea_orm::ConnectionTrait;
use tenancy_core::SharedSchema;
use tenancy_migrate::{
    Direction, Error, FleetConfig, MigrateAll, MigrationEvent, Outcome, TenantFleet,
};

use support_migrate::*;

/// Owned copies of the events of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Started(String),
    Finished(String, Vec<String>),
    Failed(String, String),
    Skipped(String),
}

/// Each event with its progress (completed, total).
type Recorded = Arc<Mutex<Vec<(Seen, usize, usize)>>>;

fn recorder() -> (MigrateAll, Recorded) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let options = MigrateAll::new().on_event(move |event| {
        let entry = match event {
            MigrationEvent::Started { tenant, .. } => Seen::Started(tenant.to_string()),
            MigrationEvent::Finished {
                tenant, applied, ..
            } => Seen::Finished(tenant.to_string(), applied.to_vec()),
            MigrationEvent::Failed { tenant, error, .. } => {
                Seen::Failed(tenant.to_string(), error.to_string())
            }
            MigrationEvent::Skipped { tenant, .. } => Seen::Skipped(tenant.to_string()),
            _ => unreachable!("no other events"),
        };
        let progress = event.progress();
        sink.lock()
            .unwrap()
            .push((entry, progress.completed, progress.total));
    });
    (options, seen)
}

const SIX: [&str; 6] = ["a1", "a2", "a3", "a4", "a5", "a6"];

#[tokio::test]
async fn migrate_all_applies_every_migration_in_each_tenant_schema() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let conn = conn.clone();
        let fleet = fleet_on::<Migrator>(&conn).await?;
        add_tenants(&conn, &SIX).await?;

        let (options, seen) = recorder();
        // Spawned: the run's future is `Send`.
        let spawned = fleet.clone();
        let report = tokio::spawn(async move { spawned.migrate_all(options).await }).await??;

        assert!(report.is_success(), "{report}");
        assert_eq!(report.direction, Direction::Up);
        assert_eq!(report.tenants.len(), 6);
        assert_eq!(report.succeeded().count(), 6);
        assert_eq!(report.applied_total(), 12);
        let ids: Vec<String> = report
            .tenants
            .iter()
            .map(|t| t.tenant.to_string())
            .collect();
        assert_eq!(ids, SIX, "reports are ordered by tenant id");
        for tenant in &report.tenants {
            assert_eq!(tenant.outcome, Outcome::Succeeded);
            assert_eq!(tenant.applied, strings(&[M1, M2]));
            assert!(tenant.error.is_none());
            let schema = tenant.schema.as_str();
            assert_eq!(versions(&conn, schema).await?, Some(strings(&[M1, M2])));
            assert_eq!(
                column_nullable(&conn, schema, "projects", "code").await?,
                Some(true)
            );
        }
        // Nothing leaked into public.
        assert!(!table_exists(&conn, "public", "seaql_migrations").await?);
        assert!(!table_exists(&conn, "public", "projects").await?);
        let summary = report.to_string();
        assert!(
            summary.starts_with(
                "migrated 6 tenants: 6 succeeded, 0 failed, 0 skipped; 12 migrations applied in"
            ),
            "{summary}"
        );

        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 12, "{seen:?}");
        for raw in SIX {
            let started = seen
                .iter()
                .position(|(e, ..)| *e == Seen::Started(raw.into()));
            let finished = seen
                .iter()
                .position(|(e, ..)| *e == Seen::Finished(raw.into(), strings(&[M1, M2])));
            assert!(
                started.is_some() && finished.is_some() && started < finished,
                "{seen:?}"
            );
        }
        assert!(seen.iter().all(|(_, _, total)| *total == 6));
        let mut finished_counts: Vec<usize> = seen
            .iter()
            .filter(|(e, ..)| matches!(e, Seen::Finished(..)))
            .map(|(_, completed, _)| *completed)
            .collect();
        finished_counts.sort_unstable();
        assert_eq!(finished_counts, [1, 2, 3, 4, 5, 6]);

        // A second run has nothing to do.
        let again = fleet.migrate_all(MigrateAll::new()).await?;
        assert!(again.is_success());
        assert_eq!(again.applied_total(), 0);
        assert!(again.tenants.iter().all(|t| t.applied.is_empty()));

        Ok(())
    })
    .await
}

#[tokio::test]
async fn migrate_tenant_migrates_one_tenant_only() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let conn = conn.clone();
        let fleet = fleet_on::<Migrator>(&conn).await?;
        add_tenants(&conn, &["one", "two"]).await?;

        let report = fleet.migrate_tenant(&id("one")).await?;
        assert_eq!(report.outcome, Outcome::Succeeded);
        assert_eq!(report.applied, strings(&[M1, M2]));
        assert_eq!(report.schema, schema("one"));
        assert_eq!(
            versions(&conn, "tenant_one").await?,
            Some(strings(&[M1, M2]))
        );
        assert_eq!(versions(&conn, "tenant_two").await?, None);
        assert!(fleet.migrate_tenant(&id("one")).await?.applied.is_empty());

        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_migration_failing_for_one_tenant_rolls_back_that_tenant_whole() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let conn = conn.clone();
        let fleet = fleet_on::<Migrator>(&conn).await?;
        let tenants = ["b1", "b2", "b3", "b4"];
        add_tenants(&conn, &tenants).await?;
        assert!(fleet.migrate_all(MigrateAll::new()).await?.is_success());
        for raw in tenants {
            let code = if raw == "b2" { "NULL" } else { "'P-1'" };
            conn.execute_unprepared(&format!(
                "INSERT INTO {}.projects (name, code) VALUES ('first', {code})",
                schema(raw).quoted()
            ))
            .await?;
        }

        let v3 = TenantFleet::<MigratorV3>::new(conn.clone());
        let (options, seen) = recorder();
        let report = v3.migrate_all(options).await?;
        assert!(!report.is_success());
        assert_eq!(report.succeeded().count(), 3);
        let failed: Vec<_> = report.failed().collect();
        assert_eq!(failed.len(), 1);
        let failure = failed[0];
        assert_eq!(failure.tenant, id("b2"));
        assert_eq!(failure.outcome, Outcome::Failed);
        assert!(failure.applied.is_empty());
        match failure
            .error
            .as_ref()
            .expect("a failed tenant has its error")
        {
            Error::Migration {
                tenant,
                schema: failed_schema,
                migration,
                source,
            } => {
                assert_eq!(*tenant, id("b2"));
                assert_eq!(*failed_schema, schema("b2"));
                assert_eq!(migration.as_deref(), Some(M3));
                assert!(source.to_string().contains("null values"), "{source}");
            }
            other => panic!("unexpected error {other:?}"),
        }
        let message = failure.error.as_ref().unwrap().to_string();
        assert!(message.contains("b2") && message.contains(M3), "{message}");
        assert!(
            report.to_string().contains("3 succeeded, 1 failed"),
            "{report}"
        );
        assert!(
            seen.lock()
                .unwrap()
                .iter()
                .any(|(e, ..)| matches!(e, Seen::Failed(t, msg) if t == "b2" && msg.contains(M3)))
        );

        // b2 still at version 2, the column still nullable; the others at 3.
        assert_eq!(
            versions(&conn, "tenant_b2").await?,
            Some(strings(&[M1, M2]))
        );
        assert_eq!(
            column_nullable(&conn, "tenant_b2", "projects", "code").await?,
            Some(true)
        );
        for raw in ["b1", "b3", "b4"] {
            let s = schema(raw);
            assert_eq!(
                versions(&conn, s.as_str()).await?,
                Some(strings(&[M1, M2, M3]))
            );
            assert_eq!(
                column_nullable(&conn, s.as_str(), "projects", "code").await?,
                Some(false)
            );
        }

        // Fix the data, run again: only b2 has anything to apply.
        conn.execute_unprepared("UPDATE tenant_b2.projects SET code = 'P-2' WHERE code IS NULL")
            .await?;
        let rerun = v3.migrate_all(MigrateAll::new()).await?;
        assert!(rerun.is_success(), "{rerun}");
        assert_eq!(rerun.applied_total(), 1);
        assert_eq!(rerun.tenant(&id("b2")).unwrap().applied, strings(&[M3]));
        assert_eq!(
            column_nullable(&conn, "tenant_b2", "projects", "code").await?,
            Some(false)
        );

        Ok(())
    })
    .await
}

#[tokio::test]
async fn stop_on_first_failure_skips_the_tenants_not_started() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let conn = conn.clone();
        let fleet = fleet_on::<Migrator>(&conn).await?;
        let tenants = ["c1", "c2", "c3", "c4"];
        add_tenants(&conn, &tenants).await?;
        assert!(fleet.migrate_all(MigrateAll::new()).await?.is_success());
        conn.execute_unprepared("INSERT INTO tenant_c2.projects (name) VALUES ('no code')")
            .await?;

        let v3 = TenantFleet::<MigratorV3>::new(conn.clone());
        let (options, seen) = recorder();
        let report = v3
            .migrate_all(options.concurrency(1).stop_on_first_failure(true))
            .await?;
        let outcomes: Vec<(String, Outcome)> = report
            .tenants
            .iter()
            .map(|t| (t.tenant.to_string(), t.outcome))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("c1".to_owned(), Outcome::Succeeded),
                ("c2".to_owned(), Outcome::Failed),
                ("c3".to_owned(), Outcome::Skipped),
                ("c4".to_owned(), Outcome::Skipped),
            ]
        );
        assert_eq!(report.skipped().count(), 2);
        assert!(
            report
                .to_string()
                .contains("1 succeeded, 1 failed, 2 skipped"),
            "{report}"
        );
        for raw in ["c2", "c3", "c4"] {
            assert_eq!(
                versions(&conn, schema(raw).as_str()).await?,
                Some(strings(&[M1, M2]))
            );
        }
        let seen: Vec<Seen> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|(e, ..)| e.clone())
            .collect();
        assert_eq!(seen.len(), 6, "{seen:?}");
        assert_eq!(seen[0], Seen::Started("c1".into()));
        assert_eq!(seen[1], Seen::Finished("c1".into(), strings(&[M3])));
        assert_eq!(seen[2], Seen::Started("c2".into()));
        assert!(matches!(&seen[3], Seen::Failed(t, _) if t == "c2"));
        assert_eq!(
            seen[4..],
            [Seen::Skipped("c3".into()), Seen::Skipped("c4".into())]
        );

        // Without stop_on_first_failure, the others go ahead.
        let report = v3.migrate_all(MigrateAll::new().concurrency(1)).await?;
        assert_eq!(report.failed().count(), 1);
        assert_eq!(report.skipped().count(), 0);
        assert_eq!(report.applied_total(), 2);

        Ok(())
    })
    .await
}

#[tokio::test]
async fn two_concurrent_runs_apply_each_migration_exactly_once() -> TestResult {
    let (db, conn, _) = fleet_db::<Migrator>().await?;
    let tenants = ["d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8"];
    add_tenants(&conn, &tenants).await?;
    // Two fleets on two pools, as two replicas booting at once.
    let other = db.connect().await?;
    let first = TenantFleet::<Migrator>::new(conn.clone());
    let second = TenantFleet::<Migrator>::new(other.clone());

    let (a, b) = tokio::join!(
        first.migrate_all(MigrateAll::new()),
        second.migrate_all(MigrateAll::new()),
    );
    let (a, b) = (a?, b?);
    assert!(a.is_success(), "{a}");
    assert!(b.is_success(), "{b}");
    // Each migration of each tenant was applied by exactly one of the runs.
    assert_eq!(a.applied_total() + b.applied_total(), 16, "{a} / {b}");
    for raw in tenants {
        let id = id(raw);
        let mut applied = a.tenant(&id).unwrap().applied.clone();
        applied.extend(b.tenant(&id).unwrap().applied.iter().cloned());
        applied.sort();
        assert_eq!(applied, strings(&[M1, M2]), "tenant {raw}");
        let rows = query_all(
            &conn,
            &format!(
                "SELECT count(*) AS n FROM {}.seaql_migrations",
                schema(raw).quoted()
            ),
            vec![],
        )
        .await?;
        assert_eq!(rows[0].try_get::<i64>("", "n")?, 2);
    }

    other.close().await?;
    conn.close().await?;
    db.close().await?;
    Ok(())
}

#[tokio::test]
async fn a_run_failing_mid_migration_leaves_the_tenant_untouched() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let conn = conn.clone();
        let fleet = fleet_on::<CrashMigrator>(&conn).await?;
        add_tenants(&conn, &["e1"]).await?;
        conn.execute_unprepared("CREATE TABLE public.crash_switch ()")
            .await?;

        let err = fleet.migrate_tenant(&id("e1")).await.unwrap_err();
        match &err {
            Error::Migration {
                tenant, migration, ..
            } => {
                assert_eq!(*tenant, id("e1"));
                assert_eq!(migration.as_deref(), Some(CRASH));
            }
            other => panic!("unexpected error {other:?}"),
        }
        assert!(err.to_string().contains("simulated crash"), "{err}");
        // Untouched: not even migrations 1 and 2, nor the migrations table.
        for table in ["audit_log", "projects", "seaql_migrations"] {
            assert!(!table_exists(&conn, "tenant_e1", table).await?, "{table}");
        }

        conn.execute_unprepared("DROP TABLE public.crash_switch")
            .await?;
        let report = fleet.migrate_all(MigrateAll::new()).await?;
        assert!(report.is_success(), "{report}");
        assert_eq!(report.tenants[0].applied, strings(&[M1, M2, CRASH]));
        assert!(table_exists(&conn, "tenant_e1", "audit_log").await?);

        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_connection_killed_mid_migration_leaves_the_tenant_untouched() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let conn = conn.clone();
        let fleet = fleet_on::<KillMigrator>(&conn).await?;
        add_tenants(&conn, &["k1", "k2"]).await?;
        conn.execute_unprepared("CREATE TABLE public.crash_switch ()")
            .await?;

        let report = fleet.migrate_all(MigrateAll::new()).await?;
        assert_eq!(report.failed().count(), 2, "{report}");
        for tenant in report.failed() {
            assert!(
                matches!(tenant.error, Some(Error::Migration { .. })),
                "{tenant}"
            );
        }
        for raw in ["k1", "k2"] {
            let s = schema(raw);
            for table in ["audit_log", "projects", "seaql_migrations"] {
                assert!(
                    !table_exists(&conn, s.as_str(), table).await?,
                    "{raw}: {table}"
                );
            }
        }

        conn.execute_unprepared("DROP TABLE public.crash_switch")
            .await?;
        let report = fleet.migrate_all(MigrateAll::new()).await?;
        assert!(report.is_success(), "{report}");
        assert_eq!(report.applied_total(), 6);

        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_panicking_migration_fails_its_tenant_only() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let conn = conn.clone();
        let fleet = fleet_on::<PanicMigrator>(&conn).await?;
        add_tenants(&conn, &["p1", "p2", "p3"]).await?;
        conn.execute_unprepared("CREATE TABLE tenant_p2.panic_marker ()")
            .await?;

        let report = fleet.migrate_all(MigrateAll::new().concurrency(2)).await?;
        assert_eq!(report.succeeded().count(), 2, "{report}");
        let failed = report.tenant(&id("p2")).unwrap();
        match &failed.error {
            Some(Error::Panicked {
                tenant, message, ..
            }) => {
                assert_eq!(*tenant, id("p2"));
                assert!(message.contains("bug in migration code"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(versions(&conn, "tenant_p2").await?, None);
        // The pool is still usable.
        assert!(fleet.migrate_all(MigrateAll::new()).await?.failed().count() == 1);

        Ok(())
    })
    .await
}

#[tokio::test]
async fn rollback_tenant_and_rollback_all_revert_the_last_migrations() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let conn = conn.clone();
        let fleet = fleet_on::<MigratorV3>(&conn).await?;
        add_tenants(&conn, &["r1", "r2"]).await?;
        assert!(fleet.migrate_all(MigrateAll::new()).await?.is_success());

        let report = fleet.rollback_tenant(&id("r1"), 1).await?;
        assert_eq!(report.direction, Direction::Down);
        assert_eq!(report.applied, strings(&[M3]));
        assert_eq!(
            versions(&conn, "tenant_r1").await?,
            Some(strings(&[M1, M2]))
        );
        assert_eq!(
            column_nullable(&conn, "tenant_r1", "projects", "code").await?,
            Some(true)
        );
        assert_eq!(
            versions(&conn, "tenant_r2").await?,
            Some(strings(&[M1, M2, M3]))
        );

        let (options, seen) = recorder();
        let all = fleet.rollback_all(1, options).await?;
        assert!(all.is_success(), "{all}");
        assert_eq!(all.tenant(&id("r1")).unwrap().applied, strings(&[M2]));
        assert_eq!(all.tenant(&id("r2")).unwrap().applied, strings(&[M3]));
        assert!(
            all.to_string()
                .starts_with("rolled back 2 tenants: 2 succeeded"),
            "{all}"
        );
        assert_eq!(seen.lock().unwrap().len(), 4);
        assert_eq!(versions(&conn, "tenant_r1").await?, Some(strings(&[M1])));
        assert_eq!(
            column_nullable(&conn, "tenant_r1", "projects", "code").await?,
            None
        );
        assert_eq!(
            versions(&conn, "tenant_r2").await?,
            Some(strings(&[M1, M2]))
        );

        // Two steps at once, newest first.
        let report = fleet.rollback_tenant(&id("r2"), 2).await?;
        assert_eq!(report.applied, strings(&[M2, M1]));
        assert!(!table_exists(&conn, "tenant_r2", "projects").await?);
        assert_eq!(versions(&conn, "tenant_r2").await?, Some(vec![]));

        // And forward again.
        assert_eq!(
            fleet.migrate_all(MigrateAll::new()).await?.applied_total(),
            5
        );

        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_failing_rollback_leaves_the_tenant_unchanged() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let conn = conn.clone();
        let fleet = fleet_on::<MigratorV3>(&conn).await?;
        add_tenants(&conn, &["f1"]).await?;
        fleet.migrate_tenant(&id("f1")).await?;
        // Dropping the column of migration 2 fails while a view depends on it.
        conn.execute_unprepared(
            "CREATE VIEW tenant_f1.codes AS SELECT code FROM tenant_f1.projects",
        )
        .await?;

        let err = fleet.rollback_tenant(&id("f1"), 2).await.unwrap_err();
        match &err {
            Error::RevertFailed {
                tenant, migration, ..
            } => {
                assert_eq!(*tenant, id("f1"));
                assert_eq!(migration.as_deref(), Some(M2));
            }
            other => panic!("unexpected error {other:?}"),
        }
        // Migration 3's revert was undone with the rest.
        assert_eq!(
            versions(&conn, "tenant_f1").await?,
            Some(strings(&[M1, M2, M3]))
        );
        assert_eq!(
            column_nullable(&conn, "tenant_f1", "projects", "code").await?,
            Some(false)
        );

        Ok(())
    })
    .await
}

#[tokio::test]
async fn fleet_runs_cover_every_tenant_but_deleted_ones_by_default() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let conn = conn.clone();
        let fleet = fleet_on::<Migrator>(&conn).await?;
        add_tenant_with(&conn, "active1", "active", true).await?;
        add_tenant_with(&conn, "paused", "suspended", true).await?;
        add_tenant_with(&conn, "newborn", "provisioning", true).await?;
        add_tenant_with(&conn, "gone", "deleted", true).await?;

        let only_active = fleet
            .migrate_all(MigrateAll::new().only_active(true))
            .await?;
        let ids: Vec<String> = only_active
            .tenants
            .iter()
            .map(|t| t.tenant.to_string())
            .collect();
        assert_eq!(ids, ["active1"]);

        let default = fleet.migrate_all(MigrateAll::new()).await?;
        let ids: Vec<(String, usize)> = default
            .tenants
            .iter()
            .map(|t| (t.tenant.to_string(), t.applied.len()))
            .collect();
        // Provisioning tenants too: status and health count them as behind.
        assert_eq!(
            ids,
            [
                ("active1".to_owned(), 0),
                ("newborn".to_owned(), 2),
                ("paused".to_owned(), 2)
            ]
        );
        assert_eq!(versions(&conn, "tenant_gone").await?, None);

        // Named explicitly, any status is migrated.
        assert_eq!(fleet.migrate_tenant(&id("gone")).await?.applied.len(), 2);

        Ok(())
    })
    .await
}

#[tokio::test]
async fn tenant_errors_name_the_tenant_and_touch_nothing() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let conn = conn.clone();
        let fleet = fleet_on::<Migrator>(&conn).await?;
        add_tenant_with(&conn, "ghost", "active", false).await?;
        add_tenants(&conn, &["real"]).await?;

        let err = fleet.migrate_tenant(&id("nobody")).await.unwrap_err();
        assert!(
            matches!(&err, Error::UnknownTenant { tenant } if *tenant == id("nobody")),
            "{err:?}"
        );

        let err = fleet.migrate_tenant(&id("ghost")).await.unwrap_err();
        assert!(
            matches!(&err, Error::SchemaMissing { tenant, schema: s } if *tenant == id("ghost") && *s == schema("ghost")),
            "{err:?}"
        );
        // In a fleet run the missing schema fails that tenant only.
        let report = fleet.migrate_all(MigrateAll::new()).await?;
        assert_eq!(report.succeeded().count(), 1);
        assert!(matches!(
            report.tenant(&id("ghost")).unwrap().error,
            Some(Error::SchemaMissing { .. })
        ));
        // Nothing went to public instead.
        assert!(!table_exists(&conn, "public", "seaql_migrations").await?);
        assert!(!table_exists(&conn, "public", "projects").await?);

        // A registry row naming a shared schema is refused before any SQL runs there.
        conn.execute_unprepared("CREATE SCHEMA extensions").await?;
        let shared = TenantFleet::<Migrator>::with_config(
            conn.clone(),
            FleetConfig::default()
                .with_shared_schemas([SharedSchema::public(), SharedSchema::new("extensions")?]),
        );
        conn.execute_unprepared(
            "INSERT INTO public.tenants (tenant_id, schema_name, status) VALUES ('sneaky', 'extensions', 'active')",
        )
        .await?;
        let err = shared.migrate_tenant(&id("sneaky")).await.unwrap_err();
        assert!(matches!(err, Error::SchemaShared { .. }), "{err:?}");
        assert!(!table_exists(&conn, "extensions", "seaql_migrations").await?);

        Ok(())
    })
    .await
}

#[tokio::test]
async fn migrate_shared_runs_in_the_shared_schema_only() -> TestResult {
    TestDatabase::with(async |db, conn| -> TestResult {
        let conn = conn.clone();
        let fleet = fleet_on::<Migrator>(&conn).await?;
        add_tenants(&conn, &["s1", "s2"]).await?;

        let applied = fleet.migrate_shared::<SharedMigrator>().await?;
        assert_eq!(applied, strings(&[SHARED1]));
        assert!(table_exists(&conn, "public", "plans").await?);
        assert_eq!(versions(&conn, "public").await?, Some(strings(&[SHARED1])));
        for raw in ["s1", "s2"] {
            let s = schema(raw);
            assert!(!table_exists(&conn, s.as_str(), "plans").await?);
            assert!(!table_exists(&conn, s.as_str(), "seaql_migrations").await?);
        }
        assert!(fleet.migrate_shared::<SharedMigrator>().await?.is_empty());

        // Tenant runs keep their own migrations tables even with public's on
        // their search path, and leave public's alone.
        assert!(fleet.migrate_all(MigrateAll::new()).await?.is_success());
        for raw in ["s1", "s2"] {
            assert_eq!(
                versions(&conn, schema(raw).as_str()).await?,
                Some(strings(&[M1, M2]))
            );
        }
        assert_eq!(versions(&conn, "public").await?, Some(strings(&[SHARED1])));
        assert!(!table_exists(&conn, "public", "projects").await?);

        // Concurrent shared runs apply once.
        let other = TenantFleet::<Migrator>::new(db.connect().await?);
        conn.execute_unprepared("DROP TABLE public.plans; DELETE FROM public.seaql_migrations")
            .await?;
        let (a, b) = tokio::join!(
            fleet.migrate_shared::<SharedMigrator>(),
            other.migrate_shared::<SharedMigrator>(),
        );
        assert_eq!(a?.len() + b?.len(), 1);
        other.connection().clone().close().await?;

        Ok(())
    })
    .await
}
