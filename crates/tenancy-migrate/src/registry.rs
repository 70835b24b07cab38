//! The registry table's write side: created and upgraded by the library's own
//! migrations, listed as [`TenantRecord`]s.

use std::fmt;

use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement};
use sea_orm_migration::MigratorTrait;
use tenancy_core::{SchemaName, TableName, TenantId, TenantStatus};
use tenancy_sea_orm::RegistryConfig;

use crate::pg::begin_read_committed;
use crate::{Error, TenantFleet};

/// Renders one registry migration's DDL for a registry location.
type RegistryDdl = fn(&RegistryConfig) -> Result<String, Error>;

/// The registry's own migrations, in order. Appending is the only allowed change.
const REGISTRY_MIGRATIONS: &[(&str, RegistryDdl)] = &[("0001_create_registry", create_registry)];

/// High 32 bits of the advisory lock that serialises registry upgrades.
const REGISTRY_LOCK: i64 = 0x746e_7267;

fn create_registry(config: &RegistryConfig) -> Result<String, Error> {
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

/// The registry columns a [`TenantRecord`] is read from.
pub(crate) const RECORD_COLUMNS: &str = "tenant_id, schema_name, display_name, domain, status";

/// One registered tenant, as the registry holds it.
///
/// ```
/// fn describe(record: &tenancy_migrate::TenantRecord) -> String {
///     format!("{} ({}) in {}: {}", record.id, record.display_name, record.schema, record.status)
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct TenantRecord {
    /// The tenant's id.
    pub id: TenantId,
    /// Its schema.
    pub schema: SchemaName,
    /// Its display name (may be empty).
    pub display_name: String,
    /// Its domain or subdomain, if any.
    pub domain: Option<String>,
    /// Its lifecycle status.
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::serde_support::display")
    )]
    pub status: TenantStatus,
}

/// Which tenants [`TenantFleet::list`] returns.
///
/// ```
/// use tenancy_core::TenantStatus;
/// use tenancy_migrate::StatusFilter;
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

/// A registry row that does not validate (written by hand: an invalid
/// tenant id or schema name, an unknown status, a NULL where a value is
/// needed). Fleet-wide calls report it as its tenant's problem and go on
/// with the others; calls on that one tenant fail with
/// [`Error::CorruptRegistry`] and change nothing.
///
/// The raw values are as stored: escape them before printing
/// ([`Display`](fmt::Display) does).
///
/// ```
/// fn alert(bad: &tenancy_migrate::CorruptRecord) {
///     eprintln!("{bad}"); // the tenant id quoted and escaped, and what is wrong
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct CorruptRecord {
    /// The tenant id as stored (empty when it is NULL).
    pub tenant: String,
    /// The schema name as stored, if it is text.
    pub schema: Option<String>,
    /// The status as stored, if it is text.
    pub status: Option<String>,
    /// What is wrong with the row.
    pub reason: String,
}

impl CorruptRecord {
    pub(crate) fn into_error(self) -> Error {
        Error::CorruptRegistry {
            tenant: self.tenant,
            reason: self.reason,
        }
    }

    /// Logged wherever a fleet-wide call meets the row, so that it reaches
    /// error trackers even when the caller only looks at a summary.
    pub(crate) fn log(&self) {
        tracing::error!(tenant = ?self.tenant, reason = %self.reason, "{self}");
    }

    /// Whether a fleet run restricted to `wanted` statuses covers this row:
    /// unless its status reads as one outside them (an unreadable status is
    /// no reason to leave a tenant out).
    pub(crate) fn in_run(&self, wanted: impl Fn(TenantStatus) -> bool) -> bool {
        self.status
            .as_deref()
            .and_then(|s| s.parse::<TenantStatus>().ok())
            .is_none_or(wanted)
    }
}

impl fmt::Display for CorruptRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the registry row of tenant {:?} is unusable: {}",
            self.tenant, self.reason
        )
    }
}

/// What [`TenantFleet::list`] found: the tenants, and the registry rows that
/// do not validate.
///
/// ```
/// fn print(list: &tenancy_migrate::TenantList) {
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
    /// use tenancy_migrate::TenantFleet;
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
                "SELECT pg_advisory_xact_lock(({REGISTRY_LOCK}::bigint << 32) | {}::oid::bigint); \
                 CREATE TABLE IF NOT EXISTS {versions} (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
                registry.schema().regnamespace(),
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
    /// use tenancy_core::TenantStatus;
    /// use tenancy_migrate::{NewTenant, StatusFilter, TenantFleet};
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
        let select = format!("SELECT {RECORD_COLUMNS} FROM {table}");
        let statement = match filter {
            StatusFilter::All => {
                Statement::from_string(DbBackend::Postgres, format!("{select} ORDER BY tenant_id"))
            }
            StatusFilter::Only(status) => Statement::from_sql_and_values(
                DbBackend::Postgres,
                format!("{select} WHERE status = $1 ORDER BY tenant_id"),
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
    read_row(row).map_err(CorruptRecord::into_error)
}

/// Reads one registry row into a record, or into what is wrong with it.
pub(crate) fn read_row(row: &QueryResult) -> Result<TenantRecord, CorruptRecord> {
    let raw = |column: &str| row.try_get::<Option<String>>("", column).ok().flatten();
    let corrupt = |reason: String| CorruptRecord {
        tenant: raw("tenant_id").unwrap_or_default(),
        schema: raw("schema_name"),
        status: raw("status"),
        reason,
    };
    let text = |column: &str| {
        row.try_get::<String>("", column)
            .map_err(|e| corrupt(format!("column {column}: {e}")))
    };
    let id = TenantId::new(&text("tenant_id")?).map_err(|e| corrupt(e.to_string()))?;
    let schema = SchemaName::new(&text("schema_name")?).map_err(|e| corrupt(e.to_string()))?;
    let status = text("status")?
        .parse::<TenantStatus>()
        .map_err(|e| corrupt(e.to_string()))?;
    let domain = row
        .try_get::<Option<String>>("", "domain")
        .map_err(|e| corrupt(format!("column domain: {e}")))?;
    Ok(TenantRecord {
        id,
        schema,
        display_name: text("display_name")?,
        domain,
        status,
    })
}

/// Reads one registry row of a fleet-wide call: a row that does not
/// validate is logged and set aside in `corrupt`, and the call goes on.
pub(crate) fn read_or_set_aside(
    row: &QueryResult,
    corrupt: &mut Vec<CorruptRecord>,
) -> Option<TenantRecord> {
    match read_row(row) {
        Ok(record) => Some(record),
        Err(bad) => {
            bad.log();
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
