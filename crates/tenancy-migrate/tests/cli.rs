//! The admin CLI in-process, against a real database: output, JSON and exit codes.
#![cfg(feature = "cli")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support_migrate;

use sea_orm::ConnectionTrait;
use serde_json::Value;
use support_migrate::{Migrator, SharedMigrator, TestResult};
use tenancy_migrate::cli::{Exit, run_cli_with};
use tenancy_testing::TestDatabase;

/// Runs the CLI on `url` with `args`: its exit, stdout and stderr.
async fn cli(url: &str, args: &[&str]) -> (Exit, String, String) {
    let prefix = ["admin", "--database-url", url];
    let argv = prefix.iter().chain(args).copied();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let exit = run_cli_with::<Migrator, SharedMigrator, _, _>(argv, &mut out, &mut err).await;
    (
        exit,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

async fn ok(url: &str, args: &[&str]) -> String {
    let (exit, out, err) = cli(url, args).await;
    assert_eq!(exit, Exit::Success, "{args:?}: {err}");
    out
}

async fn json(url: &str, args: &[&str]) -> Value {
    serde_json::from_str(&ok(url, args).await).unwrap()
}

fn ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn lifecycle_migrations_and_health_through_the_cli() -> TestResult {
    let db = TestDatabase::create().await?;
    let url = db.url().to_owned();
    ok(&url, &["install"]).await;
    let created = ok(
        &url,
        &[
            "create",
            "acme",
            "--name",
            "Acme",
            "--domain",
            "Acme.Example.com",
        ],
    )
    .await;
    assert!(created.contains("tenant_acme"), "{created}");

    let list = json(&url, &["list", "--json"]).await;
    assert_eq!(ids(&list), ["acme"]);
    assert_eq!(list[0]["status"], "active");
    assert_eq!(list[0]["domain"], "acme.example.com");

    ok(&url, &["suspend", "acme"]).await;
    assert_eq!(
        ids(&json(&url, &["list", "--status", "suspended", "--json"]).await),
        ["acme"]
    );
    let table = ok(&url, &["list"]).await;
    assert!(
        table.starts_with("ID") && table.contains("suspended"),
        "{table}"
    );
    ok(&url, &["resume", "acme"]).await;
    ok(&url, &["rename", "acme", "Acme Corp"]).await;
    assert_eq!(
        json(&url, &["list", "--json"]).await[0]["display_name"],
        "Acme Corp"
    );

    // A hard drop without --yes is a usage error and touches nothing.
    let (exit, _, err) = cli(&url, &["drop", "acme"]).await;
    assert_eq!(exit, Exit::Usage);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("acme") && err.contains("--yes"), "{err}");
    assert_eq!(ids(&json(&url, &["list", "--json"]).await), ["acme"]);

    ok(&url, &["create", "globex"]).await;
    ok(&url, &["migrate", "--concurrency", "2"]).await;
    // Only fleet runs take --concurrency.
    let (exit, _, err) = cli(&url, &["list", "--concurrency", "2"]).await;
    assert_eq!(exit, Exit::Usage, "{err}");
    ok(&url, &["migrate", "--tenant", "globex"]).await;
    let status = json(&url, &["status", "--json"]).await;
    assert_eq!(status["totals"]["tenants"], 2);
    assert_eq!(status["totals"]["up_to_date"], 2);
    let one = json(&url, &["status", "--tenant", "globex", "--json"]).await;
    assert_eq!(one["pending"].as_array().unwrap().len(), 0);

    ok(&url, &["rollback", "--tenant", "globex"]).await;
    let one = json(&url, &["status", "--tenant", "globex", "--json"]).await;
    assert_eq!(one["pending"].as_array().unwrap().len(), 1);
    // Pending migrations make the fleet unhealthy until migrated again.
    assert_eq!(cli(&url, &["health"]).await.0, Exit::Failure);
    ok(&url, &["migrate"]).await;
    ok(&url, &["health"]).await;
    ok(&url, &["shared", "migrate"]).await;

    // An orphan schema, made by hand, fails the health check.
    let conn = db.connect().await?;
    conn.execute_unprepared("CREATE SCHEMA tenant_orphan")
        .await?;
    let (exit, out, _) = cli(&url, &["health", "--json"]).await;
    assert_eq!(exit, Exit::Failure);
    let health: Value = serde_json::from_str(&out)?;
    assert_eq!(health["orphan_schemas"][0], "tenant_orphan");
    conn.close().await?;

    ok(&url, &["drop", "acme", "--yes"]).await;
    assert_eq!(ids(&json(&url, &["list", "--json"]).await), ["globex"]);
    ok(&url, &["drop", "globex", "--soft"]).await;
    assert_eq!(
        json(&url, &["list", "--json"]).await[0]["status"],
        "deleted"
    );

    db.close().await?;
    Ok(())
}

#[tokio::test]
async fn errors_are_one_line_naming_the_tenant() -> TestResult {
    let db = TestDatabase::create().await?;
    let url = db.url().to_owned();
    ok(&url, &["install"]).await;
    for args in [
        &["suspend", "nope"][..],
        &["migrate", "--tenant", "nope"],
        &["drop", "nope", "--yes"],
    ] {
        let (exit, out, err) = cli(&url, args).await;
        assert_eq!(exit, Exit::Failure, "{args:?}");
        assert!(out.is_empty(), "{out}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("tenant nope") && err.contains("list"), "{err}");
    }
    ok(&url, &["create", "acme"]).await;
    let (exit, _, err) = cli(&url, &["create", "acme"]).await;
    assert_eq!(exit, Exit::Failure);
    assert!(err.contains("acme is already registered"), "{err}");
    db.close().await?;
    Ok(())
}

#[tokio::test]
async fn usage_errors_exit_2_without_a_database() {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let exit = run_cli_with::<Migrator, SharedMigrator, _, _>(
        ["admin", "create", "Bad Id"],
        &mut out,
        &mut err,
    )
    .await;
    assert_eq!(exit, Exit::Usage);
    assert_eq!(String::from_utf8_lossy(&err).lines().count(), 1);
    let mut help = Vec::new();
    let exit =
        run_cli_with::<Migrator, SharedMigrator, _, _>(["admin", "help"], &mut help, &mut err)
            .await;
    assert_eq!(exit, Exit::Success);
}

/// Lines of CLI output that do not start with one of `prefixes`: a name with
/// a newline in it would make one.
fn forged<'a>(text: &'a str, prefixes: &[&str]) -> Vec<&'a str> {
    text.lines()
        .filter(|l| !prefixes.iter().any(|p| l.starts_with(p)))
        .collect()
}

#[tokio::test]
async fn names_in_text_output_cannot_forge_lines() -> TestResult {
    let db = TestDatabase::create().await?;
    let url = db.url().to_owned();
    ok(&url, &["install"]).await;
    ok(
        &url,
        &[
            "create",
            "acme",
            "--name",
            "Acme\nglobex  tenant_globex  active",
        ],
    )
    .await;
    let table = ok(&url, &["list"]).await;
    assert_eq!(table.lines().count(), 2, "{table}");

    let conn = db.connect().await?;
    conn.execute_unprepared(
        "CREATE SCHEMA \"tenant_x\n0 tenants: healthy\"; \
         CREATE TABLE public.projects (id int); \
         CREATE TABLE tenant_acme.\"projects\n  missing schema: tenant forged\" (id int); \
         CREATE TABLE public.\"projects\n  missing schema: tenant forged\" (id int)",
    )
    .await?;
    conn.close().await?;
    let (exit, out, _) = cli(&url, &["health"]).await;
    assert_eq!(exit, Exit::Failure, "{out}");
    assert_eq!(
        forged(
            &out,
            &[
                "1 tenants",
                "  orphan schema",
                "  warning",
                "  pending",
                "  drifted"
            ]
        ),
        Vec::<&str>::new(),
        "{out}"
    );
    assert!(out.contains(r#""tenant_x\n0 tenants: healthy""#), "{out}");

    let (exit, out, err) = cli(&url, &["status"]).await;
    assert_eq!(exit, Exit::Success, "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");
    db.close().await?;
    Ok(())
}

#[tokio::test]
async fn server_errors_do_not_carry_the_servers_source_line() -> TestResult {
    let db = TestDatabase::create().await?;
    let url = db.url().to_owned();
    // No registry yet: the server says the table does not exist.
    let (exit, _, err) = cli(&url, &["list"]).await;
    assert_eq!(exit, Exit::Failure);
    assert!(err.contains("does not exist"), "{err}");
    assert!(!err.contains(" at line "), "{err}");
    db.close().await?;
    Ok(())
}

#[tokio::test]
async fn health_that_cannot_check_has_its_own_exit_code() -> TestResult {
    let db = TestDatabase::create().await?;
    let url = db.url().to_owned();
    // No registry: health cannot check anything.
    let (exit, _, err) = cli(&url, &["health"]).await;
    assert_eq!(exit.code(), 3, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    db.close().await?;
    // No server.
    let (exit, _, err) = cli("postgres://postgres@127.0.0.1:1/postgres", &["health"]).await;
    assert_eq!(exit.code(), 3, "{err}");
    Ok(())
}

#[tokio::test]
async fn an_unreachable_database_is_one_line_naming_host_port_and_cause() {
    for (url, endpoint, cause) in [
        (
            "postgres://postgres@127.0.0.1:1/postgres",
            "127.0.0.1:1",
            "connection refused",
        ),
        (
            "postgres://postgres@no-such-host.invalid:5432/postgres",
            "no-such-host.invalid:5432",
            "cannot resolve",
        ),
        (
            "postgres://no_such_role_tenancy@127.0.0.1:5432/postgres",
            "127.0.0.1:5432",
            "authentication",
        ),
    ] {
        let (exit, out, err) = cli(url, &["list"]).await;
        assert_ne!(exit, Exit::Success, "{url}");
        assert!(out.is_empty(), "{out}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(endpoint) && err.contains(cause),
            "{url}: {err}"
        );
        assert!(
            err.contains("--database-url") && err.contains("--connect-timeout"),
            "{err}"
        );
        assert!(!err.contains("PoolTimedOut") && !err.contains("{"), "{err}");
    }
}

#[tokio::test]
async fn an_unreadable_registry_row_is_one_error_line_and_the_rest_is_shown() -> TestResult {
    let db = TestDatabase::create().await?;
    let url = db.url().to_owned();
    ok(&url, &["install"]).await;
    ok(&url, &["create", "acme"]).await;
    let conn = db.connect().await?;
    conn.execute_unprepared(
        "INSERT INTO public.tenants (tenant_id, schema_name, status) \
         VALUES (E'evil\\nID SCHEMA', 'tenant_evil', 'active')",
    )
    .await?;
    conn.close().await?;
    // Each goes on with acme, and names the bad row, escaped.
    for (args, rest) in [
        (&["list"][..], "acme"),
        (&["migrate"], "1 succeeded"),
        (&["status"], "acme"),
        (&["health"], "1 tenants"),
    ] {
        let (exit, out, err) = cli(&url, args).await;
        assert_eq!(exit, Exit::Failure, "{args:?}: {out}{err}");
        assert!(out.contains(rest), "{args:?}: {out}");
        let both = format!("{out}{err}");
        assert!(both.contains(r#""evil\nID SCHEMA""#), "{args:?}: {both}");
        assert!(!both.lines().any(|l| l.starts_with("ID SCHEMA")), "{both}");
    }
    let (_, out, _) = cli(&url, &["list", "--json"]).await;
    assert_eq!(ids(&serde_json::from_str(&out)?), ["acme"]);
    db.close().await?;
    Ok(())
}

#[tokio::test]
async fn spares_refill_status_and_drop_through_the_cli() -> TestResult {
    let db = TestDatabase::create().await?;
    let url = db.url().to_owned();
    ok(&url, &["install"]).await;
    let made = ok(&url, &["spares", "refill", "3"]).await;
    assert!(made.contains("made 3 spare schema(s)"), "{made}");
    let status = json(&url, &["spares", "status", "--json"]).await;
    assert_eq!(status["ready"].as_array().unwrap().len(), 3, "{status}");
    let text = ok(&url, &["spares", "status"]).await;
    assert!(text.starts_with("3 spares ready"), "{text}");
    // Spares are not orphans.
    let health = json(&url, &["health", "--json"]).await;
    assert_eq!(
        health["orphan_schemas"],
        Value::Array(Vec::new()),
        "{health}"
    );
    assert_eq!(health["spares"]["ready"].as_array().unwrap().len(), 3);
    let migrated = ok(&url, &["migrate"]).await;
    assert!(migrated.contains("3 spares: 0 failed"), "{migrated}");
    let dropped = ok(&url, &["spares", "drop", "--keep", "1"]).await;
    assert!(dropped.contains("dropped 2 spare schema(s)"), "{dropped}");
    let status = json(&url, &["spares", "status", "--json"]).await;
    assert_eq!(status["ready"].as_array().unwrap().len(), 1, "{status}");
    db.close().await?;
    Ok(())
}
