//! The `admin` example as a user runs it: a process, its exit codes and output.
#![cfg(feature = "cli")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod example_binary;
use example_binary::example_binary;
use std::path::PathBuf;
use std::process::{Command, Output};

use sea_orm::ConnectionTrait;
use tenancy_testing::TestDatabase;

/// The example binary (see `example_binary`).
fn admin() -> PathBuf {
    example_binary("admin", "cli")
}

fn run(url: &str, args: &[&str]) -> Output {
    Command::new(admin())
        .env("DATABASE_URL", url)
        .args(args)
        .output()
        .unwrap()
}

fn code(output: &Output) -> i32 {
    output.status.code().unwrap()
}

#[tokio::test]
async fn the_admin_example_manages_tenants() -> Result<(), Box<dyn std::error::Error>> {
    let help = Command::new(admin()).arg("--help").output()?;
    assert_eq!(code(&help), 0);
    assert!(String::from_utf8(help.stdout)?.contains("migrate"));
    let version = Command::new(admin()).arg("--version").output()?;
    assert_eq!(code(&version), 0);
    let version = String::from_utf8(version.stdout)?;
    assert!(
        version.starts_with(&format!("admin {}", env!("CARGO_PKG_VERSION")))
            && version.contains("tenant migrations: 2"),
        "{version}"
    );

    let db = TestDatabase::create().await?;
    let url = db.url().to_owned();
    assert_eq!(code(&run(&url, &["install"])), 0);
    assert_eq!(code(&run(&url, &["create", "acme", "--name", "Acme"])), 0);

    let refused = run(&url, &["drop", "acme"]);
    assert_eq!(code(&refused), 2);
    assert!(String::from_utf8(refused.stderr)?.contains("--yes"));

    let list = run(&url, &["list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&list.stdout)?;
    assert_eq!(list[0]["id"], "acme");

    // Progress of a fleet run: one line per tenant on stderr (not a terminal).
    let migrated = run(&url, &["migrate"]);
    assert_eq!(code(&migrated), 0);
    let progress = String::from_utf8(migrated.stderr)?;
    assert!(progress.contains("[1/1] acme: nothing to do"), "{progress}");
    let report: serde_json::Value =
        serde_json::from_slice(&run(&url, &["migrate", "--json"]).stdout)?;
    assert_eq!(report["tenants"][0]["outcome"], "succeeded");
    assert_eq!(code(&run(&url, &["shared", "migrate"])), 0);

    // The quickstart's migrations have no down(): rollback says it needs one
    // and changes nothing.
    let rollback = run(&url, &["rollback", "--tenant", "acme"]);
    assert_eq!(code(&rollback), 1);
    let err = String::from_utf8(rollback.stderr)?;
    assert!(err.contains("rollback needs a down()"), "{err}");
    assert_eq!(code(&run(&url, &["health"])), 0);
    assert_eq!(code(&run(&url, &["health"])), 0);
    let conn = db.connect().await?;
    conn.execute_unprepared("CREATE SCHEMA tenant_orphan")
        .await?;
    conn.close().await?;
    assert_eq!(code(&run(&url, &["health"])), 1);
    assert_eq!(code(&run(&url, &["drop", "acme", "--yes"])), 0);

    db.close().await?;
    Ok(())
}
