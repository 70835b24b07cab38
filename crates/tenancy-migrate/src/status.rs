//! Which migrations each tenant has: one tenant through sea-orm-migration's
//! read-only calls, the whole fleet in a few statements.

mod fleet;

use std::fmt;

use sea_orm::{AccessMode, ConnectionTrait, TransactionTrait};
use sea_orm_migration::{MigrationStatus, MigratorTrait};
use tenancy_core::{SchemaName, SearchPath, TableName, TenantId, TenantStatus};

use crate::migrate::{open_error, registered_tenant};
use crate::migrator::migration_names;
use crate::pg::has_sqlstate;
use crate::{CorruptRecord, Error, TenantFleet};
use tenancy_core::sqlstate::{INVALID_SCHEMA_NAME, UNDEFINED_TABLE};

use fleet::read_fleet_status;

/// Attempts of [`TenantFleet::fleet_status`] when a schema or table vanishes
/// between its catalog read and its data read.
const STATUS_ATTEMPTS: usize = 3;

/// One tenant's migrations, from [`TenantFleet::tenant_status`].
///
/// ```
/// fn describe(status: &tenancy::migrate::MigrationStatusReport) -> String {
///     format!("{} ({}): {} applied, {} pending", status.tenant, status.schema, status.applied.len(), status.pending.len())
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct MigrationStatusReport {
    /// The tenant.
    pub tenant: TenantId,
    /// Its schema.
    pub schema: SchemaName,
    /// The migrations recorded in the tenant's `seaql_migrations`, in the
    /// migrator's order.
    pub applied: Vec<String>,
    /// The migrations not applied yet, in the migrator's order (all of them
    /// when the tenant has no migrations table).
    pub pending: Vec<String>,
}

impl MigrationStatusReport {
    /// Whether nothing is pending.
    ///
    /// ```
    /// fn needs_migration(status: &tenancy::migrate::MigrationStatusReport) -> bool {
    ///     !status.is_up_to_date()
    /// }
    /// ```
    #[must_use]
    pub fn is_up_to_date(&self) -> bool {
        self.pending.is_empty()
    }
}

/// Where a tenant's schema stands, in [`TenantMigrationStatus::state`].
///
/// ```
/// use tenancy::migrate::{SchemaState, TenantMigrationStatus};
///
/// fn label(status: &TenantMigrationStatus) -> &'static str {
///     match status.state {
///         SchemaState::Migrated => "migrated",
///         SchemaState::NoMigrationsTable => "never migrated",
///         SchemaState::MissingSchema => "schema missing",
///     }
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum SchemaState {
    /// The schema and its migrations table exist.
    Migrated,
    /// The schema exists but has no migrations table: nothing was ever
    /// applied, every migration is pending.
    NoMigrationsTable,
    /// The registry names a schema that does not exist.
    MissingSchema,
}

impl fmt::Display for SchemaState {
    /// In words, as a person reads it.
    ///
    /// ```
    /// assert_eq!(tenancy::migrate::SchemaState::MissingSchema.to_string(), "schema missing");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Migrated => "migrated",
            Self::NoMigrationsTable => "no migrations table",
            Self::MissingSchema => "schema missing",
        })
    }
}

/// One tenant's line of a [`FleetStatus`].
///
/// ```
/// fn line(status: &tenancy::migrate::TenantMigrationStatus) -> String {
///     format!("{} [{}] pending: {:?}", status.tenant, status.status, status.pending)
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct TenantMigrationStatus {
    /// The tenant.
    pub tenant: TenantId,
    /// Its schema.
    pub schema: SchemaName,
    /// Its registry status.
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::serde_support::display")
    )]
    pub status: TenantStatus,
    /// Whether its schema and migrations table exist.
    pub state: SchemaState,
    /// The migrator's migrations recorded as applied, in the migrator's order.
    pub applied: Vec<String>,
    /// The migrator's migrations not applied, in order (all of them when the
    /// schema or its migrations table is missing).
    pub pending: Vec<String>,
    /// Versions recorded in the tenant's table that the migrator does not
    /// know (applied by a newer build, or renamed), sorted.
    pub unknown: Vec<String>,
}

impl TenantMigrationStatus {
    /// Whether the schema exists and nothing is pending.
    ///
    /// ```
    /// fn up_to_date(fleet: &tenancy::migrate::FleetStatus) -> usize {
    ///     fleet.tenants.iter().filter(|t| t.is_up_to_date()).count()
    /// }
    /// ```
    #[must_use]
    pub fn is_up_to_date(&self) -> bool {
        self.state != SchemaState::MissingSchema && self.pending.is_empty()
    }

    /// Whether the schema exists and something is pending.
    ///
    /// ```
    /// fn behind(fleet: &tenancy::migrate::FleetStatus) -> Vec<&str> {
    ///     fleet.tenants.iter().filter(|t| t.is_behind()).map(|t| t.tenant.as_str()).collect()
    /// }
    /// ```
    #[must_use]
    pub fn is_behind(&self) -> bool {
        self.state != SchemaState::MissingSchema && !self.pending.is_empty()
    }
}

/// Counts over a [`FleetStatus`]. `up_to_date + behind + missing_schema ==
/// tenants`.
///
/// ```
/// fn summary(status: &tenancy::migrate::FleetStatus) -> String {
///     let totals = &status.totals;
///     format!("{}/{} up to date, {} pending migrations", totals.up_to_date, totals.tenants, totals.pending_migrations)
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct FleetTotals {
    /// Tenants covered.
    pub tenants: usize,
    /// Tenants with nothing pending.
    pub up_to_date: usize,
    /// Tenants with something pending (those without a migrations table
    /// included).
    pub behind: usize,
    /// Of `behind`, tenants whose schema has no migrations table.
    pub missing_table: usize,
    /// Tenants whose schema does not exist.
    pub missing_schema: usize,
    /// Tenants with versions the migrator does not know.
    pub with_unknown: usize,
    /// Pending migrations summed over all tenants whose schema exists.
    pub pending_migrations: usize,
    /// Registry rows that do not validate (not counted in `tenants`).
    pub corrupt: usize,
}

/// Every tenant's migrations, from [`TenantFleet::fleet_status`].
///
/// The [`Display`](fmt::Display) output is a one-line summary.
///
/// ```
/// fn report(status: &tenancy::migrate::FleetStatus) {
///     println!("{status}"); // the one-line summary
///     for tenant in status.tenants.iter().filter(|t| !t.is_up_to_date()) {
///         println!("{}: {:?} pending", tenant.tenant, tenant.pending);
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct FleetStatus {
    /// The migrator's migrations, in order.
    pub migrations: Vec<String>,
    /// Every tenant that is not soft-deleted, ordered by tenant id in byte
    /// order, whatever the database's collation.
    pub tenants: Vec<TenantMigrationStatus>,
    /// Registry rows (not soft-deleted) that do not validate: their tenants'
    /// status is unknown.
    pub corrupt: Vec<CorruptRecord>,
    /// Counts over `tenants`.
    pub totals: FleetTotals,
}

impl FleetStatus {
    /// Whether every tenant's schema exists, nothing is pending and every
    /// registry row is readable.
    ///
    /// ```
    /// fn gate(status: &tenancy::migrate::FleetStatus) -> Result<(), String> {
    ///     if status.is_up_to_date() { Ok(()) } else { Err(status.to_string()) }
    /// }
    /// ```
    #[must_use]
    pub fn is_up_to_date(&self) -> bool {
        self.totals.up_to_date == self.totals.tenants && self.totals.corrupt == 0
    }

    /// The line of one tenant.
    ///
    /// ```
    /// fn pending_for(status: &tenancy::migrate::FleetStatus, id: &tenancy::TenantId) -> usize {
    ///     status.tenant(id).map_or(0, |t| t.pending.len())
    /// }
    /// ```
    #[must_use]
    pub fn tenant(&self, id: &TenantId) -> Option<&TenantMigrationStatus> {
        self.tenants
            .binary_search_by(|t| t.tenant.cmp(id))
            .ok()
            .and_then(|i| self.tenants.get(i))
    }
}

impl fmt::Display for FleetStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.totals;
        write!(
            f,
            "{} tenants: {} up to date, {} behind ({} pending migrations; {} without a migrations \
             table), {} missing schema",
            t.tenants,
            t.up_to_date,
            t.behind,
            t.pending_migrations,
            t.missing_table,
            t.missing_schema,
        )?;
        if t.with_unknown > 0 {
            write!(f, ", {} with unknown migrations", t.with_unknown)?;
        }
        if t.corrupt > 0 {
            write!(f, ", {} unreadable registry rows", t.corrupt)?;
        }
        Ok(())
    }
}

impl<M: MigratorTrait> TenantFleet<M> {
    /// One tenant's applied and pending migrations, read with
    /// sea-orm-migration's read-only calls (no DDL: a missing migrations table
    /// means everything is pending) in a read-only transaction whose search
    /// path is the tenant's schema alone.
    ///
    /// ```
    /// use tenancy::migrate::{NewTenant, TenantFleet};
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
    /// let status = fleet.tenant_status(&"acme".parse()?).await?;
    /// assert!(status.is_up_to_date());
    /// assert_eq!(status.schema.as_str(), "tenant_acme");
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::UnknownTenant`], [`Error::SchemaMissing`]; [`Error::Tenant`]
    /// for a database error, including a version recorded in the tenant's
    /// table that `M` does not know ([`fleet_status`](Self::fleet_status)
    /// lists those instead); [`Error::DuplicateMigrationName`].
    pub async fn tenant_status(&self, id: &TenantId) -> Result<MigrationStatusReport, Error> {
        migration_names::<M>()?;
        self.ensure_direct().await?;
        let record = registered_tenant(self, id).await?;
        let tenant_err = |source| Error::Tenant {
            tenant: record.id.clone(),
            source,
        };
        let txn = self
            .conn
            .begin_with_config(None, Some(AccessMode::ReadOnly))
            .await
            .map_err(tenant_err)?;
        // The cast fails when the schema is missing; without it,
        // `current_schema()` (where the read-only probe looks for the
        // migrations table) would silently be another schema.
        txn.execute_unprepared(&format!(
            "{}; SELECT {}",
            SearchPath::strict(record.schema.clone()).set_local_statement(),
            record.schema.regnamespace(),
        ))
        .await
        .map_err(|source| open_error(&record, source))?;
        let migrations = M::get_migration_with_status_read_only(&txn)
            .await
            .map_err(tenant_err)?;
        txn.commit().await.map_err(tenant_err)?;
        let (applied, pending): (Vec<_>, Vec<_>) = migrations
            .iter()
            .partition(|m| m.status() == MigrationStatus::Applied);
        let names = |list: Vec<&sea_orm_migration::Migration>| {
            list.into_iter().map(|m| m.name().to_owned()).collect()
        };
        Ok(MigrationStatusReport {
            applied: names(applied),
            pending: names(pending),
            tenant: record.id,
            schema: record.schema,
        })
    }

    /// Every tenant's applied and pending migrations (soft-deleted tenants
    /// aside), without a round trip per tenant: one catalog query finds each
    /// tenant's schema and migrations table (`pg_namespace`, `pg_class`),
    /// then one `UNION ALL` statement per 100 tenants reads their versions,
    /// [`concurrency`](crate::FleetConfig::concurrency) statements at a time
    /// (about 0.8 s for 10,000 tenants on a 2-core server). Tenants whose
    /// migrations table or schema is missing are reported as such, never an
    /// error. Reads only and takes no tenant lock, so a tenant migrating
    /// meanwhile shows either its old or its new state.
    ///
    /// ```
    /// use tenancy::migrate::{NewTenant, TenantFleet};
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
    /// let status = fleet.fleet_status().await?;
    /// assert!(status.is_up_to_date(), "{status}");
    /// assert_eq!(status.totals.tenants, 1);
    /// assert!(status.tenant(&"acme".parse()?).is_some_and(|t| t.is_up_to_date()));
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Database`] when the registry or a migrations table cannot be
    /// read; [`Error::InvalidName`] when `M`'s migrations table name is not a
    /// valid table name; [`Error::DuplicateMigrationName`] when two of `M`'s
    /// migrations share a name. A registry row that does not validate is
    /// listed in [`FleetStatus::corrupt`], not an error.
    pub async fn fleet_status(&self) -> Result<FleetStatus, Error> {
        migration_names::<M>()?;
        self.ensure_direct().await?;
        let table = TableName::new(&M::migration_table_name().to_string())?;
        let mut attempt = 1;
        loop {
            match read_fleet_status(self, &table).await {
                // A schema or table dropped between the catalog read and the
                // data read; the next catalog read will not list it.
                Err(Error::Database { source, .. })
                    if attempt < STATUS_ATTEMPTS
                        && (has_sqlstate(&source, UNDEFINED_TABLE)
                            || has_sqlstate(&source, INVALID_SCHEMA_NAME)) =>
                {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}
