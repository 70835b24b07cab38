//! The harness against a real server (whichever the fallback chain finds).

#![allow(
    clippy::unwrap_used,
    reason = "helpers are test code too; a failed unwrap is a failed test"
)]

use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use tenancy_testing::{
    DATABASE_PREFIX, HarnessConfig, HarnessError, LOCAL_URL, Source, TestDatabase, sweep_stale,
};

async fn exists(server_url: &str, name: &str) -> bool {
    let conn = Database::connect(server_url).await.unwrap();
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT 1 FROM pg_database WHERE datname = $1",
            [name.into()],
        ))
        .await
        .unwrap();
    conn.close().await.unwrap();
    row.is_some()
}

async fn execute_on(server_url: &str, sql: &str) {
    let conn = Database::connect(server_url).await.unwrap();
    conn.execute_unprepared(sql).await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn create_gives_a_fresh_database_and_close_drops_it() {
    let db = TestDatabase::create().await.unwrap();
    assert!(db.name().starts_with(DATABASE_PREFIX));
    assert!(db.url().contains(db.name()));
    assert!(exists(db.server_url(), db.name()).await);

    let conn = db.connect().await.unwrap();
    let row = conn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT current_database()::text AS db",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get::<String>("", "db").unwrap(), db.name());
    conn.close().await.unwrap();

    let (name, server_url) = (db.name().to_owned(), db.server_url().to_owned());
    db.close().await.unwrap();
    assert!(!exists(&server_url, &name).await);
}

#[tokio::test]
async fn dropping_without_close_drops_the_database_even_with_open_connections() {
    let db = TestDatabase::create().await.unwrap();
    let (name, server_url) = (db.name().to_owned(), db.server_url().to_owned());
    let conn = db.connect().await.unwrap();
    conn.execute_unprepared("SELECT 1").await.unwrap();

    drop(db);

    assert!(!exists(&server_url, &name).await);
    drop(conn);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_test_still_drops_its_database() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let db = TestDatabase::create().await.unwrap();
        tx.send((db.name().to_owned(), db.server_url().to_owned()))
            .unwrap();
        panic!("expected panic: simulating a failing test");
    });
    let (name, server_url) = rx.await.unwrap();
    assert!(task.await.unwrap_err().is_panic());
    assert!(!exists(&server_url, &name).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn names_never_collide() {
    let first = TestDatabase::create().await.unwrap();
    let second = TestDatabase::create().await.unwrap();
    let (third, fourth) = tokio::join!(TestDatabase::create(), TestDatabase::create());
    let all = [first, second, third.unwrap(), fourth.unwrap()];

    let names: HashSet<&str> = all.iter().map(TestDatabase::name).collect();
    assert_eq!(names.len(), all.len(), "{names:?}");
    for db in all {
        db.close().await.unwrap();
    }
}

#[tokio::test]
async fn sweep_drops_only_databases_older_than_an_hour() {
    let db = TestDatabase::create().await.unwrap();
    let server_url = db.server_url().to_owned();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let pid = std::process::id();
    // A counter far above what the harness reaches, so these are ours alone.
    let old = format!("{DATABASE_PREFIX}{}_{pid}_900001", now - 2 * 60 * 60);
    let young = format!("{DATABASE_PREFIX}{}_{pid}_900002", now - 60);
    execute_on(&server_url, &format!("CREATE DATABASE \"{old}\"")).await;
    execute_on(&server_url, &format!("CREATE DATABASE \"{young}\"")).await;

    // Not asserting the count: a parallel test's automatic sweep may get there first.
    sweep_stale(&server_url).await.unwrap();

    assert!(!exists(&server_url, &old).await);
    assert!(exists(&server_url, &young).await);
    execute_on(&server_url, &format!("DROP DATABASE \"{young}\"")).await;
    db.close().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_env_url_is_an_error_not_a_fallback() {
    let url = "postgres://postgres:hunter2@127.0.0.1:1/postgres";
    let err = TestDatabase::create_with(HarnessConfig::new(
        Some(url.to_owned()),
        true,
        LOCAL_URL.to_owned(),
    ))
    .await
    .unwrap_err();

    assert!(
        matches!(err, HarnessError::EnvUrlUnreachable { .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("TENANCY_TEST_DATABASE_URL"), "{message}");
    assert!(message.contains("127.0.0.1:1/postgres"), "{message}");
    assert!(!message.contains("hunter2"), "password leaked: {message}");
    // The cause, at its host:port, in one line; not the pool's timeout.
    assert!(
        message.contains("127.0.0.1:1: connection refused"),
        "{message}"
    );
    assert!(
        !message.contains("timed out") && !message.contains('\n'),
        "{message}"
    );
}

#[tokio::test]
async fn an_env_url_whose_host_does_not_resolve_says_so() {
    let err = TestDatabase::create_with(HarnessConfig::new(
        Some("postgres://postgres@no-such-host.invalid:5432/postgres".to_owned()),
        false,
        LOCAL_URL.to_owned(),
    ))
    .await
    .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("no-such-host.invalid:5432: cannot resolve"),
        "{message}"
    );
    assert!(message.contains("TENANCY_TEST_DATABASE_URL"), "{message}");
}

#[tokio::test]
async fn no_server_at_all_says_what_to_set_up() {
    let err = TestDatabase::create_with(HarnessConfig::new(
        None,
        false,
        "postgres://postgres@127.0.0.1:1/postgres".to_owned(),
    ))
    .await
    .unwrap_err();

    assert!(matches!(err, HarnessError::NoServer { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("TENANCY_TEST_DATABASE_URL="), "{message}");
    assert!(message.contains("Docker"), "{message}");
    assert!(message.contains("127.0.0.1:1"), "{message}");
}

#[tokio::test]
async fn an_explicit_local_server_is_used() {
    let db = TestDatabase::create_with(HarnessConfig::new(None, false, LOCAL_URL.to_owned()))
        .await
        .unwrap();
    assert_eq!(db.source(), Source::LocalServer);
    assert_eq!(db.server_url(), LOCAL_URL);
    let debug = format!("{db:?}");
    assert!(debug.contains(db.name()), "{debug}");
    db.close().await.unwrap();
}

#[tokio::test]
async fn an_env_url_that_answers_is_used() {
    let db = TestDatabase::create_with(HarnessConfig::new(
        Some(LOCAL_URL.to_owned()),
        true,
        "postgres://postgres@127.0.0.1:1/postgres".to_owned(),
    ))
    .await
    .unwrap();
    assert_eq!(db.source(), Source::EnvUrl);
    assert!(exists(db.server_url(), db.name()).await);
    db.close().await.unwrap();
}

#[tokio::test]
async fn with_runs_the_test_on_a_fresh_database_then_drops_it() {
    let (name, server_url, answer) =
        TestDatabase::with(async |db, conn| -> Result<_, Box<dyn std::error::Error>> {
            assert!(exists(db.server_url(), db.name()).await);
            let row = conn
                .query_one_raw(Statement::from_string(
                    DbBackend::Postgres,
                    "SELECT current_database()::text AS db",
                ))
                .await?
                .unwrap();
            assert_eq!(row.try_get::<String>("", "db")?, db.name());
            Ok((db.name().to_owned(), db.server_url().to_owned(), 42))
        })
        .await
        .unwrap();
    assert_eq!(answer, 42);
    assert!(!exists(&server_url, &name).await);
}

#[tokio::test]
async fn with_returns_the_tests_error_and_still_drops_the_database() {
    let mut seen = None;
    let err = TestDatabase::with(async |db, conn| -> Result<(), Box<dyn std::error::Error>> {
        seen = Some((db.name().to_owned(), db.server_url().to_owned()));
        conn.execute_unprepared("SELECT 1 / 0").await?;
        Ok(())
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("division by zero"), "{err}");
    let (name, server_url) = seen.unwrap();
    assert!(!exists(&server_url, &name).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_drops_the_database_when_the_test_panics() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        TestDatabase::with(
            async |db, _conn| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
                tx.send((db.name().to_owned(), db.server_url().to_owned()))
                    .unwrap();
                panic!("expected panic: simulating a failing test");
            },
        )
        .await
    });
    let (name, server_url) = rx.await.unwrap();
    assert!(task.await.unwrap_err().is_panic());
    assert!(!exists(&server_url, &name).await);
}
