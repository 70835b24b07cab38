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
//! Your own migration binary is this file with your migrators.

#![allow(unreachable_pub)]
// Migrations take `&SchemaManager` as sea-orm-migration documents them.
#![allow(elided_lifetimes_in_paths)]

use sea_orm_migration::prelude::*;

/// The tenant migrations, written once, applied to every tenant's schema.
/// In a real project each lives in its own file and derives its name with
/// `#[derive(DeriveMigrationName)]`; here they share a file, so they are
/// named by hand.
struct CreateProject;

impl MigrationName for CreateProject {
    fn name(&self) -> &str {
        "m20260101_000001_create_project"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateProject {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("project")
                    .col(
                        ColumnDef::new("id")
                            .integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new("name").string().not_null())
                    .to_owned(),
            )
            .await
    }
}

struct CreateTask;

impl MigrationName for CreateTask {
    fn name(&self) -> &str {
        "m20260101_000002_create_task"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateTask {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("task")
                    .col(
                        ColumnDef::new("id")
                            .integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new("project_id").integer().not_null())
                    .col(ColumnDef::new("title").string().not_null())
                    .col(ColumnDef::new("done").boolean().not_null().default(false))
                    .foreign_key(
                        ForeignKey::create()
                            .name("task_project_fkey")
                            .from("task", "project_id")
                            .to("project", "id"),
                    )
                    .to_owned(),
            )
            .await
    }
}

struct TenantMigrator;

impl MigratorTrait for TenantMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateProject), Box::new(CreateTask)]
    }
}

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
    tenancy::migrate::cli::run_cli::<TenantMigrator, SharedMigrator>().await
}
