//! The fleet's health: what is registered against what is in the database.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, Statement, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;
use tenancy_core::{SchemaName, TenantId};

use crate::migrate::mixed::{Target, run_mixed};
use crate::migrator::migration_names;
use crate::printable::{printable, printable_list};
use crate::registry::{CorruptRecord, StatusFilter, TenantList};
use crate::tenant_txn::{apply_pending, has_outside_transaction, prepare_for_migration};
use crate::{Error, TenantFleet};

/// What [`TenantFleet::health`] found. Empty lists mean healthy.
///
/// With the `serde` feature, each `(tenant, …)` pair serializes as an
/// object with named fields: `{"tenant": "acme", "schema": "tenant_acme"}`
/// in `missing_schemas`, `{"tenant": …, "migrations": […]}` in `pending`
/// and `unknown`, `{"tenant": …, "tables": […]}` in `shadowing`.
///
/// ```
/// fn alert(report: &tenancy::migrate::HealthReport) {
///     for (tenant, schema) in &report.missing_schemas {
///         eprintln!("{tenant}: schema {schema} is missing");
///     }
///     for (tenant, pending) in &report.pending {
///         eprintln!("{tenant}: {} migrations pending", pending.len());
///     }
///     if !report.is_healthy() {
///         eprintln!("{report}");
///     }
/// }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct HealthReport {
    /// Tenants registered: how many the report covers (unreadable rows
    /// aside).
    pub tenants: usize,
    /// Registry rows that do not validate (written by hand): each is its
    /// tenant's problem, the rest of the fleet is checked all the same.
    pub corrupt: Vec<CorruptRecord>,
    /// Registered tenants whose schema does not exist.
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::serde_support::tenant_schemas")
    )]
    pub missing_schemas: Vec<(TenantId, SchemaName)>,
    /// Schemas that look like tenants (the naming prefix, or a migrations
    /// table) but that no tenant owns.
    pub orphan_schemas: Vec<String>,
    /// Tenants with migrations not applied yet, with their names.
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::serde_support::tenant_migrations")
    )]
    pub pending: Vec<(TenantId, Vec<String>)>,
    /// Tenants with migrations applied that this binary's migrator does not
    /// know (applied by a newer build, or renamed), with their names:
    /// migrations refuse to run for them until the right build is deployed.
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::serde_support::tenant_migrations")
    )]
    pub unknown: Vec<(TenantId, Vec<String>)>,
    /// Tenants at the latest migration whose tables or columns differ from a
    /// schema freshly migrated to it (a change made by hand, or a migration
    /// edited after it ran).
    pub drifted: Vec<TenantId>,
    /// Tenant tables whose name also exists in a shared schema: a query for
    /// the tenant would silently read the shared table if the tenant's table
    /// went missing.
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::serde_support::tenant_tables")
    )]
    pub shadowing: Vec<(TenantId, Vec<String>)>,
    /// The spare pool: spares are schemas with the naming prefix that no
    /// tenant owns, and are not orphans; one behind, ahead, missing or
    /// unusable makes the fleet unhealthy.
    pub spares: crate::SpareStatus,
    /// In Citus mode: tenants whose schema stayed on the coordinator (not in
    /// `citus_schemas`); distribute them with
    /// [`TenantFleet::distribute_tenant`].
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::serde_support::tenant_schemas")
    )]
    pub not_distributed: Vec<(TenantId, SchemaName)>,
    /// In Citus mode: shared tables (`schema.table`, quoted as needed) that
    /// tenant tables reference by foreign key but that are not Citus
    /// reference tables; such a tenant cannot be distributed until
    /// [`reference_table`](crate::reference_table) makes them one.
    pub not_reference_tables: Vec<String>,
}

impl HealthReport {
    /// Whether nothing is wrong. Shadowing alone is a warning, not a failure:
    /// strict mode makes it harmless.
    ///
    /// ```
    /// assert!(tenancy::migrate::HealthReport::default().is_healthy());
    /// ```
    #[must_use]
    pub fn is_healthy(&self) -> bool {
        self.corrupt.is_empty()
            && self.missing_schemas.is_empty()
            && self.orphan_schemas.is_empty()
            && self.pending.is_empty()
            && self.unknown.is_empty()
            && self.drifted.is_empty()
            && self.spares.is_healthy()
            && self.not_distributed.is_empty()
            && self.not_reference_tables.is_empty()
    }
}

impl fmt::Display for HealthReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} tenants: {}",
            self.tenants,
            if self.is_healthy() {
                "healthy"
            } else {
                "problems found"
            }
        )?;
        for bad in &self.corrupt {
            writeln!(
                f,
                "  unreadable registry row: tenant {:?}: {} (fix or remove the row)",
                bad.tenant, bad.reason
            )?;
        }
        for (tenant, schema) in &self.missing_schemas {
            writeln!(
                f,
                "  missing schema: tenant {tenant} (schema {schema} does not exist)"
            )?;
        }
        for schema in &self.orphan_schemas {
            writeln!(
                f,
                "  orphan schema: {} (no tenant owns it; adopt or drop it)",
                printable(schema)
            )?;
        }
        for (tenant, pending) in &self.pending {
            writeln!(f, "  pending: tenant {tenant}: {}", printable_list(pending))?;
        }
        for (tenant, unknown) in &self.unknown {
            writeln!(
                f,
                "  applied but unknown: tenant {tenant}: {} (deploy the build that has them)",
                printable_list(unknown)
            )?;
        }
        for tenant in &self.drifted {
            writeln!(
                f,
                "  drifted: tenant {tenant} differs from the latest migration state"
            )?;
        }
        if self.spares.total() > 0 {
            writeln!(f, "  {}", self.spares)?;
        }
        for (tenant, schema) in &self.not_distributed {
            writeln!(
                f,
                "  not distributed: tenant {tenant} (schema {schema} is on the Citus \
                 coordinator; run distribute_tenant)"
            )?;
        }
        for table in &self.not_reference_tables {
            writeln!(
                f,
                "  not a reference table: {} (tenant tables reference it; make it one with \
                 create_reference_table)",
                printable(table)
            )?;
        }
        for (tenant, tables) in &self.shadowing {
            writeln!(
                f,
                "  warning: tenant {tenant} has tables also in a shared schema: {}",
                printable_list(tables)
            )?;
        }
        Ok(())
    }
}

/// One row per table column, normalised so that two schemas built by the
/// same migrations compare equal whatever their OIDs or column order.
///
/// A column's type is named independently of the search path and of the
/// schema being fingerprinted: `format_type` qualifies a type only when the
/// search path does not find it, so its qualification (the type's schema,
/// when the type is not visible) is stripped, and put back for types of
/// other schemas than the table's and `pg_catalog`. A tenant's own enum is
/// then `mood` in every tenant and in the reference schema, and a shared
/// schema's `kit.currency` everywhere.
const FINGERPRINT: &str = "\
    SELECT n.nspname::text AS schema, md5(string_agg(
        c.relname || '.' || a.attname || ':'
            || CASE WHEN tn.oid IN (n.oid, 'pg_catalog'::regnamespace) THEN ''
                    ELSE quote_ident(tn.nspname) || '.' END
            || CASE WHEN starts_with(format_type(a.atttypid, a.atttypmod), quote_ident(tn.nspname) || '.')
                    THEN substr(format_type(a.atttypid, a.atttypmod), length(quote_ident(tn.nspname)) + 2)
                    ELSE format_type(a.atttypid, a.atttypmod) END
            || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
        ',' ORDER BY c.relname, a.attname)) AS fingerprint
    FROM pg_namespace n
    JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p')
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    JOIN pg_type t ON t.oid = a.atttypid
    JOIN pg_namespace tn ON tn.oid = t.typnamespace
    WHERE n.nspname = ANY($1)
    GROUP BY n.nspname";

impl<M: MigratorTrait> TenantFleet<M> {
    /// Checks the fleet against the database: missing schemas, orphan
    /// schemas, pending migrations, migrations applied but unknown to `M`,
    /// drift from the latest migration state and
    /// tables that shadow shared ones. A handful of catalog queries whatever
    /// the number of tenants, plus one scratch schema migrated inside a
    /// transaction that is rolled back (created, migrated as a tenant is and
    /// dropped again when `M` has migrations that run outside a
    /// transaction).
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
    /// let health = fleet.health().await?;
    /// assert!(health.is_healthy(), "{health}");
    /// assert_eq!(health.tenants, 1);
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Database`] when the catalog or registry cannot be read;
    /// [`Error::DuplicateMigrationName`] when two of `M`'s migrations share a
    /// name. A registry row that does not validate is reported in
    /// [`HealthReport::corrupt`], not an error.
    pub async fn health(&self) -> Result<HealthReport, Error> {
        self.ensure_direct().await?;
        let db_err = |source| Error::Database {
            action: "checking the fleet's health",
            source,
        };
        migration_names::<M>()?;
        let TenantList {
            tenants, corrupt, ..
        } = self.list(StatusFilter::All).await?;
        let schemas: Vec<String> = tenants.iter().map(|t| t.schema.to_string()).collect();
        // A schema named by an unreadable row is not an orphan: it has an
        // owner whose row needs fixing, and dropping it would lose data.
        // Spares are owned by the pool; one named by a hand-written row
        // that is not a spare name is still reported, in `spares`.
        let spares = self.read_spare_status().await?;
        let claimed: Vec<String> = schemas
            .iter()
            .cloned()
            .chain(corrupt.iter().filter_map(|c| c.schema.clone()))
            .chain(spares.ready.iter().map(ToString::to_string))
            .chain(
                spares
                    .behind
                    .iter()
                    .chain(&spares.ahead)
                    .map(|s| s.schema.to_string()),
            )
            .collect();
        let mut report = HealthReport {
            tenants: tenants.len(),
            corrupt,
            spares,
            ..HealthReport::default()
        };

        let existing: BTreeSet<String> = self
            .conn
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT nspname::text AS schema FROM pg_namespace WHERE nspname = ANY($1)",
                [schemas.clone().into()],
            ))
            .await
            .map_err(db_err)?
            .iter()
            .map(|row| row.try_get::<String>("", "schema"))
            .collect::<Result<_, _>>()
            .map_err(db_err)?;
        report.missing_schemas = tenants
            .iter()
            .filter(|t| !existing.contains(t.schema.as_str()))
            .map(|t| (t.id.clone(), t.schema.clone()))
            .collect();

        report.orphan_schemas = self.orphans(&claimed).await.map_err(db_err)?;
        report.shadowing = self.shadowing(&tenants).await.map_err(db_err)?;
        let citus = self.citus_health(&tenants, &existing).await?;
        report.not_distributed = citus.not_distributed;
        report.not_reference_tables = citus.not_reference;

        // Pending migrations come from the fleet status (one pass over every
        // migrations table); drift is judged only for tenants at the latest
        // migration, against a schema freshly migrated to it.
        let status = self.fleet_status().await?;
        let fingerprints = fingerprints(&self.conn, &schemas).await.map_err(db_err)?;
        let reference = self.reference_fingerprint().await?;
        for tenant in &status.tenants {
            if !tenant.unknown.is_empty() {
                report
                    .unknown
                    .push((tenant.tenant.clone(), tenant.unknown.clone()));
            }
            if tenant.is_behind() {
                report
                    .pending
                    .push((tenant.tenant.clone(), tenant.pending.clone()));
            } else if tenant.is_up_to_date()
                // Migrations this binary does not know changed the schema
                // on purpose: reported above, not as drift.
                && tenant.unknown.is_empty()
                && fingerprints.get(tenant.schema.as_str()) != reference.as_ref()
            {
                report.drifted.push(tenant.tenant.clone());
            }
        }
        Ok(report)
    }

    /// Schemas that look like tenants but are not registered.
    async fn orphans(&self, registered: &[String]) -> Result<Vec<String>, sea_orm::DbErr> {
        let migrations_table = M::migration_table_name().to_string();
        let shared: Vec<String> = self
            .config
            .shared_schemas()
            .iter()
            .chain(std::iter::once(self.config.registry().schema()))
            .map(ToString::to_string)
            .collect();
        let rows = self
            .conn
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT n.nspname::text AS schema FROM pg_namespace n
                 WHERE n.nspname <> ALL($1) AND n.nspname <> ALL($2)
                   AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
                   AND (starts_with(n.nspname, $3) AND $3 <> ''
                        OR EXISTS (SELECT 1 FROM pg_class c
                                   WHERE c.relnamespace = n.oid AND c.relname = $4))
                 ORDER BY 1",
                [
                    registered.to_vec().into(),
                    shared.into(),
                    self.config.naming().prefix().into(),
                    migrations_table.into(),
                ],
            ))
            .await?;
        rows.iter()
            .map(|row| row.try_get::<String>("", "schema"))
            .collect()
    }

    /// Tenant tables whose name also exists in a shared schema.
    async fn shadowing(
        &self,
        tenants: &[crate::TenantRecord],
    ) -> Result<Vec<(TenantId, Vec<String>)>, sea_orm::DbErr> {
        let schemas: Vec<String> = tenants.iter().map(|t| t.schema.to_string()).collect();
        let shared: Vec<String> = self
            .config
            .shared_schemas()
            .iter()
            .map(ToString::to_string)
            .collect();
        let migrations_table = M::migration_table_name().to_string();
        let rows = self
            .conn
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT tn.nspname::text AS schema, tc.relname::text AS table_name
                 FROM pg_class tc JOIN pg_namespace tn ON tn.oid = tc.relnamespace
                 WHERE tn.nspname = ANY($1) AND tc.relkind IN ('r', 'p', 'v', 'm')
                   AND tc.relname <> $3
                   AND EXISTS (SELECT 1 FROM pg_class sc JOIN pg_namespace sn ON sn.oid = sc.relnamespace
                               WHERE sn.nspname = ANY($2) AND sc.relname = tc.relname)
                 ORDER BY 1, 2",
                [schemas.into(), shared.into(), migrations_table.into()],
            ))
            .await?;
        let mut by_schema: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for row in rows {
            by_schema
                .entry(row.try_get("", "schema")?)
                .or_default()
                .push(row.try_get("", "table_name")?);
        }
        Ok(tenants
            .iter()
            .filter_map(|t| {
                by_schema
                    .remove(t.schema.as_str())
                    .map(|tables| (t.id.clone(), tables))
            })
            .collect())
    }

    /// The fingerprint of a schema freshly migrated to the latest state:
    /// built in a scratch schema inside a transaction that is rolled back.
    async fn reference_fingerprint(&self) -> Result<Option<String>, Error> {
        let db_err = |source| Error::Database {
            action: "building the reference schema for the health check",
            source,
        };
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let scratch = SchemaName::new(&format!("tenancy_health_{nanos}"))?;
        if has_outside_transaction::<M>() {
            return self.reference_fingerprint_committed(scratch).await;
        }
        let txn: DatabaseTransaction = self.conn.begin().await.map_err(db_err)?;
        txn.execute_unprepared(&format!("CREATE SCHEMA {}", scratch.quoted()))
            .await
            .map_err(db_err)?;
        prepare_for_migration::<M>(&txn, &scratch, self.config.shared_schemas())
            .await
            .map_err(db_err)?;
        apply_pending::<M>(&txn)
            .await
            .map_err(|failure| db_err(failure.source))?;
        let mut reference = fingerprints(&txn, &[scratch.to_string()])
            .await
            .map_err(db_err)?;
        txn.rollback().await.map_err(db_err)?;
        Ok(reference.remove(scratch.as_str()))
    }
}

impl<M: MigratorTrait> TenantFleet<M> {
    /// [`reference_fingerprint`](Self::reference_fingerprint) for a migrator
    /// with migrations that run outside a transaction, which cannot run in
    /// one that is rolled back: the scratch schema is created, migrated as
    /// a tenant is, and dropped again, also after a failure. A crash in
    /// between leaves it behind, reported among the orphan schemas.
    async fn reference_fingerprint_committed(
        &self,
        scratch: SchemaName,
    ) -> Result<Option<String>, Error> {
        let db_err = |source| Error::Database {
            action: "building the reference schema for the health check",
            source,
        };
        self.conn
            .execute_unprepared(&format!("CREATE SCHEMA {}", scratch.quoted()))
            .await
            .map_err(db_err)?;
        let tenant = TenantId::new("health-check-reference")?;
        let target = Target {
            conn: &self.conn,
            tenant: &tenant,
            schema: &scratch,
            shared: self.config.shared_schemas(),
        };
        let result = match run_mixed::<M>(&target, Vec::new()).await {
            Ok(_) => fingerprints(&self.conn, &[scratch.to_string()])
                .await
                .map(|mut reference| reference.remove(scratch.as_str()))
                .map_err(db_err),
            Err(err) => Err(db_err(DbErr::Custom(err.to_string()))),
        };
        let dropped = self
            .conn
            .execute_unprepared(&format!("DROP SCHEMA {} CASCADE", scratch.quoted()))
            .await;
        let reference = result?;
        dropped.map_err(db_err)?;
        Ok(reference)
    }
}

async fn fingerprints(
    conn: &impl ConnectionTrait,
    schemas: &[String],
) -> Result<BTreeMap<String, String>, sea_orm::DbErr> {
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            FINGERPRINT,
            [schemas.to_vec().into()],
        ))
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("", "schema")?, row.try_get("", "fingerprint")?)))
        .collect()
}
