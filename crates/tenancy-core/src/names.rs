use crate::error::{Error, NameKind};
use crate::ident::{push_quoted_identifier, quote_identifier, validate_identifier};

/// A validated PostgreSQL role name, for scopes that switch role with
/// `SET LOCAL ROLE` (one role per tenant is a way to let PostgreSQL itself
/// enforce isolation).
///
/// Same rules as [`SchemaName`](crate::SchemaName) except that `public` is not
/// special (it is a pseudo-role only in `GRANT`); `pg_` names are refused since
/// PostgreSQL reserves them for its predefined roles.
///
/// ```
/// use tenancy::RoleName;
///
/// let role = RoleName::new("tenant_acme_rw")?;
/// assert_eq!(role.quoted(), r#""tenant_acme_rw""#);
/// assert!(RoleName::new("pg_read_all_data").is_err());
/// assert!(RoleName::new("Admin").is_err());
/// # Ok::<(), tenancy::NameError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoleName(Box<str>);

impl RoleName {
    /// Validates `input` as a role name.
    ///
    /// # Errors
    /// The same rejections as [`SchemaName::new`](crate::SchemaName::new), less
    /// [`Error::SystemSchema`].
    ///
    /// ```
    /// assert!(tenancy::RoleName::new("user").is_err());
    /// ```
    pub fn new(input: &str) -> Result<Self, Error> {
        validate_identifier(input, NameKind::RoleName)?;
        Ok(Self(input.into()))
    }

    /// The name rendered as a quoted SQL identifier.
    ///
    /// ```
    /// assert_eq!(tenancy::RoleName::new("app")?.quoted(), r#""app""#);
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
    /// let mut sql = String::from("SET LOCAL ROLE ");
    /// tenancy::RoleName::new("app")?.push_quoted(&mut sql);
    /// assert_eq!(sql, r#"SET LOCAL ROLE "app""#);
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    pub fn push_quoted(&self, out: &mut String) {
        push_quoted_identifier(out, &self.0);
    }
}

crate::newtype::validated_name!(RoleName);

impl PartialEq<str> for RoleName {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for RoleName {
    /// ```
    /// let role = tenancy::RoleName::new("app")?;
    /// assert!(role == "app");
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

/// A validated table name, for tables the library owns in a shared schema
/// (the tenant registry's is `tenants` by default).
///
/// ```
/// use tenancy::{SharedSchema, TableName};
///
/// let table = TableName::new("tenants")?;
/// assert_eq!(table.qualified(&SharedSchema::public()), r#""public"."tenants""#);
/// assert!(TableName::new("tenants; drop table x").is_err());
/// # Ok::<(), tenancy::NameError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableName(Box<str>);

impl TableName {
    /// Validates `input` as a table name.
    ///
    /// # Errors
    /// The same rejections as [`SchemaName::new`](crate::SchemaName::new), less
    /// [`Error::SystemSchema`].
    ///
    /// ```
    /// assert!(tenancy::TableName::new("tenant_registry").is_ok());
    /// ```
    pub fn new(input: &str) -> Result<Self, Error> {
        validate_identifier(input, NameKind::TableName)?;
        Ok(Self(input.into()))
    }

    /// `tenants`, the tenant registry's default table name.
    ///
    /// ```
    /// use tenancy::TableName;
    /// assert_eq!(TableName::tenants(), TableName::new("tenants")?);
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn tenants() -> Self {
        Self("tenants".into())
    }

    /// `seaql_migrations`, sea-orm-migration's default ledger table: every
    /// tenant schema migrated by `tenancy-migrate` has one.
    ///
    /// ```
    /// use tenancy::TableName;
    /// assert_eq!(TableName::migration_ledger(), TableName::new("seaql_migrations")?);
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn migration_ledger() -> Self {
        Self("seaql_migrations".into())
    }

    /// The name rendered as a quoted SQL identifier.
    ///
    /// ```
    /// assert_eq!(tenancy::TableName::new("tenants")?.quoted(), r#""tenants""#);
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
    /// let mut sql = String::from("LOCK TABLE ");
    /// tenancy::TableName::new("tenants")?.push_quoted(&mut sql);
    /// assert_eq!(sql, r#"LOCK TABLE "tenants""#);
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    pub fn push_quoted(&self, out: &mut String) {
        push_quoted_identifier(out, &self.0);
    }

    /// The schema-qualified, quoted name: `"schema"."table"`.
    ///
    /// ```
    /// use tenancy::{SharedSchema, TableName};
    /// let table = TableName::new("tenants")?;
    /// assert_eq!(table.qualified(&SharedSchema::new("control")?), r#""control"."tenants""#);
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn qualified(&self, schema: &crate::SharedSchema) -> String {
        format!("{}.{}", schema.quoted(), self.quoted())
    }
}

crate::newtype::validated_name!(TableName);
