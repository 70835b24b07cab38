//! The admin CLI for an application with its own configuration
//! (`AdminCli`): schemas and registry rows land where the application put
//! them; JSON, progress, hints and `--version`.
#![cfg(feature = "cli")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support_migrate;

use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::{Value, json};
use support_migrate::{CrashMigrator, M2, Migrator, SharedMigrator, TestResult, query_all};
use tenancy_core::{SchemaNaming, SharedSchema, TableName};
use tenancy_migrate::cli::{AdminCli, Exit};
use tenancy_migrate::{FleetConfig, TenantFleet};
use tenancy_sea_orm::RegistryConfig;
use tenancy_testing::TestDatabase;

/// An application's configuration: schemas `org_<id>`, the registry in
/// `control.orgs`.
fn app_config() -> FleetConfig {
    FleetConfig::default()
        .with_naming(SchemaNaming::with_prefix("org_").unwrap())
        .with_registry(RegistryConfig::default().with_table(
            SharedSchema::new("control").unwrap(),
            TableName::new("orgs").unwrap(),
        ))
}

/// Runs `admin` on `args` (after the program name): exit, stdout, stderr.
async fn run<M: sea_orm_migration::MigratorTrait>(
    admin: AdminCli<M>,
    args: &[&str],
) -> (Exit, String, String) {
    let argv = std::iter::once(&"app-admin").chain(args).copied();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let exit = admin.run_with(argv, &mut out, &mut err).await;
    (
        exit,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

async fn ok<M: sea_orm_migration::MigratorTrait>(admin: AdminCli<M>, args: &[&str]) -> String {
    let (exit, out, err) = run(admin, args).await;
    assert_eq!(exit, Exit::Success, "{args:?}: {out}{err}");
    out
}

/// The first column of each row of `sql`, as text (NULL as `None`).
async fn column(conn: &DatabaseConnection, sql: &str) -> Vec<Option<String>> {
    query_all(conn, sql, vec![])
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get_by_index::<Option<String>>(0).unwrap())
        .collect()
}

/// `rest` after `--database-url url`.
fn on<'a>(url: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--database-url", url];
    args.extend_from_slice(rest);
    args
}

/// Runs `admin` on `args`, which must fail with one error line; that line.
async fn fails<M: sea_orm_migration::MigratorTrait>(admin: AdminCli<M>, args: &[&str]) -> String {
    let (exit, out, err) = run(admin, args).await;
    assert_eq!(exit, Exit::Failure, "{args:?}: {out}{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    err
}

fn some(values: &[&str]) -> Vec<Option<String>> {
    values.iter().map(|v| Some((*v).to_owned())).collect()
}

#[tokio::test]
async fn schemas_and_registry_rows_land_where_the_application_configured_them() -> TestResult {
    let db = TestDatabase::create().await?;
    let conn = db.connect().await?;
    // The application owns the registry's schema, and a legacy schema.
    conn.execute_unprepared("CREATE SCHEMA control; CREATE SCHEMA legacy_globex")
        .await?;
    let url = db.url().to_owned();
    let connecting = || AdminCli::<Migrator>::new(app_config());
    let installed = ok(connecting(), &on(&url, &["install"])).await;
    assert!(installed.contains(r#""control"."orgs""#), "{installed}");
    let created = ok(
        connecting(),
        &on(&url, &["create", "acme", "--name", "Acme"]),
    )
    .await;
    assert!(created.contains("schema org_acme"), "{created}");

    // The application's own fleet: no URL at all.
    let fleet = TenantFleet::<Migrator>::with_config(conn.clone(), app_config());
    let adopted = ok(
        AdminCli::with_fleet(fleet.clone()),
        &[
            "adopt",
            "globex",
            "legacy_globex",
            "--name",
            "Globex",
            "--domain",
            "Globex.Example.com",
        ],
    )
    .await;
    assert!(adopted.contains("applied 2 migration(s)"), "{adopted}");

    // The rows are in control.orgs, with the names and domain given.
    let sql = "SELECT tenant_id || ' ' || schema_name || ' ' || display_name || ' ' || \
               coalesce(domain, '-') FROM control.orgs ORDER BY tenant_id";
    assert_eq!(
        column(&conn, sql).await,
        some(&[
            "acme org_acme Acme -",
            "globex legacy_globex Globex globex.example.com"
        ])
    );
    // The schemas are the configured ones, migrated; nothing went to the
    // default places.
    let sql = "SELECT nspname::text FROM pg_namespace \
               WHERE nspname IN ('org_acme', 'tenant_acme', 'legacy_globex') ORDER BY 1";
    assert_eq!(
        column(&conn, sql).await,
        some(&["legacy_globex", "org_acme"])
    );
    let sql = "SELECT to_regclass('org_acme.projects')::text, to_regclass('public.tenants')::text, \
               to_regclass('public.projects')::text";
    let row = &query_all(&conn, sql, vec![]).await?[0];
    assert_eq!(
        row.try_get_by_index::<Option<String>>(0)?.as_deref(),
        Some("org_acme.projects")
    );
    assert_eq!(row.try_get_by_index::<Option<String>>(1)?, None);
    assert_eq!(row.try_get_by_index::<Option<String>>(2)?, None);

    // The fleet commands read the configured registry.
    let list: Value =
        serde_json::from_str(&ok(AdminCli::with_fleet(fleet.clone()), &["list", "--json"]).await)?;
    assert_eq!(list[1]["domain"], "globex.example.com");
    ok(
        AdminCli::with_fleet(fleet.clone()),
        &["migrate", "--concurrency", "2"],
    )
    .await;
    let status: Value = serde_json::from_str(
        &ok(AdminCli::with_fleet(fleet.clone()), &["status", "--json"]).await,
    )?;
    assert_eq!(status["totals"]["up_to_date"], 2, "{status}");
    ok(AdminCli::with_fleet(fleet.clone()), &["health"]).await;
    ok(connecting(), &on(&url, &["health"])).await;

    // The application's connection is still open after the CLI ran.
    conn.execute_unprepared("SELECT 1").await?;
    conn.close().await?;
    db.close().await?;
    Ok(())
}

#[tokio::test]
async fn the_cli_offers_what_the_binary_has() -> TestResult {
    let db = TestDatabase::create().await?;
    let conn = db.connect().await?;
    let fleet = TenantFleet::<Migrator>::with_config(conn.clone(), app_config());

    // On the application's fleet: no connection options; no shared migrator,
    // no `shared`.
    let help = ok(AdminCli::with_fleet(fleet.clone()), &["--help"]).await;
    assert!(
        !help.contains("--database-url") && !help.contains("shared"),
        "{help}"
    );
    let (exit, _, err) = run(
        AdminCli::with_fleet(fleet.clone()),
        &["--database-url", db.url(), "list"],
    )
    .await;
    assert_eq!(exit, Exit::Usage, "{err}");
    let (exit, _, _) = run(AdminCli::with_fleet(fleet.clone()), &["shared", "migrate"]).await;
    assert_eq!(exit, Exit::Usage);

    // Connecting, with a shared migrator: both.
    let full = || AdminCli::<Migrator>::new(app_config()).shared_migrator::<SharedMigrator>();
    let help = ok(full(), &["--help"]).await;
    assert!(
        help.contains("--database-url") && help.contains("shared"),
        "{help}"
    );

    // --concurrency belongs to fleet runs, not to one tenant.
    let migrate_help = ok(full(), &["migrate", "--help"]).await;
    assert!(migrate_help.contains("--concurrency") && migrate_help.contains("--json"));
    let (exit, _, _) = run(full(), &["status", "--concurrency", "2"]).await;
    assert_eq!(exit, Exit::Usage);
    let (exit, _, _) = run(
        full(),
        &["migrate", "--tenant", "acme", "--concurrency", "2"],
    )
    .await;
    assert_eq!(exit, Exit::Usage);

    // Versions: the binary's, then what it migrates.
    let short = ok(full().version("1.4.2"), &["-V"]).await;
    assert!(short.contains("1.4.2"), "{short}");
    let long = ok(full().version("1.4.2"), &["--version"]).await;
    assert!(long.contains("1.4.2"), "{long}");
    assert!(
        long.contains(&format!("tenant migrations: 2, the latest {M2}")),
        "{long}"
    );
    assert!(long.contains("shared migrations: 1"), "{long}");
    assert!(long.contains("tenancy-migrate"), "{long}");
    conn.close().await?;
    db.close().await?;
    Ok(())
}

#[tokio::test]
async fn reports_are_json_objects_and_text_without_rust_names() -> TestResult {
    let db = TestDatabase::create().await?;
    let conn = db.connect().await?;
    conn.execute_unprepared("CREATE SCHEMA control").await?;
    let fleet = TenantFleet::<Migrator>::with_config(conn.clone(), app_config());
    let admin = || AdminCli::with_fleet(fleet.clone());
    ok(admin(), &["install"]).await;
    ok(admin(), &["create", "acme"]).await;
    ok(admin(), &["create", "globex"]).await;

    // migrate --json: the run as an object, durations in seconds.
    let (exit, out, err) = run(admin(), &["migrate", "--json"]).await;
    assert_eq!(exit, Exit::Success, "{err}");
    let report: Value = serde_json::from_str(&out)?;
    assert_eq!(report["direction"], "up");
    assert_eq!(report["tenants"][0]["tenant"], "acme");
    assert_eq!(report["tenants"][0]["outcome"], "succeeded");
    assert!(report["duration_seconds"].is_f64(), "{report}");
    // Progress went to the error writer given, one line per tenant.
    assert!(err.contains("[1/2] ") && err.contains("[2/2] "), "{err}");
    let one: Value =
        serde_json::from_str(&ok(admin(), &["migrate", "--tenant", "acme", "--json"]).await)?;
    assert_eq!(one["tenant"], "acme");
    assert_eq!(one["applied"], json!([]));

    // health --json: pairs are objects with named fields.
    ok(admin(), &["rollback", "--tenant", "acme"]).await;
    conn.execute_unprepared("DROP SCHEMA org_globex CASCADE")
        .await?;
    let (exit, out, _) = run(admin(), &["health", "--json"]).await;
    assert_eq!(exit, Exit::Failure);
    let health: Value = serde_json::from_str(&out)?;
    assert_eq!(
        health["missing_schemas"],
        json!([{ "tenant": "globex", "schema": "org_globex" }])
    );
    assert_eq!(
        health["pending"],
        json!([{ "tenant": "acme", "migrations": [M2] }])
    );

    // Text: states in words.
    let status = ok(admin(), &["status"]).await;
    assert!(
        status.contains(&format!("acme (org_acme, active): 1 pending: {M2}")),
        "{status}"
    );
    assert!(
        status.contains("globex (org_globex, active): schema missing"),
        "{status}"
    );
    for rust_name in [
        "Migrated",
        "MissingSchema",
        "NoMigrationsTable",
        "Some(",
        "\"acme\"",
    ] {
        assert!(!status.contains(rust_name), "{rust_name}: {status}");
    }
    conn.close().await?;
    db.close().await?;
    Ok(())
}

#[tokio::test]
async fn a_failed_fleet_run_exits_1_with_its_json_report() -> TestResult {
    let db = TestDatabase::create().await?;
    let conn = db.connect().await?;
    let url = db.url().to_owned();
    let admin = || AdminCli::<CrashMigrator>::new(FleetConfig::default());
    ok(admin(), &on(&url, &["install"])).await;
    ok(admin(), &on(&url, &["create", "acme"])).await;
    conn.execute_unprepared(
        "CREATE TABLE public.crash_switch (); \
         DELETE FROM tenant_acme.seaql_migrations WHERE version LIKE 'm0003%'; \
         DROP TABLE tenant_acme.audit_log",
    )
    .await?;
    let (exit, out, err) = run(admin(), &on(&url, &["migrate", "--json"])).await;
    assert_eq!(exit, Exit::Failure, "{err}");
    let report: Value = serde_json::from_str(&out)?;
    assert_eq!(report["tenants"][0]["outcome"], "failed");
    assert!(
        report["tenants"][0]["error"]
            .as_str()
            .unwrap()
            .contains("simulated crash"),
        "{report}"
    );
    assert!(
        err.contains("FAILED") && err.contains("rolled back unchanged"),
        "{err}"
    );
    conn.close().await?;
    db.close().await?;
    Ok(())
}

#[tokio::test]
async fn hints_say_what_is_true() -> TestResult {
    let db = TestDatabase::create().await?;
    let conn = db.connect().await?;
    let url = db.url().to_owned();
    let admin = || AdminCli::<Migrator>::new(FleetConfig::default());

    // Before install, create and adopt say to run it, as list does.
    conn.execute_unprepared("CREATE SCHEMA legacy").await?;
    for args in [
        &["create", "acme"][..],
        &["adopt", "acme", "legacy"],
        &["list"],
    ] {
        let err = fails(admin(), &on(&url, args)).await;
        assert!(err.contains("run `install` first"), "{args:?}: {err}");
    }
    // On the application's fleet there is no --database-url to check.
    let fleet = TenantFleet::<Migrator>::new(conn.clone());
    let err = fails(AdminCli::with_fleet(fleet), &["create", "acme"]).await;
    assert!(
        err.contains("run `install` first") && !err.contains("--database-url"),
        "{err}"
    );
    ok(admin(), &on(&url, &["install"])).await;

    // Adopting a schema that does not exist registered nothing: no drop.
    let err = fails(admin(), &on(&url, &["adopt", "acme", "no_such_schema"])).await;
    assert!(
        err.contains("nothing was registered") && !err.contains("drop"),
        "{err}"
    );

    // A deleted tenant: the command that frees it, not a library type.
    ok(admin(), &on(&url, &["create", "acme"])).await;
    ok(admin(), &on(&url, &["drop", "acme", "--soft"])).await;
    for verb in ["resume", "suspend"] {
        let err = fails(admin(), &on(&url, &[verb, "acme"])).await;
        assert!(err.contains("`drop acme --yes`"), "{err}");
        assert!(!err.contains("DropMode") && !err.contains("::"), "{err}");
    }

    // A schema that exists already: adopt it.
    conn.execute_unprepared("CREATE SCHEMA tenant_globex")
        .await?;
    let err = fails(admin(), &on(&url, &["create", "globex"])).await;
    assert!(err.contains("`adopt globex tenant_globex`"), "{err}");
    conn.close().await?;
    db.close().await?;
    Ok(())
}
