//! The same fleet on single-node PostgreSQL and on a Citus cluster
//! (schema-based sharding), measured in one run:
//!
//! - scoped transactions on one tenant (`begin_registered`, one `INSERT`,
//!   `COMMIT`; and one `SELECT`), interleaved in blocks of 100: p50/p99 and
//!   the Citus / plain ratio;
//! - fleet operations over `--tenants` tenants: `create` each, `migrate_all`
//!   of one new migration (`ALTER TABLE … ADD COLUMN`), `fleet_status`.
//!
//! Needs `TENANCY_CITUS_URL` (see the README's Citus section); plain
//! PostgreSQL is the usual test server. Without the variable it says
//! `SKIPPED` and exits.
//!
//! Run: `TENANCY_CITUS_URL=… cargo bench -p tenancy-migrate --bench citus`
//! (`-- --smoke` for a quick run, `-- --help` for sizes).
#![allow(
    unreachable_pub,
    missing_docs,
    elided_lifetimes_in_paths,
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss
)]

#[path = "../tests/support_citus/mod.rs"]
mod support_citus;

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection};
use sea_orm_migration::prelude::*;
use tenancy_core::TenantId;
use tenancy_migrate::{CitusMode, FleetConfig, MigrateAll, NewTenant, TenantFleet};
use tenancy_sea_orm::TenantDb;
use tenancy_testing::TestDatabase;

/// Options (`cargo bench -p tenancy-migrate --bench citus -- --help`).
#[derive(Debug, clap::Parser)]
struct Config {
    /// Tenants in the fleet comparison.
    #[arg(long, default_value_t = 200)]
    tenants: usize,
    /// Scoped transactions timed per variant.
    #[arg(long, default_value_t = 2000)]
    transactions: usize,
    /// A quick run: 20 tenants, 200 transactions.
    #[arg(long)]
    smoke: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

struct CreateProjects;
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
            .execute_unprepared(
                "CREATE TABLE projects (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
                 name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())",
            )
            .await
            .map(drop)
    }
}

struct AddRank;
impl MigrationName for AddRank {
    fn name(&self) -> &str {
        "m0002_add_rank"
    }
}
#[async_trait::async_trait]
impl MigrationTrait for AddRank {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE projects ADD COLUMN rank integer NOT NULL DEFAULT 0")
            .await
            .map(drop)
    }
}

struct V1;
impl MigratorTrait for V1 {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateProjects)]
    }
}
struct V2;
impl MigratorTrait for V2 {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateProjects), Box::new(AddRank)]
    }
}

fn ms(sorted: &[Duration], p: f64) -> f64 {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

fn tenant(i: usize) -> TenantId {
    TenantId::new(&format!("t{i:05}")).unwrap()
}

/// One side of the comparison.
struct Side {
    label: &'static str,
    conn: DatabaseConnection,
    mode: CitusMode,
}

impl Side {
    fn fleet<M: MigratorTrait>(&self) -> TenantFleet<M> {
        TenantFleet::with_config(
            self.conn.clone(),
            FleetConfig::default().with_citus(self.mode),
        )
    }
}

async fn timed_txn(db: &TenantDb, id: &TenantId, write: bool) -> Duration {
    let start = Instant::now();
    let txn = db.begin_registered(id).await.unwrap();
    let sql = if write {
        "INSERT INTO projects (name) VALUES ('bench')"
    } else {
        "SELECT count(*) FROM projects WHERE id < 10"
    };
    txn.execute_unprepared(sql).await.unwrap();
    txn.commit().await.unwrap();
    start.elapsed()
}

#[tokio::main]
async fn main() {
    let mut config = <Config as clap::Parser>::parse();
    if config.smoke {
        config.tenants = 20;
        config.transactions = 200;
    }
    let Some(cluster) = support_citus::citus_db("bench citus").await.unwrap() else {
        return;
    };
    let plain_db = TestDatabase::create().await.unwrap();
    let sides = [
        Side {
            label: "plain",
            conn: plain_db.connect().await.unwrap(),
            mode: CitusMode::Off,
        },
        Side {
            label: "citus",
            conn: cluster.conn.clone(),
            mode: CitusMode::Required,
        },
    ];
    println!(
        "\n## Fleet of {} tenants ({} Citus workers)\n",
        config.tenants,
        cluster.workers.len()
    );
    println!("| operation | plain | citus | citus / plain |");
    println!("|---|---:|---:|---:|");
    let mut create = [Vec::new(), Vec::new()];
    for side in &sides {
        side.fleet::<V1>().install().await.unwrap();
    }
    // Interleaved, tenant by tenant, so load from elsewhere hits both.
    for i in 0..config.tenants {
        for (k, side) in sides.iter().enumerate() {
            let start = Instant::now();
            side.fleet::<V1>()
                .create(&tenant(i), NewTenant::new())
                .await
                .unwrap();
            create[k].push(start.elapsed());
        }
    }
    for times in &mut create {
        times.sort();
    }
    let (p, c) = (ms(&create[0], 0.5), ms(&create[1], 0.5));
    println!("| create, p50 (ms) | {p:.1} | {c:.1} | {:.2} |", c / p);
    let mut walls = [0.0; 2];
    for (k, side) in sides.iter().enumerate() {
        let start = Instant::now();
        let report = side
            .fleet::<V2>()
            .migrate_all(MigrateAll::new())
            .await
            .unwrap();
        assert_eq!(report.failed().count(), 0, "{report}");
        walls[k] = start.elapsed().as_secs_f64();
    }
    println!(
        "| migrate_all, one migration, concurrency 4 (s) | {:.2} | {:.2} | {:.2} |",
        walls[0],
        walls[1],
        walls[1] / walls[0]
    );
    for (k, side) in sides.iter().enumerate() {
        let start = Instant::now();
        let status = side.fleet::<V2>().fleet_status().await.unwrap();
        assert!(status.is_up_to_date(), "{status}");
        walls[k] = start.elapsed().as_secs_f64() * 1e3;
    }
    println!(
        "| fleet_status (ms) | {:.1} | {:.1} | {:.2} |",
        walls[0],
        walls[1],
        walls[1] / walls[0]
    );

    println!(
        "\n## Scoped transactions on one tenant, {} per variant\n",
        config.transactions
    );
    println!(
        "| transaction | plain p50 (ms) | citus p50 (ms) | ratio p50 | plain p99 | citus p99 |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let dbs: Vec<TenantDb> = sides
        .iter()
        .map(|s| TenantDb::new(s.conn.clone()).unwrap())
        .collect();
    let id = tenant(0);
    for write in [true, false] {
        let mut times = [Vec::new(), Vec::new()];
        for (k, db) in dbs.iter().enumerate() {
            for _ in 0..20 {
                timed_txn(db, &id, write).await; // warm the pool and caches
            }
            times[k].reserve(config.transactions);
        }
        for _ in 0..config.transactions.div_ceil(100) {
            for (k, db) in dbs.iter().enumerate() {
                for _ in 0..100 {
                    times[k].push(timed_txn(db, &id, write).await);
                }
            }
        }
        for t in &mut times {
            t.sort();
        }
        let (p, c) = (ms(&times[0], 0.5), ms(&times[1], 0.5));
        println!(
            "| {} | {p:.3} | {c:.3} | {:.2} | {:.3} | {:.3} |",
            if write {
                "INSERT + COMMIT"
            } else {
                "SELECT + COMMIT"
            },
            c / p,
            ms(&times[0], 0.99),
            ms(&times[1], 0.99)
        );
    }
    for side in sides {
        if side.label == "plain" {
            side.conn.close().await.unwrap();
        }
    }
    plain_db.close().await.unwrap();
    cluster.close().await.unwrap();
}
