//! `cargo run --example quickstart` as a user runs it: connected to the
//! database named by `DATABASE_URL`, re-run on it, and without it (the
//! clearly labelled demo fallback to a throwaway database).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod example_binary;
use example_binary::example_binary;
use std::path::PathBuf;
use std::process::{Command, Output};

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use tenancy_testing::TestDatabase;

/// The example binary (see `example_binary`).
fn quickstart() -> PathBuf {
    example_binary("quickstart", "")
}

/// Runs the quickstart with `DATABASE_URL` set to `url`, or unset.
fn run(url: Option<&str>) -> (Output, String, String) {
    let mut command = Command::new(quickstart());
    match url {
        Some(url) => command.env("DATABASE_URL", url),
        None => command.env_remove("DATABASE_URL"),
    };
    let output = command.output().unwrap();
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    (output, stdout, stderr)
}

/// One text column of every row of `sql`.
async fn strings(conn: &impl ConnectionTrait, sql: &str) -> Vec<String> {
    let rows = conn
        .query_all_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .unwrap();
    rows.iter()
        .map(|row| row.try_get_by_index::<String>(0).unwrap())
        .collect()
}

#[tokio::test]
async fn the_quickstart_uses_database_url_and_runs_again_on_it() {
    let test_db = TestDatabase::create().await.unwrap();

    let (output, stdout, stderr) = run(Some(test_db.url()));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("connecting to DATABASE_URL"), "{stdout}");
    assert!(!stdout.contains("demo fallback"), "{stdout}");
    assert!(stdout.contains("created tenant acme"), "{stdout}");

    // A second run finds the tenants it made and keeps them.
    let (output, stdout, stderr) = run(Some(test_db.url()));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("tenant acme exists"), "{stdout}");
    assert!(stdout.contains("tenant globex exists"), "{stdout}");

    // Both runs wrote to this database, not to a throwaway one.
    let conn = test_db.connect().await.unwrap();
    let schemas = "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'tenant%' ORDER BY 1";
    assert_eq!(
        strings(&conn, schemas).await,
        ["tenant_acme", "tenant_globex"]
    );
    let acme = strings(&conn, "SELECT name FROM tenant_acme.project ORDER BY id").await;
    assert_eq!(acme, ["Rocket skates", "Rocket skates"]);
    conn.close().await.unwrap();
    test_db.close().await.unwrap();
}

#[test]
fn without_database_url_the_quickstart_says_it_falls_back_to_a_throwaway_database() {
    let (output, stdout, stderr) = run(None);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let first = stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("DATABASE_URL is not set: demo fallback to the throwaway database"),
        "{stdout}"
    );
    assert!(stdout.ends_with("done\n"), "{stdout}");
}

#[test]
fn an_unreachable_database_url_fails_with_one_line_that_names_it() {
    // Port 1 on the loopback: refused at once.
    let (output, stdout, stderr) = run(Some("postgres://postgres@127.0.0.1:1/app"));
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "error: cannot connect to PostgreSQL at 127.0.0.1:1: connection refused (is the server \
         running and listening on that port?) (check DATABASE_URL)",
    );
}
