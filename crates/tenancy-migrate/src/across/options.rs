//! The options and results of [`TenantFleet::read_across`](crate::TenantFleet::read_across).

use std::fmt;
use std::pin::Pin;

use futures_util::Stream;
use sea_orm::QueryResult;
use tenancy_core::{TenantId, TenantStatus};

use crate::{CorruptRecord, Error};

/// Options of [`TenantFleet::read_across`](crate::TenantFleet::read_across): which tenants, what they need,
/// and how many per query.
///
/// ```
/// use tenancy::migrate::ReadAcross;
/// let options = ReadAcross::new()
///     .requires("m0002_create_invoices")
///     .chunk_size(200);
/// assert_eq!(options.required_migration(), Some("m0002_create_invoices"));
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ReadAcross {
    pub(super) requires: Option<String>,
    pub(super) only: Option<Vec<TenantId>>,
    pub(super) include_inactive: bool,
    pub(super) chunk_size: usize,
    pub(super) tenant_column: String,
    pub(super) connections: Option<usize>,
}

impl Default for ReadAcross {
    fn default() -> Self {
        Self {
            requires: None,
            only: None,
            include_inactive: false,
            chunk_size: Self::DEFAULT_CHUNK_SIZE,
            tenant_column: "tenant_id".to_owned(),
            connections: None,
        }
    }
}

impl ReadAcross {
    /// Tenants per `UNION ALL` query by default: planning a union grows
    /// faster than its branches (about 17 ms for 100 small aggregates, 1.5 s
    /// for 1,000), and smaller chunks spread better over the connections;
    /// 25 to 50 measured fastest over 1,000 tenants (see `BENCHMARKS.md`).
    pub const DEFAULT_CHUNK_SIZE: usize = 50;

    /// Every active tenant, [`DEFAULT_CHUNK_SIZE`](Self::DEFAULT_CHUNK_SIZE)
    /// per query, the tenant in a column named `tenant_id`.
    ///
    /// ```
    /// assert_eq!(tenancy::migrate::ReadAcross::new().required_migration(), None);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Only tenants whose ledger has `migration` (the one that created what
    /// the select reads); the others are skipped and reported in
    /// [`CrossTenantRead::skipped`], not errors.
    ///
    /// ```
    /// let options = tenancy::migrate::ReadAcross::new().requires("m0001_create_projects");
    /// # let _ = options;
    /// ```
    pub fn requires(mut self, migration: impl Into<String>) -> Self {
        self.requires = Some(migration.into());
        self
    }

    /// Only these tenants (others registered are left out, not reported);
    /// ids not registered are reported as [`SkipReason::NotRegistered`].
    ///
    /// ```
    /// let options = tenancy::migrate::ReadAcross::new().only(["acme".parse()?, "globex".parse()?]);
    /// # let _ = options;
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    pub fn only(mut self, tenants: impl IntoIterator<Item = TenantId>) -> Self {
        self.only = Some(tenants.into_iter().collect());
        self
    }

    /// Also read suspended and provisioning tenants (skipped by default:
    /// their data may be frozen mid-change or not there yet). Soft-deleted
    /// tenants are never read.
    ///
    /// ```
    /// let options = tenancy::migrate::ReadAcross::new().include_inactive(true);
    /// # let _ = options;
    /// ```
    pub fn include_inactive(mut self, include: bool) -> Self {
        self.include_inactive = include;
        self
    }

    /// Tenants per `UNION ALL` query (at least 1).
    ///
    /// ```
    /// let options = tenancy::migrate::ReadAcross::new().chunk_size(0);
    /// assert_eq!(options.chunk(), 1);
    /// ```
    pub fn chunk_size(mut self, tenants: usize) -> Self {
        self.chunk_size = tenants.max(1);
        self
    }

    /// How many pooled connections run chunks at once (at least 1; default
    /// the fleet's [`concurrency`](crate::FleetConfig::concurrency)). They
    /// share one snapshot, so the rows are the same whatever the number;
    /// only the order in which chunks' rows arrive changes. Each holds a
    /// connection of the fleet's pool until the read ends (or its stream is
    /// dropped): keep it well below the pool's size.
    ///
    /// ```
    /// let options = tenancy::migrate::ReadAcross::new().connections(1); // one transaction, chunks in order
    /// # let _ = options;
    /// ```
    pub fn connections(mut self, connections: usize) -> Self {
        self.connections = Some(connections.max(1));
        self
    }

    /// The name of the column that carries each row's tenant id (default
    /// `tenant_id`), for selects that have a column of that name already.
    ///
    /// ```
    /// let options = tenancy::migrate::ReadAcross::new().tenant_column("source_tenant");
    /// # let _ = options;
    /// ```
    pub fn tenant_column(mut self, name: impl Into<String>) -> Self {
        self.tenant_column = name.into();
        self
    }

    /// The migration tenants must have, if any.
    ///
    /// ```
    /// assert_eq!(tenancy::migrate::ReadAcross::new().requires("m1").required_migration(), Some("m1"));
    /// ```
    #[must_use]
    pub fn required_migration(&self) -> Option<&str> {
        self.requires.as_deref()
    }

    /// Tenants per query.
    ///
    /// ```
    /// assert_eq!(tenancy::migrate::ReadAcross::new().chunk(), 50);
    /// ```
    #[must_use]
    pub fn chunk(&self) -> usize {
        self.chunk_size
    }
}

/// Why a tenant was left out of a [`TenantFleet::read_across`](crate::TenantFleet::read_across).
///
/// ```
/// use tenancy::migrate::SkipReason;
/// let reason = SkipReason::MigrationMissing("m0002_create_invoices".into());
/// assert_eq!(reason.to_string(), "migration m0002_create_invoices not applied");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// Suspended or provisioning (see [`ReadAcross::include_inactive`]).
    Inactive(TenantStatus),
    /// Its schema does not exist.
    SchemaMissing,
    /// The required migration is not in its ledger (it has no ledger, or
    /// is behind).
    MigrationMissing(String),
    /// Named in [`ReadAcross::only`] but not registered (or soft-deleted).
    NotRegistered,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inactive(status) => write!(f, "{status}"),
            Self::SchemaMissing => f.write_str("schema missing"),
            Self::MigrationMissing(name) => write!(f, "migration {name} not applied"),
            Self::NotRegistered => f.write_str("not registered"),
        }
    }
}

/// A tenant left out of a read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SkippedTenant {
    /// The tenant.
    pub tenant: TenantId,
    /// Why it was left out.
    pub reason: SkipReason,
}

/// The rows of a [`TenantFleet::read_across`](crate::TenantFleet::read_across), a stream of
/// `Result<QueryResult, Error>`.
pub type CrossTenantRows = Pin<Box<dyn Stream<Item = Result<QueryResult, Error>> + Send>>;

/// What [`TenantFleet::read_across`](crate::TenantFleet::read_across) will read: the tenants included, the
/// ones skipped and why, and the rows.
#[non_exhaustive]
pub struct CrossTenantRead {
    /// The tenants read, in id order.
    pub tenants: Vec<TenantId>,
    /// The tenants left out, in id order.
    pub skipped: Vec<SkippedTenant>,
    /// Registry rows that do not validate (written by hand), left out.
    pub corrupt: Vec<CorruptRecord>,
    /// The rows: each branch's columns, then the tenant id column. Nothing
    /// runs until it is polled; the first poll opens the transaction.
    pub rows: CrossTenantRows,
}

impl fmt::Debug for CrossTenantRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CrossTenantRead")
            .field("tenants", &self.tenants.len())
            .field("skipped", &self.skipped)
            .field("corrupt", &self.corrupt)
            .finish_non_exhaustive()
    }
}
