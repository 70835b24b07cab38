//! Serializers for fields whose types carry no `Serialize` of their own:
//! they are written as their `Display` text, which is also what a person
//! reading JSON output expects (`"suspended"`, an error's message).

use std::fmt::Display;

use serde::Serializer;

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
