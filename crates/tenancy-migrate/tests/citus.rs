#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]
//! Fleet operations on a Citus cluster with schema-based sharding: every
//! answer checked, not only that the calls run.
//!
//! Gated on `TENANCY_CITUS_URL`, a superuser URL of a Citus coordinator
//! (for example `postgres://postgres@127.0.0.1:9700/postgres`) whose
//! database has its workers added (`citus_add_node`) and whose server has
//! `citus.enable_create_database_propagation = on`. Each test makes a fresh
//! database (propagated to the workers), creates the extension on every
//! node and registers the same workers in it. Without the variable each
//! test says it was skipped and passes.

mod support_citus;
mod support_migrate;

use sea_orm::sqlx::Connection as _;
use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use tenancy::migrate::{
    CitusMode, DropConfirmation, DropMode, FleetConfig, MigrateAll, NewTenant, TenantFleet,
};
use tenancy::orm::TenantDb;
use tenancy_core::TenantStatus;
use tenancy_migrate::Error;

use support_citus::{CITUS_URL_VAR, citus_db};

/// Held by the tests that move a schema between workers. Two
/// `citus_schema_move`s at once in two databases of one cluster collide on
/// the worker's replication slot name (`replication slot
/// "citus_shard_move_slot_2_10_1" already exists`: the name is unique per
/// worker, the numbers in it only per database), so those tests take turns.
static SCHEMA_MOVES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
use support_migrate::*;

fn citus_fleet<M: sea_orm_migration::MigratorTrait>(conn: &DatabaseConnection) -> TenantFleet<M> {
    TenantFleet::with_config(
        conn.clone(),
        FleetConfig::default().with_citus(CitusMode::Required),
    )
}

async fn is_distributed(conn: &DatabaseConnection, schema: &str) -> Result<bool, BoxError> {
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT EXISTS (SELECT FROM citus_schemas WHERE schema_name::text = $1) AS d",
            [schema.into()],
        ))
        .await?
        .ok_or("no row")?;
    Ok(row.try_get("", "d")?)
}

/// The `host:port` of the worker holding `schema.table`'s only shard.
async fn node_of(conn: &DatabaseConnection, schema: &str, table: &str) -> Result<String, BoxError> {
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT nodename || ':' || nodeport AS node FROM citus_shards \
             WHERE table_name = format('%I.%I', $1::text, $2::text)::regclass",
            [schema.into(), table.into()],
        ))
        .await?;
    assert_eq!(rows.len(), 1, "{schema}.{table} has exactly one shard");
    Ok(rows[0].try_get("", "node")?)
}

#[tokio::test]
async fn create_distributes_each_tenant_and_status_answers_right() -> TestResult {
    let Some(cluster) = citus_db("create_distributes_each_tenant_and_status_answers_right").await?
    else {
        return Ok(());
    };
    let conn = &cluster.conn;
    let old = citus_fleet::<Migrator>(conn);
    old.install().await?;
    for raw in ["a1", "a2", "a3", "a4"] {
        let record = old.create(&id(raw), NewTenant::new()).await?;
        assert_eq!(record.status, TenantStatus::Active);
        assert!(
            is_distributed(conn, record.schema.as_str()).await?,
            "{raw} distributed"
        );
        let node = node_of(conn, record.schema.as_str(), "projects").await?;
        assert!(
            cluster.workers.contains(&node),
            "{raw} is on a worker, not the coordinator: {node}"
        );
    }

    // Two migrations applied, the third pending: status says so per tenant.
    let fleet = citus_fleet::<MigratorV3>(conn);
    let status = fleet.fleet_status().await?;
    assert_eq!(status.totals.tenants, 4);
    assert_eq!(status.totals.behind, 4);
    assert_eq!(status.totals.pending_migrations, 4);
    for t in &status.tenants {
        assert_eq!(t.applied, strings(&[M1, M2]), "{}", t.tenant);
        assert_eq!(t.pending, strings(&[M3]), "{}", t.tenant);
    }
    let one = fleet.tenant_status(&id("a1")).await?;
    assert_eq!(one.applied, strings(&[M1, M2]));
    assert_eq!(one.pending, strings(&[M3]));

    let report = fleet.migrate_all(MigrateAll::new()).await?;
    assert_eq!(report.failed().count(), 0, "{report}");
    let status = fleet.fleet_status().await?;
    assert!(status.is_up_to_date(), "{status}");
    assert_eq!(status.totals.up_to_date, 4);
    for t in &status.tenants {
        assert_eq!(t.applied, strings(&[M1, M2, M3]), "{}", t.tenant);
    }
    let health = fleet.health().await?;
    assert!(health.is_healthy(), "{health}");

    cluster.close().await
}

#[tokio::test]
async fn scoped_transactions_run_on_the_tenants_worker() -> TestResult {
    let Some(cluster) = citus_db("scoped_transactions_run_on_the_tenants_worker").await? else {
        return Ok(());
    };
    let conn = &cluster.conn;
    let fleet = citus_fleet::<MigratorV3>(conn);
    fleet.install().await?;
    // Enough tenants that both workers hold some.
    let raws = ["b1", "b2", "b3", "b4", "b5", "b6"];
    for raw in raws {
        fleet.create(&id(raw), NewTenant::new()).await?;
    }
    let db = TenantDb::new(conn.clone())?;
    for raw in raws {
        let txn = db.begin_registered(&id(raw)).await?;
        txn.execute_unprepared(&format!(
            "INSERT INTO projects (name, code) VALUES ('{raw}', '{raw}')"
        ))
        .await?;
        txn.commit().await?;
    }
    let mut nodes_used = std::collections::BTreeSet::new();
    for raw in raws {
        let schema = schema(raw);
        let node = node_of(conn, schema.as_str(), "projects").await?;
        nodes_used.insert(node.clone());
        // The row is in the shard on that worker, and only there.
        let (host, port) = node.split_once(':').unwrap();
        let shard: String = conn
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT shard_name::text AS s FROM citus_shards \
                 WHERE table_name = format('%I.projects', $1::text)::regclass",
                [schema.as_str().into()],
            ))
            .await?
            .ok_or("no shard")?
            .try_get("", "s")?;
        for worker in &cluster.workers {
            let (whost, wport) = worker.split_once(':').unwrap();
            let opts: PgConnectOptions = std::env::var(CITUS_URL_VAR)?.parse()?;
            let opts = opts
                .host(whost)
                .port(wport.parse()?)
                .database(cluster.db.name());
            let mut w = PgConnection::connect_with(&opts).await?;
            // `shard_name` is a regclass rendered by the server, already
            // qualified and quoted; absent on the other worker (an error).
            let rows: Vec<String> = sea_orm::sqlx::query_scalar(sea_orm::sqlx::AssertSqlSafe(
                format!("SELECT name FROM {shard}"),
            ))
            .fetch_all(&mut w)
            .await
            .unwrap_or_default();
            w.close().await?;
            if (whost, wport) == (host, port) {
                assert_eq!(rows, [raw.to_owned()], "{raw}'s row on its worker {worker}");
            } else {
                assert!(rows.is_empty(), "{raw}'s row must not be on {worker}");
            }
        }
        // Seen through the tenant: its own row only.
        let txn = db.begin_registered(&id(raw)).await?;
        let names: Vec<String> = txn
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT name FROM projects",
            ))
            .await?
            .iter()
            .map(|r| r.try_get("", "name").unwrap())
            .collect();
        txn.commit().await?;
        assert_eq!(names, [raw.to_owned()]);
    }
    assert_eq!(
        nodes_used.len(),
        cluster.workers.len().min(raws.len()),
        "{nodes_used:?}"
    );
    cluster.close().await
}

#[tokio::test]
async fn adopt_distributes_a_schema_left_on_the_coordinator() -> TestResult {
    let Some(cluster) = citus_db("adopt_distributes_a_schema_left_on_the_coordinator").await?
    else {
        return Ok(());
    };
    let conn = &cluster.conn;
    let fleet = citus_fleet::<MigratorV3>(conn);
    fleet.install().await?;
    // Made without sharding: it stays on the coordinator.
    conn.execute_unprepared(
        "CREATE SCHEMA legacy_acme; CREATE TABLE legacy_acme.customers (id int PRIMARY KEY); \
         INSERT INTO legacy_acme.customers VALUES (1), (2)",
    )
    .await?;
    assert!(!is_distributed(conn, "legacy_acme").await?);

    let (record, applied) = fleet
        .adopt(&id("acme"), "legacy_acme".parse()?, NewTenant::new())
        .await?;
    assert_eq!(record.schema.as_str(), "legacy_acme");
    assert_eq!(applied, strings(&[M1, M2, M3]));
    assert!(is_distributed(conn, "legacy_acme").await?);
    let node = node_of(conn, "legacy_acme", "customers").await?;
    assert!(cluster.workers.contains(&node), "{node}");
    let db = TenantDb::new(conn.clone())?;
    let txn = db.begin_registered(&id("acme")).await?;
    let n: i64 = txn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM customers",
        ))
        .await?
        .ok_or("no row")?
        .try_get("", "n")?;
    txn.commit().await?;
    assert_eq!(n, 2, "the adopted rows moved with the schema");
    cluster.close().await
}

#[tokio::test]
async fn a_schema_that_stays_on_the_coordinator_is_an_error() -> TestResult {
    let Some(cluster) = citus_db("a_schema_that_stays_on_the_coordinator_is_an_error").await?
    else {
        return Ok(());
    };
    let conn = &cluster.conn;
    let fleet = citus_fleet::<MigratorV3>(conn);
    fleet.install().await?;
    // A spare made with Citus mode off (not distributed) is claimed by `create`:
    // the check after the claim refuses it and rolls everything back.
    let spares = TenantFleet::<MigratorV3>::with_config(
        conn.clone(),
        FleetConfig::default()
            .with_citus(CitusMode::Required)
            .with_spare_pool(true),
    );
    let off = TenantFleet::<MigratorV3>::with_config(
        conn.clone(),
        FleetConfig::default().with_citus(CitusMode::Off),
    );
    assert_eq!(off.refill_spares(1).await?, 1);
    let err = spares
        .create(&id("late"), NewTenant::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::NotDistributed { tenant, .. } if *tenant == id("late")),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("stayed on the Citus coordinator"),
        "{err}"
    );
    assert!(fleet.list(Default::default()).await?.tenants.is_empty());
    assert!(!is_distributed(conn, "tenant_late").await?);
    cluster.close().await
}

#[tokio::test]
async fn lifecycle_on_citus_suspend_resume_drop() -> TestResult {
    let Some(cluster) = citus_db("lifecycle_on_citus_suspend_resume_drop").await? else {
        return Ok(());
    };
    let conn = &cluster.conn;
    let fleet = citus_fleet::<MigratorV3>(conn);
    fleet.install().await?;
    fleet.create(&id("c1"), NewTenant::new()).await?;
    fleet.create(&id("c2"), NewTenant::new()).await?;

    let suspended = fleet.suspend(&id("c1")).await?;
    assert_eq!(suspended.status, TenantStatus::Suspended);
    let db = TenantDb::new(conn.clone())?.with_registry(fleet.registry().clone());
    assert!(db.begin_registered(&id("c1")).await.is_err());
    fleet.resume(&id("c1")).await?;
    assert!(db.begin_registered(&id("c1")).await?.commit().await.is_ok());

    let outcome = fleet
        .drop_tenant(&id("c2"), DropMode::Hard(DropConfirmation::new("c2")))
        .await?;
    assert!(outcome.schema_dropped(), "{outcome:?}");
    assert!(!is_distributed(conn, "tenant_c2").await?);
    let status = fleet.fleet_status().await?;
    let ids: Vec<String> = status
        .tenants
        .iter()
        .map(|t| t.tenant.to_string())
        .collect();
    assert_eq!(ids, ["c1"]);
    assert!(status.is_up_to_date());
    cluster.close().await
}

#[tokio::test]
async fn required_mode_without_citus_is_refused() -> TestResult {
    // Plain PostgreSQL (the usual test server), not the cluster.
    TestDatabase::with(async |_db, conn| -> TestResult {
        let fleet = citus_fleet::<MigratorV3>(conn);
        fleet.install().await?;
        let err = fleet.create(&id("x"), NewTenant::new()).await.unwrap_err();
        assert!(matches!(err, Error::CitusMissing), "{err:?}");
        assert!(err.is_refused());
        assert!(fleet.list(Default::default()).await?.tenants.is_empty());
        // Detect (the default) on plain PostgreSQL creates as before.
        let plain = TenantFleet::<MigratorV3>::new(conn.clone());
        plain.create(&id("x"), NewTenant::new()).await?;
        Ok(())
    })
    .await
}

/// A fleet made without Citus mode is converted tenant by tenant, each
/// tenant's node is listed, and one moves to the other worker online with
/// its data; status stays right throughout.
#[tokio::test]
async fn converting_a_single_node_fleet_then_moving_a_tenant() -> TestResult {
    let Some(cluster) = citus_db("converting_a_single_node_fleet_then_moving_a_tenant").await?
    else {
        return Ok(());
    };
    let _moves = SCHEMA_MOVES.lock().await;
    let conn = &cluster.conn;
    let single = TenantFleet::<MigratorV3>::with_config(
        conn.clone(),
        FleetConfig::default().with_citus(CitusMode::Off),
    );
    single.install().await?;
    let db = TenantDb::new(conn.clone())?;
    for raw in ["d1", "d2"] {
        single.create(&id(raw), NewTenant::new()).await?;
        let txn = db.begin_registered(&id(raw)).await?;
        txn.execute_unprepared(&format!(
            "INSERT INTO projects (name, code) VALUES ('{raw}', 'x')"
        ))
        .await?;
        txn.commit().await?;
        assert!(!is_distributed(conn, schema(raw).as_str()).await?);
    }
    let fleet = citus_fleet::<MigratorV3>(conn);
    let before = fleet.tenant_nodes().await?;
    assert_eq!(before.len(), 2);
    assert!(
        before.iter().all(|t| !t.distributed && t.node.is_none()),
        "{before:?}"
    );

    assert!(fleet.distribute_tenant(&id("d1")).await?);
    assert!(
        !fleet.distribute_tenant(&id("d1")).await?,
        "already distributed"
    );
    assert!(fleet.distribute_tenant(&id("d2")).await?);
    let nodes = fleet.tenant_nodes().await?;
    for t in &nodes {
        assert!(t.distributed, "{t:?}");
        let node = t.node.as_ref().expect("a node").to_string();
        assert_eq!(node, node_of(conn, t.schema.as_str(), "projects").await?);
        assert!(cluster.workers.contains(&node), "{node}");
    }
    let status = fleet.fleet_status().await?;
    assert!(status.is_up_to_date(), "{status}");
    assert_eq!(status.totals.up_to_date, 2);

    // Move d1 to a worker it is not on.
    let from = nodes[0].node.clone().expect("a node").to_string();
    let Some(to) = cluster.workers.iter().find(|w| **w != from) else {
        return cluster.close().await; // one worker: nowhere to move to
    };
    let (host, port) = to.split_once(':').unwrap();
    fleet
        .move_to_node(
            &id("d1"),
            &tenancy::migrate::CitusNode::new(host, port.parse()?),
        )
        .await?;
    let after = fleet.tenant_nodes().await?;
    assert_eq!(after[0].tenant, id("d1"));
    assert_eq!(
        after[0].node.as_ref().map(ToString::to_string).as_deref(),
        Some(to.as_str())
    );
    assert_eq!(node_of(conn, "tenant_d1", "projects").await?, *to);
    let txn = db.begin_registered(&id("d1")).await?;
    let names: Vec<String> = txn
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT name FROM projects",
        ))
        .await?
        .iter()
        .map(|r| r.try_get("", "name").unwrap())
        .collect();
    txn.commit().await?;
    assert_eq!(names, ["d1"]);
    assert!(fleet.fleet_status().await?.is_up_to_date());
    cluster.close().await
}

/// `health` names a tenant left on the coordinator and a shared table its
/// tables reference that is not a reference table; `reference_table` and
/// `distribute_tenant` clear both.
#[tokio::test]
async fn health_reports_what_blocks_distribution() -> TestResult {
    let Some(cluster) = citus_db("health_reports_what_blocks_distribution").await? else {
        return Ok(());
    };
    let conn = &cluster.conn;
    let single = TenantFleet::<MigratorV3>::with_config(
        conn.clone(),
        FleetConfig::default().with_citus(CitusMode::Off),
    );
    single.install().await?;
    single.create(&id("e1"), NewTenant::new()).await?;
    conn.execute_unprepared(
        "CREATE TABLE public.plans (id int PRIMARY KEY); INSERT INTO public.plans VALUES (1); \
         CREATE TABLE tenant_e1.subscriptions (id int PRIMARY KEY, \
           plan_id int CONSTRAINT subscriptions_plan_fk REFERENCES public.plans (id))",
    )
    .await?;
    let fleet = citus_fleet::<MigratorV3>(conn);
    let health = fleet.health().await?;
    assert_eq!(health.not_distributed, [(id("e1"), schema("e1"))]);
    assert_eq!(health.not_reference_tables, ["public.plans"]);
    assert!(!health.is_healthy());
    let text = health.to_string();
    assert!(text.contains("not distributed: tenant e1"), "{text}");
    assert!(
        text.contains("not a reference table: public.plans"),
        "{text}"
    );

    // Citus refuses to distribute it while the shared table is local.
    let err = fleet.distribute_tenant(&id("e1")).await.unwrap_err();
    assert!(
        matches!(&err, Error::Tenant { tenant, .. } if *tenant == id("e1")),
        "{err:?}"
    );
    assert!(!is_distributed(conn, "tenant_e1").await?);

    let shared = tenancy::SharedSchema::public();
    let plans = tenancy::TableName::new("plans")?;
    assert!(tenancy::migrate::reference_table(conn, &shared, &plans).await?);
    assert!(!tenancy::migrate::reference_table(conn, &shared, &plans).await?);
    assert!(fleet.distribute_tenant(&id("e1")).await?);
    let health = fleet.health().await?;
    assert!(health.not_distributed.is_empty(), "{health}");
    assert!(health.not_reference_tables.is_empty(), "{health}");
    // The foreign key still holds on the worker.
    let db = TenantDb::new(conn.clone())?;
    let txn = db.begin_registered(&id("e1")).await?;
    let bad = txn
        .execute_unprepared("INSERT INTO subscriptions VALUES (1, 42)")
        .await;
    assert!(bad.is_err(), "plan 42 does not exist");
    txn.rollback().await?;
    cluster.close().await
}

#[cfg(feature = "cli")]
async fn cli(url: &str, args: &[&str]) -> (tenancy_migrate::cli::Exit, String, String) {
    let prefix = ["admin", "--database-url", url];
    let argv = prefix.iter().chain(args).copied();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let exit = tenancy_migrate::cli::run_cli_with::<MigratorV3, SharedMigrator, _, _>(
        argv, &mut out, &mut err,
    )
    .await;
    (
        exit,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

/// `citus nodes`, `citus distribute --all` and `citus move` through the
/// admin CLI: what they print matches Citus's metadata.
#[cfg(feature = "cli")]
#[tokio::test]
async fn the_cli_shows_distributes_and_moves_tenants() -> TestResult {
    use tenancy_migrate::cli::Exit;
    let Some(cluster) = citus_db("the_cli_shows_distributes_and_moves_tenants").await? else {
        return Ok(());
    };
    let _moves = SCHEMA_MOVES.lock().await;
    let url = cluster.db.url().to_owned();
    let single = TenantFleet::<MigratorV3>::with_config(
        cluster.conn.clone(),
        FleetConfig::default().with_citus(CitusMode::Off),
    );
    single.install().await?;
    single.create(&id("f1"), NewTenant::new()).await?;
    single.create(&id("f2"), NewTenant::new()).await?;

    let (exit, out, err) = cli(&url, &["citus", "nodes"]).await;
    assert_eq!(exit, Exit::Success, "{err}");
    assert_eq!(
        out.matches("(coordinator: not distributed)").count(),
        2,
        "{out}"
    );

    let (exit, out, err) = cli(&url, &["citus", "distribute", "--all"]).await;
    assert_eq!(exit, Exit::Success, "{err}");
    assert!(
        out.contains("distributed tenant f1") && out.contains("distributed tenant f2"),
        "{out}"
    );
    let (exit, out, _) = cli(&url, &["citus", "distribute", "f1"]).await;
    assert_eq!(exit, Exit::Success);
    assert!(out.contains("tenant f1 was distributed already"), "{out}");

    let (exit, out, err) = cli(&url, &["citus", "nodes", "--json"]).await;
    assert_eq!(exit, Exit::Success, "{err}");
    let nodes: serde_json::Value = serde_json::from_str(&out)?;
    let f1 = &nodes[0];
    assert_eq!(f1["tenant"], "f1");
    assert_eq!(f1["distributed"], true);
    let from = format!(
        "{}:{}",
        f1["node"]["host"].as_str().unwrap(),
        f1["node"]["port"]
    );
    assert_eq!(from, node_of(&cluster.conn, "tenant_f1", "projects").await?);

    if let Some(to) = cluster.workers.iter().find(|w| **w != from) {
        let (exit, out, err) = cli(&url, &["citus", "move", "f1", "--to", to]).await;
        assert_eq!(exit, Exit::Success, "{err}");
        assert_eq!(out.trim(), format!("moved tenant f1 to {to}"));
        assert_eq!(node_of(&cluster.conn, "tenant_f1", "projects").await?, *to);
    }
    let (exit, _, err) = cli(&url, &["citus", "move", "f1", "--to", "nowhere"]).await;
    assert_eq!(exit, Exit::Usage, "{err}");
    cluster.close().await
}

/// In Citus mode spares are made distributed, and a claimed spare (renamed
/// in the sign-up transaction) is the tenant's distributed schema.
#[tokio::test]
async fn spares_are_distributed_and_claimed_as_such() -> TestResult {
    let Some(cluster) = citus_db("spares_are_distributed_and_claimed_as_such").await? else {
        return Ok(());
    };
    let conn = &cluster.conn;
    let fleet = TenantFleet::<MigratorV3>::with_config(
        conn.clone(),
        FleetConfig::default()
            .with_citus(CitusMode::Required)
            .with_spare_pool(true),
    );
    fleet.install().await?;
    assert_eq!(fleet.refill_spares(2).await?, 2);
    let spares = fleet.spare_status().await?;
    assert_eq!(spares.ready.len(), 2);
    for spare in &spares.ready {
        assert!(is_distributed(conn, spare.as_str()).await?, "{spare}");
    }
    let record = fleet.create(&id("g1"), NewTenant::new()).await?;
    assert!(is_distributed(conn, record.schema.as_str()).await?);
    let node = node_of(conn, record.schema.as_str(), "projects").await?;
    assert!(cluster.workers.contains(&node), "{node}");
    assert_eq!(
        fleet.spare_status().await?.ready.len(),
        1,
        "one spare was claimed"
    );
    let status = fleet.fleet_status().await?;
    assert!(status.is_up_to_date(), "{status}");
    let db = TenantDb::new(conn.clone())?;
    let txn = db.begin_registered(&id("g1")).await?;
    txn.execute_unprepared("INSERT INTO projects (name, code) VALUES ('g1', 'x')")
        .await?;
    txn.commit().await?;
    cluster.close().await
}

/// What other fleet features do on Citus: a read across tenants (chunked
/// `UNION ALL` over tenants on both workers) returns every tenant's rows,
/// and an export of a distributed tenant reads its rows from its worker.
#[tokio::test]
async fn read_across_and_export_on_citus() -> TestResult {
    use futures_util::TryStreamExt as _;
    use sea_orm::sea_query::{Alias, Query};
    let Some(cluster) = citus_db("read_across_and_export_on_citus").await? else {
        return Ok(());
    };
    let conn = &cluster.conn;
    let fleet = citus_fleet::<MigratorV3>(conn);
    fleet.install().await?;
    let db = TenantDb::new(conn.clone())?;
    let raws = ["h1", "h2", "h3", "h4"];
    for raw in raws {
        fleet.create(&id(raw), NewTenant::new()).await?;
        let txn = db.begin_registered(&id(raw)).await?;
        txn.execute_unprepared(&format!(
            "INSERT INTO projects (name, code) VALUES ('{raw}-row', 'x')"
        ))
        .await?;
        txn.commit().await?;
    }
    let select = Query::select()
        .column(Alias::new("name"))
        .from(Alias::new("projects"))
        .to_owned();
    let read = fleet
        .read_across(select, tenancy::migrate::ReadAcross::new())
        .await?;
    let mut rows: Vec<(String, String)> = read
        .rows
        .map_ok(|row| {
            (
                row.try_get::<String>("", "tenant_id").unwrap(),
                row.try_get::<String>("", "name").unwrap(),
            )
        })
        .try_collect()
        .await?;
    rows.sort();
    let expected: Vec<(String, String)> = raws
        .iter()
        .map(|r| ((*r).to_owned(), format!("{r}-row")))
        .collect();
    assert_eq!(rows, expected);

    let mut exported = Vec::new();
    let summary = fleet.export_tenant(&id("h1"), &mut exported).await?;
    assert_eq!(summary.schema.as_str(), "tenant_h1");
    let text = String::from_utf8_lossy(&exported);
    assert!(
        text.contains("h1"),
        "the row read from the worker is in the export"
    );
    cluster.close().await
}
