//! How a scope is opened and what it pins: strict mode, nested savepoints,
//! per-transaction options, a missing schema, and stale prepared plans
//! (SQLSTATE 0A000) when tenants' tables differ in shape.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{
    CANARY_TENANT, DEFAULT_SEARCH_PATH, TestResult, assert_sqlstate, create_tenants,
    insert_project as insert, project, project_text, scalar, search_path, setup, stmt, tenant,
};
use futures_util::TryStreamExt as _;
use sea_orm::{
    AccessMode, ConnectionTrait as _, DatabaseConnection, DbErr, EntityTrait as _, IsolationLevel,
    PaginatorTrait as _, QueryOrder as _, StreamTrait as _, TransactionError,
    TransactionTrait as _,
};
use tenancy_core::{RoleName, SchemaName, SharedSchema};
use tenancy_sea_orm::{Error, ScopeOptions, TenantDb, TenantTransaction, is_stale_plan_error};

/// The names of the rows `txn` sees, asserting they all belong to `tenant`.
async fn names(txn: &TenantTransaction, tenant: &str) -> Result<BTreeSet<String>, DbErr> {
    let rows = project::Entity::find().all(txn).await?;
    assert!(
        rows.iter().all(|p| p.tenant == tenant),
        "rows of another tenant: {rows:?}"
    );
    Ok(rows.into_iter().map(|p| p.name).collect())
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

// ---------------------------------------------------------------------------
// Strict mode
// ---------------------------------------------------------------------------

/// Why strict mode exists: with the default search path (`"tenant_a",
/// "public"`), a table the tenant's schema lacks silently resolves to the
/// `public` table of the same name, so a tenant reads shared (or another
/// application's) rows. Strict mode pins the tenant's schema alone, and the
/// same query is an error (42P01, `undefined_table`).
#[tokio::test]
async fn strict_mode_turns_the_fall_through_to_public_into_an_error() -> TestResult {
    let (test_db, conn) = setup(2).await?;
    let a = create_tenants(&conn, &["a"]).await?.remove(0);
    conn.execute_unprepared(
        "CREATE TABLE public.audit_log (msg text);
         INSERT INTO public.audit_log VALUES ('public audit row')",
    )
    .await?;

    // Not strict: falls through to public.audit_log.
    let lenient = TenantDb::new(conn.clone())?;
    let txn = lenient.begin(&a).await?;
    assert_eq!(search_path(&txn).await?, "tenant_a, public");
    assert_eq!(
        scalar::<String, _>(&txn, "SELECT msg FROM audit_log").await?,
        "public audit row"
    );
    txn.commit().await?;

    // Strict handle: the tenant's schema alone.
    let strict = TenantDb::new(conn.clone())?.strict();
    let txn = strict.begin(&a).await?;
    assert_eq!(search_path(&txn).await?, "tenant_a");
    insert(&txn, "a", "strict insert").await?;
    assert_eq!(names(&txn, "a").await?, set(&["strict insert"]));
    assert_sqlstate(
        txn.query_all_raw(stmt("SELECT msg FROM audit_log")).await,
        "42P01",
    );
    txn.rollback().await?;

    // Shared tables stay reachable schema-qualified.
    let txn = strict.begin(&a).await?;
    assert_eq!(
        scalar::<i64, _>(&txn, "SELECT count(*) FROM public.audit_log").await?,
        1
    );
    assert_eq!(
        project::Entity::find().count(&txn).await?,
        0,
        "the rolled back insert is gone"
    );
    txn.commit().await?;

    // A strict scope on a lenient handle.
    let strict_a = a.clone().strict();
    let txn = lenient.begin(&strict_a).await?;
    assert_eq!(search_path(&txn).await?, "tenant_a");
    assert_sqlstate(
        txn.query_all_raw(stmt("SELECT msg FROM audit_log")).await,
        "42P01",
    );
    txn.rollback().await?;

    // Explicit shared schemas replace public.
    conn.execute_unprepared(
        "CREATE SCHEMA extensions;
         CREATE TABLE extensions.ext_table (v integer);
         INSERT INTO extensions.ext_table VALUES (42)",
    )
    .await?;
    let shared =
        TenantDb::new(conn.clone())?.with_shared_schemas([SharedSchema::new("extensions")?]);
    let txn = shared.begin(&a).await?;
    assert_eq!(search_path(&txn).await?, "tenant_a, extensions");
    assert_eq!(scalar::<i32, _>(&txn, "SELECT v FROM ext_table").await?, 42);
    assert_sqlstate(
        txn.query_all_raw(stmt("SELECT msg FROM audit_log")).await,
        "42P01",
    );
    txn.rollback().await?;

    // The lenient handle is unaffected by the other handles' choices.
    let txn = lenient.begin(&a).await?;
    assert_eq!(search_path(&txn).await?, "tenant_a, public");
    txn.commit().await?;
    assert_eq!(search_path(&conn).await?, DEFAULT_SEARCH_PATH);

    drop((lenient, strict, shared));
    common::finish(test_db, vec![conn]).await
}

// ---------------------------------------------------------------------------
// Nested transactions (savepoints)
// ---------------------------------------------------------------------------

#[tokio::test]
async fn savepoints_keep_the_scope_and_roll_back_only_their_own_work() -> TestResult {
    let (test_db, conn) = setup(2).await?;
    let tenants = create_tenants(&conn, &["a", "b"]).await?;
    let (a, b) = (&tenants[0], &tenants[1]);
    let db = TenantDb::new(conn.clone())?;
    let txn = db.begin(b).await?;
    insert(&txn, "b", "b's row").await?;
    txn.commit().await?;

    let txn = db.begin(a).await?;
    insert(&txn, "a", "outer").await?;
    let path = search_path(&txn).await?;
    assert_eq!(path, "tenant_a, public");

    // A savepoint rolled back.
    let savepoint = txn.begin().await?;
    assert_eq!(savepoint.scope(), txn.scope());
    assert_eq!(search_path(&savepoint).await?, path);
    assert_eq!(names(&savepoint, "a").await?, set(&["outer"]));
    insert(&savepoint, "a", "rolled back savepoint").await?;
    assert_eq!(
        names(&savepoint, "a").await?,
        set(&["outer", "rolled back savepoint"])
    );
    savepoint.rollback().await?;
    assert_eq!(
        search_path(&txn).await?,
        path,
        "rolling back the savepoint lost the scope"
    );
    assert_eq!(names(&txn, "a").await?, set(&["outer"]));
    assert_eq!(
        scalar::<i64, _>(&txn, "SELECT count(*) FROM projects").await?,
        1
    );

    // A savepoint released, with a deeper one rolled back inside it.
    let savepoint = txn.begin().await?;
    insert(&savepoint, "a", "released").await?;
    let deeper = savepoint.begin().await?;
    assert_eq!(search_path(&deeper).await?, path);
    insert(&deeper, "a", "deeper, rolled back").await?;
    deeper.rollback().await?;
    assert_eq!(search_path(&savepoint).await?, path);
    savepoint.commit().await?;
    assert_eq!(names(&txn, "a").await?, set(&["outer", "released"]));

    // A savepoint dropped without commit or rollback rolls back.
    let savepoint = txn.begin().await?;
    insert(&savepoint, "a", "dropped savepoint").await?;
    drop(savepoint);
    assert_eq!(names(&txn, "a").await?, set(&["outer", "released"]));

    // The classic use: a failed statement in a savepoint does not abort the
    // outer transaction once the savepoint is rolled back.
    let savepoint = txn.begin().await?;
    assert_sqlstate(savepoint.execute_unprepared("SELECT 1/0").await, "22012");
    savepoint.rollback().await?;
    assert_eq!(search_path(&txn).await?, path);

    // TransactionTrait::transaction on the tenant transaction: a savepoint too.
    txn.transaction::<_, _, DbErr>(|nested| {
        Box::pin(async move {
            assert_eq!(search_path(nested).await?, "tenant_a, public");
            insert(nested, "a", "nested closure ok").await
        })
    })
    .await?;
    let failed = txn
        .transaction::<_, (), DbErr>(|nested| {
            Box::pin(async move {
                insert(nested, "a", "nested closure err").await?;
                Err(DbErr::Custom("nested closure failed".to_owned()))
            })
        })
        .await;
    assert!(
        matches!(failed, Err(TransactionError::Transaction(DbErr::Custom(ref m))) if m == "nested closure failed"),
        "{failed:?}"
    );
    assert_eq!(
        names(&txn, "a").await?,
        set(&["outer", "released", "nested closure ok"])
    );

    // Isolation level and access mode cannot change in a savepoint: refused.
    assert!(
        txn.begin_with_config(Some(IsolationLevel::Serializable), None)
            .await
            .is_err()
    );
    assert!(
        txn.begin_with_config(None, Some(AccessMode::ReadOnly))
            .await
            .is_err()
    );
    // The refusal did not disturb the transaction.
    assert_eq!(search_path(&txn).await?, path);
    txn.commit().await?;

    // Only the outer and released work persisted, in A's schema.
    let txn = db.begin(a).await?;
    assert_eq!(
        names(&txn, "a").await?,
        set(&["outer", "released", "nested closure ok"])
    );
    txn.commit().await?;
    let txn = db.begin(b).await?;
    assert_eq!(names(&txn, "b").await?, set(&["b's row"]));
    txn.commit().await?;
    assert_eq!(search_path(&conn).await?, DEFAULT_SEARCH_PATH);
    assert_eq!(
        scalar::<i64, _>(&conn, "SELECT count(*) FROM projects").await?,
        1
    );

    drop(db);
    common::finish(test_db, vec![conn]).await
}

// ---------------------------------------------------------------------------
// ScopeOptions
// ---------------------------------------------------------------------------

#[tokio::test]
async fn statement_timeout_applies_to_its_transaction_only() -> TestResult {
    let (test_db, conn) = setup(1).await?;
    let a = create_tenants(&conn, &["a"]).await?.remove(0);
    let db = TenantDb::new(conn.clone())?;
    let options = ScopeOptions::new().statement_timeout(Duration::from_millis(100));

    let txn = db.begin_with(&a, &options).await?;
    assert_eq!(
        scalar::<String, _>(&txn, "SHOW statement_timeout").await?,
        "100ms"
    );
    assert_eq!(search_path(&txn).await?, "tenant_a, public");
    let started = std::time::Instant::now();
    assert_sqlstate(txn.execute_unprepared("SELECT pg_sleep(1)").await, "57014");
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "the server did not cancel the sleep"
    );
    txn.rollback().await?;

    // Gone in the next transaction and on the plain connection.
    let txn = db.begin(&a).await?;
    assert_eq!(
        scalar::<String, _>(&txn, "SHOW statement_timeout").await?,
        "0"
    );
    txn.commit().await?;
    assert_eq!(
        scalar::<String, _>(&conn, "SHOW statement_timeout").await?,
        "0"
    );

    // Handle-wide options apply to `begin` and `transaction`.
    let timed = db.clone().with_options(options);
    let result = timed
        .transaction::<_, (), DbErr>(&a, async move |txn| {
            txn.execute_unprepared("SELECT pg_sleep(1)").await.map(drop)
        })
        .await;
    assert_sqlstate(result, "57014");
    assert_eq!(
        scalar::<String, _>(&conn, "SHOW statement_timeout").await?,
        "0"
    );

    // Isolation level.
    let serializable = ScopeOptions::new().isolation_level(IsolationLevel::Serializable);
    let txn = db.begin_with(&a, &serializable).await?;
    assert_eq!(
        scalar::<String, _>(&txn, "SHOW transaction_isolation").await?,
        "serializable"
    );
    txn.commit().await?;
    let txn = db.begin(&a).await?;
    assert_eq!(
        scalar::<String, _>(&txn, "SHOW transaction_isolation").await?,
        "read committed"
    );
    txn.commit().await?;

    drop((db, timed));
    common::finish(test_db, vec![conn]).await
}

#[tokio::test]
async fn read_only_scope_refuses_writes() -> TestResult {
    let (test_db, conn) = setup(1).await?;
    let a = create_tenants(&conn, &["a"]).await?.remove(0);
    let db = TenantDb::new(conn.clone())?;
    let read_only = ScopeOptions::new().access_mode(AccessMode::ReadOnly);

    let txn = db.begin_with(&a, &read_only).await?;
    assert_eq!(
        scalar::<String, _>(&txn, "SHOW transaction_read_only").await?,
        "on"
    );
    assert_eq!(project::Entity::find().count(&txn).await?, 0);
    let err = insert(&txn, "a", "refused").await.unwrap_err();
    assert_eq!(common::sqlstate(&err).as_deref(), Some("25006"), "{err:?}");
    txn.rollback().await?;

    // The next transaction writes.
    let txn = db.begin(&a).await?;
    assert_eq!(
        scalar::<String, _>(&txn, "SHOW transaction_read_only").await?,
        "off"
    );
    insert(&txn, "a", "accepted").await?;
    txn.commit().await?;
    assert_eq!(
        scalar::<i64, _>(&conn, r#"SELECT count(*) FROM "tenant_a".projects"#).await?,
        1
    );

    drop(db);
    common::finish(test_db, vec![conn]).await
}

/// Roles are cluster-wide: a unique name per run, dropped at the end even
/// when an assertion fails.
fn unique_role() -> RoleName {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    RoleName::new(&format!("tenancy_test_role_{}_{nanos}", std::process::id())).unwrap()
}

async fn drop_role(conn: &DatabaseConnection, role: &RoleName) -> Result<(), DbErr> {
    let role = role.quoted();
    conn.execute_unprepared(&format!("DROP OWNED BY {role}; DROP ROLE {role}"))
        .await
        .map(drop)
}

#[tokio::test]
async fn role_applies_to_its_transaction_only() -> TestResult {
    let (test_db, conn) = setup(1).await?;
    let tenants = create_tenants(&conn, &["a", "b"]).await?;
    let role = unique_role();
    let quoted = role.quoted();
    conn.execute_unprepared(&format!(
        "CREATE ROLE {quoted} NOLOGIN;
         GRANT {quoted} TO current_user;
         GRANT USAGE ON SCHEMA tenant_a TO {quoted};
         GRANT SELECT, INSERT ON tenant_a.projects TO {quoted};
         GRANT USAGE ON SEQUENCE tenant_a.projects_id_seq TO {quoted}"
    ))
    .await?;

    // Run the assertions in a task, so the role is dropped even if one fails.
    let body = {
        let conn = conn.clone();
        let role = role.clone();
        tokio::spawn(async move { role_assertions(conn, tenants, role).await })
    };
    let outcome = body.await;
    drop_role(&conn, &role).await?;
    match outcome {
        Ok(result) => result?,
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
    common::finish(test_db, vec![conn]).await
}

async fn role_assertions(
    conn: DatabaseConnection,
    tenants: Vec<tenancy_core::Tenant>,
    role: RoleName,
) -> TestResult {
    let (a, b) = (&tenants[0], &tenants[1]);
    let db = TenantDb::new(conn.clone())?;
    let login_user: String = scalar(&conn, "SELECT current_user::text").await?;
    let as_role = ScopeOptions::new().role(role.clone());

    let txn = db.begin_with(a, &as_role).await?;
    assert_eq!(
        scalar::<String, _>(&txn, "SELECT current_user::text").await?,
        role.as_str()
    );
    assert_eq!(
        scalar::<String, _>(&txn, "SELECT session_user::text").await?,
        login_user
    );
    assert_eq!(search_path(&txn).await?, "tenant_a, public");
    insert(&txn, "a", "written as the role").await?;
    assert_eq!(names(&txn, "a").await?, set(&["written as the role"]));
    txn.commit().await?;

    // Back to the login user, on the plain connection and in the next scope.
    assert_eq!(
        scalar::<String, _>(&conn, "SELECT current_user::text").await?,
        login_user
    );
    let txn = db.begin(a).await?;
    assert_eq!(
        scalar::<String, _>(&txn, "SELECT current_user::text").await?,
        login_user
    );
    txn.commit().await?;

    // The role has no USAGE on B's schema: PostgreSQL would drop the schema
    // from the search path and resolve B's tables in public, so the scope is
    // refused before any statement runs.
    match db.begin_with(b, &as_role).await {
        Err(Error::SchemaAccessDenied {
            scope,
            role: Some(denied),
        }) => {
            assert_eq!(scope.schema.as_str(), "tenant_b");
            assert_eq!(denied, role.as_str());
        }
        other => panic!("expected SchemaAccessDenied for tenant_b, got {other:?}"),
    }
    // The check is per role: the login user still reaches B.
    db.begin(b).await?.rollback().await?;

    // A role that does not exist: Error::Role, and the pool still works.
    let missing = RoleName::new("tenancy_test_role_that_does_not_exist")?;
    match db
        .begin_with(a, &ScopeOptions::new().role(missing.clone()))
        .await
    {
        Err(Error::Role {
            role: named, scope, ..
        }) => {
            assert_eq!(named, missing.as_str());
            assert_eq!(scope.tenant.as_ref(), Some(a.id()));
        }
        other => panic!("expected Error::Role, got {other:?}"),
    }
    assert_eq!(
        scalar::<String, _>(&conn, "SELECT current_user::text").await?,
        login_user
    );
    let txn = db.begin(a).await?;
    assert_eq!(names(&txn, "a").await?, set(&["written as the role"]));
    txn.commit().await?;
    Ok(())
}

/// The guarantee of `Error::SchemaMissing` ("refused instead" of a silent
/// fall-through to the shared schemas) must hold when the scope switches to a
/// role: PostgreSQL also silently drops from the search path a schema the
/// current role has no USAGE on, so a role that may read a `public` table of
/// the same name reads it instead of the tenant's.
#[tokio::test]
async fn role_without_usage_on_the_tenant_schema_does_not_fall_through_to_public() -> TestResult {
    let (test_db, conn) = setup(1).await?;
    let b = create_tenants(&conn, &["b"]).await?.remove(0);
    let role = unique_role();
    let quoted = role.quoted();
    // The role may read public.projects (the canary) and tenant_b.projects,
    // but was not granted USAGE on the schema tenant_b.
    conn.execute_unprepared(&format!(
        "CREATE ROLE {quoted} NOLOGIN;
         GRANT {quoted} TO current_user;
         GRANT SELECT ON public.projects TO {quoted};
         GRANT SELECT ON tenant_b.projects TO {quoted};
         INSERT INTO tenant_b.projects (tenant, name, code) VALUES ('b', 'b row', 1)"
    ))
    .await?;

    let body = {
        let conn = conn.clone();
        let role = role.clone();
        tokio::spawn(async move {
            let db = TenantDb::new(conn)?;
            match db.begin_with(&b, &ScopeOptions::new().role(role)).await {
                // Refusing the scope is a correct outcome.
                Err(_) => Ok(()),
                Ok(txn) => {
                    let schemas: Vec<String> =
                        scalar(&txn, "SELECT current_schemas(false)::text[]").await?;
                    let read = project::Entity::find().all(&txn).await;
                    txn.rollback().await?;
                    if let Ok(rows) = read {
                        assert!(
                            rows.iter().all(|p| p.tenant != CANARY_TENANT),
                            "tenant b's scope (effective search path {schemas:?}) read public's rows: {rows:?}"
                        );
                    }
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
                }
            }
        })
    };
    let outcome = body.await;
    drop_role(&conn, &role).await?;
    match outcome {
        Ok(result) => result?,
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
    common::finish(test_db, vec![conn]).await
}

// ---------------------------------------------------------------------------
// Missing schema
// ---------------------------------------------------------------------------

#[tokio::test]
async fn missing_schema_is_refused_not_sent_to_public() -> TestResult {
    // One connection: a failed begin must not cost the pool its connection.
    let (test_db, conn) = setup(1).await?;
    let a = create_tenants(&conn, &["a"]).await?.remove(0);
    let ghost = tenant("ghost");
    let db = TenantDb::new(conn.clone())?;

    for _ in 0..3 {
        match db.begin(&ghost).await {
            Err(err @ Error::SchemaMissing { .. }) => {
                assert_eq!(err.tenant(), Some(ghost.id()));
                let Error::SchemaMissing { scope } = &err else {
                    unreachable!()
                };
                assert_eq!(scope.schema.as_str(), "tenant_ghost");
                assert!(err.to_string().contains("tenant ghost"), "{err}");
            }
            other => panic!("expected Error::SchemaMissing, got {other:?}"),
        }
        // The pool's one connection still serves an existing tenant.
        let txn = db.begin(&a).await?;
        assert_eq!(search_path(&txn).await?, "tenant_a, public");
        assert_eq!(
            project::Entity::find().count(&txn).await?,
            0,
            "tenant_a's table, not the canary"
        );
        txn.commit().await?;
    }

    // Through `transaction`: the callback never runs, the error converts to DbErr.
    let result = db
        .transaction::<_, (), DbErr>(&ghost, async move |_| {
            panic!("the callback ran for a missing schema")
        })
        .await;
    match result {
        Err(DbErr::Custom(msg)) => assert!(msg.contains("does not exist"), "{msg}"),
        other => panic!("expected a DbErr::Custom, got {other:?}"),
    }

    // Strict handles and bare schema names too.
    assert!(matches!(
        db.clone().strict().begin(&ghost).await,
        Err(Error::SchemaMissing { .. })
    ));
    let nowhere = SchemaName::new("nowhere")?;
    match db.begin(&nowhere).await {
        Err(Error::SchemaMissing { scope }) => assert!(scope.tenant.is_none()),
        other => panic!("expected Error::SchemaMissing, got {other:?}"),
    }

    // A schema dropped after use (a deleted tenant).
    let gone = create_tenants(&conn, &["gone"]).await?.remove(0);
    let txn = db.begin(&gone).await?;
    insert(&txn, "gone", "soon gone").await?;
    txn.commit().await?;
    conn.execute_unprepared(r#"DROP SCHEMA "tenant_gone" CASCADE"#)
        .await?;
    // A handle that never saw the schema checks it.
    match TenantDb::new(conn.clone())?.begin(&gone).await {
        Err(Error::SchemaMissing { .. }) => {}
        other => panic!("a dropped schema: expected Error::SchemaMissing, got {other:?}"),
    }
    // This handle saw it exist, and checks again anyway.
    match db.begin(&gone).await {
        Err(Error::SchemaMissing { .. }) => {}
        other => {
            panic!("a dropped schema seen before: expected Error::SchemaMissing, got {other:?}")
        }
    }

    // Nothing fell through to public, and the plain connection is clean.
    let public = project::Entity::find().all(&conn).await?;
    assert_eq!(public.len(), 1);
    assert_eq!(public[0].tenant, CANARY_TENANT);
    assert_eq!(search_path(&conn).await?, DEFAULT_SEARCH_PATH);

    drop(db);
    common::finish(test_db, vec![conn]).await
}

// ---------------------------------------------------------------------------
// Stale prepared plans (SQLSTATE 0A000)
// ---------------------------------------------------------------------------

const SELECT_CODE: &str = "SELECT code FROM projects ORDER BY id";

/// Tenant X's `projects.code` is an integer, tenant Y's is text: the same SQL
/// prepared in one scope has another result type in the other.
async fn shape_tenants(conn: &DatabaseConnection) -> Result<(), DbErr> {
    conn.execute_unprepared(
        r#"CREATE SCHEMA "tenant_x";
           CREATE TABLE "tenant_x".projects (id serial PRIMARY KEY, tenant text NOT NULL, name text NOT NULL, code integer NOT NULL);
           INSERT INTO "tenant_x".projects (tenant, name, code) VALUES ('x', 'x1', 11), ('x', 'x2', 12);
           CREATE SCHEMA "tenant_y";
           CREATE TABLE "tenant_y".projects (id serial PRIMARY KEY, tenant text NOT NULL, name text NOT NULL, code text NOT NULL);
           INSERT INTO "tenant_y".projects (tenant, name, code) VALUES ('y', 'y1', 'why-1')"#,
    )
    .await
    .map(drop)
}

async fn codes<T: sea_orm::TryGetable>(txn: &TenantTransaction) -> Result<Vec<T>, DbErr> {
    txn.query_all_raw(stmt(SELECT_CODE))
        .await?
        .iter()
        .map(|row| row.try_get::<T>("", "code"))
        .collect()
}

async fn pid(txn: &TenantTransaction) -> Result<i32, DbErr> {
    scalar(txn, "SELECT pg_backend_pid()").await
}

#[tokio::test]
async fn stale_plan_is_retried_first_and_reported_later() -> TestResult {
    // One connection: every scope reuses the same statement cache.
    let (test_db, conn) = setup(1).await?;
    shape_tenants(&conn).await?;
    let (x, y) = (tenant("x"), tenant("y"));
    let db = TenantDb::new(conn.clone())?;

    // X prepares and caches the statement with an integer column.
    let txn = db.begin(&x).await?;
    assert_eq!(codes::<i32>(&txn).await?, [11, 12]);
    let first_pid = pid(&txn).await?;
    txn.commit().await?;

    // Y runs the same SQL as its first statement: transparently retried.
    let txn = db.begin(&y).await?;
    assert_eq!(codes::<String>(&txn).await?, ["why-1"]);
    assert_eq!(pid(&txn).await?, first_pid, "the retry kept the connection");
    txn.commit().await?;

    // X runs something else first, then the statement cached with Y's shape:
    // not retried (the transaction has done work), reported as a stale plan.
    let txn = db.begin(&x).await?;
    assert_eq!(pid(&txn).await?, first_pid);
    let err = codes::<i32>(&txn).await.unwrap_err();
    assert!(is_stale_plan_error(&err), "{err:?}");
    assert_eq!(common::sqlstate(&err).as_deref(), Some("0A000"));
    txn.rollback().await?;

    // Retrying the whole transaction, as the error invites, succeeds: the
    // connection with the stale cache was discarded.
    let mut attempts = 0;
    let (codes_x, retry_pid) = loop {
        attempts += 1;
        let txn = db.begin(&x).await?;
        let attempt = async {
            let pid = pid(&txn).await?;
            Ok::<_, DbErr>((codes::<i32>(&txn).await?, pid))
        }
        .await;
        match attempt {
            Ok(value) => {
                txn.commit().await?;
                break value;
            }
            Err(err) if is_stale_plan_error(&err) && attempts < 3 => txn.rollback().await?,
            Err(err) => return Err(err.into()),
        }
    };
    assert_eq!(attempts, 1, "the first retry must succeed");
    assert_eq!(codes_x, [11, 12]);
    assert_ne!(
        retry_pid, first_pid,
        "the connection with the stale plan was pooled again"
    );

    // The same through entities: X's entity has `code: i32`, Y's `code: String`,
    // and both generate the same SQL.
    let txn = db.begin(&x).await?;
    let xs = project::Entity::find()
        .order_by_asc(project::Column::Id)
        .all(&txn)
        .await?;
    assert_eq!(xs.iter().map(|p| p.code).collect::<Vec<_>>(), [11, 12]);
    txn.commit().await?;
    let txn = db.begin(&y).await?;
    let ys = project_text::Entity::find().all(&txn).await?;
    assert_eq!(
        ys.iter().map(|p| p.code.as_str()).collect::<Vec<_>>(),
        ["why-1"]
    );
    txn.commit().await?;
    let txn = db.begin(&x).await?;
    let _ = pid(&txn).await?;
    let err = project::Entity::find().all(&txn).await.unwrap_err();
    assert!(is_stale_plan_error(&err), "{err:?}");
    drop(txn);
    let txn = db.begin(&x).await?;
    let _ = pid(&txn).await?;
    assert_eq!(project::Entity::find().count(&txn).await?, 2);
    assert_eq!(project::Entity::find().all(&txn).await?.len(), 2);
    txn.commit().await?;

    // The closure API gets the transparent retry too.
    let ys = db
        .transaction::<_, _, DbErr>(&y, async move |txn| codes::<String>(txn).await)
        .await?;
    assert_eq!(ys, ["why-1"]);

    drop(db);
    common::finish(test_db, vec![conn]).await
}

/// A stale plan met by a stream is reported like any other, and retrying the
/// transaction must then succeed as `is_stale_plan_error` promises.
#[tokio::test]
async fn stale_plan_in_a_stream_is_retryable() -> TestResult {
    let (test_db, conn) = setup(1).await?;
    shape_tenants(&conn).await?;
    let (x, y) = (tenant("x"), tenant("y"));
    let db = TenantDb::new(conn.clone())?;

    let txn = db.begin(&x).await?;
    assert_eq!(codes::<i32>(&txn).await?, [11, 12]);
    txn.commit().await?;

    let mut failures = 0;
    for attempt in 0..3 {
        let txn = db.begin(&y).await?;
        let _ = pid(&txn).await?;
        let streamed: Result<Vec<String>, DbErr> = async {
            let stream = txn.stream_raw(stmt(SELECT_CODE)).await?;
            let rows: Vec<_> = stream.try_collect().await?;
            rows.iter()
                .map(|row| row.try_get::<String>("", "code"))
                .collect()
        }
        .await;
        match streamed {
            Ok(codes) => {
                assert_eq!(codes, ["why-1"]);
                txn.commit().await?;
                break;
            }
            Err(err) => {
                assert!(is_stale_plan_error(&err), "attempt {attempt}: {err:?}");
                failures += 1;
                txn.rollback().await?;
            }
        }
    }
    assert_eq!(
        failures, 1,
        "retrying after a stale plan in a stream failed again: the connection was not discarded"
    );

    drop(db);
    common::finish(test_db, vec![conn]).await
}

/// SQLSTATE 0A000 is `feature_not_supported`, the class of many errors that
/// are not stale plans and that no retry can fix.
#[tokio::test]
async fn other_feature_not_supported_errors_are_not_stale_plans() -> TestResult {
    let (test_db, conn) = setup(1).await?;
    let a = create_tenants(&conn, &["a"]).await?.remove(0);
    let db = TenantDb::new(conn.clone())?;

    let txn = db.begin(&a).await?;
    let _ = pid(&txn).await?;
    let err = txn
        .query_all_raw(stmt("SELECT count(*) FROM projects FOR UPDATE"))
        .await
        .unwrap_err();
    assert_eq!(common::sqlstate(&err).as_deref(), Some("0A000"), "{err:?}");
    assert!(
        !is_stale_plan_error(&err),
        "\"FOR UPDATE is not allowed with aggregate functions\" reported as a stale plan: {err}"
    );
    txn.rollback().await?;

    drop(db);
    common::finish(test_db, vec![conn]).await
}

/// Finishing a transaction while a savepoint opened from it is still open
/// would only release the savepoint (and dropping it later would undo all):
/// refused loudly, everything rolled back, and the pool's connection clean.
#[tokio::test]
async fn finishing_under_an_open_savepoint_is_refused_and_rolls_back() -> TestResult {
    let (test_db, conn) = setup(1).await?;
    let tenants = create_tenants(&conn, &["a"]).await?;
    let a = &tenants[0];
    let db = TenantDb::new(conn.clone())?;

    let txn = db.begin(a).await?;
    insert(&txn, "a", "outer").await?;
    let savepoint = txn.begin().await?;
    insert(&savepoint, "a", "inner").await?;
    let err = txn
        .commit()
        .await
        .expect_err("commit under an open savepoint");
    assert!(err.to_string().contains("still open"), "{err}");
    drop(savepoint);

    let txn = db.begin(a).await?;
    assert_eq!(names(&txn, "a").await?, set(&[]));
    txn.commit().await?;
    assert_eq!(search_path(&conn).await?, DEFAULT_SEARCH_PATH);
    common::finish(test_db, vec![conn]).await
}
