//! Export, import and clone one tenant: its schema (DDL and data), its
//! migration ledger and its registry row, as one file or stream.
//!
//! - [`TenantFleet::export_tenant`] writes a tenant to any `AsyncWrite`
//!   from one consistent snapshot, reading the catalog for that tenant's
//!   schema alone: 20 ms among 10,000 tenant schemas on the benchmark
//!   machine, where `pg_dump --schema`, which reads every schema's, takes
//!   3.1 s (`BENCHMARKS.md`).
//! - [`TenantFleet::import_tenant`] makes it again, in this database or
//!   another, under the same or a new id, in one transaction, refusing to
//!   overwrite anything.
//! - [`TenantFleet::clone_tenant`] streams one into the other inside one
//!   database, for demo, trial and staging copies.
//! - [`TenantFleet::move_tenant`] moves a tenant to another database in
//!   steps that a retry resumes, and records its `placement` here.
//!
//! # What is carried
//!
//! Enum, composite and domain types; sequences with their values (serial
//! ones owned by their column again); tables with column types,
//! collations, defaults, identity and generated columns, `NOT NULL`;
//! primary, unique, check, exclusion and foreign-key constraints
//! (including `NOT VALID` ones); indexes (partial, expression, unique);
//! comments on tables, columns, sequences, indexes, types and constraints;
//! every row; the `seaql_migrations` ledger (an ordinary table of the
//! schema); the registry's display name, domain and status.
//!
//! A schema holding anything else (views, functions, triggers, rules,
//! policies, partitioned or inheriting tables, range types, …) is refused
//! with [`Error::ExportUnsupported`](crate::Error::ExportUnsupported)
//! naming each object, rather than exported without it. Not carried:
//! ownership and privileges (`GRANT`; the importing role owns what it
//! creates), storage parameters (`WITH (fillfactor …)`), per-column
//! statistics targets and storage modes, replica identity. Sequence values
//! are read when the export runs, not as of its snapshot (sequences are not
//! transactional), so a value may be ahead of the rows: never behind. References to objects outside the schema (a shared table in
//! `public`, an extension's type) are kept as they are, qualified, and must
//! exist where the tenant is imported.
//!
//! # The format (version 1)
//!
//! Built to be streamed in one pass both ways and read by later versions:
//!
//! | bytes | what |
//! |-------|------|
//! | 22 | `TENANCY-TENANT-EXPORT\n` |
//! | 4 | format version, big-endian `u32` (1) |
//! | 8 | manifest length *n*, big-endian `u64` |
//! | *n* | the manifest, UTF-8 JSON |
//! | … | one data section per table of the manifest, in its order |
//! | 4 | `END\n` |
//!
//! A data section is frames of a big-endian `u32` length and that many
//! bytes, ended by a frame of length 0. The frames, joined, are the table's
//! rows in PostgreSQL's `COPY` text format (tab-separated, `\N` for NULL),
//! written under the manifest's `data_settings` (`DateStyle` ISO,
//! `IntervalStyle` postgres, `extra_float_digits` 3, `bytea_output` hex,
//! `TimeZone` UTC) so the text means the same on any server. Text rather
//! than binary `COPY`: as fast for typical rows, readable by any later
//! PostgreSQL (binary `COPY` is tied to each type's send/receive format),
//! and greppable.
//!
//! The manifest holds `format_version`, `server_version_num`,
//! `exported_at`, `tenant` (`id`, `schema`, `display_name`, `domain`,
//! `status`), `data_settings`, and the DDL: `types`, `sequences` (`name`,
//! `ddl`, `last_value`), `tables` (`name`, `ddl`, `copy_target`) and
//! `post_data` (ownership of serial sequences, constraints with foreign
//! keys last, indexes, comments). Each statement was rendered by the
//! server (`pg_get_constraintdef`, `pg_get_indexdef`, `pg_get_expr`,
//! `format_type`) with the search path set to the tenant's schema alone,
//! so the tenant's own objects are unqualified (`nextval('orders_id_seq')`,
//! a column of type `mood`) and land in whichever schema the import pins:
//! nothing is rewritten by text replacement.
//!
//! The import runs each statement on its own (never a statement list),
//! but it does run them: import only exports you trust, as you would a
//! `pg_dump` file.

mod catalog;
mod clone;
mod export;
mod format;
mod import;
mod moving;
mod session;

use tenancy_core::{SchemaName, TenantId, TenantStatus};

pub use clone::CloneReport;
pub use moving::MoveReport;

#[cfg(doc)]
use crate::TenantFleet;
use crate::TenantRecord;

/// What [`TenantFleet::export_tenant`] wrote.
///
/// ```
/// fn log(summary: &tenancy::migrate::ExportSummary) {
///     println!("{} ({}): {} tables, {} bytes", summary.tenant, summary.schema, summary.tables, summary.bytes);
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct ExportSummary {
    /// The tenant exported.
    pub tenant: TenantId,
    /// Its schema.
    pub schema: SchemaName,
    /// How many tables (the ledger included).
    pub tables: usize,
    /// How many bytes were written.
    pub bytes: u64,
}

/// How [`TenantFleet::import_tenant`] registers the tenant it reads: by
/// default under the exported id, with the exported display name, domain
/// and status.
///
/// ```
/// use tenancy::TenantStatus;
/// use tenancy::migrate::ImportOptions;
///
/// let options = ImportOptions::new()
///     .as_tenant("acme-copy".parse()?)
///     .domain(None) // domains are unique: a copy beside the original needs another or none
///     .status(TenantStatus::Suspended);
/// # let _ = options;
/// # Ok::<(), tenancy::NameError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportOptions {
    as_tenant: Option<TenantId>,
    domain: Option<Option<String>>,
    status: Option<TenantStatus>,
}

impl ImportOptions {
    /// The exported id, domain and status.
    ///
    /// ```
    /// let options = tenancy::migrate::ImportOptions::new();
    /// assert_eq!(options, tenancy::migrate::ImportOptions::default());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Imports under `id` (and the schema the fleet's naming gives it)
    /// instead of the exported id.
    ///
    /// ```
    /// let options = tenancy::migrate::ImportOptions::new().as_tenant("globex".parse()?);
    /// # let _ = options;
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn as_tenant(mut self, id: TenantId) -> Self {
        self.as_tenant = Some(id);
        self
    }

    /// Registers this domain (stored lowercase) or none, instead of the
    /// exported one.
    ///
    /// ```
    /// let options = tenancy::migrate::ImportOptions::new().domain(Some("staging.acme.example".into()));
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn domain(mut self, domain: Option<String>) -> Self {
        self.domain = Some(domain);
        self
    }

    /// Registers the tenant in `status` instead of the exported one.
    ///
    /// ```
    /// let options = tenancy::migrate::ImportOptions::new().status(tenancy::TenantStatus::Suspended);
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn status(mut self, status: TenantStatus) -> Self {
        self.status = Some(status);
        self
    }
}

/// What [`TenantFleet::import_tenant`] made.
///
/// ```
/// fn log(summary: &tenancy::migrate::ImportSummary) {
///     println!("{} imported as {}: {} rows", summary.source, summary.record.id, summary.rows);
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct ImportSummary {
    /// The new tenant's registry row.
    pub record: TenantRecord,
    /// The id it was exported under.
    pub source: TenantId,
    /// How many tables were created (the ledger included).
    pub tables: usize,
    /// How many rows were loaded.
    pub rows: u64,
}
