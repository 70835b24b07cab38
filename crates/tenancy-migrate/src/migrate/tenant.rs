//! One tenant's migration transaction, from registry row to commit.

use sea_orm::{DatabaseTransaction, DbErr};
use sea_orm_migration::MigratorTrait;
use tenancy_core::{SchemaName, TenantId};

use crate::migrator::migration_names;
use crate::pg::has_sqlstate;
use crate::report::Direction;
use crate::tenant_txn::{
    LockWait, MigrationFailure, apply_pending, begin_for_migration_with, has_outside_transaction,
    revert_applied,
};
use tenancy_core::sqlstate::{INVALID_SCHEMA_NAME, LOCK_NOT_AVAILABLE};

use super::mixed::{Target, run_mixed};
use crate::lifecycle_events::{LifecycleAction, LifecycleEvent};
use crate::{Error, TenantFleet, TenantRecord};

/// One tenant's registry row, or [`Error::UnknownTenant`].
pub(crate) async fn registered_tenant<M: MigratorTrait>(
    fleet: &TenantFleet<M>,
    id: &TenantId,
) -> Result<TenantRecord, Error> {
    fleet
        .get(id)
        .await?
        .ok_or_else(|| Error::UnknownTenant { tenant: id.clone() })
}

/// The error for a tenant transaction that could not be opened.
pub(crate) fn open_error(record: &TenantRecord, source: DbErr) -> Error {
    open_error_for(&record.id, &record.schema, source)
}

/// [`open_error`] for a tenant and schema.
pub(crate) fn open_error_for(tenant: &TenantId, schema: &SchemaName, source: DbErr) -> Error {
    if has_sqlstate(&source, INVALID_SCHEMA_NAME) {
        Error::SchemaMissing {
            tenant: tenant.clone(),
            schema: schema.clone(),
        }
    } else {
        Error::Tenant {
            tenant: tenant.clone(),
            source,
        }
    }
}

/// [`run_tenant_txn`], then its failure audited, or its lifecycle event
/// told when it changed anything.
///
/// With [`LockWait::Try`], `Ok(None)` when another runner holds the
/// tenant: nothing was done, and the caller comes back to it later (a
/// migrator with migrations outside a transaction always waits).
pub(super) async fn run_tenant<M: MigratorTrait>(
    fleet: &TenantFleet<M>,
    record: &TenantRecord,
    direction: Direction,
    steps: u32,
    wait: LockWait,
) -> Result<Option<Vec<String>>, Error> {
    let result = run_tenant_txn(fleet, record, direction, steps, wait).await;
    let applied = fleet
        .audit_failure(migration_action(direction), &record.id, result)
        .await?;
    if let Some(applied) = &applied
        && !applied.is_empty()
    {
        fleet.emit(&LifecycleEvent::Migrated {
            tenant: &record.id,
            schema: &record.schema,
            direction,
            applied,
        });
    }
    Ok(applied)
}

/// The audit action of a migration run.
fn migration_action(direction: Direction) -> LifecycleAction {
    match direction {
        Direction::Up => LifecycleAction::Migrated,
        Direction::Down => LifecycleAction::RolledBack,
    }
}

/// The audit detail of a migration run.
fn migration_detail(record: &TenantRecord, applied: &[String]) -> serde_json::Value {
    serde_json::json!({ "schema": record.schema.as_str(), "migrations": applied })
}

/// One tenant, one transaction: migrate up, or revert `steps` migrations,
/// and its audit row in that transaction. Going up with migrations that run
/// outside a transaction, see [`run_mixed`] instead: there, the audit row is
/// written after the run, on its own (what ran outside a transaction cannot
/// be undone with it anyway).
async fn run_tenant_txn<M: MigratorTrait>(
    fleet: &TenantFleet<M>,
    record: &TenantRecord,
    direction: Direction,
    steps: u32,
    wait: LockWait,
) -> Result<Option<Vec<String>>, Error> {
    migration_names::<M>()?;
    // A registry row written by hand could name a shared schema; tenant
    // migrations must never run there (`public` cannot even be named).
    let registry_schema = fleet.config.registry().schema();
    if std::iter::once(registry_schema)
        .chain(fleet.config.shared_schemas())
        .any(|shared| shared.as_str() == record.schema.as_str())
    {
        return Err(Error::SchemaShared {
            tenant: record.id.clone(),
            schema: record.schema.clone(),
        });
    }
    // Every run of such a migrator goes through the tenant's session, even
    // with nothing outside a transaction pending: a run that waited for the
    // tenant's lock inside a transaction would hold a snapshot that an index
    // build of the lock holder waits for, a deadlock PostgreSQL breaks by
    // aborting one of the two.
    if direction == Direction::Up && has_outside_transaction::<M>() {
        let target = Target::new(&fleet.conn, record, fleet.config.shared_schemas());
        let applied = run_mixed::<M>(&target, Vec::new()).await?;
        if !applied.is_empty() {
            let detail = migration_detail(record, &applied);
            fleet
                .audit_in(&fleet.conn, migration_action(direction), &record.id, detail)
                .await?;
        }
        return Ok(Some(applied));
    }
    let opened = begin_for_migration_with::<M>(
        &fleet.conn,
        &record.schema,
        fleet.config.shared_schemas(),
        wait,
    )
    .await;
    let txn = match opened {
        Ok(txn) => txn,
        Err(source) if wait == LockWait::Try && has_sqlstate(&source, LOCK_NOT_AVAILABLE) => {
            return Ok(None);
        }
        Err(source) => return Err(open_error(record, source)),
    };
    let result = match direction {
        Direction::Up => apply_pending::<M>(&txn).await,
        Direction::Down => revert_applied::<M>(&txn, steps)
            .await
            .map_err(MigrationFailure::from),
    };
    let result = match result {
        Ok(applied) if !applied.is_empty() => fleet
            .audit_row(
                &txn,
                migration_action(direction),
                &record.id,
                migration_detail(record, &applied),
            )
            .await
            .map(|()| applied)
            .map_err(MigrationFailure::from),
        other => other,
    };
    finish::<M>(txn, result, direction)
        .await
        .map(Some)
        .map_err(|(migration, source)| {
            let (tenant, schema) = (record.id.clone(), record.schema.clone());
            match direction {
                Direction::Up => Error::Migration {
                    tenant,
                    schema,
                    migration,
                    source,
                },
                Direction::Down => Error::rollback(tenant, schema, migration, source),
            }
        })
}

/// Commits after success; after a failure of a rollback finds which
/// migration's `down` failed (the last still applied: the transaction still
/// answers unless the failure aborted it), then rolls the whole transaction
/// back. Going up, [`apply_pending`] names the migration itself, and a
/// failure it does not pin on a migration (reading the ledger, recording it,
/// committing) is not one: guessing would blame an innocent pending one.
pub(super) async fn finish<X: MigratorTrait>(
    txn: DatabaseTransaction,
    result: Result<Vec<String>, MigrationFailure>,
    direction: Direction,
) -> Result<Vec<String>, (Option<String>, DbErr)> {
    match result {
        Ok(names) => match txn.commit().await {
            Ok(()) => Ok(names),
            Err(source) => Err((None, source)),
        },
        Err(MigrationFailure {
            migration: Some(migration),
            source,
        }) => {
            if let Err(error) = txn.rollback().await {
                tracing::debug!(%error, "rollback after a failed migration failed");
            }
            Err((Some(migration), source))
        }
        Err(MigrationFailure {
            migration: None,
            source,
        }) => {
            let migration = match direction {
                Direction::Up => None,
                Direction::Down => X::get_applied_migrations_read_only(&txn)
                    .await
                    .ok()
                    .and_then(|applied| applied.last().map(|m| m.name().to_owned())),
            };
            if let Err(error) = txn.rollback().await {
                // The server rolls back on its own when the connection is gone.
                tracing::debug!(%error, "rollback after a failed migration failed");
            }
            Err((migration, source))
        }
    }
}
