//! Tenant registry, lifecycle and per-schema migrations.
//!
//! **Not implemented yet.** This crate will hold the tenant registry (a table
//! in the shared schema), tenant lifecycle (create, suspend, drop, adopt) and
//! sea-orm-migration runs applied to every tenant schema. Until then it only
//! re-exports `tenancy-core`.

pub use tenancy_core as core;
