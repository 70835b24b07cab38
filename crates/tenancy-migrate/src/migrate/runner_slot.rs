//! Where in the fleet a runner of `migrate_all` starts, so that several
//! runners started together (one per replica at deploy) work on different
//! tenants from the start instead of all reaching for the first ones.
//!
//! A runner takes the first free of eight slots, an advisory lock held by
//! a transaction of its own for the length of the run, and starts its walk
//! at the slot's point: slot 0 at the first tenant (so a lone runner goes in
//! id order, as always), slot 1 halfway, slot 2 a quarter in, slot 3 three
//! quarters, and so on. It is only an ordering hint: each tenant is still
//! guarded by its own migration lock, and a runner that gets no slot (all
//! taken, or a pool too small to spare a connection) starts at the first
//! tenant.

use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, TransactionTrait};
use tenancy_core::{AdvisoryLock, SharedSchema};

const SLOTS: u8 = 8;

/// A slot held for the run; released when dropped (its transaction ends).
pub(super) struct RunnerSlot {
    index: u8,
    _held: DatabaseTransaction,
}

impl RunnerSlot {
    /// The first free slot, if the pool can spare a connection beside the
    /// run's `concurrency`.
    pub(super) async fn take(
        conn: &DatabaseConnection,
        registry_schema: &SharedSchema,
        concurrency: usize,
    ) -> Option<Self> {
        let max = conn
            .get_postgres_connection_pool()
            .options()
            .get_max_connections() as usize;
        if max <= concurrency {
            return None;
        }
        let txn = conn.begin().await.ok()?;
        for index in 0..SLOTS {
            let key = AdvisoryLock::RunnerSlot(index).shared_key(registry_schema);
            let row = txn
                .query_one_raw(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Postgres,
                    format!("SELECT pg_try_advisory_xact_lock({key}) AS taken"),
                ))
                .await
                .ok()??;
            if row.try_get::<bool>("", "taken").ok()? {
                return Some(Self { index, _held: txn });
            }
        }
        None
    }

    /// Where a runner in this slot starts among `tenants` tenants.
    pub(super) fn start(&self, tenants: usize) -> usize {
        start_of(self.index, tenants)
    }
}

/// Slot `index`'s point: the bit-reversed index as a fraction of the fleet
/// (0, 1/2, 1/4, 3/4, 1/8, …), so each new runner starts in the middle of
/// the largest stretch the others leave.
fn start_of(index: u8, tenants: usize) -> usize {
    let fraction = f64::from(index.reverse_bits()) / 256.0;
    // Truncation intended: a position in the fleet.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let start = (fraction * tenants as f64) as usize;
    start.min(tenants.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::start_of;

    #[test]
    fn slots_spread_over_the_fleet() {
        let starts: Vec<usize> = (0..8).map(|slot| start_of(slot, 800)).collect();
        assert_eq!(starts, [0, 400, 200, 600, 100, 500, 300, 700]);
        assert_eq!(start_of(3, 0), 0);
        assert_eq!(start_of(1, 1), 0);
    }
}
