//! What a fleet on Citus adds: distributing the schemas of tenants made
//! before Citus, showing each tenant's worker, and moving a tenant to
//! another worker.

use std::fmt;

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use sea_orm_migration::MigratorTrait;
use tenancy_core::{SchemaName, TenantId, TenantStatus};

use super::{CitusMode, distribute_existing, is_distributed, verify_distributed};
use crate::pg::begin_read_committed;
use crate::registry::{HERE, read_or_set_aside};
use crate::{Error, TenantFleet, TenantRecord};

/// A Citus worker node, as `pg_dist_node` names it.
///
/// ```
/// let node = tenancy::migrate::CitusNode::new("10.0.0.7", 5432);
/// assert_eq!(node.to_string(), "10.0.0.7:5432");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CitusNode {
    /// The node's host name, as registered with `citus_add_node`.
    pub host: String,
    /// The node's port.
    pub port: u16,
}

impl CitusNode {
    /// The node at `host`:`port`.
    ///
    /// ```
    /// let node = tenancy::migrate::CitusNode::new("worker-1", 5432);
    /// assert_eq!(node.host, "worker-1");
    /// ```
    #[must_use]
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
        }
    }
}

impl fmt::Display for CitusNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Where one tenant lives on a Citus cluster (see
/// [`TenantFleet::tenant_nodes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct TenantNode {
    /// The tenant.
    pub tenant: TenantId,
    /// Its schema.
    pub schema: SchemaName,
    /// Whether the schema is distributed (in `citus_schemas`).
    pub distributed: bool,
    /// The worker holding its tables; `None` when it has no tables yet or
    /// is not distributed.
    pub node: Option<CitusNode>,
}

impl<M: MigratorTrait> TenantFleet<M> {
    /// Distributes the schema of a registered tenant to a worker with
    /// `citus_schema_distribute`, in one transaction checked against
    /// `citus_schemas`: how a fleet made on a single node (or before Citus
    /// mode) is converted, tenant by tenant, while the application runs
    /// (writes to that tenant wait for the copy). Returns `false` when the
    /// schema was distributed already.
    ///
    /// # Errors
    /// - [`Error::CitusMissing`]: the database has no `citus` extension;
    /// - [`Error::UnknownTenant`], [`Error::TenantDeleted`],
    ///   [`Error::TenantMoved`];
    /// - [`Error::NotDistributed`]: Citus left the schema on the coordinator;
    /// - [`Error::Tenant`]: Citus refused (a foreign key to a table that is
    ///   not a reference table, for example: its message says which).
    ///
    /// ```
    /// use tenancy::migrate::{Error, NewTenant, TenantFleet};
    /// # use sea_orm_migration::{MigrationTrait, MigratorTrait};
    /// # struct TenantMigrator;
    /// # impl MigratorTrait for TenantMigrator {
    /// #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
    /// # }
    /// /// Distributes every tenant, going on past failures.
    /// async fn convert(fleet: &TenantFleet<TenantMigrator>) -> Result<(), Error> {
    ///     for tenant in fleet.list(Default::default()).await?.tenants {
    ///         if let Err(err) = fleet.distribute_tenant(&tenant.id).await {
    ///             eprintln!("{err}");
    ///         }
    ///     }
    ///     Ok(())
    /// }
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let test_db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = test_db.connect().await?;
    /// let fleet = TenantFleet::<TenantMigrator>::new(conn.clone());
    /// fleet.install().await?;
    /// fleet.create(&"acme".parse()?, NewTenant::new()).await?;
    /// // Plain PostgreSQL here: there is nothing to distribute to.
    /// let err = fleet.distribute_tenant(&"acme".parse()?).await.unwrap_err();
    /// assert!(matches!(err, Error::CitusMissing));
    /// # let _ = convert;
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    pub async fn distribute_tenant(&self, id: &TenantId) -> Result<bool, Error> {
        self.ensure_direct().await?;
        self.citus_required().await?;
        let record = self.citus_target(id).await?;
        let tenant_err = |source| Error::Tenant {
            tenant: id.clone(),
            source,
        };
        let txn = begin_read_committed(&self.conn, None)
            .await
            .map_err(tenant_err)?;
        let result = async {
            let was = is_distributed(&txn, &record.schema)
                .await
                .map_err(tenant_err)?;
            distribute_existing(&txn, &record.schema)
                .await
                .map_err(tenant_err)?;
            verify_distributed(&txn, id, &record.schema).await?;
            Ok(!was)
        }
        .await;
        match result {
            Ok(done) => {
                txn.commit().await.map_err(tenant_err)?;
                if done {
                    tracing::info!(tenant = %id, schema = %record.schema, "schema distributed");
                }
                Ok(done)
            }
            Err(err) => {
                if let Err(rollback) = txn.rollback().await {
                    tracing::warn!(tenant = %id, error = %rollback, "rollback failed");
                }
                Err(err)
            }
        }
    }

    /// Each tenant's schema and the Citus worker holding it, ordered by
    /// tenant id (deleted tenants, tenants moved to another database and
    /// registry rows that do not validate are left out), read from Citus's metadata on the coordinator in one
    /// query.
    ///
    /// # Errors
    /// [`Error::CitusMissing`] without the `citus` extension;
    /// [`Error::Database`] when the query fails.
    ///
    /// ```
    /// use tenancy::migrate::{Error, TenantFleet};
    /// # use sea_orm_migration::{MigrationTrait, MigratorTrait};
    /// # struct TenantMigrator;
    /// # impl MigratorTrait for TenantMigrator {
    /// #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
    /// # }
    /// async fn show(fleet: &TenantFleet<TenantMigrator>) -> Result<(), Error> {
    ///     for t in fleet.tenant_nodes().await? {
    ///         let node = t.node.map_or_else(|| "-".to_owned(), |n| n.to_string());
    ///         println!("{} {} {node}", t.tenant, t.schema);
    ///     }
    ///     Ok(())
    /// }
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let test_db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = test_db.connect().await?;
    /// let fleet = TenantFleet::<TenantMigrator>::new(conn.clone());
    /// fleet.install().await?;
    /// assert!(matches!(fleet.tenant_nodes().await, Err(Error::CitusMissing)));
    /// # let _ = show;
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    pub async fn tenant_nodes(&self) -> Result<Vec<TenantNode>, Error> {
        self.ensure_direct().await?;
        self.citus_required().await?;
        let db_err = |source| Error::Database {
            action: "reading each tenant's Citus node",
            source,
        };
        let registry = self.config.registry().qualified_table();
        // One placement per distributed schema: its tables are colocated.
        let rows = self
            .conn
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                format!(
                    "SELECT t.tenant_id, t.schema_name, t.display_name, t.domain, t.status, \
                            EXISTS (SELECT FROM pg_dist_schema ds \
                                    WHERE ds.schemaid = n.oid) AS distributed, \
                            node.nodename::text AS host, node.nodeport AS port \
                     FROM {registry} t \
                     LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = t.schema_name::name \
                     LEFT JOIN LATERAL ( \
                        SELECT nd.nodename, nd.nodeport \
                        FROM pg_dist_partition p \
                        JOIN pg_catalog.pg_class c ON c.oid = p.logicalrelid \
                        JOIN pg_dist_shard s ON s.logicalrelid = p.logicalrelid \
                        JOIN pg_dist_placement pl ON pl.shardid = s.shardid \
                        JOIN pg_dist_node nd ON nd.groupid = pl.groupid \
                        WHERE c.relnamespace = n.oid AND nd.noderole = 'primary' \
                        LIMIT 1) node ON true \
                     WHERE t.status IS DISTINCT FROM $1 AND t.{HERE} \
                     ORDER BY t.tenant_id"
                ),
                [TenantStatus::Deleted.as_str().into()],
            ))
            .await
            .map_err(db_err)?;
        let mut corrupt = Vec::new();
        let mut nodes = Vec::with_capacity(rows.len());
        for row in &rows {
            let Some(record) = read_or_set_aside(row, &mut corrupt) else {
                continue;
            };
            let distributed: Option<bool> = row.try_get("", "distributed").map_err(db_err)?;
            let host: Option<String> = row.try_get("", "host").map_err(db_err)?;
            let port: Option<i32> = row.try_get("", "port").map_err(db_err)?;
            let node = match (host, port.and_then(|p| u16::try_from(p).ok())) {
                (Some(host), Some(port)) => Some(CitusNode { host, port }),
                _ => None,
            };
            nodes.push(TenantNode {
                tenant: record.id,
                schema: record.schema,
                distributed: distributed.unwrap_or(false),
                node,
            });
        }
        nodes.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        Ok(nodes)
    }

    /// Moves a tenant's schema to the worker `to`, online, with
    /// `citus_schema_move` (logical replication: reads and writes go on
    /// during the copy, and wait briefly at the switch). Tables need a
    /// primary key or replica identity for that; Citus says so otherwise.
    /// Not in a transaction: Citus refuses a move inside one.
    ///
    /// # Errors
    /// [`Error::CitusMissing`], [`Error::UnknownTenant`],
    /// [`Error::TenantDeleted`], [`Error::TenantMoved`],
    /// [`Error::NotDistributed`] (distribute it first with
    /// [`distribute_tenant`](Self::distribute_tenant)), and
    /// [`Error::Tenant`] with Citus's reason (an unknown node, a table
    /// without a replica identity, …).
    ///
    /// ```
    /// use tenancy::migrate::{CitusNode, Error, TenantFleet};
    /// # use sea_orm_migration::{MigrationTrait, MigratorTrait};
    /// # struct TenantMigrator;
    /// # impl MigratorTrait for TenantMigrator {
    /// #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
    /// # }
    /// async fn rebalance(fleet: &TenantFleet<TenantMigrator>) -> Result<(), Box<dyn std::error::Error>> {
    ///     fleet.move_to_node(&"acme".parse()?, &CitusNode::new("worker-2", 5432)).await?;
    ///     Ok(())
    /// }
    /// # let _ = rebalance;
    /// ```
    pub async fn move_to_node(&self, id: &TenantId, to: &CitusNode) -> Result<(), Error> {
        self.ensure_direct().await?;
        self.citus_required().await?;
        let record = self.citus_target(id).await?;
        let distributed = is_distributed(&self.conn, &record.schema)
            .await
            .map_err(|source| Error::Tenant {
                tenant: id.clone(),
                source,
            })?;
        if !distributed {
            return Err(Error::NotDistributed {
                tenant: id.clone(),
                schema: record.schema,
            });
        }
        self.conn
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT citus_schema_move(oid::regnamespace, $2::text, $3::int) \
                 FROM pg_catalog.pg_namespace WHERE nspname = $1::name",
                [
                    record.schema.as_str().into(),
                    to.host.clone().into(),
                    i32::from(to.port).into(),
                ],
            ))
            .await
            .map_err(|source| Error::Tenant {
                tenant: id.clone(),
                source,
            })?;
        tracing::info!(tenant = %id, node = %to, "tenant moved");
        Ok(())
    }

    /// The tenant's row, unless it is unknown, deleted or moved to another
    /// database.
    async fn citus_target(&self, id: &TenantId) -> Result<TenantRecord, Error> {
        let record = self
            .get(id)
            .await?
            .ok_or_else(|| Error::UnknownTenant { tenant: id.clone() })?;
        if record.status == TenantStatus::Deleted {
            return Err(Error::TenantDeleted { tenant: id.clone() });
        }
        if let Some(placement) = self.placement(id).await? {
            return Err(Error::TenantMoved {
                tenant: id.clone(),
                placement,
            });
        }
        Ok(record)
    }

    /// [`Error::CitusMissing`] unless the database has the extension,
    /// whatever the fleet's mode: these calls were asked for by name.
    async fn citus_required(&self) -> Result<(), Error> {
        self.citus
            .enabled(&self.conn, CitusMode::Required)
            .await
            .map(drop)
    }
}
