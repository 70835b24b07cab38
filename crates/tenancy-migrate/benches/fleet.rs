//! Provisioning and fleet-wide migration against the raw-SQL floor, same run.
//!
//! - provisioning: `TenantFleet::create` (schema, 3 migrations building 5
//!   tables with uuid keys, foreign keys and indexes, migrations table,
//!   registry row, one transaction) against the same DDL sent as one script
//!   per tenant, alternating tenant by tenant;
//! - fan-out: one new 2-statement migration over every tenant with
//!   `migrate_all` at concurrency 1, 2, 4 and 8, against the same statements
//!   sent directly, one transaction per tenant, at the same concurrency;
//! - fleet status over the same tenants.
//!
//! Run: `cargo bench -p tenancy-migrate --bench fleet` (`-- --help` for sizes).
#![allow(
    unreachable_pub,
    elided_lifetimes_in_paths,
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use sea_orm_migration::prelude::*;
use tenancy_core::{SchemaNaming, TenantId};
use tenancy_migrate::{FleetConfig, MigrateAll, NewTenant, TenantFleet};
use tenancy_testing::TestDatabase;

/// Options (`cargo bench -p tenancy-migrate --bench fleet -- --help`).
#[derive(Debug, clap::Parser)]
struct Config {
    /// Tenants provisioned by each side in the provisioning comparison.
    #[arg(long, default_value_t = 200)]
    provision: usize,
    /// Tenants in the fan-out comparison.
    #[arg(long, default_value_t = 1000)]
    tenants: usize,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

const M1: &str = "
CREATE TABLE organizations (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT organizations_pkey PRIMARY KEY (id)
);
CREATE TABLE users (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL,
    email text NOT NULL,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_organization_fkey FOREIGN KEY (organization_id) REFERENCES organizations (id)
);";

const M2: &str = "
CREATE TABLE projects (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL,
    name text NOT NULL,
    archived boolean NOT NULL DEFAULT false,
    CONSTRAINT projects_pkey PRIMARY KEY (id),
    CONSTRAINT projects_organization_fkey FOREIGN KEY (organization_id) REFERENCES organizations (id)
);
CREATE TABLE tasks (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    project_id uuid NOT NULL,
    assignee_id uuid,
    title text NOT NULL,
    done boolean NOT NULL DEFAULT false,
    due date,
    CONSTRAINT tasks_pkey PRIMARY KEY (id),
    CONSTRAINT tasks_project_fkey FOREIGN KEY (project_id) REFERENCES projects (id),
    CONSTRAINT tasks_assignee_fkey FOREIGN KEY (assignee_id) REFERENCES users (id)
);
CREATE INDEX tasks_project_idx ON tasks (project_id);";

const M3: &str = "
CREATE TABLE comments (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    task_id uuid NOT NULL,
    author_id uuid NOT NULL,
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT comments_pkey PRIMARY KEY (id),
    CONSTRAINT comments_task_fkey FOREIGN KEY (task_id) REFERENCES tasks (id),
    CONSTRAINT comments_author_fkey FOREIGN KEY (author_id) REFERENCES users (id)
);
CREATE INDEX comments_task_idx ON comments (task_id);
CREATE INDEX tasks_assignee_idx ON tasks (assignee_id);";

/// The fan-out migration: two statements, like most real ones.
fn fan_out_sql(column: &str) -> String {
    format!(
        "ALTER TABLE tasks ADD COLUMN {column} integer NOT NULL DEFAULT 0; \
         CREATE INDEX tasks_{column}_idx ON tasks ({column});"
    )
}

/// A migration whose SQL is fixed at compile time.
struct Sql {
    name: &'static str,
    sql: fn() -> String,
}

impl MigrationName for Sql {
    fn name(&self) -> &str {
        self.name
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Sql {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(&(self.sql)())
            .await
            .map(drop)
    }
}

fn base() -> Vec<Box<dyn MigrationTrait>> {
    vec![
        Box::new(Sql {
            name: "m0001_organizations_users",
            sql: || M1.to_owned(),
        }),
        Box::new(Sql {
            name: "m0002_projects_tasks",
            sql: || M2.to_owned(),
        }),
        Box::new(Sql {
            name: "m0003_comments",
            sql: || M3.to_owned(),
        }),
    ]
}

/// The fan-out migrations, one per concurrency level; each migrator carries
/// all earlier ones, as a real migrator does.
const LEVELS: [(usize, &str, &str); 4] = [
    (1, "m0004_c1", "c1"),
    (2, "m0005_c2", "c2"),
    (4, "m0006_c4", "c4"),
    (8, "m0007_c8", "c8"),
];

macro_rules! level_migrator {
    ($name:ident, $count:expr) => {
        struct $name;
        impl MigratorTrait for $name {
            fn migrations() -> Vec<Box<dyn MigrationTrait>> {
                let mut all = base();
                for (_, name, column) in LEVELS.iter().take($count) {
                    let column = *column;
                    let sql: fn() -> String = match column {
                        "c1" => || fan_out_sql("c1"),
                        "c2" => || fan_out_sql("c2"),
                        "c4" => || fan_out_sql("c4"),
                        _ => || fan_out_sql("c8"),
                    };
                    all.push(Box::new(Sql { name, sql }));
                }
                all
            }
        }
    };
}

level_migrator!(Base, 0);
level_migrator!(Level1, 1);
level_migrator!(Level2, 2);
level_migrator!(Level4, 3);
level_migrator!(Level8, 4);

/// The raw floor for provisioning one tenant: everything `create` does, as
/// one script, one round trip.
fn raw_provision_script(id: &str, schema: &str) -> String {
    format!(
        "BEGIN;
         INSERT INTO public.tenants (tenant_id, schema_name, status) VALUES ('{id}', '{schema}', 'active');
         CREATE SCHEMA \"{schema}\";
         SET LOCAL search_path TO \"{schema}\", public;
         {M1} {M2} {M3}
         CREATE TABLE seaql_migrations (version varchar NOT NULL PRIMARY KEY, applied_at bigint NOT NULL);
         INSERT INTO seaql_migrations VALUES
           ('m0001_organizations_users', 0), ('m0002_projects_tasks', 0), ('m0003_comments', 0);
         COMMIT;"
    )
}

/// The raw floor for one tenant's fan-out migration. Its ledger is a table of
/// its own: a version unknown to the migrators in `seaql_migrations` would
/// (rightly) stop `migrate_all` on that tenant.
fn raw_fan_out_script(schema: &str, version: &str, column: &str) -> String {
    format!(
        "BEGIN;
         SET LOCAL search_path TO \"{schema}\", public;
         SELECT pg_advisory_xact_lock(hashtext('{schema}'));
         {}
         INSERT INTO raw_ledger VALUES ('{version}', 0);
         COMMIT;",
        fan_out_sql(&format!("{column}_raw"))
    )
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort_unstable();
    values[values.len() / 2]
}

async fn pool(test_db: &TestDatabase, size: u32) -> DatabaseConnection {
    let mut opts = test_db.connect_options();
    opts.max_connections(size).min_connections(1);
    Database::connect(opts).await.unwrap()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let config = <Config as clap::Parser>::parse();
    let test_db = TestDatabase::create().await.unwrap();
    let conn = pool(&test_db, 8).await;
    let fleet = TenantFleet::<Base>::with_config(
        conn.clone(),
        FleetConfig::default().with_naming(SchemaNaming::with_prefix("t_").unwrap()),
    );
    fleet.install().await.unwrap();
    println!("server: {}", test_db.source());

    // Provisioning, alternating ours and raw tenant by tenant.
    let mut ours = Vec::new();
    let mut raw = Vec::new();
    for i in 0..config.provision {
        let id = TenantId::new(&format!("p{i:05}")).unwrap();
        let started = Instant::now();
        fleet.create(&id, NewTenant::new()).await.unwrap();
        ours.push(started.elapsed());

        let raw_id = format!("r{i:05}");
        let script = raw_provision_script(&raw_id, &format!("t_{raw_id}"));
        let started = Instant::now();
        conn.execute_unprepared(&script).await.unwrap();
        raw.push(started.elapsed());
    }
    let (ours_total, raw_total): (Duration, Duration) = (ours.iter().sum(), raw.iter().sum());
    let (ours_median, raw_median) = (median(ours), median(raw));
    println!("\n## Provisioning {} tenants, serial\n", config.provision);
    println!("| | median per tenant (ms) | total (s) |");
    println!("|---|---:|---:|");
    println!(
        "| TenantFleet::create | {:.2} | {:.2} |",
        ours_median.as_secs_f64() * 1e3,
        ours_total.as_secs_f64()
    );
    println!(
        "| raw script | {:.2} | {:.2} |",
        raw_median.as_secs_f64() * 1e3,
        raw_total.as_secs_f64()
    );
    println!(
        "| ratio | {:.3} | {:.3} |",
        ours_median.as_secs_f64() / raw_median.as_secs_f64(),
        ours_total.as_secs_f64() / raw_total.as_secs_f64()
    );
    conn.execute_unprepared("DELETE FROM public.tenants WHERE tenant_id LIKE 'r%'")
        .await
        .unwrap();

    // Fan-out fleet: more tenants, created with the raw script (fast), then
    // registered; the provisioning tenants stay in it.
    let started = Instant::now();
    let extra = config.tenants.saturating_sub(config.provision);
    let scripts: Vec<String> = (0..extra)
        .map(|i| {
            let id = format!("f{i:05}");
            raw_provision_script(&id, &format!("t_{id}"))
        })
        .collect();
    let setup = conn.clone();
    futures_util::stream::iter(scripts)
        .for_each_concurrent(4, |script| {
            let setup = setup.clone();
            async move {
                setup.execute_unprepared(&script).await.unwrap();
            }
        })
        .await;
    conn.execute_unprepared("VACUUM ANALYZE").await.unwrap();
    let schemas: Vec<String> = fleet
        .list(tenancy_migrate::StatusFilter::All)
        .await
        .unwrap()
        .tenants
        .into_iter()
        .map(|t| t.schema.to_string())
        .collect();
    println!(
        "\nfan-out fleet: {} tenants (set up in {:.1} s)",
        schemas.len(),
        started.elapsed().as_secs_f64()
    );

    let ledgers: Vec<String> = schemas
        .iter()
        .map(|schema| {
            format!("CREATE TABLE \"{schema}\".raw_ledger (version text PRIMARY KEY, applied_at bigint);")
        })
        .collect();
    for chunk in ledgers.chunks(200) {
        conn.execute_unprepared(&chunk.concat()).await.unwrap();
    }

    println!(
        "\n## One 2-statement migration over {} tenants\n",
        schemas.len()
    );
    println!(
        "| concurrency | migrate_all (s) | schemas/s | raw floor (s) | raw schemas/s | ratio |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for (step, (concurrency, version, column)) in LEVELS.iter().enumerate() {
        let conn_n = pool(&test_db, *concurrency as u32 + 1).await;
        let options = MigrateAll::new().concurrency(*concurrency);
        let started = Instant::now();
        let report = match step {
            0 => {
                TenantFleet::<Level1>::new(conn_n.clone())
                    .migrate_all(options)
                    .await
            }
            1 => {
                TenantFleet::<Level2>::new(conn_n.clone())
                    .migrate_all(options)
                    .await
            }
            2 => {
                TenantFleet::<Level4>::new(conn_n.clone())
                    .migrate_all(options)
                    .await
            }
            _ => {
                TenantFleet::<Level8>::new(conn_n.clone())
                    .migrate_all(options)
                    .await
            }
        }
        .unwrap();
        let ours = started.elapsed();
        assert!(report.is_success(), "{report}");
        assert_eq!(report.applied_total(), schemas.len());

        let raw_scripts: Vec<String> = schemas
            .iter()
            .map(|schema| raw_fan_out_script(schema, version, column))
            .collect();
        let raw_conn = Arc::new(conn_n.clone());
        let started = Instant::now();
        futures_util::stream::iter(raw_scripts)
            .for_each_concurrent(*concurrency, |script| {
                let raw_conn = Arc::clone(&raw_conn);
                async move {
                    raw_conn.execute_unprepared(&script).await.unwrap();
                }
            })
            .await;
        let raw = started.elapsed();
        let n = schemas.len() as f64;
        println!(
            "| {concurrency} | {:.2} | {:.0} | {:.2} | {:.0} | {:.3} |",
            ours.as_secs_f64(),
            n / ours.as_secs_f64(),
            raw.as_secs_f64(),
            n / raw.as_secs_f64(),
            ours.as_secs_f64() / raw.as_secs_f64()
        );
        conn_n.close().await.unwrap();
    }

    let idle = TenantFleet::<Level8>::new(conn.clone());
    let started = Instant::now();
    let report = idle.migrate_all(MigrateAll::new()).await.unwrap();
    assert!(
        report.is_success() && report.applied_total() == 0,
        "{report}"
    );
    println!(
        "\nmigrate_all with nothing pending over {} tenants: {:.3} s",
        schemas.len(),
        started.elapsed().as_secs_f64()
    );

    println!("\n## Fleet status over {} tenants\n", schemas.len());
    let status_fleet = TenantFleet::<Level8>::new(conn.clone());
    let mut times = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let status = status_fleet.fleet_status().await.unwrap();
        times.push(started.elapsed());
        assert!(status.is_up_to_date());
    }
    println!(
        "fleet_status: median of 5 = {:.3} s",
        median(times).as_secs_f64()
    );

    conn.close().await.unwrap();
    test_db.close().await.unwrap();
}
