//! The fleet-wide status read: one catalog query, then the migrations
//! tables in `UNION ALL` chunks.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::{StreamExt, stream};
use sea_orm::sqlx::{self, Row};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseConnectionType, DbBackend, DbErr, RuntimeErr,
    Statement,
};
use sea_orm_migration::MigratorTrait;
use tenancy_core::{TableName, TenantStatus};

use super::{FleetStatus, FleetTotals, SchemaState, TenantMigrationStatus};
use crate::registry::{HERE, read_or_set_aside};
use crate::{CorruptRecord, Error, TenantFleet, TenantRecord};

/// Tenant migrations tables read per statement by
/// [`TenantFleet::fleet_status`]. Planning a `UNION ALL` grows faster than
/// linearly with its arms (1,000 arms cost about three times 10 statements of
/// 100), and each table read holds a lock until its statement ends, so
/// statements stay small; several run at once (the fleet's concurrency).
const STATUS_CHUNK: usize = 100;

pub(super) async fn read_fleet_status<M: MigratorTrait>(
    fleet: &TenantFleet<M>,
    table: &TableName,
) -> Result<FleetStatus, Error> {
    let db_err = |source| Error::Database {
        action: "reading the fleet's migration status",
        source,
    };
    let registry = fleet.config.registry().qualified_table();
    let rows = fleet
        .conn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "SELECT t.tenant_id, t.schema_name, t.display_name, t.domain, t.status, \
                            n.oid IS NOT NULL AS schema_exists, c.oid::bigint AS table_oid \
                     FROM {registry} t \
                     LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = t.schema_name::name \
                     LEFT JOIN pg_catalog.pg_class c \
                       ON c.relnamespace = n.oid AND c.relname = $1::name AND c.relkind = 'r' \
                     WHERE t.status IS DISTINCT FROM $2 AND t.{HERE} \
                     ORDER BY t.tenant_id"
            ),
            [table.as_str().into(), TenantStatus::Deleted.as_str().into()],
        ))
        .await
        .map_err(db_err)?;

    let mut tenants = Vec::with_capacity(rows.len());
    let mut corrupt = Vec::new();
    // Each table to read, with the index in `tenants` of its tenant. The
    // index is also the literal that keys the table's rows in the
    // `UNION ALL`: `tableoid` would be the shard's OID on a Citus worker,
    // not the coordinator's table OID, and every row would go unmatched.
    let mut to_read: Vec<(usize, String)> = Vec::new();
    for row in &rows {
        let Some(record) = read_or_set_aside(row, &mut corrupt) else {
            continue;
        };
        let schema_exists: bool = row.try_get("", "schema_exists").map_err(db_err)?;
        let table_oid: Option<i64> = row.try_get("", "table_oid").map_err(db_err)?;
        let state = match (schema_exists, table_oid) {
            (false, _) => SchemaState::MissingSchema,
            (true, None) => SchemaState::NoMigrationsTable,
            (true, Some(_)) => {
                let qualified = format!("{}.{}", record.schema.quoted(), table.quoted());
                to_read.push((tenants.len(), qualified));
                SchemaState::Migrated
            }
        };
        tenants.push((record, state, Vec::<String>::new()));
    }

    let chunks: Vec<String> = to_read
        .chunks(STATUS_CHUNK)
        .map(|chunk| {
            chunk
                .iter()
                .map(|(index, qualified)| {
                    format!("SELECT {index}::bigint AS t, version FROM ONLY {qualified}")
                })
                .collect::<Vec<_>>()
                .join(" UNION ALL ")
        })
        .collect();
    let mut reads = stream::iter(chunks)
        .map(|sql| read_versions(&fleet.conn, sql))
        .buffer_unordered(fleet.config.concurrency());
    while let Some(versions) = reads.next().await {
        for (index, version) in versions.map_err(db_err)? {
            let tenant = usize::try_from(index).ok().and_then(|i| tenants.get_mut(i));
            if let Some(tenant) = tenant {
                tenant.2.push(version);
            }
        }
    }

    Ok(summarise::<M>(tenants, corrupt))
}

/// Runs one chunk of `UNION ALL` reads, over the simple query protocol when
/// the connection is a sqlx pool: nothing is prepared, so no plan touching
/// hundreds of tables stays cached on the server (planning each table is most
/// of the cost, and caching would only help a warm connection).
async fn read_versions(
    conn: &DatabaseConnection,
    sql: String,
) -> Result<Vec<(i64, String)>, DbErr> {
    if let DatabaseConnectionType::SqlxPostgresPoolConnection(_) = &conn.inner {
        let pool = conn.get_postgres_connection_pool();
        let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .fetch_all(pool)
            .await
            .map_err(|e| DbErr::Query(RuntimeErr::SqlxError(Arc::new(e))))?;
        return rows
            .iter()
            .map(|row| {
                Ok((
                    row.try_get::<i64, _>("t")?,
                    row.try_get::<String, _>("version")?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| DbErr::Query(RuntimeErr::SqlxError(Arc::new(e))));
    }
    conn.query_all_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await?
        .iter()
        .map(|row| Ok((row.try_get("", "t")?, row.try_get("", "version")?)))
        .collect()
}

/// Compares each tenant's recorded versions with `M`'s migrations.
fn summarise<M: MigratorTrait>(
    tenants: Vec<(TenantRecord, SchemaState, Vec<String>)>,
    corrupt: Vec<CorruptRecord>,
) -> FleetStatus {
    let migrations: Vec<String> = M::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let index: HashMap<&str, usize> = migrations
        .iter()
        .enumerate()
        .map(|(i, name)| (name.as_str(), i))
        .collect();
    let mut totals = FleetTotals {
        tenants: tenants.len(),
        corrupt: corrupt.len(),
        ..FleetTotals::default()
    };
    let mut tenants: Vec<TenantMigrationStatus> = tenants
        .into_iter()
        .map(|(record, state, recorded)| {
            let mut is_applied = vec![false; migrations.len()];
            let mut unknown = Vec::new();
            for version in recorded {
                match index.get(version.as_str()) {
                    Some(&i) => is_applied[i] = true,
                    None => unknown.push(version),
                }
            }
            unknown.sort();
            let (mut applied, mut pending) = (Vec::new(), Vec::new());
            for (name, done) in migrations.iter().zip(&is_applied) {
                if *done { &mut applied } else { &mut pending }.push(name.clone());
            }
            let status = TenantMigrationStatus {
                tenant: record.id,
                schema: record.schema,
                status: record.status,
                state,
                applied,
                pending,
                unknown,
            };
            if status.is_up_to_date() {
                totals.up_to_date += 1;
            } else if status.is_behind() {
                totals.behind += 1;
                totals.pending_migrations += status.pending.len();
            } else {
                totals.missing_schema += 1;
            }
            if state == SchemaState::NoMigrationsTable {
                totals.missing_table += 1;
            }
            if !status.unknown.is_empty() {
                totals.with_unknown += 1;
            }
            status
        })
        .collect();
    // The server sorted by its collation (`a_c < a-b < aa` under ICU or
    // en_US); `FleetStatus::tenant` searches in `TenantId`'s own order.
    tenants.sort_by(|a, b| a.tenant.cmp(&b.tenant));
    FleetStatus {
        migrations,
        tenants,
        corrupt,
        totals,
    }
}
