//! The current tenant of a task, for code deep in the call stack.

use std::future::Future;

use tenancy_core::Tenant;
use tokio::task::JoinHandle;
use tracing::Instrument as _;

tokio::task_local! {
    static CURRENT: Tenant;
}

/// The tenant of the request this task is serving, if any.
///
/// The [`TenancyLayer`](crate::TenancyLayer) sets it for the handler's future
/// and everything it awaits, so code that has no extractor at hand (a
/// repository, an audit logger) can still ask whose data it is touching. It
/// is a *task*-local: a task started with `tokio::spawn` does not inherit it;
/// start background work with [`spawn_with_tenant`], or wrap it in
/// [`scope_tenant`].
///
/// Prefer passing the tenant (or a [`ScopedDb`](crate::ScopedDb)) where you
/// can: an argument cannot silently be missing.
///
/// ```
/// use tenancy::Tenant;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// assert_eq!(tenancy::web::current_tenant(), None); // outside any request
///
/// let acme = Tenant::from_id("acme".parse()?)?;
/// let seen = tenancy::web::scope_tenant(acme.clone(), async { tenancy::web::current_tenant() }).await;
/// assert_eq!(seen, Some(acme));
/// # Ok(()) }
/// ```
#[must_use]
pub fn current_tenant() -> Option<Tenant> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Runs `future` with `tenant` as its [current tenant](current_tenant).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let globex = tenancy::Tenant::from_id("globex".parse()?)?;
/// let id = tenancy::web::scope_tenant(globex, async {
///     tenancy::web::current_tenant().map(|t| t.id().to_string())
/// })
/// .await;
/// assert_eq!(id.as_deref(), Some("globex"));
/// # Ok(()) }
/// ```
pub fn scope_tenant<F: Future>(tenant: Tenant, future: F) -> impl Future<Output = F::Output> {
    CURRENT.scope(tenant, future)
}

/// Calls `make` (a service's `call`) and runs the future it returns with
/// `tenant` as the current tenant, so both the synchronous part of a
/// service's call and its future see it.
pub(crate) async fn call_scoped<F: Future>(tenant: Tenant, make: impl FnOnce() -> F) -> F::Output {
    let future = CURRENT.sync_scope(tenant.clone(), make);
    CURRENT.scope(tenant, future).await
}

/// `tokio::spawn`, carrying the [current tenant](current_tenant) and the
/// current tracing span (with its `tenant` field) into the new task.
///
/// Without it a task spawned from a handler sees no current tenant, and its
/// logs say nothing of whose work it does. The task runs on after the request
/// ends; the database work it does needs its own scoped transaction (clone
/// the [`ScopedDb`](crate::ScopedDb) into it).
///
/// # Panics
/// As `tokio::spawn`: when called outside a Tokio runtime.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let acme = tenancy::Tenant::from_id("acme".parse()?)?;
/// let task = tenancy::web::scope_tenant(acme, async {
///     // In a handler: send the welcome e-mail after answering.
///     tenancy::web::spawn_with_tenant(async { tenancy::web::current_tenant() })
/// })
/// .await;
/// assert_eq!(task.await?.map(|t| t.id().to_string()).as_deref(), Some("acme"));
/// # Ok(()) }
/// ```
pub fn spawn_with_tenant<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let span = tracing::Span::current();
    match current_tenant() {
        Some(tenant) => tokio::spawn(CURRENT.scope(tenant, future).instrument(span)),
        None => tokio::spawn(future.instrument(span)),
    }
}
