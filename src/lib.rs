//! Schema-per-tenant multi-tenancy for PostgreSQL, with a SeaORM layer and
//! per-schema migrations. One dependency; the parts are separate crates.
//!
//! One PostgreSQL database holds a shared schema (`public`) with the shared
//! tables and the tenant registry, and one schema per tenant (`tenant_acme`)
//! with the same tables. The application talks through one connection pool,
//! and each tenant-scoped transaction pins its search path with `SET LOCAL`,
//! so nothing of one tenant is left on a pooled connection for the next user.
//! Behind a transaction-mode pooler (PgBouncer before 1.21) scoped
//! transactions need pooler mode (`TenantDb::behind_pooler`), and fleet
//! operations a direct URL: the README's "Behind PgBouncer" says exactly
//! what is supported.
//!
//! # Where things are
//!
//! The types an application touches first are at the root, so
//! `use tenancy::{TenantDb, TenantId};` is all a handler needs:
//!
//! | at the root | what | feature |
//! | --- | --- | --- |
//! | [`TenantId`], [`Tenant`], [`TenantScope`], [`SchemaName`], [`SharedSchema`], [`SchemaNaming`], [`SearchPath`], [`RoleName`], [`TableName`], [`TenantStatus`] | names, validated and quoted; search paths (no I/O) | always |
//! | `TenantDb`, `TenantTransaction`, `ScopeOptions` | tenant-scoped SeaORM transactions on one pool | `sea-orm` (default) |
//! | `TenantFleet`, `FleetConfig`, `NewTenant`, `MigrateAll` | registry, tenant lifecycle, migrations on every tenant schema | `migrate` (default) |
//!
//! The rest of each part is in its module, named for what it is rather than
//! for the crate behind it, so that no module hides a crate your
//! application also uses (`sea_orm`, `core`):
//!
//! - [`resolve`]: finding the tenant of a request (subdomain, path prefix,
//!   header, verified claim, or a chain of these), from plain strings.
//! - `orm` (feature `sea-orm`, the `tenancy-sea-orm` crate): everything of the
//!   SeaORM layer, such as the registry read side, `connect`, and retry
//!   classification (`is_retryable`, `FailureKind`).
//! - `migrate` (feature `migrate`, the `tenancy-migrate` crate): reports,
//!   status, health, lifecycle options, and with feature `cli` the admin
//!   command line (`migrate::cli::AdminCli`).
//! - `web` (feature `axum`, the `tenancy-axum` crate): a tower layer for axum
//!   that resolves each request's tenant, extractors, and error responses
//!   that leak nothing.
//! - [`prelude`]: the root types and the [`TenantScope`] trait in one `use`.
//!
//! # Errors
//!
//! Each part has its own error type, named `Error` in its module. At the
//! root they carry names that say which part failed, and that clash neither
//! with each other nor with `sea_orm::DbErr` or `std::error::Error` when
//! imported together:
//!
//! | at the root | in its module | from |
//! | --- | --- | --- |
//! | [`NameError`] | (the `tenancy-core` crate's `Error`) | a name that failed validation |
//! | `ScopeError` | `orm::Error` | a tenant-scoped transaction: unknown or suspended tenant, missing schema, failed commit |
//! | `FleetError` | `migrate::Error` | registry, lifecycle and migration operations |
//!
//! The web layer's error stays `web::Error`: handlers return it, and it is
//! not meant to be mixed with the others.
//!
//! ```
//! use tenancy::{NameError, Tenant, TenantId, TenantScope};
//!
//! let tenant = Tenant::from_id(TenantId::new("acme")?)?;
//! assert_eq!(tenant.schema().quoted(), r#""tenant_acme""#);
//! assert!(matches!(TenantId::new(""), Err(NameError::Empty { .. })));
//! # Ok::<(), NameError>(())
//! ```
//!
//! # Features
//!
//! - `sea-orm` (default): the SeaORM layer.
//! - `migrate` (default): registry, lifecycle and fleet migrations.
//! - `cli`: the embeddable admin command line, `migrate::cli`.
//! - `axum`: the web layer, `web`.
//! - `serde`: validating `Serialize`/`Deserialize` for the name types, and
//!   `Serialize` for the fleet's records and reports (with `migrate`).
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use tenancy_core::{
    Error as NameError, MAX_IDENTIFIER_LEN, NameKind, RESERVED_KEYWORDS, RoleName, SchemaName,
    SchemaNaming, SearchPath, SharedSchema, TableName, Tenant, TenantId, TenantScope, TenantStatus,
};

#[doc(inline)]
pub use tenancy_core::resolve;

#[doc(inline)]
pub use tenancy_core::registry;

#[cfg(feature = "sea-orm")]
#[cfg_attr(docsrs, doc(cfg(feature = "sea-orm")))]
#[doc(inline)]
pub use tenancy_sea_orm as orm;

#[cfg(feature = "sea-orm")]
#[cfg_attr(docsrs, doc(cfg(feature = "sea-orm")))]
pub use tenancy_sea_orm::{Error as ScopeError, ScopeOptions, TenantDb, TenantTransaction};

#[cfg(feature = "migrate")]
#[cfg_attr(docsrs, doc(cfg(feature = "migrate")))]
#[doc(inline)]
pub use tenancy_migrate as migrate;

#[cfg(feature = "migrate")]
#[cfg_attr(docsrs, doc(cfg(feature = "migrate")))]
pub use tenancy_migrate::{Error as FleetError, FleetConfig, MigrateAll, NewTenant, TenantFleet};

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
#[doc(inline)]
pub use tenancy_axum as web;

/// The root types and the [`TenantScope`] trait (whose methods give a
/// tenant's schema and search path), for `use tenancy::prelude::*;`.
///
/// Nothing here clashes with `sea_orm::entity::prelude` or
/// `sea_orm_migration::prelude`, so both globs can be imported together.
/// Error types are left out: import the one you mean ([`NameError`],
/// `ScopeError`, `FleetError`).
///
/// ```
/// use tenancy::prelude::*;
///
/// let tenant = Tenant::from_id(TenantId::new("acme")?)?;
/// assert_eq!(tenant.schema().as_str(), "tenant_acme"); // `schema` is `TenantScope`'s
/// # Ok::<(), tenancy::NameError>(())
/// ```
pub mod prelude {
    pub use tenancy_core::{SchemaName, SharedSchema, Tenant, TenantId, TenantScope};

    #[cfg(feature = "sea-orm")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sea-orm")))]
    pub use tenancy_sea_orm::{ScopeOptions, TenantDb, TenantTransaction};

    #[cfg(feature = "migrate")]
    #[cfg_attr(docsrs, doc(cfg(feature = "migrate")))]
    pub use tenancy_migrate::{FleetConfig, MigrateAll, NewTenant, TenantFleet};
}

// The README's Rust examples are compiled (and the database-free ones run) as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
