//! An admin binary for the quickstart's tenants: the embeddable CLI of
//! `tenancy::migrate::cli`, wired to the quickstart's migrations.
//!
//! ```text
//! export DATABASE_URL=postgres://localhost/app
//! cargo run --example admin -- install
//! cargo run --example admin -- create acme --name Acme
//! cargo run --example admin -- list
//! cargo run --example admin -- migrate
//! cargo run --example admin -- health
//! ```
//!
//! Your own migration binary is this file with your migrators and your
//! application's fleet configuration (or `AdminCli::with_fleet` on the
//! `TenantFleet` your application builds).

#![allow(unreachable_pub)]
// Migrations take `&SchemaManager` as sea-orm-migration documents them.
#![allow(elided_lifetimes_in_paths)]

use sea_orm_migration::prelude::*;
use tenancy::FleetConfig;
use tenancy::migrate::cli::AdminCli;

/// The quickstart's tenant migrations.
#[path = "shared/tenant_migrations.rs"]
mod tenant_migrations;
use tenant_migrations::TenantMigrator;

/// The shared schema's migrations: tables every tenant reads, such as plans.
struct CreatePlan;

impl MigrationName for CreatePlan {
    fn name(&self) -> &str {
        "m20260101_000001_create_plan"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreatePlan {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("plan")
                    .if_not_exists()
                    .col(ColumnDef::new("id").string().not_null().primary_key())
                    .to_owned(),
            )
            .await
    }
}

struct SharedMigrator;

impl MigratorTrait for SharedMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreatePlan)]
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // The quickstart's fleet uses the defaults; pass your application's own
    // configuration (schema prefix, registry location, shared schemas), so
    // the CLI creates and migrates exactly the schemas your application uses.
    let config = FleetConfig::default();
    AdminCli::<TenantMigrator>::new(config)
        .shared_migrator::<SharedMigrator>()
        .version(env!("CARGO_PKG_VERSION"))
        .run()
        .await
}
