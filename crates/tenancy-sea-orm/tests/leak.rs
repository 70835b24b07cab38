//! Nothing of a tenant survives on a pooled connection.
//!
//! The pool has exactly one connection, so the unscoped statement that follows
//! each way a tenant transaction can end (commit, rollback, drop, a closure's
//! `Err`, a panic, a cancelled query, a cancelled `begin`) runs on the very
//! connection the transaction used (or on its replacement, when the library
//! chose to close it). That statement must find the server's defaults: the
//! default search path, no statement timeout, no open transaction, the
//! `public` table and not the tenant's.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use common::{
    CANARY_TENANT, DEFAULT_SEARCH_PATH, Route, TestResult, assert_sqlstate, create_tenants,
    project, scalar, search_path, setup,
};
use sea_orm::{ConnectionTrait as _, DatabaseConnection, DbErr, EntityTrait as _};
use tenancy_core::Tenant;
use tenancy_sea_orm::{ScopeOptions, TenantDb, TenantTransaction};

/// What every scenario leaves behind, checked from outside the library.
///
/// The checks on the library's pool are simple-protocol queries
/// (`common::simple_text`): they use no prepared statement, so they are
/// exact through a transaction-mode pooler too. There the pool's one
/// connection is a pooler client that holds a server connection only inside
/// a transaction, so each check lands on whichever server connection is
/// free; the observer, direct, sees them all.
struct Checker {
    /// The pool of one the tenant transactions use.
    conn: DatabaseConnection,
    /// A second connection, direct, to watch the first from outside.
    observer: DatabaseConnection,
    route: Route,
}

impl Checker {
    /// Asserts the pool's one connection is back to the server's defaults,
    /// and returns its backend pid.
    async fn assert_clean(&self, after: &str) -> Result<i32, DbErr> {
        let conn = &self.conn;
        let text = |sql: &'static str| common::simple_text(conn, sql);
        // 1. The default search path, not the tenant's.
        assert_eq!(
            text("SHOW search_path").await?.as_deref(),
            Some(DEFAULT_SEARCH_PATH),
            "search path leaked after {after}"
        );
        // 2. No transaction-local setting survived (the scopes set a timeout).
        assert_eq!(
            text("SHOW statement_timeout").await?.as_deref(),
            Some("0"),
            "timeout leaked after {after}"
        );
        // 3. Not inside the tenant's transaction: a fresh autocommit statement
        //    has no transaction id (the tenant transactions all wrote a row).
        assert_eq!(
            text("SELECT txid_current_if_assigned()::text").await?,
            None,
            "still inside a transaction after {after}"
        );
        //    VACUUM refuses to run inside a transaction block (25001).
        conn.execute_unprepared("VACUUM public.projects").await?;
        //    Our backend runs this statement (and is not idle in a transaction).
        assert_eq!(
            text("SELECT state FROM pg_stat_activity WHERE pid = pg_backend_pid()")
                .await?
                .as_deref(),
            Some("active")
        );
        // 4. Unqualified names resolve to public: the canary, alone.
        assert_eq!(
            text("SELECT string_agg(tenant, ',') FROM projects")
                .await?
                .as_deref(),
            Some(CANARY_TENANT),
            "unscoped read after {after}"
        );
        // 5. A table that exists only in the tenant's schema is not visible.
        assert_sqlstate(text("SELECT id::text FROM only_in_tenant").await, "42P01");
        // 6. Seen from another connection: no backend of this database is
        //    left idle in a transaction.
        let stuck: i64 = scalar(
            &self.observer,
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()
               AND state LIKE 'idle in transaction%'",
        )
        .await?;
        assert_eq!(
            stuck, 0,
            "a connection is idle in a transaction after {after}"
        );
        let pid = text("SELECT pg_backend_pid()::text")
            .await?
            .unwrap_or_default();
        pid.parse()
            .map_err(|e| DbErr::Custom(format!("backend pid {pid:?}: {e}")))
    }

    /// [`assert_clean`](Self::assert_clean), and that the pool's connection
    /// was reused, not replaced: its backend is still `pid`. Through a pooler
    /// the backend is the pooler's choice, so only the first half applies.
    async fn assert_clean_on(&self, after: &str, pid: i32) -> Result<(), DbErr> {
        let now = self.assert_clean(after).await?;
        if self.route == Route::Direct {
            assert_eq!(
                now, pid,
                "the pool's one connection was replaced after {after}"
            );
        }
        Ok(())
    }

    /// The rows of `tenant_a.projects`, read directly.
    async fn tenant_rows(&self) -> Result<i64, DbErr> {
        scalar(
            &self.observer,
            r#"SELECT count(*) FROM "tenant_a".projects"#,
        )
        .await
    }
}

async fn insert(txn: &TenantTransaction, name: &str) -> Result<(), DbErr> {
    common::insert_project(txn, "a", name).await
}

async fn backend_pid(txn: &TenantTransaction) -> Result<i32, DbErr> {
    scalar(txn, "SELECT pg_backend_pid()").await
}

/// Scoped state set by every transaction of these tests, so that each check
/// has something to find if it leaked.
fn scoped_db(conn: &DatabaseConnection, route: Route) -> TenantDb {
    route
        .tenant_db(conn)
        .with_options(ScopeOptions::new().statement_timeout(Duration::from_secs(30)))
}

/// A database with tenant `a`, the checker, and the library on a pool of one
/// by `route`; `None` when that route is not available (skip printed).
async fn setup_leak(
    test: &str,
    route: Route,
) -> Result<
    Option<(tenancy_testing::TestDatabase, Checker, TenantDb, Tenant)>,
    Box<dyn std::error::Error + Send + Sync>,
> {
    let (test_db, observer) = setup(1).await?;
    let tenant = create_tenants(&observer, &["a"]).await?.remove(0);
    let Some(conn) = route.connect(test, &test_db, 1).await? else {
        common::finish(test_db, vec![observer]).await?;
        return Ok(None);
    };
    let db = scoped_db(&conn, route);
    let checker = Checker {
        conn,
        observer,
        route,
    };
    checker.assert_clean("setup").await?;
    Ok(Some((test_db, checker, db, tenant)))
}

async fn finished_transactions_leave_nothing_behind(route: Route) -> TestResult {
    let Some((test_db, checker, db, a)) =
        setup_leak("finished_transactions_leave_nothing_behind", route).await?
    else {
        return Ok(());
    };

    // Commit.
    let txn = db.begin(&a).await?;
    assert_eq!(search_path(&txn).await?, "tenant_a, public");
    assert_eq!(
        scalar::<String, _>(&txn, "SHOW statement_timeout").await?,
        "30s"
    );
    let pid = backend_pid(&txn).await?;
    insert(&txn, "committed").await?;
    txn.commit().await?;
    checker.assert_clean_on("commit", pid).await?;
    assert_eq!(checker.tenant_rows().await?, 1);

    // Rollback.
    let txn = db.begin(&a).await?;
    let pid = backend_pid(&txn).await?;
    insert(&txn, "rolled back").await?;
    txn.rollback().await?;
    checker.assert_clean_on("rollback", pid).await?;
    assert_eq!(checker.tenant_rows().await?, 1);

    // Dropped without commit or rollback (an early `?`).
    let txn = db.begin(&a).await?;
    let pid = backend_pid(&txn).await?;
    insert(&txn, "dropped").await?;
    drop(txn);
    checker.assert_clean_on("drop", pid).await?;
    assert_eq!(checker.tenant_rows().await?, 1);

    // A statement error inside the transaction, then drop.
    let txn = db.begin(&a).await?;
    insert(&txn, "before the error").await?;
    assert_sqlstate(txn.execute_unprepared("SELECT 1/0").await, "22012");
    drop(txn);
    checker.assert_clean("a failed statement").await?;
    assert_eq!(checker.tenant_rows().await?, 1);

    // Closure returning Ok: committed.
    db.transaction::<_, _, DbErr>(&a, async move |txn| insert(txn, "closure ok").await)
        .await?;
    checker.assert_clean("closure Ok").await?;
    assert_eq!(checker.tenant_rows().await?, 2);

    // Closure returning Err: rolled back, the closure's error returned.
    let result = db
        .transaction::<_, (), _>(&a, async move |txn| {
            insert(txn, "closure err").await?;
            Err(DbErr::Custom("the closure gave up".to_owned()))
        })
        .await;
    assert!(
        matches!(result, Err(DbErr::Custom(ref msg)) if msg == "the closure gave up"),
        "{result:?}"
    );
    checker.assert_clean("closure Err").await?;
    assert_eq!(checker.tenant_rows().await?, 2);

    drop(db);
    common::finish(test_db, vec![checker.conn, checker.observer]).await
}

async fn panic_inside_the_closure_leaves_nothing_behind(route: Route) -> TestResult {
    let Some((test_db, checker, db, a)) =
        setup_leak("panic_inside_the_closure_leaves_nothing_behind", route).await?
    else {
        return Ok(());
    };

    let task_db = db.clone();
    let task_tenant = a.clone();
    let joined = tokio::spawn(async move {
        task_db
            .transaction::<_, (), DbErr>(&task_tenant, async move |txn| {
                insert(txn, "before the panic").await?;
                let pid: i32 = scalar(txn, "SELECT pg_backend_pid()").await?;
                if pid != 0 {
                    panic!("deliberate panic inside a tenant transaction (backend {pid})");
                }
                Ok(())
            })
            .await
    })
    .await;
    let err = joined.expect_err("the task must have panicked");
    assert!(err.is_panic(), "{err:?}");
    checker.assert_clean("a panic").await?;
    assert_eq!(checker.tenant_rows().await?, 0);

    // The pool still serves scoped transactions.
    let txn = db.begin(&a).await?;
    insert(&txn, "after the panic").await?;
    txn.commit().await?;
    assert_eq!(checker.tenant_rows().await?, 1);

    drop(db);
    common::finish(test_db, vec![checker.conn, checker.observer]).await
}

async fn query_cancelled_by_a_timeout_leaves_nothing_behind(route: Route) -> TestResult {
    let Some((test_db, checker, db, a)) =
        setup_leak("query_cancelled_by_a_timeout_leaves_nothing_behind", route).await?
    else {
        return Ok(());
    };

    // begin/commit API: the query's future is dropped mid-flight, then the
    // transaction.
    let txn = db.begin(&a).await?;
    let pid = backend_pid(&txn).await?;
    insert(&txn, "before the cancelled query").await?;
    let cancelled = tokio::time::timeout(
        Duration::from_millis(100),
        txn.execute_unprepared("SELECT pg_sleep(1)"),
    )
    .await;
    assert!(
        cancelled.is_err(),
        "the sleep finished within 100 ms: {cancelled:?}"
    );
    drop(txn);
    checker.assert_clean_on("a cancelled query", pid).await?;
    assert_eq!(checker.tenant_rows().await?, 0);

    // Closure API: the whole `transaction` future is dropped mid-query.
    let cancelled = tokio::time::timeout(
        Duration::from_millis(100),
        db.transaction::<_, (), DbErr>(&a, async move |txn| {
            insert(txn, "before the cancelled closure").await?;
            txn.execute_unprepared("SELECT pg_sleep(1)").await?;
            Ok(())
        }),
    )
    .await;
    assert!(
        cancelled.is_err(),
        "the closure finished within 100 ms: {cancelled:?}"
    );
    checker.assert_clean("a cancelled closure").await?;
    assert_eq!(checker.tenant_rows().await?, 0);

    // A stream dropped before its end.
    let txn = db.begin(&a).await?;
    insert(&txn, "one").await?;
    insert(&txn, "two").await?;
    {
        use futures_util::StreamExt as _;
        let mut stream = project::Entity::find().stream(&txn).await?;
        assert!(stream.next().await.is_some());
    }
    txn.commit().await?;
    checker.assert_clean("a stream dropped early").await?;
    assert_eq!(checker.tenant_rows().await?, 2);

    drop(db);
    common::finish(test_db, vec![checker.conn, checker.observer]).await
}

/// Polls `future` until it has returned `Pending` `polls` times, then drops it.
/// Each poll happens after a wake-up, so each `polls` cancels `begin` one step
/// further (acquiring, sending `BEGIN`, awaiting its answer).
async fn cancel_after_polls<F: Future>(future: F, polls: usize) -> Option<F::Output> {
    let mut future = pin!(future);
    let mut pending = 0;
    std::future::poll_fn(|cx| match future.as_mut().poll(cx) {
        Poll::Ready(output) => Poll::Ready(Some(output)),
        Poll::Pending => {
            pending += 1;
            if pending >= polls {
                Poll::Ready(None)
            } else {
                Poll::Pending
            }
        }
    })
    .await
}

async fn cancelled_begin_leaves_nothing_behind(route: Route) -> TestResult {
    let Some((test_db, checker, db, a)) =
        setup_leak("cancelled_begin_leaves_nothing_behind", route).await?
    else {
        return Ok(());
    };
    let mut cancelled = 0;
    let mut completed = 0;
    // Cancelled after `BEGIN` was sent, the connection must be closed, not
    // pooled: the backend pid then changes.
    let mut replaced = 0;
    let mut pid = checker.assert_clean("setup").await?;
    let mut track = |new_pid: i32| {
        if new_pid != pid {
            replaced += 1;
            pid = new_pid;
        }
    };

    for polls in 1..=8 {
        match cancel_after_polls(db.begin(&a), polls).await {
            None => {
                cancelled += 1;
                println!("begin cancelled after {polls} polls");
            }
            Some(txn) => {
                completed += 1;
                let txn = txn?;
                insert(&txn, "begun").await?;
                drop(txn);
            }
        }
        track(
            checker
                .assert_clean(&format!("begin cancelled after {polls} polls"))
                .await?,
        );
    }
    for micros in [0, 1, 10, 100, 300, 1000, 2000] {
        match tokio::time::timeout(Duration::from_micros(micros), db.begin(&a)).await {
            Err(_elapsed) => {
                cancelled += 1;
                println!("begin cancelled by a {micros} µs timeout");
            }
            Ok(txn) => {
                completed += 1;
                let txn = txn?;
                insert(&txn, "begun").await?;
                drop(txn);
            }
        }
        track(
            checker
                .assert_clean(&format!("begin with a {micros} µs timeout"))
                .await?,
        );
    }
    // Where exactly each one was cancelled depends on timing; the test below
    // pins the worst case down deterministically.
    println!(
        "begin: {cancelled} cancelled, {completed} completed, connection replaced {replaced} times"
    );
    assert!(
        cancelled >= 1,
        "no begin was cancelled midway ({completed} completed)"
    );
    assert_eq!(checker.tenant_rows().await?, 0);

    // The pool of one still serves scoped transactions.
    let txn = db.begin(&a).await?;
    assert_eq!(search_path(&txn).await?, "tenant_a, public");
    insert(&txn, "after the cancellations").await?;
    txn.commit().await?;
    assert_eq!(checker.tenant_rows().await?, 1);
    checker.assert_clean("the final commit").await?;

    drop(db);
    common::finish(test_db, vec![checker.conn, checker.observer]).await
}

/// A TCP proxy between the pool and the server that can hold back the
/// server's answers, so a future can be dropped after the server ran a
/// statement but before the client heard back.
struct DelayProxy {
    port: u16,
    delay_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl DelayProxy {
    async fn start(upstream: String) -> std::io::Result<Self> {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU64, Ordering};
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        use tokio::net::{TcpListener, TcpStream};

        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let delay_ms = Arc::new(AtomicU64::new(0));
        let delay = Arc::clone(&delay_ms);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let delay = Arc::clone(&delay);
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    let to_server = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                        let _ = server_write.shutdown().await;
                    });
                    let mut buf = vec![0_u8; 64 * 1024];
                    loop {
                        let n = match server_read.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let ms = delay.load(Ordering::SeqCst);
                        if ms > 0 {
                            tokio::time::sleep(Duration::from_millis(ms)).await;
                        }
                        if client_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = client_write.shutdown().await;
                    to_server.abort();
                });
            }
        });
        Ok(Self {
            port,
            delay_ms,
            task,
        })
    }

    fn delay_answers(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap();
        self.delay_ms.store(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A pool of one connection to the test database, through `proxy`.
async fn connect_through(
    test_db: &tenancy_testing::TestDatabase,
) -> Result<(DelayProxy, DatabaseConnection), Box<dyn std::error::Error + Send + Sync>> {
    let mut url = url::Url::parse(test_db.url())?;
    let upstream = format!(
        "{}:{}",
        url.host_str().unwrap_or("127.0.0.1"),
        url.port_or_known_default().unwrap_or(5432)
    );
    let proxy = DelayProxy::start(upstream).await?;
    url.set_host(Some("127.0.0.1"))?;
    url.set_port(Some(proxy.port)).unwrap();
    let mut opts = sea_orm::ConnectOptions::new(url.to_string());
    opts.max_connections(1)
        .min_connections(0)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(10))
        // No ping on acquire: `begin` goes straight to sending BEGIN.
        .test_before_acquire(false)
        .sqlx_logging(false);
    let conn = sea_orm::Database::connect(opts).await?;
    Ok((proxy, conn))
}

/// Waits until the observer sees a backend of this database (other than its
/// own) in `state`, and returns its pid.
async fn wait_for_state(observer: &DatabaseConnection, state: &str) -> Result<i32, DbErr> {
    let sql = format!(
        "SELECT coalesce(max(pid), 0) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = '{state}'"
    );
    for _ in 0..400 {
        let pid: i32 = scalar(observer, &sql).await?;
        if pid != 0 {
            return Ok(pid);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Err(DbErr::Custom(format!("no backend reached state {state}")))
}

/// The worst case of a cancelled `begin`, made deterministic: the server has
/// run `BEGIN; SET LOCAL search_path …` (the observer sees the backend idle in
/// a transaction) but its answer is held back, and the `begin` future is
/// dropped then. The connection is in the tenant's transaction on the server
/// while sqlx believes it is not; the library must close it, not pool it.
#[tokio::test]
async fn begin_cancelled_after_the_server_ran_it_closes_the_connection() -> TestResult {
    let (test_db, setup_conn) = setup(1).await?;
    let a = create_tenants(&setup_conn, &["a"]).await?.remove(0);
    let (proxy, conn) = connect_through(&test_db).await?;
    let checker = Checker {
        conn,
        observer: common::connect(&test_db, 1).await?,
        route: Route::Direct,
    };
    let db = scoped_db(&checker.conn, Route::Direct);
    let mut pid = checker.assert_clean("setup").await?;

    for attempt in 0..3 {
        proxy.delay_answers(Duration::from_millis(500));
        let begin = db.begin(&a);
        let in_transaction = wait_for_state(&checker.observer, "idle in transaction");
        tokio::select! {
            seen = in_transaction => assert_eq!(seen?, pid, "another backend is in a transaction"),
            begun = begin => panic!("begin finished despite the delayed answer: {begun:?}"),
        }
        // The begin future is dropped here.
        proxy.delay_answers(Duration::ZERO);
        let new_pid = checker
            .assert_clean(&format!("cancelled begin #{attempt}"))
            .await?;
        assert_ne!(
            new_pid, pid,
            "the connection left in a transaction went back to the pool"
        );
        pid = new_pid;
    }

    // The pool of one still serves scoped transactions.
    let txn = db.begin(&a).await?;
    insert(&txn, "after the cancellations").await?;
    txn.commit().await?;
    assert_eq!(checker.tenant_rows().await?, 1);
    checker
        .assert_clean("a commit after the cancellations")
        .await?;

    drop(db);
    common::finish(test_db, vec![setup_conn, checker.conn, checker.observer]).await
}

/// A commit cancelled after the server committed (its answer held back): the
/// connection is drained and reused, clean; the row is committed.
#[tokio::test]
async fn commit_cancelled_after_the_server_ran_it_leaves_nothing_behind() -> TestResult {
    let (test_db, setup_conn) = setup(1).await?;
    let a = create_tenants(&setup_conn, &["a"]).await?.remove(0);
    let (proxy, conn) = connect_through(&test_db).await?;
    let checker = Checker {
        conn,
        observer: common::connect(&test_db, 1).await?,
        route: Route::Direct,
    };
    let db = scoped_db(&checker.conn, Route::Direct);
    checker.assert_clean("setup").await?;

    let txn = db.begin(&a).await?;
    let pid = backend_pid(&txn).await?;
    insert(&txn, "committed, answer lost").await?;
    proxy.delay_answers(Duration::from_millis(500));
    let commit = txn.commit();
    let committed = async {
        // Idle outside a transaction: the server ran COMMIT.
        loop {
            let state: Option<String> = scalar(
                &checker.observer,
                &format!("SELECT state FROM pg_stat_activity WHERE pid = {pid}"),
            )
            .await?;
            if state.as_deref() == Some("idle") {
                return Ok::<_, DbErr>(());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        seen = committed => seen?,
        done = commit => panic!("commit finished despite the delayed answer: {done:?}"),
    }
    proxy.delay_answers(Duration::ZERO);
    checker.assert_clean("a cancelled commit").await?;
    assert_eq!(checker.tenant_rows().await?, 1);

    drop(db);
    common::finish(test_db, vec![setup_conn, checker.conn, checker.observer]).await
}

both_routes!(
    #[tokio::test]
    finished_transactions_leave_nothing_behind
);

both_routes!(
    #[tokio::test]
    panic_inside_the_closure_leaves_nothing_behind
);

both_routes!(
    #[tokio::test]
    query_cancelled_by_a_timeout_leaves_nothing_behind
);

both_routes!(
    #[tokio::test]
    cancelled_begin_leaves_nothing_behind
);
