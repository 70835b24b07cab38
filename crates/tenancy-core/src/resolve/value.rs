use super::{Malformed, NotPresent, RequestParts, Resolution, ResolveTenant, TenantSource};
use crate::TenantId;

/// Finds the tenant in a header's value, such as `X-Tenant-ID: acme`.
///
/// The value is trimmed; a missing or blank header names no tenant
/// ([`NotPresent::NoHeader`]). The value is not lowercased: unlike host names,
/// header values are case-sensitive, so `ACME` is
/// [malformed](Malformed::InvalidTenantId). A repeated header arrives as
/// [`RequestParts::header`] returns it (the first occurrence for
/// [`RequestView`](crate::resolve::RequestView)); a value joined with commas
/// (`acme, globex`) is malformed.
///
/// A header is chosen by the client. Use it where the client is trusted to
/// pick its tenant (service-to-service calls, or with an authorization check
/// that the caller belongs to the tenant), not as proof of membership.
///
/// ```
/// use tenancy::resolve::{HeaderResolver, RequestView, ResolveTenant};
///
/// let resolver = HeaderResolver::default();
/// assert_eq!(resolver.name(), "x-tenant-id");
/// assert_eq!(resolver.resolve_value(Some(" acme ")).found().map(|t| t.as_str()), Some("acme"));
///
/// let request = RequestView::new().with_header("X-Tenant-ID", "acme");
/// assert!(resolver.resolve(&request).is_found());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HeaderResolver {
    name: Box<str>,
}

impl HeaderResolver {
    /// The default header, `x-tenant-id`.
    pub const DEFAULT_NAME: &'static str = "x-tenant-id";

    /// A resolver reading the header `name`, which is trimmed and lowercased
    /// (header names are case-insensitive).
    ///
    /// ```
    /// use tenancy::resolve::HeaderResolver;
    /// assert_eq!(HeaderResolver::new("X-Organization").name(), "x-organization");
    /// ```
    #[must_use]
    pub fn new(name: &str) -> Self {
        Self {
            name: name.trim().to_ascii_lowercase().into(),
        }
    }

    /// The header's name, lowercase.
    ///
    /// ```
    /// use tenancy::resolve::HeaderResolver;
    /// assert_eq!(HeaderResolver::default().name(), "x-tenant-id");
    /// ```
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Finds the tenant in the header's value (`None` when the request has no
    /// such header).
    ///
    /// ```
    /// use tenancy::resolve::{HeaderResolver, NotPresent, Resolution};
    ///
    /// let resolver = HeaderResolver::default();
    /// assert!(resolver.resolve_value(Some("acme")).is_found());
    /// assert!(matches!(resolver.resolve_value(Some("")), Resolution::NotPresent(NotPresent::NoHeader { .. })));
    /// assert!(resolver.resolve_value(Some("acme!")).is_malformed());
    /// ```
    pub fn resolve_value(&self, value: Option<&str>) -> Resolution {
        resolve_value(
            value,
            || NotPresent::NoHeader {
                name: self.name.to_string(),
            },
            || TenantSource::Header {
                name: self.name.to_string(),
            },
        )
    }
}

impl Default for HeaderResolver {
    /// Reads [`HeaderResolver::DEFAULT_NAME`].
    fn default() -> Self {
        Self::new(Self::DEFAULT_NAME)
    }
}

impl ResolveTenant for HeaderResolver {
    /// Resolves [`RequestParts::header`] for the configured name.
    fn resolve(&self, request: &dyn RequestParts) -> Resolution {
        self.resolve_value(request.header(&self.name))
    }
}

/// Finds the tenant in a claim of the caller's **verified** token, such as
/// `"tenant_id": "acme"`.
///
/// # Security
///
/// This resolver **does not verify anything**. The claim must come from a
/// token whose signature, issuer, audience and expiry the caller has already
/// checked with a JWT or session library. Reading a claim from an unverified
/// token lets any client choose any tenant by editing its token.
///
/// The value is trimmed; a missing or blank claim names no tenant
/// ([`NotPresent::NoClaim`]); a value that is not a valid tenant id is
/// [malformed](Malformed::InvalidTenantId). Claim names are compared exactly.
///
/// ```
/// use tenancy::resolve::{ClaimResolver, RequestView, ResolveTenant};
///
/// let resolver = ClaimResolver::new("org");
///
/// // `claims` stands for the caller's already-verified token claims.
/// let claims = [("org", "acme")];
/// let (name, value) = claims[0];
/// let request = RequestView::new().with_claim(name, value);
/// assert_eq!(resolver.resolve(&request).found().map(|t| t.as_str()), Some("acme"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClaimResolver {
    name: Box<str>,
}

impl ClaimResolver {
    /// The default claim, `tenant_id`.
    pub const DEFAULT_NAME: &'static str = "tenant_id";

    /// A resolver reading the claim `name` (compared exactly: JSON keys are
    /// case-sensitive).
    ///
    /// ```
    /// use tenancy::resolve::ClaimResolver;
    /// assert_eq!(ClaimResolver::new("https://example.com/tenant").name(), "https://example.com/tenant");
    /// ```
    #[must_use]
    pub fn new(name: &str) -> Self {
        Self { name: name.into() }
    }

    /// The claim's name.
    ///
    /// ```
    /// use tenancy::resolve::ClaimResolver;
    /// assert_eq!(ClaimResolver::default().name(), "tenant_id");
    /// ```
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Finds the tenant in the claim's value (`None` when the verified claims
    /// have no such claim).
    ///
    /// ```
    /// use tenancy::resolve::{ClaimResolver, NotPresent, Resolution};
    ///
    /// let resolver = ClaimResolver::default();
    /// assert!(resolver.resolve_value(Some("acme")).is_found());
    /// assert!(matches!(resolver.resolve_value(None), Resolution::NotPresent(NotPresent::NoClaim { .. })));
    /// assert!(resolver.resolve_value(Some("Acme Corp")).is_malformed());
    /// ```
    pub fn resolve_value(&self, value: Option<&str>) -> Resolution {
        resolve_value(
            value,
            || NotPresent::NoClaim {
                name: self.name.to_string(),
            },
            || TenantSource::Claim {
                name: self.name.to_string(),
            },
        )
    }
}

impl Default for ClaimResolver {
    /// Reads [`ClaimResolver::DEFAULT_NAME`].
    fn default() -> Self {
        Self::new(Self::DEFAULT_NAME)
    }
}

impl ResolveTenant for ClaimResolver {
    /// Resolves [`RequestParts::claim`] for the configured name.
    fn resolve(&self, request: &dyn RequestParts) -> Resolution {
        self.resolve_value(request.claim(&self.name))
    }
}

fn resolve_value(
    value: Option<&str>,
    absent: impl FnOnce() -> NotPresent,
    origin: impl FnOnce() -> TenantSource,
) -> Resolution {
    let Some(value) = value.map(str::trim).filter(|value| !value.is_empty()) else {
        return absent().into();
    };
    match TenantId::new(value) {
        Ok(tenant) => Resolution::Found(tenant),
        Err(error) => Malformed::InvalidTenantId {
            origin: origin(),
            input: value.to_owned(),
            error,
        }
        .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::RequestView;

    fn acme() -> Resolution {
        Resolution::Found(TenantId::new("acme").unwrap())
    }

    #[test]
    fn header_value() {
        let resolver = HeaderResolver::default();
        assert_eq!(resolver.resolve_value(Some("acme")), acme());
        assert_eq!(resolver.resolve_value(Some("  acme\t")), acme());
    }

    #[test]
    fn missing_or_blank_header() {
        let resolver = HeaderResolver::default();
        let expected = Resolution::NotPresent(NotPresent::NoHeader {
            name: "x-tenant-id".into(),
        });
        for value in [None, Some(""), Some("   "), Some("\t")] {
            assert_eq!(resolver.resolve_value(value), expected, "{value:?}");
        }
    }

    #[test]
    fn invalid_header_value() {
        let resolver = HeaderResolver::default();
        for (value, input) in [
            ("ACME", "ACME"),
            (" acme_ ", "acme_"),
            ("acme, globex", "acme, globex"),
            ("acme corp", "acme corp"),
        ] {
            let outcome = resolver.resolve_value(Some(value));
            let Resolution::Malformed(Malformed::InvalidTenantId {
                origin, input: i, ..
            }) = outcome
            else {
                panic!("{value:?}: expected InvalidTenantId, got {outcome:?}");
            };
            assert_eq!(i, input);
            assert_eq!(
                origin,
                TenantSource::Header {
                    name: "x-tenant-id".into()
                }
            );
        }
    }

    #[test]
    fn header_name_is_case_insensitive() {
        let resolver = HeaderResolver::new("X-Org");
        assert_eq!(resolver.name(), "x-org");
        let request = RequestView::new().with_header("X-ORG", "acme");
        assert_eq!(resolver.resolve(&request), acme());
        let other = RequestView::new().with_header("x-tenant-id", "acme");
        assert!(resolver.resolve(&other).is_not_present());
    }

    #[test]
    fn claim_value() {
        let resolver = ClaimResolver::default();
        assert_eq!(resolver.resolve_value(Some("acme")), acme());
        assert_eq!(resolver.resolve_value(Some(" acme ")), acme());
    }

    #[test]
    fn missing_or_blank_claim() {
        let resolver = ClaimResolver::default();
        let expected = Resolution::NotPresent(NotPresent::NoClaim {
            name: "tenant_id".into(),
        });
        assert_eq!(resolver.resolve_value(None), expected);
        assert_eq!(resolver.resolve_value(Some(" ")), expected);
    }

    #[test]
    fn invalid_claim() {
        let outcome = ClaimResolver::default().resolve_value(Some("Acme"));
        assert!(matches!(
            &outcome,
            Resolution::Malformed(Malformed::InvalidTenantId {
                origin: TenantSource::Claim { .. },
                ..
            })
        ));
        assert_eq!(
            outcome.into_result().unwrap_err().to_string(),
            r#"the "tenant_id" claim does not name a valid tenant: invalid tenant id "Acme": it must start with a lowercase ASCII letter or a digit, not 'A'"#
        );
    }

    #[test]
    fn claim_name_is_exact() {
        let resolver = ClaimResolver::new("org");
        assert_eq!(
            resolver.resolve(&RequestView::new().with_claim("org", "acme")),
            acme()
        );
        assert!(
            resolver
                .resolve(&RequestView::new().with_claim("Org", "acme"))
                .is_not_present()
        );
        // A header of the same name is not a claim.
        assert!(
            resolver
                .resolve(&RequestView::new().with_header("org", "acme"))
                .is_not_present()
        );
    }
}
