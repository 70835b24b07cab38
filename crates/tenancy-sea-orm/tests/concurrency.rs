//! Many tasks, many tenants, few connections: every pooled connection serves
//! one tenant after another, and no row of one tenant is ever read in
//! another's scope.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use common::{CANARY_TENANT, Route, TestResult, create_tenants, project, scalar, setup};
use sea_orm::{
    ActiveModelTrait as _, ConnectionTrait as _, DbBackend, DbErr, EntityTrait as _,
    QueryOrder as _, QuerySelect as _, Set, Statement,
};
use tenancy_core::{Tenant, TenantScope as _};
use tenancy_sea_orm::{TenantDb, TenantTransaction};

const TASKS: u64 = 32;
const TRANSACTIONS_PER_TASK: u64 = 200;
const TENANTS: u64 = 50;
const POOL: u32 = 4;

/// Deterministic pseudo-random tenant for transaction `i` of task `task`.
fn tenant_index(task: u64, i: u64) -> usize {
    usize::try_from((task * 7919 + i * 104_729) % TENANTS).unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Insert a row, read, commit.
    InsertCommit,
    /// Insert a row, read, then the closure fails: rolled back.
    InsertRollback,
    /// Read only.
    Read,
}

/// About 1 in 5 transactions inserts and commits, 1 in 10 inserts and rolls back.
fn kind(task: u64, i: u64) -> Kind {
    match (task * 3 + i) % 10 {
        0 | 5 => Kind::InsertCommit,
        7 => Kind::InsertRollback,
        _ => Kind::Read,
    }
}

#[derive(Default)]
struct Counts {
    transactions: AtomicU64,
    rows_read: AtomicU64,
    inserts: AtomicU64,
    rolled_back_inserts: AtomicU64,
}

/// Reads the tenant's last 20 rows two ways and asserts each belongs to it.
async fn read_and_check(txn: &TenantTransaction, tenant: &str) -> Result<u64, DbErr> {
    let rows = project::Entity::find()
        .order_by_desc(project::Column::Id)
        .limit(20)
        .all(txn)
        .await?;
    for row in &rows {
        assert_eq!(
            row.tenant, tenant,
            "{}'s scope read a row of {}",
            tenant, row.tenant
        );
    }
    let foreign = txn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM projects WHERE tenant <> $1",
            [tenant.into()],
        ))
        .await?
        .unwrap()
        .try_get::<i64>("", "n")?;
    assert_eq!(
        foreign, 0,
        "{tenant}'s scope sees {foreign} rows of other tenants"
    );
    Ok(rows.len() as u64)
}

async fn insert(txn: &TenantTransaction, tenant: &str, task: u64, i: u64) -> Result<(), DbErr> {
    let model = project::ActiveModel {
        tenant: Set(tenant.to_owned()),
        name: Set(format!("task {task} txn {i}")),
        code: Set(i32::try_from(i).unwrap()),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    assert_eq!(model.tenant, tenant);
    Ok(())
}

async fn run_task(
    db: TenantDb,
    tenants: Arc<Vec<Tenant>>,
    counts: Arc<Counts>,
    task: u64,
) -> Result<(), DbErr> {
    for i in 0..TRANSACTIONS_PER_TASK {
        let tenant = &tenants[tenant_index(task, i)];
        let id = tenant.id().as_str().to_owned();
        match kind(task, i) {
            Kind::Read => {
                // The begin/commit API.
                let txn = db.begin(tenant).await?;
                assert_eq!(txn.scope().tenant.as_ref(), Some(tenant.id()));
                let read = read_and_check(&txn, &id).await?;
                txn.commit().await?;
                counts.rows_read.fetch_add(read, Ordering::Relaxed);
            }
            Kind::InsertCommit => {
                // The closure API.
                let counts = Arc::clone(&counts);
                db.transaction::<_, _, DbErr>(tenant, async move |txn| {
                    insert(txn, &id, task, i).await?;
                    let read = read_and_check(txn, &id).await?;
                    counts.rows_read.fetch_add(read, Ordering::Relaxed);
                    counts.inserts.fetch_add(1, Ordering::Relaxed);
                    Ok(())
                })
                .await?;
            }
            Kind::InsertRollback => {
                let counts = Arc::clone(&counts);
                let result = db
                    .transaction::<_, (), DbErr>(tenant, async move |txn| {
                        insert(txn, &id, task, i).await?;
                        let read = read_and_check(txn, &id).await?;
                        counts.rows_read.fetch_add(read, Ordering::Relaxed);
                        counts.rolled_back_inserts.fetch_add(1, Ordering::Relaxed);
                        Err(DbErr::Custom("roll back".to_owned()))
                    })
                    .await;
                assert!(matches!(result, Err(DbErr::Custom(_))), "{result:?}");
            }
        }
        counts.transactions.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

async fn many_tasks_many_tenants_few_connections(route: Route) -> TestResult {
    let (test_db, conn) = setup(POOL).await?;
    let ids: Vec<String> = (0..TENANTS).map(|n| format!("t{n:02}")).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let tenants = Arc::new(create_tenants(&conn, &id_refs).await?);
    // The library's pool goes by `route`; setup and checks use `conn`, direct.
    let Some(app) = route.connect("concurrency", &test_db, POOL).await? else {
        return common::finish(test_db, vec![conn]).await;
    };
    let db = route.tenant_db(&app);
    let counts = Arc::new(Counts::default());

    let started = Instant::now();
    let handles: Vec<_> = (0..TASKS)
        .map(|task| {
            tokio::spawn(run_task(
                db.clone(),
                Arc::clone(&tenants),
                Arc::clone(&counts),
                task,
            ))
        })
        .collect();
    for handle in handles {
        handle.await??;
    }
    let elapsed = started.elapsed();

    let transactions = counts.transactions.load(Ordering::Relaxed);
    let rows_read = counts.rows_read.load(Ordering::Relaxed);
    let inserts = counts.inserts.load(Ordering::Relaxed);
    let rolled_back = counts.rolled_back_inserts.load(Ordering::Relaxed);
    println!(
        "concurrency: {transactions} transactions ({TASKS} tasks x {TRANSACTIONS_PER_TASK}) over {TENANTS} tenants \
         on {POOL} connections in {elapsed:.2?}: {rows_read} rows read, {inserts} inserts committed, \
         {rolled_back} inserts rolled back"
    );

    // The expected totals, from the same deterministic schedule.
    let mut expected_rows = vec![0_i64; ids.len()];
    let (mut expected_inserts, mut expected_rollbacks) = (0, 0);
    for task in 0..TASKS {
        for i in 0..TRANSACTIONS_PER_TASK {
            match kind(task, i) {
                Kind::InsertCommit => {
                    expected_inserts += 1;
                    expected_rows[tenant_index(task, i)] += 1;
                }
                Kind::InsertRollback => expected_rollbacks += 1,
                Kind::Read => {}
            }
        }
    }
    assert_eq!(transactions, TASKS * TRANSACTIONS_PER_TASK);
    assert_eq!(inserts, expected_inserts);
    assert_eq!(rolled_back, expected_rollbacks);
    assert!(
        inserts * 6 >= transactions && inserts * 4 <= transactions,
        "about 1 in 5 inserts"
    );
    assert!(rows_read > transactions, "reads returned rows");

    // Each tenant's table holds exactly its committed rows, all its own.
    for (tenant, expected) in tenants.iter().zip(&expected_rows) {
        let schema = tenant.schema().quoted();
        let id = tenant.id().as_str();
        let total: i64 = scalar(&conn, &format!("SELECT count(*) FROM {schema}.projects")).await?;
        let own: i64 = scalar(
            &conn,
            &format!("SELECT count(*) FROM {schema}.projects WHERE tenant = '{id}'"),
        )
        .await?;
        assert_eq!(total, *expected, "rows of {id}");
        assert_eq!(own, total, "{id}'s table holds rows of other tenants");
    }
    // And the public table only its canary.
    let public = project::Entity::find().all(&conn).await?;
    assert_eq!(public.len(), 1);
    assert_eq!(public[0].tenant, CANARY_TENANT);

    // No server connection is left in a transaction.
    let stuck: i64 = scalar(
        &conn,
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
    )
    .await?;
    assert_eq!(stuck, 0, "a connection was left in a transaction");
    // Every connection of the library's pool is back to the default search
    // path. Through the pooler a client connection holds no server connection
    // between transactions, so there the unscoped reads (simple queries) land
    // on whichever server connection is free, and cover them all over a few.
    if route == Route::Direct {
        let mut held = Vec::new();
        for _ in 0..POOL {
            let txn = sea_orm::TransactionTrait::begin(&app).await?;
            assert_eq!(
                common::search_path(&txn).await?,
                common::DEFAULT_SEARCH_PATH
            );
            held.push(txn);
        }
        drop(held);
    }
    for _ in 0..POOL * 3 {
        assert_eq!(
            common::simple_text(&app, "SHOW search_path")
                .await?
                .as_deref(),
            Some(common::DEFAULT_SEARCH_PATH)
        );
    }

    drop(db);
    common::finish(test_db, vec![conn, app]).await
}

both_routes!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    many_tasks_many_tenants_few_connections
);
