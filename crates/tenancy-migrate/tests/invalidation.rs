#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Lifecycle changes reach running applications' registry caches: in the
//! same process through a shared `TenantRegistry`, in other processes through
//! `NOTIFY` and `TenantRegistry::listen`. "Another process" is a second,
//! independent pool on the same database, with its own registry cache; the
//! default 30 s TTL stays on throughout, so a refusal seen within the test's
//! deadline can only come from invalidation.

use std::error::Error as StdError;
use std::future::Future;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection};
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use tenancy_core::{TenantId, TenantStatus};
use tenancy_migrate::{DropConfirmation, DropMode, Error, NewTenant, TenantFleet};
use tenancy_sea_orm::{LISTENER_APPLICATION_NAME, RegistryListener, TenantDb, TenantRegistry};
use tenancy_testing::TestDatabase;

type TestResult = Result<(), Box<dyn StdError>>;

/// How long a cross-process change may take before the test fails. The
/// claim is "well under a second"; the observed delay is printed, and this
/// generous deadline only keeps a loaded CI machine from failing the run.
const DEADLINE: Duration = Duration::from_secs(5);

struct NoMigrations;

impl MigratorTrait for NoMigrations {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        Vec::new()
    }
}

fn id(raw: &str) -> TenantId {
    raw.parse().unwrap()
}

/// Whether `registry` refuses `tenant` as suspended (or another inactive status).
async fn refused(registry: &TenantRegistry, tenant: &TenantId) -> bool {
    matches!(
        registry.resolve(tenant).await,
        Err(tenancy_sea_orm::Error::Inaccessible { .. })
    )
}

/// Polls `check` every 5 ms until it holds or [`DEADLINE`] passes; the time
/// it took, or `None`.
async fn within_deadline<F, Fut>(mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < DEADLINE {
        if check().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

#[allow(clippy::print_stderr)] // the observed delay is the measurement the issue asks for
fn report(what: &str, delay: Duration) {
    eprintln!("{what}: {:.1} ms", delay.as_secs_f64() * 1000.0);
}

/// A database with the registry installed and `tenants` created (active).
async fn fleet_db(
    tenants: &[&str],
) -> Result<(TestDatabase, DatabaseConnection, TenantFleet<NoMigrations>), Box<dyn StdError>> {
    let db = TestDatabase::create().await?;
    let conn = db.connect().await?;
    let fleet = TenantFleet::<NoMigrations>::new(conn.clone());
    fleet.install().await?;
    for tenant in tenants {
        fleet.create(&id(tenant), NewTenant::new()).await?;
    }
    Ok((db, conn, fleet))
}

#[tokio::test]
async fn in_process_lifecycle_calls_invalidate_the_shared_cache() -> TestResult {
    let (db, conn, fleet) = fleet_db(&["acme"]).await?;
    let app = TenantDb::new(conn.clone())?;
    let fleet = fleet.with_registry(app.registry().clone());
    let acme = id("acme");

    app.resolve(&acme).await?; // cached for 30 s
    fleet.suspend(&acme).await?;
    assert!(refused(app.registry(), &acme).await, "suspend not seen");

    fleet.resume(&acme).await?;
    app.resolve(&acme).await?;

    fleet.rename(&acme, "Acme Corp").await?;
    let entry = app.registry().entry(&acme).await?.unwrap();
    assert_eq!(entry.display_name, "Acme Corp");

    // An unknown id is cached as unknown; creating it clears that.
    let newco = id("newco");
    assert!(app.registry().entry(&newco).await?.is_none());
    fleet.create(&newco, NewTenant::new()).await?;
    app.resolve(&newco).await?;

    fleet.drop_tenant(&newco, DropMode::Soft).await?;
    assert!(refused(app.registry(), &newco).await, "soft drop not seen");

    fleet
        .drop_tenant(&acme, DropMode::Hard(DropConfirmation::new("acme")))
        .await?;
    assert!(matches!(
        app.resolve(&acme).await,
        Err(tenancy_sea_orm::Error::UnknownTenant { .. })
    ));

    // A failed call changes nothing and does not disturb the cache's answer.
    let err = fleet.suspend(&acme).await.unwrap_err();
    assert!(matches!(err, Error::UnknownTenant { .. }), "{err}");

    conn.close().await?;
    db.close().await?;
    Ok(())
}

#[tokio::test]
async fn the_shared_registry_sets_the_fleets_table() -> TestResult {
    let db = TestDatabase::create().await?;
    let conn = db.connect().await?;
    conn.execute_unprepared("CREATE SCHEMA control").await?;
    let registry = TenantRegistry::with_config(
        conn.clone(),
        tenancy_sea_orm::RegistryConfig::default().with_table(
            tenancy_core::SharedSchema::new("control")?,
            tenancy_core::TableName::new("registry")?,
        ),
    );
    let fleet = TenantFleet::<NoMigrations>::new(conn.clone()).with_registry(registry.clone());
    assert_eq!(
        fleet.config().registry().qualified_table(),
        r#""control"."registry""#
    );
    fleet.install().await?;
    fleet.create(&id("acme"), NewTenant::new()).await?;
    registry.resolve(&id("acme")).await?;
    conn.close().await?;
    db.close().await?;
    Ok(())
}

/// Pool A runs the fleet (the admin process); pool B serves the app with a
/// listening registry; pool B's second registry does not listen.
struct TwoProcesses {
    db: TestDatabase,
    admin: DatabaseConnection,
    fleet: TenantFleet<NoMigrations>,
    app: DatabaseConnection,
    listening: TenantRegistry,
    listener: RegistryListener,
    deaf: TenantRegistry,
}

impl TwoProcesses {
    async fn start(tenants: &[&str]) -> Result<Self, Box<dyn StdError>> {
        let (db, admin, fleet) = fleet_db(tenants).await?;
        let app = db.connect().await?;
        let listening = TenantRegistry::new(app.clone());
        let listener = listening.listen(db.url()).await?;
        let deaf = TenantRegistry::new(app.clone());
        Ok(Self {
            db,
            admin,
            fleet,
            app,
            listening,
            listener,
            deaf,
        })
    }

    async fn close(self) -> TestResult {
        drop(self.listener);
        self.app.close().await?;
        self.admin.close().await?;
        self.db.close().await?;
        Ok(())
    }
}

#[tokio::test]
async fn a_suspend_in_one_process_is_refused_in_another_within_a_moment() -> TestResult {
    let p = TwoProcesses::start(&["globex", "acme"]).await?;
    let globex = id("globex");
    p.listening.resolve(&globex).await?;
    p.deaf.resolve(&globex).await?;

    let before = p.listener.status().notifications;
    p.fleet.suspend(&globex).await?;
    // Timed from the commit's return: the delay a running app adds.
    let delay = within_deadline(|| refused(&p.listening, &globex)).await;
    let delay = delay.expect("the listening process still serves globex after 5 s");
    report("suspend committed in pool A -> refused in pool B", delay);
    assert_eq!(p.listener.status().notifications, before + 1);
    // Without the listener the cached row is still served (30 s TTL): it was
    // the notification, not a lookup by chance, that made B refuse.
    p.deaf.resolve(&globex).await?;

    // A failed lifecycle call sends nothing: notifications arrive in commit
    // order, so one from the failed create would be counted before acme's.
    let err = p.fleet.create(&globex, NewTenant::new()).await.unwrap_err();
    assert!(matches!(err, Error::TenantExists { .. }), "{err}");
    let acme = id("acme");
    p.listening.resolve(&acme).await?;
    p.fleet.suspend(&acme).await?;
    within_deadline(|| refused(&p.listening, &acme))
        .await
        .expect("acme's suspension never arrived");
    assert_eq!(p.listener.status().notifications, before + 2);

    // Resuming reaches it the same way.
    p.fleet.resume(&globex).await?;
    within_deadline(|| async { p.listening.resolve(&globex).await.is_ok() })
        .await
        .expect("globex's resumption never arrived");
    p.close().await
}

#[tokio::test]
async fn a_killed_listener_reconnects_and_forgets_what_it_missed() -> TestResult {
    let p = TwoProcesses::start(&["acme", "initech"]).await?;
    let (acme, initech) = (id("acme"), id("initech"));
    p.listening.resolve(&acme).await?;
    p.listening.resolve(&initech).await?;
    assert_eq!(p.listener.status().sessions, 1);

    let killed = p
        .admin
        .execute_unprepared(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = '{LISTENER_APPLICATION_NAME}' \
             AND datname = current_database()"
        ))
        .await?;
    assert_eq!(killed.rows_affected(), 1, "exactly our listener's backend");
    // A change nobody announces (written by hand): like a notification sent
    // while the listener was down, it can only be caught by the reconnect's
    // full invalidation, whichever side of the reconnect it lands on.
    p.admin
        .execute_unprepared(&format!(
            "UPDATE public.tenants SET status = '{}' WHERE tenant_id = 'acme'",
            TenantStatus::Suspended.as_str()
        ))
        .await?;

    let status = tokio::time::timeout(
        DEADLINE,
        p.listener.wait_until(|s| s.listening && s.sessions >= 2),
    )
    .await
    .expect("the listener did not reconnect within 5 s");
    assert_eq!(status.sessions, 2);
    assert!(
        refused(&p.listening, &acme).await,
        "a change made while the listener was down is still served from the cache"
    );

    // Notifications reach the new connection.
    p.listening.resolve(&initech).await?;
    p.fleet.suspend(&initech).await?;
    let delay = within_deadline(|| refused(&p.listening, &initech))
        .await
        .expect("a notification after the reconnect never arrived");
    report(
        "after a reconnect: suspend in pool A -> refused in pool B",
        delay,
    );
    p.close().await
}

#[tokio::test]
async fn a_listener_url_that_cannot_connect_fails_at_once() -> TestResult {
    let db = TestDatabase::create().await?;
    let conn = db.connect().await?;
    let registry = TenantRegistry::new(conn.clone());
    let err = registry
        .listen("postgres://postgres@127.0.0.1:1/nowhere")
        .await
        .unwrap_err();
    assert_eq!(err.endpoint.as_deref(), Some("127.0.0.1:1"), "{err}");
    let err = registry.listen("postgres://[::1").await.unwrap_err();
    assert!(
        matches!(err.cause, tenancy_sea_orm::ConnectCause::InvalidUrl(_)),
        "{err}"
    );
    conn.close().await?;
    db.close().await?;
    Ok(())
}
