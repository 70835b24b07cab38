use super::{
    Malformed, NotPresent, RequestParts, Resolution, ResolveError, ResolveTenant, TenantSource,
};
use crate::TenantId;

/// Finds the tenant in the path segment after a prefix: `/t/acme/projects` →
/// `acme` with the prefix `/t/`.
///
/// The segment runs from the end of the prefix to the next `/`, `?` or `#` (or
/// the end of the path), so `/t/acme`, `/t/acme/` and `/t/acme?page=2` all name
/// `acme`. Paths are case-sensitive and are not percent-decoded: `/t/ACME` and
/// `/t/ac%6De` are [malformed](Malformed::InvalidTenantId), never folded into
/// `acme`.
///
/// | Path (prefix `/t/`)       | Outcome                              |
/// |---------------------------|--------------------------------------|
/// | `/t/acme/projects`        | `Found(acme)`, rest `/projects`      |
/// | `/t/acme`                 | `Found(acme)`, rest empty            |
/// | `/other`, `/t`, `/tenants/acme` | [`NotPresent::NoPathPrefix`]   |
/// | `/t/`, `/t/?page=2`       | [`NotPresent::NoPathSegment`]        |
/// | `/t//projects`            | [`Malformed::InvalidTenantId`] (empty id) |
/// | `/t/Acme/projects`        | [`Malformed::InvalidTenantId`]       |
///
/// The prefix alone (`/t/`) names no tenant, like a bare domain: it may be an
/// index page, and with the root prefix `/` it is the site's home page. An
/// empty segment with more path after it (`/t//projects`) is a request for a
/// tenant's page with the tenant left out, so it is malformed rather than
/// served as someone else's page.
///
/// ```
/// use tenancy::resolve::PathPrefixResolver;
///
/// let resolver = PathPrefixResolver::new("/tenants/");
/// let (tenant, rest) = resolver.strip("/tenants/acme/projects/7")?;
/// assert_eq!((tenant.as_str(), rest), ("acme", "/projects/7"));
/// assert!(!resolver.resolve_path("/t/acme").is_found());
/// # Ok::<(), tenancy::resolve::ResolveError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PathPrefixResolver {
    prefix: Box<str>,
}

impl PathPrefixResolver {
    /// The default prefix, `/t/`.
    pub const DEFAULT_PREFIX: &'static str = "/t/";

    /// A resolver for tenants in the segment after `prefix`.
    ///
    /// Construction cannot fail: surrounding whitespace is trimmed and a
    /// missing leading or trailing `/` is added, so `t`, `/t` and `/t/` are the
    /// same prefix, and the trailing `/` keeps `/tenants/acme` from matching the
    /// prefix `/t`. An empty prefix becomes `/`: the tenant is the first
    /// segment (`/acme/projects`).
    ///
    /// ```
    /// use tenancy::resolve::PathPrefixResolver;
    ///
    /// assert_eq!(PathPrefixResolver::new("t").prefix(), "/t/");
    /// assert_eq!(PathPrefixResolver::new("/org/t").prefix(), "/org/t/");
    /// assert_eq!(PathPrefixResolver::new("").prefix(), "/");
    /// ```
    #[must_use]
    pub fn new(prefix: &str) -> Self {
        let prefix = prefix.trim();
        let mut normalised = String::with_capacity(prefix.len() + 2);
        if !prefix.starts_with('/') {
            normalised.push('/');
        }
        normalised.push_str(prefix);
        if !normalised.ends_with('/') {
            normalised.push('/');
        }
        Self {
            prefix: normalised.into(),
        }
    }

    /// The normalised prefix, starting and ending with `/`.
    ///
    /// ```
    /// use tenancy::resolve::PathPrefixResolver;
    /// assert_eq!(PathPrefixResolver::default().prefix(), "/t/");
    /// ```
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Finds the tenant in `path`.
    ///
    /// ```
    /// use tenancy::resolve::{NotPresent, PathPrefixResolver, Resolution};
    ///
    /// let resolver = PathPrefixResolver::default();
    /// assert_eq!(resolver.resolve_path("/t/acme").found().map(|t| t.as_str()), Some("acme"));
    /// assert!(matches!(
    ///     resolver.resolve_path("/t/"),
    ///     Resolution::NotPresent(NotPresent::NoPathSegment { .. }),
    /// ));
    /// assert!(resolver.resolve_path("/t//projects").is_malformed());
    /// ```
    pub fn resolve_path(&self, path: &str) -> Resolution {
        self.strip(path).map(|(tenant, _)| tenant).into()
    }

    /// Finds the tenant in `path` and returns it with the rest of the path,
    /// for routing the request as if it had arrived without the prefix.
    ///
    /// The rest is exactly what follows the tenant segment, so
    /// `prefix + tenant + rest == path`: it starts with `/`, `?` or `#`, or is
    /// empty for `/t/acme` (a router that needs a path would use `/`).
    ///
    /// # Errors
    /// [`ResolveError::NotPresent`] when the path names no tenant
    /// ([`NotPresent::NoPathPrefix`], [`NotPresent::NoPathSegment`]),
    /// [`ResolveError::Malformed`] when the segment is not a valid tenant id.
    ///
    /// ```
    /// use tenancy::resolve::PathPrefixResolver;
    ///
    /// let resolver = PathPrefixResolver::default();
    /// assert_eq!(resolver.strip("/t/acme/projects")?.1, "/projects");
    /// assert_eq!(resolver.strip("/t/acme?page=2")?.1, "?page=2");
    /// assert_eq!(resolver.strip("/t/acme")?.1, "");
    /// assert!(resolver.strip("/other").is_err());
    /// # Ok::<(), tenancy::resolve::ResolveError>(())
    /// ```
    pub fn strip<'p>(&self, path: &'p str) -> Result<(TenantId, &'p str), ResolveError> {
        let Some(after) = path.strip_prefix(&*self.prefix) else {
            return Err(NotPresent::NoPathPrefix {
                path: path.to_owned(),
                prefix: self.prefix.to_string(),
            }
            .into());
        };
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        let (segment, rest) = after.split_at(end);
        if segment.is_empty() && !rest.starts_with('/') {
            return Err(NotPresent::NoPathSegment {
                path: path.to_owned(),
                prefix: self.prefix.to_string(),
            }
            .into());
        }
        match TenantId::new(segment) {
            Ok(tenant) => Ok((tenant, rest)),
            Err(error) => Err(Malformed::InvalidTenantId {
                origin: TenantSource::PathPrefix {
                    path: path.to_owned(),
                },
                input: segment.to_owned(),
                error,
            }
            .into()),
        }
    }
}

impl Default for PathPrefixResolver {
    /// The prefix `/t/`.
    fn default() -> Self {
        Self::new(Self::DEFAULT_PREFIX)
    }
}

impl ResolveTenant for PathPrefixResolver {
    /// Resolves [`RequestParts::path`]; no path at all is [`NotPresent::NoPath`].
    fn resolve(&self, request: &dyn RequestParts) -> Resolution {
        request
            .path()
            .map_or_else(|| NotPresent::NoPath.into(), |path| self.resolve_path(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::resolve::RequestView;

    fn strip(path: &str) -> Result<(String, &str), ResolveError> {
        PathPrefixResolver::default()
            .strip(path)
            .map(|(tenant, rest)| (tenant.as_str().to_owned(), rest))
    }

    fn not_present(path: &str) -> NotPresent {
        match PathPrefixResolver::default().resolve_path(path) {
            Resolution::NotPresent(reason) => reason,
            other => panic!("{path:?}: expected NotPresent, got {other:?}"),
        }
    }

    fn malformed(path: &str) -> Malformed {
        match PathPrefixResolver::default().resolve_path(path) {
            Resolution::Malformed(reason) => reason,
            other => panic!("{path:?}: expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn tenant_segment_and_rest() {
        assert_eq!(strip("/t/acme/projects"), Ok(("acme".into(), "/projects")));
        assert_eq!(strip("/t/acme/"), Ok(("acme".into(), "/")));
        assert_eq!(strip("/t/acme"), Ok(("acme".into(), "")));
        assert_eq!(
            strip("/t/acme-corp/a/b/c"),
            Ok(("acme-corp".into(), "/a/b/c"))
        );
    }

    #[test]
    fn query_and_fragment_end_the_segment() {
        assert_eq!(strip("/t/acme?page=2"), Ok(("acme".into(), "?page=2")));
        assert_eq!(strip("/t/acme#top"), Ok(("acme".into(), "#top")));
        assert_eq!(strip("/t/acme/x?y=/z"), Ok(("acme".into(), "/x?y=/z")));
    }

    #[test]
    fn no_prefix() {
        for path in [
            "/other",
            "/",
            "",
            "/t",
            "t/acme",
            "/tenants/acme",
            "/T/acme",
            "//t/acme",
        ] {
            assert_eq!(
                not_present(path),
                NotPresent::NoPathPrefix {
                    path: path.into(),
                    prefix: "/t/".into()
                },
                "{path}"
            );
        }
    }

    #[test]
    fn prefix_alone_names_no_tenant() {
        for path in ["/t/", "/t/?page=2", "/t/#top"] {
            assert_eq!(
                not_present(path),
                NotPresent::NoPathSegment {
                    path: path.into(),
                    prefix: "/t/".into()
                },
                "{path}"
            );
        }
    }

    #[test]
    fn empty_segment_before_more_path_is_malformed() {
        for path in ["/t//", "/t//projects"] {
            let Malformed::InvalidTenantId { input, error, .. } = malformed(path) else {
                panic!("{path}: expected InvalidTenantId");
            };
            assert_eq!(input, "");
            assert!(matches!(error, Error::Empty { .. }));
        }
    }

    #[test]
    fn invalid_segment_is_malformed() {
        for (path, input) in [
            ("/t/Acme/projects", "Acme"),
            ("/t/acme_", "acme_"),
            ("/t/ac%6De", "ac%6De"),
            ("/t/acme corp/x", "acme corp"),
            ("/t/-acme", "-acme"),
        ] {
            assert!(
                matches!(malformed(path), Malformed::InvalidTenantId { input: i, .. } if i == input),
                "{path}"
            );
        }
        assert_eq!(
            malformed("/t/Acme/projects").to_string(),
            r#"path "/t/Acme/projects" does not name a valid tenant: invalid tenant id "Acme": it must start with a lowercase ASCII letter or a digit, not 'A'"#
        );
    }

    #[test]
    fn prefix_is_normalised() {
        for prefix in [
            "tenants",
            "/tenants",
            "tenants/",
            "/tenants/",
            " /tenants/ ",
        ] {
            assert_eq!(
                PathPrefixResolver::new(prefix).prefix(),
                "/tenants/",
                "{prefix:?}"
            );
        }
        assert_eq!(PathPrefixResolver::new("").prefix(), "/");
        assert_eq!(PathPrefixResolver::new("/").prefix(), "/");
    }

    #[test]
    fn custom_prefix() {
        let resolver = PathPrefixResolver::new("/tenants/");
        assert_eq!(
            resolver
                .strip("/tenants/acme/projects")
                .map(|(t, rest)| (t.to_string(), rest)),
            Ok(("acme".into(), "/projects"))
        );
        assert!(resolver.resolve_path("/t/acme").is_not_present());
        assert!(resolver.resolve_path("/tenantsacme").is_not_present());
    }

    #[test]
    fn root_prefix() {
        let resolver = PathPrefixResolver::new("/");
        assert_eq!(
            resolver
                .strip("/acme/projects")
                .map(|(t, rest)| (t.to_string(), rest)),
            Ok(("acme".into(), "/projects"))
        );
        assert!(matches!(
            resolver.resolve_path("/"),
            Resolution::NotPresent(NotPresent::NoPathSegment { .. })
        ));
        assert!(resolver.resolve_path("//x").is_malformed());
    }

    #[test]
    fn resolves_request_parts() {
        let resolver = PathPrefixResolver::default();
        assert!(
            resolver
                .resolve(&RequestView::new().with_path("/t/acme"))
                .is_found()
        );
        assert_eq!(
            resolver.resolve(&RequestView::new()),
            Resolution::NotPresent(NotPresent::NoPath)
        );
    }
}
