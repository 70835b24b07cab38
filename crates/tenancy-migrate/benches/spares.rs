//! Sign-up latency with and without the spare pool, and fleet runs shared by
//! several runners, each against a baseline measured in the same run.
//!
//! - create: p50/p99 of `TenantFleet::create` with 3 and with 30 migrations
//!   (each a table with a primary key, four columns and an index), without
//!   the pool, claiming a spare, and the raw floor: `BEGIN; INSERT` of the
//!   registry row `; CREATE SCHEMA; COMMIT` as one script. Interleaved
//!   sample by sample; the spares are made before the timed loop.
//! - runners: one new migration (`ALTER TABLE … ADD COLUMN`, `CREATE
//!   INDEX`, and optionally a `pg_sleep` standing in for a backfill's
//!   waits) over a fleet, by 1, 2 and 3 `migrate_all` runners started
//!   together, each with its own pool and concurrency 2, and by one runner
//!   with concurrency 6 (the sessions of three runners).
//!
//! Run: `cargo bench -p tenancy-migrate --bench spares` (`-- --smoke` for a
//! quick run, `-- --help` for sizes).
#![allow(
    unreachable_pub,
    elided_lifetimes_in_paths,
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss
)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use sea_orm_migration::prelude::*;
use tenancy_core::TenantId;
use tenancy_migrate::{FleetConfig, MigrateAll, NewTenant, TenantFleet};
use tenancy_testing::TestDatabase;

/// Options (`cargo bench -p tenancy-migrate --bench spares -- --help`).
#[derive(Debug, clap::Parser)]
struct Config {
    /// Creates timed per variant.
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// Tenants in the runners comparison.
    #[arg(long, default_value_t = 400)]
    tenants: usize,
    /// Milliseconds the runners' migration sleeps per tenant (0: DDL only).
    #[arg(long, default_value_t = 20)]
    sleep_ms: u64,
    /// A quick run (CI): 10 samples, 24 tenants, both sections.
    #[arg(long)]
    smoke: bool,
    /// Only the runners comparison.
    #[arg(long)]
    runners_only: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// Migration `i` (from 1): one table.
struct Table {
    i: usize,
    name: String,
}

impl Table {
    fn new(i: usize) -> Self {
        Self {
            i,
            name: format!("m{i:04}_table"),
        }
    }
}

impl MigrationName for Table {
    fn name(&self) -> &str {
        &self.name
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Table {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let i = self.i;
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "CREATE TABLE t{i} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
                 name text NOT NULL, owner_id bigint, created_at timestamptz NOT NULL DEFAULT now(), \
                 data jsonb); CREATE INDEX t{i}_owner_idx ON t{i} (owner_id)"
            ))
            .await
            .map(drop)
    }
}

static SLEEP_MS: AtomicU64 = AtomicU64::new(0);

/// The runners' migration.
struct FanOut;

impl MigrationName for FanOut {
    fn name(&self) -> &str {
        "m9999_fan_out"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for FanOut {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let sleep = SLEEP_MS.load(Ordering::Relaxed) as f64 / 1000.0;
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "ALTER TABLE t1 ADD COLUMN rank integer NOT NULL DEFAULT 0; \
                 CREATE INDEX t1_rank_idx ON t1 (rank); SELECT pg_sleep({sleep})"
            ))
            .await
            .map(drop)
    }
}

/// `N` table migrations, then the fan-out one when `FAN`.
struct Tables<const N: usize, const FAN: bool>;

impl<const N: usize, const FAN: bool> MigratorTrait for Tables<N, FAN> {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut all: Vec<Box<dyn MigrationTrait>> = (1..=N)
            .map(|i| Box::new(Table::new(i)) as Box<dyn MigrationTrait>)
            .collect();
        if FAN {
            all.push(Box::new(FanOut));
        }
        all
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

async fn pool(test_db: &TestDatabase, size: u32) -> DatabaseConnection {
    let mut opts = test_db.connect_options();
    opts.max_connections(size).min_connections(1);
    Database::connect(opts).await.unwrap()
}

/// One create-latency table row per variant, for a migrator of `N` tables.
async fn creates<const N: usize>(samples: usize) {
    let test_db = TestDatabase::create().await.unwrap();
    let conn = pool(&test_db, 4).await;
    let plain = TenantFleet::<Tables<N, false>>::new(conn.clone());
    plain.install().await.unwrap();
    let pooled = TenantFleet::<Tables<N, false>>::with_config(
        conn.clone(),
        FleetConfig::default().with_spare_pool(true),
    );
    let started = Instant::now();
    pooled.refill_spares(samples).await.unwrap();
    let refill = started.elapsed();

    let (mut floor, mut without, mut with) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..samples {
        let raw = format!("raw{i:05}");
        let script = format!(
            "BEGIN; INSERT INTO public.tenants (tenant_id, schema_name, status) \
             VALUES ('{raw}', 'tenant_{raw}', 'active'); CREATE SCHEMA \"tenant_{raw}\"; COMMIT;"
        );
        let t = Instant::now();
        conn.execute_unprepared(&script).await.unwrap();
        floor.push(t.elapsed());

        let id = TenantId::new(&format!("plain{i:05}")).unwrap();
        let t = Instant::now();
        plain.create(&id, NewTenant::new()).await.unwrap();
        without.push(t.elapsed());

        let id = TenantId::new(&format!("pooled{i:05}")).unwrap();
        let t = Instant::now();
        pooled.create(&id, NewTenant::new()).await.unwrap();
        with.push(t.elapsed());
    }
    assert_eq!(
        pooled.spare_status().await.unwrap().total(),
        0,
        "every pooled create claimed a spare"
    );
    for v in [&mut floor, &mut without, &mut with] {
        v.sort_unstable();
    }
    let floor_p50 = percentile(&floor, 0.5);
    for (name, values) in [
        ("raw floor: CREATE SCHEMA + registry INSERT", &floor),
        ("create, no pool", &without),
        ("create, claiming a spare", &with),
    ] {
        let p50 = percentile(values, 0.5);
        println!(
            "| {N} | {name} | {p50:.2} | {:.2} | {:.2} |",
            percentile(values, 0.99),
            p50 / floor_p50
        );
    }
    println!(
        "| {N} | (refilling {samples} spares, one by one) | {:.2} per spare | | |",
        refill.as_secs_f64() * 1e3 / samples as f64
    );
    conn.close().await.unwrap();
    test_db.close().await.unwrap();
}

/// Wall time of `runners` runners migrating a fresh fleet of `tenants`.
async fn runners_run(runners: usize, tenants: usize, concurrency: usize) -> Duration {
    let test_db = TestDatabase::create().await.unwrap();
    let conn = pool(&test_db, 4).await;
    let old = TenantFleet::<Tables<3, false>>::new(conn.clone());
    old.install().await.unwrap();
    futures_util::stream::iter(0..tenants)
        .for_each_concurrent(4, |i| {
            let old = old.clone();
            async move {
                let id = TenantId::new(&format!("r{i:05}")).unwrap();
                old.create(&id, NewTenant::new()).await.unwrap();
            }
        })
        .await;
    conn.execute_unprepared("VACUUM ANALYZE").await.unwrap();
    let mut fleets = Vec::new();
    for _ in 0..runners {
        let size = <u32 as TryFrom<usize>>::try_from(concurrency + 1).unwrap();
        fleets.push(TenantFleet::<Tables<3, true>>::new(
            pool(&test_db, size).await,
        ));
    }
    let started = Instant::now();
    let reports = futures_util::future::join_all(
        fleets
            .iter()
            .map(|f| f.migrate_all(MigrateAll::new().concurrency(concurrency))),
    )
    .await;
    let wall = started.elapsed();
    let applied: usize = reports
        .into_iter()
        .map(|r| {
            let r = r.unwrap();
            assert!(r.is_success(), "{r}");
            r.applied_total()
        })
        .sum();
    assert_eq!(applied, tenants, "each tenant migrated once");
    for fleet in fleets {
        fleet.connection().clone().close().await.unwrap();
    }
    conn.close().await.unwrap();
    test_db.close().await.unwrap();
    wall
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut config = <Config as clap::Parser>::parse();
    if config.smoke {
        config.samples = 10;
        config.tenants = 24;
    }
    SLEEP_MS.store(config.sleep_ms, Ordering::Relaxed);
    if !config.runners_only {
        println!(
            "\n## Create latency, {} samples per variant\n",
            config.samples
        );
        println!("| migrations | variant | p50 (ms) | p99 (ms) | p50 / floor |");
        println!("|---:|---|---:|---:|---:|");
        creates::<3>(config.samples).await;
        creates::<30>(config.samples).await;
    }

    println!(
        "\n## One migration over {} tenants (sleep {} ms each), runners with concurrency 2\n",
        config.tenants, config.sleep_ms
    );
    println!("| runners × concurrency | wall (s) | speed-up vs 1 × 2 |");
    println!("|---|---:|---:|");
    let mut baseline = None;
    // The last row is one runner with the sessions of three: how much of
    // the speed-up more sessions alone would give.
    for (runners, concurrency) in [(1, 2), (2, 2), (3, 2), (1, 6)] {
        let wall = runners_run(runners, config.tenants, concurrency).await;
        let base = *baseline.get_or_insert(wall);
        println!(
            "| {runners} × {concurrency} | {:.2} | {:.2} |",
            wall.as_secs_f64(),
            base.as_secs_f64() / wall.as_secs_f64()
        );
    }
}
