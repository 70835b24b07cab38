use crate::error::{Error, NameKind};
use crate::ident::{MAX_IDENTIFIER_LEN, validate_identifier};
use crate::{SchemaName, TenantId};

/// How a [`TenantId`] maps to its [`SchemaName`]: a prefix (default `tenant_`),
/// then the tenant id with every `-` replaced by `_`.
///
/// The mapping is not injective: `acme-corp` and `acme_corp` both map to
/// `tenant_acme_corp`. The tenant registry keeps schema names unique, so the
/// second tenant is refused when it is registered rather than silently sharing
/// the first one's schema. Pick one separator in your sign-up form to avoid the
/// surprise.
///
/// ```
/// use tenancy::{SchemaNaming, TenantId};
///
/// let naming = SchemaNaming::default();
/// let schema = naming.schema_for(&TenantId::new("acme-corp")?)?;
/// assert_eq!(schema.as_str(), "tenant_acme_corp");
///
/// let custom = SchemaNaming::with_prefix("t_")?;
/// assert_eq!(custom.schema_for(&TenantId::new("acme")?)?.as_str(), "t_acme");
/// # Ok::<(), tenancy::NameError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SchemaNaming {
    prefix: Box<str>,
}

impl SchemaNaming {
    /// The default prefix, `tenant_`.
    pub const DEFAULT_PREFIX: &'static str = "tenant_";

    /// A mapping with a custom prefix. An empty prefix is allowed; tenant ids
    /// that then do not form a valid schema name (one starting with a digit, or
    /// a reserved keyword) are refused by [`SchemaNaming::schema_for`].
    ///
    /// # Errors
    /// The prefix breaks the identifier rules of [`SchemaName`]: it must start
    /// with a lowercase letter or `_`, use only lowercase letters, digits and
    /// `_`, not start with `pg_`, and leave room for at least one character.
    ///
    /// ```
    /// use tenancy::SchemaNaming;
    ///
    /// assert!(SchemaNaming::with_prefix("").is_ok());
    /// assert!(SchemaNaming::with_prefix("Tenant-").is_err());
    /// assert!(SchemaNaming::with_prefix("pg_").is_err());
    /// ```
    pub fn with_prefix(prefix: &str) -> Result<Self, Error> {
        if !prefix.is_empty() {
            validate_identifier(prefix, NameKind::SchemaPrefix)?;
            if prefix.len() >= MAX_IDENTIFIER_LEN {
                return Err(Error::TooLong {
                    kind: NameKind::SchemaPrefix,
                    input: prefix.to_owned(),
                    len: prefix.len(),
                    max: MAX_IDENTIFIER_LEN - 1,
                });
            }
        }
        Ok(Self {
            prefix: prefix.into(),
        })
    }

    /// The prefix every tenant schema name starts with.
    ///
    /// ```
    /// assert_eq!(tenancy::SchemaNaming::default().prefix(), "tenant_");
    /// ```
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The schema name for `tenant`.
    ///
    /// # Errors
    /// [`Error::DerivedSchemaTooLong`] when prefix plus id exceed 63 bytes, and
    /// [`Error::DerivedSchemaInvalid`] when the result is not a valid
    /// [`SchemaName`] (only possible with an empty or unusual prefix).
    ///
    /// ```
    /// use tenancy::{NameError as Error, SchemaNaming, TenantId};
    ///
    /// let long = TenantId::new(&"a".repeat(60))?;
    /// let err = SchemaNaming::default().schema_for(&long).unwrap_err();
    /// assert!(matches!(err, Error::DerivedSchemaTooLong { len: 67, max: 63, .. }));
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    pub fn schema_for(&self, tenant: &TenantId) -> Result<SchemaName, Error> {
        let mut schema = String::with_capacity(self.prefix.len() + tenant.as_str().len());
        schema.push_str(&self.prefix);
        schema.extend(
            tenant
                .as_str()
                .chars()
                .map(|c| if c == '-' { '_' } else { c }),
        );
        if schema.len() > MAX_IDENTIFIER_LEN {
            return Err(Error::DerivedSchemaTooLong {
                tenant: tenant.to_string(),
                len: schema.len(),
                schema,
                max: MAX_IDENTIFIER_LEN,
            });
        }
        SchemaName::new(&schema).map_err(|source| Error::DerivedSchemaInvalid {
            tenant: tenant.to_string(),
            source: Box::new(source),
        })
    }
}

impl SchemaNaming {
    /// What follows the prefix in a spare schema's name (see
    /// [`spare_schema`](Self::spare_schema)). It starts with `_`, which no
    /// tenant id does, so no tenant id maps to a spare's name.
    pub const SPARE_MARKER: &'static str = "_spare_";

    /// The name of the spare schema numbered `number`: an empty schema kept
    /// migrated ahead of sign-ups, renamed to a tenant's schema when one is
    /// created (`tenant__spare_7` with the default prefix). Every tenant id
    /// starts with a letter or digit, so no tenant's schema can have this
    /// name, whatever the prefix.
    ///
    /// # Errors
    /// [`Error::TooLong`] (or another [`SchemaName`] error) when the prefix
    /// leaves no room for the marker and the number.
    ///
    /// ```
    /// use tenancy::{SchemaNaming, TenantId};
    ///
    /// let naming = SchemaNaming::default();
    /// let spare = naming.spare_schema(7)?;
    /// assert_eq!(spare.as_str(), "tenant__spare_7");
    /// assert!(naming.is_spare(spare.as_str()));
    /// assert!(!naming.is_spare(naming.schema_for(&TenantId::new("spare_7")?)?.as_str()));
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    pub fn spare_schema(&self, number: u64) -> Result<SchemaName, Error> {
        SchemaName::new(&format!("{}{}{number}", self.prefix, Self::SPARE_MARKER))
    }

    /// Whether `schema` is named like one of this naming's spare schemas:
    /// the prefix, the marker, then digits only.
    ///
    /// ```
    /// let naming = tenancy::SchemaNaming::default();
    /// assert!(naming.is_spare("tenant__spare_12"));
    /// assert!(!naming.is_spare("tenant_acme"));
    /// assert!(!naming.is_spare("tenant__spare_"));
    /// assert!(!naming.is_spare("other__spare_12"));
    /// ```
    #[must_use]
    pub fn is_spare(&self, schema: &str) -> bool {
        schema
            .strip_prefix(&*self.prefix)
            .and_then(|rest| rest.strip_prefix(Self::SPARE_MARKER))
            .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
    }
}

impl Default for SchemaNaming {
    fn default() -> Self {
        Self {
            prefix: Self::DEFAULT_PREFIX.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_collide() {
        let naming = SchemaNaming::default();
        let dash = naming
            .schema_for(&TenantId::new("acme-corp").unwrap())
            .unwrap();
        let underscore = naming
            .schema_for(&TenantId::new("acme_corp").unwrap())
            .unwrap();
        assert_eq!(dash, underscore);
    }

    #[test]
    fn boundary_lengths() {
        let naming = SchemaNaming::default();
        let fits = TenantId::new(&"a".repeat(63 - 7)).unwrap();
        assert_eq!(naming.schema_for(&fits).unwrap().as_str().len(), 63);
        let over = TenantId::new(&"a".repeat(64 - 7)).unwrap();
        assert!(matches!(
            naming.schema_for(&over),
            Err(Error::DerivedSchemaTooLong { len: 64, .. })
        ));
    }

    #[test]
    fn no_tenant_id_maps_to_a_spare() {
        for prefix in ["tenant_", "t", ""] {
            let naming = SchemaNaming::with_prefix(prefix).unwrap();
            assert!(naming.is_spare(naming.spare_schema(0).unwrap().as_str()));
            for id in ["spare_1", "spare-1", "a_spare_1", "1", "x"] {
                let Ok(schema) = naming.schema_for(&TenantId::new(id).unwrap()) else {
                    continue;
                };
                assert!(!naming.is_spare(schema.as_str()), "{prefix:?} {id:?}");
            }
        }
        let long = SchemaNaming::with_prefix(&"p".repeat(60)).unwrap();
        assert!(long.spare_schema(1).is_err());
    }

    #[test]
    fn empty_prefix_refuses_digit_and_keyword_ids() {
        let naming = SchemaNaming::with_prefix("").unwrap();
        assert!(matches!(
            naming.schema_for(&TenantId::new("1abc").unwrap()),
            Err(Error::DerivedSchemaInvalid { .. })
        ));
        assert!(matches!(
            naming.schema_for(&TenantId::new("select").unwrap()),
            Err(Error::DerivedSchemaInvalid { .. })
        ));
        assert!(naming.schema_for(&TenantId::new("acme").unwrap()).is_ok());
    }
}
