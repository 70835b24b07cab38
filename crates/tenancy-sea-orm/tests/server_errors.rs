//! Errors shown to users carry the server's message, not sqlx's ` at line N`
//! (a line of the server's C source).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TestResult, create_tenants, finish, setup};
use tenancy_core::RoleName;
use tenancy_sea_orm::{Error, ScopeOptions, TenantDb};

#[tokio::test]
async fn a_server_error_is_shown_without_the_servers_source_line() -> TestResult {
    let (test_db, conn) = setup(2).await?;
    let tenants = create_tenants(&conn, &["acme"]).await?;
    let db = TenantDb::new(conn.clone())?;
    let missing = RoleName::new("tenancy_test_role_that_does_not_exist")?;
    let err = db
        .begin_with(&tenants[0], &ScopeOptions::new().role(missing))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Role { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("does not exist"), "{message}");
    assert!(!message.contains(" at line "), "{message}");
    finish(test_db, vec![conn]).await
}

/// A registry lookup whose query the server refuses (here: no registry table)
/// names the table and the server's message, without the source line.
#[tokio::test]
async fn a_failed_registry_lookup_is_shown_without_the_servers_source_line() -> TestResult {
    let (test_db, conn) = setup(2).await?;
    let db = TenantDb::new(conn.clone())?;
    let err = db.resolve(&"acme".parse()?).await.unwrap_err();
    assert!(matches!(err, Error::Registry { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("does not exist"), "{message}");
    assert!(!message.contains(" at line "), "{message}");
    finish(test_db, vec![conn]).await
}
