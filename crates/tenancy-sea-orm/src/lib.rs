//! Tenant-scoped SeaORM transactions on one shared pool.
//!
//! **Not implemented yet.** This crate will wrap a SeaORM `DatabaseConnection`
//! and open transactions that pin the tenant's search path with
//! `SET LOCAL search_path`, so SeaORM entities work unchanged inside a tenant's
//! schema. Until then it only re-exports `tenancy-core`, so depending on it
//! compiles but offers no database access.

pub use tenancy_core as core;
