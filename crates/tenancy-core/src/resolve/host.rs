use std::net::{Ipv4Addr, Ipv6Addr};

use super::{Malformed, NotPresent, RequestParts, Resolution, ResolveTenant, TenantSource};
use crate::TenantId;

/// Finds the tenant in the subdomain of the host: `acme.example.com` → `acme`
/// under the base domain `example.com`.
///
/// The host is normalised before matching: surrounding whitespace, a port
/// (`:8080`) and one trailing dot (`acme.example.com.`) are dropped, and it is
/// lowercased, since host names are case-insensitive. Matching is by whole
/// labels, so `badexample.com` is not under `example.com`.
///
/// | Host (base `example.com`)   | Outcome                                   |
/// |-----------------------------|-------------------------------------------|
/// | `acme.example.com`          | `Found(acme)`                             |
/// | `ACME.Example.COM:8080`     | `Found(acme)`                             |
/// | `example.com`               | [`NotPresent::BareDomain`]                |
/// | `www.example.com`           | [`NotPresent::ReservedLabel`]             |
/// | `acme.other.com`, `badexample.com` | [`NotPresent::ForeignDomain`]      |
/// | `127.0.0.1:8080`, `[::1]:3000` | [`NotPresent::IpAddress`]              |
/// | empty, or no host at all    | [`NotPresent::NoHost`]                    |
/// | `a.b.example.com`           | [`Malformed::NestedSubdomain`]            |
/// | `acme_.example.com`         | [`Malformed::InvalidTenantId`]            |
/// | `acme..example.com`, `host:http` | [`Malformed::InvalidHost`]           |
///
/// A nested subdomain is malformed rather than absent: the host is addressed to
/// this application, and picking one of its labels as the tenant (or falling
/// back to another source) could serve the wrong tenant. Serve deeper hosts
/// with a more specific base domain (`staging.example.com`).
///
/// Reserved labels (default: `www`) are checked before the label is parsed as a
/// tenant id, so a reserved label never resolves even when it is a valid id;
/// refuse these ids when tenants sign up. Internationalised names are not
/// decoded: `xn--mnchen-3ya.example.com` resolves to the tenant
/// `xn--mnchen-3ya`.
///
/// ```
/// use tenancy::resolve::{NotPresent, Resolution, SubdomainResolver};
///
/// let resolver = SubdomainResolver::new("example.com").reserve("api");
/// assert_eq!(resolver.resolve_host("ACME.example.com:8080").found().map(|t| t.as_str()), Some("acme"));
/// assert!(matches!(
///     resolver.resolve_host("api.example.com"),
///     Resolution::NotPresent(NotPresent::ReservedLabel { .. }),
/// ));
/// assert!(matches!(
///     resolver.resolve_host("badexample.com"),
///     Resolution::NotPresent(NotPresent::ForeignDomain { .. }),
/// ));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubdomainResolver {
    base_domain: Box<str>,
    reserved: Vec<Box<str>>,
}

impl SubdomainResolver {
    /// The labels reserved by default.
    pub const DEFAULT_RESERVED: &'static [&'static str] = &["www"];

    /// A resolver for tenants under `base_domain`, with the
    /// [default reserved labels](Self::DEFAULT_RESERVED).
    ///
    /// Construction cannot fail: the base domain is normalised instead. Leading
    /// and trailing dots, surrounding whitespace and a port are dropped, and it
    /// is lowercased. A base domain that is empty after this matches no host
    /// (every host is then [`NotPresent::ForeignDomain`]), so a missing setting
    /// fails closed; check [`base_domain`](Self::base_domain) at start-up if the
    /// value comes from configuration.
    ///
    /// ```
    /// use tenancy::resolve::SubdomainResolver;
    ///
    /// assert_eq!(SubdomainResolver::new(" .Example.COM.:443 ").base_domain(), "example.com");
    /// assert_eq!(SubdomainResolver::new("localhost:3000").base_domain(), "localhost");
    /// assert!(!SubdomainResolver::new("").resolve_host("acme.example.com").is_found());
    /// ```
    #[must_use]
    pub fn new(base_domain: &str) -> Self {
        Self {
            base_domain: normalise_base_domain(base_domain).into(),
            reserved: Self::DEFAULT_RESERVED
                .iter()
                .map(|&label| label.into())
                .collect(),
        }
    }

    /// The same resolver with exactly these reserved labels (lowercased),
    /// replacing the defaults; pass an empty list to reserve nothing.
    ///
    /// ```
    /// use tenancy::resolve::SubdomainResolver;
    ///
    /// let resolver = SubdomainResolver::new("example.com").with_reserved_labels(["API", "admin"]);
    /// assert!(resolver.is_reserved("api"));
    /// assert!(!resolver.is_reserved("www"));
    /// assert!(resolver.resolve_host("www.example.com").is_found());
    /// ```
    #[must_use]
    pub fn with_reserved_labels<I>(mut self, labels: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.reserved.clear();
        for label in labels {
            self = self.reserve(label.as_ref());
        }
        self
    }

    /// The same resolver with `label` (lowercased) reserved as well.
    ///
    /// ```
    /// use tenancy::resolve::SubdomainResolver;
    ///
    /// let resolver = SubdomainResolver::new("example.com").reserve("api").reserve("admin");
    /// assert_eq!(resolver.reserved_labels().collect::<Vec<_>>(), ["www", "api", "admin"]);
    /// ```
    #[must_use]
    pub fn reserve(mut self, label: &str) -> Self {
        let label = label.trim().to_ascii_lowercase();
        if !self.is_reserved(&label) {
            self.reserved.push(label.into());
        }
        self
    }

    /// The normalised base domain.
    ///
    /// ```
    /// use tenancy::resolve::SubdomainResolver;
    /// assert_eq!(SubdomainResolver::new("Example.com").base_domain(), "example.com");
    /// ```
    #[must_use]
    pub fn base_domain(&self) -> &str {
        &self.base_domain
    }

    /// The reserved labels, in the order they were added.
    ///
    /// ```
    /// use tenancy::resolve::SubdomainResolver;
    /// assert_eq!(SubdomainResolver::new("example.com").reserved_labels().collect::<Vec<_>>(), ["www"]);
    /// ```
    pub fn reserved_labels(&self) -> impl ExactSizeIterator<Item = &str> {
        self.reserved.iter().map(AsRef::as_ref)
    }

    /// Whether `label` is reserved, compared case-insensitively.
    ///
    /// ```
    /// use tenancy::resolve::SubdomainResolver;
    /// assert!(SubdomainResolver::new("example.com").is_reserved("WWW"));
    /// ```
    #[must_use]
    pub fn is_reserved(&self, label: &str) -> bool {
        self.reserved
            .iter()
            .any(|reserved| reserved.eq_ignore_ascii_case(label))
    }

    /// Finds the tenant in `host` (a `Host` header value or URI authority,
    /// with or without port).
    ///
    /// ```
    /// use tenancy::resolve::{Malformed, Resolution, SubdomainResolver};
    ///
    /// let resolver = SubdomainResolver::new("example.com");
    /// assert_eq!(resolver.resolve_host("acme.example.com.").found().map(|t| t.as_str()), Some("acme"));
    /// assert!(matches!(
    ///     resolver.resolve_host("a.b.example.com"),
    ///     Resolution::Malformed(Malformed::NestedSubdomain { .. }),
    /// ));
    /// ```
    pub fn resolve_host(&self, host: &str) -> Resolution {
        let name = match parse_host(host) {
            ParsedHost::Empty => return NotPresent::NoHost.into(),
            ParsedHost::Ip(host) => return NotPresent::IpAddress { host }.into(),
            ParsedHost::Invalid(reason) => {
                let host = host.to_owned();
                return Malformed::InvalidHost { host, reason }.into();
            }
            ParsedHost::Name(name) => name,
        };
        let base_domain = &*self.base_domain;
        if name == base_domain {
            return NotPresent::BareDomain { host: name }.into();
        }
        let subdomain = name
            .strip_suffix(base_domain)
            .and_then(|rest| rest.strip_suffix('.'))
            // An empty base domain would otherwise make every host's last
            // label look like a subdomain of "nothing".
            .filter(|_| !base_domain.is_empty());
        let Some(subdomain) = subdomain else {
            let base_domain = base_domain.to_owned();
            return NotPresent::ForeignDomain {
                host: name,
                base_domain,
            }
            .into();
        };
        if subdomain.contains('.') {
            return Malformed::NestedSubdomain {
                subdomain: subdomain.to_owned(),
                base_domain: base_domain.to_owned(),
                host: name,
            }
            .into();
        }
        if self.is_reserved(subdomain) {
            let label = subdomain.to_owned();
            return NotPresent::ReservedLabel { label, host: name }.into();
        }
        match TenantId::new(subdomain) {
            Ok(tenant) => Resolution::Found(tenant),
            Err(error) => Malformed::InvalidTenantId {
                input: subdomain.to_owned(),
                origin: TenantSource::Subdomain { host: name },
                error,
            }
            .into(),
        }
    }
}

impl ResolveTenant for SubdomainResolver {
    /// Resolves [`RequestParts::host`]; no host at all is [`NotPresent::NoHost`].
    fn resolve(&self, request: &dyn RequestParts) -> Resolution {
        request
            .host()
            .map_or_else(|| NotPresent::NoHost.into(), |host| self.resolve_host(host))
    }
}

/// A host split into what resolution cares about.
#[derive(Debug, PartialEq, Eq)]
enum ParsedHost {
    Empty,
    /// An IP literal, without port or brackets.
    Ip(String),
    /// A host name: lowercase, without port or trailing dot, non-empty labels.
    Name(String),
    Invalid(&'static str),
}

fn parse_host(raw: &str) -> ParsedHost {
    let host = raw.trim_matches(|c: char| c.is_ascii_whitespace());
    if host.is_empty() {
        return ParsedHost::Empty;
    }
    if let Some(bracketed) = host.strip_prefix('[') {
        let Some((literal, after)) = bracketed.split_once(']') else {
            return ParsedHost::Invalid("the '[' of an IPv6 address is never closed");
        };
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return ParsedHost::Invalid("only a port may follow an IPv6 address in brackets");
        }
        return match literal.parse::<Ipv6Addr>() {
            Ok(_) => ParsedHost::Ip(literal.to_ascii_lowercase()),
            Err(_) => ParsedHost::Invalid("the text in brackets is not an IPv6 address"),
        };
    }
    // Not valid in a Host header, but some clients and proxies send it.
    if host.parse::<Ipv6Addr>().is_ok() {
        return ParsedHost::Ip(host.to_ascii_lowercase());
    }
    let name = match host.split_once(':') {
        None => host,
        Some((name, port)) if is_port(port) => name,
        Some(_) => return ParsedHost::Invalid("the port is not a number from 0 to 65535"),
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return ParsedHost::Invalid("the host name is empty");
    }
    if name.parse::<Ipv4Addr>().is_ok() {
        return ParsedHost::Ip(name.to_owned());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return ParsedHost::Invalid(
            "a host name may contain only ASCII letters, digits, '-', '_' and '.' \
             (internationalised names must be sent as punycode)",
        );
    }
    if name.split('.').any(str::is_empty) {
        return ParsedHost::Invalid("a label is empty (a leading dot or two dots in a row)");
    }
    ParsedHost::Name(name.to_ascii_lowercase())
}

/// An empty port is allowed: `host:` is valid URI authority syntax.
fn is_port(port: &str) -> bool {
    port.is_empty() || (port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok())
}

fn normalise_base_domain(input: &str) -> String {
    let domain = input.trim().trim_start_matches('.');
    let domain = match domain.rsplit_once(':') {
        Some((name, port)) if is_port(port) => name,
        _ => domain,
    };
    domain.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::RequestView;

    fn resolver() -> SubdomainResolver {
        SubdomainResolver::new("example.com")
    }

    fn found(host: &str) -> Option<String> {
        resolver()
            .resolve_host(host)
            .found()
            .map(|tenant| tenant.as_str().to_owned())
    }

    fn not_present(host: &str) -> NotPresent {
        match resolver().resolve_host(host) {
            Resolution::NotPresent(reason) => reason,
            other => panic!("{host:?}: expected NotPresent, got {other:?}"),
        }
    }

    fn malformed(host: &str) -> Malformed {
        match resolver().resolve_host(host) {
            Resolution::Malformed(reason) => reason,
            other => panic!("{host:?}: expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn tenant_subdomain() {
        assert_eq!(found("acme.example.com").as_deref(), Some("acme"));
        assert_eq!(found("acme-corp.example.com").as_deref(), Some("acme-corp"));
        assert_eq!(found("42.example.com").as_deref(), Some("42"));
    }

    #[test]
    fn port_is_ignored() {
        assert_eq!(found("acme.example.com:8080").as_deref(), Some("acme"));
        assert_eq!(found("acme.example.com:").as_deref(), Some("acme"));
        assert_eq!(found("acme.example.com:65535").as_deref(), Some("acme"));
    }

    #[test]
    fn host_is_case_insensitive() {
        assert_eq!(found("ACME.Example.COM").as_deref(), Some("acme"));
        assert_eq!(found("Acme.example.com:443").as_deref(), Some("acme"));
    }

    #[test]
    fn trailing_dot_and_whitespace_are_tolerated() {
        assert_eq!(found("acme.example.com.").as_deref(), Some("acme"));
        assert_eq!(found("acme.example.com.:8080").as_deref(), Some("acme"));
        assert_eq!(found("  acme.example.com\t").as_deref(), Some("acme"));
    }

    #[test]
    fn bare_domain() {
        let expected = NotPresent::BareDomain {
            host: "example.com".into(),
        };
        assert_eq!(not_present("example.com"), expected);
        assert_eq!(not_present("Example.COM.:80"), expected);
    }

    #[test]
    fn www_is_reserved_by_default() {
        assert_eq!(
            not_present("www.example.com"),
            NotPresent::ReservedLabel {
                label: "www".into(),
                host: "www.example.com".into(),
            }
        );
        assert!(matches!(
            not_present("WWW.example.com"),
            NotPresent::ReservedLabel { label, .. } if label == "www"
        ));
    }

    #[test]
    fn custom_reserved_labels() {
        let resolver = resolver().with_reserved_labels(["www", "API", " admin "]);
        for label in ["www", "api", "admin", "Admin"] {
            let outcome = resolver.resolve_host(&format!("{label}.example.com"));
            assert!(
                matches!(
                    outcome,
                    Resolution::NotPresent(NotPresent::ReservedLabel { .. })
                ),
                "{label}: {outcome:?}"
            );
        }
        assert!(resolver.resolve_host("apis.example.com").is_found());

        let nothing_reserved = resolver.with_reserved_labels(std::iter::empty::<&str>());
        assert_eq!(nothing_reserved.reserved_labels().len(), 0);
        assert!(nothing_reserved.resolve_host("www.example.com").is_found());
    }

    #[test]
    fn reserve_does_not_duplicate() {
        let resolver = resolver().reserve("WWW").reserve("api").reserve("api");
        assert_eq!(
            resolver.reserved_labels().collect::<Vec<_>>(),
            ["www", "api"]
        );
    }

    #[test]
    fn nested_subdomain_is_malformed() {
        assert_eq!(
            malformed("a.b.example.com"),
            Malformed::NestedSubdomain {
                host: "a.b.example.com".into(),
                subdomain: "a.b".into(),
                base_domain: "example.com".into(),
            }
        );
        // Even when the inner label is reserved or the outer one is a tenant.
        assert!(matches!(
            malformed("www.acme.example.com"),
            Malformed::NestedSubdomain { .. }
        ));
        assert!(matches!(
            malformed("acme.www.example.com"),
            Malformed::NestedSubdomain { .. }
        ));
    }

    #[test]
    fn foreign_domain() {
        for host in ["acme.other.com", "other.com", "example.com.evil.org", "com"] {
            assert!(
                matches!(not_present(host), NotPresent::ForeignDomain { .. }),
                "{host}"
            );
        }
        assert_eq!(
            not_present("Acme.Other.com:8080"),
            NotPresent::ForeignDomain {
                host: "acme.other.com".into(),
                base_domain: "example.com".into(),
            }
        );
    }

    #[test]
    fn suffix_match_respects_label_boundaries() {
        assert!(matches!(
            not_present("badexample.com"),
            NotPresent::ForeignDomain { host, .. } if host == "badexample.com"
        ));
        assert!(matches!(
            not_present("acme.badexample.com"),
            NotPresent::ForeignDomain { .. }
        ));
        assert!(matches!(
            not_present("acme-example.com"),
            NotPresent::ForeignDomain { .. }
        ));
    }

    #[test]
    fn ip_literals_have_no_tenant() {
        for (host, ip) in [
            ("127.0.0.1", "127.0.0.1"),
            ("127.0.0.1:8080", "127.0.0.1"),
            ("[::1]", "::1"),
            ("[::1]:3000", "::1"),
            ("[2001:DB8::1]:443", "2001:db8::1"),
            ("::1", "::1"),
        ] {
            assert_eq!(
                not_present(host),
                NotPresent::IpAddress { host: ip.into() },
                "{host}"
            );
        }
    }

    #[test]
    fn empty_host() {
        assert_eq!(not_present(""), NotPresent::NoHost);
        assert_eq!(not_present("   "), NotPresent::NoHost);
    }

    #[test]
    fn invalid_tenant_label() {
        let reason = malformed("acme_.example.com");
        let Malformed::InvalidTenantId {
            origin,
            input,
            error,
        } = reason
        else {
            panic!("expected InvalidTenantId");
        };
        assert_eq!(input, "acme_");
        assert_eq!(
            origin,
            TenantSource::Subdomain {
                host: "acme_.example.com".into()
            }
        );
        assert_eq!(error, TenantId::new("acme_").unwrap_err());

        for host in [
            "-acme.example.com",
            "_acme.example.com",
            "acme-.example.com",
        ] {
            assert!(
                matches!(malformed(host), Malformed::InvalidTenantId { .. }),
                "{host}"
            );
        }
        let long = format!("{}.example.com", "a".repeat(64));
        assert!(matches!(
            malformed(&long),
            Malformed::InvalidTenantId { .. }
        ));
    }

    #[test]
    fn punycode_labels_are_not_decoded() {
        assert_eq!(
            found("xn--mnchen-3ya.example.com").as_deref(),
            Some("xn--mnchen-3ya")
        );
    }

    #[test]
    fn invalid_hosts() {
        for host in [
            "acme..example.com",
            ".example.com",
            ".",
            ":8080",
            "acme.example.com:http",
            "acme.example.com:65536",
            "acme.example.com:+80",
            "acme.example.com:80:80",
            "acme example.com",
            "acme.example.com/path",
            "user@acme.example.com",
            "münchen.example.com",
            "[::1",
            "[::1]x",
            "[not-ip]:80",
        ] {
            assert!(
                matches!(malformed(host), Malformed::InvalidHost { .. }),
                "{host}"
            );
        }
        assert!(matches!(
            malformed("acme..example.com"),
            Malformed::InvalidHost { host, .. } if host == "acme..example.com"
        ));
    }

    #[test]
    fn base_domain_is_normalised() {
        assert_eq!(
            SubdomainResolver::new(" .Example.COM. ").base_domain(),
            "example.com"
        );
        assert_eq!(
            SubdomainResolver::new("example.com:8080").base_domain(),
            "example.com"
        );
        let local = SubdomainResolver::new("localhost:3000");
        assert_eq!(
            local
                .resolve_host("acme.localhost:3000")
                .found()
                .map(TenantId::as_str),
            Some("acme")
        );
    }

    #[test]
    fn empty_base_domain_matches_nothing() {
        let resolver = SubdomainResolver::new("  ");
        assert_eq!(resolver.base_domain(), "");
        for host in ["acme", "acme.example.com", "localhost"] {
            assert!(matches!(
                resolver.resolve_host(host),
                Resolution::NotPresent(NotPresent::ForeignDomain { .. })
            ));
        }
    }

    #[test]
    fn multi_label_base_domain() {
        let resolver = SubdomainResolver::new("apps.example.co.uk");
        assert!(resolver.resolve_host("acme.apps.example.co.uk").is_found());
        assert!(matches!(
            resolver.resolve_host("acme.example.co.uk"),
            Resolution::NotPresent(NotPresent::ForeignDomain { .. })
        ));
    }

    #[test]
    fn resolves_request_parts() {
        let resolver = resolver();
        let request = RequestView::new().with_host("acme.example.com");
        assert!(resolver.resolve(&request).is_found());
        assert_eq!(
            resolver.resolve(&RequestView::new()),
            Resolution::NotPresent(NotPresent::NoHost)
        );
    }

    #[test]
    fn messages_are_actionable() {
        assert_eq!(
            not_present("example.com").to_string(),
            r#"host "example.com" is the bare base domain, which names no tenant (tenant hosts look like "<tenant>.example.com")"#
        );
        assert_eq!(
            malformed("a.b.example.com").to_string(),
            r#"host "a.b.example.com" has the nested subdomain "a.b"; a tenant host has exactly one label before "example.com" (to serve deeper hosts, use a more specific base domain)"#
        );
        assert_eq!(
            malformed("acme_.example.com").to_string(),
            r#"the subdomain of host "acme_.example.com" does not name a valid tenant: invalid tenant id "acme_": it must not end with '_'"#
        );
        assert_eq!(
            malformed("acme.example.com:http").to_string(),
            r#"host "acme.example.com:http" is not a valid host: the port is not a number from 0 to 65535"#
        );
    }
}
