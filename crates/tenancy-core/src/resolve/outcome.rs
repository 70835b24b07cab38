use std::fmt;

use crate::{Error, TenantId};

/// What resolving a tenant from one source (or a chain of sources) found.
///
/// Three outcomes rather than an `Option` or a `Result`, because "no tenant
/// here" and "a tenant named badly" call for different answers: the first is
/// normal (a landing page, another source to try), the second is a client error
/// that must not fall back to another source (see the [module
/// documentation](crate::resolve)).
///
/// ```
/// use tenancy::resolve::{Resolution, SubdomainResolver};
///
/// let resolver = SubdomainResolver::new("example.com");
/// match resolver.resolve_host("acme.example.com") {
///     Resolution::Found(tenant) => assert_eq!(tenant.as_str(), "acme"),
///     Resolution::NotPresent(why) => unreachable!("no tenant: {why}"),
///     Resolution::Malformed(what) => unreachable!("bad request: {what}"),
/// }
/// ```
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The request names this tenant.
    Found(TenantId),
    /// The source names no tenant; the reason says why.
    NotPresent(NotPresent),
    /// The request tried to name a tenant and the name is unusable.
    Malformed(Malformed),
}

impl Resolution {
    /// The tenant, if one was found.
    ///
    /// ```
    /// use tenancy::resolve::SubdomainResolver;
    ///
    /// let resolver = SubdomainResolver::new("example.com");
    /// assert_eq!(resolver.resolve_host("acme.example.com").found().map(|t| t.as_str()), Some("acme"));
    /// assert_eq!(resolver.resolve_host("example.com").found(), None);
    /// ```
    #[must_use]
    pub fn found(&self) -> Option<&TenantId> {
        match self {
            Self::Found(tenant) => Some(tenant),
            Self::NotPresent(_) | Self::Malformed(_) => None,
        }
    }

    /// Whether a tenant was found.
    ///
    /// ```
    /// use tenancy::resolve::HeaderResolver;
    /// assert!(HeaderResolver::default().resolve_value(Some("acme")).is_found());
    /// ```
    #[must_use]
    pub fn is_found(&self) -> bool {
        matches!(self, Self::Found(_))
    }

    /// Whether the source named no tenant.
    ///
    /// ```
    /// use tenancy::resolve::HeaderResolver;
    /// assert!(HeaderResolver::default().resolve_value(None).is_not_present());
    /// ```
    #[must_use]
    pub fn is_not_present(&self) -> bool {
        matches!(self, Self::NotPresent(_))
    }

    /// Whether the source named a tenant badly.
    ///
    /// ```
    /// use tenancy::resolve::HeaderResolver;
    /// assert!(HeaderResolver::default().resolve_value(Some("Acme")).is_malformed());
    /// ```
    #[must_use]
    pub fn is_malformed(&self) -> bool {
        matches!(self, Self::Malformed(_))
    }

    /// The tenant, or why there is none, for `?` in handlers that require a
    /// tenant.
    ///
    /// # Errors
    /// [`ResolveError::NotPresent`] or [`ResolveError::Malformed`], carrying the
    /// outcome's reason.
    ///
    /// ```
    /// use tenancy::resolve::{ResolveError, SubdomainResolver};
    ///
    /// let resolver = SubdomainResolver::new("example.com");
    /// let tenant = resolver.resolve_host("acme.example.com").into_result()?;
    /// assert_eq!(tenant.as_str(), "acme");
    ///
    /// let err = resolver.resolve_host("example.com").into_result().unwrap_err();
    /// assert!(matches!(err, ResolveError::NotPresent(_)));
    /// # Ok::<(), ResolveError>(())
    /// ```
    pub fn into_result(self) -> Result<TenantId, ResolveError> {
        match self {
            Self::Found(tenant) => Ok(tenant),
            Self::NotPresent(reason) => Err(ResolveError::NotPresent(reason)),
            Self::Malformed(reason) => Err(ResolveError::Malformed(reason)),
        }
    }

    /// The tenant if there is one, `None` if the request names none, and an
    /// error only if it named one badly: for routes that serve both tenants and
    /// anonymous visitors.
    ///
    /// # Errors
    /// The [`Malformed`] reason, when the request named a tenant badly.
    ///
    /// ```
    /// use tenancy::resolve::{Malformed, SubdomainResolver};
    ///
    /// let resolver = SubdomainResolver::new("example.com");
    /// assert_eq!(resolver.resolve_host("example.com").into_optional()?, None);
    /// assert!(resolver.resolve_host("acme.example.com").into_optional()?.is_some());
    /// assert!(resolver.resolve_host("a.b.example.com").into_optional().is_err());
    /// # Ok::<(), Malformed>(())
    /// ```
    pub fn into_optional(self) -> Result<Option<TenantId>, Malformed> {
        match self {
            Self::Found(tenant) => Ok(Some(tenant)),
            Self::NotPresent(_) => Ok(None),
            Self::Malformed(reason) => Err(reason),
        }
    }

    /// This outcome, or `next()`'s if this one is [`Resolution::NotPresent`]:
    /// the rule a [`ResolverChain`](crate::resolve::ResolverChain) applies, for
    /// combining sources by hand. A [`Resolution::Malformed`] outcome is kept,
    /// never replaced.
    ///
    /// ```
    /// use tenancy::resolve::{HeaderResolver, SubdomainResolver};
    ///
    /// let subdomain = SubdomainResolver::new("example.com");
    /// let header = HeaderResolver::default();
    ///
    /// let outcome = subdomain.resolve_host("example.com").or_else(|| header.resolve_value(Some("acme")));
    /// assert_eq!(outcome.found().map(|t| t.as_str()), Some("acme"));
    ///
    /// let outcome = subdomain.resolve_host("Bad_.example.com").or_else(|| header.resolve_value(Some("acme")));
    /// assert!(outcome.is_malformed());
    /// ```
    pub fn or_else(self, next: impl FnOnce() -> Self) -> Self {
        match self {
            Self::NotPresent(_) => next(),
            Self::Found(_) | Self::Malformed(_) => self,
        }
    }
}

impl From<TenantId> for Resolution {
    fn from(tenant: TenantId) -> Self {
        Self::Found(tenant)
    }
}

impl From<NotPresent> for Resolution {
    fn from(reason: NotPresent) -> Self {
        Self::NotPresent(reason)
    }
}

impl From<Malformed> for Resolution {
    fn from(reason: Malformed) -> Self {
        Self::Malformed(reason)
    }
}

impl From<ResolveError> for Resolution {
    fn from(error: ResolveError) -> Self {
        match error {
            ResolveError::NotPresent(reason) => Self::NotPresent(reason),
            ResolveError::Malformed(reason) => Self::Malformed(reason),
        }
    }
}

impl From<Result<TenantId, ResolveError>> for Resolution {
    fn from(result: Result<TenantId, ResolveError>) -> Self {
        result.map_or_else(Self::from, Self::Found)
    }
}

/// Why a source names no tenant.
///
/// A normal outcome, not a client error: the bare domain serves a landing page,
/// a foreign domain may be a tenant's custom domain to look up, a missing header
/// means the next source decides. Hosts in these reasons are normalised
/// (lowercase, without port or trailing dot), so they can be used as lookup keys.
///
/// ```
/// use tenancy::resolve::{NotPresent, Resolution, SubdomainResolver};
///
/// let resolver = SubdomainResolver::new("example.com");
/// let Resolution::NotPresent(reason) = resolver.resolve_host("App.Acme.COM:443") else {
///     unreachable!()
/// };
/// assert_eq!(
///     reason,
///     NotPresent::ForeignDomain { host: "app.acme.com".into(), base_domain: "example.com".into() },
/// );
/// assert_eq!(reason.to_string(), r#"host "app.acme.com" is not under the base domain "example.com""#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum NotPresent {
    /// The request has no host, or an empty one.
    #[error(
        "the request has no host (no Host header or :authority), so it has no tenant subdomain"
    )]
    NoHost,

    /// The host is the base domain itself.
    #[error(
        "host {host:?} is the bare base domain, which names no tenant \
         (tenant hosts look like \"<tenant>.{host}\")"
    )]
    BareDomain {
        /// The host (normalised), equal to the base domain.
        host: String,
    },

    /// The host's subdomain is a reserved label, such as `www`.
    #[error("host {host:?} starts with the reserved label {label:?}, which is never a tenant")]
    ReservedLabel {
        /// The reserved label (lowercase).
        label: String,
        /// The host (normalised).
        host: String,
    },

    /// The host is not under the base domain; it may be a custom domain.
    #[error("host {host:?} is not under the base domain {base_domain:?}")]
    ForeignDomain {
        /// The host (normalised).
        host: String,
        /// The resolver's base domain.
        base_domain: String,
    },

    /// The host is an IPv4 or IPv6 address, which has no subdomain.
    #[error("host {host:?} is an IP address, which has no tenant subdomain")]
    IpAddress {
        /// The host, without port (IPv6 without brackets).
        host: String,
    },

    /// The request has no path.
    #[error("the request has no path, so it has no tenant path prefix")]
    NoPath,

    /// The path does not start with the tenant prefix.
    #[error("path {path:?} does not start with the tenant prefix {prefix:?}")]
    NoPathPrefix {
        /// The path.
        path: String,
        /// The resolver's prefix.
        prefix: String,
    },

    /// The path is the prefix alone (`/t/`, or `/t/?page=2`): the tenant area
    /// with no tenant named.
    #[error("path {path:?} has the tenant prefix {prefix:?} but no tenant after it")]
    NoPathSegment {
        /// The path.
        path: String,
        /// The resolver's prefix.
        prefix: String,
    },

    /// The header is missing, empty or blank.
    #[error("the request has no {name:?} header, or it is blank")]
    NoHeader {
        /// The header's name (lowercase).
        name: String,
    },

    /// The claim is missing, empty or blank.
    #[error("the verified claims have no {name:?} claim, or it is blank")]
    NoClaim {
        /// The claim's name.
        name: String,
    },

    /// A [`ResolverChain`](crate::resolve::ResolverChain) with no resolvers.
    #[error("the resolver chain is empty: add at least one resolver")]
    EmptyChain,
}

/// How a request named a tenant badly: a client error, answered with
/// `400 Bad Request`, never by falling back to another source.
///
/// ```
/// use tenancy::resolve::{Malformed, Resolution, SubdomainResolver};
///
/// let resolver = SubdomainResolver::new("example.com");
/// let Resolution::Malformed(reason) = resolver.resolve_host("a.b.example.com") else {
///     unreachable!()
/// };
/// assert!(matches!(&reason, Malformed::NestedSubdomain { subdomain, .. } if subdomain == "a.b"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Malformed {
    /// The host is not a syntactically valid host: a bad port, an empty label,
    /// a character no host name may contain, an unparsable IPv6 literal.
    #[error("host {host:?} is not a valid host: {reason}")]
    InvalidHost {
        /// The host as received.
        host: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The host is under the base domain but has more than one label before
    /// it (`a.b.example.com`). Guessing which label is the tenant could pick
    /// the wrong one, so it is refused.
    #[error(
        "host {host:?} has the nested subdomain {subdomain:?}; a tenant host has exactly one \
         label before {base_domain:?} (to serve deeper hosts, use a more specific base domain)"
    )]
    NestedSubdomain {
        /// The host (normalised).
        host: String,
        /// Everything before the base domain, such as `a.b`.
        subdomain: String,
        /// The resolver's base domain.
        base_domain: String,
    },

    /// The source holds a value that is not a valid [`TenantId`].
    #[error("{origin} does not name a valid tenant: {error}")]
    InvalidTenantId {
        /// Where the value came from.
        origin: TenantSource,
        /// The rejected value (trimmed, and lowercased for hosts).
        input: String,
        /// Why [`TenantId::new`] rejected it.
        #[source]
        error: Error,
    },
}

/// Where a tenant id came from, for error messages and logs.
///
/// ```
/// use tenancy::resolve::TenantSource;
///
/// let origin = TenantSource::Header { name: "x-tenant-id".into() };
/// assert_eq!(origin.to_string(), r#"the "x-tenant-id" header"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TenantSource {
    /// The leftmost label of a host.
    Subdomain {
        /// The host (normalised).
        host: String,
    },
    /// The path segment after a prefix.
    PathPrefix {
        /// The path.
        path: String,
    },
    /// A header's value.
    Header {
        /// The header's name (lowercase).
        name: String,
    },
    /// A verified claim's value.
    Claim {
        /// The claim's name.
        name: String,
    },
}

impl fmt::Display for TenantSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Subdomain { host } => write!(f, "the subdomain of host {host:?}"),
            Self::PathPrefix { path } => write!(f, "path {path:?}"),
            Self::Header { name } => write!(f, "the {name:?} header"),
            Self::Claim { name } => write!(f, "the {name:?} claim"),
        }
    }
}

/// A [`Resolution`] that found no tenant, as an error for `?`.
///
/// ```
/// use tenancy::resolve::{HeaderResolver, ResolveError};
///
/// let err = HeaderResolver::default().resolve_value(Some(" ")).into_result().unwrap_err();
/// assert!(!err.is_malformed());
/// assert_eq!(err.to_string(), r#"the request has no "x-tenant-id" header, or it is blank"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The request names no tenant.
    #[error(transparent)]
    NotPresent(#[from] NotPresent),
    /// The request named a tenant badly.
    #[error(transparent)]
    Malformed(#[from] Malformed),
}

impl ResolveError {
    /// Whether the request named a tenant badly (a client error, `400`), as
    /// opposed to naming none.
    ///
    /// ```
    /// use tenancy::resolve::HeaderResolver;
    ///
    /// let err = HeaderResolver::default().resolve_value(Some("ACME")).into_result().unwrap_err();
    /// assert!(err.is_malformed());
    /// ```
    #[must_use]
    pub fn is_malformed(&self) -> bool {
        matches!(self, Self::Malformed(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acme() -> TenantId {
        TenantId::new("acme").unwrap()
    }

    fn malformed() -> Malformed {
        Malformed::InvalidHost {
            host: "a:b:c".into(),
            reason: "test",
        }
    }

    #[test]
    fn or_else_continues_only_past_not_present() {
        let next = || Resolution::Found(TenantId::new("globex").unwrap());
        assert_eq!(
            Resolution::Found(acme()).or_else(next),
            Resolution::Found(acme())
        );
        assert_eq!(
            Resolution::NotPresent(NotPresent::NoHost).or_else(next),
            next()
        );
        assert_eq!(
            Resolution::Malformed(malformed()).or_else(next),
            Resolution::Malformed(malformed())
        );
    }

    #[test]
    fn conversions_round_trip() {
        for outcome in [
            Resolution::Found(acme()),
            Resolution::NotPresent(NotPresent::NoPath),
            Resolution::Malformed(malformed()),
        ] {
            assert_eq!(Resolution::from(outcome.clone().into_result()), outcome);
        }
        assert_eq!(
            Resolution::NotPresent(NotPresent::NoHost).into_optional(),
            Ok(None)
        );
        assert_eq!(Resolution::Found(acme()).into_optional(), Ok(Some(acme())));
        assert_eq!(
            Resolution::Malformed(malformed()).into_optional(),
            Err(malformed())
        );
    }

    #[test]
    fn invalid_tenant_id_chains_the_name_error() {
        let error = TenantId::new("Acme").unwrap_err();
        let reason = Malformed::InvalidTenantId {
            origin: TenantSource::Claim {
                name: "tenant_id".into(),
            },
            input: "Acme".into(),
            error: error.clone(),
        };
        let source = std::error::Error::source(&reason).unwrap();
        assert_eq!(source.to_string(), error.to_string());
        assert!(
            reason
                .to_string()
                .starts_with(r#"the "tenant_id" claim does not name a valid tenant: "#)
        );
    }

    #[test]
    fn outcome_types_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Resolution>();
        assert_send_sync::<ResolveError>();
    }
}
