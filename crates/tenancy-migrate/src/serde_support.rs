//! Serializers for fields whose own serde form would not suit a reader of
//! JSON output: types without `Serialize` as their `Display` text
//! (`"suspended"`, an error's message), durations as seconds, and
//! `(tenant, value)` pairs as objects with named fields.

use std::fmt::Display;
use std::time::Duration;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use tenancy_core::{SchemaName, TenantId};

/// A value as its `Display` text.
pub(crate) fn display<T: Display, S: Serializer>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// An optional value as its `Display` text, or `null`.
#[allow(clippy::ref_option)] // serde's `serialize_with` passes `&Option<T>`.
pub(crate) fn display_opt<T: Display, S: Serializer>(
    value: &Option<T>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => serializer.collect_str(value),
        None => serializer.serialize_none(),
    }
}

/// A duration as seconds, a number (serde's own form is `{secs, nanos}`).
pub(crate) fn seconds<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(value.as_secs_f64())
}

/// `(tenant, schema)` pairs as `[{"tenant": …, "schema": …}]`.
pub(crate) fn tenant_schemas<S: Serializer>(
    pairs: &[(TenantId, SchemaName)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    tenant_pairs(pairs, "schema", serializer)
}

/// `(tenant, migrations)` pairs as `[{"tenant": …, "migrations": […]}]`.
pub(crate) fn tenant_migrations<S: Serializer>(
    pairs: &[(TenantId, Vec<String>)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    tenant_pairs(pairs, "migrations", serializer)
}

/// `(tenant, tables)` pairs as `[{"tenant": …, "tables": […]}]`.
pub(crate) fn tenant_tables<S: Serializer>(
    pairs: &[(TenantId, Vec<String>)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    tenant_pairs(pairs, "tables", serializer)
}

/// Pairs as objects: a reader of JSON looks fields up by name, and a tuple
/// would be an array whose positions mean nothing to it.
fn tenant_pairs<V: Serialize, S: Serializer>(
    pairs: &[(TenantId, V)],
    key: &'static str,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    struct Pair<'a, V> {
        tenant: &'a TenantId,
        key: &'static str,
        value: &'a V,
    }
    impl<V: Serialize> Serialize for Pair<'_, V> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut map = serializer.serialize_map(Some(2))?;
            map.serialize_entry("tenant", self.tenant)?;
            map.serialize_entry(self.key, self.value)?;
            map.end()
        }
    }
    serializer.collect_seq(
        pairs
            .iter()
            .map(|(tenant, value)| Pair { tenant, key, value }),
    )
}
