use crate::{Error, SchemaName, SchemaNaming, SearchPath, TenantId};

/// What a tenant-scoped operation needs to know: which schema, and which search
/// path to pin for the transaction.
///
/// Implemented by [`Tenant`] (a tenant id with its schema) and by [`SchemaName`]
/// itself, for code that has a schema but no tenant id (migrations, admin
/// tools). References to a scope are scopes too.
///
/// ```
/// use tenancy::{SchemaName, Tenant, TenantId, TenantScope};
///
/// fn describe(scope: &impl TenantScope) -> String {
///     format!("{} via {}", scope.schema(), scope.search_path())
/// }
///
/// let tenant = Tenant::from_id(TenantId::new("acme")?)?;
/// assert_eq!(describe(&tenant), r#"tenant_acme via "tenant_acme", "public""#);
/// assert_eq!(describe(&SchemaName::new("legacy")?), r#"legacy via "legacy", "public""#);
/// # Ok::<(), tenancy::NameError>(())
/// ```
pub trait TenantScope {
    /// The tenant's schema.
    fn schema(&self) -> &SchemaName;

    /// The tenant id, when the scope knows one (used for logs and error messages).
    fn tenant_id(&self) -> Option<&TenantId> {
        None
    }

    /// The search path to pin; by default the tenant's schema, then `public`.
    fn search_path(&self) -> SearchPath {
        SearchPath::new(self.schema().clone())
    }
}

impl TenantScope for SchemaName {
    fn schema(&self) -> &SchemaName {
        self
    }
}

impl<T: TenantScope + ?Sized> TenantScope for &T {
    fn schema(&self) -> &SchemaName {
        (**self).schema()
    }

    fn tenant_id(&self) -> Option<&TenantId> {
        (**self).tenant_id()
    }

    fn search_path(&self) -> SearchPath {
        (**self).search_path()
    }
}

/// A tenant: its id, its schema and the search path its transactions pin.
///
/// ```
/// use tenancy::{SchemaName, SearchPath, Tenant, TenantId, TenantScope};
///
/// let tenant = Tenant::new(TenantId::new("acme")?, SchemaName::new("acme_schema")?);
/// assert_eq!(tenant.id().as_str(), "acme");
/// assert_eq!(tenant.schema().as_str(), "acme_schema");
///
/// let strict = tenant.strict();
/// assert!(strict.search_path().is_strict());
/// # Ok::<(), tenancy::NameError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tenant {
    id: TenantId,
    search_path: SearchPath,
}

impl Tenant {
    /// A tenant with an explicit schema (for schemas adopted from elsewhere) and
    /// the default search path (its schema, then `public`).
    ///
    /// ```
    /// use tenancy::{Tenant, TenantScope};
    /// let tenant = Tenant::new("acme".parse()?, "acme".parse()?);
    /// assert_eq!(tenant.schema().as_str(), "acme");
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn new(id: TenantId, schema: SchemaName) -> Self {
        Self {
            id,
            search_path: SearchPath::new(schema),
        }
    }

    /// A tenant whose schema follows the default [`SchemaNaming`] (`tenant_` + id).
    ///
    /// # Errors
    /// The id is too long for a schema name once prefixed; see
    /// [`SchemaNaming::schema_for`].
    ///
    /// ```
    /// use tenancy::{Tenant, TenantScope};
    /// let tenant = Tenant::from_id("acme-corp".parse()?)?;
    /// assert_eq!(tenant.schema().as_str(), "tenant_acme_corp");
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    pub fn from_id(id: TenantId) -> Result<Self, Error> {
        let schema = SchemaNaming::default().schema_for(&id)?;
        Ok(Self::new(id, schema))
    }

    /// The same tenant with a strict search path: its schema alone.
    ///
    /// ```
    /// use tenancy::{Tenant, TenantScope};
    /// let tenant = Tenant::from_id("acme".parse()?)?.strict();
    /// assert_eq!(tenant.search_path().to_string(), r#""tenant_acme""#);
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn strict(self) -> Self {
        let search_path = SearchPath::strict(self.search_path.tenant().clone());
        Self {
            search_path,
            ..self
        }
    }

    /// The same tenant with an explicit search path; its first schema becomes
    /// the tenant's schema.
    ///
    /// ```
    /// use tenancy::{SearchPath, SharedSchema, Tenant, TenantScope};
    /// let tenant = Tenant::from_id("acme".parse()?)?;
    /// let path = SearchPath::with_shared(tenant.schema().clone(), [SharedSchema::new("extensions")?]);
    /// let tenant = tenant.with_search_path(path);
    /// assert_eq!(tenant.search_path().to_string(), r#""tenant_acme", "extensions""#);
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn with_search_path(self, search_path: SearchPath) -> Self {
        Self {
            search_path,
            ..self
        }
    }

    /// The tenant's id.
    ///
    /// ```
    /// let tenant = tenancy::Tenant::from_id("acme".parse()?)?;
    /// assert_eq!(tenant.id().as_str(), "acme");
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn id(&self) -> &TenantId {
        &self.id
    }
}

impl TenantScope for Tenant {
    fn schema(&self) -> &SchemaName {
        self.search_path.tenant()
    }

    fn tenant_id(&self) -> Option<&TenantId> {
        Some(&self.id)
    }

    fn search_path(&self) -> SearchPath {
        self.search_path.clone()
    }
}
