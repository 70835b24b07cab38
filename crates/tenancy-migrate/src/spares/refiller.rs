//! Refilling the pool in the background.

use std::fmt;
use std::time::Duration;

use sea_orm_migration::MigratorTrait;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::TenantFleet;

/// A tokio task that keeps the spare pool at a target size, started by
/// [`TenantFleet::spawn_spare_refiller`]. It refills, then waits for the
/// interval, and again; a failed refill is logged with `tracing::error!`
/// and tried again after the interval.
///
/// [`stop`](Self::stop) lets a refill in progress finish. Dropped without
/// `stop`, the task is aborted: a spare being made is rolled back with its
/// transaction, and nothing is left behind.
///
/// ```
/// use std::time::Duration;
/// use tenancy::migrate::{FleetConfig, TenantFleet};
/// # use sea_orm_migration::{MigrationTrait, MigratorTrait};
/// # struct TenantMigrator;
/// # impl MigratorTrait for TenantMigrator {
/// #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
/// # }
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let test_db = tenancy_testing::TestDatabase::create().await?;
/// # let conn = test_db.connect().await?;
/// let fleet = TenantFleet::<TenantMigrator>::with_config(
///     conn.clone(),
///     FleetConfig::default().with_spare_pool(true),
/// );
/// fleet.install().await?;
/// let refiller = fleet.spawn_spare_refiller(5, Duration::from_secs(1));
/// // … serve sign-ups …
/// refiller.stop().await;
/// # conn.close().await?;
/// # test_db.close().await?;
/// # Ok(()) }
/// ```
pub struct SpareRefiller {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl<M: MigratorTrait + 'static> TenantFleet<M> {
    /// Starts a [`SpareRefiller`] keeping `target` spares, checking every
    /// `interval` (and at once). Several processes may each run one: they
    /// take turns and do not overshoot. Must be called inside a tokio
    /// runtime.
    ///
    /// ```
    /// # use sea_orm_migration::MigratorTrait;
    /// # fn demo<M: MigratorTrait + 'static>(fleet: &tenancy::migrate::TenantFleet<M>) {
    /// let refiller = fleet.spawn_spare_refiller(10, std::time::Duration::from_secs(2));
    /// # drop(refiller);
    /// # }
    /// ```
    #[must_use = "dropping the refiller stops it"]
    pub fn spawn_spare_refiller(&self, target: usize, interval: Duration) -> SpareRefiller {
        let (stop, mut stopped) = watch::channel(false);
        let fleet = self.clone();
        let task = tokio::spawn(async move {
            loop {
                match fleet.refill_spares(target).await {
                    Ok(0) => {}
                    Ok(made) => tracing::debug!(made, target, "spare pool refilled"),
                    Err(error) => {
                        tracing::error!(%error, "refilling the spare pool failed: {error}");
                    }
                }
                tokio::select! {
                    changed = stopped.changed() => {
                        if changed.is_err() || *stopped.borrow() {
                            break;
                        }
                    }
                    () = tokio::time::sleep(interval) => {}
                }
            }
        });
        SpareRefiller {
            stop,
            task: Some(task),
        }
    }
}

impl SpareRefiller {
    /// Stops the task once the refill in progress (if any) has finished,
    /// and waits for it.
    ///
    /// ```
    /// async fn shutdown(refiller: tenancy::migrate::SpareRefiller) {
    ///     refiller.stop().await;
    /// }
    /// ```
    pub async fn stop(mut self) {
        // The task may have ended already: nothing to tell it then.
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take()
            && let Err(error) = task.await
        {
            tracing::error!(%error, "the spare refiller task ended abnormally");
        }
    }
}

impl Drop for SpareRefiller {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl fmt::Debug for SpareRefiller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpareRefiller")
            .field(
                "running",
                &self.task.as_ref().is_some_and(|t| !t.is_finished()),
            )
            .finish()
    }
}
