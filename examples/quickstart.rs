//! The quickstart: two tenants, one pool, isolation between them.
//!
//! It connects as your application would, to `DATABASE_URL`
//! (`DATABASE_URL=postgres://postgres@127.0.0.1:5432/app cargo run --example
//! quickstart`), creates the tenants there if they are missing and leaves
//! them, so it can run again. With `DATABASE_URL` unset it needs nothing but
//! a reachable PostgreSQL: a demo fallback (`shared/demo_fallback.rs`, not
//! for your application) takes a throwaway database from the same chain as
//! the tests (`TENANCY_TEST_DATABASE_URL`, a Docker container, or the local
//! server at 127.0.0.1:5432) and drops it at the end.
//!
//! It defines two entities and their tenant migrations, creates the tenants
//! `acme` and `globex`, writes and reads in each tenant's scope, shows that
//! acme cannot see globex's rows, migrates every tenant, and prints the
//! fleet's health.

#![allow(clippy::print_stdout, clippy::print_stderr, unreachable_pub)]
// Migrations take `&SchemaManager` as sea-orm-migration documents them.
#![allow(elided_lifetimes_in_paths)]

use std::env::VarError;
use std::process::ExitCode;

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectOptions, EntityTrait, PaginatorTrait,
    QueryFilter,
};
use sea_orm_migration::prelude::*;
use tenancy::{MigrateAll, NewTenant, Tenant, TenantDb, TenantFleet, TenantId};

/// A tenant's projects. No schema name: the tenant's search path picks it.
mod project {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "project")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub name: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        #[sea_orm(has_many = "super::task::Entity")]
        Task,
    }

    impl Related<super::task::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Task.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// A project's tasks.
mod task {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "task")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub project_id: i32,
        pub title: String,
        pub done: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        #[sea_orm(
            belongs_to = "super::project::Entity",
            from = "Column::ProjectId",
            to = "super::project::Column::Id"
        )]
        Project,
    }

    impl Related<super::project::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Project.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// The tenant migrations (`project`, then `task`), written once and applied
/// to every tenant's schema: see `shared/tenant_migrations.rs`.
#[path = "shared/tenant_migrations.rs"]
mod tenant_migrations;
use tenant_migrations::TenantMigrator;

/// Only for running without `DATABASE_URL`: see the file.
#[path = "shared/demo_fallback.rs"]
mod demo_fallback;

/// Adds a project with its tasks in the tenant's scope; returns the project id.
async fn add_project(
    db: &TenantDb,
    tenant: &Tenant,
    name: &str,
    tasks: &[&str],
) -> Result<i32, DbErr> {
    // The closure borrows `name` and `tasks` from this function.
    db.transaction::<_, _, DbErr>(tenant, async |txn| {
        let project = project::ActiveModel {
            name: Set(name.to_owned()),
            ..Default::default()
        }
        .insert(txn)
        .await?;
        for title in tasks {
            task::ActiveModel {
                project_id: Set(project.id),
                title: Set((*title).to_owned()),
                done: Set(false),
                ..Default::default()
            }
            .insert(txn)
            .await?;
        }
        Ok(project.id)
    })
    .await
}

/// Runs the walk-through; any error is printed as one line (its message,
/// which says what to set), never as a Debug dump.
#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // 0. One pool for every tenant, from the application's configuration.
    // `tenancy::orm::connect` fails within 5 s with the server's host:port and
    // the cause (`sea_orm::Database::connect` works too, but waits 30 s and
    // then only says the pool timed out).
    let (conn, throwaway) = match std::env::var("DATABASE_URL") {
        Ok(url) => {
            println!("connecting to DATABASE_URL");
            let conn = tenancy::orm::connect(ConnectOptions::new(url))
                .await
                .map_err(|err| format!("{err} (check DATABASE_URL)"))?;
            (conn, None)
        }
        Err(VarError::NotPresent) => {
            let (conn, test_db) = demo_fallback::throwaway_database().await?;
            (conn, Some(test_db))
        }
        Err(err @ VarError::NotUnicode(_)) => return Err(format!("DATABASE_URL: {err}").into()),
    };

    // 1. The registry and two tenants: each gets a schema with every migration.
    let fleet = TenantFleet::<TenantMigrator>::new(conn.clone());
    fleet.install().await?;
    for (id, name) in [("acme", "Acme Corp"), ("globex", "Globex")] {
        let id = TenantId::new(id)?;
        if let Some(record) = fleet.get(&id).await? {
            println!("tenant {id} exists (schema {})", record.schema);
            continue;
        }
        let record = fleet
            .create(&id, NewTenant::new().display_name(name))
            .await?;
        println!("created tenant {} in schema {}", record.id, record.schema);
    }

    // 2. One pool for everyone; each transaction is scoped to one tenant.
    let db = TenantDb::new(conn.clone())?;
    let acme = db.resolve(&TenantId::new("acme")?).await?;
    let globex = db.resolve(&TenantId::new("globex")?).await?;
    add_project(
        &db,
        &acme,
        "Rocket skates",
        &["order wheels", "test on a cliff"],
    )
    .await?;
    let globex_project = add_project(&db, &globex, "Doomsday device", &["find a volcano"]).await?;
    add_project(&db, &globex, "Employee picnic", &[]).await?;

    // 3. Reads in acme's scope see acme's rows only.
    let txn = db.begin(&acme).await?;
    let projects = project::Entity::find().all(&txn).await?;
    let tasks = task::Entity::find().count(&txn).await?;
    println!(
        "acme sees {} project(s) and {tasks} task(s): {:?}",
        projects.len(),
        projects.iter().map(|p| p.name.as_str()).collect::<Vec<_>>()
    );
    // Serial ids are per schema (both tenants have a project 1): what acme
    // must not reach is globex's row, whatever it asks for.
    let peek = project::Entity::find_by_id(globex_project)
        .filter(project::Column::Name.eq("Doomsday device"))
        .one(&txn)
        .await?;
    println!("acme looking up globex's 'Doomsday device' finds: {peek:?}");
    assert!(
        peek.is_none(),
        "a tenant must never see another tenant's rows"
    );
    txn.commit().await?;

    let txn = db.begin(&globex).await?;
    let names: Vec<String> = project::Entity::find()
        .all(&txn)
        .await?
        .into_iter()
        .map(|p| p.name)
        .collect();
    println!("globex sees {} project(s): {names:?}", names.len());
    txn.commit().await?;

    // 4. Deploy-time migrations across every tenant, then the fleet's health.
    // `migrate_all` reports each tenant's failure without stopping the others;
    // `into_result` makes any failure an error, so the deploy stops here.
    let report = fleet.migrate_all(MigrateAll::new()).await?.into_result()?;
    println!("{report}");
    let health = fleet.health().await?;
    print!("{health}");

    // 5. Close the pool (and drop the demo fallback's throwaway database).
    conn.close().await?;
    if let Some(test_db) = throwaway {
        test_db.close().await?;
    }
    println!("done");
    Ok(())
}
