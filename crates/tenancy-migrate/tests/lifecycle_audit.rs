#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Lifecycle events and the audit table, against a real PostgreSQL server.
//!
//! "After commit" is checked from inside the handlers: each handler looks
//! at the registry (and the tenant's ledger) through ANOTHER connection,
//! opened on a thread of its own, so it sees only what has committed. Atomicity of the audit row with its
//! change is checked by making the commit fail after the row was written
//! (a deferred constraint trigger), and the reverse by making the audit row
//! fail (a check constraint on the audit table).

use std::error::Error as StdError;
use std::sync::{Arc, Mutex};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use sea_orm_migration::async_trait::async_trait;
use sea_orm_migration::{MigrationName, MigrationTrait, MigratorTrait, SchemaManager};
use tenancy_core::{SchemaName, TenantId, TenantStatus};
use tenancy_migrate::{
    DropConfirmation, DropMode, Error, FleetConfig, LifecycleAction, LifecycleEvent, MigrateAll,
    NewTenant, TenantFleet,
};
use tenancy_testing::TestDatabase;

type TestResult = Result<(), Box<dyn StdError>>;

macro_rules! sql_migration {
    ($ty:ident, $name:literal, up: $up:literal, down: $down:literal $(,)?) => {
        struct $ty;

        impl MigrationName for $ty {
            fn name(&self) -> &str {
                $name
            }
        }

        #[allow(elided_lifetimes_in_paths)]
        #[async_trait]
        impl MigrationTrait for $ty {
            async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                manager
                    .get_connection()
                    .execute_unprepared($up)
                    .await
                    .map(drop)
            }

            async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                manager
                    .get_connection()
                    .execute_unprepared($down)
                    .await
                    .map(drop)
            }
        }
    };
}

sql_migration!(
    CreateProjects,
    "m0001_create_projects",
    up: "CREATE TABLE projects (id serial PRIMARY KEY, name text NOT NULL)",
    down: "DROP TABLE projects",
);
sql_migration!(
    CreateTasks,
    "m0002_create_tasks",
    up: "CREATE TABLE tasks (id serial PRIMARY KEY, title text NOT NULL)",
    down: "DROP TABLE tasks",
);
sql_migration!(
    Broken,
    "m0002_broken",
    up: "ALTER TABLE no_such_table ADD COLUMN nothing int",
    down: "SELECT 1",
);

struct V1;

impl MigratorTrait for V1 {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateProjects)]
    }
}

struct V2;

impl MigratorTrait for V2 {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateProjects), Box::new(CreateTasks)]
    }
}

struct BrokenV2;

impl MigratorTrait for BrokenV2 {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateProjects), Box::new(Broken)]
    }
}

/// One event as a handler saw it, with what another connection saw of the
/// tenant at that moment.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    action: LifecycleAction,
    tenant: String,
    schema: String,
    /// `before` → `after` of the registry row, where the event has both.
    change: Option<(String, String)>,
    /// The migrations of a `Migrated` event.
    applied: Vec<String>,
    /// The committed registry row (`status/display name/domain`), or
    /// `absent`, read by another connection inside the handler.
    committed_row: String,
    /// The committed ledger of the tenant's schema, for `Migrated` events.
    committed_ledger: Vec<String>,
}

type Log = Arc<Mutex<Vec<Seen>>>;

fn row_text(record: &tenancy_core::registry::TenantRecord) -> String {
    format!(
        "{}/{}/{}",
        record.status,
        record.display_name,
        record.domain.as_deref().unwrap_or("")
    )
}

/// What another connection sees of `tenant` (and of its ledger, for a
/// migration event) right now.
async fn committed(
    observer: &DatabaseConnection,
    tenant: &TenantId,
    schema: &SchemaName,
    ledger: bool,
) -> (String, Vec<String>) {
    let row = observer
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT status || '/' || display_name || '/' || coalesce(domain, '') \
             FROM public.tenants WHERE tenant_id = $1",
            [tenant.as_str().into()],
        ))
        .await
        .unwrap()
        .map_or_else(
            || "absent".to_owned(),
            |row| row.try_get_by_index::<String>(0).unwrap(),
        );
    let versions = if ledger {
        strings(
            observer,
            &format!(
                "SELECT version FROM {}.seaql_migrations ORDER BY version",
                schema.quoted()
            ),
            vec![],
        )
        .await
        .unwrap()
    } else {
        Vec::new()
    };
    (row, versions)
}

/// Registers a handler on `fleet` that records every event in the log,
/// with what a new connection to `url` sees when it fires.
///
/// The look runs on a thread of its own with its own runtime and
/// connection, while the handler waits: nothing it does can depend on the
/// runtime the fleet's call is running on.
fn observed<M: MigratorTrait>(fleet: TenantFleet<M>, url: String, log: &Log) -> TenantFleet<M> {
    let log = Arc::clone(log);
    fleet.on_lifecycle(move |event| {
        let is_migration = matches!(event, LifecycleEvent::Migrated { .. });
        let (url, tenant, schema) = (url.clone(), event.tenant().clone(), event.schema().clone());
        let (committed_row, committed_ledger) = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let observer = sea_orm::Database::connect(url.as_str()).await.unwrap();
                let seen = committed(&observer, &tenant, &schema, is_migration).await;
                observer.close().await.unwrap();
                seen
            })
        })
        .join()
        .unwrap();
        let change = match event {
            LifecycleEvent::Suspended { before, after, .. }
            | LifecycleEvent::Resumed { before, after, .. }
            | LifecycleEvent::Renamed { before, after, .. }
            | LifecycleEvent::DomainChanged { before, after, .. } => {
                Some((row_text(before), row_text(after)))
            }
            LifecycleEvent::Dropped {
                before, outcome, ..
            } => Some((row_text(before), row_text(outcome.record()))),
            _ => None,
        };
        let applied = match event {
            LifecycleEvent::Migrated { applied, .. }
            | LifecycleEvent::Created { applied, .. }
            | LifecycleEvent::Adopted { applied, .. } => applied.to_vec(),
            _ => Vec::new(),
        };
        log.lock().unwrap().push(Seen {
            action: event.action(),
            tenant: event.tenant().to_string(),
            schema: event.schema().to_string(),
            change,
            applied,
            committed_row,
            committed_ledger,
        });
    })
}

/// The events logged since the last call.
fn take(log: &Log) -> Vec<Seen> {
    std::mem::take(&mut *log.lock().unwrap())
}

async fn strings(
    conn: &DatabaseConnection,
    sql: &str,
    values: Vec<sea_orm::Value>,
) -> Result<Vec<String>, DbErr> {
    conn.query_all_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        values,
    ))
    .await?
    .iter()
    .map(|row| row.try_get_by_index::<String>(0))
    .collect()
}

/// The audit table's rows, oldest first, as `action outcome tenant actor`.
async fn audit_rows(conn: &DatabaseConnection) -> Result<Vec<String>, DbErr> {
    strings(
        conn,
        "SELECT action || ' ' || outcome || ' ' || tenant_id || ' ' || actor \
         FROM public.tenants_audit ORDER BY id",
        vec![],
    )
    .await
}

fn id(input: &str) -> TenantId {
    TenantId::new(input).unwrap()
}

fn hard(tenant: &str) -> DropMode {
    DropMode::Hard(DropConfirmation::new(tenant))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_lifecycle_call_tells_one_event_after_its_commit() -> TestResult {
    let db = TestDatabase::create().await?;
    let conn = db.connect().await?;
    let log = Log::default();
    let fleet = observed(
        TenantFleet::<V1>::new(conn.clone()),
        db.url().to_owned(),
        &log,
    );
    fleet.install().await?;
    let acme = id("acme");

    fleet
        .create(&acme, NewTenant::new().display_name("Acme"))
        .await?;
    let seen = take(&log);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].action, LifecycleAction::Created);
    assert_eq!(seen[0].tenant, "acme");
    assert_eq!(seen[0].schema, "tenant_acme");
    assert_eq!(seen[0].applied, ["m0001_create_projects"]);
    assert_eq!(seen[0].committed_row, "active/Acme/");

    fleet.rename(&acme, "Acme Corp").await?;
    let seen = take(&log);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].action, LifecycleAction::Renamed);
    assert_eq!(
        seen[0].change,
        Some(("active/Acme/".into(), "active/Acme Corp/".into()))
    );
    assert_eq!(seen[0].committed_row, "active/Acme Corp/");

    fleet
        .set_domain(&acme, Some("acme.example.com".into()))
        .await?;
    let seen = take(&log);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].action, LifecycleAction::DomainChanged);
    assert_eq!(seen[0].committed_row, "active/Acme Corp/acme.example.com");

    fleet.suspend(&acme).await?;
    let seen = take(&log);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].action, LifecycleAction::Suspended);
    assert_eq!(
        seen[0].change,
        Some((
            "active/Acme Corp/acme.example.com".into(),
            "suspended/Acme Corp/acme.example.com".into()
        ))
    );
    assert_eq!(
        seen[0].committed_row,
        "suspended/Acme Corp/acme.example.com"
    );

    // No change, still one event, with before == after.
    fleet.suspend(&acme).await?;
    let seen = take(&log);
    assert_eq!(seen.len(), 1, "{seen:?}");
    let (before, after) = seen[0].change.clone().unwrap();
    assert_eq!(before, after);

    fleet.resume(&acme).await?;
    let seen = take(&log);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].action, LifecycleAction::Resumed);
    assert_eq!(seen[0].committed_row, "active/Acme Corp/acme.example.com");

    conn.execute_unprepared("CREATE SCHEMA legacy").await?;
    fleet
        .adopt(&id("legacy"), SchemaName::new("legacy")?, NewTenant::new())
        .await?;
    let seen = take(&log);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].action, LifecycleAction::Adopted);
    assert_eq!(seen[0].schema, "legacy");
    assert_eq!(seen[0].committed_row, "active//");

    // A new build: one Migrated event per tenant that had work, each seen
    // committed (its ledger has the new migration) from another connection.
    let v2 = observed(
        TenantFleet::<V2>::new(conn.clone()),
        db.url().to_owned(),
        &log,
    );
    v2.migrate_all(MigrateAll::new()).await?.into_result()?;
    let mut seen = take(&log);
    seen.sort_by(|a, b| a.tenant.cmp(&b.tenant));
    assert_eq!(seen.len(), 2, "{seen:?}");
    for (seen, tenant) in seen.iter().zip(["acme", "legacy"]) {
        assert_eq!(seen.action, LifecycleAction::Migrated);
        assert_eq!(seen.tenant, tenant);
        assert_eq!(seen.applied, ["m0002_create_tasks"]);
        assert_eq!(
            seen.committed_ledger,
            ["m0001_create_projects", "m0002_create_tasks"]
        );
    }
    // Nothing pending: no events.
    v2.migrate_all(MigrateAll::new()).await?.into_result()?;
    v2.migrate_tenant(&acme).await?;
    assert_eq!(take(&log), []);

    v2.rollback_tenant(&acme, 1).await?;
    let seen = take(&log);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].action, LifecycleAction::RolledBack);
    assert_eq!(seen[0].applied, ["m0002_create_tasks"]);
    assert_eq!(seen[0].committed_ledger, ["m0001_create_projects"]);

    fleet.drop_tenant(&acme, DropMode::Soft).await?;
    let seen = take(&log);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].action, LifecycleAction::Dropped);
    assert_eq!(
        seen[0].change,
        Some((
            "active/Acme Corp/acme.example.com".into(),
            "deleted/Acme Corp/acme.example.com".into()
        ))
    );
    assert_eq!(seen[0].committed_row, "deleted/Acme Corp/acme.example.com");

    fleet.drop_tenant(&acme, hard("acme")).await?;
    let seen = take(&log);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].action, LifecycleAction::Dropped);
    assert_eq!(seen[0].committed_row, "absent");

    // A clone made after registering shares the handlers.
    fleet.clone().suspend(&id("legacy")).await?;
    assert_eq!(take(&log).len(), 1);

    conn.close().await?;
    db.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_calls_tell_nothing_and_are_audited_as_failed() -> TestResult {
    let db = TestDatabase::create().await?;
    let conn = db.connect().await?;
    let log = Log::default();
    let config = FleetConfig::default().with_audit(true);
    let fleet = observed(
        TenantFleet::<V1>::with_config(conn.clone(), config.clone()),
        db.url().to_owned(),
        &log,
    );
    fleet.install().await?;
    let (acme, ghost, globex) = (id("acme"), id("ghost"), id("globex"));
    fleet
        .create(&acme, NewTenant::new().domain("acme.example.com"))
        .await?;
    fleet.create(&globex, NewTenant::new()).await?;
    fleet.drop_tenant(&globex, DropMode::Soft).await?;
    take(&log);
    let before = audit_rows(&conn).await?;

    let failures: Vec<(LifecycleAction, &TenantId, Error)> = vec![
        (
            LifecycleAction::Created,
            &acme,
            fleet.create(&acme, NewTenant::new()).await.unwrap_err(),
        ),
        (
            LifecycleAction::Suspended,
            &ghost,
            fleet.suspend(&ghost).await.unwrap_err(),
        ),
        (
            LifecycleAction::Resumed,
            &globex,
            fleet.resume(&globex).await.unwrap_err(),
        ),
        (
            LifecycleAction::Renamed,
            &ghost,
            fleet.rename(&ghost, "Ghost").await.unwrap_err(),
        ),
        (
            LifecycleAction::DomainChanged,
            &globex,
            fleet
                .set_domain(&globex, Some("acme.example.com".into()))
                .await
                .unwrap_err(),
        ),
        (
            LifecycleAction::Dropped,
            &acme,
            fleet.drop_tenant(&acme, hard("globex")).await.unwrap_err(),
        ),
        (
            LifecycleAction::Migrated,
            &acme,
            observed(
                TenantFleet::<BrokenV2>::with_config(conn.clone(), config.clone()),
                db.url().to_owned(),
                &log,
            )
            .migrate_tenant(&acme)
            .await
            .unwrap_err(),
        ),
    ];
    assert!(matches!(failures[2].2, Error::TenantDeleted { .. }));
    assert!(matches!(failures[4].2, Error::DomainTaken { .. }));
    assert_eq!(take(&log), [], "a failed call told an event");

    // One `failed` row per failed call, after the rows that were there.
    let rows = audit_rows(&conn).await?;
    assert_eq!(&rows[..before.len()], &before[..]);
    let expected: Vec<String> = failures
        .iter()
        .map(|(action, tenant, _)| format!("{action} failed {tenant} postgres"))
        .collect();
    assert_eq!(&rows[before.len()..], &expected[..]);
    // The error is in the detail, as text.
    let errors = strings(
        &conn,
        "SELECT detail ->> 'error' FROM public.tenants_audit \
         WHERE outcome = 'failed' ORDER BY id",
        vec![],
    )
    .await?;
    let messages: Vec<String> = failures.iter().map(|(_, _, e)| e.to_string()).collect();
    assert_eq!(errors, messages);
    // The resume of a deleted tenant changed nothing.
    assert_eq!(
        fleet.get(&globex).await?.unwrap().status,
        TenantStatus::Deleted
    );

    conn.close().await?;
    db.close().await?;
    Ok(())
}

#[tokio::test]
async fn audit_rows_record_each_change_with_actor_and_detail() -> TestResult {
    let db = TestDatabase::create().await?;
    let conn = db.connect().await?;
    // Not audited: nothing written, though the table exists.
    let quiet = TenantFleet::<V2>::new(conn.clone());
    quiet.install().await?;
    quiet.create(&id("quiet"), NewTenant::new()).await?;
    assert_eq!(audit_rows(&conn).await?, Vec::<String>::new());

    let fleet =
        TenantFleet::<V2>::with_config(conn.clone(), FleetConfig::default().with_audit(true));
    let acme = id("acme");
    let alice = fleet.as_actor("alice@example.com");
    alice
        .create(&acme, NewTenant::new().display_name("Acme"))
        .await?;
    fleet.suspend(&acme).await?;
    alice.resume(&acme).await?;
    fleet.rollback_tenant(&acme, 1).await?;
    fleet.migrate_all(MigrateAll::new()).await?.into_result()?;
    fleet.drop_tenant(&acme, hard("acme")).await?;
    assert_eq!(
        audit_rows(&conn).await?,
        [
            "created succeeded acme alice@example.com",
            "suspended succeeded acme postgres",
            "resumed succeeded acme alice@example.com",
            "rolled_back succeeded acme postgres",
            "migrated succeeded acme postgres",
            "dropped succeeded acme postgres",
        ]
    );
    let details = strings(
        &conn,
        "SELECT detail::text FROM public.tenants_audit ORDER BY id",
        vec![],
    )
    .await?;
    let details: Vec<serde_json::Value> = details
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(details[0]["schema"], "tenant_acme");
    assert_eq!(details[0]["display_name"], "Acme");
    assert_eq!(
        details[0]["migrations"],
        serde_json::json!(["m0001_create_projects", "m0002_create_tasks"])
    );
    assert_eq!(
        details[1],
        serde_json::json!({
            "schema": "tenant_acme",
            "before": {"status": "active"},
            "after": {"status": "suspended"},
        })
    );
    assert_eq!(
        details[3]["migrations"],
        serde_json::json!(["m0002_create_tasks"])
    );
    assert_eq!(details[5]["mode"], "hard");
    assert_eq!(details[5]["schema_dropped"], true);
    // The server's clock, in order.
    let ordered = strings(
        &conn,
        "SELECT (bool_and(at <= now() AND at > now() - interval '1 hour'))::text \
         FROM public.tenants_audit",
        vec![],
    )
    .await?;
    assert_eq!(ordered, ["true"]);

    conn.close().await?;
    db.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_and_its_audit_row_commit_together_or_not_at_all() -> TestResult {
    let db = TestDatabase::create().await?;
    let conn = db.connect().await?;
    let log = Log::default();
    let fleet = observed(
        TenantFleet::<V1>::with_config(conn.clone(), FleetConfig::default().with_audit(true)),
        db.url().to_owned(),
        &log,
    );
    fleet.install().await?;
    let acme = id("acme");
    fleet
        .create(&acme, NewTenant::new().display_name("Acme"))
        .await?;
    take(&log);

    // The commit fails after the audit row was written: a deferred
    // constraint trigger refuses one display name at commit time.
    conn.execute_unprepared(
        "CREATE FUNCTION public.refuse_forbidden() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF NEW.display_name = 'Forbidden' THEN
                 RAISE EXCEPTION 'display name refused at commit';
             END IF;
             RETURN NULL;
         END $$;
         CREATE CONSTRAINT TRIGGER refuse_forbidden AFTER UPDATE ON public.tenants
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
             EXECUTE FUNCTION public.refuse_forbidden();",
    )
    .await?;
    let refused = fleet.rename(&acme, "Forbidden").await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(take(&log), []);
    assert_eq!(fleet.get(&acme).await?.unwrap().display_name, "Acme");
    assert_eq!(
        audit_rows(&conn).await?,
        [
            "created succeeded acme postgres",
            "renamed failed acme postgres"
        ]
    );

    // The audit row is refused: the change goes with it.
    conn.execute_unprepared(
        "ALTER TABLE public.tenants_audit \
         ADD CONSTRAINT no_suspensions CHECK (action <> 'suspended')",
    )
    .await?;
    let refused = fleet.suspend(&acme).await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(take(&log), []);
    assert_eq!(
        fleet.get(&acme).await?.unwrap().status,
        TenantStatus::Active
    );

    // A migration whose audit row is refused is rolled back with it.
    conn.execute_unprepared(
        "ALTER TABLE public.tenants_audit \
         ADD CONSTRAINT no_migrations CHECK (action <> 'migrated')",
    )
    .await?;
    let v2 = observed(
        TenantFleet::<V2>::with_config(conn.clone(), FleetConfig::default().with_audit(true)),
        db.url().to_owned(),
        &log,
    );
    let report = v2.migrate_all(MigrateAll::new()).await?;
    assert!(!report.is_success());
    assert_eq!(take(&log), []);
    assert_eq!(
        strings(
            &conn,
            "SELECT version FROM tenant_acme.seaql_migrations ORDER BY version",
            vec![]
        )
        .await?,
        ["m0001_create_projects"]
    );
    assert_eq!(
        strings(
            &conn,
            "SELECT count(*)::text FROM pg_tables WHERE schemaname = 'tenant_acme' \
             AND tablename = 'tasks'",
            vec![]
        )
        .await?,
        ["0"]
    );

    conn.close().await?;
    db.close().await?;
    Ok(())
}

#[tokio::test]
async fn hostile_names_are_stored_as_values() -> TestResult {
    let db = TestDatabase::create().await?;
    let conn = db.connect().await?;
    let fleet =
        TenantFleet::<V1>::with_config(conn.clone(), FleetConfig::default().with_audit(true));
    fleet.install().await?;
    let acme = id("acme");
    let hostile = "x'); DROP TABLE public.tenants; --\"}\\ \n $1 ";
    let actor = "mallory'); DELETE FROM public.tenants_audit; --";
    fleet
        .as_actor(actor)
        .create(&acme, NewTenant::new().display_name(hostile))
        .await?;
    fleet.as_actor(actor).rename(&acme, "Acme").await?;
    let rows = conn
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT actor, detail ->> 'display_name' AS created, \
             detail -> 'before' ->> 'display_name' AS renamed_from \
             FROM public.tenants_audit ORDER BY id",
        ))
        .await?;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].try_get::<String>("", "actor")?, actor);
    assert_eq!(rows[0].try_get::<String>("", "created")?, hostile);
    assert_eq!(rows[1].try_get::<String>("", "renamed_from")?, hostile);
    // The registry is still there, with the tenant.
    assert_eq!(fleet.get(&acme).await?.unwrap().display_name, "Acme");

    conn.close().await?;
    db.close().await?;
    Ok(())
}
