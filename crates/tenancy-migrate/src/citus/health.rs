//! What `health` checks on Citus: tenants left on the coordinator, and
//! shared tables that tenant tables reference without being reference
//! tables (distributing such a tenant is refused).

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};
use sea_orm_migration::MigratorTrait;
use tenancy_core::{SchemaName, TenantId};

use crate::{TenantFleet, TenantRecord};

/// What [`TenantFleet::health`] adds on a Citus fleet.
#[derive(Default)]
pub(crate) struct CitusHealth {
    pub(crate) not_distributed: Vec<(TenantId, SchemaName)>,
    pub(crate) not_reference: Vec<String>,
}

impl<M: MigratorTrait> TenantFleet<M> {
    /// Empty unless the fleet is in Citus mode (see [`crate::CitusMode`]).
    pub(crate) async fn citus_health(
        &self,
        tenants: &[TenantRecord],
        existing: &std::collections::BTreeSet<String>,
    ) -> Result<CitusHealth, crate::Error> {
        if !self.citus_enabled().await? {
            return Ok(CitusHealth::default());
        }
        let db_err = |source| crate::Error::Database {
            action: "checking the fleet's Citus placement",
            source,
        };
        let schemas: Vec<String> = tenants.iter().map(|t| t.schema.to_string()).collect();
        let distributed = self.distributed_among(&schemas).await.map_err(db_err)?;
        let not_distributed = tenants
            .iter()
            .filter(|t| {
                existing.contains(t.schema.as_str()) && !distributed.contains(t.schema.as_str())
            })
            .map(|t| (t.id.clone(), t.schema.clone()))
            .collect();
        let shared: Vec<String> = self
            .config
            .shared_schemas()
            .iter()
            .map(ToString::to_string)
            .collect();
        let rows = self
            .conn
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                // Reference tables: partmethod 'n' with repmodel 't' (a
                // Citus-local table has 's').
                "SELECT DISTINCT format('%I.%I', rn.nspname, rc.relname) AS t \
                 FROM pg_catalog.pg_constraint con \
                 JOIN pg_catalog.pg_class c ON c.oid = con.conrelid \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 JOIN pg_catalog.pg_class rc ON rc.oid = con.confrelid \
                 JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace \
                 WHERE con.contype = 'f' AND n.nspname = ANY($1) AND rn.nspname = ANY($2) \
                   AND NOT EXISTS (SELECT FROM pg_dist_partition p \
                                   WHERE p.logicalrelid = rc.oid \
                                     AND p.partmethod = 'n' AND p.repmodel = 't') \
                 ORDER BY 1",
                [schemas.into(), shared.into()],
            ))
            .await
            .map_err(db_err)?;
        let not_reference = rows
            .iter()
            .map(|row| row.try_get::<String>("", "t"))
            .collect::<Result<_, _>>()
            .map_err(db_err)?;
        Ok(CitusHealth {
            not_distributed,
            not_reference,
        })
    }

    async fn distributed_among(
        &self,
        schemas: &[String],
    ) -> Result<std::collections::BTreeSet<String>, DbErr> {
        self.conn
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT n.nspname::text AS s FROM pg_dist_schema d \
                 JOIN pg_catalog.pg_namespace n ON n.oid = d.schemaid \
                 WHERE n.nspname = ANY($1)",
                [schemas.to_vec().into()],
            ))
            .await?
            .iter()
            .map(|row| row.try_get::<String>("", "s"))
            .collect()
    }
}
