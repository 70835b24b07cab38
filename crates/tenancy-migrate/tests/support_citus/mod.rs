//! A fresh database on the Citus cluster of `TENANCY_CITUS_URL`, with the
//! extension on every node and the coordinator's workers registered in it;
//! shared by `tests/citus.rs` and `benches/citus.rs`.
#![allow(dead_code, unreachable_pub, clippy::print_stdout, clippy::expect_used)]

use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection};
use sea_orm::sqlx::{ConnectOptions as _, Connection as _, Row as _};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use tenancy_testing::{HarnessConfig, TestDatabase};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub const CITUS_URL_VAR: &str = "TENANCY_CITUS_URL";

/// A fresh database on the cluster, with Citus on every node.
pub struct CitusDb {
    pub db: TestDatabase,
    pub conn: DatabaseConnection,
    /// `host:port` of each worker.
    pub workers: Vec<String>,
}

impl CitusDb {
    /// Drops the database on every node, each node on its own: the drop
    /// the coordinator would propagate does not force out sessions on the
    /// workers (Citus's own, which outlive the pool by a moment).
    pub async fn close(self) -> Result<(), BoxError> {
        self.conn.close().await?;
        let coordinator: PgConnectOptions = std::env::var(CITUS_URL_VAR)?.parse()?;
        let name = self.db.name().to_owned();
        let mut nodes = vec![coordinator.clone()];
        for worker in &self.workers {
            let (host, port) = worker.split_once(':').ok_or("host:port")?;
            nodes.push(coordinator.clone().host(host).port(port.parse()?));
        }
        for opts in nodes {
            let mut admin = PgConnection::connect_with(&opts).await?;
            sea_orm::sqlx::raw_sql("SET citus.enable_create_database_propagation TO off")
                .execute(&mut admin)
                .await?;
            sea_orm::sqlx::raw_sql(sea_orm::sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await?;
            admin.close().await?;
        }
        self.db.close().await?;
        Ok(())
    }
}

/// `None` (after saying so) when `TENANCY_CITUS_URL` is unset.
pub async fn citus_db(test: &str) -> Result<Option<CitusDb>, BoxError> {
    let Ok(url) = std::env::var(CITUS_URL_VAR) else {
        println!(
            "SKIPPED {test}: no Citus cluster to test on; set {CITUS_URL_VAR} to a Citus \
             coordinator URL (postgres://postgres@127.0.0.1:9700/postgres, workers added, \
             citus.enable_create_database_propagation = on)"
        );
        return Ok(None);
    };
    let coordinator: PgConnectOptions = url.parse()?;
    let mut admin = PgConnection::connect_with(&coordinator).await?;
    let propagation: String = sea_orm::sqlx::query_scalar(
        "SELECT current_setting('citus.enable_create_database_propagation')",
    )
    .fetch_one(&mut admin)
    .await?;
    assert_eq!(
        propagation, "on",
        "set citus.enable_create_database_propagation = on on the coordinator, so test \
         databases reach the workers"
    );
    let workers: Vec<(String, i32)> = sea_orm::sqlx::query(
        "SELECT nodename, nodeport FROM pg_dist_node \
         WHERE groupid <> 0 AND noderole = 'primary' ORDER BY nodeport",
    )
    .fetch_all(&mut admin)
    .await?
    .iter()
    .map(|row| (row.get(0), row.get(1)))
    .collect();
    assert!(
        !workers.is_empty(),
        "the coordinator's database at {CITUS_URL_VAR} has no workers: run citus_add_node"
    );
    admin.close().await?;

    let db = TestDatabase::create_with(HarnessConfig::new(Some(url.clone()), false, url)).await?;
    for (host, port) in &workers {
        let opts = coordinator
            .clone()
            .host(host)
            .port(u16::try_from(*port)?)
            .database(db.name())
            .disable_statement_logging();
        let mut worker = PgConnection::connect_with(&opts).await?;
        sea_orm::sqlx::raw_sql("CREATE EXTENSION citus")
            .execute(&mut worker)
            .await?;
        worker.close().await?;
    }
    let conn = db.connect().await?;
    conn.execute_unprepared("CREATE EXTENSION citus").await?;
    conn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT citus_set_coordinator_host($1, $2)",
        [
            coordinator.get_host().to_owned().into(),
            i32::from(coordinator.get_port()).into(),
        ],
    ))
    .await?;
    for (host, port) in &workers {
        conn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT citus_add_node($1, $2)",
            [host.clone().into(), (*port).into()],
        ))
        .await?;
    }
    let workers = workers
        .into_iter()
        .map(|(host, port)| format!("{host}:{port}"))
        .collect();
    Ok(Some(CitusDb { db, conn, workers }))
}
