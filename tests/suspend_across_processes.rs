//! A suspend made by another process (the `admin` example, run as a user
//! runs it) reaches this process's `TenantDb` through the registry listener,
//! long before the registry cache's TTL would.
#![cfg(feature = "cli")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod example_binary;
use example_binary::example_binary;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use tenancy::orm::Error as ScopeError;
use tenancy::{TenantDb, TenantId, TenantStatus};
use tenancy_testing::TestDatabase;

/// The example binary (see `example_binary`).
fn admin() -> PathBuf {
    example_binary("admin", "cli")
}

fn run(url: &str, args: &[&str]) -> Output {
    let output = Command::new(admin())
        .env("DATABASE_URL", url)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "admin {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Polls `resolve` until it answers as `expect` says, for at most 5 s
/// (the cache's TTL is 30 s, so only a notification gets there in time).
async fn time_until(
    db: &TenantDb,
    id: &TenantId,
    expect: fn(&Result<(), ScopeError>) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let outcome = db.resolve(id).await.map(drop);
        if expect(&outcome) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "still {outcome:?} after 5 s: the change did not reach this process"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_suspend_by_another_process_is_refused_here_at_once()
-> Result<(), Box<dyn std::error::Error>> {
    let db = TestDatabase::create().await?;
    let url = db.url().to_owned();
    run(&url, &["install"]);
    run(&url, &["create", "acme"]);

    let conn = db.connect().await?;
    let app = TenantDb::new(conn.clone())?;
    let listener = app.registry().listen(&url).await?;
    // A second handle without a listener: it keeps serving from its cache,
    // which shows that the notification, not the TTL, made the difference.
    let deaf = TenantDb::new(conn.clone())?;
    let acme = TenantId::new("acme")?;
    app.resolve(&acme).await?;
    deaf.resolve(&acme).await?;

    run(&url, &["suspend", "acme"]);
    let refused = time_until(&app, &acme, |r| {
        matches!(
            r,
            Err(ScopeError::Inaccessible {
                status: TenantStatus::Suspended,
                ..
            })
        )
    })
    .await;
    assert!(
        deaf.resolve(&acme).await.is_ok(),
        "the control handle should still be cached"
    );

    run(&url, &["resume", "acme"]);
    let served = time_until(&app, &acme, Result::is_ok).await;
    println!("suspend seen after {refused:?}, resume after {served:?} (admin process to this one)");
    assert!(listener.status().notifications >= 2);

    drop(listener);
    conn.close().await?;
    db.close().await?;
    Ok(())
}
