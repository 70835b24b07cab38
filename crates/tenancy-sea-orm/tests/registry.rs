//! The tenant registry's read side against a real registry table.
//!
//! Caching is proven without counting queries: after a lookup, the row is
//! changed behind the registry's back with a direct `UPDATE`; while the old
//! answer keeps coming back, no lookup reached the database.

use std::error::Error as StdError;
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection};
use tenancy_core::{SharedSchema, TableName, TenantId, TenantScope, TenantStatus};
use tenancy_sea_orm::{Error, RegistryConfig, TenantRecord, TenantRegistry};
use tenancy_testing::TestDatabase;

type TestResult = Result<(), Box<dyn StdError>>;

/// The registry table of the contract, plus a column the read side ignores.
const REGISTRY_DDL: &str = "CREATE TABLE public.tenants (
    tenant_id text PRIMARY KEY,
    schema_name text NOT NULL UNIQUE,
    status text NOT NULL,
    display_name text NOT NULL DEFAULT '',
    domain text UNIQUE,
    plan text
)";

/// A fresh database with the registry table holding `rows`
/// (`tenant_id`, `schema_name`, `status`).
async fn registry_db(
    rows: &[(&str, &str, &str)],
) -> Result<(TestDatabase, DatabaseConnection), Box<dyn StdError>> {
    let db = TestDatabase::create().await?;
    let conn = db.connect().await?;
    conn.execute_unprepared(REGISTRY_DDL).await?;
    for (id, schema, status) in rows {
        insert(&conn, "public.tenants", id, schema, status).await?;
    }
    Ok((db, conn))
}

/// Test data only: the values are literals of this file.
async fn insert(
    conn: &DatabaseConnection,
    table: &str,
    id: &str,
    schema: &str,
    status: &str,
) -> Result<(), sea_orm::DbErr> {
    conn.execute_unprepared(&format!(
        "INSERT INTO {table} (tenant_id, schema_name, status, display_name) \
         VALUES ('{id}', '{schema}', '{status}', 'Tenant {id}')"
    ))
    .await
    .map(drop)
}

async fn set_status(
    conn: &DatabaseConnection,
    id: &str,
    status: &str,
) -> Result<(), sea_orm::DbErr> {
    conn.execute_unprepared(&format!(
        "UPDATE public.tenants SET status = '{status}' WHERE tenant_id = '{id}'"
    ))
    .await
    .map(drop)
}

async fn finish(db: TestDatabase, conn: DatabaseConnection) -> TestResult {
    conn.close().await?;
    db.close().await?;
    Ok(())
}

#[allow(clippy::unwrap_used)] // Only ever called with this file's literals.
fn id(input: &str) -> TenantId {
    TenantId::new(input).unwrap()
}

#[tokio::test]
async fn active_tenant_resolves_to_its_schema() -> TestResult {
    let (db, conn) = registry_db(&[
        ("acme", "tenant_acme", "active"),
        ("globex-corp", "legacy_globex", "active"),
    ])
    .await?;
    let registry = TenantRegistry::new(conn.clone());

    let acme = registry.resolve(&id("acme")).await?;
    assert_eq!(acme.id(), &id("acme"));
    assert_eq!(acme.schema().as_str(), "tenant_acme");
    assert_eq!(acme.search_path().to_string(), r#""tenant_acme", "public""#);

    // The schema comes from the row, not from the naming convention.
    let globex = registry.resolve(&id("globex-corp")).await?;
    assert_eq!(globex.schema().as_str(), "legacy_globex");

    let entry: Option<TenantRecord> = registry.entry(&id("acme")).await?;
    let entry = entry.ok_or("acme is registered")?;
    assert_eq!(entry.id, id("acme"));
    assert_eq!(entry.schema.as_str(), "tenant_acme");
    assert_eq!(entry.display_name, "Tenant acme");
    assert_eq!(entry.domain, None);
    assert_eq!(entry.status, TenantStatus::Active);
    finish(db, conn).await
}

#[tokio::test]
async fn unknown_tenant_is_refused_by_name() -> TestResult {
    let (db, conn) = registry_db(&[("acme", "tenant_acme", "active")]).await?;
    let registry = TenantRegistry::new(conn.clone());

    let err = registry.resolve(&id("nobody")).await.unwrap_err();
    assert!(
        matches!(&err, Error::UnknownTenant { tenant } if tenant.as_str() == "nobody"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "tenant nobody is not registered");
    assert_eq!(registry.entry(&id("nobody")).await?, None);
    assert_eq!(registry.fetch(&id("nobody")).await?, None);
    finish(db, conn).await
}

#[tokio::test]
async fn only_active_tenants_are_accessible() -> TestResult {
    let (db, conn) = registry_db(&[
        ("initech", "tenant_initech", "suspended"),
        ("hooli", "tenant_hooli", "provisioning"),
        ("umbrella", "tenant_umbrella", "deleted"),
    ])
    .await?;
    let registry = TenantRegistry::new(conn.clone());

    for (tenant, expected) in [
        ("initech", TenantStatus::Suspended),
        ("hooli", TenantStatus::Provisioning),
        ("umbrella", TenantStatus::Deleted),
    ] {
        let err = registry.resolve(&id(tenant)).await.unwrap_err();
        match &err {
            Error::Inaccessible {
                tenant: got,
                status,
            } => {
                assert_eq!(got.as_str(), tenant);
                assert_eq!(*status, expected);
            }
            other => panic!("{tenant}: expected Inaccessible, got {other:?}"),
        }
        assert!(err.to_string().contains(expected.as_str()), "{err}");

        // The raw entry is still there, whatever its status.
        let entry = registry.entry(&id(tenant)).await?.unwrap();
        assert_eq!(entry.status, expected);
    }
    finish(db, conn).await
}

#[tokio::test]
async fn resolved_tenant_is_cached_until_invalidated() -> TestResult {
    let (db, conn) = registry_db(&[("acme", "tenant_acme", "active")]).await?;
    let registry = TenantRegistry::new(conn.clone());
    let acme = id("acme");

    registry.resolve(&acme).await?;
    set_status(&conn, "acme", "suspended").await?;

    // Still active: these lookups never reached the database.
    for _ in 0..3 {
        registry.resolve(&acme).await?;
    }
    // A clone shares the cache.
    registry.clone().resolve(&acme).await?;
    // `fetch` bypasses the cache, and leaves it alone.
    assert_eq!(
        registry.fetch(&acme).await?.map(|e| e.status),
        Some(TenantStatus::Suspended)
    );
    registry.resolve(&acme).await?;

    registry.invalidate(&acme);
    let err = registry.resolve(&acme).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Inaccessible {
                status: TenantStatus::Suspended,
                ..
            }
        ),
        "{err:?}"
    );

    // Reactivated and everything forgotten: accessible again.
    set_status(&conn, "acme", "active").await?;
    registry.invalidate_all();
    registry.resolve(&acme).await?;
    finish(db, conn).await
}

#[tokio::test]
async fn cached_entry_expires_after_ttl() -> TestResult {
    let (db, conn) = registry_db(&[("acme", "tenant_acme", "active")]).await?;
    let config = RegistryConfig::default().with_ttl(Duration::from_millis(50));
    let registry = TenantRegistry::with_config(conn.clone(), config);
    let acme = id("acme");

    registry.resolve(&acme).await?;
    set_status(&conn, "acme", "suspended").await?;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let err = registry.resolve(&acme).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Inaccessible {
                status: TenantStatus::Suspended,
                ..
            }
        ),
        "{err:?}"
    );
    finish(db, conn).await
}

#[tokio::test]
async fn zero_ttl_disables_the_cache() -> TestResult {
    let (db, conn) = registry_db(&[("acme", "tenant_acme", "active")]).await?;
    let config = RegistryConfig::default()
        .with_ttl(Duration::ZERO)
        .with_negative_ttl(Duration::ZERO);
    let registry = TenantRegistry::with_config(conn.clone(), config);

    registry.resolve(&id("acme")).await?;
    set_status(&conn, "acme", "suspended").await?;
    assert!(registry.resolve(&id("acme")).await.is_err());

    assert_eq!(registry.entry(&id("hooli")).await?, None);
    insert(&conn, "public.tenants", "hooli", "tenant_hooli", "active").await?;
    registry.resolve(&id("hooli")).await?;
    finish(db, conn).await
}

#[tokio::test]
async fn unknown_tenant_is_cached_briefly() -> TestResult {
    let (db, conn) = registry_db(&[]).await?;
    // A long negative TTL first: the insert must stay unseen until invalidated.
    let registry = TenantRegistry::with_config(
        conn.clone(),
        RegistryConfig::default().with_negative_ttl(Duration::from_secs(60)),
    );
    let acme = id("acme");

    assert!(matches!(
        registry.resolve(&acme).await,
        Err(Error::UnknownTenant { .. })
    ));
    insert(&conn, "public.tenants", "acme", "tenant_acme", "active").await?;
    assert!(matches!(
        registry.resolve(&acme).await,
        Err(Error::UnknownTenant { .. })
    ));
    registry.invalidate(&acme);
    assert_eq!(
        registry.resolve(&acme).await?.schema().as_str(),
        "tenant_acme"
    );

    // Then a short one: the insert is seen once it has passed, while a
    // registered tenant (ttl 30 s) stays cached meanwhile.
    let registry = TenantRegistry::with_config(
        conn.clone(),
        RegistryConfig::default().with_negative_ttl(Duration::from_millis(50)),
    );
    registry.resolve(&acme).await?;
    let hooli = id("hooli");
    assert!(matches!(
        registry.resolve(&hooli).await,
        Err(Error::UnknownTenant { .. })
    ));
    insert(&conn, "public.tenants", "hooli", "tenant_hooli", "active").await?;
    set_status(&conn, "acme", "suspended").await?;
    tokio::time::sleep(Duration::from_millis(200)).await;

    assert_eq!(
        registry.resolve(&hooli).await?.schema().as_str(),
        "tenant_hooli"
    );
    registry.resolve(&acme).await?;
    finish(db, conn).await
}

#[tokio::test]
async fn custom_schema_and_table() -> TestResult {
    let db = TestDatabase::create().await?;
    let conn = db.connect().await?;
    conn.execute_unprepared(
        "CREATE SCHEMA control;
         CREATE TABLE control.registry (
             tenant_id text PRIMARY KEY,
             schema_name text NOT NULL UNIQUE,
             status text NOT NULL,
             plan text,
             display_name text NOT NULL DEFAULT '',
             domain text UNIQUE
         )",
    )
    .await?;
    conn.execute_unprepared(
        "INSERT INTO control.registry VALUES ('acme', 'tenant_acme', 'active', 'gold')",
    )
    .await?;

    let config = RegistryConfig::default()
        .with_table(SharedSchema::new("control")?, TableName::new("registry")?);
    let registry = TenantRegistry::with_config(conn.clone(), config);
    assert_eq!(
        registry.config().qualified_table(),
        r#""control"."registry""#
    );
    assert_eq!(
        registry.resolve(&id("acme")).await?.schema().as_str(),
        "tenant_acme"
    );

    // The default table does not exist here: a registry error naming it.
    let default = TenantRegistry::new(conn.clone());
    let err = default.resolve(&id("acme")).await.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Registry {
                source: Some(_),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains(r#""public"."tenants""#), "{err}");
    finish(db, conn).await
}

#[tokio::test]
async fn unusable_rows_are_corrupt_registry_errors_naming_column_and_value() -> TestResult {
    let (db, conn) = registry_db(&[
        ("shared", "public", "active"),
        ("dashed", "Bad-Name", "active"),
        ("paused", "tenant_paused", "paused"),
        ("acme", "tenant_acme", "active"),
    ])
    .await?;
    let registry = TenantRegistry::new(conn.clone());

    for (tenant, column, value) in [
        ("shared", "schema_name", "public"),
        ("dashed", "schema_name", "Bad-Name"),
        ("paused", "status", "paused"),
    ] {
        let err = registry.resolve(&id(tenant)).await.unwrap_err();
        assert!(
            matches!(&err, Error::CorruptRegistry { tenant: t, .. } if t.as_str() == tenant),
            "{tenant}: {err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains(&format!("{column} \"{value}\"")),
            "{tenant}: {message}"
        );
        // Errors are not cached: fixing the row is enough.
        assert!(registry.entry(&id(tenant)).await.is_err());
    }

    // A bad row does not disturb good ones.
    registry.resolve(&id("acme")).await?;

    conn.execute_unprepared(
        "UPDATE public.tenants SET status = 'active' WHERE tenant_id = 'paused'",
    )
    .await?;
    registry.resolve(&id("paused")).await?;
    finish(db, conn).await
}

#[tokio::test]
async fn a_row_breaking_the_column_types_is_a_corrupt_registry_row() -> TestResult {
    let db = TestDatabase::create().await?;
    let conn = db.connect().await?;
    // `status` is an integer here, against the contract.
    conn.execute_unprepared(
        "CREATE TABLE public.tenants (tenant_id text PRIMARY KEY, schema_name text, status int,
                                      display_name text NOT NULL DEFAULT '', domain text);
         INSERT INTO public.tenants VALUES ('acme', 'tenant_acme', 1)",
    )
    .await?;
    let registry = TenantRegistry::new(conn.clone());

    let err = registry.resolve(&id("acme")).await.unwrap_err();
    assert!(
        matches!(&err, Error::CorruptRegistry { record, .. } if record.tenant == "acme"),
        "{err:?}"
    );
    assert!(err.to_string().contains("column status"), "{err}");
    finish(db, conn).await
}

#[tokio::test]
async fn debug_does_not_list_the_cache() -> TestResult {
    let (db, conn) = registry_db(&[("acme", "tenant_acme", "active")]).await?;
    let registry = TenantRegistry::new(conn.clone());
    registry.resolve(&id("acme")).await?;

    let debug = format!("{registry:?}");
    assert!(debug.starts_with("TenantRegistry {"), "{debug}");
    assert!(debug.contains("cached_entries"), "{debug}");
    assert!(!debug.contains("tenant_acme"), "{debug}");
    finish(db, conn).await
}

/// `TenantDb`'s registry-aware entry points scope by id: an active tenant's
/// transaction reaches its schema; unknown and suspended ids never open one.
#[tokio::test]
async fn tenant_db_scopes_registered_tenants_by_id() -> TestResult {
    let (test_db, conn) = registry_db(&[
        ("acme", "tenant_acme", "active"),
        ("globex", "tenant_globex", "suspended"),
    ])
    .await?;
    conn.execute_unprepared(
        "CREATE SCHEMA tenant_acme; CREATE TABLE tenant_acme.marker (who text); \
         INSERT INTO tenant_acme.marker VALUES ('acme'); \
         CREATE SCHEMA tenant_globex; CREATE TABLE tenant_globex.marker (who text)",
    )
    .await?;
    let db = tenancy_sea_orm::TenantDb::new(conn.clone())?;
    let acme = TenantId::new("acme")?;

    let txn = db.begin_registered(&acme).await?;
    let row = txn
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT who FROM marker",
        ))
        .await?
        .ok_or("no marker row")?;
    assert_eq!(row.try_get::<String>("", "who")?, "acme");
    assert_eq!(txn.scope().tenant.as_ref(), Some(&acme));
    txn.commit().await?;

    let who: String = db
        .transaction_registered::<_, _, sea_orm::DbErr>(&acme, async move |txn| {
            let row = txn
                .query_one_raw(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Postgres,
                    "SELECT who FROM marker",
                ))
                .await?
                .ok_or_else(|| sea_orm::DbErr::Custom("no marker row".into()))?;
            row.try_get::<String>("", "who")
        })
        .await?;
    assert_eq!(who, "acme");

    match db.begin_registered(&TenantId::new("globex")?).await {
        Err(Error::Inaccessible { tenant, status }) => {
            assert_eq!(tenant.as_str(), "globex");
            assert_eq!(status, TenantStatus::Suspended);
        }
        other => panic!("a suspended tenant must not be scoped to: {other:?}"),
    }
    match db.begin_registered(&TenantId::new("initech")?).await {
        Err(Error::UnknownTenant { tenant }) => assert_eq!(tenant.as_str(), "initech"),
        other => panic!("an unknown tenant must not be scoped to: {other:?}"),
    }
    // The closure never runs for a refused tenant.
    let ran = std::sync::atomic::AtomicBool::new(false);
    let refused = db
        .transaction_registered::<_, _, sea_orm::DbErr>(&TenantId::new("globex")?, async |_| {
            ran.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        })
        .await;
    assert!(refused.is_err());
    assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));

    conn.close().await?;
    test_db.close().await?;
    Ok(())
}
