//! How much does scoping a transaction to a tenant cost?
//!
//! One primary-key SELECT per transaction, in each of these shapes, on one
//! pool, in one run, interleaved round by round so drift hits all alike:
//!
//! - `plain`: a plain SeaORM transaction (`begin`, SELECT, `commit`) on `public.items`
//! - `scoped`: our `TenantDb::begin` (one `BEGIN; SET LOCAL search_path …; <schema check>`
//!   message), same SELECT. Every tenant schema has a migration ledger (`seaql_migrations`),
//!   as in a fleet run by `tenancy-migrate`, so the check is a `LOCK TABLE` on it
//! - `scoped-probe`: `scoped` with `TenantDb::with_probe_table(seaql_migrations)`: the same
//!   lock, without the default's fallback bookkeeping
//! - `scoped-unmigrated`: `scoped` on a schema without a ledger (made by hand): the check is
//!   the `SELECT` fallback
//! - `naive`: SeaORM `begin`, then `SET LOCAL search_path` as its own statement, same SELECT
//! - `autocommit`: the SELECT alone, no transaction
//! - `scoped-spread`: `scoped`, each transaction on one of N tenant schemas at random
//! - `plain-spread`: `plain`, the SELECT schema-qualified to one of N tenant schemas at random
//! - `raw-*`: the opening message with each candidate schema check, sent by sqlx itself
//!   (`begin_with`), then the same SELECT through sqlx and `COMMIT`: what each check costs
//!   against `raw-none`, the same transaction with no check (see `BENCHMARKS.md`)
//! - `scoped-pooler`: `scoped` in pooler mode (`TenantDb::behind_pooler`: unnamed statements),
//!   on a pool of its own
//! - `raw-plain`: raw sqlx's own `begin()` (`BEGIN` alone), the same SELECT, `COMMIT`: against
//!   it, `raw-none` and `raw-lock` show what the opening message costs the server
//! - `plain-unnamed`: raw sqlx, a transaction with one unnamed SELECT (`.persistent(false)`)
//! - `pgb-scoped-pooler`, `pgb-plain-unnamed`: those two through the PgBouncer named by
//!   `TENANCY_TEST_PGBOUNCER` (skipped when unset). The default mode and SeaORM's plain
//!   transactions do not run through PgBouncer 1.18 in transaction mode at all (sqlx's named
//!   statements), so through it the baseline is the raw unnamed transaction.
//!
//! Run: `cargo bench --bench scoped_transactions` (options: `-- --help`).
//! Prints medians, throughput and the ratios against `plain`, as a Markdown table.

#![allow(
    unreachable_pub,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::time::{Duration, Instant};

use sea_orm::entity::prelude::*;
use sea_orm::{
    ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement, TransactionTrait,
};
use tenancy::{SchemaName, Tenant, TenantDb, TenantId};
use tenancy_testing::TestDatabase;

mod items {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "items")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i32,
        pub name: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

const ROWS: i32 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Plain,
    Scoped,
    ScopedProbe,
    ScopedUnmigrated,
    Naive,
    Autocommit,
    ScopedSpread,
    PlainSpread,
    RawPlain,
    Raw(Check),
    ScopedPooler,
    PlainUnnamed,
    PgbScopedPooler,
    PgbPlainUnnamed,
}

/// Candidate schema checks in the opening message (issue #8, section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// No check: the floor.
    None,
    /// `SELECT 1 / has_schema_privilege(…::regnamespace, 'USAGE')::int`: one row back.
    Select,
    /// The same in a WHERE clause: fails the same way, returns no row.
    Where,
    /// `LOCK TABLE "tenant".items IN ACCESS SHARE MODE`: needs a table every tenant has.
    Lock,
}

impl Check {
    const ALL: [Self; 4] = [Self::None, Self::Select, Self::Where, Self::Lock];

    fn sql(self, schema: &SchemaName) -> String {
        let path = format!(
            "BEGIN; SET LOCAL search_path TO {}, \"public\"",
            schema.quoted()
        );
        let oid = schema.regnamespace();
        match self {
            Self::None => path,
            Self::Select => {
                format!("{path}; SELECT 1 / pg_catalog.has_schema_privilege({oid}, 'USAGE')::int")
            }
            Self::Where => format!(
                "{path}; SELECT WHERE 1 / pg_catalog.has_schema_privilege({oid}, 'USAGE')::int = 0"
            ),
            Self::Lock => format!(
                "{path}; LOCK TABLE {}.items IN ACCESS SHARE MODE",
                schema.quoted()
            ),
        }
    }
}

impl Shape {
    const ALL: [Self; 17] = [
        Self::Plain,
        Self::Scoped,
        Self::ScopedProbe,
        Self::ScopedUnmigrated,
        Self::Naive,
        Self::Autocommit,
        Self::ScopedSpread,
        Self::PlainSpread,
        Self::RawPlain,
        Self::Raw(Check::None),
        Self::Raw(Check::Select),
        Self::Raw(Check::Where),
        Self::Raw(Check::Lock),
        Self::ScopedPooler,
        Self::PlainUnnamed,
        Self::PgbScopedPooler,
        Self::PgbPlainUnnamed,
    ];

    fn through_pgbouncer(self) -> bool {
        matches!(self, Self::PgbScopedPooler | Self::PgbPlainUnnamed)
    }

    fn name(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Scoped => "scoped",
            Self::ScopedProbe => "scoped-probe",
            Self::ScopedUnmigrated => "scoped-unmigrated",
            Self::Naive => "naive",
            Self::Autocommit => "autocommit",
            Self::ScopedSpread => "scoped-spread",
            Self::PlainSpread => "plain-spread",
            Self::RawPlain => "raw-plain",
            Self::Raw(Check::None) => "raw-none",
            Self::Raw(Check::Select) => "raw-select",
            Self::Raw(Check::Where) => "raw-where",
            Self::Raw(Check::Lock) => "raw-lock",
            Self::ScopedPooler => "scoped-pooler",
            Self::PlainUnnamed => "plain-unnamed",
            Self::PgbScopedPooler => "pgb-scoped-pooler",
            Self::PgbPlainUnnamed => "pgb-plain-unnamed",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Self::Plain => "(a) plain SeaORM transaction: BEGIN, SELECT, COMMIT",
            Self::Scoped => {
                "(b) TenantDb::begin: BEGIN; SET LOCAL … in one message, SELECT, COMMIT"
            }
            Self::ScopedProbe => "(b) with_probe_table(seaql_migrations): the lock, required",
            Self::ScopedUnmigrated => "(b) on a schema without a ledger: the SELECT check",
            Self::Naive => "(c) SeaORM begin(), SET LOCAL as its own statement, SELECT, COMMIT",
            Self::Autocommit => "(d) the SELECT alone, autocommit",
            Self::ScopedSpread => "(b) over N tenants at random",
            Self::PlainSpread => "(a) with the table schema-qualified, over N tenants at random",
            Self::RawPlain => "sqlx begin() (BEGIN alone), SELECT, COMMIT: the raw floor",
            Self::Raw(Check::None) => "sqlx begin_with(BEGIN; SET LOCAL …), SELECT, COMMIT",
            Self::Raw(Check::Select) => "raw-none + SELECT 1 / has_schema_privilege(…)::int",
            Self::Raw(Check::Where) => {
                "raw-none + SELECT WHERE 1 / has_schema_privilege(…)::int = 0"
            }
            Self::Raw(Check::Lock) => "raw-none + LOCK TABLE tenant.items IN ACCESS SHARE MODE",
            Self::ScopedPooler => "(b) in pooler mode: unnamed statements",
            Self::PlainUnnamed => "raw sqlx: BEGIN, unnamed SELECT, COMMIT",
            Self::PgbScopedPooler => "scoped-pooler through PgBouncer",
            Self::PgbPlainUnnamed => "plain-unnamed through PgBouncer",
        }
    }
}

/// Options of the benchmark (`cargo bench --bench scoped_transactions -- --help`).
#[derive(Debug, clap::Parser)]
struct Config {
    /// Concurrent clients, and the pool size.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Tenant schemas for the spread shapes.
    #[arg(long, default_value_t = 1000)]
    tenants: usize,
    /// Rounds; each runs every shape once, in rotating order.
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    /// Transactions per client per shape per round.
    #[arg(long, default_value_t = 250)]
    per_round: usize,
    /// Only these shapes (comma-separated names from the table), beside `plain`, the baseline;
    /// for profiling one shape (`--shapes scoped` under callgrind).
    #[arg(long, value_delimiter = ',')]
    shapes: Vec<String>,
    /// Keep the pool's test-before-acquire ping (SeaORM's default; one more round trip for all shapes).
    #[arg(long)]
    ping: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// A tiny deterministic generator: the benchmark needs spread, not quality.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % bound as u64) as usize
    }
}

struct Fixture {
    conn: DatabaseConnection,
    db: TenantDb,
    /// `db` with `with_probe_table(seaql_migrations)`.
    probe_db: TenantDb,
    tenants: Vec<Tenant>,
    /// A tenant whose schema has `items` but no migration ledger.
    unmigrated: Tenant,
    /// The opening message of each `raw-*` shape, for the first tenant.
    raw_begin: Vec<(Check, String)>,
    /// Pools that only ever run unnamed statements (pooler mode refuses
    /// connections with named ones cached): direct, and through PgBouncer.
    unnamed: Unnamed,
    pgbouncer: Option<Unnamed>,
}

struct Unnamed {
    pool: sea_orm::sqlx::PgPool,
    db: TenantDb,
}

async fn unnamed_pool(opts: sea_orm::ConnectOptions, config: &Config) -> Unnamed {
    let mut opts = opts;
    opts.max_connections(config.clients as u32)
        .min_connections(config.clients as u32)
        .test_before_acquire(config.ping);
    let conn = Database::connect(opts).await.unwrap();
    Unnamed {
        pool: conn.get_postgres_connection_pool().clone(),
        db: TenantDb::new(conn).unwrap().behind_pooler(),
    }
}

async fn plain_unnamed(pool: &sea_orm::sqlx::PgPool, id: i32) {
    use sea_orm::sqlx::Row as _;
    let mut txn = pool.begin().await.unwrap();
    let row = sea_orm::sqlx::query("SELECT id, name FROM public.items WHERE id = $1")
        .bind(id)
        .persistent(false)
        .fetch_optional(&mut *txn)
        .await
        .unwrap();
    txn.commit().await.unwrap();
    assert_eq!(row.map(|r| r.get::<i32, _>(0)), Some(id));
}

async fn setup(test_db: &TestDatabase, config: &Config) -> Fixture {
    let mut opts = test_db.connect_options();
    opts.max_connections(config.clients as u32)
        .min_connections(config.clients as u32)
        .test_before_acquire(config.ping);
    let conn = Database::connect(opts).await.unwrap();
    let rows: Vec<String> = (1..=ROWS).map(|i| format!("({i}, 'item {i}')")).collect();
    let rows = rows.join(", ");
    conn.execute_unprepared(&format!(
        "CREATE TABLE public.items (id int PRIMARY KEY, name text NOT NULL); \
         INSERT INTO public.items VALUES {rows}"
    ))
    .await
    .unwrap();
    let mut tenants = Vec::with_capacity(config.tenants);
    let mut ddl = String::new();
    for n in 0..config.tenants {
        let tenant = Tenant::from_id(TenantId::new(&format!("t{n:05}")).unwrap()).unwrap();
        let schema: &SchemaName = tenancy::TenantScope::schema(&tenant);
        let s = schema.quoted();
        ddl.push_str(&format!(
            "CREATE SCHEMA {s}; CREATE TABLE {s}.items (id int PRIMARY KEY, name text NOT NULL); \
             INSERT INTO {s}.items SELECT id, name FROM public.items; \
             CREATE TABLE {s}.seaql_migrations (version varchar PRIMARY KEY, applied_at bigint NOT NULL);"
        ));
        tenants.push(tenant);
        if ddl.len() > 200_000 || n + 1 == config.tenants {
            conn.execute_unprepared(&format!("BEGIN; {ddl} COMMIT;"))
                .await
                .unwrap();
            ddl.clear();
        }
    }
    // Made by hand, never migrated: no ledger to lock.
    let unmigrated = Tenant::from_id(TenantId::new("unmigrated").unwrap()).unwrap();
    let s = tenancy::TenantScope::schema(&unmigrated).quoted();
    conn.execute_unprepared(&format!(
        "CREATE SCHEMA {s}; CREATE TABLE {s}.items (id int PRIMARY KEY, name text NOT NULL); \
         INSERT INTO {s}.items SELECT id, name FROM public.items;"
    ))
    .await
    .unwrap();
    conn.execute_unprepared("VACUUM ANALYZE").await.unwrap();
    let db = TenantDb::new(conn.clone()).unwrap();
    let probe_db = db
        .clone()
        .with_probe_table(tenancy::TableName::migration_ledger());
    let first = tenancy::TenantScope::schema(&tenants[0]);
    let raw_begin = Check::ALL.iter().map(|c| (*c, c.sql(first))).collect();
    let unnamed = unnamed_pool(test_db.connect_options(), config).await;
    let pgbouncer = match test_db.pooler_connect_options().unwrap() {
        Some(opts) => Some(unnamed_pool(opts, config).await),
        None => None,
    };
    Fixture {
        conn,
        db,
        probe_db,
        tenants,
        unmigrated,
        raw_begin,
        unnamed,
        pgbouncer,
    }
}

async fn one_transaction(fx: &Fixture, shape: Shape, rng: &mut Lcg) {
    let id = rng.next(ROWS as usize) as i32 + 1;
    match shape {
        Shape::Plain => {
            let txn = fx.conn.begin().await.unwrap();
            let row = items::Entity::find_by_id(id).one(&txn).await.unwrap();
            txn.commit().await.unwrap();
            assert!(row.is_some());
        }
        Shape::Scoped | Shape::ScopedSpread => {
            let tenant = if shape == Shape::Scoped {
                &fx.tenants[0]
            } else {
                &fx.tenants[rng.next(fx.tenants.len())]
            };
            let txn = fx.db.begin(tenant).await.unwrap();
            let row = items::Entity::find_by_id(id).one(&txn).await.unwrap();
            txn.commit().await.unwrap();
            assert!(row.is_some());
        }
        Shape::ScopedProbe => {
            let txn = fx.probe_db.begin(&fx.tenants[0]).await.unwrap();
            let row = items::Entity::find_by_id(id).one(&txn).await.unwrap();
            txn.commit().await.unwrap();
            assert!(row.is_some());
        }
        Shape::ScopedUnmigrated => {
            let txn = fx.db.begin(&fx.unmigrated).await.unwrap();
            let row = items::Entity::find_by_id(id).one(&txn).await.unwrap();
            txn.commit().await.unwrap();
            assert!(row.is_some());
        }
        Shape::ScopedPooler | Shape::PgbScopedPooler => {
            let pool = if shape == Shape::ScopedPooler {
                &fx.unnamed
            } else {
                fx.pgbouncer.as_ref().unwrap()
            };
            let txn = pool.db.begin(&fx.tenants[0]).await.unwrap();
            let row = items::Entity::find_by_id(id).one(&txn).await.unwrap();
            txn.commit().await.unwrap();
            assert!(row.is_some());
        }
        Shape::PlainUnnamed => plain_unnamed(&fx.unnamed.pool, id).await,
        Shape::PgbPlainUnnamed => plain_unnamed(&fx.pgbouncer.as_ref().unwrap().pool, id).await,
        Shape::Naive => {
            let txn = fx.conn.begin().await.unwrap();
            let path = tenancy::TenantScope::search_path(&fx.tenants[0]);
            txn.execute_unprepared(&path.set_local_statement())
                .await
                .unwrap();
            let row = items::Entity::find_by_id(id).one(&txn).await.unwrap();
            txn.commit().await.unwrap();
            assert!(row.is_some());
        }
        Shape::Autocommit => {
            let row = items::Entity::find_by_id(id).one(&fx.conn).await.unwrap();
            assert!(row.is_some());
        }
        Shape::RawPlain => {
            let pool = fx.conn.get_postgres_connection_pool();
            raw_select(pool.begin().await.unwrap(), id).await;
        }
        Shape::Raw(check) => {
            let begin = &fx.raw_begin.iter().find(|(c, _)| *c == check).unwrap().1;
            let pool = fx.conn.get_postgres_connection_pool();
            let txn = pool
                .begin_with(sea_orm::sqlx::AssertSqlSafe(begin.clone()))
                .await
                .unwrap();
            raw_select(txn, id).await;
        }
        Shape::PlainSpread => {
            let tenant = &fx.tenants[rng.next(fx.tenants.len())];
            let schema = tenancy::TenantScope::schema(tenant).quoted();
            let txn = fx.conn.begin().await.unwrap();
            let row = txn
                .query_one_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    format!("SELECT id, name FROM {schema}.items WHERE id = $1"),
                    [id.into()],
                ))
                .await
                .unwrap();
            txn.commit().await.unwrap();
            assert!(row.is_some());
        }
    }
}

#[derive(Default)]
struct Samples {
    latencies: Vec<Duration>,
    busy: Duration,
    transactions: usize,
}

/// The raw shapes' SELECT and COMMIT, through sqlx alone.
async fn raw_select(
    mut txn: sea_orm::sqlx::Transaction<'static, sea_orm::sqlx::Postgres>,
    id: i32,
) {
    let row: Option<(i32, String)> =
        sea_orm::sqlx::query_as("SELECT id, name FROM items WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *txn)
            .await
            .unwrap();
    txn.commit().await.unwrap();
    assert!(row.is_some());
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort_unstable();
    values[values.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let config = <Config as clap::Parser>::parse();
    if let Some(unknown) = config
        .shapes
        .iter()
        .find(|name| !Shape::ALL.iter().any(|shape| shape.name() == name.as_str()))
    {
        eprintln!("unknown shape `{unknown}`; the shapes are the names in the results table");
        std::process::exit(2);
    }
    let test_db = TestDatabase::create()
        .await
        .expect("a PostgreSQL server for the benchmark");
    let setup_started = Instant::now();
    let fx = std::sync::Arc::new(setup(&test_db, &config).await);
    println!(
        "setup: {} tenant schemas in {:.1} s on {}",
        config.tenants,
        setup_started.elapsed().as_secs_f64(),
        test_db.source()
    );

    let shapes: Vec<Shape> = Shape::ALL
        .into_iter()
        .filter(|shape| fx.pgbouncer.is_some() || !shape.through_pgbouncer())
        .filter(|shape| {
            config.shapes.is_empty()
                || *shape == Shape::Plain
                || config.shapes.iter().any(|name| name == shape.name())
        })
        .collect();
    if fx.pgbouncer.is_none() {
        println!(
            "no PgBouncer: the pgb-* shapes are skipped (set {}=host:port)",
            tenancy_testing::PGBOUNCER_VAR
        );
    }

    // Warm every connection's statement cache and the server's catalog caches.
    for &shape in &shapes {
        let mut rng = Lcg(1);
        for _ in 0..200 {
            one_transaction(&fx, shape, &mut rng).await;
        }
    }

    let mut samples: Vec<Samples> = shapes.iter().map(|_| Samples::default()).collect();
    for round in 0..config.rounds {
        // Rotate the order so no shape always runs first or last in a round.
        for k in 0..shapes.len() {
            let index = (round + k) % shapes.len();
            let shape = shapes[index];
            let started = Instant::now();
            let mut tasks = Vec::new();
            for client in 0..config.clients {
                let fx = std::sync::Arc::clone(&fx);
                let per_round = config.per_round;
                tasks.push(tokio::spawn(async move {
                    let mut rng = Lcg((round * 1000 + client) as u64 + 7);
                    let mut latencies = Vec::with_capacity(per_round);
                    for _ in 0..per_round {
                        let t = Instant::now();
                        one_transaction(&fx, shape, &mut rng).await;
                        latencies.push(t.elapsed());
                    }
                    latencies
                }));
            }
            for task in tasks {
                let latencies = task.await.unwrap();
                samples[index].transactions += latencies.len();
                samples[index].latencies.extend(latencies);
            }
            samples[index].busy += started.elapsed();
        }
    }

    let plain_index = 0;
    let plain_median = median(&mut samples[plain_index].latencies);
    let plain_tps =
        samples[plain_index].transactions as f64 / samples[plain_index].busy.as_secs_f64();
    println!(
        "\n{} clients, pool of {}, {} rounds x {} transactions per client per shape, {} tenants, \
         test-before-acquire ping {}\n",
        config.clients,
        config.clients,
        config.rounds,
        config.per_round,
        config.tenants,
        if config.ping { "on" } else { "off" }
    );
    println!(
        "| shape | what | median latency (µs) | throughput (tx/s) | latency / plain | plain tps / tps |"
    );
    println!("|---|---|---:|---:|---:|---:|");
    for (index, shape) in shapes.iter().enumerate() {
        let med = median(&mut samples[index].latencies);
        let tps = samples[index].transactions as f64 / samples[index].busy.as_secs_f64();
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.3} | {:.3} |",
            shape.name(),
            shape.what(),
            med.as_secs_f64() * 1e6,
            tps,
            med.as_secs_f64() / plain_median.as_secs_f64(),
            plain_tps / tps,
        );
    }

    // Pooler mode against its baselines, same run.
    let summary: Vec<(Shape, Duration, f64)> = shapes
        .iter()
        .enumerate()
        .map(|(index, &shape)| {
            let med = median(&mut samples[index].latencies);
            let tps = samples[index].transactions as f64 / samples[index].busy.as_secs_f64();
            (shape, med, tps)
        })
        .collect();
    let find = |shape: Shape| summary.iter().find(|(s, _, _)| *s == shape);
    println!();
    for (a, b) in [
        // The server's share of scoping: the opening message against BEGIN alone, both from raw sqlx.
        (Shape::Raw(Check::None), Shape::RawPlain),
        (Shape::Raw(Check::Lock), Shape::RawPlain),
        // Ours: the same opening, sent by TenantDb rather than raw sqlx.
        (Shape::Scoped, Shape::Raw(Check::Lock)),
        // SeaORM's own client-side cost over raw sqlx.
        (Shape::Plain, Shape::RawPlain),
        (Shape::ScopedPooler, Shape::Scoped),
        (Shape::ScopedPooler, Shape::PlainUnnamed),
        (Shape::PgbScopedPooler, Shape::PgbPlainUnnamed),
        (Shape::PgbScopedPooler, Shape::ScopedPooler),
    ] {
        if let (Some((_, med_a, tps_a)), Some((_, med_b, tps_b))) = (find(a), find(b)) {
            println!(
                "{} / {}: latency {:.3}, throughput {:.3}",
                a.name(),
                b.name(),
                med_a.as_secs_f64() / med_b.as_secs_f64(),
                tps_b / tps_a,
            );
        }
    }

    drop(fx);
    test_db.close().await.unwrap();
}
