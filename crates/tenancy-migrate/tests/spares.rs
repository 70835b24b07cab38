#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// `MigrationTrait` (async_trait) spells its argument `&SchemaManager`.
#![allow(elided_lifetimes_in_paths)]
//! The pool of spare schemas: claimed by `create` in its one transaction,
//! never twice, never half; refilled, migrated, health-checked and dropped.

mod support_migrate;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use sea_orm_migration::{MigrationName, MigrationTrait, MigratorTrait, SchemaManager};
use tenancy_migrate::{Error, FleetConfig, MigrateAll, NewTenant, Outcome, TenantFleet};
use tenancy_testing::TestDatabase;

use support_migrate::*;

fn pooled<M: MigratorTrait>(conn: &DatabaseConnection) -> TenantFleet<M> {
    TenantFleet::<M>::with_config(conn.clone(), FleetConfig::default().with_spare_pool(true))
}

/// A fresh database, registry installed, and a fleet claiming spares.
async fn pool_db<M: MigratorTrait>()
-> Result<(TestDatabase, DatabaseConnection, TenantFleet<M>), BoxError> {
    let db = TestDatabase::create().await?;
    let conn = db.connect().await?;
    let fleet = pooled::<M>(&conn);
    fleet.install().await?;
    Ok((db, conn, fleet))
}

async fn close(db: TestDatabase, conn: DatabaseConnection) -> TestResult {
    conn.close().await?;
    db.close().await?;
    Ok(())
}

/// Schemas named like spares, with their OIDs.
async fn spare_schemas(conn: &DatabaseConnection) -> Result<Vec<(String, i64)>, DbErr> {
    let rows = query_all(
        conn,
        "SELECT nspname::text AS name, oid::bigint AS oid FROM pg_namespace \
         WHERE nspname LIKE 'tenant\\_\\_spare\\_%' ORDER BY 1",
        vec![],
    )
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("", "name")?, r.try_get("", "oid")?)))
        .collect()
}

async fn schema_oid(conn: &DatabaseConnection, schema: &str) -> Result<Option<i64>, DbErr> {
    let rows = query_all(
        conn,
        "SELECT oid::bigint AS oid FROM pg_namespace WHERE nspname = $1",
        vec![schema.into()],
    )
    .await?;
    rows.first().map(|r| r.try_get("", "oid")).transpose()
}

async fn pool_rows(conn: &DatabaseConnection) -> Result<Vec<String>, DbErr> {
    let rows = query_all(
        conn,
        "SELECT schema_name FROM public.tenants_spares ORDER BY 1",
        vec![],
    )
    .await?;
    rows.iter().map(|r| r.try_get("", "schema_name")).collect()
}

async fn registered(conn: &DatabaseConnection) -> Result<i64, DbErr> {
    let rows = query_all(conn, "SELECT count(*) AS n FROM public.tenants", vec![]).await?;
    rows[0].try_get("", "n")
}

#[tokio::test]
async fn create_claims_a_migrated_spare_with_its_registry_row() -> TestResult {
    let (db, conn, fleet) = pool_db::<Migrator>().await?;
    assert_eq!(fleet.refill_spares(2).await?, 2);
    let before = spare_schemas(&conn).await?;
    assert_eq!(before.len(), 2);
    for (spare, _) in &before {
        assert_eq!(versions(&conn, spare).await?, Some(strings(&[M1, M2])));
    }
    assert_eq!(pool_rows(&conn).await?.len(), 2);

    let record = fleet.create(&id("acme"), NewTenant::new()).await?;
    assert_eq!(record.schema.as_str(), "tenant_acme");
    // The oldest spare became the tenant: same schema (OID), renamed.
    let (oldest, oldest_oid) = &before[0];
    assert_eq!(schema_oid(&conn, "tenant_acme").await?, Some(*oldest_oid));
    assert_eq!(schema_oid(&conn, oldest).await?, None);
    assert_eq!(
        versions(&conn, "tenant_acme").await?,
        Some(strings(&[M1, M2]))
    );
    assert!(
        column_nullable(&conn, "tenant_acme", "projects", "code")
            .await?
            .is_some()
    );
    assert_eq!(pool_rows(&conn).await?, vec![before[1].0.clone()]);
    assert_eq!(
        fleet.get(&id("acme")).await?.map(|r| r.schema),
        Some(record.schema)
    );
    assert!(fleet.fleet_status().await?.is_up_to_date());
    close(db, conn).await
}

#[tokio::test]
async fn concurrent_creates_each_claim_a_distinct_spare_and_none_is_lost() -> TestResult {
    for level in ["read committed", "repeatable read"] {
        let db = TestDatabase::create().await?;
        let admin = db.connect().await?;
        admin
            .execute_unprepared(&format!(
                "ALTER DATABASE \"{}\" SET default_transaction_isolation = '{level}'",
                db.name()
            ))
            .await?;
        admin.close().await?;
        let conn = db.connect().await?;
        let fleet = pooled::<Migrator>(&conn);
        fleet.install().await?;
        fleet.refill_spares(8).await?;
        let spare_oids: BTreeSet<i64> = spare_schemas(&conn)
            .await?
            .into_iter()
            .map(|s| s.1)
            .collect();
        assert_eq!(spare_oids.len(), 8);

        // Eight sign-ups at once, each on its own pool (as replicas are),
        // then two more once the pool is empty.
        let mut tasks = Vec::new();
        for i in 0..8 {
            let conn = db.connect().await?;
            tasks.push(tokio::spawn(async move {
                let fleet = pooled::<Migrator>(&conn);
                let result = fleet.create(&id(&format!("t{i}")), NewTenant::new()).await;
                conn.close().await.unwrap();
                result.map(|r| r.schema)
            }));
        }
        let mut claimed = BTreeSet::new();
        for task in tasks {
            let schema = task.await??;
            let oid = schema_oid(&conn, schema.as_str()).await?.unwrap();
            assert!(
                spare_oids.contains(&oid),
                "{level}: {schema} was built, not claimed"
            );
            assert!(claimed.insert(oid), "{level}: two tenants got one spare");
        }
        assert_eq!(claimed, spare_oids, "{level}");
        assert!(pool_rows(&conn).await?.is_empty(), "{level}");
        assert!(spare_schemas(&conn).await?.is_empty(), "{level}");

        // Empty pool: the normal create.
        for extra in ["late-1", "late-2"] {
            let record = fleet.create(&id(extra), NewTenant::new()).await?;
            let oid = schema_oid(&conn, record.schema.as_str()).await?.unwrap();
            assert!(!spare_oids.contains(&oid));
            assert_eq!(
                versions(&conn, record.schema.as_str()).await?,
                Some(strings(&[M1, M2]))
            );
        }
        assert_eq!(registered(&conn).await?, 10);
        let health = fleet.health().await?;
        assert!(health.is_healthy(), "{level}: {health}");
        close(db, conn).await?;
    }
    Ok(())
}

#[tokio::test]
async fn an_empty_or_disabled_pool_builds_the_schema() -> TestResult {
    let (db, conn, fleet) = pool_db::<Migrator>().await?;
    let record = fleet.create(&id("acme"), NewTenant::new()).await?;
    assert_eq!(
        versions(&conn, record.schema.as_str()).await?,
        Some(strings(&[M1, M2]))
    );

    // Spares ready, but this fleet does not claim them.
    fleet.refill_spares(1).await?;
    let plain = TenantFleet::<Migrator>::new(conn.clone());
    plain.create(&id("globex"), NewTenant::new()).await?;
    assert_eq!(pool_rows(&conn).await?.len(), 1);
    assert_eq!(spare_schemas(&conn).await?.len(), 1);
    close(db, conn).await
}

#[tokio::test]
async fn a_failure_after_the_rename_leaves_the_spare_a_spare() -> TestResult {
    let (db, conn, fleet) = pool_db::<Migrator>().await?;
    fleet.refill_spares(1).await?;
    fleet.create(&id("acme"), NewTenant::new()).await?;
    fleet.refill_spares(1).await?;
    let spares = spare_schemas(&conn).await?;
    assert_eq!(spares.len(), 1);

    // The registry insert fails: the id is taken.
    let taken = fleet.create(&id("acme"), NewTenant::new()).await;
    assert!(
        matches!(taken, Err(Error::TenantExists { .. })),
        "{taken:?}"
    );
    assert_eq!(spare_schemas(&conn).await?, spares);

    // The rename fails: an unregistered schema has the tenant's name.
    conn.execute_unprepared("CREATE SCHEMA tenant_globex")
        .await?;
    let exists = fleet.create(&id("globex"), NewTenant::new()).await;
    assert!(
        matches!(exists, Err(Error::SchemaExists { .. })),
        "{exists:?}"
    );
    assert_eq!(spare_schemas(&conn).await?, spares);
    assert_eq!(pool_rows(&conn).await?, vec![spares[0].0.clone()]);

    // A migration the spare lacks fails after the rename and the row's
    // removal: all of it rolls back with the registry row.
    conn.execute_unprepared("CREATE TABLE public.crash_switch ()")
        .await?;
    let crashing = pooled::<CrashMigrator>(&conn);
    let failed = crashing.create(&id("initech"), NewTenant::new()).await;
    assert!(
        matches!(&failed, Err(Error::Migration { migration: Some(m), .. }) if m == CRASH),
        "{failed:?}"
    );
    assert_eq!(spare_schemas(&conn).await?, spares);
    assert_eq!(pool_rows(&conn).await?, vec![spares[0].0.clone()]);
    assert_eq!(
        versions(&conn, &spares[0].0).await?,
        Some(strings(&[M1, M2]))
    );
    assert_eq!(schema_oid(&conn, "tenant_initech").await?, None);
    assert!(crashing.get(&id("initech")).await?.is_none());

    // With the switch gone, the same call claims it and catches it up.
    conn.execute_unprepared("DROP TABLE public.crash_switch")
        .await?;
    let record = crashing.create(&id("initech"), NewTenant::new()).await?;
    assert_eq!(
        schema_oid(&conn, record.schema.as_str()).await?,
        Some(spares[0].1)
    );
    assert_eq!(
        versions(&conn, "tenant_initech").await?,
        Some(strings(&[M1, M2, CRASH]))
    );
    close(db, conn).await
}

#[tokio::test]
async fn migrate_all_brings_spares_current_and_health_knows_them() -> TestResult {
    let (db, conn, old) = pool_db::<Migrator>().await?;
    old.create(&id("acme"), NewTenant::new()).await?;
    old.refill_spares(2).await?;
    let health = old.health().await?;
    assert!(health.is_healthy(), "{health}");
    assert!(health.orphan_schemas.is_empty());
    assert_eq!(health.spares.ready.len(), 2);

    // A new build with a third migration: the spares are behind.
    let new = pooled::<MigratorV3>(&conn);
    let health = new.health().await?;
    assert!(!health.is_healthy());
    assert!(health.orphan_schemas.is_empty(), "{health}");
    assert_eq!(health.spares.behind.len(), 2);
    assert!(
        health
            .spares
            .behind
            .iter()
            .all(|s| s.migrations == strings(&[M3]))
    );

    // `code` must be filled before M3 makes it NOT NULL.
    conn.execute_unprepared("UPDATE tenant_acme.projects SET code = 'x'")
        .await?;
    let report = new.migrate_all(MigrateAll::new()).await?;
    assert!(report.is_success(), "{report}");
    assert_eq!(report.spares.len(), 2);
    for spare in &report.spares {
        assert_eq!(spare.outcome, Outcome::Succeeded);
        assert_eq!(spare.applied, strings(&[M3]));
        assert_eq!(
            versions(&conn, spare.schema.as_str()).await?,
            Some(strings(&[M1, M2, M3]))
        );
    }
    assert!(
        report
            .to_string()
            .contains("2 spares: 0 failed, 2 migrations applied"),
        "{report}"
    );
    let health = new.health().await?;
    assert!(health.is_healthy(), "{health}");

    // The old build does not claim what it does not know.
    let before = spare_schemas(&conn).await?;
    let record = old.create(&id("globex"), NewTenant::new()).await?;
    let oid = schema_oid(&conn, record.schema.as_str()).await?.unwrap();
    assert!(before.iter().all(|s| s.1 != oid));
    assert_eq!(spare_schemas(&conn).await?, before);
    assert_eq!(old.spare_status().await?.ahead.len(), 2);

    // A spare whose schema was dropped by hand is reported, and dropped.
    conn.execute_unprepared(&format!("DROP SCHEMA {} CASCADE", before[0].0))
        .await?;
    let health = new.health().await?;
    assert_eq!(health.spares.missing.len(), 1, "{health}");
    assert!(!health.is_healthy());
    assert_eq!(new.drop_spares(0).await?, 2);
    assert!(pool_rows(&conn).await?.is_empty());
    assert!(spare_schemas(&conn).await?.is_empty());
    close(db, conn).await
}

#[tokio::test]
async fn a_hand_written_pool_row_never_touches_a_tenant() -> TestResult {
    let (db, conn, fleet) = pool_db::<Migrator>().await?;
    let acme = fleet.create(&id("acme"), NewTenant::new()).await?;
    let acme_oid = schema_oid(&conn, acme.schema.as_str()).await?;
    conn.execute_unprepared(
        "INSERT INTO public.tenants_spares (schema_name) VALUES ('tenant_acme'), ('public'), \
         ('tenant__spare_x')",
    )
    .await?;
    let globex = fleet.create(&id("globex"), NewTenant::new()).await?;
    assert_ne!(schema_oid(&conn, globex.schema.as_str()).await?, acme_oid);
    assert_eq!(schema_oid(&conn, "tenant_acme").await?, acme_oid);

    let status = fleet.spare_status().await?;
    assert_eq!(status.unusable.len(), 3, "{status}");
    assert!(status.ready.is_empty());
    let report = fleet.migrate_all(MigrateAll::new()).await?;
    assert!(report.spares.is_empty());
    assert_eq!(fleet.drop_spares(0).await?, 0);
    assert_eq!(schema_oid(&conn, "tenant_acme").await?, acme_oid);
    assert!(table_exists(&conn, "tenant_acme", "projects").await?);
    let health = fleet.health().await?;
    assert!(!health.is_healthy());
    assert!(
        health.to_string().contains("unusable spare row"),
        "{health}"
    );
    close(db, conn).await
}

#[tokio::test]
async fn refills_do_not_overshoot_and_the_refiller_keeps_the_target() -> TestResult {
    let (db, conn, fleet) = pool_db::<Migrator>().await?;
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let conn = db.connect().await?;
        tasks.push(tokio::spawn(async move {
            let made = pooled::<Migrator>(&conn).refill_spares(4).await;
            conn.close().await.unwrap();
            made
        }));
    }
    let mut made = 0;
    for task in tasks {
        made += task.await??;
    }
    assert_eq!(made, 4);
    assert_eq!(pool_rows(&conn).await?.len(), 4);

    fleet.create(&id("acme"), NewTenant::new()).await?;
    fleet.create(&id("globex"), NewTenant::new()).await?;
    let refiller = fleet.spawn_spare_refiller(4, Duration::from_millis(50));
    let deadline = Instant::now() + Duration::from_secs(60);
    while fleet.spare_status().await?.ready.len() < 4 {
        assert!(Instant::now() < deadline, "the refiller never refilled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    refiller.stop().await;
    assert_eq!(fleet.spare_status().await?.ready.len(), 4);
    close(db, conn).await
}

struct IndexOutside;
impl MigrationName for IndexOutside {
    fn name(&self) -> &str {
        "m0003_index_outside"
    }
}
#[async_trait::async_trait]
impl MigrationTrait for IndexOutside {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS projects_name ON projects (name)",
            )
            .await
            .map(drop)
    }
    fn use_transaction(&self) -> Option<bool> {
        Some(false)
    }
}

struct OutsideMigrator;
impl MigratorTrait for OutsideMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateProjects), Box::new(IndexOutside)]
    }
}

#[tokio::test]
async fn migrations_outside_a_transaction_refuse_spares_and_create_as_before() -> TestResult {
    let (db, conn, fleet) = pool_db::<OutsideMigrator>().await?;
    let refused = fleet.refill_spares(2).await;
    assert!(
        matches!(&refused, Err(Error::SparesUnsupported { migration }) if migration == "m0003_index_outside"),
        "{refused:?}"
    );
    assert!(refused.unwrap_err().is_refused());
    assert!(pool_rows(&conn).await?.is_empty());
    let record = fleet.create(&id("acme"), NewTenant::new()).await?;
    assert_eq!(
        versions(&conn, record.schema.as_str()).await?,
        Some(strings(&[M1, "m0003_index_outside"]))
    );
    close(db, conn).await
}
