#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The tenant lifecycle against a real PostgreSQL server: every test creates
//! its own database with `tenancy_testing`, so tests are independent and run
//! in parallel. Nothing is mocked; every assertion reads the catalog or the
//! registry back.

use std::error::Error as StdError;
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, TransactionTrait};
use sea_orm_migration::async_trait::async_trait;
use sea_orm_migration::{MigrationName, MigrationTrait, MigratorTrait, SchemaManager};
use tenancy_core::{AdvisoryLock, SchemaName, SharedSchema, TenantId, TenantStatus};
use tenancy_migrate::{
    DropConfirmation, DropMode, DropOutcome, Error, FleetConfig, NewTenant, StatusFilter,
    TenantFleet,
};
use tenancy_sea_orm::TenantDb;
use tenancy_testing::TestDatabase;

type TestResult = Result<(), Box<dyn StdError>>;

// ---------------------------------------------------------------------------
// Migrators
// ---------------------------------------------------------------------------

/// A migration that runs one SQL script up and one down. Names are given by
/// hand: `DeriveMigrationName` names a migration after its source file, and
/// every migration here lives in this one file.
macro_rules! sql_migration {
    ($ty:ident, $name:literal, up: $up:literal, down: $down:literal $(,)?) => {
        struct $ty;

        impl MigrationName for $ty {
            fn name(&self) -> &str {
                $name
            }
        }

        // `MigrationTrait` elides `SchemaManager`'s lifetime; naming it here
        // would make it early-bound under `async_trait` and mismatch the trait.
        #[allow(elided_lifetimes_in_paths)]
        #[async_trait]
        impl MigrationTrait for $ty {
            async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                // Unqualified: must land in the tenant's schema.
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
    up: "CREATE TABLE tasks (id serial PRIMARY KEY, \
         project_id int NOT NULL REFERENCES projects (id), title text NOT NULL)",
    down: "DROP TABLE tasks",
);
sql_migration!(
    AddProjectCode,
    "m0003_add_project_code",
    up: "ALTER TABLE projects ADD COLUMN code text",
    down: "ALTER TABLE projects DROP COLUMN code",
);
sql_migration!(
    Broken,
    "m0003_broken",
    up: "ALTER TABLE no_such_table ADD COLUMN nothing int",
    down: "SELECT 1",
);

const VERSIONS: [&str; 3] = [
    "m0001_create_projects",
    "m0002_create_tasks",
    "m0003_add_project_code",
];

/// The tenant migrator of these tests.
struct TenantMigrator;

impl MigratorTrait for TenantMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateProjects),
            Box::new(CreateTasks),
            Box::new(AddProjectCode),
        ]
    }
}

/// Two good migrations, then one that fails.
struct FailingMigrator;

impl MigratorTrait for FailingMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateProjects),
            Box::new(CreateTasks),
            Box::new(Broken),
        ]
    }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A fleet on `conn` (a fresh database's, from [`TestDatabase::with`]) with
/// the registry installed.
async fn installed_fleet(
    conn: &DatabaseConnection,
) -> Result<TenantFleet<TenantMigrator>, Box<dyn StdError>> {
    let fleet = TenantFleet::<TenantMigrator>::new(conn.clone());
    fleet.install().await?;
    Ok(fleet)
}

async fn finish<M: MigratorTrait>(db: TestDatabase, fleet: TenantFleet<M>) -> TestResult {
    fleet.connection().clone().close().await?;
    db.close().await?;
    Ok(())
}

fn id(input: &str) -> TenantId {
    TenantId::new(input).unwrap()
}

fn schema(input: &str) -> SchemaName {
    SchemaName::new(input).unwrap()
}

fn hard(tenant: &str) -> DropMode {
    DropMode::Hard(DropConfirmation::new(tenant))
}

/// The first column of every row of `sql`, as text.
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

async fn schema_exists(conn: &DatabaseConnection, name: &str) -> Result<bool, DbErr> {
    let found = strings(
        conn,
        "SELECT schema_name::text FROM information_schema.schemata WHERE schema_name = $1",
        vec![name.into()],
    )
    .await?;
    Ok(!found.is_empty())
}

/// The schemas holding a table called `table`, sorted.
async fn schemas_with_table(conn: &DatabaseConnection, table: &str) -> Result<Vec<String>, DbErr> {
    strings(
        conn,
        "SELECT table_schema::text FROM information_schema.tables WHERE table_name = $1 ORDER BY 1",
        vec![table.into()],
    )
    .await
}

/// The versions recorded in `schema`'s own `seaql_migrations`.
async fn versions_in(conn: &DatabaseConnection, schema: &SchemaName) -> Result<Vec<String>, DbErr> {
    strings(
        conn,
        &format!(
            "SELECT version FROM {}.seaql_migrations ORDER BY version",
            schema.quoted()
        ),
        vec![],
    )
    .await
}

async fn registry_ids(conn: &DatabaseConnection) -> Result<Vec<String>, DbErr> {
    strings(
        conn,
        "SELECT tenant_id FROM public.tenants ORDER BY 1",
        vec![],
    )
    .await
}

/// Whether the SeaORM layer lets a transaction open for `tenant` (the
/// registry cache is invalidated first, as lifecycle callers in-process do).
/// The transaction is dropped unused, which rolls it back.
async fn access(db: &TenantDb, tenant: &TenantId) -> Result<(), tenancy_sea_orm::Error> {
    db.registry().invalidate(tenant);
    db.begin_registered(tenant).await.map(drop)
}

// ---------------------------------------------------------------------------
// install
// ---------------------------------------------------------------------------

#[tokio::test]
async fn install_is_idempotent_and_creates_the_registry_columns() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let fleet = installed_fleet(conn).await?;
        fleet.install().await?;
        fleet.install().await?;

        let columns = strings(
            fleet.connection(),
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name = 'tenants' ORDER BY ordinal_position",
            vec![],
        )
        .await?;
        assert_eq!(
            columns,
            [
                "tenant_id",
                "schema_name",
                "display_name",
                "domain",
                "status",
                "settings",
                "created_at",
                "updated_at",
                "placement",
                "moving_to",
                "status_before_move"
            ]
        );
        let versions = strings(
            fleet.connection(),
            "SELECT version FROM public.tenancy_registry_migrations ORDER BY version",
            vec![],
        )
        .await?;
        assert_eq!(
            versions,
            [
                "0001_create_registry",
                "0002_create_spares",
                "0003_add_placement",
                "0004_create_audit"
            ]
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn install_from_concurrent_tasks_creates_the_registry_once() -> TestResult {
    let db = TestDatabase::create().await?;
    let fleet = TenantFleet::<TenantMigrator>::new(db.connect().await?);
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let fleet = fleet.clone();
            tokio::spawn(async move { fleet.install().await })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let tables = schemas_with_table(fleet.connection(), "tenants").await?;
    assert_eq!(tables, ["public"]);
    let versions = strings(
        fleet.connection(),
        "SELECT version FROM public.tenancy_registry_migrations ORDER BY version",
        vec![],
    )
    .await?;
    assert_eq!(
        versions,
        [
            "0001_create_registry",
            "0002_create_spares",
            "0003_add_placement",
            "0004_create_audit"
        ]
    );
    finish(db, fleet).await
}

#[tokio::test]
async fn install_upgrades_a_registry_made_by_an_earlier_version_keeping_its_rows() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let fleet = installed_fleet(conn).await?;
        fleet.create(&"acme".parse()?, NewTenant::new()).await?;
        // As an earlier version left it: no placement columns, no 0003 row.
        conn.execute_unprepared(
            "ALTER TABLE public.tenants DROP COLUMN placement, DROP COLUMN moving_to, \
             DROP COLUMN status_before_move; \
             DELETE FROM public.tenancy_registry_migrations WHERE version = '0003_add_placement'",
        )
        .await?;
        fleet.install().await?;
        let placement = strings(
            conn,
            "SELECT tenant_id || ':' || coalesce(placement, 'here') FROM public.tenants",
            vec![],
        )
        .await?;
        assert_eq!(placement, ["acme:here"]);
        Ok(())
    })
    .await
}

// ---------------------------------------------------------------------------
// create
// ---------------------------------------------------------------------------

#[tokio::test]
async fn create_builds_the_schema_its_tables_and_its_own_history() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let fleet = installed_fleet(conn).await?;
        let conn = fleet.connection().clone();
        let acme = id("acme-corp");
        let record = fleet
            .create(
                &acme,
                NewTenant::new()
                    .display_name("Acme")
                    .domain("acme.example.com"),
            )
            .await?;

        assert_eq!(record.id, acme);
        assert_eq!(record.schema, schema("tenant_acme_corp"));
        assert_eq!(record.display_name, "Acme");
        assert_eq!(record.domain.as_deref(), Some("acme.example.com"));
        assert_eq!(record.status, TenantStatus::Active);
        assert_eq!(fleet.get(&acme).await?, Some(record.clone()));

        assert!(schema_exists(&conn, "tenant_acme_corp").await?);
        // History, tables and the last migration's column: all in the tenant's
        // schema, none in public.
        assert_eq!(
            schemas_with_table(&conn, "seaql_migrations").await?,
            ["tenant_acme_corp"]
        );
        assert_eq!(versions_in(&conn, &record.schema).await?, VERSIONS);
        assert_eq!(
            schemas_with_table(&conn, "projects").await?,
            ["tenant_acme_corp"]
        );
        assert_eq!(
            schemas_with_table(&conn, "tasks").await?,
            ["tenant_acme_corp"]
        );
        let code = strings(
            &conn,
            "SELECT table_schema::text FROM information_schema.columns \
             WHERE table_name = 'projects' AND column_name = 'code'",
            vec![],
        )
        .await?;
        assert_eq!(code, ["tenant_acme_corp"]);

        // The SeaORM layer serves it at once.
        let tenant_db = TenantDb::new(conn.clone())?;
        let txn = tenant_db.begin_registered(&acme).await?;
        txn.execute_unprepared("INSERT INTO projects (name, code) VALUES ('Rocket', 'R1')")
            .await?;
        txn.commit().await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn create_with_a_failing_migration_leaves_nothing_behind() -> TestResult {
    let db = TestDatabase::create().await?;
    let fleet = TenantFleet::<FailingMigrator>::new(db.connect().await?);
    fleet.install().await?;
    let conn = fleet.connection().clone();

    let err = fleet
        .create(&id("acme"), NewTenant::new().display_name("Acme"))
        .await
        .unwrap_err();
    match &err {
        Error::Migration {
            tenant, schema: s, ..
        } => {
            assert_eq!(tenant.as_str(), "acme");
            assert_eq!(s.as_str(), "tenant_acme");
        }
        other => panic!("expected a migration error, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("tenant acme"), "{message}");
    assert!(message.contains("no_such_table"), "{message}");

    assert!(!schema_exists(&conn, "tenant_acme").await?);
    assert!(registry_ids(&conn).await?.is_empty());
    // Nothing leaked into public either.
    assert!(schemas_with_table(&conn, "projects").await?.is_empty());
    assert!(
        schemas_with_table(&conn, "seaql_migrations")
            .await?
            .is_empty()
    );
    finish(db, fleet).await
}

#[tokio::test]
async fn ids_mapping_to_the_same_schema_are_refused_with_the_owner() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let fleet = installed_fleet(conn).await?;
        fleet
            .create(&id("acme-corp"), NewTenant::new().display_name("First"))
            .await?;
        let err = fleet
            .create(&id("acme_corp"), NewTenant::new().display_name("Second"))
            .await
            .unwrap_err();
        match &err {
            Error::SchemaTaken {
                tenant,
                schema: s,
                owner,
            } => {
                assert_eq!(tenant.as_str(), "acme_corp");
                assert_eq!(s.as_str(), "tenant_acme_corp");
                assert_eq!(owner.as_str(), "acme-corp");
            }
            other => panic!("expected SchemaTaken, got {other:?}"),
        }
        // The first tenant is untouched, the second not registered.
        assert_eq!(registry_ids(fleet.connection()).await?, ["acme-corp"]);
        let first = fleet.get(&id("acme-corp")).await?.unwrap();
        assert_eq!(first.display_name, "First");
        Ok(())
    })
    .await
}

#[tokio::test]
async fn the_same_id_twice_is_tenant_exists() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let fleet = installed_fleet(conn).await?;
        fleet.create(&id("acme"), NewTenant::new()).await?;
        let err = fleet
            .create(&id("acme"), NewTenant::new().display_name("Again"))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::TenantExists { tenant } if tenant.as_str() == "acme"),
            "{err:?}"
        );
        assert_eq!(fleet.get(&id("acme")).await?.unwrap().display_name, "");
        Ok(())
    })
    .await
}

#[tokio::test]
async fn an_unregistered_schema_of_that_name_is_schema_exists() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let fleet = installed_fleet(conn).await?;
        let conn = fleet.connection().clone();
        conn.execute_unprepared(
            "CREATE SCHEMA tenant_acme; CREATE TABLE tenant_acme.keep (id int)",
        )
        .await?;

        let err = fleet
            .create(&id("acme"), NewTenant::new())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::SchemaExists { tenant, schema: s }
                if tenant.as_str() == "acme" && s.as_str() == "tenant_acme"),
            "{err:?}"
        );
        assert!(err.to_string().contains("adopt"), "{err}");
        // The registry row written first was rolled back; the schema is as it was.
        assert!(registry_ids(&conn).await?.is_empty());
        assert_eq!(schemas_with_table(&conn, "keep").await?, ["tenant_acme"]);
        assert!(
            schemas_with_table(&conn, "seaql_migrations")
                .await?
                .is_empty()
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_duplicate_domain_is_refused_on_create_and_on_set_domain() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let fleet = installed_fleet(conn).await?;
        let conn = fleet.connection().clone();
        fleet
            .create(&id("acme"), NewTenant::new().domain("acme.example.com"))
            .await?;

        // Hosts compare case-insensitively; so do domains.
        let err = fleet
            .create(&id("impostor"), NewTenant::new().domain("ACME.example.com"))
            .await
            .unwrap_err();
        match &err {
            Error::DomainTaken {
                tenant,
                domain,
                owner,
            } => {
                assert_eq!(tenant.as_str(), "impostor");
                assert_eq!(domain, "acme.example.com");
                assert_eq!(owner.as_str(), "acme");
            }
            other => panic!("expected DomainTaken, got {other:?}"),
        }
        assert_eq!(registry_ids(&conn).await?, ["acme"]);
        assert!(!schema_exists(&conn, "tenant_impostor").await?);

        fleet.create(&id("initech"), NewTenant::new()).await?;
        let err = fleet
            .set_domain(&id("initech"), Some("acme.example.com".into()))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::DomainTaken { tenant, owner, .. }
                if tenant.as_str() == "initech" && owner.as_str() == "acme"),
            "{err:?}"
        );
        assert_eq!(fleet.get(&id("initech")).await?.unwrap().domain, None);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn concurrent_creates_of_one_schema_have_exactly_one_winner() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let fleet = installed_fleet(conn).await?;
        let ids = ["acme-corp", "acme_corp", "acme-corp", "acme_corp"];
        let tasks: Vec<_> = ids
            .iter()
            .map(|tenant| {
                let fleet = fleet.clone();
                let tenant = id(tenant);
                tokio::spawn(async move { fleet.create(&tenant, NewTenant::new()).await })
            })
            .collect();
        let mut created = Vec::new();
        for task in tasks {
            match task.await? {
                Ok(record) => created.push(record.id),
                Err(Error::SchemaTaken { .. } | Error::TenantExists { .. }) => {}
                Err(other) => panic!("unexpected error: {other:?}"),
            }
        }
        assert_eq!(created.len(), 1, "{created:?}");
        assert_eq!(
            registry_ids(fleet.connection()).await?,
            [created[0].as_str()]
        );
        assert_eq!(
            versions_in(fleet.connection(), &schema("tenant_acme_corp")).await?,
            VERSIONS
        );
        Ok(())
    })
    .await
}

// ---------------------------------------------------------------------------
// status, display name, domain
// ---------------------------------------------------------------------------

#[tokio::test]
async fn suspend_refuses_access_and_resume_restores_it() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let fleet = installed_fleet(conn).await?;
        let tenant_db = TenantDb::new(fleet.connection().clone())?;
        let acme = id("acme");
        fleet.create(&acme, NewTenant::new()).await?;
        fleet.create(&id("initech"), NewTenant::new()).await?;
        access(&tenant_db, &acme).await?;

        let suspended = fleet.suspend(&acme).await?;
        assert_eq!(suspended.status, TenantStatus::Suspended);
        let listed = fleet
            .list(StatusFilter::Only(TenantStatus::Suspended))
            .await?;
        assert_eq!(listed.tenants, std::slice::from_ref(&suspended));
        assert!(matches!(
            access(&tenant_db, &acme).await,
            Err(tenancy_sea_orm::Error::Inaccessible {
                status: TenantStatus::Suspended,
                ..
            })
        ));
        // Suspending twice is harmless.
        assert_eq!(fleet.suspend(&acme).await?, suspended);

        let resumed = fleet.resume(&acme).await?;
        assert_eq!(resumed.status, TenantStatus::Active);
        assert!(
            fleet
                .list(StatusFilter::Only(TenantStatus::Suspended))
                .await?
                .tenants
                .is_empty()
        );
        access(&tenant_db, &acme).await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_tenant_created_provisioning_is_refused_until_resumed() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let fleet = installed_fleet(conn).await?;
        let tenant_db = TenantDb::new(fleet.connection().clone())?;
        let acme = id("acme");
        let record = fleet
            .create(&acme, NewTenant::new().status(TenantStatus::Provisioning))
            .await?;
        assert_eq!(record.status, TenantStatus::Provisioning);
        // Migrated already, but closed.
        assert_eq!(
            versions_in(fleet.connection(), &record.schema).await?,
            VERSIONS
        );
        assert!(matches!(
            access(&tenant_db, &acme).await,
            Err(tenancy_sea_orm::Error::Inaccessible {
                status: TenantStatus::Provisioning,
                ..
            })
        ));
        fleet.resume(&acme).await?;
        access(&tenant_db, &acme).await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_deleted_tenant_cannot_be_resumed_or_suspended() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let fleet = installed_fleet(conn).await?;
        let acme = id("acme");
        fleet.create(&acme, NewTenant::new()).await?;
        fleet.drop_tenant(&acme, DropMode::Soft).await?;
        let before = strings(
            fleet.connection(),
            "SELECT updated_at::text FROM public.tenants WHERE tenant_id = 'acme'",
            vec![],
        )
        .await?;

        let err = fleet.resume(&acme).await.unwrap_err();
        assert!(
            matches!(&err, Error::TenantDeleted { tenant } if *tenant == acme),
            "{err:?}"
        );
        assert!(err.to_string().contains("deleted"), "{err}");
        assert!(matches!(
            fleet.suspend(&acme).await,
            Err(Error::TenantDeleted { .. })
        ));
        // The row was left exactly as it was.
        let record = fleet.get(&acme).await?.unwrap();
        assert_eq!(record.status, TenantStatus::Deleted);
        let after = strings(
            fleet.connection(),
            "SELECT updated_at::text FROM public.tenants WHERE tenant_id = 'acme'",
            vec![],
        )
        .await?;
        assert_eq!(before, after);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn unknown_tenants_are_reported_by_every_call() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let fleet = installed_fleet(conn).await?;
        let ghost = id("ghost");
        let unknown = |result: Result<_, Error>| matches!(result, Err(Error::UnknownTenant { tenant }) if tenant.as_str() == "ghost");
        assert_eq!(fleet.get(&ghost).await?, None);
        assert!(unknown(fleet.suspend(&ghost).await.map(drop)));
        assert!(unknown(fleet.resume(&ghost).await.map(drop)));
        assert!(unknown(fleet.rename(&ghost, "Boo").await.map(drop)));
        assert!(unknown(fleet.set_domain(&ghost, None).await.map(drop)));
        assert!(unknown(
            fleet.drop_tenant(&ghost, DropMode::Soft).await.map(drop)
        ));
        assert!(unknown(
            fleet.drop_tenant(&ghost, hard("ghost")).await.map(drop)
        ));
        assert!(registry_ids(fleet.connection()).await?.is_empty());
        Ok(())
    })
    .await
}

#[tokio::test]
async fn rename_set_domain_get_and_list_order() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let fleet = installed_fleet(conn).await?;
        for tenant in ["zeta", "alpha", "mid-co"] {
            fleet.create(&id(tenant), NewTenant::new()).await?;
        }
        let renamed = fleet.rename(&id("mid-co"), "Mid & Co. 'quoted'").await?;
        assert_eq!(renamed.display_name, "Mid & Co. 'quoted'");
        let domained = fleet
            .set_domain(&id("alpha"), Some("Alpha.Example.COM".into()))
            .await?;
        assert_eq!(domained.domain.as_deref(), Some("alpha.example.com"));
        assert_eq!(fleet.get(&id("alpha")).await?, Some(domained.clone()));
        assert_eq!(fleet.get(&id("mid-co")).await?, Some(renamed.clone()));

        let ids: Vec<_> = fleet
            .list(StatusFilter::All)
            .await?
            .tenants
            .into_iter()
            .map(|r| r.id.to_string())
            .collect();
        assert_eq!(ids, ["alpha", "mid-co", "zeta"]);

        let cleared = fleet.set_domain(&id("alpha"), None).await?;
        assert_eq!(cleared.domain, None);
        // updated_at moves on every change.
        let stamps = strings(
            fleet.connection(),
            "SELECT (updated_at > created_at)::text FROM public.tenants \
             WHERE tenant_id IN ('alpha', 'mid-co')",
            vec![],
        )
        .await?;
        assert_eq!(stamps, ["true", "true"]);
        Ok(())
    })
    .await
}

// ---------------------------------------------------------------------------
// drop
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_hard_drop_without_the_matching_confirmation_changes_nothing() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let fleet = installed_fleet(conn).await?;
        let conn = fleet.connection().clone();
        let acme = id("acme");
        let record = fleet.create(&acme, NewTenant::new()).await?;

        for wrong in ["", "initech", "ACME", "acme ", "tenant_acme"] {
            let err = fleet.drop_tenant(&acme, hard(wrong)).await.unwrap_err();
            assert!(
                matches!(&err, Error::DropNotConfirmed { tenant } if *tenant == acme),
                "{wrong:?}: {err:?}"
            );
        }
        assert!(schema_exists(&conn, "tenant_acme").await?);
        assert_eq!(fleet.get(&acme).await?, Some(record));
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_confirmed_hard_drop_removes_schema_and_row() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let fleet = installed_fleet(conn).await?;
        let conn = fleet.connection().clone();
        let acme = id("acme");
        let record = fleet.create(&acme, NewTenant::new()).await?;
        fleet.create(&id("initech"), NewTenant::new()).await?;

        let outcome = fleet.drop_tenant(&acme, hard("acme")).await?;
        assert_eq!(outcome, DropOutcome::Dropped(record));
        assert!(outcome.schema_dropped());
        assert!(!schema_exists(&conn, "tenant_acme").await?);
        assert_eq!(fleet.get(&acme).await?, None);
        // The neighbour is untouched.
        assert!(schema_exists(&conn, "tenant_initech").await?);
        assert_eq!(registry_ids(&conn).await?, ["initech"]);

        // The id and schema are free again.
        fleet.create(&acme, NewTenant::new()).await?;
        assert_eq!(versions_in(&conn, &schema("tenant_acme")).await?, VERSIONS);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_hard_drop_unregisters_a_tenant_whose_schema_is_gone() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let fleet = installed_fleet(conn).await?;
        let conn = fleet.connection().clone();
        let acme = id("acme");
        let record = fleet.create(&acme, NewTenant::new()).await?;
        conn.execute_unprepared("DROP SCHEMA tenant_acme CASCADE")
            .await?;

        let outcome = fleet.drop_tenant(&acme, hard("acme")).await?;
        assert_eq!(outcome, DropOutcome::SchemaWasMissing(record));
        assert!(!outcome.schema_dropped());
        assert_eq!(fleet.get(&acme).await?, None);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_hard_drop_waits_for_the_tenant_migration_lock() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let fleet = installed_fleet(conn).await?;
        let conn = fleet.connection().clone();
        let acme = id("acme");
        fleet.create(&acme, NewTenant::new()).await?;

        // Stand in for a migration run of this tenant in another process: it
        // holds the tenant's advisory lock.
        let migration = conn.begin().await?;
        migration
            .execute_unprepared(&format!(
                "SELECT pg_advisory_xact_lock({})",
                AdvisoryLock::TenantMigration.key(&schema("tenant_acme"))
            ))
            .await?;

        let dropper = {
            let fleet = fleet.clone();
            let acme = acme.clone();
            tokio::spawn(async move { fleet.drop_tenant(&acme, hard("acme")).await })
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!dropper.is_finished(), "the drop must wait for the lock");
        assert!(schema_exists(&conn, "tenant_acme").await?);

        migration.commit().await?;
        let outcome = tokio::time::timeout(Duration::from_secs(10), dropper).await???;
        assert!(matches!(outcome, DropOutcome::Dropped(_)));
        assert!(!schema_exists(&conn, "tenant_acme").await?);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_soft_drop_keeps_the_schema_and_refuses_access() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let fleet = installed_fleet(conn).await?;
        let conn = fleet.connection().clone();
        let tenant_db = TenantDb::new(conn.clone())?;
        let acme = id("acme");
        fleet.create(&acme, NewTenant::new()).await?;
        let txn = tenant_db.begin_registered(&acme).await?;
        txn.execute_unprepared("INSERT INTO projects (name) VALUES ('kept')")
            .await?;
        txn.commit().await?;

        let outcome = fleet.drop_tenant(&acme, DropMode::Soft).await?;
        let DropOutcome::SoftDeleted(record) = &outcome else {
            panic!("expected a soft delete, got {outcome:?}");
        };
        assert_eq!(record.status, TenantStatus::Deleted);
        assert!(!outcome.schema_dropped());
        assert_eq!(
            fleet.get(&acme).await?.unwrap().status,
            TenantStatus::Deleted
        );
        assert!(matches!(
            access(&tenant_db, &acme).await,
            Err(tenancy_sea_orm::Error::Inaccessible {
                status: TenantStatus::Deleted,
                ..
            })
        ));
        // Schema and data are kept.
        let names = strings(&conn, "SELECT name FROM tenant_acme.projects", vec![]).await?;
        assert_eq!(names, ["kept"]);

        // Soft-dropping again changes nothing; a hard drop then removes it.
        fleet.drop_tenant(&acme, DropMode::Soft).await?;
        assert!(matches!(
            fleet.drop_tenant(&acme, hard("acme")).await?,
            DropOutcome::Dropped(_)
        ));
        assert!(!schema_exists(&conn, "tenant_acme").await?);
        Ok(())
    })
    .await
}

// ---------------------------------------------------------------------------
// adopt
// ---------------------------------------------------------------------------

#[tokio::test]
async fn adopt_registers_an_existing_schema_and_migrates_it_in_place() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let fleet = installed_fleet(conn).await?;
        let conn = fleet.connection().clone();
        conn.execute_unprepared(
            "CREATE SCHEMA legacy_acme;
             CREATE TABLE legacy_acme.customers (id int PRIMARY KEY, name text);
             INSERT INTO legacy_acme.customers VALUES (1, 'Wile E.')",
        )
        .await?;
        let acme = id("acme");

        let (record, applied) = fleet
            .adopt(
                &acme,
                schema("legacy_acme"),
                NewTenant::new().display_name("Acme (legacy)"),
            )
            .await?;
        assert_eq!(record.id, acme);
        assert_eq!(record.schema, schema("legacy_acme"));
        assert_eq!(record.display_name, "Acme (legacy)");
        assert_eq!(record.status, TenantStatus::Active);
        assert_eq!(applied, VERSIONS);
        assert_eq!(fleet.get(&acme).await?, Some(record.clone()));

        assert_eq!(versions_in(&conn, &record.schema).await?, VERSIONS);
        assert_eq!(
            schemas_with_table(&conn, "seaql_migrations").await?,
            ["legacy_acme"]
        );
        assert_eq!(
            schemas_with_table(&conn, "projects").await?,
            ["legacy_acme"]
        );
        assert_eq!(schemas_with_table(&conn, "tasks").await?, ["legacy_acme"]);
        let customers = strings(&conn, "SELECT name FROM legacy_acme.customers", vec![]).await?;
        assert_eq!(customers, ["Wile E."]);
        assert!(!schema_exists(&conn, "tenant_acme").await?);

        // The SeaORM layer resolves it to the adopted schema.
        let tenant_db = TenantDb::new(conn.clone())?;
        let txn = tenant_db.begin_registered(&acme).await?;
        let row = txn
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT count(*)::text FROM customers",
            ))
            .await?
            .unwrap();
        assert_eq!(row.try_get_by_index::<String>(0)?, "1");
        txn.rollback().await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn adopting_a_missing_schema_is_schema_missing() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let fleet = installed_fleet(conn).await?;
        let err = fleet
            .adopt(&id("acme"), schema("legacy_acme"), NewTenant::new())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::SchemaMissing { tenant, schema: s }
                if tenant.as_str() == "acme" && s.as_str() == "legacy_acme"),
            "{err:?}"
        );
        assert!(registry_ids(fleet.connection()).await?.is_empty());
        // Nothing fell through to public.
        assert!(
            schemas_with_table(fleet.connection(), "projects")
                .await?
                .is_empty()
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn adopting_an_owned_schema_is_schema_taken() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let fleet = installed_fleet(conn).await?;
        fleet.create(&id("acme"), NewTenant::new()).await?;
        let err = fleet
            .adopt(&id("thief"), schema("tenant_acme"), NewTenant::new())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::SchemaTaken { tenant, owner, .. }
                if tenant.as_str() == "thief" && owner.as_str() == "acme"),
            "{err:?}"
        );
        assert_eq!(registry_ids(fleet.connection()).await?, ["acme"]);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn adopt_with_a_failing_migration_leaves_the_schema_as_it_was() -> TestResult {
    let db = TestDatabase::create().await?;
    let fleet = TenantFleet::<FailingMigrator>::new(db.connect().await?);
    fleet.install().await?;
    let conn = fleet.connection().clone();
    conn.execute_unprepared(
        "CREATE SCHEMA legacy_acme; CREATE TABLE legacy_acme.customers (id int)",
    )
    .await?;

    let err = fleet
        .adopt(&id("acme"), schema("legacy_acme"), NewTenant::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Migration { tenant, schema: s, .. }
            if tenant.as_str() == "acme" && s.as_str() == "legacy_acme"),
        "{err:?}"
    );
    assert!(registry_ids(&conn).await?.is_empty());
    assert_eq!(
        schemas_with_table(&conn, "customers").await?,
        ["legacy_acme"]
    );
    assert!(schemas_with_table(&conn, "projects").await?.is_empty());
    assert!(
        schemas_with_table(&conn, "seaql_migrations")
            .await?
            .is_empty()
    );
    finish(db, fleet).await
}

#[tokio::test]
async fn a_shared_schema_cannot_belong_to_a_tenant() -> TestResult {
    let db = TestDatabase::create().await?;
    let conn = db.connect().await?;
    conn.execute_unprepared("CREATE SCHEMA extensions").await?;
    let config = FleetConfig::default()
        .with_shared_schemas([SharedSchema::public(), SharedSchema::new("extensions")?]);
    let fleet = TenantFleet::<TenantMigrator>::with_config(conn.clone(), config);
    fleet.install().await?;

    let err = fleet
        .adopt(&id("acme"), schema("extensions"), NewTenant::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::SchemaShared { tenant, schema: s }
            if tenant.as_str() == "acme" && s.as_str() == "extensions"),
        "{err:?}"
    );
    assert!(registry_ids(&conn).await?.is_empty());
    assert!(schemas_with_table(&conn, "projects").await?.is_empty());

    // Not by a hand-written registry row either: a hard drop refuses it.
    conn.execute_unprepared(
        "INSERT INTO public.tenants (tenant_id, schema_name, status) \
         VALUES ('rogue', 'extensions', 'active')",
    )
    .await?;
    let err = fleet
        .drop_tenant(&id("rogue"), hard("rogue"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SchemaShared { .. }), "{err:?}");
    assert!(schema_exists(&conn, "extensions").await?);
    assert_eq!(registry_ids(&conn).await?, ["rogue"]);
    finish(db, fleet).await
}
