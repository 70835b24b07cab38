//! Tenant registry, lifecycle and per-schema migrations.
//!
//! (Crate documentation is being written.)

mod error;
mod events;
mod fleet;
mod health;
mod lifecycle;
mod migrate;
mod pg;
mod registry;
mod report;
mod status;
mod tenant_txn;

pub use error::Error;
pub use events::{EventHandler, MigrationEvent, Progress};
pub use fleet::{FleetConfig, TenantFleet};
pub use health::HealthReport;
pub use lifecycle::{DropConfirmation, DropMode, DropOutcome, NewTenant};
pub use migrate::MigrateAll;
pub use registry::{StatusFilter, TenantRecord};
pub use report::{Direction, FleetReport, Outcome, TenantReport};
pub use status::{
    FleetStatus, FleetTotals, MigrationStatusReport, SchemaState, TenantMigrationStatus,
};
