//! The tenant migrations of the examples (quickstart, admin) and of the
//! backup test: written once, applied to every tenant's schema.
//!
//! In a real project each migration lives in its own file and derives its
//! name with `#[derive(DeriveMigrationName)]`; here they share a file, so
//! they are named by hand.

// Migrations take `&SchemaManager` as sea-orm-migration documents them.
#![allow(elided_lifetimes_in_paths, unreachable_pub)]

use sea_orm_migration::prelude::*;

/// Creates `project`.
pub struct CreateProject;

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

/// Creates `task`, each belonging to a project.
pub struct CreateTask;

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

/// Every tenant migration, in order.
pub struct TenantMigrator;

impl MigratorTrait for TenantMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateProject), Box::new(CreateTask)]
    }
}
