//! What every lifecycle call shares: the registry's columns, reading a
//! PostgreSQL error, turning a unique violation into the tenant it collided
//! with, and ending a transaction.

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, Statement, Value};
use sea_orm_migration::MigratorTrait;
use tenancy_core::registry::{NOTIFY_CHANNEL, columns};
use tenancy_core::{SchemaName, TenantId};

use crate::{Error, TenantFleet};

pub(super) use crate::pg::has_sqlstate;
pub(super) use crate::registry::RECORD_COLUMNS;
use crate::registry::record_from_row;
use tenancy_core::sqlstate::UNIQUE_VIOLATION;
pub(super) use tenancy_core::sqlstate::{DUPLICATE_SCHEMA, INVALID_SCHEMA_NAME};
use tenancy_sea_orm::pg_error;

/// Which unique key of the registry an `INSERT` or `UPDATE` collided with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RegistryKey {
    TenantId,
    SchemaName,
    Domain,
}

impl RegistryKey {
    const ALL: [Self; 3] = [Self::TenantId, Self::SchemaName, Self::Domain];

    fn column(self) -> &'static str {
        match self {
            Self::TenantId => columns::TENANT_ID,
            Self::SchemaName => columns::SCHEMA_NAME,
            Self::Domain => columns::DOMAIN,
        }
    }

    /// The suffix of the constraint `install` names after the table.
    fn constraint_suffix(self) -> &'static str {
        match self {
            Self::TenantId => "pkey",
            Self::SchemaName => "schema_name_key",
            Self::Domain => "domain_key",
        }
    }
}

/// The registry key `err` violated, if it is a unique violation on one.
///
/// Matched on the constraint names `install` gives (`{table}_pkey`,
/// `{table}_schema_name_key`, `{table}_domain_key`); a registry created by
/// hand with other names is matched on the column in the server's detail
/// message (`Key (schema_name)=(…) already exists.`) instead.
pub(super) fn violated_key(err: &DbErr, table: &str) -> Option<RegistryKey> {
    let pg = pg_error(err).filter(|e| e.code() == UNIQUE_VIOLATION)?;
    let by_constraint = pg.constraint().and_then(|constraint| {
        RegistryKey::ALL.into_iter().find(|key| {
            constraint
                .strip_prefix(table)
                .and_then(|rest| rest.strip_prefix('_'))
                == Some(key.constraint_suffix())
        })
    });
    by_constraint.or_else(|| {
        let detail = pg.detail()?;
        RegistryKey::ALL
            .into_iter()
            .find(|key| detail.starts_with(&format!("Key ({})=", key.column())))
    })
}

/// A statement with bound parameters.
pub(crate) fn statement(sql: String, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// Announces a change of `tenant`'s registry row on the registry's channel,
/// inside `txn`: PostgreSQL delivers it only if `txn` commits, and with the
/// commit, so a listener never sees a change that did not happen.
pub(crate) async fn notify(txn: &DatabaseTransaction, tenant: &TenantId) -> Result<(), DbErr> {
    txn.execute_raw(statement(
        "SELECT pg_notify($1, $2)".to_owned(),
        [NOTIFY_CHANNEL.into(), tenant.as_str().into()],
    ))
    .await
    .map(drop)
}

/// Rolls `txn` back, explicitly so its locks and uncommitted rows are gone
/// before the caller sees the error. A failed rollback is only logged: the
/// error that caused it is the one worth reporting, and the server discards
/// the transaction with its connection.
pub(super) async fn rollback(txn: DatabaseTransaction, tenant: &TenantId) {
    if let Err(err) = txn.rollback().await {
        tracing::warn!(%tenant, error = %err, "rolling back a tenant lifecycle transaction failed");
    }
}

/// Wraps a database error of one tenant.
pub(super) fn tenant_err(tenant: &TenantId) -> impl Fn(DbErr) -> Error + '_ {
    move |source| Error::Tenant {
        tenant: tenant.clone(),
        source,
    }
}

impl<M: MigratorTrait> TenantFleet<M> {
    /// Ends a transaction that changed `tenant`'s registry row: on success,
    /// announces the change ([`notify`]), commits, and forgets the tenant in
    /// the fleet's registry cache; on failure, rolls back.
    pub(super) async fn finish<T>(
        &self,
        txn: DatabaseTransaction,
        tenant: &TenantId,
        result: Result<T, Error>,
    ) -> Result<T, Error> {
        let result = match result {
            Ok(value) => notify(&txn, tenant)
                .await
                .map(|()| value)
                .map_err(tenant_err(tenant)),
            Err(err) => Err(err),
        };
        match result {
            Ok(value) => {
                let committed = txn.commit().await.map_err(tenant_err(tenant));
                // Even when the commit's outcome is unknown (connection lost):
                // forgetting a row that did not change costs one lookup.
                self.registry.invalidate(tenant);
                committed.map(|()| value)
            }
            Err(err) => {
                rollback(txn, tenant).await;
                Err(err)
            }
        }
    }

    /// The qualified registry table.
    pub(super) fn registry_table(&self) -> String {
        self.config.registry().qualified_table()
    }

    /// Refuses a schema that every tenant shares: one of the fleet's shared
    /// schemas, or the registry's.
    pub(crate) fn refuse_shared(
        &self,
        tenant: &TenantId,
        schema: &SchemaName,
    ) -> Result<(), Error> {
        let registry = self.config.registry().schema();
        let shared = registry.as_str() == schema.as_str()
            || self
                .config
                .shared_schemas()
                .iter()
                .any(|s| s.as_str() == schema.as_str());
        if shared {
            return Err(Error::SchemaShared {
                tenant: tenant.clone(),
                schema: schema.clone(),
            });
        }
        Ok(())
    }

    /// The error for a write of `tenant`'s registry row that failed with
    /// `source`. A unique violation names what collided, and the tenant that
    /// holds it is looked up (the failed transaction is over by then, and the
    /// holder has committed: a unique check waits for the other transaction).
    /// Anything else, including a holder gone in the meantime, is
    /// [`Error::Tenant`].
    pub(crate) async fn registry_write_error(
        &self,
        tenant: &TenantId,
        schema: Option<&SchemaName>,
        domain: Option<&str>,
        source: DbErr,
    ) -> Error {
        let table = self.config.registry().table().as_str();
        let Some(key) = violated_key(&source, table) else {
            return tenant_err(tenant)(source);
        };
        let value = match (key, schema, domain) {
            (RegistryKey::TenantId, _, _) => {
                return Error::TenantExists {
                    tenant: tenant.clone(),
                };
            }
            (RegistryKey::SchemaName, Some(schema), _) => schema.as_str(),
            (RegistryKey::Domain, _, Some(domain)) => domain,
            _ => return tenant_err(tenant)(source),
        };
        let Ok(Some(owner)) = self.owner_of(key, value).await else {
            return tenant_err(tenant)(source);
        };
        if owner == *tenant {
            // The same id collides on its schema or domain too; whichever
            // index the server checked first, this is the same tenant twice.
            return Error::TenantExists {
                tenant: tenant.clone(),
            };
        }
        match (key, schema) {
            (RegistryKey::SchemaName, Some(schema)) => Error::SchemaTaken {
                tenant: tenant.clone(),
                schema: schema.clone(),
                owner,
            },
            _ => Error::DomainTaken {
                tenant: tenant.clone(),
                domain: value.to_owned(),
                owner,
            },
        }
    }

    /// The tenant whose registry row holds `value` in the unique `key`.
    async fn owner_of(&self, key: RegistryKey, value: &str) -> Result<Option<TenantId>, Error> {
        let row = self
            .conn
            .query_one_raw(statement(
                format!(
                    "SELECT {RECORD_COLUMNS} FROM {} WHERE {} = $1",
                    self.registry_table(),
                    key.column(),
                ),
                [value.into()],
            ))
            .await
            .map_err(|source| Error::Database {
                action: "looking up the owner of a registry key",
                source,
            })?;
        row.as_ref()
            .map(|row| record_from_row(row).map(|record| record.id))
            .transpose()
    }
}
