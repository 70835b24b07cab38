use sea_orm::DbErr;
use tenancy_core::{SchemaName, SharedSchema, TenantId};
// Server errors are shown without sqlx's ` at line N` (a line of the
// server's C source).
use tenancy_sea_orm::display_db_err;

use crate::FleetRunError;

mod kind;

pub use kind::ErrorKind;

/// What sea-orm-migration's default `MigrationTrait::down` returns: the
/// only sign that a migration has no `down` of its own.
const NO_DOWN: &str = "We Don't Do That Here";

/// Everything that can go wrong managing tenants and their migrations. Every
/// variant that concerns a tenant names it.
///
/// ```
/// use tenancy::migrate::Error;
///
/// let err = Error::UnknownTenant { tenant: "acme".parse()? };
/// assert_eq!(err.to_string(), "tenant acme is not registered");
/// # Ok::<(), tenancy::NameError>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A name failed validation (tenant id, schema name).
    #[error(transparent)]
    InvalidName(#[from] tenancy_core::Error),

    /// A tenant with this id is already registered.
    #[error("tenant {tenant} is already registered")]
    TenantExists {
        /// The tenant id.
        tenant: TenantId,
    },

    /// Another tenant already owns this schema (for example `acme-corp` and
    /// `acme_corp` both map to `tenant_acme_corp`).
    #[error(
        "cannot register tenant {tenant}: its schema {schema} already belongs to tenant {owner}; \
         choose another tenant id"
    )]
    SchemaTaken {
        /// The tenant being registered.
        tenant: TenantId,
        /// The contested schema.
        schema: SchemaName,
        /// The tenant that owns it.
        owner: TenantId,
    },

    /// The schema exists already but no tenant owns it; adopt it instead.
    #[error(
        "cannot create tenant {tenant}: schema {schema} already exists; use adopt to register \
         an existing schema"
    )]
    SchemaExists {
        /// The tenant being created.
        tenant: TenantId,
        /// The existing schema.
        schema: SchemaName,
    },

    /// Another tenant already uses this domain.
    #[error("cannot give tenant {tenant} the domain {domain}: tenant {owner} already uses it")]
    DomainTaken {
        /// The tenant being created or changed.
        tenant: TenantId,
        /// The contested domain (as stored: lowercase).
        domain: String,
        /// The tenant that uses it.
        owner: TenantId,
    },

    /// The schema is one the whole fleet shares (a shared schema on the
    /// search path, or the registry's schema); no tenant may own it, since
    /// migrating or dropping the tenant would change or destroy it. Creating
    /// or adopting such a tenant is refused, and so is migrating, rolling
    /// back or dropping a tenant whose registry row (written by hand) names
    /// it; nothing was done.
    #[error(
        "tenant {tenant} cannot own the schema {schema}: it is shared by every tenant (a shared \
         schema of the fleet, or the registry's); nothing was done"
    )]
    SchemaShared {
        /// The tenant.
        tenant: TenantId,
        /// The shared schema.
        schema: SchemaName,
    },

    /// The schema to adopt or migrate does not exist.
    #[error("the schema {schema} of tenant {tenant} does not exist")]
    SchemaMissing {
        /// The tenant.
        tenant: TenantId,
        /// The missing schema.
        schema: SchemaName,
    },

    /// No tenant with this id is registered.
    #[error("tenant {tenant} is not registered")]
    UnknownTenant {
        /// The tenant id.
        tenant: TenantId,
    },

    /// The tenant is soft-deleted: it can no longer be suspended or resumed,
    /// only dropped for good.
    #[error(
        "tenant {tenant} is deleted; it cannot be resumed or suspended (drop it with \
         DropMode::Hard to free its id and schema)"
    )]
    TenantDeleted {
        /// The tenant.
        tenant: TenantId,
    },

    /// A hard drop was asked for without the confirmation naming the tenant.
    #[error(
        "refusing to drop tenant {tenant} and its schema without confirmation; pass \
         DropConfirmation::new(\"{tenant}\")"
    )]
    DropNotConfirmed {
        /// The tenant.
        tenant: TenantId,
    },

    /// A migration of this tenant failed; the tenant's transaction was rolled
    /// back whole.
    #[error("migrating tenant {tenant} (schema {schema}) failed{}: {}", migration.as_ref().map(|m| format!(" in {m}")).unwrap_or_default(), display_db_err(source))]
    Migration {
        /// The tenant.
        tenant: TenantId,
        /// Its schema.
        schema: SchemaName,
        /// The migration that failed, when known.
        migration: Option<String>,
        /// The server's error.
        #[source]
        source: DbErr,
    },

    /// A transactional migration of this tenant failed after part of the
    /// run had been committed. This happens only when the tenant's migrator
    /// has migrations that run outside a transaction (`use_transaction()`
    /// returns `Some(false)`, for `CREATE INDEX CONCURRENTLY`): the run is
    /// split at them, each stretch of transactional migrations one
    /// transaction and each other migration on its own. The failed stretch
    /// was rolled back; the migrations in `applied` were committed before it
    /// and stay applied.
    #[error(
        "migrating tenant {tenant} (schema {schema}) failed{}: {}; its transaction was rolled \
         back; {}. Fix it and migrate this tenant again",
        migration.as_ref().map(|m| format!(" in {m}")).unwrap_or_default(),
        display_db_err(source),
        kept(applied),
    )]
    PartlyMigrated {
        /// The tenant.
        tenant: TenantId,
        /// Its schema.
        schema: SchemaName,
        /// The migration that failed, when known.
        migration: Option<String>,
        /// The migrations committed before the failure, in order; they stay
        /// applied.
        applied: Vec<String>,
        /// The server's error (boxed, to keep `Error` small).
        #[source]
        source: Box<DbErr>,
    },

    /// A migration of this tenant that runs outside a transaction
    /// (`use_transaction()` returns `Some(false)`) failed, was interrupted,
    /// could not be recorded, or left an `INVALID` index in the schema.
    ///
    /// It is not recorded as applied, so the next run runs it again; it may
    /// have left part of its work behind (an interrupted or failed
    /// `CREATE INDEX CONCURRENTLY` leaves an `INVALID` index), so it must
    /// undo that first to be re-runnable. The migrations in `applied` were
    /// committed before it in the same run and stay applied.
    #[error(
        "migrating tenant {tenant} (schema {schema}) failed in {migration}: {}; {}. {migration} \
         runs outside a transaction, so it may have left part of its work behind (an \
         interrupted CREATE INDEX CONCURRENTLY leaves an INVALID index); it is not recorded \
         as applied and runs again on the next migrate, so it must clean up first (DROP INDEX \
         CONCURRENTLY IF EXISTS before CREATE INDEX CONCURRENTLY). Fix it and migrate this \
         tenant again",
        display_db_err(source),
        kept(applied)
    )]
    OutsideTransactionFailed {
        /// The tenant.
        tenant: TenantId,
        /// Its schema.
        schema: SchemaName,
        /// The migration that failed.
        migration: String,
        /// The migrations committed before it in this run, in order; they
        /// stay applied.
        applied: Vec<String>,
        /// The server's error, or what was refused (boxed, to keep `Error`
        /// small).
        #[source]
        source: Box<DbErr>,
    },

    /// Creating or adopting the tenant was committed, but a migration after
    /// that failed: its migrator has migrations that run outside a
    /// transaction, so provisioning cannot be one transaction. The tenant
    /// stays registered in status `provisioning` (not served); `source`
    /// says which migration failed and what was kept.
    #[error(
        "tenant {tenant} is registered but stays provisioning: {source}. Then resume the tenant \
         (or give it the status it should start in)"
    )]
    ProvisioningUnfinished {
        /// The tenant.
        tenant: TenantId,
        /// The migration failure.
        #[source]
        source: Box<Error>,
    },

    /// A database error outside a migration, for this tenant.
    #[error("database error for tenant {tenant}: {}", display_db_err(source))]
    Tenant {
        /// The tenant.
        tenant: TenantId,
        /// The server's error.
        #[source]
        source: DbErr,
    },

    /// A database error not tied to one tenant (installing the registry,
    /// listing tenants, fleet status).
    #[error("database error while {action}: {}", display_db_err(source))]
    Database {
        /// What was being done.
        action: &'static str,
        /// The server's error.
        #[source]
        source: DbErr,
    },

    /// The registry holds a row that does not validate.
    #[error("{record}; nothing was changed: fix or remove the row in the registry table by hand")]
    CorruptRegistry {
        /// The row as stored, and what is wrong with it (the same type
        /// fleet-wide calls list and the SeaORM layer reports).
        record: crate::CorruptRecord,
    },

    /// Reverting a migration of this tenant (its `down()`) failed; the
    /// tenant's transaction was rolled back whole, so every migration it had
    /// already reverted in this run is applied again. (Not to be confused
    /// with `tenancy_sea_orm::Error::Rollback`, a failed `ROLLBACK`.)
    #[error("rolling back migrations of tenant {tenant} (schema {schema}) failed{}: {}", migration.as_ref().map(|m| format!(" in {m}")).unwrap_or_default(), display_db_err(source))]
    RevertFailed {
        /// The tenant.
        tenant: TenantId,
        /// Its schema.
        schema: SchemaName,
        /// The migration whose `down` failed, when known.
        migration: Option<String>,
        /// The server's error.
        #[source]
        source: DbErr,
    },

    /// Rolling back reached a migration without a `down()` of its own
    /// (sea-orm-migration's default `down` refuses); the tenant's
    /// transaction was rolled back whole, so nothing of it was reverted.
    #[error(
        "cannot roll back tenant {tenant} (schema {schema}): migration {} has no down(); \
         rollback needs a down() on every migration it reverts, so nothing was reverted",
        migration.as_deref().unwrap_or("(unknown)")
    )]
    RollbackUnsupported {
        /// The tenant.
        tenant: TenantId,
        /// Its schema.
        schema: SchemaName,
        /// The migration without `down()`, when known.
        migration: Option<String>,
    },

    /// A fleet run ([`migrate_all`](crate::TenantFleet::migrate_all),
    /// [`rollback_all`](crate::TenantFleet::rollback_all)) in which tenants
    /// failed, were skipped or had unreadable registry rows, from
    /// [`FleetReport::into_result`](crate::FleetReport::into_result).
    #[error(transparent)]
    FleetRun(#[from] FleetRunError),

    /// A migration of the shared schema failed; its transaction was rolled
    /// back whole.
    #[error("migrating the shared schema {schema} failed{}: {}", migration.as_ref().map(|m| format!(" in {m}")).unwrap_or_default(), display_db_err(source))]
    SharedMigration {
        /// The shared schema.
        schema: SharedSchema,
        /// The migration that failed, when known.
        migration: Option<String>,
        /// The server's error.
        #[source]
        source: DbErr,
    },

    /// The fleet's connection goes through a transaction-mode pooler
    /// (PgBouncer), where its prepared statements could fail or run another
    /// client's statement; nothing was done. Fleet operations need a direct
    /// connection to PostgreSQL.
    #[error(
        "refusing fleet operations through a transaction-mode connection pooler (such as \
         PgBouncer; {evidence}): its statements could fail midway or run another client's \
         statement. Nothing was done. Connect the fleet (or the admin CLI's --database-url / \
         DATABASE_URL) to PostgreSQL directly, not to the pooler's address"
    )]
    BehindPooler {
        /// What showed the pooler.
        evidence: String,
    },

    /// Migration code panicked while working on this tenant during a fleet
    /// run; its transaction was rolled back and the run went on.
    #[error("a migration panicked for tenant {tenant} (schema {schema}): {message}")]
    Panicked {
        /// The tenant.
        tenant: TenantId,
        /// Its schema.
        schema: SchemaName,
        /// The panic message, when it was a string.
        message: String,
    },

    /// Making, migrating or dropping a spare schema (see
    /// [`TenantFleet::refill_spares`](crate::TenantFleet::refill_spares))
    /// failed; its transaction was rolled back, so the spare is as it was
    /// (or was never made).
    #[error("spare schema {schema}: {action} failed{}: {}", migration.as_ref().map(|m| format!(" in {m}")).unwrap_or_default(), display_db_err(source))]
    Spare {
        /// The spare schema.
        schema: SchemaName,
        /// What was being done.
        action: &'static str,
        /// The migration that failed, when one did.
        migration: Option<String>,
        /// The server's error.
        #[source]
        source: DbErr,
    },

    /// Spare schemas need every tenant migration to run inside a
    /// transaction, so that making or claiming a spare is one transaction;
    /// this migrator has one that runs outside (`use_transaction()` is
    /// `Some(false)`). Nothing was done.
    #[error(
        "spare schemas are not available with this migrator: {migration} runs outside a \
         transaction (use_transaction() is Some(false)), and a spare must be made and claimed \
         in one transaction. Nothing was done; create tenants without the spare pool"
    )]
    SparesUnsupported {
        /// The first migration that runs outside a transaction.
        migration: String,
    },

    /// The tenant's schema holds objects an export does not carry (see
    /// [`transfer`](crate::transfer)); nothing was written.
    #[error(
        "cannot export tenant {tenant}: its schema {schema} holds what an export does not carry \
         ({}); nothing was written. Move them out of the tenant's schema, or back it up with \
         pg_dump --schema",
        objects.join(", ")
    )]
    ExportUnsupported {
        /// The tenant.
        tenant: TenantId,
        /// Its schema.
        schema: SchemaName,
        /// Each object, as `kind name` (`view active_orders`).
        objects: Vec<String>,
    },

    /// Exporting a tenant failed at a database step; the export's output
    /// is incomplete and an import refuses it.
    #[error(
        "exporting tenant {tenant} failed while {step}: {}; the output is incomplete",
        display_db_err(source)
    )]
    ExportFailed {
        /// The tenant.
        tenant: TenantId,
        /// What the export was doing.
        step: &'static str,
        /// The server's error.
        #[source]
        source: DbErr,
    },

    /// Importing a tenant failed at a database step; its transaction was
    /// rolled back, so nothing of the tenant (registry row, schema) exists.
    #[error(
        "importing tenant {tenant} failed while {step}: {}; it was rolled back and nothing of \
         tenant {tenant} was created",
        display_db_err(source)
    )]
    ImportFailed {
        /// The tenant being imported (its new id).
        tenant: TenantId,
        /// What the import was doing.
        step: &'static str,
        /// The server's error.
        #[source]
        source: DbErr,
    },

    /// The input of an import is not a complete tenant export this version
    /// reads: another file, one cut short, or a newer format version.
    /// Nothing was created.
    #[error(
        "cannot import: the input is not a usable tenant export: {reason}; nothing was created"
    )]
    InvalidExport {
        /// What is wrong with it.
        reason: String,
    },

    /// Writing an export or reading an import failed (a full disk, a
    /// closed pipe). An import was rolled back; an export's output is
    /// incomplete.
    #[error("{action} failed: {source}")]
    TransferIo {
        /// What was being done.
        action: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The tenant was moved to another database; its row here only records
    /// where ([`TenantFleet::placement`](crate::TenantFleet::placement)).
    #[error("tenant {tenant} was moved to the database {placement:?}; manage it there")]
    TenantMoved {
        /// The tenant.
        tenant: TenantId,
        /// Where it was moved.
        placement: String,
    },

    /// A move of the tenant to another placement is under way (started by
    /// an earlier call that did not finish).
    #[error(
        "tenant {tenant} is being moved to {moving_to:?}; finish that move (move_tenant with \
         placement {moving_to:?}) or cancel it (cancel_move) first"
    )]
    MoveInProgress {
        /// The tenant.
        tenant: TenantId,
        /// Where the move under way goes.
        moving_to: String,
    },

    /// A move could not be finished safely; nothing was dropped here.
    #[error(
        "cannot finish moving tenant {tenant} to {placement:?}: {reason}. Nothing was dropped \
         here; compare the two copies, then drop the wrong one and retry, or cancel_move"
    )]
    MoveConflict {
        /// The tenant.
        tenant: TenantId,
        /// Where it was being moved.
        placement: String,
        /// What does not match.
        reason: String,
    },

    /// Two migrations of one migrator have the same name, so the ledger
    /// cannot tell them apart; nothing was run. Numbers count from 1 in the
    /// migrator's `migrations()` list.
    #[error(
        "the migrator {migrator} lists two migrations named {name} (numbers {first} and {second} \
         of its migrations()); nothing was run. #[derive(DeriveMigrationName)] names a migration \
         after its file, so two in one file share a name: move one to its own file or implement \
         MigrationName for it by hand"
    )]
    DuplicateMigrationName {
        /// The migrator's type.
        migrator: String,
        /// The shared name.
        name: String,
        /// The first migration with it.
        first: usize,
        /// The second migration with it.
        second: usize,
    },

    /// A read across tenants was refused before anything ran: its select
    /// cannot have its tables qualified safely by each tenant's schema, or
    /// it asks for a migration the migrator does not have.
    #[error("cannot read across tenants: {reason}")]
    UnsupportedRead {
        /// What is wrong, naming the table or construct, and what to do.
        reason: String,
    },
    /// In Citus mode, the tenant's schema was not distributed to a worker
    /// (it is not in `citus_schemas`); the transaction was rolled back, so
    /// nothing was registered or created.
    #[error(
        "tenant {tenant}: schema {schema} stayed on the Citus coordinator instead of being \
         distributed to a worker; nothing was done. Check that workers are added \
         (citus_add_node), that a spare schema made before Citus was enabled is dropped, and \
         that the schema's tables can be distributed (citus_schema_distribute's error says why)"
    )]
    NotDistributed {
        /// The tenant.
        tenant: TenantId,
        /// Its schema.
        schema: SchemaName,
    },

    /// The fleet is configured with
    /// [`CitusMode::Required`](crate::CitusMode::Required) but the database
    /// has no `citus` extension; nothing was done.
    #[error(
        "the fleet requires Citus (CitusMode::Required) but the database has no citus \
         extension; nothing was done. Connect to the Citus coordinator's database and run \
         CREATE EXTENSION citus, or configure the fleet with CitusMode::Detect or Off"
    )]
    CitusMissing,
}

impl Error {
    /// The error for a failed revert of `tenant`'s migrations: a missing
    /// `down()` is said so, rather than in sea-orm-migration's words.
    pub(crate) fn rollback(
        tenant: TenantId,
        schema: SchemaName,
        migration: Option<String>,
        source: DbErr,
    ) -> Self {
        if matches!(&source, DbErr::Migration(message) if message == NO_DOWN) {
            Self::RollbackUnsupported {
                tenant,
                schema,
                migration,
            }
        } else {
            Self::RevertFailed {
                tenant,
                schema,
                migration,
                source,
            }
        }
    }
}

/// What a partly failed run kept, for the messages.
fn kept(applied: &[String]) -> String {
    if applied.is_empty() {
        "nothing of this run was kept".to_owned()
    } else {
        format!("kept from this run: {}", applied.join(", "))
    }
}
