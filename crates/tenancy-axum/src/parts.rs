//! The view of an HTTP request that tenancy's resolvers read.

use std::collections::HashMap;

use http::header;
use http::request::Parts;
use tenancy_core::resolve::RequestParts;

/// Claims of the caller's **verified** token, for
/// [`ClaimResolver`](tenancy_core::resolve::ClaimResolver) and access checks.
///
/// Your authentication middleware, running before the tenancy layer, checks
/// the token (signature, issuer, audience, expiry) and inserts the claims it
/// vouches for into the request's extensions. Nothing here verifies anything:
/// never fill this from a token you have not verified.
///
/// ```
/// use tenancy::web::VerifiedClaims;
///
/// let mut request = http::Request::new(());
/// // In your auth middleware, after verifying the token:
/// let claims = VerifiedClaims::new().with("sub", "alice").with("tenant_id", "acme");
/// request.extensions_mut().insert(claims);
///
/// let claims = request.extensions().get::<VerifiedClaims>();
/// assert_eq!(claims.and_then(|claims| claims.get("tenant_id")), Some("acme"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifiedClaims {
    claims: HashMap<String, String>,
}

impl VerifiedClaims {
    /// No claims.
    ///
    /// ```
    /// assert_eq!(tenancy::web::VerifiedClaims::new().get("sub"), None);
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// These claims and `name: value` (replacing an earlier value).
    ///
    /// ```
    /// let claims = tenancy::web::VerifiedClaims::new().with("org", "acme");
    /// assert_eq!(claims.get("org"), Some("acme"));
    /// ```
    #[must_use]
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.insert(name, value);
        self
    }

    /// Adds `name: value`, replacing an earlier value.
    ///
    /// ```
    /// let mut claims = tenancy::web::VerifiedClaims::new();
    /// claims.insert("org", "acme");
    /// assert_eq!(claims.get("org"), Some("acme"));
    /// ```
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.claims.insert(name.into(), value.into());
    }

    /// The value of the claim `name` (compared exactly).
    ///
    /// ```
    /// let claims = tenancy::web::VerifiedClaims::new().with("org", "acme");
    /// assert_eq!(claims.get("Org"), None);
    /// ```
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.claims.get(name).map(String::as_str)
    }
}

/// An HTTP request as tenancy's resolvers see it: the `Host` header (or the
/// URI's authority, as HTTP/2 sends it), the path, headers, and the
/// [`VerifiedClaims`] in its extensions.
///
/// Forwarding headers (`Forwarded`, `X-Forwarded-Host`) are not read: any
/// client can set them. Behind a proxy you trust, rewrite `Host` before the
/// layer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HttpParts<'a>(pub(crate) &'a Parts);

impl RequestParts for HttpParts<'_> {
    fn host(&self) -> Option<&str> {
        let header = self.0.headers.get(header::HOST);
        header
            .and_then(|value| value.to_str().ok())
            .or_else(|| self.0.uri.host())
    }

    fn path(&self) -> Option<&str> {
        Some(self.0.uri.path())
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.0
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
    }

    fn claim(&self, name: &str) -> Option<&str> {
        self.0.extensions.get::<VerifiedClaims>()?.get(name)
    }
}
