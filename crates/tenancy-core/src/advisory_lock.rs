//! Every advisory lock tenancy takes, and how its key is made.

use crate::{SchemaName, SharedSchema};

/// A kind of advisory lock tenancy takes, and how its key is made.
///
/// A key is 64 bits: the high 32 are a class per kind of lock (four ASCII
/// letters, so tenancy's locks never collide with an application's own
/// small keys), the low 32 the OID of the schema the lock is about. The
/// OID is unique while the schema exists, and casting the schema's name to
/// `regnamespace` fails with SQLSTATE 3F000 when it does not, so a lock on a
/// missing schema is refused rather than taken on nothing.
///
/// The key is a SQL expression (the OID is the server's to look up), for
/// `pg_advisory_xact_lock(…)`, `pg_advisory_lock(…)` and their `try_`
/// variants. An application that must wait for tenancy (a backup script
/// that must not run during a tenant's migration) takes the same key.
///
/// ```
/// use tenancy_core::{AdvisoryLock, SchemaName};
///
/// let schema = SchemaName::new("tenant_acme")?;
/// assert_eq!(
///     AdvisoryLock::TenantMigration.key(&schema),
///     r#"((1953394275::bigint << 32) | '"tenant_acme"'::regnamespace::oid::bigint)"#,
/// );
/// # Ok::<(), tenancy::NameError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AdvisoryLock {
    /// Migrating (or creating, adopting, dropping) one tenant, keyed by its
    /// schema: two runners serialise per tenant, so each migration applies
    /// once. Class `tnnc`.
    TenantMigration,
    /// Migrating the fleet's shared schema, keyed by the registry's schema.
    /// Class `tnsh`.
    SharedMigration,
    /// Installing or upgrading the tenant registry, keyed by its schema.
    /// Class `tnrg`.
    RegistryInstall,
    /// Making spare schemas for the fleet's pool of ready tenants, keyed by
    /// the registry's schema: refillers take turns, so together they make
    /// no more spares than asked for. Class `tnsp`.
    SpareRefill,
    /// A place among the runners of `migrate_all` working on one fleet at
    /// once, keyed by the registry's schema: runner `n` starts its walk
    /// through the fleet at its own point, so runners rarely reach for the
    /// same tenant. Only an ordering hint: each tenant is still guarded by
    /// [`TenantMigration`](Self::TenantMigration). Classes `tnr0` to `tnr7`
    /// (the slot modulo 8).
    RunnerSlot(u8),
}

impl AdvisoryLock {
    /// The high 32 bits of the lock's keys.
    ///
    /// ```
    /// assert_eq!(tenancy_core::AdvisoryLock::TenantMigration.class().to_be_bytes(), *b"tnnc");
    /// ```
    #[must_use]
    pub const fn class(self) -> u32 {
        u32::from_be_bytes(match self {
            Self::TenantMigration => *b"tnnc",
            Self::SharedMigration => *b"tnsh",
            Self::RegistryInstall => *b"tnrg",
            Self::SpareRefill => *b"tnsp",
            Self::RunnerSlot(slot) => [b't', b'n', b'r', b'0' + slot % 8],
        })
    }

    /// The lock's key for a tenant's schema, as a SQL expression.
    #[must_use]
    pub fn key(self, schema: &SchemaName) -> String {
        self.key_of(&schema.regnamespace())
    }

    /// The lock's key for a shared schema (the registry's), as a SQL
    /// expression.
    ///
    /// ```
    /// use tenancy_core::{AdvisoryLock, SharedSchema};
    /// let key = AdvisoryLock::RegistryInstall.shared_key(&SharedSchema::public());
    /// assert!(key.ends_with(r#"| '"public"'::regnamespace::oid::bigint)"#));
    /// ```
    #[must_use]
    pub fn shared_key(self, schema: &SharedSchema) -> String {
        self.key_of(&schema.regnamespace())
    }

    /// `regnamespace` comes from a validated, quoted name.
    fn key_of(self, regnamespace: &str) -> String {
        format!(
            "(({}::bigint << 32) | {regnamespace}::oid::bigint)",
            self.class()
        )
    }
}
