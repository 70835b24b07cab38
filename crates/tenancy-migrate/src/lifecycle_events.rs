//! Lifecycle events: what changed about a tenant, told to the application's
//! callbacks once the change has committed.

use std::fmt;
use std::sync::Arc;

use tenancy_core::{SchemaName, TenantId};

use crate::{Direction, DropOutcome, TenantRecord};

/// What a lifecycle change did, as recorded in the audit table's `action`
/// column ([`as_str`](Self::as_str)) and returned by
/// [`LifecycleEvent::action`].
///
/// ```
/// use tenancy::migrate::LifecycleAction;
/// assert_eq!(LifecycleAction::DomainChanged.as_str(), "domain_changed");
/// assert_eq!(LifecycleAction::Suspended.to_string(), "suspended");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LifecycleAction {
    /// [`TenantFleet::create`](crate::TenantFleet::create).
    Created,
    /// [`TenantFleet::adopt`](crate::TenantFleet::adopt).
    Adopted,
    /// [`TenantFleet::suspend`](crate::TenantFleet::suspend).
    Suspended,
    /// [`TenantFleet::resume`](crate::TenantFleet::resume).
    Resumed,
    /// [`TenantFleet::rename`](crate::TenantFleet::rename) (the display name).
    Renamed,
    /// [`TenantFleet::set_domain`](crate::TenantFleet::set_domain).
    DomainChanged,
    /// [`TenantFleet::drop_tenant`](crate::TenantFleet::drop_tenant), soft
    /// or hard.
    Dropped,
    /// Migrations applied to the tenant (a tenant run of
    /// [`migrate_all`](crate::TenantFleet::migrate_all) or
    /// [`migrate_tenant`](crate::TenantFleet::migrate_tenant)).
    Migrated,
    /// Migrations reverted ([`rollback_all`](crate::TenantFleet::rollback_all),
    /// [`rollback_tenant`](crate::TenantFleet::rollback_tenant)).
    RolledBack,
    /// [`TenantFleet::export_tenant`](crate::TenantFleet::export_tenant).
    Exported,
    /// [`TenantFleet::import_tenant`](crate::TenantFleet::import_tenant).
    Imported,
    /// [`TenantFleet::clone_tenant`](crate::TenantFleet::clone_tenant).
    Cloned,
    /// [`TenantFleet::move_tenant`](crate::TenantFleet::move_tenant).
    Moved,
}

impl LifecycleAction {
    /// The name stored in the audit table.
    ///
    /// ```
    /// assert_eq!(tenancy::migrate::LifecycleAction::RolledBack.as_str(), "rolled_back");
    /// ```
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Adopted => "adopted",
            Self::Suspended => "suspended",
            Self::Resumed => "resumed",
            Self::Renamed => "renamed",
            Self::DomainChanged => "domain_changed",
            Self::Dropped => "dropped",
            Self::Migrated => "migrated",
            Self::RolledBack => "rolled_back",
            Self::Exported => "exported",
            Self::Imported => "imported",
            Self::Cloned => "cloned",
            Self::Moved => "moved",
        }
    }
}

impl fmt::Display for LifecycleAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change to one tenant, told to the handlers registered with
/// [`TenantFleet::on_lifecycle`](crate::TenantFleet::on_lifecycle) after it
/// committed: a call that fails, or whose transaction rolls back, tells
/// nothing. Each successful lifecycle call tells exactly one event; a
/// migration run tells one per tenant that had migrations to apply (or
/// revert), none for a tenant already up to date.
///
/// A call that changed nothing (suspending a suspended tenant) still tells
/// its event, with `before` and `after` equal.
///
/// Events borrow from the call; handlers that keep them copy what they need.
/// Handlers run on the task that made the change (several at once during a
/// fleet run) before the call returns, so they should return quickly: hand
/// slow work to a channel. They must not panic: the change has committed,
/// and a panic would reach the caller as if the call had failed (a fleet
/// run reports it as that tenant's panic).
///
/// ```
/// use tenancy::migrate::LifecycleEvent;
///
/// # fn demo<M: sea_orm_migration::MigratorTrait>(fleet: tenancy::migrate::TenantFleet<M>) {
/// let fleet = fleet.on_lifecycle(|event| match event {
///     LifecycleEvent::Suspended { before, after, .. } => {
///         println!("{} suspended (was {})", after.id, before.status);
///     }
///     LifecycleEvent::Migrated { tenant, applied, .. } => {
///         println!("{tenant}: {} migrations applied", applied.len());
///     }
///     other => println!("{} {}", other.tenant(), other.action()),
/// });
/// # let _ = fleet;
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum LifecycleEvent<'a> {
    /// A tenant was created, with its schema and migrations.
    #[non_exhaustive]
    Created {
        /// Its registry row as committed.
        record: &'a TenantRecord,
        /// The migrations applied in the creating transaction.
        applied: &'a [String],
    },
    /// An existing schema was registered as a tenant and migrated.
    #[non_exhaustive]
    Adopted {
        /// Its registry row as committed.
        record: &'a TenantRecord,
        /// The migrations applied in the adopting transaction.
        applied: &'a [String],
    },
    /// A tenant was suspended.
    #[non_exhaustive]
    Suspended {
        /// Its registry row before the change.
        before: &'a TenantRecord,
        /// Its registry row after the change.
        after: &'a TenantRecord,
    },
    /// A tenant was made active again.
    #[non_exhaustive]
    Resumed {
        /// Its registry row before the change.
        before: &'a TenantRecord,
        /// Its registry row after the change.
        after: &'a TenantRecord,
    },
    /// A tenant's display name changed.
    #[non_exhaustive]
    Renamed {
        /// Its registry row before the change.
        before: &'a TenantRecord,
        /// Its registry row after the change.
        after: &'a TenantRecord,
    },
    /// A tenant's domain was set or cleared.
    #[non_exhaustive]
    DomainChanged {
        /// Its registry row before the change.
        before: &'a TenantRecord,
        /// Its registry row after the change.
        after: &'a TenantRecord,
    },
    /// A tenant was soft-deleted or dropped.
    #[non_exhaustive]
    Dropped {
        /// Its registry row before the call.
        before: &'a TenantRecord,
        /// What was done ([`DropOutcome::record`] is the row after a soft
        /// drop, the deleted row after a hard one).
        outcome: &'a DropOutcome,
    },
    /// Migrations were applied to a tenant, or reverted, and committed.
    #[non_exhaustive]
    Migrated {
        /// The tenant.
        tenant: &'a TenantId,
        /// Its schema.
        schema: &'a SchemaName,
        /// Applied (`Up`) or reverted (`Down`).
        direction: Direction,
        /// The migrations, in the order they ran (never empty).
        applied: &'a [String],
    },
    /// A tenant was exported. An export changes nothing: its audit row is
    /// written once the export is complete. A clone or a move does not tell
    /// this for its own export.
    #[non_exhaustive]
    Exported {
        /// Its registry row.
        record: &'a TenantRecord,
    },
    /// A tenant was imported (in the database a move copied it to, too).
    #[non_exhaustive]
    Imported {
        /// Its registry row as committed.
        record: &'a TenantRecord,
    },
    /// A tenant was cloned from another.
    #[non_exhaustive]
    Cloned {
        /// The tenant it was copied from.
        source: &'a TenantId,
        /// The new tenant's registry row as committed.
        record: &'a TenantRecord,
    },
    /// A tenant was moved to another database, and its schema here dropped.
    #[non_exhaustive]
    Moved {
        /// Its registry row here as committed (status restored).
        record: &'a TenantRecord,
        /// Where it went, as given to the move.
        placement: &'a str,
    },
}

impl LifecycleEvent<'_> {
    /// What happened.
    ///
    /// ```
    /// # fn demo<M: sea_orm_migration::MigratorTrait>(fleet: tenancy::migrate::TenantFleet<M>) {
    /// let fleet = fleet.on_lifecycle(|event| println!("{}", event.action()));
    /// # let _ = fleet;
    /// # }
    /// ```
    #[must_use]
    pub fn action(&self) -> LifecycleAction {
        match self {
            Self::Created { .. } => LifecycleAction::Created,
            Self::Adopted { .. } => LifecycleAction::Adopted,
            Self::Suspended { .. } => LifecycleAction::Suspended,
            Self::Resumed { .. } => LifecycleAction::Resumed,
            Self::Renamed { .. } => LifecycleAction::Renamed,
            Self::DomainChanged { .. } => LifecycleAction::DomainChanged,
            Self::Dropped { .. } => LifecycleAction::Dropped,
            Self::Migrated {
                direction: Direction::Up,
                ..
            } => LifecycleAction::Migrated,
            Self::Migrated {
                direction: Direction::Down,
                ..
            } => LifecycleAction::RolledBack,
            Self::Exported { .. } => LifecycleAction::Exported,
            Self::Imported { .. } => LifecycleAction::Imported,
            Self::Cloned { .. } => LifecycleAction::Cloned,
            Self::Moved { .. } => LifecycleAction::Moved,
        }
    }

    /// The tenant the event is about (for a clone, the new tenant).
    ///
    /// ```
    /// # fn demo<M: sea_orm_migration::MigratorTrait>(fleet: tenancy::migrate::TenantFleet<M>) {
    /// let fleet = fleet.on_lifecycle(|event| println!("{}", event.tenant()));
    /// # let _ = fleet;
    /// # }
    /// ```
    #[must_use]
    pub fn tenant(&self) -> &TenantId {
        match self {
            Self::Migrated { tenant, .. } => tenant,
            Self::Dropped { before, .. } => &before.id,
            Self::Created { record, .. }
            | Self::Adopted { record, .. }
            | Self::Exported { record }
            | Self::Imported { record }
            | Self::Cloned { record, .. }
            | Self::Moved { record, .. }
            | Self::Suspended { after: record, .. }
            | Self::Resumed { after: record, .. }
            | Self::Renamed { after: record, .. }
            | Self::DomainChanged { after: record, .. } => &record.id,
        }
    }

    /// The tenant's schema (as it is after the change).
    ///
    /// ```
    /// # fn demo<M: sea_orm_migration::MigratorTrait>(fleet: tenancy::migrate::TenantFleet<M>) {
    /// let fleet = fleet.on_lifecycle(|event| println!("{}", event.schema()));
    /// # let _ = fleet;
    /// # }
    /// ```
    #[must_use]
    pub fn schema(&self) -> &SchemaName {
        match self {
            Self::Migrated { schema, .. } => schema,
            Self::Dropped { before, .. } => &before.schema,
            Self::Created { record, .. }
            | Self::Adopted { record, .. }
            | Self::Exported { record }
            | Self::Imported { record }
            | Self::Cloned { record, .. }
            | Self::Moved { record, .. }
            | Self::Suspended { after: record, .. }
            | Self::Resumed { after: record, .. }
            | Self::Renamed { after: record, .. }
            | Self::DomainChanged { after: record, .. } => &record.schema,
        }
    }

    /// The registry row after the change, for every event but `Migrated`
    /// (which carries no row: a migration does not change it).
    ///
    /// ```
    /// # fn demo<M: sea_orm_migration::MigratorTrait>(fleet: tenancy::migrate::TenantFleet<M>) {
    /// let fleet = fleet.on_lifecycle(|event| {
    ///     if let Some(record) = event.record() {
    ///         println!("{} is now {}", record.id, record.status);
    ///     }
    /// });
    /// # let _ = fleet;
    /// # }
    /// ```
    #[must_use]
    pub fn record(&self) -> Option<&TenantRecord> {
        match self {
            Self::Created { record, .. }
            | Self::Adopted { record, .. }
            | Self::Exported { record }
            | Self::Imported { record }
            | Self::Cloned { record, .. }
            | Self::Moved { record, .. } => Some(record),
            Self::Suspended { after, .. }
            | Self::Resumed { after, .. }
            | Self::Renamed { after, .. }
            | Self::DomainChanged { after, .. } => Some(after),
            Self::Dropped { outcome, .. } => Some(outcome.record()),
            Self::Migrated { .. } => None,
        }
    }
}

/// The callback lifecycle events are told to.
pub type LifecycleHandler = Arc<dyn Fn(&LifecycleEvent<'_>) + Send + Sync>;
