//! A tenant's lifecycle: create, adopt, suspend, resume, rename, re-domain,
//! soft-delete and drop, each in one transaction on the registry and the
//! tenant's schema, so a failure leaves nothing behind.
//!
//! # The registry read cache
//!
//! Every `TenantDb` resolves tenants through a cached
//! [`TenantRegistry`](tenancy_sea_orm::TenantRegistry). These calls reach
//! that cache two ways, once their change has committed:
//!
//! - in this process, a fleet built with
//!   [`TenantFleet::with_registry`](crate::TenantFleet::with_registry)`(db.registry().clone())`
//!   forgets the tenant's cached row itself, so the next lookup sees the
//!   change;
//! - in other processes, each call sends `NOTIFY` on
//!   [`NOTIFY_CHANNEL`](tenancy_core::registry::NOTIFY_CHANNEL) with the
//!   tenant id, inside its transaction (delivered only if it commits); a
//!   registry that [listens](tenancy_sea_orm::TenantRegistry::listen) on a
//!   direct connection forgets the row as soon as it arrives.
//!
//! Without either, the cache keeps registered tenants for
//! [`RegistryConfig::ttl`](tenancy_sea_orm::RegistryConfig::ttl) (30 s by
//! default) and unknown ids for
//! [`RegistryConfig::negative_ttl`](tenancy_sea_orm::RegistryConfig::negative_ttl)
//! (2 s). A hard-dropped schema is refused by every process's next
//! transaction regardless (each checks its schema in its opening message).

mod create;
mod drop;
pub(crate) mod sql;
mod update;

use tenancy_core::TenantStatus;

use crate::TenantRecord;

/// What to register a new tenant with: a display name, an optional domain,
/// and the status it starts in ([`TenantStatus::Active`] unless told).
///
/// ```
/// use tenancy::TenantStatus;
/// use tenancy::migrate::NewTenant;
///
/// let new = NewTenant::new().display_name("Acme").domain("Acme.Example.com");
/// assert_eq!(new.display_name, "Acme");
/// assert_eq!(new.domain.as_deref(), Some("acme.example.com"));
/// assert_eq!(new.status, TenantStatus::Active);
///
/// let staged = NewTenant::new().status(TenantStatus::Provisioning);
/// assert_eq!(staged.status, TenantStatus::Provisioning);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewTenant {
    /// The display name (default empty).
    pub display_name: String,
    /// The tenant's domain or subdomain, lowercase (default none).
    pub domain: Option<String>,
    /// The status it starts in (default [`TenantStatus::Active`]).
    pub status: TenantStatus,
}

impl Default for NewTenant {
    fn default() -> Self {
        Self {
            display_name: String::new(),
            domain: None,
            status: TenantStatus::Active,
        }
    }
}

impl NewTenant {
    /// An active tenant with no display name and no domain.
    ///
    /// ```
    /// let new = tenancy::migrate::NewTenant::new();
    /// assert!(new.display_name.is_empty() && new.domain.is_none());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the display name.
    ///
    /// ```
    /// let new = tenancy::migrate::NewTenant::new().display_name("Acme Corp");
    /// assert_eq!(new.display_name, "Acme Corp");
    /// ```
    #[must_use]
    pub fn display_name(mut self, display_name: impl Into<String>) -> Self {
        self.display_name = display_name.into();
        self
    }

    /// Sets the domain. Host names are case-insensitive, so it is stored in
    /// ASCII lowercase: `Acme.example.com` and `acme.example.com` are the same
    /// domain, and the registry keeps domains unique.
    ///
    /// ```
    /// let new = tenancy::migrate::NewTenant::new().domain("ACME.example.com");
    /// assert_eq!(new.domain.as_deref(), Some("acme.example.com"));
    /// ```
    #[must_use]
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(normalize_domain(domain.into()));
        self
    }

    /// Sets the status the tenant starts in: [`TenantStatus::Provisioning`]
    /// to seed it before opening it with
    /// [`TenantFleet::resume`](crate::TenantFleet::resume), for example.
    ///
    /// ```
    /// use tenancy::TenantStatus;
    /// let new = tenancy::migrate::NewTenant::new().status(TenantStatus::Suspended);
    /// assert_eq!(new.status, TenantStatus::Suspended);
    /// ```
    #[must_use]
    pub fn status(mut self, status: TenantStatus) -> Self {
        self.status = status;
        self
    }
}

/// Domains are stored lowercase, so the registry's uniqueness holds for
/// hosts, which compare case-insensitively.
pub(crate) fn normalize_domain(mut domain: String) -> String {
    domain.make_ascii_lowercase();
    domain
}

/// The confirmation a hard drop needs: the id of the tenant being dropped,
/// typed out again, so a drop aimed at one tenant cannot destroy another.
///
/// ```
/// use tenancy::migrate::DropConfirmation;
///
/// let confirmation = DropConfirmation::new("acme");
/// assert!(confirmation.confirms(&"acme".parse()?));
/// assert!(!confirmation.confirms(&"acme-corp".parse()?));
/// # Ok::<(), tenancy::NameError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropConfirmation(String);

impl DropConfirmation {
    /// A confirmation naming the tenant id `tenant`.
    ///
    /// ```
    /// let confirmation = tenancy::migrate::DropConfirmation::new("acme");
    /// assert_eq!(confirmation.tenant(), "acme");
    /// ```
    #[must_use]
    pub fn new(tenant: impl Into<String>) -> Self {
        Self(tenant.into())
    }

    /// The tenant id this confirmation names, as given.
    ///
    /// ```
    /// assert_eq!(tenancy::migrate::DropConfirmation::new("initech").tenant(), "initech");
    /// ```
    #[must_use]
    pub fn tenant(&self) -> &str {
        &self.0
    }

    /// Whether this confirms dropping `id`: the names must be equal exactly.
    ///
    /// ```
    /// use tenancy::migrate::DropConfirmation;
    /// assert!(!DropConfirmation::new("ACME").confirms(&"acme".parse()?));
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn confirms(&self, id: &tenancy_core::TenantId) -> bool {
        self.0 == id.as_str()
    }
}

/// How [`TenantFleet::drop_tenant`](crate::TenantFleet::drop_tenant) removes a
/// tenant.
///
/// ```
/// use tenancy::migrate::{DropConfirmation, DropMode};
///
/// let soft = DropMode::Soft;
/// let hard = DropMode::Hard(DropConfirmation::new("acme"));
/// assert_ne!(soft, hard);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropMode {
    /// Mark the tenant `deleted`: its schema and data are kept, and the
    /// SeaORM layer refuses access to it (it only scopes to active tenants).
    /// Undone only by hand; a later hard drop removes it for good.
    Soft,
    /// `DROP SCHEMA … CASCADE` and delete the registry row, in one
    /// transaction. Irreversible, so the confirmation must name the tenant.
    Hard(DropConfirmation),
}

/// What [`TenantFleet::drop_tenant`](crate::TenantFleet::drop_tenant) did,
/// with the tenant's registry row as it ended up (soft) or as it was before
/// it was deleted (hard).
///
/// ```
/// use tenancy::migrate::DropOutcome;
///
/// # fn demo(outcome: DropOutcome) {
/// match outcome {
///     DropOutcome::SoftDeleted(record) => println!("{} is marked deleted", record.id),
///     DropOutcome::Dropped(record) => println!("{} and {} are gone", record.id, record.schema),
///     DropOutcome::SchemaWasMissing(record) => {
///         println!("{} is unregistered; its schema {} was already gone", record.id, record.schema)
///     }
///     _ => {}
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropOutcome {
    /// [`DropMode::Soft`]: the tenant is now `deleted`; its schema is kept.
    SoftDeleted(TenantRecord),
    /// [`DropMode::Hard`]: the schema was dropped and the row deleted.
    Dropped(TenantRecord),
    /// [`DropMode::Hard`] on a tenant whose schema no longer existed (dropped
    /// by hand): the row was deleted all the same.
    SchemaWasMissing(TenantRecord),
}

impl DropOutcome {
    /// The tenant's registry row: as it is now for a soft drop, as it was
    /// before deletion for a hard one.
    ///
    /// ```
    /// # fn demo(outcome: tenancy::migrate::DropOutcome) {
    /// println!("dropped {}", outcome.record().id);
    /// # }
    /// ```
    #[must_use]
    pub fn record(&self) -> &TenantRecord {
        match self {
            Self::SoftDeleted(record) | Self::Dropped(record) | Self::SchemaWasMissing(record) => {
                record
            }
        }
    }

    /// Whether this call dropped the tenant's schema.
    ///
    /// ```
    /// # fn demo(outcome: tenancy::migrate::DropOutcome) {
    /// if !outcome.schema_dropped() {
    ///     println!("schema {} kept or already gone", outcome.record().schema);
    /// }
    /// # }
    /// ```
    #[must_use]
    pub fn schema_dropped(&self) -> bool {
        matches!(self, Self::Dropped(_))
    }
}
