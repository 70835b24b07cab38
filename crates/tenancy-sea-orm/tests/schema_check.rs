//! The default schema check: a lock on sea-orm-migration's ledger where the
//! tenant's schema has one the role may read, the `SELECT` check elsewhere,
//! and a refusal whenever the schema itself is missing or out of reach.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TestResult, create_tenants, insert_project as insert, project, scalar, setup};
use sea_orm::{ConnectionTrait as _, DatabaseConnection, DbErr, EntityTrait as _};
use tenancy_core::Tenant;
use tenancy_sea_orm::{Error, ScopeOptions, TenantDb, TenantTransaction};

const LEDGER: &str = "CREATE TABLE {s}.seaql_migrations \
                      (version varchar PRIMARY KEY, applied_at bigint NOT NULL)";

async fn add_ledger(conn: &DatabaseConnection, schema: &str) -> Result<(), DbErr> {
    conn.execute_unprepared(&LEDGER.replace("{s}", schema))
        .await
        .map(drop)
}

/// The tables of `schema` this transaction holds an `AccessShareLock` on.
async fn locked_in(txn: &TenantTransaction, schema: &str) -> Result<Vec<String>, DbErr> {
    let rows = txn
        .query_all_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT c.relname::text FROM pg_catalog.pg_locks l \
             JOIN pg_catalog.pg_class c ON c.oid = l.relation \
             WHERE l.pid = pg_backend_pid() AND l.mode = 'AccessShareLock' \
               AND c.relnamespace = $1::regnamespace ORDER BY 1",
            [schema.into()],
        ))
        .await?;
    rows.iter().map(|r| r.try_get_by_index(0)).collect()
}

async fn backend_pid(txn: &TenantTransaction) -> Result<i32, DbErr> {
    scalar(txn, "SELECT pg_backend_pid()").await
}

/// Opens a transaction on `tenant`, checks which of its tables the opening
/// message locked and that a write lands, and returns the backend's pid.
async fn open_and_write(
    db: &TenantDb,
    tenant: &Tenant,
    schema: &str,
    expected_locks: &[&str],
) -> Result<i32, Box<dyn std::error::Error + Send + Sync>> {
    let txn = db.begin(tenant).await?;
    assert_eq!(
        locked_in(&txn, schema).await?,
        expected_locks,
        "locks held on {schema} by the opening message"
    );
    let pid = backend_pid(&txn).await?;
    insert(&txn, tenant.id().as_str(), "scoped").await?;
    txn.commit().await?;
    Ok(pid)
}

/// With a pool of one connection, the fallback from the lock to the `SELECT`
/// must happen on the same connection (it is not closed and reopened), and
/// every schema without a usable ledger is still checked.
#[tokio::test]
async fn the_default_check_locks_the_ledger_where_there_is_one() -> TestResult {
    let (test_db, conn) = setup(1).await?;
    let tenants = create_tenants(&conn, &["a", "b", "c"]).await?;
    let (a, b, c) = (&tenants[0], &tenants[1], &tenants[2]);
    add_ledger(&conn, "tenant_a").await?;
    add_ledger(&conn, "tenant_c").await?;
    let db = TenantDb::new(conn.clone())?;

    let pid = open_and_write(&db, a, "tenant_a", &["seaql_migrations"]).await?;
    // No ledger: the lock fails, the SELECT check runs on the same connection.
    assert_eq!(open_and_write(&db, b, "tenant_b", &[]).await?, pid);
    // Remembered: straight to the SELECT check.
    assert_eq!(open_and_write(&db, b, "tenant_b", &[]).await?, pid);
    assert_eq!(
        open_and_write(&db, c, "tenant_c", &["seaql_migrations"]).await?,
        pid
    );

    // The ledger dropped behind the library's back: the fallback again.
    conn.execute_unprepared("DROP TABLE tenant_c.seaql_migrations")
        .await?;
    assert_eq!(open_and_write(&db, c, "tenant_c", &[]).await?, pid);

    // The schema dropped behind the library's back: refused at once.
    conn.execute_unprepared(r#"DROP SCHEMA "tenant_a" CASCADE"#)
        .await?;
    match db.begin(a).await {
        Err(err @ Error::SchemaMissing { .. }) => {
            assert!(err.to_string().contains("tenant a"), "{err}");
        }
        other => panic!("expected Error::SchemaMissing, got {other:?}"),
    }
    let written = db
        .transaction::<_, (), DbErr>(a, async move |txn| {
            insert(txn, "a", "must not land in public").await
        })
        .await;
    assert!(written.is_err(), "a write to a dropped schema succeeded");
    let public = project::Entity::find().all(&conn).await?;
    assert_eq!(public.len(), 1, "rows reached public: {public:?}");
    assert_eq!(public[0].tenant, common::CANARY_TENANT);
    drop(db);
    common::finish(test_db, vec![conn]).await
}

/// A role that may not read the ledger is checked with the `SELECT`; a role
/// whose `USAGE` on the schema is revoked is refused, lock or no lock.
#[tokio::test]
async fn the_default_check_follows_the_role_privileges() -> TestResult {
    let (test_db, conn) = setup(1).await?;
    let tenants = create_tenants(&conn, &["a", "b"]).await?;
    let (a, b) = (&tenants[0], &tenants[1]);
    add_ledger(&conn, "tenant_a").await?;
    add_ledger(&conn, "tenant_b").await?;
    let role = common::create_role(
        &conn,
        "tenancy_check_role",
        "GRANT USAGE ON SCHEMA tenant_a, tenant_b TO {role};
         GRANT SELECT, INSERT ON public.projects, tenant_a.projects, tenant_b.projects TO {role};
         GRANT USAGE ON SEQUENCE public.projects_id_seq, tenant_a.projects_id_seq,
             tenant_b.projects_id_seq TO {role};
         GRANT SELECT ON tenant_a.seaql_migrations TO {role}",
    )
    .await?;
    let quoted = role.quoted();
    let outcome = async {
        let db = TenantDb::new(conn.clone())?.with_options(ScopeOptions::new().role(role.clone()));
        // May read a's ledger: locked. May not read b's: the SELECT check.
        let pid = open_and_write(&db, a, "tenant_a", &["seaql_migrations"]).await?;
        assert_eq!(open_and_write(&db, b, "tenant_b", &[]).await?, pid);

        conn.execute_unprepared(&format!(
            "REVOKE USAGE ON SCHEMA tenant_a, tenant_b FROM {quoted}"
        ))
        .await?;
        for tenant in [a, b] {
            match db.begin(tenant).await {
                Err(Error::SchemaAccessDenied { role: Some(r), .. }) => {
                    assert_eq!(r, role.as_str());
                }
                other => panic!(
                    "{}: expected Error::SchemaAccessDenied, got {other:?}",
                    tenant.id()
                ),
            }
        }
        let public = project::Entity::find().all(&conn).await?;
        assert_eq!(public.len(), 1, "rows reached public: {public:?}");
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    }
    .await;
    conn.execute_unprepared(&format!("DROP OWNED BY {quoted}; DROP ROLE {quoted}"))
        .await?;
    outcome?;
    common::finish(test_db, vec![conn]).await
}
