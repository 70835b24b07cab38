//! The pure core of `tenancy`: names, search paths and tenant resolution for
//! schema-per-tenant multi-tenancy on PostgreSQL. No I/O, no database driver.
//!
//! # The model
//!
//! One PostgreSQL database holds a shared schema (`public`) with the shared
//! tables and the tenant registry, and one schema per tenant (`tenant_acme`)
//! with the same tables. The application uses one connection pool for all
//! tenants; each tenant-scoped transaction pins its search path with
//! `SET LOCAL search_path TO "tenant_acme", "public"`, which ends with the
//! transaction, so nothing of one tenant survives on a pooled connection.
//!
//! This crate holds what every other part relies on:
//! - [`TenantId`], the application's slug for a tenant (`acme-corp`), and
//!   [`SchemaName`], a validated PostgreSQL identifier for its schema. The
//!   mapping between them is [`SchemaNaming`] (`tenant_` + id, `-` → `_`).
//! - One validation function and one quoting function: every schema name that
//!   reaches SQL is a [`SchemaName`] or [`SharedSchema`], and renders only
//!   through [`SchemaName::quoted`] / [`SharedSchema::quoted`]. There is no
//!   other way to turn a string into an identifier.
//! - [`SearchPath`], the ordered schemas a transaction pins (tenant first, then
//!   shared schemas, or the tenant alone in strict mode), and [`TenantScope`],
//!   what a scoped operation needs to know.
//! - [`resolve`]: finding the tenant in a request (subdomain, path prefix,
//!   header, verified claim, or a chain of these) from plain strings, with no
//!   HTTP framework dependency.
//! - [`registry`]: the tenant registry's contract (table, columns, row type
//!   and its validation, change notifications), shared by the crate that
//!   reads the registry and the one that writes it.
//!
//! ```
//! use tenancy::{SchemaNaming, TenantId, Tenant, TenantScope};
//!
//! let id = TenantId::new("acme-corp")?;
//! let tenant = Tenant::from_id(id)?;
//! assert_eq!(tenant.schema().quoted(), r#""tenant_acme_corp""#);
//! assert_eq!(
//!     tenant.search_path().set_local_statement(),
//!     r#"SET LOCAL search_path TO "tenant_acme_corp", "public""#,
//! );
//! # Ok::<(), tenancy::NameError>(())
//! ```
//!
//! # Features
//! - `serde`: `Serialize`/`Deserialize` for [`TenantId`], [`SchemaName`],
//!   [`SharedSchema`] and [`TenantStatus`], `Serialize` for
//!   [`registry::TenantRecord`] and [`registry::CorruptRecord`]; deserializing validates, so an invalid name in a config
//!   file is an error, not a value.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod advisory_lock;
mod error;
mod ident;
mod keywords;
mod names;
mod naming;
mod newtype;
pub mod registry;
pub mod resolve;
mod schema;
mod scope;
mod search_path;
pub mod sqlstate;
mod status;
mod tenant_id;

pub use advisory_lock::AdvisoryLock;
pub use error::{Error, NameKind};
pub use ident::MAX_IDENTIFIER_LEN;
pub use keywords::RESERVED_KEYWORDS;
pub use names::{RoleName, TableName};
pub use naming::SchemaNaming;
pub use schema::{SchemaName, SharedSchema};
pub use scope::{Tenant, TenantScope};
pub use search_path::SearchPath;
pub use status::TenantStatus;
pub use tenant_id::TenantId;
