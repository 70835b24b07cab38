use crate::error::{Error, NameKind};
use crate::ident::{push_quoted_identifier, quote_identifier, quote_literal, validate_identifier};

/// A validated PostgreSQL identifier naming a tenant's schema, e.g. `tenant_acme`.
///
/// Rules (each rejection is its own [`Error`] variant carrying the input):
/// - 1 to 63 bytes ([`MAX_IDENTIFIER_LEN`](crate::MAX_IDENTIFIER_LEN), PostgreSQL's
///   `NAMEDATALEN - 1`): longer names would be truncated by the server and could collide;
/// - first character a lowercase ASCII letter or `_`, then lowercase letters, digits or `_`,
///   so the name never needs case-folding and reads the same quoted or not;
/// - not a keyword PostgreSQL reserves ([`RESERVED_KEYWORDS`](crate::RESERVED_KEYWORDS)),
///   checked case-insensitively;
/// - not starting with `pg_` (PostgreSQL's own schemas), and not `public` or
///   `information_schema`, which every tenant shares.
///
/// The only way into SQL is [`SchemaName::quoted`].
///
/// ```
/// use tenancy::SchemaName;
///
/// let schema = SchemaName::new("tenant_acme")?;
/// assert_eq!(schema.quoted(), r#""tenant_acme""#);
///
/// for hostile in ["public", "PUBLIC", "pg_catalog", "select", "a;drop schema x", "a\"b", ""] {
///     assert!(SchemaName::new(hostile).is_err(), "{hostile:?} must be rejected");
/// }
/// # Ok::<(), tenancy::NameError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SchemaName(Box<str>);

impl SchemaName {
    /// Validates `input` as a tenant schema name.
    ///
    /// # Errors
    /// [`Error::Empty`], [`Error::TooLong`], [`Error::SystemSchema`],
    /// [`Error::SystemPrefix`], [`Error::ReservedKeyword`], [`Error::InvalidStart`] or
    /// [`Error::InvalidCharacter`].
    ///
    /// ```
    /// use tenancy::{NameError as Error, SchemaName};
    ///
    /// let err = SchemaName::new("user").unwrap_err();
    /// assert!(matches!(err, Error::ReservedKeyword { keyword: "user", .. }));
    /// ```
    pub fn new(input: &str) -> Result<Self, Error> {
        validate_identifier(input, NameKind::SchemaName)?;
        Ok(Self(input.into()))
    }

    /// The name rendered as a quoted SQL identifier, ready to splice into DDL
    /// such as `CREATE SCHEMA {}`.
    ///
    /// ```
    /// let schema = tenancy::SchemaName::new("tenant_acme")?;
    /// assert_eq!(format!("CREATE SCHEMA {}", schema.quoted()), r#"CREATE SCHEMA "tenant_acme""#);
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn quoted(&self) -> String {
        quote_identifier(&self.0)
    }

    /// Appends [`quoted`](Self::quoted) to `out`, for SQL written on a hot
    /// path without a string per name.
    ///
    /// ```
    /// let mut sql = String::from("CREATE SCHEMA ");
    /// tenancy::SchemaName::new("tenant_acme")?.push_quoted(&mut sql);
    /// assert_eq!(sql, r#"CREATE SCHEMA "tenant_acme""#);
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    pub fn push_quoted(&self, out: &mut String) {
        push_quoted_identifier(out, &self.0);
    }
}

impl SchemaName {
    /// The name as a `regnamespace` constant, `'"tenant_acme"'::regnamespace`:
    /// the quoted identifier inside a string literal, for catalog functions
    /// that take a schema's OID. Casting fails with SQLSTATE 3F000 when the
    /// schema does not exist.
    ///
    /// ```
    /// let schema = tenancy::SchemaName::new("tenant_acme")?;
    /// assert_eq!(schema.regnamespace(), r#"'"tenant_acme"'::regnamespace"#);
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn regnamespace(&self) -> String {
        format!("{}::regnamespace", quote_literal(&self.quoted()))
    }
}

crate::newtype::validated_name!(SchemaName);

/// A schema every tenant shares, placed after the tenant's schema on the search
/// path: `public` by default, or for example an `extensions` schema.
///
/// Same rules as [`SchemaName`] except that `public` and `information_schema`
/// are allowed, since sharing them is the point.
///
/// ```
/// use tenancy::SharedSchema;
///
/// assert_eq!(SharedSchema::public().quoted(), r#""public""#);
/// let extensions = SharedSchema::new("extensions")?;
/// assert_eq!(extensions.as_str(), "extensions");
/// assert!(SharedSchema::new("pg_catalog").is_err());
/// # Ok::<(), tenancy::NameError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SharedSchema(Box<str>);

impl SharedSchema {
    /// Validates `input` as a shared schema name.
    ///
    /// # Errors
    /// As [`SchemaName::new`], except that `public` and `information_schema` pass.
    ///
    /// ```
    /// assert!(tenancy::SharedSchema::new("shared").is_ok());
    /// ```
    pub fn new(input: &str) -> Result<Self, Error> {
        validate_identifier(input, NameKind::SharedSchema)?;
        Ok(Self(input.into()))
    }

    /// The `public` schema, where the registry and shared tables live by default.
    ///
    /// ```
    /// assert_eq!(tenancy::SharedSchema::public().as_str(), "public");
    /// ```
    #[must_use]
    pub fn public() -> Self {
        Self("public".into())
    }

    /// The name rendered as a quoted SQL identifier.
    ///
    /// ```
    /// assert_eq!(tenancy::SharedSchema::public().quoted(), r#""public""#);
    /// ```
    #[must_use]
    pub fn quoted(&self) -> String {
        quote_identifier(&self.0)
    }

    /// Appends [`quoted`](Self::quoted) to `out`, for SQL written on a hot
    /// path without a string per name.
    ///
    /// ```
    /// let mut sql = String::from("SET LOCAL search_path TO ");
    /// tenancy::SharedSchema::public().push_quoted(&mut sql);
    /// assert_eq!(sql, r#"SET LOCAL search_path TO "public""#);
    /// ```
    pub fn push_quoted(&self, out: &mut String) {
        push_quoted_identifier(out, &self.0);
    }

    /// The name as a `regnamespace` constant; see [`SchemaName::regnamespace`].
    ///
    /// ```
    /// assert_eq!(tenancy::SharedSchema::public().regnamespace(), r#"'"public"'::regnamespace"#);
    /// ```
    #[must_use]
    pub fn regnamespace(&self) -> String {
        format!("{}::regnamespace", quote_literal(&self.quoted()))
    }
}

crate::newtype::validated_name!(SharedSchema);
