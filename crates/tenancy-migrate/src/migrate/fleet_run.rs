//! A fleet run: every tenant, a bounded number at a time, each in its own
//! transaction, with events, logs and a report.

use std::any::Any;
use std::collections::{HashSet, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use futures_util::FutureExt;
use futures_util::future::join_all;
use sea_orm_migration::MigratorTrait;
use tenancy_core::{TenantId, TenantStatus};
use tracing::Instrument;

use super::MigrateAll;
use super::runner_slot::RunnerSlot;
use super::tenant::run_tenant;
use crate::events::{MigrationEvent, Progress};
use crate::migrator::migration_names;
use crate::report::{Direction, FleetReport, TenantReport};
use crate::tenant_txn::{LockWait, qualified_ledger};
use crate::{CorruptRecord, Error, StatusFilter, TenantFleet, TenantList, TenantRecord};
use sea_orm::{ConnectionTrait, DbBackend, Statement};

/// The tenants a fleet run covers, ordered by id: every tenant that is not
/// soft-deleted (the ones status and health count), or only active ones;
/// and the registry rows that would be among them but do not validate.
async fn fleet_members<M: MigratorTrait>(
    fleet: &TenantFleet<M>,
    only_active: bool,
) -> Result<(Vec<TenantRecord>, Vec<CorruptRecord>), Error> {
    let in_run = |status: TenantStatus| match status {
        TenantStatus::Active => true,
        TenantStatus::Suspended | TenantStatus::Provisioning => !only_active,
        _ => false,
    };
    let TenantList {
        mut tenants,
        mut corrupt,
        ..
    } = fleet.list(StatusFilter::All).await?;
    tenants.retain(|t| in_run(t.status));
    corrupt.retain(|c| c.in_run(in_run));
    Ok((tenants, corrupt))
}

pub(super) async fn run_fleet<M: MigratorTrait>(
    fleet: &TenantFleet<M>,
    direction: Direction,
    steps: u32,
    options: &MigrateAll,
) -> Result<FleetReport, Error> {
    let started = Instant::now();
    migration_names::<M>()?;
    let (mut tenants, corrupt) = fleet_members(fleet, options.only_active).await?;
    // One pass over every migrations table finds the tenants with nothing to
    // do, so they cost no transaction: a fleet with nothing pending migrates
    // in the time of a status check, not of one round trip set per tenant.
    // Tenants found behind are re-checked under their lock, so a concurrent
    // run between the two is harmless.
    let up_to_date: HashSet<TenantId> = match direction {
        Direction::Up => fleet
            .fleet_status()
            .await?
            .tenants
            .into_iter()
            .filter(|t| t.is_up_to_date() && t.unknown.is_empty())
            .map(|t| t.tenant)
            .collect(),
        Direction::Down => HashSet::new(),
    };
    let run = FleetRun {
        fleet,
        direction,
        steps,
        options,
        up_to_date,
        total: tenants.len(),
        completed: AtomicUsize::new(0),
        stopped: AtomicBool::new(false),
        contended: AtomicBool::new(false),
    };
    let concurrency = options
        .concurrency
        .unwrap_or_else(|| fleet.config.concurrency())
        .max(1);
    // Going up, runners divide the fleet; each starts at its own point.
    let slot = match direction {
        Direction::Up => {
            RunnerSlot::take(&fleet.conn, fleet.config.registry().schema(), concurrency).await
        }
        Direction::Down => None,
    };
    if let Some(slot) = &slot {
        let start = slot.start(tenants.len());
        tenants.rotate_left(start);
    }
    let mut reports = run.run(tenants, concurrency).await;
    drop(slot);
    reports.sort_by(|a, b| a.tenant.cmp(&b.tenant));
    // Spares after the tenants: a deploy waits for its tenants first. A
    // rollback leaves them: they stay what `create` would build.
    let spares = match direction {
        Direction::Up => fleet.migrate_spares(concurrency).await?,
        Direction::Down => Vec::new(),
    };
    let mut report = FleetReport::new(direction, reports, corrupt, started.elapsed());
    report.spares = spares;
    if report.is_success() {
        tracing::info!(%report, "fleet run finished");
    } else {
        tracing::warn!(%report, "fleet run finished with failures");
    }
    Ok(report)
}

/// The shared state of one fleet run.
struct FleetRun<'a, M> {
    fleet: &'a TenantFleet<M>,
    direction: Direction,
    steps: u32,
    options: &'a MigrateAll,
    /// Tenants the fleet status found with nothing pending.
    up_to_date: HashSet<TenantId>,
    total: usize,
    completed: AtomicUsize,
    stopped: AtomicBool,
    /// Set once a tenant was found held by another runner: from then on a
    /// tenant's ledger is read (one statement) before its transaction is
    /// opened, so the tenants the other runners finished cost no
    /// transaction here. A lone runner never pays for the read.
    contended: AtomicBool,
}

/// A tenant's turn in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    /// The first: going up, a tenant another runner holds is passed over.
    First,
    /// Back to a tenant passed over, after every other tenant was started:
    /// now waiting for its lock, then finding in its ledger whatever the
    /// other runner applied.
    Deferred,
}

impl<M: MigratorTrait> FleetRun<'_, M> {
    /// Every tenant, `concurrency` at a time. Several runners on one fleet
    /// divide it: going up, each passes over the tenants another holds and
    /// comes back to them once it has started all the others, so N runners
    /// work on N tenants' migrations at once rather than queueing on the
    /// same one. A tenant passed over goes to the back of the queue, and
    /// the worker that passed it over keeps taking work, so none is left.
    async fn run(&self, tenants: Vec<TenantRecord>, concurrency: usize) -> Vec<TenantReport> {
        let queue: Mutex<VecDeque<(TenantRecord, Turn)>> =
            Mutex::new(tenants.into_iter().map(|t| (t, Turn::First)).collect());
        let next = || queue.lock().ok().and_then(|mut q| q.pop_front());
        let worker = || async {
            let mut reports = Vec::new();
            while let Some((record, turn)) = next() {
                match self.tenant(record, turn).await {
                    Ok(report) => reports.push(report),
                    Err(record) => {
                        if let Ok(mut q) = queue.lock() {
                            q.push_back((record, Turn::Deferred));
                        }
                    }
                }
            }
            reports
        };
        join_all((0..concurrency).map(|_| worker()))
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// One tenant's turn: its report, or the record back when another
    /// runner holds it on its first turn.
    async fn tenant(&self, record: TenantRecord, turn: Turn) -> Result<TenantReport, TenantRecord> {
        let (id, schema) = (&record.id, &record.schema);
        if self.options.stop_on_first_failure && self.stopped.load(Ordering::SeqCst) {
            let progress = self.complete_one();
            self.emit(&MigrationEvent::Skipped {
                tenant: id,
                schema,
                progress,
            });
            return Ok(TenantReport::skipped(
                record.id,
                record.schema,
                self.direction,
            ));
        }
        if turn == Turn::First {
            self.emit(&MigrationEvent::Started {
                tenant: id,
                schema,
                progress: Progress {
                    completed: self.completed.load(Ordering::SeqCst),
                    total: self.total,
                },
            });
        }
        // Only going up: two rollbacks must each revert what the other left.
        let wait = match (turn, self.direction) {
            (Turn::First, Direction::Up) => LockWait::Try,
            _ => LockWait::Wait,
        };
        let started = Instant::now();
        let result = if self.up_to_date.contains(id)
            || (wait == LockWait::Try
                && self.contended.load(Ordering::SeqCst)
                && self.done_elsewhere(&record).await)
        {
            Ok(Some(Vec::new()))
        } else {
            let span = tracing::info_span!("tenant", tenant = %id, schema = %schema);
            AssertUnwindSafe(run_tenant(
                self.fleet,
                &record,
                self.direction,
                self.steps,
                wait,
            ))
            .catch_unwind()
            .instrument(span)
            .await
            .unwrap_or_else(|panic| {
                Err(Error::Panicked {
                    tenant: id.clone(),
                    schema: schema.clone(),
                    message: panic_message(panic.as_ref()),
                })
            })
        };
        let result = match result {
            Ok(Some(applied)) => Ok(applied),
            Ok(None) => {
                tracing::info!(tenant = %id, %schema, "another runner holds this tenant; coming back to it at the end");
                self.contended.store(true, Ordering::SeqCst);
                return Err(record);
            }
            Err(error) => Err(error),
        };
        let duration = started.elapsed();
        match result {
            Ok(applied) => {
                let progress = self.complete_one();
                tracing::info!(
                    tenant = %id,
                    schema = %schema,
                    migrations = ?applied,
                    ?duration,
                    "tenant {} done",
                    match self.direction {
                        Direction::Up => "migration",
                        Direction::Down => "rollback",
                    },
                );
                self.emit(&MigrationEvent::Finished {
                    tenant: id,
                    schema,
                    applied: &applied,
                    duration,
                    progress,
                });
                let mut report = TenantReport::succeeded(
                    record.id,
                    record.schema,
                    self.direction,
                    applied,
                    duration,
                );
                report.deferred = turn == Turn::Deferred;
                Ok(report)
            }
            Err(error) => {
                self.stopped.store(true, Ordering::SeqCst);
                let progress = self.complete_one();
                // Logged here, naming the tenant, so failures reach error
                // trackers even when the caller only looks at the summary.
                tracing::error!(tenant = %id, schema = %schema, %error, "{error}");
                self.emit(&MigrationEvent::Failed {
                    tenant: id,
                    schema,
                    error: &error,
                    duration,
                    progress,
                });
                let mut report =
                    TenantReport::failed(record.id, record.schema, self.direction, error, duration);
                report.deferred = turn == Turn::Deferred;
                Ok(report)
            }
        }
    }

    /// Whether the tenant's ledger holds exactly `M`'s migrations already,
    /// read without a transaction. Committed ledger rows are final, so
    /// "all there" needs no lock; anything else (including an error) sends
    /// the tenant through its transaction, which decides under the lock.
    async fn done_elsewhere(&self, record: &TenantRecord) -> bool {
        let (Ok(names), Ok(ledger)) = (
            migration_names::<M>(),
            qualified_ledger::<M>(&record.schema),
        ) else {
            return false;
        };
        let rows = self
            .fleet
            .conn
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                format!("SELECT version FROM {ledger}"),
            ))
            .await;
        let Ok(rows) = rows else {
            return false;
        };
        let applied: HashSet<String> = rows
            .iter()
            .filter_map(|row| row.try_get::<String>("", "version").ok())
            .collect();
        // Exactly `M`'s: a migration unknown to this build is refused under
        // the lock, naming it, as the fleet status pre-check leaves it.
        applied.len() == names.len() && names.iter().all(|name| applied.contains(name))
    }

    fn complete_one(&self) -> Progress {
        Progress {
            completed: self.completed.fetch_add(1, Ordering::SeqCst) + 1,
            total: self.total,
        }
    }

    fn emit(&self, event: &MigrationEvent<'_>) {
        if let Some(handler) = &self.options.on_event {
            handler(event);
        }
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a non-string panic payload)".to_owned())
}
