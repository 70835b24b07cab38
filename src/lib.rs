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
//! - [`core`] (always on): tenant ids, schema-name validation and quoting,
//!   search paths and tenant resolution from a request. No I/O.
//! - `sea_orm` (feature `sea-orm`, on by default): tenant-scoped SeaORM
//!   transactions.
//! - `migrate` (feature `migrate`, on by default): the tenant registry, tenant lifecycle and
//!   migrations applied to every tenant schema.
//! - `web` (feature `axum`): a tower layer for axum that resolves each
//!   request's tenant, extractors, and error responses that leak nothing.
//!
//! The most used core types are re-exported at the top level:
//!
//! ```
//! use tenancy::{Tenant, TenantId, TenantScope};
//!
//! let tenant = Tenant::from_id(TenantId::new("acme")?)?;
//! assert_eq!(tenant.schema().quoted(), r#""tenant_acme""#);
//! # Ok::<(), tenancy::core::Error>(())
//! ```

pub use tenancy_core as core;
pub use tenancy_core::{
    SchemaName, SchemaNaming, SearchPath, SharedSchema, Tenant, TenantId, TenantScope,
};

#[cfg(feature = "sea-orm")]
pub use tenancy_sea_orm as sea_orm;

#[cfg(feature = "migrate")]
pub use tenancy_migrate as migrate;

#[cfg(feature = "axum")]
pub use tenancy_axum as web;

// The README's Rust examples are compiled (and the database-free ones run) as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
