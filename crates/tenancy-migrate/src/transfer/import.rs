//! Importing one tenant: one transaction that registers it, creates its
//! schema and everything in it, loads the data with `COPY … FROM STDIN`,
//! sets the sequences, then adds constraints, indexes and comments. Any
//! failure rolls all of it back.

use sea_orm::DbErr;
use sea_orm::sqlx;
use sea_orm::sqlx::postgres::PgConnection;
use sea_orm::sqlx::postgres::types::Oid;
use sea_orm_migration::MigratorTrait;
use serde_json::json;
use tenancy_core::registry::{NOTIFY_CHANNEL, TenantRecord};
use tenancy_core::sqlstate::DUPLICATE_SCHEMA;
use tenancy_core::{AdvisoryLock, SchemaName, SearchPath, TenantId, TenantStatus};
use tokio::io::AsyncRead;

use super::format::{Manifest, read_frame, read_head, read_trailer};
use super::session::{Session, SettingError, db_err, pool_of, record_from_row, set_local_settings};
use super::{ImportOptions, ImportSummary};
use crate::lifecycle::normalize_domain;
use crate::lifecycle_events::{LifecycleAction, LifecycleEvent};
use crate::pg::has_sqlstate;
use crate::registry::RECORD_COLUMNS;
use crate::{Error, TenantFleet};

/// The tenant being imported, as decided before anything is written.
struct Target {
    id: TenantId,
    schema: SchemaName,
    display_name: String,
    domain: Option<String>,
    status: TenantStatus,
}

impl<M: MigratorTrait> TenantFleet<M> {
    /// Reads an export written by [`export_tenant`](Self::export_tenant)
    /// from `input` and makes the tenant again in this fleet's database,
    /// under its own id or the one [`ImportOptions::as_tenant`] gives, in
    /// the schema this fleet's naming gives that id. All or nothing: one
    /// transaction registers the tenant, creates the schema, its types,
    /// sequences and tables, loads the data, sets every sequence where it
    /// stood, then adds constraints, indexes and comments; a failure (or
    /// an export cut short) leaves nothing behind.
    ///
    /// The export's DDL runs as the importing role, which owns what it
    /// creates: import only exports you trust, as you would a `pg_dump`
    /// file.
    ///
    /// ```
    /// use tenancy::migrate::{ImportOptions, NewTenant, TenantFleet};
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
    /// let acme = "acme".parse()?;
    /// fleet.create(&acme, NewTenant::new().display_name("Acme").domain("acme.example.com")).await?;
    /// let mut file = Vec::new();
    /// fleet.export_tenant(&acme, &mut file).await?;
    ///
    /// // The same id is taken here: import it as a copy, without the domain.
    /// let copy = ImportOptions::new().as_tenant("acme-staging".parse()?).domain(None);
    /// let imported = fleet.import_tenant(&file[..], copy).await?;
    /// assert_eq!(imported.record.schema.as_str(), "tenant_acme_staging");
    /// assert_eq!(imported.record.display_name, "Acme");
    ///
    /// // Refused, changing nothing: acme exists.
    /// let again = fleet.import_tenant(&file[..], ImportOptions::new()).await;
    /// assert!(matches!(again, Err(tenancy::migrate::Error::TenantExists { .. })));
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// - [`Error::InvalidExport`]: `input` is not a complete export of a
    ///   format version this version reads;
    /// - [`Error::TenantExists`], [`Error::SchemaTaken`],
    ///   [`Error::DomainTaken`], [`Error::SchemaExists`]: the tenant, its
    ///   schema or its domain is taken here (nothing is overwritten);
    /// - [`Error::SchemaShared`], [`Error::InvalidName`]: the target schema
    ///   is not one a tenant may own;
    /// - [`Error::TransferIo`]: reading `input` failed;
    /// - [`Error::ImportFailed`]: a statement failed (a missing extension
    ///   or shared table the tenant refers to, for example).
    pub async fn import_tenant<R: AsyncRead + Unpin>(
        &self,
        input: R,
        options: ImportOptions,
    ) -> Result<ImportSummary, Error> {
        let summary = self.import_as(input, options, None).await?;
        self.emit(&LifecycleEvent::Imported {
            record: &summary.record,
        });
        Ok(summary)
    }

    /// The import; its audit row says `imported`, or `cloned` with the
    /// source tenant when `cloned_from` is given. Failures are audited and
    /// events told by the callers, which know what the call was.
    pub(super) async fn import_as<R: AsyncRead + Unpin>(
        &self,
        mut input: R,
        options: ImportOptions,
        cloned_from: Option<&TenantId>,
    ) -> Result<ImportSummary, Error> {
        self.ensure_direct().await?;
        let manifest = read_head(&mut input).await?;
        let source = TenantId::new(&manifest.tenant.id)
            .map_err(|e| super::format::invalid(format!("its tenant id is unusable: {e}")))?;
        let target = self.import_target(&manifest, &source, options)?;
        let (action, detail) = match cloned_from {
            Some(from) => (
                LifecycleAction::Cloned,
                json!({ "schema": target.schema.as_str(), "source": from.as_str() }),
            ),
            None => (
                LifecycleAction::Imported,
                json!({
                    "schema": target.schema.as_str(),
                    "exported_as": source.as_str(),
                    "exported_at": manifest.exported_at,
                }),
            ),
        };
        let result = self
            .import_into(&mut input, &manifest, &target, &source, action, &detail)
            .await;
        // A clone audits its failures itself: the export half can fail too.
        match cloned_from {
            Some(_) => result,
            None => self.audit_failure(action, &target.id, result).await,
        }
    }

    /// Everything from the connection to the commit, with the audit row in
    /// the import's own transaction, so the tenant and its row commit
    /// together or not at all.
    async fn import_into<R: AsyncRead + Unpin>(
        &self,
        input: &mut R,
        manifest: &Manifest,
        target: &Target,
        source: &TenantId,
        action: LifecycleAction,
        detail: &serde_json::Value,
    ) -> Result<ImportSummary, Error> {
        let pool = pool_of(&self.conn).map_err(import_err(&target.id, "connecting"))?;
        let mut session = Session::acquire(pool)
            .await
            .map_err(|e| import_err(&target.id, "connecting")(db_err(e)))?;
        let result = self
            .import_on(session.conn(), manifest, target, input)
            .await;
        let result = match result {
            Ok(done) => self
                .audit_row_sqlx(session.conn(), action, &target.id, detail)
                .await
                .map(|()| done)
                .map_err(|source| Error::Tenant {
                    tenant: target.id.clone(),
                    source,
                }),
            Err(err) => Err(err),
        };
        match result {
            Ok((record, rows)) => {
                session
                    .end("COMMIT")
                    .await
                    .map_err(|e| import_err(&target.id, "committing")(db_err(e)))?;
                self.registry.invalidate(&target.id);
                tracing::info!(tenant = %target.id, from = %source, schema = %target.schema, rows, "tenant imported");
                Ok(ImportSummary {
                    record,
                    source: source.clone(),
                    tables: manifest.tables.len(),
                    rows,
                })
            }
            Err(err) => {
                // If the rollback fails, the session closes the connection,
                // which ends the transaction all the same.
                if let Err(rollback) = session.end("ROLLBACK").await {
                    tracing::warn!(tenant = %target.id, "rolling back an import failed: {rollback}");
                }
                Err(self.refine_registry_error(target, err).await)
            }
        }
    }

    /// Decides id, schema and registry values before anything is written.
    fn import_target(
        &self,
        manifest: &Manifest,
        source: &TenantId,
        options: ImportOptions,
    ) -> Result<Target, Error> {
        let id = options.as_tenant.unwrap_or_else(|| source.clone());
        let schema = self.config.naming().schema_for(&id)?;
        self.refuse_shared(&id, &schema)?;
        let status = match options.status {
            Some(status) => status,
            None => manifest.tenant.status.parse().map_err(|e| {
                super::format::invalid(format!("its tenant status is unusable: {e}"))
            })?,
        };
        Ok(Target {
            id,
            schema,
            display_name: manifest.tenant.display_name.clone(),
            domain: options
                .domain
                .unwrap_or_else(|| manifest.tenant.domain.clone())
                .map(normalize_domain),
            status,
        })
    }

    /// Everything up to the commit.
    async fn import_on<R: AsyncRead + Unpin>(
        &self,
        conn: &mut PgConnection,
        manifest: &Manifest,
        target: &Target,
        input: &mut R,
    ) -> Result<(TenantRecord, u64), Error> {
        let id = &target.id;
        let step = |step| import_err(id, step);
        // READ COMMITTED: a concurrent registration of the same id or schema
        // is waited for, then reported as the collision it is.
        sqlx::raw_sql("BEGIN ISOLATION LEVEL READ COMMITTED")
            .execute(&mut *conn)
            .await
            .map_err(|e| step("starting the transaction")(db_err(e)))?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {} (tenant_id, schema_name, display_name, domain, status) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {RECORD_COLUMNS}",
            self.config.registry().qualified_table()
        )))
        .bind(id.as_str())
        .bind(target.schema.as_str())
        .bind(&target.display_name)
        .bind(&target.domain)
        .bind(target.status.as_str())
        .persistent(false)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| Error::Tenant {
            tenant: id.clone(),
            source: db_err(e),
        })?;
        let record = record_from_row(&row)?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA {}; SELECT pg_advisory_xact_lock({})",
            target.schema.quoted(),
            AdvisoryLock::TenantMigration.key(&target.schema)
        )))
        .execute(&mut *conn)
        .await
        .map_err(|e| {
            let err = db_err(e);
            if has_sqlstate(&err, DUPLICATE_SCHEMA) {
                Error::SchemaExists {
                    tenant: id.clone(),
                    schema: target.schema.clone(),
                }
            } else {
                step("creating the schema")(err)
            }
        })?;
        let settings = manifest
            .data_settings
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()));
        match set_local_settings(conn, &SearchPath::strict(target.schema.clone()), settings).await {
            Ok(()) => {}
            Err(SettingError::Database(e)) => {
                return Err(step("applying the export's session settings")(db_err(e)));
            }
            Err(SettingError::Unknown(name)) => {
                return Err(super::format::invalid(format!(
                    "its data was written under the setting {name:?}, which this version of \
                     tenancy does not know: import it with the version that wrote it"
                )));
            }
        }
        let pre_data = manifest.types.iter().map(|t| &t.ddl).chain(
            manifest
                .sequences
                .iter()
                .filter_map(|s| s.ddl.as_ref())
                .chain(manifest.tables.iter().map(|t| &t.ddl)),
        );
        for ddl in pre_data {
            run(conn, ddl).await.map_err(step("creating the tables"))?;
        }
        let rows = copy_in(conn, manifest, input, id).await?;
        read_trailer(input).await?;
        set_sequences(conn, manifest, &target.schema)
            .await
            .map_err(step("setting the sequences"))?;
        for ddl in &manifest.post_data {
            run(conn, ddl)
                .await
                .map_err(step("adding constraints, indexes and comments"))?;
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(NOTIFY_CHANNEL)
            .bind(id.as_str())
            .persistent(false)
            .execute(&mut *conn)
            .await
            .map_err(|e| step("announcing the change")(db_err(e)))?;
        Ok((record, rows))
    }

    /// A unique violation on the registry names what collided and its
    /// owner (looked up after the rollback, as lifecycle calls do).
    async fn refine_registry_error(&self, target: &Target, err: Error) -> Error {
        match err {
            Error::Tenant { tenant, source } => {
                self.registry_write_error(
                    &tenant,
                    Some(&target.schema),
                    target.domain.as_deref(),
                    source,
                )
                .await
            }
            other => other,
        }
    }
}

/// Runs one statement of the export's DDL. Extended protocol: exactly one
/// statement, never a list.
async fn run(conn: &mut PgConnection, ddl: &str) -> Result<(), DbErr> {
    sqlx::query(sqlx::AssertSqlSafe(ddl.to_owned()))
        .persistent(false)
        .execute(&mut *conn)
        .await
        .map(drop)
        .map_err(db_err)
}

/// Streams each table's data section into `COPY … FROM STDIN`.
async fn copy_in<R: AsyncRead + Unpin>(
    conn: &mut PgConnection,
    manifest: &Manifest,
    input: &mut R,
    id: &TenantId,
) -> Result<u64, Error> {
    let step = |e: sqlx::Error| import_err(id, "loading the data")(db_err(e));
    let mut rows = 0;
    let mut buf = Vec::new();
    for table in &manifest.tables {
        let Some(target) = &table.copy_target else {
            if read_frame(input, &mut buf).await? {
                return Err(super::format::invalid(format!(
                    "table {} has no columns to load, but data",
                    table.name
                )));
            }
            continue;
        };
        let mut copy = conn
            .copy_in_raw(&format!("COPY {target} FROM STDIN"))
            .await
            .map_err(step)?;
        loop {
            match read_frame(input, &mut buf).await {
                Ok(true) => {
                    copy.send(&buf[..]).await.map_err(step)?;
                }
                Ok(false) => break,
                Err(err) => {
                    // Leaves the connection usable for the rollback.
                    if let Err(abort) = copy.abort("the export could not be read").await {
                        tracing::debug!("aborting COPY: {abort}");
                    }
                    return Err(err);
                }
            }
        }
        rows += copy.finish().await.map_err(step)?;
    }
    Ok(rows)
}

/// Sets every sequence where it stood in the export: found by name in the
/// new schema, so nothing is quoted.
async fn set_sequences(
    conn: &mut PgConnection,
    manifest: &Manifest,
    schema: &SchemaName,
) -> Result<(), DbErr> {
    let namespace: Oid =
        sqlx::query_scalar("SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = $1")
            .bind(schema.as_str())
            .persistent(false)
            .fetch_one(&mut *conn)
            .await
            .map_err(db_err)?;
    for sequence in &manifest.sequences {
        let Some(value) = sequence.last_value else {
            continue;
        };
        let set: Option<i64> = sqlx::query_scalar(
            "SELECT setval(c.oid, $3, true) FROM pg_catalog.pg_class c \
             WHERE c.relnamespace = $1 AND c.relname = $2 AND c.relkind = 'S'",
        )
        .bind(namespace)
        .bind(&sequence.name)
        .bind(value)
        .persistent(false)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
        if set.is_none() {
            return Err(DbErr::RecordNotFound(format!(
                "the export lists sequence {:?}, but importing its tables did not create it",
                sequence.name
            )));
        }
    }
    Ok(())
}

/// Wraps a database error of an import step.
fn import_err<'a>(tenant: &'a TenantId, step: &'static str) -> impl Fn(DbErr) -> Error + 'a {
    move |source| Error::ImportFailed {
        tenant: tenant.clone(),
        step,
        source,
    }
}
