use std::fmt;

/// Which kind of name a validation error is about.
///
/// Tenant ids and schema names follow different rules, so an error says which
/// rule set rejected the input.
///
/// ```
/// use tenancy::{NameError as Error, NameKind, TenantId};
///
/// let err = TenantId::new("").unwrap_err();
/// assert!(matches!(err, Error::Empty { kind: NameKind::TenantId }));
/// assert_eq!(NameKind::SchemaName.to_string(), "schema name");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NameKind {
    /// A [`TenantId`](crate::TenantId): the application's tenant slug.
    TenantId,
    /// A [`SchemaName`](crate::SchemaName): a tenant's PostgreSQL schema.
    SchemaName,
    /// A [`SharedSchema`](crate::SharedSchema): a schema every tenant shares, such as `public`.
    SharedSchema,
    /// A schema prefix given to [`SchemaNaming`](crate::SchemaNaming).
    SchemaPrefix,
    /// A [`RoleName`](crate::RoleName): a PostgreSQL role a scope switches to.
    RoleName,
    /// A [`TableName`](crate::TableName), such as the tenant registry's.
    TableName,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TenantId => "tenant id",
            Self::SchemaName => "schema name",
            Self::SharedSchema => "shared schema name",
            Self::SchemaPrefix => "schema prefix",
            Self::RoleName => "role name",
            Self::TableName => "table name",
        })
    }
}

/// Everything that can go wrong in `tenancy-core`: a name that is not safe or
/// not allowed to reach PostgreSQL.
///
/// Every variant carries the offending input so the message alone tells a user
/// what to fix.
///
/// ```
/// use tenancy::{NameError as Error, SchemaName};
///
/// let err = SchemaName::new("tenant-acme").unwrap_err();
/// assert!(matches!(err, Error::InvalidCharacter { position: 6, character: '-', .. }));
/// assert_eq!(
///     err.to_string(),
///     "invalid schema name \"tenant-acme\": character '-' at byte 6 is not allowed \
///      (use lowercase ASCII letters, digits and '_')",
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input was empty.
    #[error("invalid {kind}: it is empty")]
    Empty {
        /// Which kind of name was being validated.
        kind: NameKind,
    },

    /// The input is longer than the limit for its kind.
    #[error("invalid {kind} {input:?}: {len} bytes is longer than the limit of {max}")]
    TooLong {
        /// Which kind of name was being validated.
        kind: NameKind,
        /// The rejected input.
        input: String,
        /// Its length in bytes.
        len: usize,
        /// The largest length allowed, in bytes.
        max: usize,
    },

    /// The first character is not allowed to start this kind of name.
    #[error("invalid {kind} {input:?}: it must start with {expected}, not {character:?}")]
    InvalidStart {
        /// Which kind of name was being validated.
        kind: NameKind,
        /// The rejected input.
        input: String,
        /// The first character.
        character: char,
        /// What may start this kind of name.
        expected: &'static str,
    },

    /// A character outside the allowed set.
    #[error(
        "invalid {kind} {input:?}: character {character:?} at byte {position} is not allowed \
         (use {allowed})"
    )]
    InvalidCharacter {
        /// Which kind of name was being validated.
        kind: NameKind,
        /// The rejected input.
        input: String,
        /// Byte offset of the first offending character.
        position: usize,
        /// The offending character.
        character: char,
        /// The characters this kind of name allows.
        allowed: &'static str,
    },

    /// A tenant id ending in `-` or `_`, which reads as a truncated slug.
    #[error("invalid {kind} {input:?}: it must not end with {character:?}")]
    InvalidEnd {
        /// Which kind of name was being validated.
        kind: NameKind,
        /// The rejected input.
        input: String,
        /// The last character.
        character: char,
    },

    /// A keyword PostgreSQL reserves (see [`RESERVED_KEYWORDS`](crate::RESERVED_KEYWORDS)).
    #[error("invalid {kind} {input:?}: {keyword:?} is a reserved SQL keyword in PostgreSQL")]
    ReservedKeyword {
        /// Which kind of name was being validated.
        kind: NameKind,
        /// The rejected input.
        input: String,
        /// The keyword it matched (lowercase).
        keyword: &'static str,
    },

    /// Names starting with `pg_` are reserved for PostgreSQL's own schemas.
    #[error(
        "invalid {kind} {input:?}: names starting with \"pg_\" are reserved for PostgreSQL's \
         system schemas"
    )]
    SystemPrefix {
        /// Which kind of name was being validated.
        kind: NameKind,
        /// The rejected input.
        input: String,
    },

    /// `public` and `information_schema` are shared by everyone and can never be a
    /// tenant's schema.
    #[error("invalid {kind} {input:?}: {input:?} is a shared system schema, not a tenant schema")]
    SystemSchema {
        /// Which kind of name was being validated.
        kind: NameKind,
        /// The rejected input.
        input: String,
    },

    /// A tenant status that is not one of [`TenantStatus`](crate::TenantStatus)'s.
    #[error(
        "unknown tenant status {input:?}: expected one of provisioning, active, suspended, deleted"
    )]
    UnknownStatus {
        /// The rejected input.
        input: String,
    },

    /// The schema name derived from a tenant id would exceed PostgreSQL's limit.
    #[error(
        "tenant id {tenant:?} is too long for a schema name: {schema:?} is {len} bytes, \
         PostgreSQL allows {max}; use a shorter tenant id or prefix"
    )]
    DerivedSchemaTooLong {
        /// The tenant id being mapped.
        tenant: String,
        /// The schema name it would map to.
        schema: String,
        /// That name's length in bytes.
        len: usize,
        /// PostgreSQL's limit (63 bytes).
        max: usize,
    },

    /// The schema name derived from a tenant id is not a valid schema name (for
    /// example a tenant id starting with a digit and an empty prefix).
    #[error("tenant id {tenant:?} does not map to a valid schema name: {source}")]
    DerivedSchemaInvalid {
        /// The tenant id being mapped.
        tenant: String,
        /// Why the derived name was rejected.
        #[source]
        source: Box<Error>,
    },
}
