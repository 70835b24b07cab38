//! Where spares are recorded, and every statement on that table.
//!
//! The pool is a table beside the registry, `{registry}_spares` (one row per
//! ready spare schema), and a sequence numbering spares,
//! `{registry}_spares_seq`. It is not the registry: the request path reads
//! only the registry, so it can never resolve a spare, whatever a spare's
//! row says.

use sea_orm::{DbBackend, Statement, Value};
use sea_orm_migration::MigratorTrait;
use tenancy_core::{AdvisoryLock, SchemaName, TableName};
use tenancy_sea_orm::RegistryConfig;

use crate::{Error, TenantFleet};

/// The pool's table and sequence for a registry location.
pub(crate) struct SpareTables {
    /// The qualified spares table.
    pub(crate) table: String,
    /// The qualified sequence numbering spares.
    pub(crate) sequence: String,
    /// The name of the table's primary key.
    pkey: String,
}

impl SpareTables {
    pub(crate) fn of(registry: &RegistryConfig) -> Result<Self, Error> {
        let name = |suffix: &str| TableName::new(&format!("{}_{suffix}", registry.table()));
        Ok(Self {
            table: name("spares")?.qualified(registry.schema()),
            sequence: name("spares_seq")?.qualified(registry.schema()),
            pkey: name("spares_pkey")?.quoted(),
        })
    }
}

/// Registry migration `0002_create_spares`: the pool's table and sequence.
/// An applied migration never changes: a new column is a new migration.
pub(crate) fn create_spares_table(registry: &RegistryConfig) -> Result<String, Error> {
    let SpareTables {
        table,
        sequence,
        pkey,
    } = SpareTables::of(registry)?;
    Ok(format!(
        "CREATE SEQUENCE {sequence}; \
         CREATE TABLE {table} (
            schema_name text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT {pkey} PRIMARY KEY (schema_name)
        )"
    ))
}

/// A statement with bound parameters.
pub(super) fn statement(sql: String, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

impl<M: MigratorTrait> TenantFleet<M> {
    pub(crate) fn spare_tables(&self) -> Result<SpareTables, Error> {
        SpareTables::of(self.config.registry())
    }

    /// The lock refillers take turns on (one spare each time).
    pub(super) fn refill_lock(&self) -> String {
        format!(
            "SELECT pg_advisory_xact_lock({})",
            AdvisoryLock::SpareRefill.shared_key(self.config.registry().schema())
        )
    }

    /// The oldest spare not yet rejected, whose schema exists and that no
    /// tenant owns, locked for this transaction; spares other transactions
    /// hold (being claimed or migrated) are skipped, not waited for. `$1`
    /// is the array of names already rejected.
    pub(super) fn next_spare_sql(&self, tables: &SpareTables) -> String {
        format!(
            "SELECT s.schema_name FROM {spares} s \
             JOIN pg_catalog.pg_namespace n ON n.nspname = s.schema_name::name \
             WHERE s.schema_name <> ALL($1) \
               AND NOT EXISTS (SELECT 1 FROM {registry} r WHERE r.schema_name = s.schema_name) \
             ORDER BY s.created_at, s.schema_name \
             LIMIT 1 FOR UPDATE OF s SKIP LOCKED",
            spares = tables.table,
            registry = self.config.registry().qualified_table(),
        )
    }

    /// A spare's name read from its row, if it is one of this fleet's
    /// spare names: a row written by hand could name a tenant's schema,
    /// which must never be renamed, migrated as a spare or dropped.
    pub(super) fn spare_name(&self, stored: &str) -> Option<SchemaName> {
        SchemaName::new(stored)
            .ok()
            .filter(|schema| self.config.naming().is_spare(schema.as_str()))
    }
}
