//! Shared setup of the integration tests: a `projects` entity resolved through
//! the search path, tenant schemas with identical tables, a `public.projects`
//! canary, and small helpers to read settings and SQLSTATEs.
//!
//! Every test creates its own database with `tenancy_testing`, so the tests
//! are independent and run in parallel.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]
// Each test binary uses a different subset of these helpers.
#![allow(dead_code, unreachable_pub)]

use std::error::Error as StdError;

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, RuntimeErr,
    Statement,
};
use tenancy_core::{Tenant, TenantId, TenantScope};
use tenancy_testing::TestDatabase;

pub type TestResult = Result<(), Box<dyn StdError + Send + Sync>>;

/// Inserts a project named `name`, labelled as `tenant`'s, in `txn`'s scope.
pub async fn insert_project(
    txn: &tenancy_sea_orm::TenantTransaction,
    tenant: &str,
    name: &str,
) -> Result<(), DbErr> {
    use sea_orm::{ActiveModelTrait as _, Set};
    project::ActiveModel {
        tenant: Set(tenant.to_owned()),
        name: Set(name.to_owned()),
        code: Set(1),
        ..Default::default()
    }
    .insert(txn)
    .await
    .map(drop)
}

/// The tenant table, with no schema: it resolves through the search path, so
/// the same entity reads `tenant_a.projects` in A's scope and
/// `tenant_b.projects` in B's.
pub mod project {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "projects")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        /// The owning tenant's id: every row read in a scope must carry the
        /// scope's tenant.
        pub tenant: String,
        pub name: String,
        pub code: i32,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The same table where `code` is text (the stale-plan tests give one tenant
/// this shape).
pub mod project_text {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "projects")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub tenant: String,
        pub name: String,
        pub code: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The tenant id of the `public.projects` canary row: a tenant scope must
/// never read it.
pub const CANARY_TENANT: &str = "public-canary";

/// The server's default search path, what an unscoped statement must see.
pub const DEFAULT_SEARCH_PATH: &str = "\"$user\", public";

/// A fresh database, its pool with `max_connections` connections, and the
/// `public.projects` canary table holding one row.
pub async fn setup(max_connections: u32) -> Result<(TestDatabase, DatabaseConnection), DbErr> {
    let test_db = TestDatabase::create()
        .await
        .map_err(|e| DbErr::Custom(format!("no test database: {e}")))?;
    let conn = connect(&test_db, max_connections).await?;
    conn.execute_unprepared(&format!(
        "CREATE TABLE public.projects (
             id serial PRIMARY KEY,
             tenant text NOT NULL,
             name text NOT NULL,
             code integer NOT NULL
         );
         INSERT INTO public.projects (id, tenant, name, code)
             VALUES (424242, '{CANARY_TENANT}', 'must never be seen from a tenant scope', 1)"
    ))
    .await?;
    Ok((test_db, conn))
}

/// Another pool on the same database.
pub async fn connect(
    test_db: &TestDatabase,
    max_connections: u32,
) -> Result<DatabaseConnection, DbErr> {
    let mut opts: ConnectOptions = test_db.connect_options();
    opts.max_connections(max_connections);
    Database::connect(opts).await
}

pub fn tenant(id: &str) -> Tenant {
    Tenant::from_id(TenantId::new(id).unwrap()).unwrap()
}

/// Creates one schema per id with an identical `projects` table (plus a table
/// `only_in_tenant` that exists nowhere else), and returns the tenants.
pub async fn create_tenants(conn: &DatabaseConnection, ids: &[&str]) -> Result<Vec<Tenant>, DbErr> {
    let mut tenants = Vec::with_capacity(ids.len());
    for id in ids {
        let tenant = tenant(id);
        let schema = tenant.schema().quoted();
        conn.execute_unprepared(&format!(
            "CREATE SCHEMA {schema};
             CREATE TABLE {schema}.projects (
                 id serial PRIMARY KEY,
                 tenant text NOT NULL,
                 name text NOT NULL,
                 code integer NOT NULL
             );
             CREATE TABLE {schema}.only_in_tenant (id integer)"
        ))
        .await?;
        tenants.push(tenant);
    }
    Ok(tenants)
}

pub fn stmt(sql: &str) -> Statement {
    Statement::from_string(DbBackend::Postgres, sql)
}

/// The first column of the one row `sql` returns, as `T`.
pub async fn scalar<T, C>(conn: &C, sql: &str) -> Result<T, DbErr>
where
    T: sea_orm::TryGetable,
    C: ConnectionTrait,
{
    let row = conn
        .query_one_raw(stmt(sql))
        .await?
        .ok_or_else(|| DbErr::Custom(format!("no row from {sql}")))?;
    row.try_get_by_index(0)
}

pub async fn search_path<C: ConnectionTrait>(conn: &C) -> Result<String, DbErr> {
    scalar(conn, "SELECT current_setting('search_path')").await
}

/// The SQLSTATE of a database error, if `err` carries one.
pub fn sqlstate(err: &DbErr) -> Option<String> {
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e))
        | DbErr::Conn(RuntimeErr::SqlxError(e)) => e
            .as_database_error()
            .and_then(|db| db.code())
            .map(|code| code.into_owned()),
        _ => None,
    }
}

/// Asserts that `result` failed with SQLSTATE `code`.
#[track_caller]
pub fn assert_sqlstate<T: std::fmt::Debug>(result: Result<T, DbErr>, code: &str) -> DbErr {
    match result {
        Ok(value) => panic!("expected SQLSTATE {code}, got Ok({value:?})"),
        Err(err) => {
            assert_eq!(
                sqlstate(&err).as_deref(),
                Some(code),
                "expected SQLSTATE {code}, got {err:?}"
            );
            err
        }
    }
}

/// Closes the pools, then drops the database.
pub async fn finish(test_db: TestDatabase, pools: Vec<DatabaseConnection>) -> TestResult {
    for pool in pools {
        pool.close().await?;
    }
    test_db.close().await?;
    Ok(())
}

/// How the library's pool reaches the server: directly, or through the
/// transaction-mode PgBouncer of `TENANCY_TEST_PGBOUNCER` (`.ci/run` starts
/// one). The isolation, leak and concurrency tests run both ways, same code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Direct,
    PgBouncer,
}

impl Route {
    /// A pool of `max_connections` on `test_db` by this route; `None` (with
    /// the skip message printed) when there is no PgBouncer to go through.
    pub async fn connect(
        self,
        test: &str,
        test_db: &TestDatabase,
        max_connections: u32,
    ) -> Result<Option<DatabaseConnection>, DbErr> {
        let mut opts = match self {
            Route::Direct => test_db.connect_options(),
            Route::PgBouncer => match test_db
                .pooler_connect_options()
                .map_err(|e| DbErr::Custom(e.to_string()))?
            {
                Some(opts) => opts,
                None => {
                    println!("{}", tenancy_testing::pgbouncer_skip_message(test));
                    return Ok(None);
                }
            },
        };
        opts.max_connections(max_connections);
        Database::connect(opts).await.map(Some)
    }

    /// The `TenantDb` for a pool of this route: through a transaction-mode
    /// pooler, in pooler mode.
    pub fn tenant_db(self, conn: &DatabaseConnection) -> tenancy_sea_orm::TenantDb {
        let db = tenancy_sea_orm::TenantDb::new(conn.clone()).unwrap();
        match self {
            Route::Direct => db,
            Route::PgBouncer => db.behind_pooler(),
        }
    }
}

/// Runs `$test(Route)` twice: `direct` and `through_pgbouncer` (skipped, with
/// a message, when `TENANCY_TEST_PGBOUNCER` is unset).
#[macro_export]
macro_rules! both_routes {
    ($(#[$attr:meta])* $test:ident) => {
        mod $test {
            use super::*;

            $(#[$attr])*
            async fn direct() -> TestResult {
                super::$test(common::Route::Direct).await
            }

            $(#[$attr])*
            async fn through_pgbouncer() -> TestResult {
                super::$test(common::Route::PgBouncer).await
            }
        }
    };
}

/// The first column of the one row a simple-protocol query returns, as text.
/// Simple queries use no prepared statement, so this is safe unscoped through
/// a transaction-mode pooler (SeaORM's own queries are not: see the README).
pub async fn simple_text(conn: &DatabaseConnection, sql: &str) -> Result<Option<String>, DbErr> {
    use sea_orm::sqlx::Row as _;
    let pool = conn.get_postgres_connection_pool();
    let row = sea_orm::sqlx::raw_sql(sqlx_core::sql_str::AssertSqlSafe(sql.to_owned()))
        .fetch_one(pool)
        .await
        .map_err(|e| DbErr::Query(RuntimeErr::SqlxError(e.into())))?;
    row.try_get::<Option<String>, _>(0)
        .map_err(|e| DbErr::Custom(format!("{sql}: {e}")))
}

/// A `NOLOGIN` role with a name of its own (`prefix`, the process id and the
/// clock), granted to the current user so `SET ROLE` works, then `grants`
/// run with `{role}` replaced by its quoted name. Drop it with
/// `DROP OWNED BY …; DROP ROLE …` at the end of the test.
pub async fn create_role(
    conn: &DatabaseConnection,
    prefix: &str,
    grants: &str,
) -> Result<tenancy_core::RoleName, Box<dyn StdError + Send + Sync>> {
    let role = tenancy_core::RoleName::new(&format!(
        "{prefix}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .subsec_nanos()
    ))?;
    let quoted = role.quoted();
    conn.execute_unprepared(&format!(
        "CREATE ROLE {quoted} NOLOGIN; GRANT {quoted} TO current_user; {}",
        grants.replace("{role}", &quoted)
    ))
    .await?;
    Ok(role)
}
