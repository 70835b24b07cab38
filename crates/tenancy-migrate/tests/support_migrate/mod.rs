//! Shared set-up for the migration and status tests: test migrators and
//! tenants made with raw SQL (independent of the lifecycle API).

#![allow(dead_code, unreachable_pub, missing_docs)]
// `MigrationTrait` (async_trait) spells its argument `&SchemaManager`.
#![allow(elided_lifetimes_in_paths)]

use std::error::Error as StdError;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, Value};
use sea_orm_migration::{MigrationName, MigrationTrait, MigratorTrait, SchemaManager};
use tenancy_core::{SchemaName, TenantId};
use tenancy_migrate::TenantFleet;
pub use tenancy_testing::TestDatabase;

pub type TestResult = Result<(), Box<dyn StdError + Send + Sync>>;
pub type BoxError = Box<dyn StdError + Send + Sync>;

pub const M1: &str = "m0001_create_projects";
pub const M2: &str = "m0002_add_code";
pub const M3: &str = "m0003_code_not_null";
pub const CRASH: &str = "m0003_audit_then_crash";
pub const KILL: &str = "m0003_audit_then_kill";
pub const PANIC: &str = "m0003_panic_on_marker";
pub const SHARED1: &str = "s0001_create_plans";

async fn exec(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    manager
        .get_connection()
        .execute_unprepared(sql)
        .await
        .map(drop)
}

/// A migration given by its SQL; everything unqualified, as real tenant
/// migrations are.
macro_rules! sql_migration {
    ($ty:ident, $name:expr, up: $up:expr, down: $down:expr) => {
        pub struct $ty;
        impl MigrationName for $ty {
            fn name(&self) -> &str {
                $name
            }
        }
        #[async_trait::async_trait]
        impl MigrationTrait for $ty {
            async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                exec(manager, $up).await
            }
            async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                exec(manager, $down).await
            }
        }
    };
}

sql_migration!(CreateProjects, M1,
    up: "CREATE TABLE projects (id serial PRIMARY KEY, name text)",
    down: "DROP TABLE projects");
sql_migration!(AddCode, M2,
    up: "ALTER TABLE projects ADD COLUMN code text",
    down: "ALTER TABLE projects DROP COLUMN code");
sql_migration!(CodeNotNull, M3,
    up: "ALTER TABLE projects ALTER COLUMN code SET NOT NULL",
    down: "ALTER TABLE projects ALTER COLUMN code DROP NOT NULL");
// Creates a table, then fails while `public.crash_switch` exists: a run that
// dies half-way through a migration.
sql_migration!(AuditThenCrash, CRASH,
    up: "CREATE TABLE audit_log (id serial PRIMARY KEY);
         DO $$ BEGIN
           IF to_regclass('public.crash_switch') IS NOT NULL THEN
             RAISE EXCEPTION 'simulated crash after creating audit_log';
           END IF;
         END $$",
    down: "DROP TABLE audit_log");
// Creates a table, then kills its own server process while
// `public.crash_switch` exists: the connection dies mid-transaction, as when
// the migrating process is killed.
sql_migration!(AuditThenKill, KILL,
    up: "CREATE TABLE audit_log (id serial PRIMARY KEY);
         SELECT pg_terminate_backend(pg_backend_pid()) WHERE to_regclass('public.crash_switch') IS NOT NULL",
    down: "DROP TABLE audit_log");
sql_migration!(CreatePlans, SHARED1,
    up: "CREATE TABLE plans (id serial PRIMARY KEY, name text NOT NULL)",
    down: "DROP TABLE plans");

/// Panics (migration code with a bug) in schemas holding a `panic_marker`
/// table.
pub struct PanicOnMarker;
impl MigrationName for PanicOnMarker {
    fn name(&self) -> &str {
        PANIC
    }
}
#[async_trait::async_trait]
impl MigrationTrait for PanicOnMarker {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let row = manager
            .get_connection()
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT to_regclass('panic_marker') IS NOT NULL AS marked",
            ))
            .await?
            .ok_or_else(|| DbErr::Custom("no row".into()))?;
        let marked: bool = row.try_get("", "marked")?;
        assert!(!marked, "bug in migration code");
        Ok(())
    }
}

/// Migrations 1 and 2.
pub struct Migrator;
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateProjects), Box::new(AddCode)]
    }
}

/// Migrations 1 to 3.
pub struct MigratorV3;
impl MigratorTrait for MigratorV3 {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateProjects),
            Box::new(AddCode),
            Box::new(CodeNotNull),
        ]
    }
}

/// Migrations 1, 2, then one that fails after creating a table.
pub struct CrashMigrator;
impl MigratorTrait for CrashMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateProjects),
            Box::new(AddCode),
            Box::new(AuditThenCrash),
        ]
    }
}

/// Migrations 1, 2, then one that kills its connection after creating a table.
pub struct KillMigrator;
impl MigratorTrait for KillMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateProjects),
            Box::new(AddCode),
            Box::new(AuditThenKill),
        ]
    }
}

/// Migrations 1, 2, then one that panics in marked schemas.
pub struct PanicMigrator;
impl MigratorTrait for PanicMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateProjects),
            Box::new(AddCode),
            Box::new(PanicOnMarker),
        ]
    }
}

/// The shared (public) migrator.
pub struct SharedMigrator;
impl MigratorTrait for SharedMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreatePlans)]
    }
}

pub fn id(raw: &str) -> TenantId {
    TenantId::new(raw).expect("valid tenant id")
}

/// The schema the default naming gives `raw`.
pub fn schema(raw: &str) -> SchemaName {
    SchemaName::new(&format!("tenant_{raw}")).expect("valid schema name")
}

/// A fresh database with the registry installed.
pub async fn fleet_db<M: MigratorTrait>()
-> Result<(TestDatabase, DatabaseConnection, TenantFleet<M>), BoxError> {
    let db = TestDatabase::create().await?;
    let conn = db.connect().await?;
    let fleet = TenantFleet::<M>::new(conn.clone());
    fleet.install().await?;
    Ok((db, conn, fleet))
}

/// A fleet on `conn` (a fresh database's, from [`TestDatabase::with`]) with
/// the registry installed.
pub async fn fleet_on<M: MigratorTrait>(
    conn: &DatabaseConnection,
) -> Result<TenantFleet<M>, BoxError> {
    let fleet = TenantFleet::<M>::new(conn.clone());
    fleet.install().await?;
    Ok(fleet)
}

/// Registers a tenant with `status` and, if `with_schema`, creates its
/// (empty) schema: what creating a tenant leaves before its migrations.
pub async fn add_tenant_with(
    conn: &DatabaseConnection,
    raw: &str,
    status: &str,
    with_schema: bool,
) -> Result<(), DbErr> {
    let schema = schema(raw);
    if with_schema {
        conn.execute_unprepared(&format!("CREATE SCHEMA {}", schema.quoted()))
            .await?;
    }
    conn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO public.tenants (tenant_id, schema_name, status) VALUES ($1, $2, $3)",
        [raw.into(), schema.as_str().into(), status.into()],
    ))
    .await
    .map(drop)
}

/// Registers active tenants with empty schemas.
pub async fn add_tenants(conn: &DatabaseConnection, raws: &[&str]) -> Result<(), DbErr> {
    for raw in raws {
        add_tenant_with(conn, raw, "active", true).await?;
    }
    Ok(())
}

pub async fn query_all(
    conn: &DatabaseConnection,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<sea_orm::QueryResult>, DbErr> {
    conn.query_all_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        values,
    ))
    .await
}

/// The versions recorded in a schema's `seaql_migrations`, sorted; `None`
/// when the table does not exist.
pub async fn versions(
    conn: &DatabaseConnection,
    schema: &str,
) -> Result<Option<Vec<String>>, DbErr> {
    if !table_exists(conn, schema, "seaql_migrations").await? {
        return Ok(None);
    }
    let quoted = tenancy_core::SharedSchema::new(schema)
        .map_err(|e| DbErr::Custom(e.to_string()))?
        .quoted();
    let rows = query_all(
        conn,
        &format!("SELECT version FROM {quoted}.seaql_migrations ORDER BY version"),
        vec![],
    )
    .await?;
    rows.iter()
        .map(|r| r.try_get::<String>("", "version"))
        .collect::<Result<_, _>>()
        .map(Some)
}

pub async fn table_exists(
    conn: &DatabaseConnection,
    schema: &str,
    table: &str,
) -> Result<bool, DbErr> {
    let rows = query_all(
        conn,
        "SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = $1 AND tablename = $2",
        vec![schema.into(), table.into()],
    )
    .await?;
    Ok(!rows.is_empty())
}

/// `Some(nullable)` for an existing column, `None` otherwise.
pub async fn column_nullable(
    conn: &DatabaseConnection,
    schema: &str,
    table: &str,
    column: &str,
) -> Result<Option<bool>, DbErr> {
    let rows = query_all(
        conn,
        "SELECT is_nullable = 'YES' AS nullable FROM information_schema.columns \
         WHERE table_schema = $1 AND table_name = $2 AND column_name = $3",
        vec![schema.into(), table.into(), column.into()],
    )
    .await?;
    rows.first()
        .map(|r| r.try_get::<bool>("", "nullable"))
        .transpose()
}

pub fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}
