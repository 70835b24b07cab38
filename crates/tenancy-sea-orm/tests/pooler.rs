//! Readers and writers through a transaction-mode pooler.
//!
//! Behind PgBouncer in transaction mode, a client connection gets a server
//! connection per transaction, not for good. sqlx's named prepared statements
//! (`sqlx_s_1`, `sqlx_s_2`, ... counted per client connection) then meet
//! server connections that hold another client's statements under the same
//! names. With two statement shapes taking the same parameter types, first
//! used in opposite orders by different tasks, one client's `sqlx_s_1` is the
//! INSERT and another's the SELECT: a Bind can run the other shape, so a read
//! inserts and an acknowledged insert stores nothing. This test has each task
//! write rows and read them back, and checks afterwards that every
//! acknowledged write is stored exactly once, in its tenant, and nothing else.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::{Route, TestResult, create_tenants, scalar, setup};
use sea_orm::{ConnectionTrait as _, DbBackend, DbErr, Statement};
use tenancy_core::{Tenant, TenantScope as _};
use tenancy_sea_orm::{TenantDb, TenantTransaction};
use tokio::sync::Mutex;

/// More client connections than PgBouncer's server pool (`.ci/pgbouncer.sh`: 3).
const TASKS: i32 = 12;
const TRANSACTIONS_PER_TASK: i32 = 60;
const TENANTS: usize = 4;

/// Both shapes take (text, int4).
const WRITE: &str = "INSERT INTO projects (tenant, name, code) VALUES ($1, 'mixed', $2)";
const READ: &str = "SELECT count(*) AS n FROM projects WHERE tenant = $1 AND code = $2";

fn with(sql: &str, tenant: &str, code: i32) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, [tenant.into(), code.into()])
}

async fn write(txn: &TenantTransaction, tenant: &str, code: i32) -> Result<(), DbErr> {
    let done = txn.execute_raw(with(WRITE, tenant, code)).await?;
    assert_eq!(
        done.rows_affected(),
        1,
        "the INSERT of {code} inserted nothing"
    );
    Ok(())
}

async fn read(txn: &TenantTransaction, tenant: &str, code: i32) -> Result<i64, DbErr> {
    let row = txn
        .query_one_raw(with(READ, tenant, code))
        .await?
        .ok_or_else(|| DbErr::Custom(format!("the read of {code} returned no row")))?;
    row.try_get::<i64>("", "n")
}

/// Transaction `i` of `task`: writes `code`, reads it back (even tasks), or
/// reads first and writes after (odd tasks), so the two shapes are prepared
/// in opposite orders on different client connections.
async fn one_transaction(db: &TenantDb, tenant: &Tenant, task: i32, i: i32) -> Result<i32, DbErr> {
    let id = tenant.id().as_str();
    let code = task * 100_000 + i;
    let txn = db
        .begin(tenant)
        .await
        .map_err(|e| DbErr::Custom(e.to_string()))?;
    if task % 2 == 0 {
        write(&txn, id, code).await?;
        assert_eq!(
            read(&txn, id, code).await?,
            1,
            "{id}: own write {code} not seen"
        );
    } else {
        assert_eq!(
            read(&txn, id, code).await?,
            0,
            "{id}: {code} seen before its write"
        );
        write(&txn, id, code).await?;
    }
    txn.commit().await?;
    Ok(code)
}

async fn mixed_readers_and_writers(route: Route) -> TestResult {
    let (test_db, direct) = setup(2).await?;
    let ids: Vec<String> = (0..TENANTS).map(|n| format!("m{n}")).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let tenants = Arc::new(create_tenants(&direct, &id_refs).await?);
    let Some(conn) = route
        .connect("mixed_readers_and_writers", &test_db, TASKS.unsigned_abs())
        .await?
    else {
        return common::finish(test_db, vec![direct]).await;
    };
    let db = route.tenant_db(&conn);
    // Per tenant, the codes whose commit was acknowledged.
    let acknowledged: Arc<Vec<Mutex<BTreeSet<i32>>>> =
        Arc::new((0..TENANTS).map(|_| Mutex::new(BTreeSet::new())).collect());

    let handles: Vec<_> = (0..TASKS)
        .map(|task| {
            let (db, tenants, acknowledged) =
                (db.clone(), Arc::clone(&tenants), Arc::clone(&acknowledged));
            tokio::spawn(async move {
                let mut errors = Vec::new();
                for i in 0..TRANSACTIONS_PER_TASK {
                    let t = usize::try_from(task + i).unwrap() % TENANTS;
                    match one_transaction(&db, &tenants[t], task, i).await {
                        Ok(code) => {
                            acknowledged[t].lock().await.insert(code);
                        }
                        Err(err) => errors.push(format!("task {task} txn {i}: {err}")),
                    }
                }
                errors
            })
        })
        .collect();
    let mut errors = Vec::new();
    for handle in handles {
        errors.extend(handle.await?);
    }

    // Checked on a direct connection: what the server really stored.
    let mut report = Vec::new();
    for (t, tenant) in tenants.iter().enumerate() {
        let schema = tenant.schema().quoted();
        let id = tenant.id().as_str();
        let stored_rows = direct
            .query_all_raw(common::stmt(&format!(
                "SELECT tenant, code FROM {schema}.projects ORDER BY code"
            )))
            .await?;
        let mut stored = BTreeSet::new();
        let mut foreign = 0;
        for row in &stored_rows {
            if row.try_get::<String>("", "tenant")? != id {
                foreign += 1;
            }
            stored.insert(row.try_get::<i32>("", "code")?);
        }
        let acked = acknowledged[t].lock().await.clone();
        let lost = acked.difference(&stored).count();
        let unasked = stored.difference(&acked).count();
        let duplicated = stored_rows.len() - stored.len();
        if foreign + lost + unasked + duplicated > 0 {
            report.push(format!(
                "{id}: {} acknowledged, {} stored: {lost} acknowledged writes lost, \
                 {unasked} rows nobody acknowledged, {duplicated} duplicates, {foreign} foreign rows",
                acked.len(),
                stored_rows.len()
            ));
        }
    }
    let public: i64 = scalar(&direct, "SELECT count(*) FROM public.projects").await?;
    if public != 1 {
        report.push(format!(
            "public.projects holds {public} rows instead of the canary"
        ));
    }
    let total = TASKS * TRANSACTIONS_PER_TASK;
    println!(
        "{route:?}: {total} transactions, {} errors, {} damaged tenants",
        errors.len(),
        report.len()
    );
    assert!(
        errors.is_empty() && report.is_empty(),
        "{route:?}: {} of {total} transactions failed, first: {:?}; damage: {report:#?}",
        errors.len(),
        errors.first()
    );

    drop(db);
    common::finish(test_db, vec![conn, direct]).await
}

both_routes!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    mixed_readers_and_writers
);
