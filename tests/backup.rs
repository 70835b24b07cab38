//! The README's per-tenant backup, restore and move, with the real tools:
//! `pg_dump --schema` one tenant out of database A, `pg_restore` it into
//! database B, then register it there with `adopt`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr
)]
// Migrations take `&SchemaManager` as sea-orm-migration documents them.
#![allow(elided_lifetimes_in_paths)]

use std::path::{Path, PathBuf};
use std::process::Command;

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use sea_orm_migration::prelude::*;
use tenancy::{NewTenant, TenantDb, TenantFleet, TenantId};
use tenancy_testing::TestDatabase;

/// The examples' tenant migrations.
#[path = "../examples/shared/tenant_migrations.rs"]
mod tenant_migrations;
use tenant_migrations::TenantMigrator;

/// Runs a PostgreSQL client tool; fails clearly when it is missing or fails.
fn run_tool(tool: &str, args: &[&str]) {
    let output = match Command::new(tool).args(args).output() {
        Ok(output) => output,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => panic!(
            "`{tool}` was not found on PATH: this test needs the PostgreSQL client tools \
             (pg_dump, pg_restore) installed"
        ),
        Err(err) => panic!("could not run `{tool}`: {err}"),
    };
    if !output.status.success() {
        eprintln!(
            "{tool} stderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        panic!("`{tool} {}` failed: {}", args.join(" "), output.status);
    }
}

/// A unique dump file in the temp dir, removed on drop.
struct DumpFile(PathBuf);

impl DumpFile {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Self(std::env::temp_dir().join(format!(
            "tenancy-backup-test-{}-{nanos}.dump",
            std::process::id()
        )))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for DumpFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[tokio::test]
async fn a_tenant_moves_between_databases_with_pg_dump_and_pg_restore()
-> Result<(), Box<dyn std::error::Error>> {
    let acme_id: TenantId = "acme".parse()?;

    // Database A: the registry, acme and two of its projects.
    let db_a = TestDatabase::create().await?;
    let conn_a = db_a.connect().await?;
    let fleet_a = TenantFleet::<TenantMigrator>::new(conn_a.clone());
    fleet_a.install().await?;
    let record = fleet_a.create(&acme_id, NewTenant::new()).await?;
    assert_eq!(record.schema.as_str(), "tenant_acme");
    let tenant_db_a = TenantDb::new(conn_a.clone())?;
    let acme_a = tenant_db_a.resolve(&acme_id).await?;
    let txn = tenant_db_a.begin(&acme_a).await?;
    txn.execute_unprepared(
        "INSERT INTO project (name) VALUES ('Rocket skates'); \
         INSERT INTO project (name) VALUES ('Giant magnet')",
    )
    .await?;
    txn.commit().await?;

    // The README's commands.
    let dump = DumpFile::new();
    let file = dump.path().to_str().expect("temp path is UTF-8");
    run_tool(
        "pg_dump",
        &[
            "--schema=tenant_acme",
            "--format=custom",
            &format!("--file={file}"),
            db_a.url(),
        ],
    );

    // Database B: the registry only, then the restored schema.
    let db_b = TestDatabase::create().await?;
    let conn_b = db_b.connect().await?;
    let fleet_b = TenantFleet::<TenantMigrator>::new(conn_b.clone());
    fleet_b.install().await?;
    run_tool("pg_restore", &[&format!("--dbname={}", db_b.url()), file]);

    // Register it there: its history came with the dump, nothing to apply.
    let (record, applied) = fleet_b
        .adopt(&acme_id, "tenant_acme".parse()?, NewTenant::new())
        .await?;
    assert_eq!(record.id, acme_id);
    assert_eq!(record.schema.as_str(), "tenant_acme");
    assert!(applied.is_empty(), "nothing to apply, got {applied:?}");

    let tenant_db_b = TenantDb::new(conn_b.clone())?;
    let acme_b = tenant_db_b.resolve(&acme_id).await?;
    let txn = tenant_db_b.begin(&acme_b).await?;
    let rows = txn
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT name FROM project ORDER BY id",
        ))
        .await?;
    let names = rows
        .iter()
        .map(|row| row.try_get_by_index::<String>(0))
        .collect::<Result<Vec<_>, _>>()?;
    assert_eq!(names, ["Rocket skates", "Giant magnet"]);
    txn.rollback().await?;

    let health = fleet_b.health().await?;
    assert!(health.is_healthy(), "{health}");

    drop(dump);
    conn_a.close().await?;
    conn_b.close().await?;
    db_a.close().await?;
    db_b.close().await?;
    Ok(())
}
