//! Times `TenantFleet::fleet_status` over many tenant schemas.
//!
//! ```text
//! cargo run --release -p tenancy-migrate --example fleet_status_timing -- 10000
//! ```
//!
//! Creates a throwaway database (see `tenancy-testing` for where), N tenant
//! schemas (default 10,000) each with a `seaql_migrations` table recording a
//! two-migration migrator (every tenth tenant one migration behind), all with
//! raw SQL in large batches, then prints the median of five timed
//! `fleet_status()` calls after one warm-up call. The database is dropped at
//! the end.

#![allow(clippy::print_stdout, clippy::print_stderr)]
#![allow(elided_lifetimes_in_paths)]

use std::error::Error as StdError;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt, stream};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};
use sea_orm_migration::{MigrationName, MigrationTrait, MigratorTrait, SchemaManager};
use tenancy_core::{SchemaName, TenantId};
use tenancy_migrate::TenantFleet;
use tenancy_testing::TestDatabase;

const FIRST: &str = "m0001_create_projects";
const SECOND: &str = "m0002_add_code";

/// Schemas created per statement (one implicit transaction each).
const SCHEMA_BATCH: usize = 250;
/// Registry rows inserted per statement.
const REGISTRY_BATCH: usize = 1_000;

struct Named(&'static str);

impl MigrationName for Named {
    fn name(&self) -> &str {
        self.0
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Named {
    async fn up(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}

/// Two migrations; only their names matter here.
struct TwoMigrations;

impl MigratorTrait for TwoMigrations {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(Named(FIRST)), Box::new(Named(SECOND))]
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn StdError>> {
    let count: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 10_000,
    };
    let db = TestDatabase::create().await?;
    let conn = db.connect().await?;
    let fleet = TenantFleet::<TwoMigrations>::new(conn.clone());
    fleet.install().await?;

    let setup = Instant::now();
    let tenants: Vec<(TenantId, SchemaName)> = (0..count)
        .map(|i| {
            let id = TenantId::new(&format!("t{i:05}"))?;
            let schema = fleet.config().naming().schema_for(&id)?;
            Ok((id, schema))
        })
        .collect::<Result<_, tenancy_core::Error>>()?;

    // The two version rows every tenant copies; every tenth tenant copies the
    // first only.
    conn.execute_unprepared(
        "CREATE TABLE public.versions_full (version varchar NOT NULL, applied_at bigint NOT NULL); \
         CREATE TABLE public.versions_behind (LIKE public.versions_full)",
    )
    .await?;
    for (table, versions) in [
        ("public.versions_full", &[FIRST, SECOND][..]),
        ("public.versions_behind", &[FIRST][..]),
    ] {
        for version in versions {
            conn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                format!("INSERT INTO {table} VALUES ($1, 0)"),
                [(*version).into()],
            ))
            .await?;
        }
    }

    let batches: Vec<String> = tenants
        .chunks(SCHEMA_BATCH)
        .enumerate()
        .map(|(batch, chunk)| {
            let mut sql = String::new();
            for (offset, (_, schema)) in chunk.iter().enumerate() {
                let source = if (batch * SCHEMA_BATCH + offset) % 10 == 9 {
                    "public.versions_behind"
                } else {
                    "public.versions_full"
                };
                let s = schema.quoted();
                sql.push_str(&format!(
                    "CREATE SCHEMA {s}; \
                     CREATE TABLE {s}.seaql_migrations (version varchar NOT NULL PRIMARY KEY, applied_at bigint NOT NULL); \
                     INSERT INTO {s}.seaql_migrations SELECT * FROM {source};"
                ));
            }
            sql
        })
        .collect();
    stream::iter(batches)
        .map(|sql| {
            let conn = conn.clone();
            async move { conn.execute_unprepared(&sql).await.map(drop) }
        })
        .buffer_unordered(2)
        .try_collect::<Vec<()>>()
        .await?;
    for chunk in tenants.chunks(REGISTRY_BATCH) {
        let placeholders: Vec<String> = (0..chunk.len())
            .map(|i| format!("(${}, ${}, 'active')", 2 * i + 1, 2 * i + 2))
            .collect();
        let values: Vec<Value> = chunk
            .iter()
            .flat_map(|(id, schema)| [id.as_str().into(), schema.as_str().into()])
            .collect();
        conn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "INSERT INTO public.tenants (tenant_id, schema_name, status) VALUES {}",
                placeholders.join(", ")
            ),
            values,
        ))
        .await?;
    }
    println!("set up {count} tenant schemas in {:.1?}", setup.elapsed());

    let warm_up = fleet.fleet_status().await?;
    let behind = count / 10;
    if warm_up.totals.tenants != count
        || warm_up.totals.up_to_date != count - behind
        || warm_up.totals.behind != behind
    {
        return Err(format!("unexpected fleet status: {warm_up}").into());
    }
    println!("{warm_up}");

    // Cold: a new pool per call, as a CLI or a fresh replica sees it (server
    // processes that have not opened these tables yet; connecting included).
    let mut cold: Vec<Duration> = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let fresh = db.connect().await?;
        let status = TenantFleet::<TwoMigrations>::new(fresh.clone())
            .fleet_status()
            .await?;
        cold.push(started.elapsed());
        std::hint::black_box(status);
        fresh.close().await?;
    }
    // Warm: the same pool again and again, as a long-running process sees it.
    let mut warm: Vec<Duration> = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let status = fleet.fleet_status().await?;
        warm.push(started.elapsed());
        std::hint::black_box(status);
    }
    for (label, mut times) in [("cold pool", cold), ("warm pool", warm)] {
        times.sort();
        println!(
            "fleet_status over {count} schemas, {label}: median {:.1?} (min {:.1?}, max {:.1?}, 5 runs)",
            times[2], times[0], times[4],
        );
    }

    conn.close().await?;
    db.close().await?;
    Ok(())
}
