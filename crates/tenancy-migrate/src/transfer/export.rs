//! Exporting one tenant: one `REPEATABLE READ READ ONLY` transaction, the
//! catalog read for the tenant's schema alone, then `COPY … TO STDOUT` per
//! table, streamed into the writer as it arrives.

use futures_util::StreamExt;
use sea_orm::sqlx::postgres::PgConnection;
use sea_orm::sqlx::postgres::types::Oid;
use sea_orm::sqlx::{self, Row};
use sea_orm_migration::MigratorTrait;
use serde_json::json;
use tenancy_core::{AdvisoryLock, SchemaName, SearchPath, TenantId};
use tokio::io::AsyncWrite;

use super::ExportSummary;
use super::catalog::{read_definition, unsupported_objects};
use super::format::{
    FORMAT_VERSION, Manifest, TenantMeta, end_section, write_frame, write_head, write_trailer,
};
use super::session::{
    DATA_SETTINGS, Session, SettingError, db_err, pool_of, record_from_row, set_local_settings,
};
use crate::lifecycle_events::{LifecycleAction, LifecycleEvent};
use crate::registry::RECORD_COLUMNS;
use crate::{Error, TenantFleet, TenantRecord};

impl<M: MigratorTrait> TenantFleet<M> {
    /// Writes tenant `id` to `out` as a self-contained export: its schema's
    /// DDL (types, sequences with their values, tables, constraints,
    /// indexes, comments), its data, its migration ledger (the schema's
    /// `seaql_migrations` table) and its registry row. The layout is
    /// described in the [`transfer` docs](crate::transfer).
    ///
    /// The export is one consistent snapshot (`REPEATABLE READ READ
    /// ONLY`); writes to the tenant go on meanwhile. It waits for a running
    /// migration of the tenant to finish, and holds the tenant's migration
    /// lock (shared) so none starts until it is done. It reads the catalog
    /// for this one schema only, so it takes about as long among 10,000
    /// tenants as among ten (`BENCHMARKS.md`).
    ///
    /// ```
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
    /// let acme = "acme".parse()?;
    /// fleet.create(&acme, NewTenant::new().display_name("Acme")).await?;
    ///
    /// let mut file = Vec::new(); // or a tokio::fs::File
    /// let summary = fleet.export_tenant(&acme, &mut file).await?;
    /// assert_eq!(summary.bytes, file.len() as u64);
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// - [`Error::UnknownTenant`]: `id` is not registered;
    /// - [`Error::SchemaMissing`]: its schema does not exist;
    /// - [`Error::ExportUnsupported`]: the schema holds objects the export
    ///   does not carry (views, functions, triggers, partitioned tables, …);
    ///   nothing is written;
    /// - [`Error::TransferIo`]: writing to `out` failed;
    /// - [`Error::ExportFailed`]: a database error.
    pub async fn export_tenant<W: AsyncWrite + Unpin>(
        &self,
        id: &TenantId,
        out: W,
    ) -> Result<ExportSummary, Error> {
        let action = LifecycleAction::Exported;
        let result = self.export_unaudited(id, out).await;
        let (summary, record) = self.audit_failure(action, id, result).await?;
        // An export changes nothing, so there is no change's transaction for
        // its audit row to join: it is written once the export is complete,
        // and a failure to write it is the call's failure.
        let detail = json!({
            "schema": summary.schema.as_str(),
            "tables": summary.tables,
            "bytes": summary.bytes,
        });
        self.audit_in(&self.conn, action, id, detail).await?;
        self.emit(&LifecycleEvent::Exported { record: &record });
        Ok(summary)
    }

    /// The export without its audit row and event: a clone or a move
    /// reports itself as such.
    pub(super) async fn export_unaudited<W: AsyncWrite + Unpin>(
        &self,
        id: &TenantId,
        mut out: W,
    ) -> Result<(ExportSummary, TenantRecord), Error> {
        self.ensure_direct().await?;
        let pool = pool_of(&self.conn).map_err(export_err(id, "connecting"))?;
        let mut session = Session::acquire(pool)
            .await
            .map_err(|e| export_err(id, "connecting")(db_err(e)))?;
        let result = self.export_on(session.conn(), id, &mut out).await;
        // The transaction is read only: ending it cannot lose anything. A
        // failed export is not ended but its connection closed (the session
        // does it on drop): a COPY cut short would otherwise have to be
        // read to its end first.
        if result.is_ok()
            && let Err(err) = session.end("ROLLBACK").await
        {
            tracing::debug!(tenant = %id, "ending the export transaction: {err}");
        }
        result
    }

    async fn export_on<W: AsyncWrite + Unpin>(
        &self,
        conn: &mut PgConnection,
        id: &TenantId,
        out: &mut W,
    ) -> Result<(ExportSummary, TenantRecord), Error> {
        let (meta, record) = self.open_snapshot(conn, id).await?;
        let schema = record.schema.clone();
        let step = |step| export_err(id, step);
        let namespace: Option<Oid> =
            sqlx::query_scalar("SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = $1")
                .bind(schema.as_str())
                .persistent(false)
                .fetch_optional(&mut *conn)
                .await
                .map_err(|e| step("finding the schema")(db_err(e)))?;
        let Some(namespace) = namespace else {
            return Err(Error::SchemaMissing {
                tenant: id.clone(),
                schema,
            });
        };
        let unsupported = unsupported_objects(conn, namespace)
            .await
            .map_err(|e| step("reading the catalog")(db_err(e)))?;
        if !unsupported.is_empty() {
            return Err(Error::ExportUnsupported {
                tenant: id.clone(),
                schema,
                objects: unsupported,
            });
        }
        let definition = read_definition(conn, namespace)
            .await
            .map_err(|e| step("reading the catalog")(db_err(e)))?;
        let row = sqlx::query(
            "SELECT current_setting('server_version_num')::int AS version, \
             to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS at",
        )
        .persistent(false)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| step("reading the server version")(db_err(e)))?;
        let manifest = Manifest {
            format_version: FORMAT_VERSION,
            server_version_num: row
                .try_get("version")
                .map_err(|e| step("reading")(db_err(e)))?,
            exported_at: row.try_get("at").map_err(|e| step("reading")(db_err(e)))?,
            tenant: meta,
            data_settings: DATA_SETTINGS
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            types: definition.types,
            sequences: definition.sequences,
            tables: definition.tables,
            post_data: definition.post_data,
        };
        let io = |source| Error::TransferIo {
            action: "writing the export",
            source,
        };
        let mut bytes = write_head(out, &manifest).await.map_err(io)?;
        for table in &manifest.tables {
            if let Some(target) = &table.copy_target {
                let mut stream = conn
                    .copy_out_raw(&format!("COPY {target} TO STDOUT"))
                    .await
                    .map_err(|e| step("copying a table's data")(db_err(e)))?;
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|e| step("copying a table's data")(db_err(e)))?;
                    bytes += write_frame(out, &chunk).await.map_err(io)?;
                }
            }
            bytes += end_section(out).await.map_err(io)?;
        }
        bytes += write_trailer(out).await.map_err(io)?;
        let summary = ExportSummary {
            tenant: id.clone(),
            schema,
            tables: manifest.tables.len(),
            bytes,
        };
        Ok((summary, record))
    }

    /// Opens the snapshot holding the tenant's migration lock (shared), and
    /// reads its registry row in it.
    ///
    /// The lock is tried in the snapshot's first statement: a `REPEATABLE
    /// READ` snapshot is taken when its first statement starts, so waiting
    /// for the lock there would leave a snapshot from before the migration
    /// that made the lock wait, beside a catalog read after it. When the
    /// lock is taken, the transaction is ended, the lock waited for outside
    /// any snapshot, and the snapshot opened again.
    async fn open_snapshot(
        &self,
        conn: &mut PgConnection,
        id: &TenantId,
    ) -> Result<(TenantMeta, TenantRecord), Error> {
        let step = |step| export_err(id, step);
        let record = {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {RECORD_COLUMNS} FROM {} WHERE tenant_id = $1",
                self.config.registry().qualified_table()
            )))
            .bind(id.as_str())
            .persistent(false)
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| step("reading the registry")(db_err(e)))?;
            let Some(row) = row else {
                return Err(Error::UnknownTenant { tenant: id.clone() });
            };
            record_from_row(&row)?
        };
        let lock = AdvisoryLock::TenantMigration.key(&record.schema);
        loop {
            sqlx::raw_sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .execute(&mut *conn)
                .await
                .map_err(|e| step("starting the snapshot")(db_err(e)))?;
            let taken: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT pg_try_advisory_xact_lock_shared({lock})"
            )))
            .persistent(false)
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| self.missing_or(id, &record.schema, "locking the tenant", e))?;
            if taken {
                break;
            }
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "ROLLBACK; BEGIN; SELECT pg_advisory_xact_lock_shared({lock}); COMMIT"
            )))
            .execute(&mut *conn)
            .await
            .map_err(|e| self.missing_or(id, &record.schema, "waiting for a migration", e))?;
        }
        // The row again, in the snapshot: what is exported is what it says.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RECORD_COLUMNS} FROM {} WHERE tenant_id = $1",
            self.config.registry().qualified_table()
        )))
        .bind(id.as_str())
        .persistent(false)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| step("reading the registry")(db_err(e)))?
        .ok_or_else(|| Error::UnknownTenant { tenant: id.clone() })?;
        let record = record_from_row(&row)?;
        let settings = DATA_SETTINGS.iter().copied();
        match set_local_settings(conn, &SearchPath::strict(record.schema.clone()), settings).await {
            Ok(()) => {}
            Err(SettingError::Database(e)) => {
                return Err(step("pinning the session settings")(db_err(e)));
            }
            // Only DATA_SETTINGS were passed.
            Err(SettingError::Unknown(name)) => {
                return Err(step("pinning the session settings")(
                    sea_orm::DbErr::Custom(name),
                ));
            }
        }
        let meta = TenantMeta {
            id: record.id.as_str().to_owned(),
            schema: record.schema.as_str().to_owned(),
            display_name: record.display_name.clone(),
            domain: record.domain.clone(),
            status: record.status.as_str().to_owned(),
        };
        Ok((meta, record))
    }

    /// A missing schema makes the lock key's `regnamespace` cast fail.
    fn missing_or(
        &self,
        id: &TenantId,
        schema: &SchemaName,
        step: &'static str,
        err: sqlx::Error,
    ) -> Error {
        let err = db_err(err);
        if crate::pg::has_sqlstate(&err, tenancy_core::sqlstate::INVALID_SCHEMA_NAME) {
            Error::SchemaMissing {
                tenant: id.clone(),
                schema: schema.clone(),
            }
        } else {
            export_err(id, step)(err)
        }
    }
}

/// Wraps a database error of an export step.
fn export_err<'a>(
    tenant: &'a TenantId,
    step: &'static str,
) -> impl Fn(sea_orm::DbErr) -> Error + 'a {
    move |source| Error::ExportFailed {
        tenant: tenant.clone(),
        step,
        source,
    }
}
