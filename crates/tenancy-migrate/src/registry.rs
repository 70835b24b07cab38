//! The registry table's write side: created and upgraded by the library's own
//! migrations, listed as [`TenantRecord`]s.
//!
//! The contract itself (columns, row type, validation, the change channel)
//! is [`tenancy_core::registry`]'s, and rows are read with
//! [`tenancy_sea_orm::read_record`], the same function the SeaORM layer's
//! lookups use: a row means the same to both, and an unusable one is the
//! same [`CorruptRecord`].

use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement};
use sea_orm_migration::MigratorTrait;
pub use tenancy_core::registry::{CorruptRecord, TenantRecord};
use tenancy_core::{TableName, TenantStatus};
use tenancy_sea_orm::{RegistryConfig, read_record};

use crate::pg::begin_read_committed;
use crate::{Error, TenantFleet};

/// Renders one registry migration's DDL for a registry location.
type RegistryDdl = fn(&RegistryConfig) -> Result<String, Error>;

/// The registry's own migrations, in order. Appending is the only allowed change.
const REGISTRY_MIGRATIONS: &[(&str, RegistryDdl)] = &[
    ("0001_create_registry", create_registry),
    ("0002_create_spares", crate::spares::create_spares_table),
    ("0003_add_placement", add_placement),
    ("0004_create_audit", crate::audit::create_audit),
];

fn create_registry(config: &RegistryConfig) -> Result<String, Error> {
    // The columns of `tenancy_core::registry::columns`, spelled out: an
    // applied migration never changes, so a new column is a new migration.
    let table = config.qualified_table();
    // Constraints are named explicitly: Citus suffixes shard names, and a
    // named constraint is what error handling matches on.
    let name =
        |suffix: &str| TableName::new(&format!("{}_{suffix}", config.table())).map(|n| n.quoted());
    Ok(format!(
        "CREATE TABLE {table} (
            tenant_id text NOT NULL,
            schema_name text NOT NULL,
            display_name text NOT NULL DEFAULT '',
            domain text,
            status text NOT NULL DEFAULT 'provisioning',
            settings jsonb NOT NULL DEFAULT '{{}}'::jsonb,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT {pkey} PRIMARY KEY (tenant_id),
            CONSTRAINT {schema_key} UNIQUE (schema_name),
            CONSTRAINT {domain_key} UNIQUE (domain),
            CONSTRAINT {status_check} CHECK (status IN ('provisioning', 'active', 'suspended', 'deleted'))
        )",
        pkey = name("pkey")?,
        schema_key = name("schema_name_key")?,
        domain_key = name("domain_key")?,
        status_check = name("status_check")?,
    ))
}

/// Where a tenant lives, and a move in progress (see
/// [`tenancy_core::registry`]'s table): nullable, so existing rows mean
/// what they meant.
fn add_placement(config: &RegistryConfig) -> Result<String, Error> {
    use tenancy_core::registry::columns::{MOVING_TO, PLACEMENT, STATUS_BEFORE_MOVE};
    Ok(format!(
        "ALTER TABLE {} ADD COLUMN {PLACEMENT} text, ADD COLUMN {MOVING_TO} text, \
         ADD COLUMN {STATUS_BEFORE_MOVE} text",
        config.qualified_table()
    ))
}

/// The registry columns a [`TenantRecord`] is read from.
pub(crate) const RECORD_COLUMNS: &str = tenancy_core::registry::columns::SELECT_LIST;

/// The rows of tenants whose schema is in this database: fleet-wide calls
/// leave out tenants moved elsewhere (their row only says where they went).
pub(crate) const HERE: &str = "placement IS NULL";

/// Which tenants [`TenantFleet::list`] returns.
///
/// ```
/// use tenancy::TenantStatus;
/// use tenancy::migrate::StatusFilter;
///
/// let suspended = StatusFilter::Only(TenantStatus::Suspended);
/// assert_ne!(suspended, StatusFilter::default()); // the default is `All`
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StatusFilter {
    /// Every registered tenant.
    #[default]
    All,
    /// Only tenants in this status.
    Only(TenantStatus),
}

/// The error for a call on one tenant whose row does not validate.
pub(crate) fn corrupt_error(record: CorruptRecord) -> Error {
    Error::CorruptRegistry { record }
}

/// Logged wherever a fleet-wide call meets an unusable row, so that it
/// reaches error trackers even when the caller only looks at a summary.
pub(crate) fn log_corrupt(record: &CorruptRecord) {
    tracing::error!(tenant = ?record.tenant, reason = %record.reason, "{record}");
}

/// What [`TenantFleet::list`] found: the tenants, and the registry rows that
/// do not validate.
///
/// ```
/// fn print(list: &tenancy::migrate::TenantList) {
///     for tenant in &list.tenants {
///         println!("{} {}", tenant.id, tenant.status);
///     }
///     for bad in &list.corrupt {
///         eprintln!("{bad}");
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct TenantList {
    /// The tenants, ordered by id.
    pub tenants: Vec<TenantRecord>,
    /// The rows that do not validate, ordered by their stored id.
    pub corrupt: Vec<CorruptRecord>,
}

impl<M: MigratorTrait> TenantFleet<M> {
    /// Creates the registry table, or upgrades it, with the library's own
    /// migrations (tracked in `tenancy_registry_migrations` beside it). Safe
    /// to call at every start-up, from several replicas at once.
    ///
    /// ```
    /// use tenancy::migrate::TenantFleet;
    /// # use sea_orm_migration::{MigrationTrait, MigratorTrait};
    /// # struct TenantMigrator;
    /// # impl MigratorTrait for TenantMigrator {
    /// #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
    /// # }
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let test_db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = test_db.connect().await?;
    /// let fleet = TenantFleet::<TenantMigrator>::new(conn.clone());
    /// fleet.install().await?;
    /// fleet.install().await?; // already installed: nothing to do
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Database`] when the DDL fails.
    pub async fn install(&self) -> Result<(), Error> {
        self.ensure_direct().await?;
        let db_err = |source| Error::Database {
            action: "installing the tenant registry",
            source,
        };
        let registry = self.config.registry();
        let versions = TableName::new("tenancy_registry_migrations")?.qualified(registry.schema());
        // READ COMMITTED: the versions read below must see what a concurrent
        // installer committed while this one waited for the lock.
        let txn = begin_read_committed(
            &self.conn,
            Some(&format!(
                "SELECT pg_advisory_xact_lock({}); \
                 CREATE TABLE IF NOT EXISTS {versions} (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
                tenancy_core::AdvisoryLock::RegistryInstall.shared_key(registry.schema()),
            )),
        )
        .await
        .map_err(db_err)?;
        let applied: Vec<String> = txn
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                format!("SELECT version FROM {versions}"),
            ))
            .await
            .map_err(db_err)?
            .iter()
            .map(|row| row.try_get::<String>("", "version"))
            .collect::<Result<_, _>>()
            .map_err(db_err)?;
        for (version, ddl) in REGISTRY_MIGRATIONS {
            if applied.iter().any(|v| v == version) {
                continue;
            }
            txn.execute_unprepared(&ddl(registry)?)
                .await
                .map_err(db_err)?;
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                format!("INSERT INTO {versions} (version) VALUES ($1)"),
                [(*version).into()],
            ))
            .await
            .map_err(db_err)?;
        }
        txn.commit().await.map_err(db_err)
    }

    /// The registered tenants, ordered by id. A row that does not validate
    /// (written by hand) does not fail the call: it is listed in
    /// [`TenantList::corrupt`] and logged with `tracing::error!`.
    ///
    /// ```
    /// use tenancy::TenantStatus;
    /// use tenancy::migrate::{NewTenant, StatusFilter, TenantFleet};
    /// # use sea_orm_migration::{MigrationTrait, MigratorTrait};
    /// # struct TenantMigrator;
    /// # impl MigratorTrait for TenantMigrator {
    /// #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
    /// # }
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let test_db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = test_db.connect().await?;
    /// # let fleet = TenantFleet::<TenantMigrator>::new(conn.clone());
    /// # fleet.install().await?;
    /// # fleet.create(&"acme".parse()?, NewTenant::new()).await?;
    /// fleet.create(&"globex".parse()?, NewTenant::new().status(TenantStatus::Suspended)).await?;
    ///
    /// let all = fleet.list(StatusFilter::All).await?;
    /// assert_eq!(all.tenants.len(), 2);
    /// assert!(all.corrupt.is_empty()); // no row written by hand that does not validate
    /// let active = fleet.list(StatusFilter::Only(TenantStatus::Active)).await?;
    /// assert_eq!(active.tenants[0].id.as_str(), "acme");
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Database`] when the registry cannot be read.
    pub async fn list(&self, filter: StatusFilter) -> Result<TenantList, Error> {
        self.ensure_direct().await?;
        let db_err = |source| Error::Database {
            action: "listing tenants",
            source,
        };
        let table = self.config.registry().qualified_table();
        // A tenant moved to another database is that database's to manage.
        let select = format!("SELECT {RECORD_COLUMNS} FROM {table} WHERE {HERE}");
        let statement = match filter {
            StatusFilter::All => {
                Statement::from_string(DbBackend::Postgres, format!("{select} ORDER BY tenant_id"))
            }
            StatusFilter::Only(status) => Statement::from_sql_and_values(
                DbBackend::Postgres,
                format!("{select} AND status = $1 ORDER BY tenant_id"),
                [status.as_str().into()],
            ),
        };
        let rows = self.conn.query_all_raw(statement).await.map_err(db_err)?;
        let (tenants, corrupt) = read_rows(&rows);
        Ok(TenantList { tenants, corrupt })
    }
}

/// Reads one registry row, validating every name again: the table may have
/// been written by hand.
pub(crate) fn record_from_row(row: &QueryResult) -> Result<TenantRecord, Error> {
    read_record(row).map_err(corrupt_error)
}

/// Reads one registry row of a fleet-wide call: a row that does not
/// validate is logged and set aside in `corrupt`, and the call goes on.
pub(crate) fn read_or_set_aside(
    row: &QueryResult,
    corrupt: &mut Vec<CorruptRecord>,
) -> Option<TenantRecord> {
    match read_record(row) {
        Ok(record) => Some(record),
        Err(bad) => {
            log_corrupt(&bad);
            corrupt.push(bad);
            None
        }
    }
}

/// Splits registry rows into the records that validate and the ones that do
/// not.
pub(crate) fn read_rows<'a>(
    rows: impl IntoIterator<Item = &'a QueryResult>,
) -> (Vec<TenantRecord>, Vec<CorruptRecord>) {
    let mut corrupt = Vec::new();
    let tenants = rows
        .into_iter()
        .filter_map(|row| read_or_set_aside(row, &mut corrupt))
        .collect();
    (tenants, corrupt)
}
