//! Fault: the process running `migrate_all` is killed (SIGKILL) mid-run, at points
//! made certain by gates: a migration waits on an advisory lock the test
//! holds, so the child is killed while it is known to be inside that
//! migration (or waiting for a tenant's lock, or at a random moment).
//!
//! After each kill: every tenant is all-or-nothing (its ledger and its
//! tables agree, at the old version or the new one), a rerun converges, and
//! no advisory lock is left in the database.
//!
//! The child is this test binary run again with `TENANCY_FAULT_CHILD_URL` set
//! (the ignored test `child_migrate_all`), so no extra binary is needed.
#![cfg(unix)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    elided_lifetimes_in_paths
)]

mod fault_support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fault_support::{BoxError, pg, pool};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use sea_orm_migration::{MigrationName, MigrationTrait, MigratorTrait, SchemaManager};
use tenancy::{MigrateAll, NewTenant, TenantFleet, TenantId};
use tenancy_testing::TestDatabase;

const CHILD_URL: &str = "TENANCY_FAULT_CHILD_URL";
const TENANTS: usize = 12;
const CONCURRENCY: usize = 3;
/// The gate: a session advisory lock the test holds; gated migrations wait
/// for it with a shared lock. Its own key space ("gate"), apart from the
/// library's.
const GATE_KEY: i64 = 0x6761_7465;
const M1: &str = "m1_create_items";
const M2: &str = "m2_create_audit";
const M3: &str = "m3_seed_items";

async fn exec(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    manager
        .get_connection()
        .execute_unprepared(sql)
        .await
        .map(drop)
}

/// Waits at the gate when `public.fault_gate` names this schema and step.
fn gate(step: &str) -> String {
    format!(
        "SELECT pg_advisory_xact_lock_shared({GATE_KEY}) FROM public.fault_gate \
         WHERE schema_name = current_schema() AND step = '{step}'"
    )
}

struct CreateItems;
impl MigrationName for CreateItems {
    fn name(&self) -> &str {
        M1
    }
}
#[async_trait::async_trait]
impl MigrationTrait for CreateItems {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        exec(
            manager,
            "CREATE TABLE items (id serial PRIMARY KEY, note text NOT NULL)",
        )
        .await
    }
}

/// Waits at gate `m2` before its DDL.
struct CreateAudit;
impl MigrationName for CreateAudit {
    fn name(&self) -> &str {
        M2
    }
}
#[async_trait::async_trait]
impl MigrationTrait for CreateAudit {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        exec(manager, &gate("m2")).await?;
        exec(
            manager,
            "CREATE TABLE audit (id serial PRIMARY KEY, at timestamptz DEFAULT now())",
        )
        .await
    }
}

/// Writes data, then waits at gate `m3`: the tenant's whole migration is
/// done but for the ledger rows and the commit.
struct SeedItems;
impl MigrationName for SeedItems {
    fn name(&self) -> &str {
        M3
    }
}
#[async_trait::async_trait]
impl MigrationTrait for SeedItems {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        exec(
            manager,
            "INSERT INTO items (note) VALUES ('seed 1'), ('seed 2'), ('seed 3');
             CREATE INDEX items_note ON items (note)",
        )
        .await?;
        exec(manager, &gate("m3")).await
    }
}

/// What the tenants are created with.
struct V1;
impl MigratorTrait for V1 {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateItems)]
    }
}

/// What the child (and the reruns) migrate to.
struct V3;
impl MigratorTrait for V3 {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateItems),
            Box::new(CreateAudit),
            Box::new(SeedItems),
        ]
    }
}

/// The child process's body: `migrate_all` to V3, until it is killed.
#[tokio::test]
#[ignore = "the child process of the SIGKILL tests; does nothing unless they start it"]
async fn child_migrate_all() -> Result<(), BoxError> {
    let Ok(url) = std::env::var(CHILD_URL) else {
        return Ok(());
    };
    let conn = sea_orm::Database::connect(url.as_str()).await?;
    let fleet = TenantFleet::<V3>::new(conn);
    let report = fleet
        .migrate_all(MigrateAll::new().concurrency(CONCURRENCY))
        .await?;
    eprintln!("child finished: {report}");
    Ok(())
}

fn tenant_id(i: usize) -> TenantId {
    TenantId::new(&format!("k{i:02}")).unwrap()
}

fn schema(i: usize) -> String {
    format!("tenant_k{i:02}")
}

struct Fixture {
    test_db: TestDatabase,
    /// One connection: checks, and the gate's session lock.
    admin: DatabaseConnection,
}

async fn fixture(gated: &[(usize, &str)]) -> Result<Fixture, BoxError> {
    let test_db = TestDatabase::create().await?;
    let admin = pool(&test_db, 1).await?;
    let fleet = TenantFleet::<V1>::new(admin.clone());
    fleet.install().await?;
    for i in 0..TENANTS {
        fleet.create(&tenant_id(i), NewTenant::new()).await?;
    }
    admin
        .execute_unprepared("CREATE TABLE public.fault_gate (schema_name text, step text)")
        .await?;
    for (i, step) in gated {
        admin
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO public.fault_gate VALUES ($1, $2)",
                [schema(*i).into(), (*step).into()],
            ))
            .await?;
    }
    Ok(Fixture { test_db, admin })
}

fn spawn_child(url: &str) -> Result<Child, BoxError> {
    Ok(Command::new(std::env::current_exe()?)
        .args([
            "child_migrate_all",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_URL, url)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?)
}

/// Waits until `waits` advisory locks are awaited in the database (the
/// gated migrations have reached their gates); fails if the child exits.
async fn wait_for_gates(
    admin: &DatabaseConnection,
    mut child: Option<&mut Child>,
    waits: i64,
) -> Result<(), BoxError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(child) = child.as_deref_mut()
            && let Some(status) = child.try_wait()?
        {
            let mut stderr = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr)?;
            panic!("the child exited ({status}) before reaching the gates:\n{stderr}");
        }
        let now = pg::count(admin, pg::ADVISORY_WAITS).await?;
        if now == waits {
            return Ok(());
        }
        assert!(
            Instant::now() < deadline,
            "only {now} of {waits} gates reached in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sigkill(child: &mut Child) -> Result<(), BoxError> {
    use std::os::unix::process::ExitStatusExt as _;
    let exit = sigkill_or_finished(child)?;
    assert_eq!(
        exit.signal(),
        Some(9),
        "the child was not killed by SIGKILL: {exit}"
    );
    Ok(())
}

/// Sends SIGKILL (`Child::kill` on Unix: no chance to clean up) and reaps
/// the child. A child that exited just before (still a zombie, so `kill`
/// succeeds) shows its own exit status instead of the signal.
fn sigkill_or_finished(child: &mut Child) -> Result<std::process::ExitStatus, BoxError> {
    child.kill()?;
    Ok(child.wait()?)
}

/// The state of one tenant: its ledger and what its migrations leave.
#[derive(Debug, PartialEq, Eq)]
enum TenantState {
    /// Ledger {M1}, no `audit`, no seed rows.
    Untouched,
    /// Ledger {M1, M2, M3}, `audit` exists, three seed rows and the index.
    Migrated,
}

async fn tenant_state(admin: &DatabaseConnection, i: usize) -> Result<TenantState, BoxError> {
    let schema = schema(i);
    let row = admin
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT (SELECT string_agg(version, ',' ORDER BY version) FROM {schema}.seaql_migrations) AS ledger,
                        to_regclass('{schema}.audit') IS NOT NULL AS audit,
                        to_regclass('{schema}.items_note') IS NOT NULL AS index,
                        (SELECT count(*) FROM {schema}.items WHERE note LIKE 'seed %') AS seeds"
            ),
        ))
        .await?
        .unwrap();
    let ledger: String = row.try_get("", "ledger")?;
    let audit: bool = row.try_get("", "audit")?;
    let index: bool = row.try_get("", "index")?;
    let seeds: i64 = row.try_get("", "seeds")?;
    let state = (ledger.as_str(), audit, index, seeds);
    if state == (M1, false, false, 0) {
        Ok(TenantState::Untouched)
    } else if state == (&format!("{M1},{M2},{M3}"), true, true, 3) {
        Ok(TenantState::Migrated)
    } else {
        panic!(
            "{schema} is half-migrated: ledger {ledger}, audit {audit}, index {index}, {seeds} seed rows"
        )
    }
}

/// After the kill: the child's backends gone, no advisory lock left, every
/// tenant whole; a rerun migrates the rest, a second rerun finds nothing.
/// Returns how many tenants the child had finished.
async fn check_and_converge(fx: Fixture, must_be_untouched: &[usize]) -> Result<usize, BoxError> {
    let admin = &fx.admin;
    // The gate opens (if it was closed); the killed child's backends notice
    // their client is gone once they next talk to it, and roll back.
    admin
        .execute_unprepared("SELECT pg_advisory_unlock_all()")
        .await?;
    let left = pg::settle(admin, pg::OTHER_BACKENDS, 0, Duration::from_secs(30)).await?;
    assert_eq!(left, 0, "the killed child's backends are still there");
    assert_eq!(
        pg::count(admin, pg::ADVISORY_LOCKS).await?,
        0,
        "advisory locks left behind"
    );

    let mut migrated = 0;
    for i in 0..TENANTS {
        let state = tenant_state(admin, i).await?;
        if must_be_untouched.contains(&i) {
            assert_eq!(
                state,
                TenantState::Untouched,
                "{} was killed mid-migration",
                schema(i)
            );
        }
        if state == TenantState::Migrated {
            migrated += 1;
        }
    }

    admin
        .execute_unprepared("DELETE FROM public.fault_gate")
        .await?;
    let conn = pool(&fx.test_db, 4).await?;
    let fleet = TenantFleet::<V3>::new(conn.clone());
    let report = fleet
        .migrate_all(MigrateAll::new().concurrency(CONCURRENCY))
        .await?;
    assert!(report.is_success(), "the rerun failed: {report}");
    assert_eq!(report.applied_total(), (TENANTS - migrated) * 2, "{report}");
    let again = fleet.migrate_all(MigrateAll::new()).await?;
    assert!(again.is_success() && again.applied_total() == 0, "{again}");
    for i in 0..TENANTS {
        assert_eq!(tenant_state(admin, i).await?, TenantState::Migrated);
    }
    assert!(fleet.fleet_status().await?.is_up_to_date());
    let health = fleet.health().await?;
    assert!(health.is_healthy(), "{health}");
    conn.close().await?;
    assert_eq!(
        pg::count(admin, pg::ADVISORY_LOCKS).await?,
        0,
        "advisory locks left behind"
    );

    fx.admin.close().await?;
    fx.test_db.close().await?;
    Ok(migrated)
}

/// Gated tenants: three, so the run (three at a time) stalls with all three
/// inside a migration, some tenants done and some not started.
const GATED: [usize; 3] = [2, 5, 8];

async fn kill_at_gate(step: &str) -> Result<(), BoxError> {
    let gated: Vec<_> = GATED.iter().map(|i| (*i, step)).collect();
    let fx = fixture(&gated).await?;
    fx.admin
        .execute_unprepared(&format!("SELECT pg_advisory_lock({GATE_KEY})"))
        .await?;
    let mut child = spawn_child(fx.test_db.url())?;
    wait_for_gates(&fx.admin, Some(&mut child), GATED.len() as i64).await?;
    sigkill(&mut child)?;
    let migrated = check_and_converge(fx, &GATED).await?;
    eprintln!("killed at gate {step}: the child had finished {migrated} of {TENANTS} tenants");
    Ok(())
}

#[tokio::test]
async fn sigkill_at_the_start_of_a_migration() -> Result<(), BoxError> {
    kill_at_gate("m2").await
}

#[tokio::test]
async fn sigkill_after_a_tenants_ddl_and_data_before_its_commit() -> Result<(), BoxError> {
    kill_at_gate("m3").await
}

/// The child is killed while it waits for a tenant's own lock, held by
/// another runner (this process) that is mid-migration on that tenant.
#[tokio::test]
async fn sigkill_while_waiting_for_a_tenants_lock() -> Result<(), BoxError> {
    let fx = fixture(&[(4, "m2")]).await?;
    fx.admin
        .execute_unprepared(&format!("SELECT pg_advisory_lock({GATE_KEY})"))
        .await?;
    // The other runner: migrates tenant 4, holding its lock, stuck at the gate.
    let other_conn = pool(&fx.test_db, 1).await?;
    let other = tokio::spawn({
        let fleet = TenantFleet::<V3>::new(other_conn.clone());
        async move { fleet.migrate_tenant(&tenant_id(4)).await }
    });
    wait_for_gates(&fx.admin, None, 1).await?;
    let mut child = spawn_child(fx.test_db.url())?;
    // The other runner at the gate, the child at tenant 4's lock.
    wait_for_gates(&fx.admin, Some(&mut child), 2).await?;
    sigkill(&mut child)?;
    fx.admin
        .execute_unprepared(&format!("SELECT pg_advisory_unlock({GATE_KEY})"))
        .await?;
    let report = other.await??;
    assert!(report.is_success(), "the other runner failed: {report:?}");
    other_conn.close().await?;
    let migrated = check_and_converge(fx, &[]).await?;
    eprintln!("killed waiting for a tenant lock: {migrated} of {TENANTS} tenants migrated");
    Ok(())
}

/// In-process cancellation: the `migrate_all` future is dropped while three
/// tenants are mid-transaction. Their connections must not go back to the
/// pool inside a transaction still holding the tenants' advisory locks.
#[tokio::test]
async fn dropped_migrate_all_future_leaves_no_transaction_or_lock() -> Result<(), BoxError> {
    let gated: Vec<_> = GATED.iter().map(|i| (*i, "m3")).collect();
    let fx = fixture(&gated).await?;
    fx.admin
        .execute_unprepared(&format!("SELECT pg_advisory_lock({GATE_KEY})"))
        .await?;
    let conn = pool(&fx.test_db, 4).await?;
    let fleet = TenantFleet::<V3>::new(conn.clone());
    {
        let run = fleet.migrate_all(MigrateAll::new().concurrency(CONCURRENCY));
        tokio::pin!(run);
        tokio::select! {
            report = &mut run => panic!("migrate_all went through a closed gate: {report:?}"),
            reached = wait_for_gates(&fx.admin, None, GATED.len() as i64) => reached?,
        }
    }
    fx.admin
        .execute_unprepared(&format!("SELECT pg_advisory_unlock({GATE_KEY})"))
        .await?;
    // With the pool still open: nothing idle in a transaction, no lock held.
    let idle = pg::settle(
        &fx.admin,
        pg::IDLE_IN_TRANSACTION,
        0,
        Duration::from_secs(10),
    )
    .await?;
    assert_eq!(
        idle, 0,
        "pooled connections left idle in a migration transaction"
    );
    let locks = pg::settle(&fx.admin, pg::ADVISORY_LOCKS, 0, Duration::from_secs(10)).await?;
    assert_eq!(locks, 0, "tenant locks still held by pooled connections");
    conn.close().await?;
    let migrated = check_and_converge(fx, &GATED).await?;
    eprintln!("migrate_all dropped at gate m3: {migrated} of {TENANTS} tenants had finished");
    Ok(())
}

/// No gate: killed after a random delay, wherever the run happens to be
/// (opening a transaction, mid-DDL, in COMMIT, between tenants).
#[tokio::test]
async fn sigkill_at_random_moments() -> Result<(), BoxError> {
    let seed = fault_support::seed();
    let mut rng = fault_support::rng::Rng::new(seed);
    for _ in 0..3 {
        let fx = fixture(&[]).await?;
        let mut child = spawn_child(fx.test_db.url())?;
        let delay = Duration::from_millis(20 + rng.below(400));
        tokio::time::sleep(delay).await;
        if child.try_wait()?.is_some() {
            eprintln!("the child finished within {delay:?}; nothing to kill");
        } else {
            // The child may finish between the check and the signal: then
            // it exited on its own, which the invariants below cover too.
            let exit = sigkill_or_finished(&mut child)?;
            assert!(
                std::os::unix::process::ExitStatusExt::signal(&exit) == Some(9) || exit.success(),
                "the child neither finished nor was killed by SIGKILL: {exit}"
            );
        }
        let migrated = check_and_converge(fx, &[]).await?;
        eprintln!("killed after {delay:?}: the child had finished {migrated} of {TENANTS} tenants");
    }
    Ok(())
}
