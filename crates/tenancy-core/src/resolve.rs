//! Finding the tenant in a request, from plain strings and with no HTTP
//! framework dependency.
//!
//! # Sources
//!
//! Each source is a resolver:
//! - [`SubdomainResolver`]: the leftmost label of the host under a base domain
//!   (`acme.example.com` → `acme`). Hosts are case-insensitive, so the host is
//!   lowercased first; a port and a trailing dot are ignored.
//! - [`PathPrefixResolver`]: the path segment after a prefix
//!   (`/t/acme/projects` → `acme`), with [`PathPrefixResolver::strip`] handing
//!   the rest of the path (`/projects`) to a router.
//! - [`HeaderResolver`]: the value of a header such as `X-Tenant-ID`.
//! - [`ClaimResolver`]: a claim of an **already verified** token.
//! - [`ResolverChain`]: several of these, tried in order.
//!
//! Each resolver works on its raw input directly (`resolve_host`,
//! `resolve_path`, `resolve_value`) and, through [`ResolveTenant`], on any
//! request that implements [`RequestParts`], the small view of a request that a
//! framework adapter provides. [`RequestView`] is a borrowed implementation for
//! tests and simple adapters.
//!
//! # Outcomes
//!
//! Resolving never fails with an opaque error; it returns a [`Resolution`]:
//! - [`Resolution::Found`]: the request names this tenant.
//! - [`Resolution::NotPresent`]: the source names no tenant, and [`NotPresent`]
//!   says why (the bare base domain, a reserved label such as `www`, another
//!   domain, a missing header…). This is a normal outcome: a landing page, a
//!   sign-in page or a custom domain to look up.
//! - [`Resolution::Malformed`]: the request tried to name a tenant and got it
//!   wrong (`acme_.example.com`, `/t/ACME`, a nested subdomain, a garbled
//!   host). [`Malformed`] says what; the usual answer is `400 Bad Request`.
//!
//! # Why a malformed source stops a chain
//!
//! A chain moves on to its next source only when a source names *no* tenant.
//! When a source names a tenant *badly*, the chain stops and returns that
//! [`Malformed`] outcome. Falling back would answer a request for one tenant
//! with another tenant's data: `acme_.example.com` carrying a valid token for
//! `globex` would be served `globex` under a host that looks like a different
//! tenant's, which confuses users, poisons caches keyed by host and hides the
//! client bug. Failing closed costs one `400` and never crosses tenants.
//!
//! # Claims must come from a verified token
//!
//! This module **never verifies tokens**. [`ClaimResolver`] reads a claim the
//! caller hands over, and that claim must come from a token whose signature,
//! issuer, audience and expiry the caller has already checked. A claim read
//! from an unverified JWT is a value the client chose: trusting it lets anyone
//! pick any tenant.
//!
//! # Resolution is not authorization
//!
//! Resolving says which tenant a request *addresses*, not whether the caller
//! may use it. A chain of subdomain then claim returns the subdomain's tenant
//! even when the claim names another one; check that the authenticated user
//! belongs to the resolved tenant before serving it.
//!
//! ```
//! use tenancy::TenantId;
//! use tenancy::resolve::{
//!     ClaimResolver, Malformed, NotPresent, RequestView, Resolution, ResolveTenant,
//!     ResolverChain, SubdomainResolver,
//! };
//!
//! // Subdomain first, then the verified claim.
//! let chain = ResolverChain::new()
//!     .with(SubdomainResolver::new("example.com"))
//!     .with(ClaimResolver::default());
//!
//! let request = RequestView::new().with_host("acme.example.com:8080");
//! assert_eq!(chain.resolve(&request), Resolution::Found(TenantId::new("acme")?));
//!
//! // The bare domain names no tenant, so the verified claim decides.
//! let request = RequestView::new().with_host("example.com").with_claim("tenant_id", "globex");
//! assert_eq!(chain.resolve(&request).found().map(TenantId::as_str), Some("globex"));
//!
//! // A badly named tenant stops the chain, whatever the claim says.
//! let request = RequestView::new().with_host("acme_.example.com").with_claim("tenant_id", "globex");
//! assert!(matches!(
//!     chain.resolve(&request),
//!     Resolution::Malformed(Malformed::InvalidTenantId { .. }),
//! ));
//!
//! // Nothing anywhere: the first source's reason is reported.
//! let request = RequestView::new().with_host("www.example.com");
//! assert!(matches!(
//!     chain.resolve(&request),
//!     Resolution::NotPresent(NotPresent::ReservedLabel { .. }),
//! ));
//! # Ok::<(), tenancy::NameError>(())
//! ```

mod chain;
mod host;
mod outcome;
mod path;
mod request;
mod value;

pub use chain::ResolverChain;
pub use host::SubdomainResolver;
pub use outcome::{Malformed, NotPresent, Resolution, ResolveError, TenantSource};
pub use path::PathPrefixResolver;
pub use request::{RequestParts, RequestView, ResolveTenant};
pub use value::{ClaimResolver, HeaderResolver};
