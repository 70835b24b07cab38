use std::fmt;

use crate::{SchemaName, SharedSchema};

/// An ordered search path: the tenant's schema first, then the shared schemas.
///
/// Rendered only from validated names through the one quoting function, so the
/// value can be sent as `SET LOCAL search_path TO …` or passed to
/// `set_config('search_path', …, true)`.
///
/// A strict path holds the tenant's schema alone: a table missing from the
/// tenant's schema is then an error instead of silently resolving to the table
/// of the same name in `public` (PostgreSQL still searches `pg_catalog` first,
/// implicitly, so built-in functions and types keep working).
///
/// ```
/// use tenancy::{SchemaName, SearchPath, SharedSchema};
///
/// let schema = SchemaName::new("tenant_acme")?;
/// assert_eq!(SearchPath::new(schema.clone()).to_string(), r#""tenant_acme", "public""#);
/// assert_eq!(SearchPath::strict(schema.clone()).to_string(), r#""tenant_acme""#);
///
/// let path = SearchPath::with_shared(schema, [SharedSchema::new("extensions")?, SharedSchema::public()]);
/// assert_eq!(
///     path.set_local_statement(),
///     r#"SET LOCAL search_path TO "tenant_acme", "extensions", "public""#,
/// );
/// # Ok::<(), tenancy::NameError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SearchPath {
    tenant: SchemaName,
    shared: Vec<SharedSchema>,
}

impl SearchPath {
    /// The tenant's schema, then `public`.
    ///
    /// ```
    /// let path = tenancy::SearchPath::new("tenant_acme".parse()?);
    /// assert_eq!(path.shared().len(), 1);
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn new(tenant: SchemaName) -> Self {
        Self::with_shared(tenant, [SharedSchema::public()])
    }

    /// The tenant's schema alone (strict mode).
    ///
    /// ```
    /// assert!(tenancy::SearchPath::strict("tenant_acme".parse()?).is_strict());
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn strict(tenant: SchemaName) -> Self {
        Self::with_shared(tenant, [])
    }

    /// The tenant's schema, then `shared` in the given order. Duplicates are
    /// dropped, keeping the first occurrence.
    ///
    /// ```
    /// use tenancy::{SearchPath, SharedSchema};
    ///
    /// let path = SearchPath::with_shared("tenant_acme".parse()?, [SharedSchema::public(), SharedSchema::public()]);
    /// assert_eq!(path.to_string(), r#""tenant_acme", "public""#);
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn with_shared(tenant: SchemaName, shared: impl IntoIterator<Item = SharedSchema>) -> Self {
        let mut unique: Vec<SharedSchema> = Vec::new();
        for schema in shared {
            if !unique.contains(&schema) {
                unique.push(schema);
            }
        }
        Self {
            tenant,
            shared: unique,
        }
    }

    /// The tenant's schema, first on the path.
    ///
    /// ```
    /// let path = tenancy::SearchPath::new("tenant_acme".parse()?);
    /// assert_eq!(path.tenant().as_str(), "tenant_acme");
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn tenant(&self) -> &SchemaName {
        &self.tenant
    }

    /// The shared schemas after the tenant's, in order.
    ///
    /// ```
    /// let path = tenancy::SearchPath::new("tenant_acme".parse()?);
    /// assert_eq!(path.shared()[0].as_str(), "public");
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn shared(&self) -> &[SharedSchema] {
        &self.shared
    }

    /// Whether the path holds the tenant's schema alone.
    ///
    /// ```
    /// assert!(!tenancy::SearchPath::new("tenant_acme".parse()?).is_strict());
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn is_strict(&self) -> bool {
        self.shared.is_empty()
    }

    /// The value for `search_path`: quoted identifiers separated by `, `.
    /// Equal to the [`Display`](fmt::Display) output.
    ///
    /// ```
    /// let path = tenancy::SearchPath::new("tenant_acme".parse()?);
    /// assert_eq!(path.to_value(), r#""tenant_acme", "public""#);
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn to_value(&self) -> String {
        self.to_string()
    }

    /// The statement that pins this path for the current transaction only.
    /// `SET LOCAL` ends with the transaction, so nothing survives on a pooled
    /// connection and it is safe behind PgBouncer in transaction mode.
    ///
    /// ```
    /// let path = tenancy::SearchPath::strict("tenant_acme".parse()?);
    /// assert_eq!(path.set_local_statement(), r#"SET LOCAL search_path TO "tenant_acme""#);
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn set_local_statement(&self) -> String {
        set_local(self)
    }

    /// Appends [`set_local_statement`](Self::set_local_statement) to `out`:
    /// how a scoped transaction writes its opening message, without a string
    /// per name on every transaction.
    ///
    /// ```
    /// let path = tenancy::SearchPath::new("tenant_acme".parse()?);
    /// let mut sql = String::from("BEGIN; ");
    /// path.push_set_local_statement(&mut sql);
    /// assert_eq!(sql, format!("BEGIN; {}", path.set_local_statement()));
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    pub fn push_set_local_statement(&self, out: &mut String) {
        out.push_str(SET_LOCAL);
        self.push_value(out);
    }

    /// The one place the path's value is written: quoted names, `, `
    /// between them.
    fn push_value(&self, out: &mut String) {
        self.tenant.push_quoted(out);
        for schema in &self.shared {
            out.push_str(", ");
            schema.push_quoted(out);
        }
    }

    /// The statement that pins a shared schema alone as the search path of
    /// the current transaction, for work on the shared schema itself
    /// (migrating it), where no tenant's schema may come first.
    ///
    /// ```
    /// use tenancy::{SearchPath, SharedSchema};
    /// assert_eq!(
    ///     SearchPath::set_local_shared_statement(&SharedSchema::public()),
    ///     r#"SET LOCAL search_path TO "public""#,
    /// );
    /// ```
    #[must_use]
    pub fn set_local_shared_statement(schema: &SharedSchema) -> String {
        set_local(schema.quoted())
    }

    /// The statement that pins the shared schemas alone (no tenant's) as
    /// the search path of the current transaction, for reads that name every
    /// tenant table explicitly: a name left unqualified then cannot resolve
    /// to any tenant's table. With no shared schema, only `pg_catalog`.
    ///
    /// ```
    /// use tenancy::{SearchPath, SharedSchema};
    /// assert_eq!(
    ///     SearchPath::set_local_shared_only_statement(&[SharedSchema::public()]),
    ///     r#"SET LOCAL search_path TO "public""#,
    /// );
    /// assert_eq!(SearchPath::set_local_shared_only_statement(&[]), "SET LOCAL search_path TO pg_catalog");
    /// ```
    #[must_use]
    pub fn set_local_shared_only_statement(shared: &[SharedSchema]) -> String {
        if shared.is_empty() {
            return set_local("pg_catalog");
        }
        let quoted: Vec<String> = shared.iter().map(SharedSchema::quoted).collect();
        set_local(quoted.join(", "))
    }
}

/// The one place the scoping statement is written; `value` is rendered from
/// validated names only.
const SET_LOCAL: &str = "SET LOCAL search_path TO ";

fn set_local(value: impl fmt::Display) -> String {
    format!("{SET_LOCAL}{value}")
}

impl fmt::Display for SearchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut value = String::new();
        self.push_value(&mut value);
        f.write_str(&value)
    }
}
