//! Creating a tenant, or adopting a schema made outside the library.

use sea_orm::{ConnectionTrait, DatabaseTransaction};
use sea_orm_migration::MigratorTrait;
use tenancy_core::{SchemaName, TenantId, TenantStatus};
use tracing::Instrument;

use super::sql::{
    DUPLICATE_SCHEMA, INVALID_SCHEMA_NAME, RECORD_COLUMNS, has_sqlstate, rollback, statement,
    tenant_err,
};
use super::{NewTenant, normalize_domain};
use crate::audit::record_detail;
use crate::citus;
use crate::lifecycle_events::{LifecycleAction, LifecycleEvent};
use crate::migrate::mixed::{Target, run_mixed};
use crate::migrator::migration_names;
use crate::pg::begin_read_committed;
use crate::registry::record_from_row;
use crate::tenant_txn::Batch;
use crate::{Error, TenantFleet, TenantRecord, tenant_txn};

/// Whether provisioning makes the schema or takes over an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Create,
    Adopt,
}

impl Origin {
    fn action(self) -> LifecycleAction {
        match self {
            Self::Create => LifecycleAction::Created,
            Self::Adopt => LifecycleAction::Adopted,
        }
    }
}

impl<M: MigratorTrait> TenantFleet<M> {
    /// Creates a tenant: registers it, creates its schema and applies every
    /// migration of `M` inside it, in one transaction. If any step fails,
    /// nothing is left behind: no registry row, no schema.
    ///
    /// The schema is named by the fleet's
    /// [`SchemaNaming`](tenancy_core::SchemaNaming) (`tenant_` + id, `-` →
    /// `_`). The registry row is written first, so a taken id or schema is
    /// refused before any DDL runs. The tenant's `seaql_migrations` table
    /// lands in its own schema. The tenant starts in `new.status`
    /// ([`Active`](tenancy_core::TenantStatus::Active) by default), visible to
    /// others only once everything has committed.
    ///
    /// When `M` has migrations that run outside a transaction (see
    /// [`migrate_tenant`](Self::migrate_tenant)), creation cannot be one
    /// transaction: the tenant is committed as
    /// [`Provisioning`](tenancy_core::TenantStatus::Provisioning) with the
    /// migrations before the first such one, the rest run on the tenant's own
    /// connection, and only then does it get `new.status`.
    ///
    /// With the spare pool enabled
    /// ([`FleetConfig::with_spare_pool`](crate::FleetConfig::with_spare_pool)),
    /// the schema is a ready spare renamed in the same transaction (see
    /// [`refill_spares`](Self::refill_spares)), with any migration it lacks
    /// applied; a failure leaves the spare a spare.
    ///
    /// Another process's `TenantDb` may report the new tenant as unknown for
    /// up to its negative cache TTL (2 s by default); in this process, call
    /// `db.registry().invalidate(&id)` to see it at once.
    ///
    /// # Errors
    /// - [`Error::DuplicateMigrationName`]: two of `M`'s migrations share a
    ///   name (nothing is touched);
    /// - [`Error::TenantExists`]: the id is registered already;
    /// - [`Error::SchemaTaken`]: another tenant owns the schema (`acme-corp`
    ///   and `acme_corp` map to the same one);
    /// - [`Error::DomainTaken`]: another tenant uses the domain;
    /// - [`Error::SchemaExists`]: an unregistered schema of that name exists
    ///   (use [`adopt`](Self::adopt));
    /// - [`Error::SchemaShared`]: the name is one of the fleet's shared schemas;
    /// - [`Error::InvalidName`]: the id does not map to a valid schema name;
    /// - [`Error::Migration`]: a migration failed;
    /// - [`Error::ProvisioningUnfinished`]: with migrations outside a
    ///   transaction, one failed after the tenant was committed; it stays
    ///   registered as `provisioning` until migrated and resumed;
    /// - [`Error::Tenant`]: any other database error.
    ///
    /// ```
    /// use sea_orm_migration::prelude::*;
    /// use tenancy::{TenantId, TenantStatus};
    /// use tenancy::migrate::{NewTenant, TenantFleet};
    /// use tenancy::orm::TenantDb;
    ///
    /// struct CreateProjects;
    ///
    /// impl MigrationName for CreateProjects {
    ///     fn name(&self) -> &str {
    ///         "m0001_create_projects"
    ///     }
    /// }
    ///
    /// #[async_trait::async_trait]
    /// impl MigrationTrait for CreateProjects {
    ///     async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
    ///         // Unqualified: it lands in the tenant's schema.
    ///         manager
    ///             .get_connection()
    ///             .execute_unprepared("CREATE TABLE projects (id serial PRIMARY KEY, name text NOT NULL)")
    ///             .await
    ///             .map(drop)
    ///     }
    /// }
    ///
    /// struct TenantMigrator;
    ///
    /// impl MigratorTrait for TenantMigrator {
    ///     fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    ///         vec![Box::new(CreateProjects)]
    ///     }
    /// }
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let test_db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = test_db.connect().await?;
    /// let fleet = TenantFleet::<TenantMigrator>::new(conn.clone());
    /// fleet.install().await?;
    ///
    /// let acme: TenantId = "acme-corp".parse()?;
    /// let record = fleet
    ///     .create(&acme, NewTenant::new().display_name("Acme").domain("acme.example.com"))
    ///     .await?;
    /// assert_eq!(record.schema.as_str(), "tenant_acme_corp");
    /// assert_eq!(record.status, TenantStatus::Active);
    ///
    /// // The SeaORM layer can use it right away.
    /// let db = TenantDb::new(conn.clone())?;
    /// let txn = db.begin_registered(&acme).await?;
    /// txn.execute_unprepared("INSERT INTO projects (name) VALUES ('Rocket')").await?;
    /// txn.commit().await?;
    ///
    /// // `acme_corp` would share its schema: refused.
    /// let clash = fleet.create(&"acme_corp".parse()?, NewTenant::new()).await;
    /// assert!(matches!(clash, Err(tenancy::migrate::Error::SchemaTaken { .. })));
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    pub async fn create(&self, id: &TenantId, new: NewTenant) -> Result<TenantRecord, Error> {
        self.ensure_direct().await?;
        let span = tracing::info_span!("tenant_create", tenant = %id);
        let result = async {
            let schema = self.config.naming().schema_for(id)?;
            let (record, applied) = self.provision(id, &schema, new, Origin::Create).await?;
            tracing::info!(schema = %schema, migrations = applied.len(), "tenant created");
            Ok((record, applied))
        }
        .instrument(span)
        .await;
        let (record, applied) = self
            .audit_failure(Origin::Create.action(), id, result)
            .await?;
        self.emit(&LifecycleEvent::Created {
            record: &record,
            applied: &applied,
        });
        Ok(record)
    }

    /// Registers an existing schema, made outside the library (a legacy
    /// tenant, a restored dump), as tenant `id`, then applies every pending
    /// migration of `M` inside it, in one transaction (or, with migrations
    /// that run outside a transaction, as [`create`](Self::create) does).
    /// Returns the new registry row and the migrations applied, in order.
    ///
    /// Tables already in the schema are left alone; the schema's own
    /// `seaql_migrations` table, if it has one, says which migrations count
    /// as applied. The schema keeps its name, which need not follow the
    /// fleet's naming.
    ///
    /// # Errors
    /// - [`Error::SchemaMissing`]: the schema does not exist;
    /// - [`Error::SchemaTaken`]: another tenant owns it already;
    /// - [`Error::TenantExists`], [`Error::DomainTaken`], [`Error::SchemaShared`]
    ///   and [`Error::Migration`] as for [`create`](Self::create) (a failed
    ///   migration leaves the schema as it was and unregistered);
    /// - [`Error::Tenant`]: any other database error.
    ///
    /// ```
    /// use sea_orm::ConnectionTrait;
    /// use tenancy::migrate::{NewTenant, TenantFleet};
    /// # use sea_orm_migration::{MigrationTrait, MigratorTrait};
    /// # struct TenantMigrator;
    /// # impl MigratorTrait for TenantMigrator {
    /// #     fn migrations() -> Vec<Box<dyn MigrationTrait>> { Vec::new() }
    /// # }
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let test_db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = test_db.connect().await?;
    /// let fleet = TenantFleet::<TenantMigrator>::new(conn.clone());
    /// fleet.install().await?;
    /// conn.execute_unprepared("CREATE SCHEMA legacy_acme; CREATE TABLE legacy_acme.customers (id int)")
    ///     .await?;
    ///
    /// let (record, applied) = fleet
    ///     .adopt(&"acme".parse()?, "legacy_acme".parse()?, NewTenant::new().display_name("Acme"))
    ///     .await?;
    /// assert_eq!(record.schema.as_str(), "legacy_acme");
    /// assert!(applied.is_empty()); // This migrator has no migrations.
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    pub async fn adopt(
        &self,
        id: &TenantId,
        schema: SchemaName,
        new: NewTenant,
    ) -> Result<(TenantRecord, Vec<String>), Error> {
        self.ensure_direct().await?;
        let span = tracing::info_span!("tenant_adopt", tenant = %id, schema = %schema);
        let result = async {
            let adopted = self.provision(id, &schema, new, Origin::Adopt).await?;
            tracing::info!(migrations = adopted.1.len(), "schema adopted");
            Ok(adopted)
        }
        .instrument(span)
        .await;
        let (record, applied) = self
            .audit_failure(Origin::Adopt.action(), id, result)
            .await?;
        self.emit(&LifecycleEvent::Adopted {
            record: &record,
            applied: &applied,
        });
        Ok((record, applied))
    }

    /// Registers `id` with `schema`, creates the schema (or checks that it
    /// exists), takes the tenant's lock and migrates it: one transaction.
    ///
    /// When `M` has migrations that run outside a transaction, that
    /// transaction registers the tenant as `provisioning` and stops before
    /// the first of them; the rest run on the tenant's own session, and
    /// only then does the tenant get `new.status`.
    async fn provision(
        &self,
        id: &TenantId,
        schema: &SchemaName,
        new: NewTenant,
        origin: Origin,
    ) -> Result<(TenantRecord, Vec<String>), Error> {
        let staged = tenant_txn::has_outside_transaction::<M>();
        let status = new.status;
        let first = NewTenant {
            status: if staged {
                TenantStatus::Provisioning
            } else {
                status
            },
            ..new
        };
        let (record, batch) = self.provision_txn(id, schema, first, origin).await?;
        if !staged {
            return Ok((record, batch.applied));
        }
        let applied = if batch.next_outside.is_some() {
            let target = Target::new(&self.conn, &record, self.config.shared_schemas());
            run_mixed::<M>(&target, batch.applied)
                .await
                .map_err(|source| Error::ProvisioningUnfinished {
                    tenant: id.clone(),
                    source: Box::new(source),
                })?
        } else {
            batch.applied
        };
        let record = if status == TenantStatus::Provisioning {
            record
        } else {
            // Part of this call: audited by the row of the registering
            // transaction, not as a `resumed` of its own.
            self.set_status(id, status, None).await?.after
        };
        Ok((record, applied))
    }

    /// The one transaction of [`provision`](Self::provision).
    async fn provision_txn(
        &self,
        id: &TenantId,
        schema: &SchemaName,
        new: NewTenant,
        origin: Origin,
    ) -> Result<(TenantRecord, Batch), Error> {
        self.refuse_shared(id, schema)?;
        migration_names::<M>()?;
        // The field is public: normalise again whatever was put there.
        let domain = new.domain.map(normalize_domain);
        // Before the transaction: the lookup takes a connection of its own
        // (a pool of one would wait for itself).
        let citus = self.citus_enabled().await?;
        // READ COMMITTED: a concurrent registration of the same id or schema
        // is waited for, then reported as the collision it is.
        let txn = begin_read_committed(&self.conn, None)
            .await
            .map_err(tenant_err(id))?;
        // The row first: a unique violation is the cheapest and most precise
        // refusal, and it waits for a concurrent registration of the same id
        // or schema to finish instead of racing it to CREATE SCHEMA.
        let inserted = txn
            .query_one_raw(statement(
                format!(
                    "INSERT INTO {} (tenant_id, schema_name, display_name, domain, status) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING {RECORD_COLUMNS}",
                    self.registry_table()
                ),
                [
                    id.as_str().into(),
                    schema.as_str().into(),
                    new.display_name.as_str().into(),
                    domain.clone().into(),
                    new.status.as_str().into(),
                ],
            ))
            .await;
        let row = match inserted {
            Ok(Some(row)) => row,
            Ok(None) => {
                rollback(txn, id).await;
                return Err(Error::Tenant {
                    tenant: id.clone(),
                    source: sea_orm::DbErr::RecordNotInserted,
                });
            }
            Err(source) => {
                rollback(txn, id).await;
                return Err(self
                    .registry_write_error(id, Some(schema), domain.as_deref(), source)
                    .await);
            }
        };
        let result = match record_from_row(&row) {
            Ok(record) => self
                .prepare_schema(&txn, id, schema, origin, citus)
                .await
                .map(|applied| (record, applied)),
            Err(err) => Err(err),
        };
        // With migrations outside a transaction, this row records the
        // registering transaction (status `provisioning`, the migrations
        // applied in it); the rest of the creation is not audited apart.
        let result = match result {
            Ok((record, batch)) => {
                let mut detail = record_detail(&record);
                detail["migrations"] = batch.applied.clone().into();
                self.audit_in(&txn, origin.action(), id, detail)
                    .await
                    .map(|()| (record, batch))
            }
            Err(err) => Err(err),
        };
        self.finish(txn, id, result).await
    }

    /// Creates the schema (for [`Origin::Create`]; distributed when `citus`),
    /// scopes and locks it, and applies the pending migrations up to the
    /// first that must run outside a transaction.
    async fn prepare_schema(
        &self,
        txn: &DatabaseTransaction,
        id: &TenantId,
        schema: &SchemaName,
        origin: Origin,
        citus: bool,
    ) -> Result<Batch, Error> {
        let claimed = match origin {
            Origin::Create => self.claim_spare(txn, id, schema).await?,
            Origin::Adopt => None,
        };
        if let Some(spare) = &claimed {
            tracing::info!(%spare, "claimed a spare schema");
        } else if origin == Origin::Create {
            if citus {
                citus::enable_schema_sharding(txn)
                    .await
                    .map_err(tenant_err(id))?;
            }
            txn.execute_unprepared(&format!("CREATE SCHEMA {}", schema.quoted()))
                .await
                .map_err(|source| {
                    if has_sqlstate(&source, DUPLICATE_SCHEMA) {
                        Error::SchemaExists {
                            tenant: id.clone(),
                            schema: schema.clone(),
                        }
                    } else {
                        tenant_err(id)(source)
                    }
                })?;
        }
        if citus {
            if origin == Origin::Adopt {
                citus::distribute_existing(txn, schema)
                    .await
                    .map_err(tenant_err(id))?;
            }
            // Before any migration runs: its tables must land on the worker.
            citus::verify_distributed(txn, id, schema).await?;
        }
        tenant_txn::prepare_for_migration::<M>(txn, schema, self.config.shared_schemas())
            .await
            .map_err(|source| {
                if has_sqlstate(&source, INVALID_SCHEMA_NAME) {
                    Error::SchemaMissing {
                        tenant: id.clone(),
                        schema: schema.clone(),
                    }
                } else {
                    tenant_err(id)(source)
                }
            })?;
        tenant_txn::apply_pending_batch::<M>(txn)
            .await
            .map_err(|failure| Error::Migration {
                tenant: id.clone(),
                schema: schema.clone(),
                migration: failure.migration,
                source: failure.source,
            })
    }
}
