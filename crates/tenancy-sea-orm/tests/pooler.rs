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

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::{Route, TestResult, create_tenants, scalar, setup};
use sea_orm::{ConnectionTrait as _, DbBackend, DbErr, Statement};
use tenancy_core::{Tenant, TenantId, TenantScope as _};
use tenancy_sea_orm::{RegistryConfig, TenantDb, TenantRegistry, TenantTransaction};
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

/// Registry lookups (uncached, so each one reaches the database) from many
/// tasks at once, each followed by a scoped transaction of the tenant found.
async fn registry_lookups(route: Route) -> TestResult {
    let (test_db, direct) = setup(2).await?;
    let ids: Vec<String> = (0..TENANTS).map(|n| format!("r{n}")).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    create_tenants(&direct, &id_refs).await?;
    direct
        .execute_unprepared(
            "CREATE TABLE public.tenants (tenant_id text PRIMARY KEY, \
             schema_name text NOT NULL UNIQUE, status text NOT NULL, display_name text NOT NULL DEFAULT '', domain text UNIQUE);
             INSERT INTO public.tenants SELECT 'r' || n, 'tenant_r' || n, 'active'
                 FROM generate_series(0, 3) AS n;
             INSERT INTO public.tenants VALUES ('gone', 'tenant_gone', 'suspended')",
        )
        .await?;
    let Some(conn) = route
        .connect("registry_lookups", &test_db, TASKS.unsigned_abs())
        .await?
    else {
        return common::finish(test_db, vec![direct]).await;
    };
    let uncached = RegistryConfig::default()
        .with_ttl(Duration::ZERO)
        .with_negative_ttl(Duration::ZERO);
    let db = route
        .tenant_db(&conn)
        .with_registry(TenantRegistry::with_config(conn.clone(), uncached));
    assert_eq!(db.registry().is_behind_pooler(), route == Route::PgBouncer);

    let handles: Vec<_> = (0..TASKS)
        .map(|task| {
            let db = db.clone();
            tokio::spawn(async move {
                let mut errors = Vec::new();
                for i in 0..TRANSACTIONS_PER_TASK {
                    let n = usize::try_from(task + i).unwrap() % TENANTS;
                    let id = TenantId::new(&format!("r{n}")).unwrap();
                    let outcome = async {
                        let txn = db.begin_registered(&id).await?;
                        let schema: String = scalar(&txn, "SELECT current_schema()").await?;
                        txn.commit().await?;
                        assert_eq!(schema, format!("tenant_r{n}"));
                        match db.resolve(&TenantId::new("gone").unwrap()).await {
                            Err(tenancy_sea_orm::Error::Inaccessible { .. }) => {}
                            other => {
                                return Err(
                                    format!("a suspended tenant resolved to {other:?}").into()
                                );
                            }
                        }
                        match db.resolve(&TenantId::new("nobody").unwrap()).await {
                            Err(tenancy_sea_orm::Error::UnknownTenant { .. }) => {}
                            other => {
                                return Err(
                                    format!("an unknown tenant resolved to {other:?}").into()
                                );
                            }
                        }
                        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
                    }
                    .await;
                    if let Err(err) = outcome {
                        errors.push(format!("task {task} lookup {i}: {err}"));
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
    assert!(
        errors.is_empty(),
        "{route:?}: {} of {} lookups failed, first: {:?}",
        errors.len(),
        TASKS * TRANSACTIONS_PER_TASK,
        errors.first()
    );
    drop(db);
    common::finish(test_db, vec![conn, direct]).await
}

both_routes!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    registry_lookups
);

/// A pooled connection on which SeaORM itself ran a statement with
/// parameters carries that named statement in sqlx's cache, and sqlx would
/// reuse it for the same SQL inside a pooler-mode transaction. Such a
/// connection is refused, with an error that says what to do, and closed:
/// the next transaction gets a clean one.
#[tokio::test]
async fn pooler_mode_refuses_a_connection_with_named_statements() -> TestResult {
    let (test_db, conn) = setup(1).await?;
    let a = create_tenants(&conn, &["a"]).await?.remove(0);
    let db = TenantDb::new(conn.clone())?.behind_pooler();

    // Unscoped SeaORM, on the same pool of one: a named, cached statement.
    conn.query_one_raw(with(READ, "a", 1)).await?;
    let refused = db.begin(&a).await;
    match &refused {
        Err(err @ tenancy_sea_orm::Error::NamedStatementsBehindPooler { cached, .. }) => {
            assert_eq!(*cached, 1);
            assert_eq!(err.tenant().map(TenantId::as_str), Some("a"));
            let message = err.to_string();
            assert!(message.contains("tenant a"), "{message}");
            assert!(message.contains("direct connection"), "{message}");
        }
        other => panic!("expected NamedStatementsBehindPooler, got {other:?}"),
    }
    drop(refused);

    // The connection was closed; its replacement has nothing cached.
    let txn = db.begin(&a).await?;
    write(&txn, "a", 7).await?;
    assert_eq!(read(&txn, "a", 7).await?, 1);
    txn.commit().await?;

    // The registry's pooler-mode lookups refuse it the same way.
    conn.execute_unprepared(
        "CREATE TABLE public.tenants (tenant_id text PRIMARY KEY, \
         schema_name text NOT NULL UNIQUE, status text NOT NULL, display_name text NOT NULL DEFAULT '', domain text UNIQUE);
         INSERT INTO public.tenants VALUES ('a', 'tenant_a', 'active')",
    )
    .await?;
    conn.query_one_raw(with(READ, "a", 2)).await?;
    let id = TenantId::new("a")?;
    match db.registry().fetch(&id).await {
        Err(tenancy_sea_orm::Error::Registry { reason, .. }) => {
            assert!(reason.contains("named prepared statements"), "{reason}");
        }
        other => panic!("expected a registry error, got {other:?}"),
    }
    assert!(db.registry().fetch(&id).await?.is_some());

    drop(db);
    common::finish(test_db, vec![conn]).await
}
