use std::fmt;
use std::sync::Arc;

use super::Resolution;

/// The parts of a request that tenant resolution reads: a framework adapter
/// implements this over its own request type.
///
/// Object-safe, so resolvers take `&dyn RequestParts` and one
/// [`ResolverChain`](crate::resolve::ResolverChain) serves any framework.
///
/// ```
/// use tenancy::resolve::{RequestParts, ResolveTenant, SubdomainResolver};
///
/// // A framework's request, reduced to what matters here.
/// struct MyRequest {
///     host: String,
///     uri_path: String,
///     headers: Vec<(String, String)>,
/// }
///
/// impl RequestParts for MyRequest {
///     fn host(&self) -> Option<&str> {
///         Some(&self.host)
///     }
///     fn path(&self) -> Option<&str> {
///         Some(&self.uri_path)
///     }
///     fn header(&self, name: &str) -> Option<&str> {
///         let mut matching = self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name));
///         matching.next().map(|(_, value)| value.as_str())
///     }
/// }
///
/// let request = MyRequest { host: "acme.example.com".into(), uri_path: "/".into(), headers: vec![] };
/// let outcome = SubdomainResolver::new("example.com").resolve(&request);
/// assert_eq!(outcome.found().map(|t| t.as_str()), Some("acme"));
/// ```
pub trait RequestParts {
    /// The host the request was sent to, with or without port: the `Host`
    /// header, the HTTP/2 `:authority`, or the authority of an absolute URI.
    ///
    /// Take `X-Forwarded-Host` or `Forwarded` only when a trusted proxy sets
    /// them; otherwise the client picks the host, and with it the tenant.
    fn host(&self) -> Option<&str>;

    /// The request's path, without the query string (a query or fragment is
    /// tolerated and ignored by [`PathPrefixResolver`](crate::resolve::PathPrefixResolver)).
    fn path(&self) -> Option<&str>;

    /// The value of the header `name`, compared case-insensitively. When the
    /// header occurs more than once, return the first occurrence, as
    /// `http::HeaderMap::get` does.
    fn header(&self, name: &str) -> Option<&str>;

    /// The string value of the claim `name` from the caller's **verified**
    /// token; `None` by default, for adapters with no authentication.
    ///
    /// Never return a claim from a token whose signature, issuer, audience and
    /// expiry were not checked: an unverified claim is whatever the client
    /// wrote.
    fn claim(&self, name: &str) -> Option<&str> {
        let _ = name;
        None
    }
}

impl<T: RequestParts + ?Sized> RequestParts for &T {
    fn host(&self) -> Option<&str> {
        (**self).host()
    }

    fn path(&self) -> Option<&str> {
        (**self).path()
    }

    fn header(&self, name: &str) -> Option<&str> {
        (**self).header(name)
    }

    fn claim(&self, name: &str) -> Option<&str> {
        (**self).claim(name)
    }
}

/// A borrowed, framework-free [`RequestParts`]: for tests, and for adapters
/// that already have the pieces as strings.
///
/// Header names match case-insensitively and claim names exactly; when a name
/// occurs more than once, the first occurrence wins.
///
/// ```
/// use tenancy::resolve::{RequestParts, RequestView};
///
/// let request = RequestView::new()
///     .with_host("acme.example.com")
///     .with_path("/projects")
///     .with_header("X-Tenant-ID", "acme")
///     .with_claim("tenant_id", "acme");
/// assert_eq!(request.host(), Some("acme.example.com"));
/// assert_eq!(request.header("x-tenant-id"), Some("acme"));
/// assert_eq!(request.claim("TENANT_ID"), None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestView<'a> {
    host: Option<&'a str>,
    path: Option<&'a str>,
    headers: Vec<(&'a str, &'a str)>,
    claims: Vec<(&'a str, &'a str)>,
}

impl<'a> RequestView<'a> {
    /// A request with no host, path, headers or claims.
    ///
    /// ```
    /// use tenancy::resolve::{RequestParts, RequestView};
    /// assert_eq!(RequestView::new().host(), None);
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the host (with or without port).
    ///
    /// ```
    /// use tenancy::resolve::{RequestParts, RequestView};
    /// assert_eq!(RequestView::new().with_host("acme.example.com:8080").host(), Some("acme.example.com:8080"));
    /// ```
    #[must_use]
    pub fn with_host(mut self, host: &'a str) -> Self {
        self.host = Some(host);
        self
    }

    /// Sets the path.
    ///
    /// ```
    /// use tenancy::resolve::{RequestParts, RequestView};
    /// assert_eq!(RequestView::new().with_path("/t/acme").path(), Some("/t/acme"));
    /// ```
    #[must_use]
    pub fn with_path(mut self, path: &'a str) -> Self {
        self.path = Some(path);
        self
    }

    /// Adds a header.
    ///
    /// ```
    /// use tenancy::resolve::{RequestParts, RequestView};
    /// let request = RequestView::new().with_header("X-Tenant-ID", "acme").with_header("x-tenant-id", "globex");
    /// assert_eq!(request.header("X-TENANT-ID"), Some("acme"));
    /// ```
    #[must_use]
    pub fn with_header(mut self, name: &'a str, value: &'a str) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Adds a claim, which must come from a verified token.
    ///
    /// ```
    /// use tenancy::resolve::{RequestParts, RequestView};
    /// assert_eq!(RequestView::new().with_claim("tenant_id", "acme").claim("tenant_id"), Some("acme"));
    /// ```
    #[must_use]
    pub fn with_claim(mut self, name: &'a str, value: &'a str) -> Self {
        self.claims.push((name, value));
        self
    }
}

impl RequestParts for RequestView<'_> {
    fn host(&self) -> Option<&str> {
        self.host
    }

    fn path(&self) -> Option<&str> {
        self.path
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(candidate, _)| candidate.eq_ignore_ascii_case(name))
            .map(|&(_, value)| value)
    }

    fn claim(&self, name: &str) -> Option<&str> {
        self.claims
            .iter()
            .find(|&&(candidate, _)| candidate == name)
            .map(|&(_, value)| value)
    }
}

/// A source of the tenant: reads a request and returns a [`Resolution`].
///
/// Object-safe, so a [`ResolverChain`](crate::resolve::ResolverChain) can hold
/// resolvers of different types. Implement it for custom sources (a cookie, a
/// custom-domain lookup table); return [`Resolution::NotPresent`] when the
/// source names no tenant, so a chain moves on, and [`Resolution::Malformed`]
/// when it names one badly, so a chain stops.
///
/// ```
/// use tenancy::TenantId;
/// use tenancy::resolve::{NotPresent, RequestParts, RequestView, Resolution, ResolveTenant};
///
/// /// Every request belongs to one tenant: a single-tenant deployment.
/// #[derive(Debug)]
/// struct Fixed(TenantId);
///
/// impl ResolveTenant for Fixed {
///     fn resolve(&self, _request: &dyn RequestParts) -> Resolution {
///         Resolution::Found(self.0.clone())
///     }
/// }
///
/// let fixed = Fixed(TenantId::new("acme")?);
/// assert!(fixed.resolve(&RequestView::new()).is_found());
/// # Ok::<(), tenancy::NameError>(())
/// ```
pub trait ResolveTenant: fmt::Debug {
    /// Finds the tenant in `request`.
    fn resolve(&self, request: &dyn RequestParts) -> Resolution;
}

impl<T: ResolveTenant + ?Sized> ResolveTenant for &T {
    fn resolve(&self, request: &dyn RequestParts) -> Resolution {
        (**self).resolve(request)
    }
}

impl<T: ResolveTenant + ?Sized> ResolveTenant for Box<T> {
    fn resolve(&self, request: &dyn RequestParts) -> Resolution {
        (**self).resolve(request)
    }
}

impl<T: ResolveTenant + ?Sized> ResolveTenant for Arc<T> {
    fn resolve(&self, request: &dyn RequestParts) -> Resolution {
        (**self).resolve(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lookup_is_case_insensitive_and_first_wins() {
        let request = RequestView::new()
            .with_header("X-Tenant-Id", "acme")
            .with_header("x-tenant-id", "globex");
        assert_eq!(request.header("x-tenant-id"), Some("acme"));
        assert_eq!(request.header("X-TENANT-ID"), Some("acme"));
        assert_eq!(request.header("x-other"), None);
    }

    #[test]
    fn claim_lookup_is_exact() {
        let request = RequestView::new().with_claim("tenant_id", "acme");
        assert_eq!(request.claim("tenant_id"), Some("acme"));
        assert_eq!(request.claim("Tenant_Id"), None);
    }

    #[test]
    fn claim_defaults_to_none() {
        struct HostOnly;
        impl RequestParts for HostOnly {
            fn host(&self) -> Option<&str> {
                Some("acme.example.com")
            }
            fn path(&self) -> Option<&str> {
                None
            }
            fn header(&self, _: &str) -> Option<&str> {
                None
            }
        }
        fn has_host_but_no_claim<R: RequestParts>(request: R) -> bool {
            request.host().is_some() && request.claim("tenant_id").is_none()
        }
        assert!(has_host_but_no_claim(HostOnly));
        // Through the blanket impl for references.
        assert!(has_host_but_no_claim(&HostOnly));
    }
}
