//! The audit table beside the registry (`{registry table}_audit`, e.g.
//! `public.tenants_audit`): one row per lifecycle change, written in the
//! change's own transaction, and one per failed attempt, written after it.
//!
//! Why two ways: a row written inside the change's transaction commits with
//! it or not at all, so an audited change without its row (or a row without
//! its change) cannot exist. A failed call's transaction is rolled back, and
//! its row with it; so the failure is recorded after the rollback, in a
//! statement of its own, best effort (if that write fails too, a warning is
//! logged and the call's own error is returned). A `failed` row therefore
//! says "this was attempted and reported as failed": a commit whose outcome
//! was lost with the connection can leave a `failed` row beside the
//! `succeeded` one the commit wrote, and the `succeeded` row is the proof.
//!
//! An export changes nothing, so its row has no change's transaction to
//! join: it is written once the export is complete. An import or a clone
//! writes its row in the transaction that creates the tenant; a move writes
//! `moved` in the one that records the placement (and the database it went
//! to records `imported`).
//!
//! Columns: `id` (identity), `at` (the server's transaction time), `actor`
//! (the fleet's [`actor`](crate::FleetConfig::with_actor), else the database
//! role, `current_user`), `action` ([`LifecycleAction::as_str`]),
//! `tenant_id`, `detail` (jsonb: the schema, before/after values, the
//! migrations applied, or the error), `outcome` (`succeeded` or `failed`).
//! Every value is a bound parameter; the detail is built with `serde_json`,
//! so a hostile name is stored as the string it is.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};
use sea_orm_migration::MigratorTrait;
use serde_json::{Map, Value as Json, json};
use tenancy_core::{TableName, TenantId};
use tenancy_sea_orm::RegistryConfig;

use crate::lifecycle_events::{LifecycleAction, LifecycleEvent};
use crate::{Error, TenantFleet, TenantRecord};

/// The audit table of a registry, qualified: named after the registry table,
/// in its schema, so two registries never share one.
pub(crate) fn audit_table(config: &RegistryConfig) -> Result<String, Error> {
    Ok(audit_name(config, "")?.qualified(config.schema()))
}

/// `{registry table}_audit{suffix}`, for the table and its constraints.
fn audit_name(config: &RegistryConfig, suffix: &str) -> Result<TableName, Error> {
    Ok(TableName::new(&format!(
        "{}_audit{suffix}",
        config.table().as_str()
    ))?)
}

/// The registry migration that creates the audit table. It is always
/// created (an empty table costs nothing); rows are written only by fleets
/// configured with [`FleetConfig::with_audit`](crate::FleetConfig::with_audit).
pub(crate) fn create_audit(config: &RegistryConfig) -> Result<String, Error> {
    let table = audit_table(config)?;
    let name = |suffix: &str| audit_name(config, suffix).map(|n| n.quoted());
    Ok(format!(
        "CREATE TABLE {table} (
            id bigint GENERATED ALWAYS AS IDENTITY,
            at timestamptz NOT NULL DEFAULT now(),
            actor text NOT NULL DEFAULT current_user,
            action text NOT NULL,
            tenant_id text NOT NULL,
            detail jsonb NOT NULL DEFAULT '{{}}'::jsonb,
            outcome text NOT NULL,
            CONSTRAINT {pkey} PRIMARY KEY (id),
            CONSTRAINT {outcome_check} CHECK (outcome IN ('succeeded', 'failed'))
        );
        CREATE INDEX {by_tenant} ON {table} (tenant_id, at)",
        pkey = name("_pkey")?,
        outcome_check = name("_outcome_check")?,
        by_tenant = name("_tenant_id_at_idx")?,
    ))
}

/// The `outcome` column.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Succeeded,
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

/// A registry row's values, as an audit detail.
pub(crate) fn record_detail(record: &TenantRecord) -> Json {
    json!({
        "schema": record.schema.as_str(),
        "status": record.status.as_str(),
        "display_name": record.display_name,
        "domain": record.domain,
    })
}

/// The values a change of a registry row changed, before and after.
pub(crate) fn change_detail(before: &TenantRecord, after: &TenantRecord) -> Json {
    let (mut was, mut now) = (Map::new(), Map::new());
    let mut compare = |field: &str, old: Json, new: Json| {
        if old != new {
            was.insert(field.to_owned(), old);
            now.insert(field.to_owned(), new);
        }
    };
    compare(
        "status",
        before.status.as_str().into(),
        after.status.as_str().into(),
    );
    compare(
        "display_name",
        before.display_name.as_str().into(),
        after.display_name.as_str().into(),
    );
    compare(
        "domain",
        before.domain.as_deref().into(),
        after.domain.as_deref().into(),
    );
    json!({ "schema": after.schema.as_str(), "before": was, "after": now })
}

impl<M: MigratorTrait> TenantFleet<M> {
    /// Writes a `succeeded` audit row in `txn`, the change's own
    /// transaction; nothing when the fleet does not audit.
    pub(crate) async fn audit_in(
        &self,
        txn: &impl ConnectionTrait,
        action: LifecycleAction,
        tenant: &TenantId,
        detail: Json,
    ) -> Result<(), Error> {
        self.audit_row(txn, action, tenant, detail)
            .await
            .map_err(|source| Error::Tenant {
                tenant: tenant.clone(),
                source,
            })
    }

    /// [`audit_in`](Self::audit_in) with the database's error.
    pub(crate) async fn audit_row(
        &self,
        txn: &impl ConnectionTrait,
        action: LifecycleAction,
        tenant: &TenantId,
        detail: Json,
    ) -> Result<(), DbErr> {
        if !self.config.audit() {
            return Ok(());
        }
        self.write_audit(txn, action, tenant, &detail, Outcome::Succeeded)
            .await
    }

    /// Passes `result` through; when it is an error and the fleet audits,
    /// first records the failed attempt (see the module's docs).
    pub(crate) async fn audit_failure<T>(
        &self,
        action: LifecycleAction,
        tenant: &TenantId,
        result: Result<T, Error>,
    ) -> Result<T, Error> {
        let Err(error) = &result else {
            return result;
        };
        if self.config.audit() {
            let detail = json!({
                "error": error.to_string(),
                "kind": format!("{:?}", error.kind()),
            });
            if let Err(err) = self
                .write_audit(&self.conn, action, tenant, &detail, Outcome::Failed)
                .await
            {
                tracing::warn!(%tenant, %action, error = %err, "recording a failed attempt in the audit table failed");
            }
        }
        result
    }

    /// The one `INSERT` of an audit row, for both drivers below.
    fn audit_insert(&self) -> Result<String, DbErr> {
        let table =
            audit_table(self.config.registry()).map_err(|e| DbErr::Custom(e.to_string()))?;
        Ok(format!(
            "INSERT INTO {table} (actor, action, tenant_id, detail, outcome) \
             VALUES (COALESCE($1, current_user), $2, $3, $4::jsonb, $5)"
        ))
    }

    /// [`audit_row`](Self::audit_row) on a raw sqlx connection, for the
    /// transfers, whose transactions run there (`COPY`).
    pub(crate) async fn audit_row_sqlx(
        &self,
        conn: &mut sea_orm::sqlx::PgConnection,
        action: LifecycleAction,
        tenant: &TenantId,
        detail: &Json,
    ) -> Result<(), DbErr> {
        if !self.config.audit() {
            return Ok(());
        }
        sea_orm::sqlx::query(sea_orm::sqlx::AssertSqlSafe(self.audit_insert()?))
            .bind(self.config.actor())
            .bind(action.as_str())
            .bind(tenant.as_str())
            .bind(detail.to_string())
            .bind(Outcome::Succeeded.as_str())
            .persistent(false)
            .execute(conn)
            .await
            .map(drop)
            .map_err(|err| DbErr::Exec(sea_orm::RuntimeErr::SqlxError(std::sync::Arc::new(err))))
    }

    async fn write_audit(
        &self,
        conn: &impl ConnectionTrait,
        action: LifecycleAction,
        tenant: &TenantId,
        detail: &Json,
        outcome: Outcome,
    ) -> Result<(), DbErr> {
        conn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            self.audit_insert()?,
            [
                self.config.actor().map(str::to_owned).into(),
                action.as_str().into(),
                tenant.as_str().into(),
                detail.to_string().into(),
                outcome.as_str().into(),
            ],
        ))
        .await
        .map(drop)
    }

    /// Tells `event` to every handler registered with
    /// [`on_lifecycle`](Self::on_lifecycle); called only after a commit.
    pub(crate) fn emit(&self, event: &LifecycleEvent<'_>) {
        for handler in self.lifecycle.iter() {
            handler(event);
        }
    }
}
