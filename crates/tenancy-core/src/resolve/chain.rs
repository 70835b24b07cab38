use std::sync::Arc;

use super::{NotPresent, RequestParts, Resolution, ResolveTenant};

/// Several sources of the tenant, tried in order.
///
/// - The first [`Resolution::Found`] wins.
/// - A [`Resolution::Malformed`] outcome stops the chain and is returned:
///   a request that named a tenant badly is answered with an error, never
///   with the tenant of a later source (see the [module
///   documentation](crate::resolve#why-a-malformed-source-stops-a-chain)).
/// - A [`Resolution::NotPresent`] outcome moves on to the next source.
/// - When every source names no tenant, the chain returns the **first**
///   source's reason: the order of a chain is its priority, so the primary
///   source's reason is the one to act on (a bare domain serves the landing
///   page whatever the fallbacks said). An empty chain returns
///   [`NotPresent::EmptyChain`].
///
/// The order the Boundary framework's multi-tenancy research recommends is
/// the subdomain first, then the verified token claim: the host is what the
/// user sees and bookmarks, and the claim serves hosts that name no tenant
/// (an API domain, the bare domain after sign-in). Whatever the order, check
/// that the authenticated user belongs to the resolved tenant: when the
/// subdomain says `acme` and the claim says `globex`, the chain returns `acme`.
///
/// Resolvers are shared (`Arc`), so cloning a chain is cheap.
///
/// ```
/// use tenancy::resolve::{
///     ClaimResolver, HeaderResolver, PathPrefixResolver, RequestView, ResolveTenant, ResolverChain,
///     SubdomainResolver,
/// };
///
/// let chain = ResolverChain::new()
///     .with(SubdomainResolver::new("example.com"))
///     .with(PathPrefixResolver::default())
///     .with(HeaderResolver::default())
///     .with(ClaimResolver::default());
/// assert_eq!(chain.len(), 4);
///
/// let request = RequestView::new().with_host("api.example.com").with_path("/t/acme/projects");
/// let request = request.with_header("x-tenant-id", "globex");
/// // `api` is not reserved here, so the subdomain wins over the path and the header.
/// assert_eq!(chain.resolve(&request).found().map(|t| t.as_str()), Some("api"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct ResolverChain {
    resolvers: Vec<Arc<dyn ResolveTenant + Send + Sync>>,
}

impl ResolverChain {
    /// An empty chain, which resolves every request to
    /// [`NotPresent::EmptyChain`] until resolvers are added.
    ///
    /// ```
    /// use tenancy::resolve::{NotPresent, RequestView, Resolution, ResolveTenant, ResolverChain};
    ///
    /// let chain = ResolverChain::new();
    /// assert!(chain.is_empty());
    /// assert_eq!(chain.resolve(&RequestView::new()), Resolution::NotPresent(NotPresent::EmptyChain));
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The same chain with `resolver` tried after the ones already in it.
    ///
    /// ```
    /// use tenancy::resolve::{HeaderResolver, ResolverChain, SubdomainResolver};
    ///
    /// let chain = ResolverChain::new()
    ///     .with(SubdomainResolver::new("example.com"))
    ///     .with(HeaderResolver::default());
    /// assert_eq!(chain.len(), 2);
    /// ```
    #[must_use]
    pub fn with(mut self, resolver: impl ResolveTenant + Send + Sync + 'static) -> Self {
        self.push(resolver);
        self
    }

    /// Adds `resolver`, tried after the ones already in the chain.
    ///
    /// ```
    /// use tenancy::resolve::{ClaimResolver, ResolverChain};
    ///
    /// let mut chain = ResolverChain::new();
    /// chain.push(ClaimResolver::default());
    /// assert_eq!(chain.len(), 1);
    /// ```
    pub fn push(&mut self, resolver: impl ResolveTenant + Send + Sync + 'static) {
        self.resolvers.push(Arc::new(resolver));
    }

    /// How many resolvers the chain holds.
    ///
    /// ```
    /// assert_eq!(tenancy::resolve::ResolverChain::new().len(), 0);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.resolvers.len()
    }

    /// Whether the chain holds no resolvers.
    ///
    /// ```
    /// assert!(tenancy::resolve::ResolverChain::new().is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.resolvers.is_empty()
    }
}

impl ResolveTenant for ResolverChain {
    /// Tries each resolver in order; see [`ResolverChain`] for the rules.
    fn resolve(&self, request: &dyn RequestParts) -> Resolution {
        let mut first_reason = None;
        for resolver in &self.resolvers {
            match resolver.resolve(request) {
                Resolution::NotPresent(reason) => {
                    first_reason.get_or_insert(reason);
                }
                decided @ (Resolution::Found(_) | Resolution::Malformed(_)) => return decided,
            }
        }
        Resolution::NotPresent(first_reason.unwrap_or(NotPresent::EmptyChain))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::TenantId;
    use crate::resolve::{
        ClaimResolver, HeaderResolver, Malformed, PathPrefixResolver, RequestView,
        SubdomainResolver,
    };

    fn subdomain_then_claim() -> ResolverChain {
        ResolverChain::new()
            .with(SubdomainResolver::new("example.com"))
            .with(ClaimResolver::default())
    }

    fn found(outcome: &Resolution) -> Option<&str> {
        outcome.found().map(TenantId::as_str)
    }

    #[test]
    fn subdomain_wins_over_claim() {
        let request = RequestView::new()
            .with_host("acme.example.com")
            .with_claim("tenant_id", "globex");
        assert_eq!(
            found(&subdomain_then_claim().resolve(&request)),
            Some("acme")
        );
    }

    #[test]
    fn not_present_subdomain_falls_to_claim() {
        for host in ["example.com", "www.example.com", "other.com", "127.0.0.1"] {
            let request = RequestView::new()
                .with_host(host)
                .with_claim("tenant_id", "globex");
            assert_eq!(
                found(&subdomain_then_claim().resolve(&request)),
                Some("globex"),
                "{host}"
            );
        }
        let no_host = RequestView::new().with_claim("tenant_id", "globex");
        assert_eq!(
            found(&subdomain_then_claim().resolve(&no_host)),
            Some("globex")
        );
    }

    #[test]
    fn malformed_subdomain_stops_the_chain() {
        for host in ["acme_.example.com", "a.b.example.com", "acme..example.com"] {
            let request = RequestView::new()
                .with_host(host)
                .with_claim("tenant_id", "globex");
            let outcome = subdomain_then_claim().resolve(&request);
            assert!(outcome.is_malformed(), "{host}: {outcome:?}");
        }
    }

    #[test]
    fn malformed_claim_is_returned_after_not_present_subdomain() {
        let request = RequestView::new()
            .with_host("example.com")
            .with_claim("tenant_id", "Globex");
        assert!(matches!(
            subdomain_then_claim().resolve(&request),
            Resolution::Malformed(Malformed::InvalidTenantId { .. })
        ));
    }

    #[test]
    fn all_not_present_reports_the_first_reason() {
        let request = RequestView::new().with_host("example.com");
        assert_eq!(
            subdomain_then_claim().resolve(&request),
            Resolution::NotPresent(NotPresent::BareDomain {
                host: "example.com".into()
            })
        );
        let claim_first = ResolverChain::new()
            .with(ClaimResolver::default())
            .with(SubdomainResolver::new("example.com"));
        assert_eq!(
            claim_first.resolve(&request),
            Resolution::NotPresent(NotPresent::NoClaim {
                name: "tenant_id".into()
            })
        );
    }

    #[test]
    fn empty_chain() {
        let chain = ResolverChain::new();
        assert!(chain.is_empty());
        assert_eq!(
            chain.resolve(&RequestView::new().with_host("acme.example.com")),
            Resolution::NotPresent(NotPresent::EmptyChain)
        );
    }

    #[derive(Debug, Default)]
    struct Counting(AtomicUsize);

    impl ResolveTenant for Counting {
        fn resolve(&self, _: &dyn RequestParts) -> Resolution {
            self.0.fetch_add(1, Ordering::Relaxed);
            Resolution::NotPresent(NotPresent::NoPath)
        }
    }

    #[test]
    fn stops_at_the_first_decision() {
        let counter = Arc::new(Counting::default());
        let chain = ResolverChain::new()
            .with(HeaderResolver::default())
            .with(Arc::clone(&counter));

        let _ = chain.resolve(&RequestView::new().with_header("x-tenant-id", "acme"));
        let _ = chain.resolve(&RequestView::new().with_header("x-tenant-id", "ACME"));
        assert_eq!(counter.0.load(Ordering::Relaxed), 0);

        let _ = chain.resolve(&RequestView::new());
        assert_eq!(counter.0.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn chains_nest_and_clone() {
        let inner = ResolverChain::new().with(PathPrefixResolver::default());
        let chain = ResolverChain::new()
            .with(SubdomainResolver::new("example.com"))
            .with(inner)
            .with(HeaderResolver::default());
        let copy = chain.clone();
        let request = RequestView::new()
            .with_host("example.com")
            .with_path("/t/acme/x")
            .with_header("x-tenant-id", "globex");
        assert_eq!(found(&copy.resolve(&request)), Some("acme"));
        assert_eq!(copy.resolve(&request), chain.resolve(&request));
    }

    #[test]
    fn chain_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ResolverChain>();
        assert_send_sync::<SubdomainResolver>();
        assert_send_sync::<PathPrefixResolver>();
        assert_send_sync::<HeaderResolver>();
        assert_send_sync::<ClaimResolver>();
    }

    #[test]
    fn boxed_resolvers_work() {
        let boxed: Box<dyn ResolveTenant + Send + Sync> = Box::new(HeaderResolver::default());
        let chain = ResolverChain::new().with(boxed);
        let request = RequestView::new().with_header("x-tenant-id", "acme");
        assert_eq!(found(&chain.resolve(&request)), Some("acme"));
    }
}
