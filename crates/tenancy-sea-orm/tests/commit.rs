//! How a transaction ends: a COMMIT the server answered with ROLLBACK, a
//! callback error that must not be masked by a failed rollback, and a schema
//! dropped behind the library's back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{
    CANARY_TENANT, DEFAULT_SEARCH_PATH, TestResult, create_tenants, insert_project as insert,
    project, scalar, search_path, setup,
};
use sea_orm::{
    ConnectionTrait as _, DbErr, EntityTrait as _, TransactionError, TransactionTrait as _,
};
use tenancy_sea_orm::{Error, FailureKind, TenantDb, TenantTransaction, is_retryable};

/// Rows of `tenant_a.projects`, read unscoped.
async fn rows_of_a(conn: &sea_orm::DatabaseConnection) -> Result<Vec<String>, DbErr> {
    let rows = conn
        .query_all_raw(common::stmt(
            r#"SELECT name FROM "tenant_a".projects ORDER BY name"#,
        ))
        .await?;
    rows.iter().map(|r| r.try_get_by_index(0)).collect()
}

/// A statement that fails on the server (and so aborts the transaction).
const FAILING: &str = "SELECT 1 / 0";

// ---------------------------------------------------------------------------
// 3. A COMMIT that was a ROLLBACK
// ---------------------------------------------------------------------------

/// The callback swallows a statement's error and returns `Ok`: PostgreSQL
/// answers the COMMIT with ROLLBACK, and the caller must not be told `Ok`.
#[tokio::test]
async fn closure_commit_answered_with_rollback_is_an_error() -> TestResult {
    let (test_db, conn) = setup(1).await?;
    let a = create_tenants(&conn, &["a"]).await?.remove(0);
    let db = TenantDb::new(conn.clone())?;

    let result = db
        .transaction::<_, (), Error>(&a, async move |txn| {
            insert(txn, "a", "lost").await.unwrap();
            let swallowed = txn.execute_unprepared(FAILING).await;
            assert!(swallowed.is_err());
            Ok(())
        })
        .await;
    match result {
        Err(err @ Error::CommitRolledBack { .. }) => {
            assert_eq!(err.tenant(), Some(a.id()));
            let msg = err.to_string();
            assert!(
                msg.contains("tenant a") && msg.contains("division by zero"),
                "{msg}"
            );
            assert!(
                !err.is_retryable(),
                "dividing by zero again would fail again"
            );
            assert!(!err.commit_outcome_unknown());
        }
        other => panic!("expected Error::CommitRolledBack, got {other:?}"),
    }
    assert!(rows_of_a(&conn).await?.is_empty());

    // The same with `DbErr` as the callback's error type.
    let result = db
        .transaction::<_, (), DbErr>(&a, async move |txn| {
            let _ = txn.execute_unprepared(FAILING).await;
            Ok(())
        })
        .await;
    let err = result.expect_err("the COMMIT was answered with ROLLBACK, yet the caller got Ok");
    assert!(
        matches!(Error::in_db_err(&err), Some(Error::CommitRolledBack { .. })),
        "{err:?}"
    );
    assert_eq!(
        common::sqlstate(&err).as_deref(),
        Some("22012"),
        "the statement's SQLSTATE"
    );

    // The pool's one connection is clean and serves the next transaction.
    db.transaction::<_, (), DbErr>(&a, async move |txn| insert(txn, "a", "kept").await)
        .await?;
    assert_eq!(rows_of_a(&conn).await?, ["kept"]);
    assert_eq!(search_path(&conn).await?, DEFAULT_SEARCH_PATH);
    drop(db);
    common::finish(test_db, vec![conn]).await
}

/// The same through `begin` / `commit`.
#[tokio::test]
async fn explicit_commit_answered_with_rollback_is_an_error() -> TestResult {
    let (test_db, conn) = setup(1).await?;
    let a = create_tenants(&conn, &["a"]).await?.remove(0);
    let db = TenantDb::new(conn.clone())?;

    let txn = db.begin(&a).await?;
    insert(&txn, "a", "lost").await?;
    assert!(txn.execute_unprepared(FAILING).await.is_err());
    let err = txn
        .commit()
        .await
        .expect_err("commit() answered with ROLLBACK returned Ok");
    match Error::in_db_err(&err) {
        Some(Error::CommitRolledBack { scope, source }) => {
            assert_eq!(scope.tenant.as_ref(), Some(a.id()));
            assert_eq!(common::sqlstate(source).as_deref(), Some("22012"));
        }
        other => panic!("expected Error::CommitRolledBack inside {err:?}, got {other:?}"),
    }
    assert!(
        err.to_string().contains("rolled back, not committed"),
        "{err}"
    );
    assert!(!is_retryable(&err));

    // A swallowed serialization failure makes the transaction worth retrying.
    let txn = db.begin(&a).await?;
    let raised = txn
        .execute_unprepared(
            "DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$",
        )
        .await;
    assert_eq!(
        FailureKind::of(&raised.unwrap_err()),
        FailureKind::SerializationFailure
    );
    let err = txn.commit().await.unwrap_err();
    assert_eq!(FailureKind::of(&err), FailureKind::SerializationFailure);
    assert!(is_retryable(&err));

    // Deadlocks are retryable, other errors of the same class are not.
    for (code, kind) in [
        ("40P01", FailureKind::Deadlock),
        ("40002", FailureKind::Other),
        ("0A000", FailureKind::Other), // not a stale plan: nothing to re-prepare
    ] {
        let txn = db.begin(&a).await?;
        let err = txn
            .execute_unprepared(&format!(
                "DO $$ BEGIN RAISE EXCEPTION 'raised' USING ERRCODE = '{code}'; END $$"
            ))
            .await
            .unwrap_err();
        assert_eq!(FailureKind::of(&err), kind, "{code}");
        txn.rollback().await?;
    }
    assert!(rows_of_a(&conn).await?.is_empty());

    let txn = db.begin(&a).await?;
    insert(&txn, "a", "kept").await?;
    txn.commit().await?;
    assert_eq!(rows_of_a(&conn).await?, ["kept"]);
    assert_eq!(search_path(&conn).await?, DEFAULT_SEARCH_PATH);
    drop(db);
    common::finish(test_db, vec![conn]).await
}

/// A failure inside a savepoint aborts only the savepoint: its commit is
/// refused, and the enclosing transaction goes on and commits its own work.
#[tokio::test]
async fn savepoint_commit_after_a_failure_is_refused_and_the_outer_goes_on() -> TestResult {
    let (test_db, conn) = setup(1).await?;
    let a = create_tenants(&conn, &["a"]).await?.remove(0);
    let db = TenantDb::new(conn.clone())?;

    let txn = db.begin(&a).await?;
    insert(&txn, "a", "outer").await?;
    let savepoint = txn.begin().await?;
    insert(&savepoint, "a", "inner, lost").await?;
    assert!(savepoint.execute_unprepared(FAILING).await.is_err());
    let err = savepoint
        .commit()
        .await
        .expect_err("releasing an aborted savepoint must fail");
    assert!(
        matches!(Error::in_db_err(&err), Some(Error::CommitRolledBack { .. })),
        "{err:?}"
    );
    // The outer transaction is usable again and commits its own row.
    insert(&txn, "a", "outer, after").await?;
    txn.commit().await?;
    assert_eq!(rows_of_a(&conn).await?, ["outer", "outer, after"]);

    // The closure form of a savepoint says the same.
    let txn = db.begin(&a).await?;
    let nested = txn
        .transaction::<_, (), DbErr>(|sp| {
            Box::pin(async move {
                insert(sp, "a", "nested, lost").await?;
                let _ = sp.execute_unprepared(FAILING).await;
                Ok(())
            })
        })
        .await;
    match nested {
        Err(TransactionError::Connection(err)) => assert!(
            matches!(Error::in_db_err(&err), Some(Error::CommitRolledBack { .. })),
            "{err:?}"
        ),
        other => panic!("an aborted nested transaction: expected CommitRolledBack, got {other:?}"),
    }
    txn.commit().await?;
    assert_eq!(rows_of_a(&conn).await?, ["outer", "outer, after"]);

    // A savepoint rolled back after a failure leaves the outer transaction
    // healthy: its commit is a real COMMIT.
    let txn = db.begin(&a).await?;
    let savepoint = txn.begin().await?;
    assert!(savepoint.execute_unprepared(FAILING).await.is_err());
    savepoint.rollback().await?;
    insert(&txn, "a", "after a rolled-back savepoint").await?;
    txn.commit().await?;
    assert_eq!(
        rows_of_a(&conn).await?,
        ["after a rolled-back savepoint", "outer", "outer, after"]
    );
    assert_eq!(search_path(&conn).await?, DEFAULT_SEARCH_PATH);
    drop(db);
    common::finish(test_db, vec![conn]).await
}

// ---------------------------------------------------------------------------
// 4. The callback's error is not masked by a failed rollback
// ---------------------------------------------------------------------------

#[derive(Debug)]
enum AppError {
    Mine(&'static str),
    Scope(tenancy_sea_orm::Error),
}

impl From<tenancy_sea_orm::Error> for AppError {
    fn from(err: tenancy_sea_orm::Error) -> Self {
        Self::Scope(err)
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Mine(msg) => f.write_str(msg),
            Self::Scope(err) => err.fmt(f),
        }
    }
}

/// Kills the backend of the transaction's own connection.
async fn kill_own_backend(txn: &TenantTransaction) {
    let killed = txn
        .execute_unprepared("SELECT pg_terminate_backend(pg_backend_pid())")
        .await;
    let err = killed.expect_err("the backend survived");
    assert_eq!(
        FailureKind::of(&err),
        FailureKind::ConnectionLost,
        "{err:?}"
    );
    assert!(is_retryable(&err));
}

#[tokio::test]
async fn callback_error_survives_a_rollback_on_a_dead_connection() -> TestResult {
    let (test_db, conn) = setup(2).await?;
    let a = create_tenants(&conn, &["a"]).await?.remove(0);
    let db = TenantDb::new(conn.clone())?;

    let result = db
        .transaction::<_, (), AppError>(&a, async move |txn| {
            kill_own_backend(txn).await;
            Err(AppError::Mine("the callback's own error"))
        })
        .await;
    match result {
        Err(AppError::Mine(msg)) => assert_eq!(msg, "the callback's own error"),
        other => panic!("expected the callback's error, got {other:?}"),
    }

    // The same for a nested transaction (a savepoint) whose connection dies.
    let txn = db.begin(&a).await?;
    let nested = txn
        .transaction::<_, (), AppError>(|sp| {
            Box::pin(async move {
                kill_own_backend(sp).await;
                Err(AppError::Mine("nested"))
            })
        })
        .await;
    match nested {
        Err(TransactionError::Transaction(AppError::Mine("nested"))) => {}
        other => panic!("expected the nested callback's error, got {other:?}"),
    }
    assert!(txn.rollback().await.is_err(), "the connection is dead");

    // The pool recovers.
    db.transaction::<_, (), DbErr>(&a, async move |txn| insert(txn, "a", "after").await)
        .await?;
    assert_eq!(rows_of_a(&conn).await?, ["after"]);
    drop(db);
    common::finish(test_db, vec![conn]).await
}

// ---------------------------------------------------------------------------
// 5. A schema dropped behind the library's back
// ---------------------------------------------------------------------------

/// Another process drops the tenant's schema while this `TenantDb` has
/// already used it: the very next transaction must be refused, in default
/// and in strict mode, and nothing may reach `public.projects`.
#[tokio::test]
async fn schema_dropped_behind_the_librarys_back_is_refused_at_once() -> TestResult {
    let (test_db, conn) = setup(2).await?;
    let a = create_tenants(&conn, &["a"]).await?.remove(0);
    let other = common::connect(&test_db, 1).await?;
    let probe = tenancy_core::TableName::new("projects")?;
    let handles = [
        ("default", TenantDb::new(conn.clone())?),
        ("strict", TenantDb::new(conn.clone())?.strict()),
        (
            "probe-table",
            TenantDb::new(conn.clone())?.with_probe_table(probe.clone()),
        ),
        (
            "strict probe-table",
            TenantDb::new(conn.clone())?
                .with_probe_table(probe)
                .strict(),
        ),
    ];
    for (_, handle) in &handles {
        let txn = handle.begin(&a).await?;
        insert(&txn, "a", "before").await?;
        txn.commit().await?;
    }

    other
        .execute_unprepared(r#"DROP SCHEMA "tenant_a" CASCADE"#)
        .await?;

    for (mode, handle) in &handles {
        let written = handle
            .transaction::<_, (), DbErr>(&a, async move |txn| {
                insert(txn, "a", "must not land in public").await
            })
            .await;
        assert!(
            written.is_err(),
            "{mode} mode: a transaction on a dropped schema succeeded"
        );
        let begun = handle.begin(&a).await;
        assert!(
            begun.is_err(),
            "{mode} mode: begin on a dropped schema succeeded"
        );
    }
    for (mode, handle) in &handles {
        match handle.begin(&a).await {
            Err(err @ Error::SchemaMissing { .. }) => {
                assert!(err.to_string().contains("tenant a"), "{err}");
            }
            other => panic!("{mode} mode: expected Error::SchemaMissing, got {other:?}"),
        }
    }
    let public = project::Entity::find().all(&conn).await?;
    assert_eq!(public.len(), 1, "rows reached public: {public:?}");
    assert_eq!(public[0].tenant, CANARY_TENANT);
    assert_eq!(search_path(&conn).await?, DEFAULT_SEARCH_PATH);
    let _: i32 = scalar(&conn, "SELECT 1").await?;
    drop(handles);
    common::finish(test_db, vec![conn, other]).await
}

/// The same for a role whose `USAGE` on the tenant's schema is revoked behind
/// the library's back: PostgreSQL then skips the schema on the search path,
/// and the role may still write `public.projects`.
#[tokio::test]
async fn usage_revoked_behind_the_librarys_back_is_refused_at_once() -> TestResult {
    let (test_db, conn) = setup(2).await?;
    let a = create_tenants(&conn, &["a"]).await?.remove(0);
    let role = common::create_role(
        &conn,
        "tenancy_commit_role",
        "GRANT USAGE ON SCHEMA tenant_a TO {role};
         GRANT SELECT, INSERT ON public.projects, tenant_a.projects TO {role};
         GRANT USAGE ON SEQUENCE public.projects_id_seq, tenant_a.projects_id_seq TO {role}",
    )
    .await?;
    let quoted = role.quoted();
    let outcome = async {
        let options = tenancy_sea_orm::ScopeOptions::new().role(role.clone());
        let probe = tenancy_core::TableName::new("projects")?;
        for db in [
            TenantDb::new(conn.clone())?.with_options(options.clone()),
            TenantDb::new(conn.clone())?
                .with_options(options.clone())
                .strict(),
            TenantDb::new(conn.clone())?
                .with_options(options)
                .with_probe_table(probe),
        ] {
            conn.execute_unprepared(&format!("GRANT USAGE ON SCHEMA tenant_a TO {quoted}"))
                .await?;
            let txn = db.begin(&a).await?;
            insert(&txn, "a", "as the role").await?;
            txn.commit().await?;

            let other = common::connect(&test_db, 1).await?;
            other
                .execute_unprepared(&format!("REVOKE USAGE ON SCHEMA tenant_a FROM {quoted}"))
                .await?;
            other.close().await?;

            let written = db
                .transaction::<_, (), DbErr>(&a, async move |txn| {
                    insert(txn, "a", "must not land in public").await
                })
                .await;
            assert!(written.is_err(), "a role without USAGE wrote somewhere");
            match db.begin(&a).await {
                Err(Error::SchemaAccessDenied { role: Some(r), .. }) => {
                    assert_eq!(r, role.as_str());
                }
                other => panic!("expected Error::SchemaAccessDenied, got {other:?}"),
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

/// With a probe table, a tenant schema that lacks it (made by hand, never
/// migrated) is refused with its own error, naming the table and the tenant.
#[tokio::test]
async fn a_schema_without_the_probe_table_is_refused() -> TestResult {
    let (test_db, conn) = setup(1).await?;
    let a = create_tenants(&conn, &["a"]).await?.remove(0);
    let db = TenantDb::new(conn.clone())?
        .with_probe_table(tenancy_core::TableName::new("seaql_migrations")?);
    match db.begin(&a).await {
        Err(err @ Error::ProbeTableMissing { .. }) => {
            let message = err.to_string();
            assert!(message.contains("tenant a"), "{message}");
            assert!(message.contains(r#""seaql_migrations""#), "{message}");
        }
        other => panic!("expected Error::ProbeTableMissing, got {other:?}"),
    }
    conn.execute_unprepared("CREATE TABLE tenant_a.seaql_migrations (version text)")
        .await?;
    db.begin(&a).await?.commit().await?;
    drop(db);
    common::finish(test_db, vec![conn]).await
}

/// Starts a statement that fails on the server after 300 ms and gives up on
/// it after 50 ms, as a caller's timeout around it would.
async fn abandon_a_statement_that_will_fail(txn: &TenantTransaction) {
    let abandoned = tokio::time::timeout(
        std::time::Duration::from_millis(50),
        txn.execute_unprepared("SELECT 1 / (random() * 0)::int FROM pg_sleep(0.3)"),
    )
    .await;
    assert!(abandoned.is_err(), "the statement should still be running");
}

/// A statement abandoned by the caller (a timeout around it) that then fails
/// on the server aborts the transaction all the same. The caller went on and
/// committed: that must not be reported as a commit. (sqlx hands the abandoned
/// statement's error to the next statement on the connection, which records
/// the failure; these two guard that path.)
#[tokio::test]
async fn a_statement_abandoned_by_a_timeout_that_then_fails_is_not_a_silent_commit() -> TestResult {
    let (test_db, conn) = setup(1).await?;
    let a = create_tenants(&conn, &["a"]).await?.remove(0);
    let db = TenantDb::new(conn.clone())?;

    let txn = db.begin(&a).await?;
    insert(&txn, "a", "before the abandoned statement").await?;
    abandon_a_statement_that_will_fail(&txn).await;
    let after = insert(&txn, "a", "after the abandoned statement").await;
    let committed = txn.commit().await;
    let stored = rows_of_a(&conn).await?;
    assert!(
        committed.is_err() || stored.len() == 2,
        "commit returned Ok but the rows are gone: {stored:?} (the insert after said {after:?})"
    );
    assert!(
        committed.is_err() || after.is_ok(),
        "a failed insert was followed by a successful commit"
    );
    drop(db);
    common::finish(test_db, vec![conn]).await
}

/// The same with nothing between the abandoned statement and the commit.
#[tokio::test]
async fn a_commit_right_after_an_abandoned_failing_statement_is_not_silent() -> TestResult {
    let (test_db, conn) = setup(1).await?;
    let a = create_tenants(&conn, &["a"]).await?.remove(0);
    let db = TenantDb::new(conn.clone())?;

    let txn = db.begin(&a).await?;
    insert(&txn, "a", "before the abandoned statement").await?;
    abandon_a_statement_that_will_fail(&txn).await;
    let committed = txn.commit().await;
    let stored = rows_of_a(&conn).await?;
    assert!(
        committed.is_err() || stored.len() == 1,
        "commit returned Ok but the row is gone: {stored:?}"
    );
    drop(db);
    common::finish(test_db, vec![conn]).await
}
