//! The admin CLI's `export`, `import` and `clone`: a tenant goes to a file
//! and back under another id (and into another database), a clone copies
//! it, and what would overwrite something is refused with one line.
#![cfg(feature = "cli")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support_migrate;

use sea_orm::{ConnectionTrait, DatabaseConnection};
use support_migrate::{Migrator, TestResult, query_all};
use tenancy_migrate::FleetConfig;
use tenancy_migrate::cli::{AdminCli, Exit};
use tenancy_testing::TestDatabase;

/// Runs the CLI on `url` with `args`: exit, stdout, stderr.
async fn run(url: &str, args: &[&str]) -> (Exit, String, String) {
    let argv = ["admin", "--database-url", url]
        .into_iter()
        .chain(args.iter().copied());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let exit = AdminCli::<Migrator>::new(FleetConfig::default())
        .run_with(argv, &mut out, &mut err)
        .await;
    (
        exit,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

async fn ok(url: &str, args: &[&str]) -> String {
    let (exit, out, err) = run(url, args).await;
    assert_eq!(exit, Exit::Success, "{args:?}: {out}{err}");
    out
}

async fn fails(url: &str, args: &[&str]) -> String {
    let (exit, out, err) = run(url, args).await;
    assert_eq!(exit, Exit::Failure, "{args:?}: {out}{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    err
}

/// The first column of each row of `sql`, as text.
async fn column(conn: &DatabaseConnection, sql: &str) -> Vec<String> {
    query_all(conn, sql, vec![])
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get_by_index::<String>(0).unwrap())
        .collect()
}

#[tokio::test]
async fn export_import_and_clone_from_the_command_line() -> TestResult {
    let db = TestDatabase::create().await?;
    let conn = db.connect().await?;
    let url = db.url().to_owned();
    ok(&url, &["install"]).await;
    ok(
        &url,
        &[
            "create",
            "acme",
            "--name",
            "Acme",
            "--domain",
            "acme.example.com",
        ],
    )
    .await;
    conn.execute_unprepared("INSERT INTO tenant_acme.projects (name) VALUES ('Rocket'), ('Jet')")
        .await?;

    let dir = std::env::temp_dir().join(format!("tenancy-cli-transfer-{}", db.name()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("acme.tenant");
    let file = file.to_str().unwrap();
    let exported = ok(&url, &["export", "acme", "--out", file]).await;
    assert!(
        exported.contains("exported tenant acme (schema tenant_acme"),
        "{exported}"
    );

    // An existing file is never overwritten.
    let err = fails(&url, &["export", "acme", "-o", file]).await;
    assert!(err.contains("choose another path"), "{err}");
    // A failed export leaves no file behind.
    let missing = dir.join("nobody.tenant");
    let err = fails(&url, &["export", "nobody", "-o", missing.to_str().unwrap()]).await;
    assert!(err.contains("nobody"), "{err}");
    assert!(!missing.exists());

    // The same id exists: refused, naming it.
    let err = fails(&url, &["import", file]).await;
    assert!(err.contains("acme"), "{err}");
    let imported = ok(&url, &["import", file, "--as", "acme-copy", "--no-domain"]).await;
    assert!(
        imported.contains("imported tenant acme as acme-copy (schema tenant_acme_copy"),
        "{imported}"
    );
    assert!(imported.contains("4 rows"), "{imported}"); // two projects, two ledger rows

    let cloned = ok(&url, &["clone", "acme", "trial"]).await;
    assert!(
        cloned.contains("cloned tenant acme to trial (schema tenant_trial"),
        "{cloned}"
    );
    let names = column(
        &conn,
        "SELECT string_agg(name, ',' ORDER BY id) FROM tenant_acme_copy.projects \
         UNION ALL SELECT string_agg(name, ',' ORDER BY id) FROM tenant_trial.projects",
    )
    .await;
    assert_eq!(names, ["Rocket,Jet", "Rocket,Jet"]);

    // Into another database, under its own id and domain.
    let other = TestDatabase::create().await?;
    let other_url = other.url().to_owned();
    ok(&other_url, &["install"]).await;
    let there = ok(&other_url, &["import", file]).await;
    assert!(
        there.contains("imported tenant acme as acme (schema tenant_acme"),
        "{there}"
    );
    let listed = ok(&other_url, &["list"]).await;
    assert!(listed.contains("acme.example.com"), "{listed}");
    other.close().await?;

    // Not an export at all.
    let bogus = dir.join("bogus.tenant");
    std::fs::write(&bogus, "not an export")?;
    let (exit, _, err) = run(&url, &["import", bogus.to_str().unwrap()]).await;
    assert_ne!(exit, Exit::Success);
    assert!(err.contains("not a usable tenant export"), "{err}");

    std::fs::remove_dir_all(&dir)?;
    conn.close().await?;
    db.close().await?;
    Ok(())
}
