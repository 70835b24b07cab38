//! Analytics across every tenant: invoice totals per status for the whole
//! fleet, and the tenants that billed most, from ONE select written for one
//! tenant, run by `TenantFleet::read_across` as chunked `UNION ALL` queries
//! in one read-only snapshot.
//!
//! ```sh
//! cargo run --example cross_tenant                                # 200 tenants, a throwaway database
//! cargo run --release --example cross_tenant -- --tenants 1000 --rounds 5   # the BENCHMARKS.md run
//! ```
//!
//! It also times the same report the way it is done without the library: a
//! loop of per-tenant scoped transactions (one after another, and four at a
//! time), interleaved round by round with the cross-tenant read, and prints
//! the medians.
//!
//! With `DATABASE_URL` set it creates the tenants `analytics-0000`… there if
//! missing, with their invoices, and leaves them; unset, it uses a throwaway
//! database (see `shared/demo_fallback.rs`, not for your application).

#![allow(clippy::print_stdout, clippy::print_stderr, unreachable_pub)]
// Migrations take `&SchemaManager` as sea-orm-migration documents them.
#![allow(elided_lifetimes_in_paths)]

use std::collections::BTreeMap;
use std::env::VarError;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::{StreamExt, TryStreamExt, stream};
use sea_orm::sea_query::{Alias, Asterisk, Expr, ExprTrait, PostgresQueryBuilder, Query};
use sea_orm::{ConnectOptions, ConnectionTrait, DbBackend, QueryResult, Statement};
use sea_orm_migration::prelude::*;
use tenancy::migrate::{ReadAcross, StatusFilter};
use tenancy::{NewTenant, TenantDb, TenantFleet, TenantId};

#[path = "shared/demo_fallback.rs"]
mod demo_fallback;

/// Analytics across tenants, and its timing against a per-tenant loop.
#[derive(Parser, Debug)]
struct Args {
    /// Tenants to create (if missing) and read.
    #[arg(long, default_value_t = 200)]
    tenants: usize,
    /// Invoices per tenant.
    #[arg(long, default_value_t = 50)]
    invoices: usize,
    /// Timed rounds, each running every method once, in rotating order.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Tenants per UNION ALL query.
    #[arg(long, default_value_t = ReadAcross::DEFAULT_CHUNK_SIZE)]
    chunk: usize,
    /// Connections running chunks at once, sharing one snapshot.
    #[arg(long, default_value_t = 4)]
    connections: usize,
}

/// The tenant migration: one invoices table.
struct CreateInvoices;

impl MigrationName for CreateInvoices {
    fn name(&self) -> &str {
        "m20260101_000001_create_invoices"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateInvoices {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE TABLE invoices (
                    id serial PRIMARY KEY,
                    customer text NOT NULL,
                    amount_cents bigint NOT NULL,
                    status text NOT NULL,
                    issued_on date NOT NULL
                )",
            )
            .await
            .map(drop)
    }
}

struct TenantMigrator;

impl MigratorTrait for TenantMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateInvoices)]
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let (conn, throwaway) = match std::env::var("DATABASE_URL") {
        Ok(url) => {
            println!("connecting to DATABASE_URL");
            let conn = tenancy::orm::connect(ConnectOptions::new(url))
                .await
                .map_err(|err| format!("{err} (check DATABASE_URL)"))?;
            (conn, None)
        }
        Err(VarError::NotPresent) => {
            let (conn, test_db) = demo_fallback::throwaway_database().await?;
            (conn, Some(test_db))
        }
        Err(err @ VarError::NotUnicode(_)) => return Err(format!("DATABASE_URL: {err}").into()),
    };
    let fleet = TenantFleet::<TenantMigrator>::new(conn.clone());
    let db = TenantDb::new(conn.clone())?;
    provision(&fleet, &db, &args).await?;

    // The report, written for ONE tenant: unqualified `invoices`.
    let select = Query::select()
        .column(Alias::new("status"))
        .expr_as(Expr::col(Asterisk).count(), Alias::new("invoices"))
        .expr_as(
            Expr::col(Alias::new("amount_cents"))
                .sum()
                .cast_as(Alias::new("bigint")),
            Alias::new("total_cents"),
        )
        .from(Alias::new("invoices"))
        .and_where(
            Expr::col(Alias::new("issued_on"))
                .gte(Expr::val("2026-01-01").cast_as(Alias::new("date"))),
        )
        .group_by_col(Alias::new("status"))
        .to_owned();
    let options = ReadAcross::new()
        .requires("m20260101_000001_create_invoices")
        .chunk_size(args.chunk)
        .connections(args.connections);

    let read = fleet.read_across(select.clone(), options.clone()).await?;
    println!(
        "reading {} tenants ({} skipped)",
        read.tenants.len(),
        read.skipped.len()
    );
    for skipped in &read.skipped {
        println!("  skipped {}: {}", skipped.tenant, skipped.reason);
    }
    let tenants = read.tenants.clone();
    let rows: Vec<QueryResult> = read.rows.try_collect().await?;
    print_report(&rows)?;

    // Timing: the same report, three ways, interleaved round by round.
    let (sql, values) = select.build(PostgresQueryBuilder);
    let per_tenant = Statement::from_sql_and_values(DbBackend::Postgres, sql, values);
    let mut times: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    for round in 0..args.rounds {
        for method in rotate(["read_across", "loop", "loop x4"], round) {
            let started = Instant::now();
            let count = match method {
                "read_across" => {
                    fleet
                        .read_across(select.clone(), options.clone())
                        .await?
                        .rows
                        .try_fold(0, |n, _| async move { Ok(n + 1) })
                        .await?
                }
                "loop" => per_tenant_loop(&db, &tenants, &per_tenant, 1).await?,
                _ => per_tenant_loop(&db, &tenants, &per_tenant, 4).await?,
            };
            times.entry(method).or_default().push(started.elapsed());
            if count != rows.len() {
                return Err(format!("{method} read {count} rows, expected {}", rows.len()).into());
            }
        }
    }
    let baseline = median(&times["loop"]);
    println!(
        "\n{} tenants, {} rounds (median; ratio to the sequential loop):",
        tenants.len(),
        args.rounds
    );
    for (method, samples) in &times {
        let m = median(samples);
        println!(
            "  {method:<12} {:>9.1} ms  {:>6.3}",
            m.as_secs_f64() * 1e3,
            m.as_secs_f64() / baseline.as_secs_f64()
        );
    }

    conn.close().await?;
    if let Some(test_db) = throwaway {
        test_db.close().await?;
    }
    Ok(())
}

/// Creates the missing tenants (four at a time) and gives each its invoices.
async fn provision(
    fleet: &TenantFleet<TenantMigrator>,
    db: &TenantDb,
    args: &Args,
) -> Result<(), Box<dyn std::error::Error>> {
    fleet.install().await?;
    let existing = fleet.list(StatusFilter::All).await?.tenants;
    let missing: Vec<TenantId> = (0..args.tenants)
        .map(|i| TenantId::new(&format!("analytics-{i:04}")))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|id| !existing.iter().any(|t| t.id == *id))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!(
        "creating {} tenants with {} invoices each",
        missing.len(),
        args.invoices
    );
    let invoices = <i64 as TryFrom<usize>>::try_from(args.invoices)?;
    let created: Vec<Result<(), Box<dyn std::error::Error>>> = stream::iter(missing)
        .map(|id| async move {
            fleet.create(&id, NewTenant::new()).await?;
            let txn = db.begin_registered(&id).await?;
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO invoices (customer, amount_cents, status, issued_on) \
                 SELECT 'customer ' || (g % 7), (g * 1337 + abs(hashtext($1)) % 5000) % 100000, \
                        (ARRAY['draft', 'sent', 'paid', 'void'])[1 + g % 4], \
                        date '2025-10-01' + (g * 3 % 200)::int \
                 FROM generate_series(1, $2) g",
                [id.as_str().into(), invoices.into()],
            ))
            .await?;
            txn.commit().await?;
            Ok(())
        })
        .buffer_unordered(4)
        .collect()
        .await;
    created.into_iter().collect::<Result<Vec<()>, _>>()?;
    Ok(())
}

/// The fleet-wide report: totals per status, and the five tenants that
/// billed most (paid).
fn print_report(rows: &[QueryResult]) -> Result<(), Box<dyn std::error::Error>> {
    let mut by_status: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut paid: Vec<(i64, String)> = Vec::new();
    for row in rows {
        let tenant: String = row.try_get("", "tenant_id")?;
        let status: String = row.try_get("", "status")?;
        let invoices: i64 = row.try_get("", "invoices")?;
        let total: i64 = row.try_get("", "total_cents")?;
        let entry = by_status.entry(status.clone()).or_default();
        entry.0 += invoices;
        entry.1 += total;
        if status == "paid" {
            paid.push((total, tenant));
        }
    }
    println!("since 2026-01-01, all tenants:");
    for (status, (invoices, total)) in &by_status {
        println!("  {status:<6} {invoices:>7} invoices {:>14}", money(*total));
    }
    paid.sort_by(|a, b| b.cmp(a));
    println!("most paid:");
    for (total, tenant) in paid.iter().take(5) {
        println!("  {tenant:<16} {:>12}", money(*total));
    }
    Ok(())
}

/// The report the way it is done without the library: one scoped
/// transaction per tenant, `concurrency` at a time. Returns the rows read.
async fn per_tenant_loop(
    db: &TenantDb,
    tenants: &[TenantId],
    statement: &Statement,
    concurrency: usize,
) -> Result<usize, Box<dyn std::error::Error>> {
    let counts: Vec<Result<usize, Box<dyn std::error::Error>>> = stream::iter(tenants)
        .map(|id| async move {
            let txn = db.begin_registered(id).await?;
            let rows = txn.query_all_raw(statement.clone()).await?;
            txn.commit().await?;
            Ok(rows.len())
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    counts.into_iter().sum()
}

/// Cents as `1234.56`.
fn money(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, (cents % 100).abs())
}

fn rotate<const N: usize>(mut methods: [&'static str; N], round: usize) -> [&'static str; N] {
    methods.rotate_left(round % N);
    methods
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}
