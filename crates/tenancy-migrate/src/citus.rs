//! Citus schema-based sharding: each tenant schema is distributed to one
//! worker node, and the coordinator routes a transaction by its search path
//! (the `SET LOCAL search_path` every scoped transaction starts with).
//!
//! Citus distributes a schema only if `citus.enable_schema_based_sharding`
//! is on when `CREATE SCHEMA` runs; otherwise the schema silently stays on
//! the coordinator. So in Citus mode the fleet turns it on for its own
//! transaction (`SET LOCAL`, never for the session) before creating a
//! schema, distributes an adopted one with `citus_schema_distribute`, and
//! checks `citus_schemas` before committing: a tenant left on the
//! coordinator is an error, not a success.

mod health;
mod ops;

use std::sync::Arc;

use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, Statement};
use tenancy_core::{SchemaName, TenantId};
use tokio::sync::OnceCell;

use crate::Error;

pub use ops::{CitusNode, TenantNode};

/// Whether a fleet distributes its tenant schemas with Citus schema-based
/// sharding (see the README's Citus section).
///
/// ```
/// use tenancy::migrate::{CitusMode, FleetConfig};
///
/// assert_eq!(FleetConfig::default().citus(), CitusMode::Detect);
/// let config = FleetConfig::default().with_citus(CitusMode::Required);
/// assert_eq!(config.citus(), CitusMode::Required);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CitusMode {
    /// Distribute when the `citus` extension is installed in the fleet's
    /// database (looked up once per fleet, at its first `create` or
    /// `adopt`); on plain PostgreSQL nothing changes.
    #[default]
    Detect,
    /// Always distribute; a database without the `citus` extension is an
    /// error ([`Error::CitusMissing`]) instead of a silent single-node fleet.
    Required,
    /// Never distribute: tenant schemas stay where `CREATE SCHEMA` puts
    /// them (on the coordinator, unless the database itself has
    /// `citus.enable_schema_based_sharding` on).
    Off,
}

/// The fleet's resolved Citus mode; shared by clones, looked up once.
#[derive(Clone, Default)]
pub(crate) struct CitusCheck(Arc<OnceCell<bool>>);

impl CitusCheck {
    /// Whether tenant schemas are to be distributed, per `mode`.
    pub(crate) async fn enabled(
        &self,
        conn: &DatabaseConnection,
        mode: CitusMode,
    ) -> Result<bool, Error> {
        if mode == CitusMode::Off {
            return Ok(false);
        }
        let installed = *self
            .0
            .get_or_try_init(|| citus_installed(conn))
            .await
            .map_err(|source| Error::Database {
                action: "looking up the citus extension",
                source,
            })?;
        if mode == CitusMode::Required && !installed {
            return Err(Error::CitusMissing);
        }
        Ok(installed)
    }
}

async fn citus_installed(conn: &DatabaseConnection) -> Result<bool, sea_orm::DbErr> {
    let row = conn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'citus') AS citus",
        ))
        .await?;
    row.map_or(Ok(false), |row| row.try_get("", "citus"))
}

/// Makes the `CREATE SCHEMA` that follows in `txn` distribute the schema.
pub(crate) async fn enable_schema_sharding(
    txn: &DatabaseTransaction,
) -> Result<(), sea_orm::DbErr> {
    txn.execute_unprepared("SET LOCAL citus.enable_schema_based_sharding TO on")
        .await
        .map(drop)
}

/// Distributes an existing schema (an adopted one) unless it already is.
pub(crate) async fn distribute_existing(
    txn: &DatabaseTransaction,
    schema: &SchemaName,
) -> Result<(), sea_orm::DbErr> {
    if is_distributed(txn, schema).await? {
        return Ok(());
    }
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT citus_schema_distribute(oid::regnamespace) FROM pg_catalog.pg_namespace \
         WHERE nspname = $1::name",
        [schema.as_str().into()],
    ))
    .await
    .map(drop)
}

/// [`Error::NotDistributed`] unless `schema` is in `citus_schemas`, as seen
/// by `txn` (before it commits).
pub(crate) async fn verify_distributed(
    txn: &DatabaseTransaction,
    tenant: &TenantId,
    schema: &SchemaName,
) -> Result<(), Error> {
    match is_distributed(txn, schema).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::NotDistributed {
            tenant: tenant.clone(),
            schema: schema.clone(),
        }),
        Err(source) => Err(Error::Tenant {
            tenant: tenant.clone(),
            source,
        }),
    }
}

async fn is_distributed<C: ConnectionTrait>(
    conn: &C,
    schema: &SchemaName,
) -> Result<bool, sea_orm::DbErr> {
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT EXISTS (SELECT FROM citus_schemas c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.schema_name::oid \
             WHERE n.nspname = $1::name) AS d",
            [schema.as_str().into()],
        ))
        .await?;
    row.map_or(Ok(false), |row| row.try_get("", "d"))
}

/// Makes the shared table `schema.table` a Citus reference table (a copy on
/// every node), so that tenant tables on any worker can reference it by
/// foreign key and join it locally; call it from the shared migration that
/// creates the table. Returns `false`, doing nothing, when the database has
/// no `citus` extension or the table is one already, so the same migration
/// runs on single-node PostgreSQL.
///
/// # Errors
/// The server's error: the table does not exist, or Citus refuses it.
///
/// ```
/// use sea_orm::ConnectionTrait;
/// use tenancy::{SharedSchema, TableName};
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let test_db = tenancy_testing::TestDatabase::create().await?;
/// # let conn = test_db.connect().await?;
/// // In a shared migration, `conn` is `manager.get_connection()`.
/// conn.execute_unprepared("CREATE TABLE plans (id int PRIMARY KEY, name text NOT NULL)")
///     .await?;
/// let made = tenancy::migrate::reference_table(&conn, &SharedSchema::public(), &TableName::new("plans")?)
///     .await?;
/// assert!(!made); // plain PostgreSQL: nothing to do
/// # conn.close().await?;
/// # test_db.close().await?;
/// # Ok(()) }
/// ```
pub async fn reference_table<C: ConnectionTrait>(
    conn: &C,
    schema: &tenancy_core::SharedSchema,
    table: &tenancy_core::TableName,
) -> Result<bool, sea_orm::DbErr> {
    let qualified = table.qualified(schema);
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'citus') AS citus",
            [],
        ))
        .await?;
    let citus: bool = row.map_or(Ok(false), |row| row.try_get("", "citus"))?;
    if !citus {
        return Ok(false);
    }
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT EXISTS (SELECT FROM pg_dist_partition \
             WHERE logicalrelid = $1::regclass AND partmethod = 'n' AND repmodel = 't') AS r",
            [qualified.clone().into()],
        ))
        .await?;
    if row.map_or(Ok(false), |row| row.try_get("", "r"))? {
        return Ok(false);
    }
    conn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT create_reference_table($1::regclass)",
        [qualified.into()],
    ))
    .await?;
    Ok(true)
}
