//! Properties of tenant resolution over generated hosts, paths and values.

use proptest::prelude::*;
use tenancy_core::TenantId;
use tenancy_core::resolve::{
    ClaimResolver, HeaderResolver, PathPrefixResolver, RequestView, Resolution, ResolveTenant,
    ResolverChain, SubdomainResolver,
};

/// Valid tenant ids, including the 1- and 63-byte extremes. `www` is left out
/// because it is reserved by default.
fn tenant_id() -> impl Strategy<Value = TenantId> {
    "[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?"
        .prop_filter("www is reserved", |id| id != "www")
        .prop_filter_map("the pattern yields valid ids", |id| TenantId::new(&id).ok())
}

/// Base domains of one to four labels; each label starts with a letter so that
/// `<tenant>.<base>` can never read as an IPv4 address.
fn base_domain() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-z][a-z0-9-]{0,15}", 1..=4).prop_map(|labels| labels.join("."))
}

/// Hosts built from host-like characters, which reach the interesting
/// branches far more often than arbitrary strings.
fn host_like() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._:\\[\\]-]{0,40}"
}

fn found(outcome: &Resolution) -> Option<&str> {
    outcome.found().map(TenantId::as_str)
}

proptest! {
    #[test]
    fn tenant_subdomain_resolves(id in tenant_id(), base in base_domain()) {
        let resolver = SubdomainResolver::new(&base);
        let host = format!("{id}.{base}");
        prop_assert_eq!(resolver.resolve_host(&host), Resolution::Found(id));
    }

    #[test]
    fn uppercase_subdomain_resolves(id in tenant_id(), base in base_domain()) {
        let resolver = SubdomainResolver::new(&base);
        let host = format!("{id}.{base}").to_ascii_uppercase();
        prop_assert_eq!(resolver.resolve_host(&host), Resolution::Found(id));
    }

    #[test]
    fn subdomain_with_port_resolves(id in tenant_id(), base in base_domain(), port: u16, dot: bool) {
        let resolver = SubdomainResolver::new(&base);
        let dot = if dot { "." } else { "" };
        let host = format!("{id}.{base}{dot}:{port}");
        prop_assert_eq!(resolver.resolve_host(&host), Resolution::Found(id));
    }

    #[test]
    fn uppercase_base_domain_configuration_resolves(id in tenant_id(), base in base_domain()) {
        let resolver = SubdomainResolver::new(&base.to_ascii_uppercase());
        prop_assert_eq!(resolver.base_domain(), base.as_str());
        let host = format!("{id}.{base}");
        prop_assert_eq!(resolver.resolve_host(&host), Resolution::Found(id));
    }

    #[test]
    fn bare_and_glued_domains_never_resolve(base in base_domain(), glue in "[a-z0-9-]{1,10}") {
        let resolver = SubdomainResolver::new(&base);
        prop_assert!(resolver.resolve_host(&base).is_not_present());
        // Label boundary: `{glue}{base}` is another domain, not a subdomain.
        let glued = format!("{glue}{base}");
        prop_assert!(resolver.resolve_host(&glued).is_not_present());
    }

    #[test]
    fn found_host_is_exactly_tenant_dot_base(host in host_like(), base in base_domain()) {
        let resolver = SubdomainResolver::new(&base);
        if let Some(tenant) = found(&resolver.resolve_host(&host)) {
            let name = host.split(':').next().unwrap_or_default().to_ascii_lowercase();
            let name = name.strip_suffix('.').unwrap_or(&name);
            prop_assert_eq!(name, format!("{tenant}.{base}"));
        }
    }

    #[test]
    fn subdomain_resolver_never_panics(host in any::<String>(), base in any::<String>()) {
        let _ = SubdomainResolver::new(&base).resolve_host(&host);
        let _ = SubdomainResolver::new("example.com").resolve_host(&host);
    }

    #[test]
    fn host_like_inputs_never_panic(host in host_like()) {
        let _ = SubdomainResolver::new("example.com").resolve_host(&host);
    }

    #[test]
    fn path_prefix_resolves_and_preserves_rest(id in tenant_id(), rest in any::<String>()) {
        let resolver = PathPrefixResolver::default();
        let path = format!("/t/{id}/{rest}");
        prop_assert_eq!(resolver.resolve_path(&path), Resolution::Found(id.clone()));
        let (tenant, remaining) = resolver.strip(&path).unwrap();
        prop_assert_eq!(tenant, id);
        prop_assert_eq!(remaining, format!("/{rest}"));
    }

    #[test]
    fn custom_prefix_resolves(id in tenant_id(), prefix in "[a-z]{1,8}(/[a-z]{1,8}){0,2}", rest in "(/[a-z0-9]{0,8}){0,3}") {
        let resolver = PathPrefixResolver::new(&prefix);
        let path = format!("/{prefix}/{id}{rest}");
        let (tenant, remaining) = resolver.strip(&path).unwrap();
        prop_assert_eq!(tenant, id);
        prop_assert_eq!(remaining, rest.as_str());
    }

    #[test]
    fn strip_is_lossless(path in any::<String>(), prefix in any::<String>()) {
        let resolver = PathPrefixResolver::new(&prefix);
        if let Ok((tenant, rest)) = resolver.strip(&path) {
            prop_assert_eq!(format!("{}{tenant}{rest}", resolver.prefix()), path);
        }
    }

    #[test]
    fn value_resolvers_never_panic(value in any::<String>(), name in any::<String>()) {
        let _ = HeaderResolver::new(&name).resolve_value(Some(&value));
        let _ = ClaimResolver::new(&name).resolve_value(Some(&value));
    }

    #[test]
    fn header_and_claim_resolve_padded_ids(id in tenant_id(), left in "[ \t]{0,3}", right in "[ \t]{0,3}") {
        let value = format!("{left}{id}{right}");
        prop_assert_eq!(HeaderResolver::default().resolve_value(Some(&value)), Resolution::Found(id.clone()));
        prop_assert_eq!(ClaimResolver::default().resolve_value(Some(&value)), Resolution::Found(id));
    }

    #[test]
    fn value_resolvers_agree_with_tenant_id(value in any::<String>()) {
        let outcome = HeaderResolver::default().resolve_value(Some(&value));
        let trimmed = value.trim();
        if trimmed.is_empty() {
            prop_assert!(outcome.is_not_present());
        } else {
            prop_assert_eq!(outcome.is_found(), TenantId::new(trimmed).is_ok());
            prop_assert_eq!(outcome.is_malformed(), TenantId::new(trimmed).is_err());
        }
    }

    #[test]
    fn chain_never_panics_and_follows_its_rules(
        host in any::<String>(),
        path in any::<String>(),
        header in any::<String>(),
        claim in any::<String>(),
    ) {
        let subdomain = SubdomainResolver::new("example.com");
        let prefix = PathPrefixResolver::default();
        let by_header = HeaderResolver::default();
        let by_claim = ClaimResolver::default();
        let chain = ResolverChain::new()
            .with(subdomain.clone())
            .with(prefix.clone())
            .with(by_header.clone())
            .with(by_claim.clone());
        let request = RequestView::new()
            .with_host(&host)
            .with_path(&path)
            .with_header("x-tenant-id", &header)
            .with_claim("tenant_id", &claim);

        let expected = subdomain
            .resolve_host(&host)
            .or_else(|| prefix.resolve_path(&path))
            .or_else(|| by_header.resolve_value(Some(&header)))
            .or_else(|| by_claim.resolve_value(Some(&claim)));
        let outcome = chain.resolve(&request);
        match (&outcome, &expected) {
            // The chain keeps the first reason; `or_else` keeps the last.
            (Resolution::NotPresent(_), Resolution::NotPresent(_)) => {
                prop_assert_eq!(outcome, subdomain.resolve_host(&host));
            }
            _ => prop_assert_eq!(outcome, expected),
        }
    }
}
