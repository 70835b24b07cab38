//! A pool of spare schemas, already migrated, so that sign-up costs a
//! rename instead of every migration.
//!
//! - A spare is an empty schema named by the fleet's naming
//!   ([`SchemaNaming::spare_schema`](tenancy_core::SchemaNaming::spare_schema),
//!   `tenant__spare_7`: no tenant id maps to such a name), migrated like a
//!   tenant, with its own ledger.
//! - Spares are recorded in a table beside the registry, `{registry}_spares`
//!   (made by [`TenantFleet::install`]), not in the registry: the request
//!   path reads only the registry, so no request can ever reach a spare.
//! - [`TenantFleet::create`], with
//!   [`FleetConfig::with_spare_pool`](crate::FleetConfig::with_spare_pool),
//!   takes the oldest ready spare in the transaction that writes the
//!   registry row: `ALTER SCHEMA spare RENAME TO tenant_acme`, its pool row
//!   deleted, then whatever migrations the spare lacks. A failure (or a
//!   crash) at any point leaves the spare a spare and no tenant.
//! - [`refill_spares`](TenantFleet::refill_spares) or a
//!   [`SpareRefiller`] tops the pool up;
//!   [`migrate_all`](TenantFleet::migrate_all) migrates spares after the
//!   tenants ([`FleetReport::spares`](crate::FleetReport::spares));
//!   [`health`](TenantFleet::health) reports them apart from orphans.

mod claim;
mod current;
mod make;
mod refiller;
mod sql;

use std::fmt;
use std::time::Duration;

use sea_orm_migration::MigratorTrait;
use tenancy_core::SchemaName;

use crate::migrator::migration_names;
use crate::printable::{printable, printable_list};
use crate::report::Outcome;
use crate::tenant_txn::runs_outside_transaction;
use crate::{Error, TenantFleet};

pub use refiller::SpareRefiller;
pub(crate) use sql::create_spares_table;

/// A spare schema with a list of migrations: the ones it lacks, or the ones
/// it has that the migrator does not know.
///
/// ```
/// fn print(spare: &tenancy::migrate::SpareMigrations) {
///     println!("{}: {}", spare.schema, spare.migrations.join(", "));
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct SpareMigrations {
    /// The spare.
    pub schema: SchemaName,
    /// The migrations, in the migrator's order (or the ledger's).
    pub migrations: Vec<String>,
}

/// The spare pool's state, from [`TenantFleet::spare_status`] (and in
/// [`HealthReport::spares`](crate::HealthReport::spares)).
///
/// ```
/// fn print(status: &tenancy::migrate::SpareStatus) {
///     println!("{} spares ready", status.ready.len());
///     if !status.is_healthy() {
///         eprintln!("{status}");
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct SpareStatus {
    /// Spares at the latest migration, ready to be claimed.
    pub ready: Vec<SchemaName>,
    /// Spares with migrations pending: still claimable (the claim applies
    /// them, at the cost of the speed spares are for);
    /// [`migrate_all`](TenantFleet::migrate_all) brings them current.
    pub behind: Vec<SpareMigrations>,
    /// Spares with migrations this migrator does not know (made by a newer
    /// build): never claimed by this build.
    pub ahead: Vec<SpareMigrations>,
    /// Spares recorded whose schema no longer exists: never claimed; drop
    /// them with [`TenantFleet::drop_spares`].
    pub missing: Vec<SchemaName>,
    /// Rows of the pool that do not name one of this fleet's spares
    /// (written by hand, or made under another naming prefix): never
    /// claimed, migrated or dropped. Remove them by hand.
    pub unusable: Vec<String>,
}

impl SpareStatus {
    /// Every recorded spare, in whatever state.
    ///
    /// ```
    /// assert_eq!(tenancy::migrate::SpareStatus::default().total(), 0);
    /// ```
    #[must_use]
    pub fn total(&self) -> usize {
        self.ready.len()
            + self.behind.len()
            + self.ahead.len()
            + self.missing.len()
            + self.unusable.len()
    }

    /// Whether every recorded spare is ready (also true with none).
    ///
    /// ```
    /// assert!(tenancy::migrate::SpareStatus::default().is_healthy());
    /// ```
    #[must_use]
    pub fn is_healthy(&self) -> bool {
        self.total() == self.ready.len()
    }
}

impl fmt::Display for SpareStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} spares ready", self.ready.len())?;
        for spare in &self.behind {
            write!(
                f,
                "\n  spare behind: {} lacks {} (migrate_all brings it current)",
                spare.schema,
                printable_list(&spare.migrations)
            )?;
        }
        for spare in &self.ahead {
            write!(
                f,
                "\n  spare ahead: {} has {}, unknown to this build (not claimed)",
                spare.schema,
                printable_list(&spare.migrations)
            )?;
        }
        for spare in &self.missing {
            write!(
                f,
                "\n  spare missing: schema {spare} does not exist (drop_spares removes it)"
            )?;
        }
        for row in &self.unusable {
            write!(
                f,
                "\n  unusable spare row: {} is not a spare name of this fleet (remove the row)",
                printable(row)
            )?;
        }
        Ok(())
    }
}

/// One spare's part of [`migrate_all`](TenantFleet::migrate_all), in
/// [`FleetReport::spares`](crate::FleetReport::spares).
///
/// `outcome` is [`Outcome::Skipped`] for a spare another transaction held
/// (being claimed, or migrated by another runner): it is not waited for.
///
/// ```
/// fn print(spare: &tenancy::migrate::SpareReport) {
///     match &spare.error {
///         Some(error) => eprintln!("{error}"),
///         None => println!("{}: {} applied", spare.schema, spare.applied.len()),
///     }
/// }
/// ```
#[derive(Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct SpareReport {
    /// The spare.
    pub schema: SchemaName,
    /// How it ended.
    pub outcome: Outcome,
    /// The migrations applied, in order.
    pub applied: Vec<String>,
    /// Time spent on it (serialized as `duration_seconds`).
    #[cfg_attr(
        feature = "serde",
        serde(
            rename = "duration_seconds",
            serialize_with = "crate::serde_support::seconds"
        )
    )]
    pub duration: Duration,
    /// Why it failed; its transaction was rolled back.
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::serde_support::display_opt")
    )]
    pub error: Option<Error>,
}

impl<M: MigratorTrait> TenantFleet<M> {
    /// Makes spare schemas until the pool has `target` of them, one
    /// transaction each (schema, every migration, pool row), and returns how
    /// many it made. Refillers in several processes take turns, so
    /// together they do not overshoot. Needs [`install`](Self::install).
    ///
    /// With [`FleetConfig::with_spare_pool`](crate::FleetConfig::with_spare_pool),
    /// [`create`](Self::create) then renames a spare instead of building
    /// the schema (see the `spares` section of the crate docs).
    ///
    /// ```
    /// use tenancy::migrate::{FleetConfig, NewTenant, TenantFleet};
    /// # use sea_orm_migration::{MigrationTrait, MigratorTrait};
    /// # struct TenantMigrator;
    /// # impl MigratorTrait for TenantMigrator {
    /// #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
    /// # }
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let test_db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = test_db.connect().await?;
    /// let config = FleetConfig::default().with_spare_pool(true);
    /// let fleet = TenantFleet::<TenantMigrator>::with_config(conn.clone(), config);
    /// fleet.install().await?;
    ///
    /// assert_eq!(fleet.refill_spares(3).await?, 3);
    /// assert_eq!(fleet.refill_spares(3).await?, 0); // full already
    ///
    /// fleet.create(&"acme".parse()?, NewTenant::new()).await?; // takes a spare
    /// assert_eq!(fleet.spare_status().await?.ready.len(), 2);
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::SparesUnsupported`] when one of `M`'s migrations runs
    /// outside a transaction; [`Error::Spare`] when making a spare failed
    /// (the spares made before it are kept); [`Error::Database`];
    /// [`Error::DuplicateMigrationName`].
    pub async fn refill_spares(&self, target: usize) -> Result<usize, Error> {
        self.ensure_direct().await?;
        migration_names::<M>()?;
        refuse_outside_transaction::<M>()?;
        let mut made = 0;
        while let Some(spare) = self.make_spare(target).await? {
            tracing::info!(%spare, "spare schema made");
            made += 1;
        }
        Ok(made)
    }

    /// Drops spares, newest first, until `keep` are left (`0`: all of
    /// them), each with its pool row in one transaction; returns how many.
    /// Spares being claimed or migrated are left alone, and so are rows
    /// that do not name one of this fleet's spares.
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
    /// fleet.refill_spares(4).await?;
    /// assert_eq!(fleet.drop_spares(1).await?, 3);
    /// assert_eq!(fleet.spare_status().await?.total(), 1);
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Spare`] when dropping one failed (those dropped before it
    /// stay dropped); [`Error::Database`].
    pub async fn drop_spares(&self, keep: usize) -> Result<usize, Error> {
        self.ensure_direct().await?;
        let mut dropped = 0;
        while let Some(spare) = self.drop_spare(keep).await? {
            tracing::info!(%spare, "spare schema dropped");
            dropped += 1;
        }
        Ok(dropped)
    }

    /// The pool's state: ready spares, and the ones behind, ahead, missing
    /// or unusable. A few catalog queries and one per spare.
    ///
    /// ```
    /// # use sea_orm_migration::{MigrationTrait, MigratorTrait};
    /// # struct TenantMigrator;
    /// # impl MigratorTrait for TenantMigrator {
    /// #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
    /// # }
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let test_db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = test_db.connect().await?;
    /// # let fleet = tenancy::migrate::TenantFleet::<TenantMigrator>::new(conn.clone());
    /// # fleet.install().await?;
    /// let status = fleet.spare_status().await?;
    /// assert!(status.is_healthy());
    /// println!("{status}");
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Database`]; [`Error::DuplicateMigrationName`].
    pub async fn spare_status(&self) -> Result<SpareStatus, Error> {
        self.ensure_direct().await?;
        self.read_spare_status().await
    }
}

/// Spares are made and claimed in one transaction each, which a migration
/// outside a transaction would break.
fn refuse_outside_transaction<M: MigratorTrait>() -> Result<(), Error> {
    match M::migrations()
        .iter()
        .find(|m| runs_outside_transaction(m.as_ref()))
    {
        Some(migration) => Err(Error::SparesUnsupported {
            migration: migration.name().to_owned(),
        }),
        None => Ok(()),
    }
}
