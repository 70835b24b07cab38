//! The cross-process half of registry cache invalidation: a connection that
//! `LISTEN`s on [`NOTIFY_CHANNEL`] and forgets each tenant it hears about.
//!
//! Why a direct connection: `LISTEN` belongs to one server session, and
//! notifications arrive on that session whenever they are sent. A
//! transaction-mode pooler (PgBouncer's `pool_mode = transaction`, RDS Proxy)
//! hands the server session back to its pool after each transaction, so the
//! `LISTEN` ends up on a session other clients use and the notifications
//! never reach this one. Nothing here can detect that, so the URL must point
//! at the server itself (or a session-mode pooler).
//!
//! Why the TTL stays: notifications are not queued for a session that is not
//! there. While the connection is down the cache keeps its TTL, so nothing
//! is served stale for longer than without a listener; once listening again
//! the whole cache is forgotten, since any change in between went unheard.

use std::fmt;
use std::time::Duration;

use sea_orm::sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tenancy_core::TenantId;
use tenancy_core::registry::NOTIFY_CHANNEL;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::TenantRegistry;
use crate::connect::{
    ConnectCause, ConnectError, DEFAULT_CONNECT_TIMEOUT, cause_of, endpoint, probe,
};

/// The `application_name` the listener's connection reports (in
/// `pg_stat_activity`), unless the URL sets one.
pub const LISTENER_APPLICATION_NAME: &str = "tenancy-registry-listener";

/// The first wait before reconnecting; doubled after each failed attempt.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Where a [`RegistryListener`] is.
///
/// ```
/// # fn demo(listener: &tenancy::orm::RegistryListener) {
/// let status = listener.status();
/// if !status.listening {
///     // Changes from other processes take up to the registry's TTL meanwhile.
/// }
/// println!("listened {} times", status.sessions);
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ListenerStatus {
    /// Whether the connection is up and `LISTEN`ing now.
    pub listening: bool,
    /// How many times a connection has started listening: 1 after
    /// [`TenantRegistry::listen`] returns, one more after each reconnection.
    pub sessions: u64,
    /// How many notifications have invalidated a cache entry.
    pub notifications: u64,
}

/// A running listener for registry changes (see [`TenantRegistry::listen`]).
/// Dropping it (or [`stop`](Self::stop)) stops listening; the registry goes
/// back to relying on its TTL alone.
pub struct RegistryListener {
    task: JoinHandle<()>,
    status: watch::Receiver<ListenerStatus>,
}

impl RegistryListener {
    /// Where the listener is now.
    ///
    /// ```
    /// # fn demo(listener: &tenancy::orm::RegistryListener) {
    /// assert!(listener.status().sessions >= 1);
    /// # }
    /// ```
    #[must_use]
    pub fn status(&self) -> ListenerStatus {
        *self.status.borrow()
    }

    /// Waits until the status satisfies `ready` (checked now and after each
    /// change), e.g. until the listener is back after a lost connection.
    ///
    /// ```
    /// # async fn demo(listener: &tenancy::orm::RegistryListener) {
    /// let before = listener.status().sessions;
    /// // ... the connection is lost ...
    /// listener.wait_until(|s| s.listening && s.sessions > before).await;
    /// # }
    /// ```
    pub async fn wait_until(&self, ready: impl FnMut(&ListenerStatus) -> bool) -> ListenerStatus {
        let mut status = self.status.clone();
        // The sender lives in the task, which only ends when this handle stops
        // it; if it is gone anyway, the last status is all there is.
        let last = *status.borrow();
        status.wait_for(ready).await.map_or(last, |s| *s)
    }

    /// Stops listening and closes the connection.
    ///
    /// ```
    /// # fn demo(listener: tenancy::orm::RegistryListener) {
    /// listener.stop();
    /// # }
    /// ```
    pub fn stop(self) {
        // `Drop` does it.
    }
}

impl Drop for RegistryListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl fmt::Debug for RegistryListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryListener")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl TenantRegistry {
    /// Listens for registry changes made by other processes and forgets each
    /// changed tenant's cached row as soon as the change commits. Opt-in:
    /// without it, other processes' changes are seen within
    /// [`RegistryConfig::ttl`](crate::RegistryConfig::ttl).
    ///
    /// `url` must reach the server **directly** (or through a session-mode
    /// pooler): a transaction-mode pooler such as PgBouncer cannot carry
    /// `LISTEN`, and notifications would silently never arrive. The listener
    /// holds one connection, reported as
    /// [`LISTENER_APPLICATION_NAME`] unless the URL names another.
    ///
    /// Returns once the first connection listens, so a wrong URL fails at
    /// start-up. After that the listener reconnects on its own when the
    /// connection drops (waiting 0.1 s, doubling up to 10 s between
    /// attempts); while it is down the TTL bounds staleness as before, and
    /// once back it forgets every cached row, since changes made in between
    /// were not heard. Must be called within a Tokio runtime; clones of this
    /// registry share the cache the listener invalidates.
    ///
    /// ```
    /// use sea_orm::ConnectionTrait;
    /// use tenancy::orm::{Error, TenantRegistry};
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = db.connect().await?;
    /// # let url = db.url().to_owned();
    /// # conn.execute_unprepared(
    /// #     "CREATE TABLE tenants (tenant_id text PRIMARY KEY, schema_name text NOT NULL UNIQUE, \
    /// #      display_name text NOT NULL DEFAULT '', domain text UNIQUE, status text NOT NULL);
    /// #      INSERT INTO tenants (tenant_id, schema_name, status) VALUES ('acme', 'tenant_acme', 'active')",
    /// # ).await?;
    /// let registry = TenantRegistry::new(conn.clone());
    /// let listener = registry.listen(&url).await?; // a direct URL, not PgBouncer's
    /// let acme = "acme".parse()?;
    /// registry.resolve(&acme).await?; // cached for 30 s
    ///
    /// // Another process suspends acme (tenancy-migrate's lifecycle calls send this NOTIFY):
    /// conn.execute_unprepared(
    ///     "BEGIN; UPDATE tenants SET status = 'suspended' WHERE tenant_id = 'acme';
    ///      SELECT pg_notify('tenancy_registry', 'acme'); COMMIT",
    /// ).await?;
    /// listener.wait_until(|s| s.notifications >= 1).await;
    /// assert!(matches!(registry.resolve(&acme).await, Err(Error::Inaccessible { .. })));
    /// # drop(listener);
    /// # conn.close().await?;
    /// # db.close().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`ConnectError`] when `url` does not parse or the first connection
    /// (or its `LISTEN`) fails within [`DEFAULT_CONNECT_TIMEOUT`].
    pub async fn listen(&self, url: &str) -> Result<RegistryListener, ConnectError> {
        let mut options: PgConnectOptions = url.parse().map_err(|e: sea_orm::sqlx::Error| {
            ConnectError::new(None, ConnectCause::InvalidUrl(e.to_string()))
        })?;
        if options.get_application_name().is_none() {
            options = options.application_name(LISTENER_APPLICATION_NAME);
        }
        probe(&options, DEFAULT_CONNECT_TIMEOUT).await?;
        let first = open(&options).await.map_err(|err| {
            ConnectError::new(
                Some(endpoint(&options)),
                cause_of(&err, DEFAULT_CONNECT_TIMEOUT),
            )
        })?;
        // Anything cached before the first LISTEN was not covered by it.
        self.invalidate_all();
        let initial = ListenerStatus {
            listening: true,
            sessions: 1,
            notifications: 0,
        };
        let (sender, status) = watch::channel(initial);
        let task = tokio::spawn(run(self.clone(), options, first, sender));
        Ok(RegistryListener { task, status })
    }
}

/// One listening connection, on a pool of its own so that dropping it closes
/// the connection.
async fn open(options: &PgConnectOptions) -> Result<PgListener, sea_orm::sqlx::Error> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(DEFAULT_CONNECT_TIMEOUT)
        .connect_lazy_with(options.clone());
    let mut listener = PgListener::connect_with(&pool).await?;
    // Reconnecting is ours to do: we must forget the cache right after it.
    listener.eager_reconnect(false);
    listener.listen(NOTIFY_CHANNEL).await?;
    Ok(listener)
}

/// Listens on `listener` until its connection is lost, then reconnects with
/// backoff, forever (until the handle aborts the task).
async fn run(
    registry: TenantRegistry,
    options: PgConnectOptions,
    mut listener: PgListener,
    status: watch::Sender<ListenerStatus>,
) {
    loop {
        let lost = receive(&registry, &mut listener, &status).await;
        drop(listener);
        status.send_modify(|s| s.listening = false);
        tracing::warn!(error = %lost, "registry listener lost its connection; reconnecting (the cache TTL applies meanwhile)");
        let mut backoff = FIRST_BACKOFF;
        listener = loop {
            tokio::time::sleep(backoff).await;
            match open(&options).await {
                Ok(listener) => break listener,
                Err(err) => {
                    tracing::warn!(error = %err, retry_in = ?backoff, "registry listener cannot reconnect");
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        };
        // Whatever changed while nobody listened was not announced to us.
        registry.invalidate_all();
        status.send_modify(|s| {
            s.listening = true;
            s.sessions += 1;
        });
        tracing::info!("registry listener reconnected; registry cache cleared");
    }
}

/// Invalidates each notified tenant until the connection fails; returns why.
async fn receive(
    registry: &TenantRegistry,
    listener: &mut PgListener,
    status: &watch::Sender<ListenerStatus>,
) -> String {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                match TenantId::new(notification.payload()) {
                    Ok(id) => registry.invalidate(&id),
                    // Not one of ours (someone else's NOTIFY on the channel):
                    // forgetting everything is always safe.
                    Err(_) => registry.invalidate_all(),
                }
                status.send_modify(|s| s.notifications += 1);
            }
            Ok(None) => return "connection closed".to_owned(),
            Err(err) => return err.to_string(),
        }
    }
}
