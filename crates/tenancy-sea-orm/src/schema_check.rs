//! How the opening message of a scoped transaction checks the tenant's
//! schema, so no statement ever falls through to a shared schema because the
//! tenant's schema is gone or out of reach (`BENCHMARKS.md`, "Schema check").
//!
//! Two checks exist. A `LOCK TABLE "tenant"."<table>" IN ACCESS SHARE MODE`
//! is a utility statement: no plan, so it costs next to nothing, and resolving
//! the qualified name fails with 3F000 when the schema is missing and 42501
//! without USAGE. It needs a table the schema has and the role may read. The
//! fallback, a `SELECT` that fails without returning a row, needs nothing but
//! costs a plan on every transaction.
//!
//! By default the lock goes to sea-orm-migration's ledger, which every tenant
//! schema migrated by `tenancy-migrate` has; a schema without it (made by
//! hand, adopted, never migrated) or a role that may not read it is
//! remembered for a while and checked with the `SELECT` instead.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use sea_orm::sqlx;
use tenancy_core::{RoleName, SchemaName, TableName, sqlstate};

use crate::connection::{routine, sqlx_sqlstate};

/// How long a schema found without a usable ledger is checked with the
/// `SELECT`: a ledger created later (the tenant's first migration) is picked
/// up after this.
const WITHOUT_LEDGER_TTL: Duration = Duration::from_secs(300);
/// Schemas (with roles) remembered without a usable ledger, at most.
const WITHOUT_LEDGER_CAPACITY: u64 = 100_000;

/// Which check a [`TenantDb`](crate::TenantDb) puts in its opening message.
#[derive(Clone)]
pub(crate) enum SchemaProbe {
    /// The default: lock the ledger where it can, else the `SELECT`.
    Ledger(LedgerProbe),
    /// `TenantDb::with_probe_table`: always the lock; a schema without the
    /// table is an error.
    Required(TableName),
}

/// The default probe's state, shared by clones of one `TenantDb`.
#[derive(Clone)]
pub(crate) struct LedgerProbe {
    table: Arc<TableName>,
    /// Keyed by a hash of (schema, role), so the lookup on every
    /// transaction allocates nothing. A collision only sends the `SELECT`
    /// check where the lock would have done: slower, never less safe.
    without: Cache<u64, ()>,
    hasher: RandomState,
}

impl LedgerProbe {
    fn key(&self, schema: &SchemaName, role: Option<&RoleName>) -> u64 {
        self.hasher.hash_one((schema, role))
    }
}

/// The check of one opening message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SchemaCheck<'a> {
    /// `LOCK TABLE "<schema>"."<table>" IN ACCESS SHARE MODE`.
    Lock(&'a TableName),
    /// `SELECT WHERE 1 / has_schema_privilege(…, 'USAGE')::int = 0`.
    Select,
}

impl SchemaProbe {
    /// The default: sea-orm-migration's ledger, `seaql_migrations`.
    pub(crate) fn ledger() -> Self {
        Self::Ledger(LedgerProbe {
            table: Arc::new(TableName::migration_ledger()),
            without: Cache::builder()
                .max_capacity(WITHOUT_LEDGER_CAPACITY)
                .time_to_live(WITHOUT_LEDGER_TTL)
                .build(),
            hasher: RandomState::new(),
        })
    }

    /// The check to send for `schema` under `role`, and whether a failure
    /// of it for want of the table may be retried with [`SchemaCheck::Select`].
    pub(crate) fn check(
        &self,
        schema: &SchemaName,
        role: Option<&RoleName>,
    ) -> (SchemaCheck<'_>, bool) {
        match self {
            Self::Required(table) => (SchemaCheck::Lock(table), false),
            Self::Ledger(ledger) => {
                if ledger.without.contains_key(&ledger.key(schema, role)) {
                    (SchemaCheck::Select, false)
                } else {
                    (SchemaCheck::Lock(&ledger.table), true)
                }
            }
        }
    }

    /// The table a missing-table error names, for an opening that cannot
    /// fall back.
    pub(crate) fn required_table(&self) -> Option<&TableName> {
        match self {
            Self::Required(table) => Some(table),
            Self::Ledger(_) => None,
        }
    }

    /// Remembers that `schema` under `role` has no ledger the lock can use.
    pub(crate) fn remember_without_ledger(&self, schema: &SchemaName, role: Option<&RoleName>) {
        if let Self::Ledger(ledger) = self {
            ledger.without.insert(ledger.key(schema, role), ());
        }
    }
}

/// Whether the lock failed for want of the table (42P01) or of a privilege
/// on it or its schema (42501 from the ACL check): the `SELECT` check then
/// says which, if either, is the schema's problem. Anything else (the
/// schema is missing, the connection broke) is final.
pub(crate) fn lock_may_fall_back(err: &sqlx::Error) -> bool {
    match sqlx_sqlstate(err) {
        Some(sqlstate::UNDEFINED_TABLE) => true,
        Some(sqlstate::INSUFFICIENT_PRIVILEGE) => routine(err) == Some("aclcheck_error"),
        _ => false,
    }
}

impl std::fmt::Debug for SchemaProbe {
    // By hand: moka's `Debug` lists every cached entry.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ledger(ledger) => f
                .debug_struct("Ledger")
                .field("table", &ledger.table)
                .field("without", &ledger.without.entry_count())
                .finish(),
            Self::Required(table) => f.debug_tuple("Required").field(table).finish(),
        }
    }
}
