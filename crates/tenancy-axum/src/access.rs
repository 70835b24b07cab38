//! The access check: may the caller use the tenant the request addresses?

use std::future::Future;

use http::request::Parts;
use tenancy_core::TenantId;

/// The verdict of an [`AccessCheck`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Access {
    /// The caller may use the tenant.
    Allow,
    /// The caller is authenticated but may not use the tenant: answered 404
    /// like an unknown tenant (or 403 with
    /// [`distinguish_forbidden`](crate::TenancyLayer::distinguish_forbidden)).
    Deny,
    /// The request carries no credentials the check accepts: answered 401,
    /// whether the tenant exists or not.
    Unauthenticated,
}

/// Decides whether the caller may use the tenant a request addresses:
/// resolving a tenant from a host or header says which tenant a request
/// *names*, not that its caller belongs to it.
///
/// The check runs after the tenant id is read from the request and **before**
/// the registry is consulted, with the id only, so its verdict cannot depend
/// on whether the tenant exists: a caller without access learns nothing about
/// which tenant ids are registered. Read the caller's identity from what your
/// authentication layer put in the request's extensions (verified claims, a
/// session), never from a header the client sets.
///
/// A closure `Fn(&Parts, &TenantId) -> Access` is a check; implement the
/// trait for checks that must wait (a membership table):
///
/// ```
/// use http::request::Parts;
/// use tenancy::web::{Access, AccessCheck, VerifiedClaims};
/// use tenancy::TenantId;
///
/// /// Members are listed in a table; the user id comes from a verified token.
/// #[derive(Debug)]
/// struct Members;
///
/// impl AccessCheck for Members {
///     async fn check(&self, request: &Parts, tenant: &TenantId) -> Access {
///         let Some(user) = request.extensions.get::<VerifiedClaims>().and_then(|c| c.get("sub")) else {
///             return Access::Unauthenticated;
///         };
///         // SELECT 1 FROM memberships WHERE user_id = $1 AND tenant_id = $2 …
///         if user == "alice" && tenant.as_str() == "acme" { Access::Allow } else { Access::Deny }
///     }
/// }
///
/// // The same as a closure: the `org` claim must name the tenant.
/// let same_org = |request: &Parts, tenant: &TenantId| {
///     match request.extensions.get::<VerifiedClaims>().and_then(|c| c.get("org")) {
///         None => Access::Unauthenticated,
///         Some(org) if org == tenant.as_str() => Access::Allow,
///         Some(_) => Access::Deny,
///     }
/// };
/// # fn is_check(_: &impl AccessCheck) {}
/// # is_check(&Members);
/// # is_check(&same_org);
/// ```
pub trait AccessCheck: Send + Sync + 'static {
    /// The verdict for the caller of `request` on `tenant`.
    fn check(&self, request: &Parts, tenant: &TenantId) -> impl Future<Output = Access> + Send;
}

impl<F> AccessCheck for F
where
    F: Fn(&Parts, &TenantId) -> Access + Send + Sync + 'static,
{
    fn check(&self, request: &Parts, tenant: &TenantId) -> impl Future<Output = Access> + Send {
        std::future::ready(self(request, tenant))
    }
}

/// The default check: every caller may use every tenant. Fine for
/// service-to-service APIs that trust their callers; a public API needs a
/// real check ([`TenancyLayer::check_access`](crate::TenancyLayer::check_access)).
///
/// ```
/// use tenancy::web::{Access, AccessCheck, AllowAll};
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (parts, ()) = http::Request::new(()).into_parts();
/// assert_eq!(AllowAll.check(&parts, &"acme".parse()?).await, Access::Allow);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl AccessCheck for AllowAll {
    fn check(&self, _: &Parts, _: &TenantId) -> impl Future<Output = Access> + Send {
        std::future::ready(Access::Allow)
    }
}
