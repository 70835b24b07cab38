#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]
//! Fleet operations through a transaction-mode PgBouncer refuse, before
//! doing anything, with one error that says to connect directly. Before they
//! refused, concurrent `create`s through PgBouncer 1.18 failed midway with
//! `prepared statement "sqlx_s_1" already exists` (5 of 8), and so did
//! `migrate_all`, `fleet_status` and `list`.
//!
//! Directly, the same fleet works (every other test of this crate runs its
//! fleet on a pool of several direct connections, so the pooler check runs
//! there too and must never refuse).

mod support_migrate;

use sea_orm::Database;
use support_migrate::*;
use tenancy_migrate::{Error, MigrateAll, NewTenant, StatusFilter, TenantFleet};
use tenancy_testing::TestDatabase;

#[track_caller]
fn assert_refused<T: std::fmt::Debug>(result: Result<T, Error>) {
    match result {
        Err(err @ Error::BehindPooler { .. }) => {
            let message = err.to_string();
            assert!(message.contains("PgBouncer"), "{message}");
            assert!(message.contains("Nothing was done"), "{message}");
            assert!(message.contains("PostgreSQL directly"), "{message}");
        }
        other => panic!("expected Error::BehindPooler, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_operations_refuse_a_transaction_pooler() -> TestResult {
    let db = TestDatabase::create().await?;
    let direct = db.connect().await?;
    let Some(opts) = db.pooler_connect_options()? else {
        println!(
            "{}",
            tenancy_testing::pgbouncer_skip_message("fleet_operations_refuse_a_transaction_pooler")
        );
        direct.close().await?;
        db.close().await?;
        return Ok(());
    };
    let pooled = Database::connect(opts).await?;
    let through_pooler = TenantFleet::<Migrator>::new(pooled.clone());

    // Nothing is done: not even the registry table.
    assert_refused(through_pooler.install().await);
    assert!(!table_exists(&direct, "public", "tenants").await?);

    // Directly, the fleet works.
    let fleet = TenantFleet::<Migrator>::new(direct.clone());
    fleet.install().await?;
    fleet.create(&id("acme"), NewTenant::new()).await?;

    // Through the pooler every operation refuses, a clone or a fresh fleet alike.
    let clone = through_pooler.clone();
    assert_refused(clone.create(&id("globex"), NewTenant::new()).await);
    assert_refused(through_pooler.migrate_all(MigrateAll::new()).await);
    assert_refused(through_pooler.migrate_tenant(&id("acme")).await);
    assert_refused(through_pooler.fleet_status().await);
    assert_refused(through_pooler.list(StatusFilter::All).await);
    assert_refused(through_pooler.health().await);
    let fresh = TenantFleet::<Migrator>::new(pooled.clone());
    assert_refused(fresh.suspend(&id("acme")).await);
    assert!(fleet.get(&id("globex")).await?.is_none());
    assert_eq!(
        fleet.get(&id("acme")).await?.unwrap().status,
        tenancy_core::TenantStatus::Active
    );

    // The application's side goes through the pooler fine, in pooler mode.
    let app = tenancy_sea_orm::TenantDb::new(pooled.clone())?.behind_pooler();
    let txn = app.begin_registered(&id("acme")).await?;
    sea_orm::ConnectionTrait::execute_unprepared(&txn, "INSERT INTO projects (name) VALUES ('x')")
        .await?;
    txn.commit().await?;

    drop(app);
    pooled.close().await?;
    direct.close().await?;
    db.close().await?;
    Ok(())
}
