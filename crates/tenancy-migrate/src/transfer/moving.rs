//! Moving a tenant to another database, in steps that each commit and that
//! a retry recognises, so an interrupted move resumes (or is cancelled)
//! instead of losing or doubling the tenant.
//!
//! 1. Here: the row records `moving_to` and `status_before_move`, and the
//!    tenant is suspended (the SeaORM layer refuses it from then on).
//! 2. There: the tenant is imported under the same id, with the status it
//!    had, from an export streamed from here. A retry that finds it there
//!    already compares both schemas (tables and row counts) before going on.
//! 3. Here: the schema is dropped and the row records `placement` (the
//!    tenant's status is restored on it), in one transaction.

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, QueryResult, Statement};
use sea_orm_migration::MigratorTrait;
use serde_json::json;
use tenancy_core::{AdvisoryLock, SchemaName, TenantId, TenantStatus};

use super::{ExportSummary, ImportOptions, ImportSummary};
use crate::lifecycle::sql::{self, statement};
use crate::lifecycle_events::{LifecycleAction, LifecycleEvent};
use crate::pg::begin_read_committed;
use crate::registry::{RECORD_COLUMNS, record_from_row};
use crate::{Error, TenantFleet, TenantRecord};

/// How much of the export may wait in memory for the other database.
const PIPE_BUFFER: usize = 1024 * 1024;

/// What [`TenantFleet::move_tenant`] did.
///
/// ```
/// fn log(report: &tenancy::migrate::MoveReport) {
///     println!("{} now lives in {}; schema {} dropped here", report.tenant, report.placement, report.dropped_schema);
///     if report.import.is_none() {
///         println!("(resumed: the copy was already there)");
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct MoveReport {
    /// The tenant moved.
    pub tenant: TenantId,
    /// The name its registry row here now records as its placement.
    pub placement: String,
    /// The status it had before the move, restored there and here.
    pub status: TenantStatus,
    /// What was exported, when this call exported it.
    pub export: Option<ExportSummary>,
    /// What was imported there, when this call imported it; `None` when a
    /// retry found the copy there already (and checked it).
    pub import: Option<ImportSummary>,
    /// Whether this call resumed a move an earlier call had started.
    pub resumed: bool,
    /// The schema dropped here.
    pub dropped_schema: SchemaName,
}

/// A registry row with its move columns.
struct MoveRow {
    record: TenantRecord,
    placement: Option<String>,
    moving_to: Option<String>,
    status_before_move: Option<TenantStatus>,
}

impl<M: MigratorTrait> TenantFleet<M> {
    /// Moves tenant `id` from this fleet's database to `target`'s (another
    /// database, or server): suspends it here, imports it there under the
    /// same id with the status it had, then drops its schema here and
    /// records `placement` (a name you choose for the target database) on
    /// its row here, which fleet-wide calls here then leave out.
    ///
    /// Each step commits on its own and is recorded, so a move cut short
    /// (a crash, a lost connection) is resumed by calling `move_tenant`
    /// again with the same `placement`, or undone with
    /// [`cancel_move`](Self::cancel_move). A failure this call sees before
    /// anything was imported there is undone at once: the tenant gets its
    /// status back here, and the error is returned.
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
    /// # let (db_a, db_b) = (tenancy_testing::TestDatabase::create().await?, tenancy_testing::TestDatabase::create().await?);
    /// # let (conn_a, conn_b) = (db_a.connect().await?, db_b.connect().await?);
    /// let shared = TenantFleet::<TenantMigrator>::new(conn_a.clone());
    /// let dedicated = TenantFleet::<TenantMigrator>::new(conn_b.clone());
    /// shared.install().await?;
    /// dedicated.install().await?;
    /// let acme = "acme".parse()?;
    /// shared.create(&acme, NewTenant::new()).await?;
    ///
    /// let report = shared.move_tenant(&acme, &dedicated, "dedicated-1").await?;
    /// assert_eq!(report.dropped_schema.as_str(), "tenant_acme");
    /// assert_eq!(shared.placement(&acme).await?.as_deref(), Some("dedicated-1"));
    /// assert_eq!(dedicated.placement(&acme).await?, None); // it lives there
    /// # conn_a.close().await?; conn_b.close().await?; db_a.close().await?; db_b.close().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// - [`Error::UnknownTenant`], [`Error::TenantDeleted`];
    /// - [`Error::TenantMoved`]: it was moved away already;
    /// - [`Error::MoveInProgress`]: a move to another placement is under
    ///   way (finish it, or cancel it);
    /// - [`Error::MoveConflict`]: a retry found a tenant of that id there
    ///   that differs from the one here; nothing was dropped;
    /// - those of [`export_tenant`](Self::export_tenant) and
    ///   [`import_tenant`](Self::import_tenant) (a taken id, schema or
    ///   domain there, …).
    pub async fn move_tenant(
        &self,
        id: &TenantId,
        target: &TenantFleet<M>,
        placement: &str,
    ) -> Result<MoveReport, Error> {
        let result = self.move_unaudited(id, target, placement).await;
        let (report, record) = self
            .audit_failure(LifecycleAction::Moved, id, result)
            .await?;
        self.emit(&LifecycleEvent::Moved {
            record: &record,
            placement,
        });
        Ok(report)
    }

    /// The move; its `moved` audit row is written by its last step.
    async fn move_unaudited(
        &self,
        id: &TenantId,
        target: &TenantFleet<M>,
        placement: &str,
    ) -> Result<(MoveReport, TenantRecord), Error> {
        self.ensure_direct().await?;
        let (row, resumed) = self.start_move(id, placement).await?;
        let status = row.status_before_move.unwrap_or(row.record.status);
        let there = target.record_there(id).await?;
        let (export, import) = match (there, resumed) {
            (None, _) => match self.copy_to(id, target, status).await {
                Ok((export, import)) => (Some(export), Some(import)),
                Err(err) if !resumed => {
                    self.undo_start(id).await;
                    return Err(err);
                }
                Err(err) => return Err(err),
            },
            (Some(_), true) => {
                self.check_same(id, &row.record.schema, target, placement)
                    .await?;
                (None, None)
            }
            // A tenant of that id was there before this move began.
            (Some(_), false) => {
                self.undo_start(id).await;
                return Err(Error::TenantExists { tenant: id.clone() });
            }
        };
        let record = self.finish_move(id, placement, status).await?;
        tracing::info!(tenant = %id, placement, resumed, "tenant moved");
        let report = MoveReport {
            tenant: id.clone(),
            placement: placement.to_owned(),
            status,
            export,
            import,
            resumed,
            dropped_schema: record.schema.clone(),
        };
        Ok((report, record))
    }

    /// Undoes a move cut short, here: the tenant gets back the status it
    /// had and is no longer moving. A copy already imported in the target
    /// database stays there: drop it there if it should not be kept.
    ///
    /// ```
    /// # async fn demo<M: sea_orm_migration::MigratorTrait>(fleet: tenancy::migrate::TenantFleet<M>) -> Result<(), tenancy::migrate::Error> {
    /// let record = fleet.cancel_move(&"acme".parse()?).await?;
    /// println!("{} is {} again", record.id, record.status);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::UnknownTenant`]; [`Error::Database`] on a database error.
    /// Cancelling a tenant that is not moving changes nothing.
    pub async fn cancel_move(&self, id: &TenantId) -> Result<TenantRecord, Error> {
        self.ensure_direct().await?;
        let txn = self.lock_row(id).await?;
        let row = self.read_move_row(&txn, id).await?;
        let record = match row.status_before_move {
            Some(status) => {
                let updated = txn
                    .query_one_raw(statement(
                        format!(
                            "UPDATE {} SET status = $2, moving_to = NULL, status_before_move = NULL, \
                             updated_at = now() WHERE tenant_id = $1 RETURNING {RECORD_COLUMNS}",
                            self.config.registry().qualified_table()
                        ),
                        vec![id.as_str().into(), status.as_str().into()],
                    ))
                    .await
                    .map_err(move_err("cancelling the move"))?;
                notify(&txn, id).await?;
                match updated {
                    Some(row) => record_from_row(&row)?,
                    None => return Err(Error::UnknownTenant { tenant: id.clone() }),
                }
            }
            None => row.record,
        };
        txn.commit()
            .await
            .map_err(move_err("cancelling the move"))?;
        self.registry.invalidate(id);
        Ok(record)
    }

    /// Where tenant `id` lives, as its row here records it: `None` for this
    /// database, else the placement a [`move_tenant`](Self::move_tenant)
    /// recorded.
    ///
    /// ```
    /// # async fn demo<M: sea_orm_migration::MigratorTrait>(fleet: tenancy::migrate::TenantFleet<M>) -> Result<(), tenancy::migrate::Error> {
    /// if let Some(database) = fleet.placement(&"acme".parse()?).await? {
    ///     println!("acme lives in {database}");
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::UnknownTenant`]; [`Error::Database`] on a database error.
    pub async fn placement(&self, id: &TenantId) -> Result<Option<String>, Error> {
        self.ensure_direct().await?;
        let row = self
            .conn
            .query_one_raw(statement(
                format!(
                    "SELECT placement FROM {} WHERE tenant_id = $1",
                    self.config.registry().qualified_table()
                ),
                vec![id.as_str().into()],
            ))
            .await
            .map_err(move_err("reading the placement"))?
            .ok_or_else(|| Error::UnknownTenant { tenant: id.clone() })?;
        row.try_get("", "placement")
            .map_err(move_err("reading the placement"))
    }

    /// Step 1: records the move and suspends the tenant; `true` when a move
    /// to `placement` was under way already.
    async fn start_move(&self, id: &TenantId, placement: &str) -> Result<(MoveRow, bool), Error> {
        let txn = self.lock_row(id).await?;
        let row = self.read_move_row(&txn, id).await?;
        if let Some(placed) = &row.placement {
            return Err(Error::TenantMoved {
                tenant: id.clone(),
                placement: placed.clone(),
            });
        }
        match row.moving_to.as_deref() {
            Some(to) if to == placement => return Ok((row, true)),
            Some(to) => {
                return Err(Error::MoveInProgress {
                    tenant: id.clone(),
                    moving_to: to.to_owned(),
                });
            }
            None => {}
        }
        if row.record.status == TenantStatus::Deleted {
            return Err(Error::TenantDeleted { tenant: id.clone() });
        }
        txn.execute_raw(statement(
            format!(
                "UPDATE {} SET moving_to = $2, status_before_move = status, status = $3, \
                 updated_at = now() WHERE tenant_id = $1",
                self.config.registry().qualified_table()
            ),
            vec![
                id.as_str().into(),
                placement.into(),
                TenantStatus::Suspended.as_str().into(),
            ],
        ))
        .await
        .map_err(move_err("suspending the tenant for its move"))?;
        notify(&txn, id).await?;
        txn.commit()
            .await
            .map_err(move_err("suspending the tenant for its move"))?;
        self.registry.invalidate(id);
        let row = MoveRow {
            status_before_move: Some(row.record.status),
            moving_to: Some(placement.to_owned()),
            ..row
        };
        Ok((row, false))
    }

    /// Undoes step 1 after a failure this call saw; a failure to undo is
    /// logged, and the move stays recorded for a retry or a cancel.
    async fn undo_start(&self, id: &TenantId) {
        if let Err(err) = self.cancel_move(id).await {
            tracing::error!(tenant = %id, "undoing a failed move: {err}; call cancel_move");
        }
    }

    /// Step 2: the export from here streamed into the import there.
    async fn copy_to(
        &self,
        id: &TenantId,
        target: &TenantFleet<M>,
        status: TenantStatus,
    ) -> Result<(ExportSummary, ImportSummary), Error> {
        let (writer, reader) = tokio::io::duplex(PIPE_BUFFER);
        let export = async move {
            let mut writer = writer;
            self.export_unaudited(id, &mut writer)
                .await
                .map(|(summary, _)| summary)
        };
        let import = target.import_tenant(reader, ImportOptions::new().status(status));
        match tokio::join!(export, import) {
            (Ok(export), Ok(import)) => Ok((export, import)),
            (Ok(_) | Err(Error::TransferIo { .. }), Err(err)) | (Err(err), _) => Err(err),
        }
    }

    /// The tenant's row in this fleet's registry, if any.
    async fn record_there(&self, id: &TenantId) -> Result<Option<TenantRecord>, Error> {
        let row = self
            .conn
            .query_one_raw(statement(
                format!(
                    "SELECT {RECORD_COLUMNS} FROM {} WHERE tenant_id = $1",
                    self.config.registry().qualified_table()
                ),
                vec![id.as_str().into()],
            ))
            .await
            .map_err(move_err("reading the target's registry"))?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// A resumed move found the tenant there: it must hold the same tables
    /// with the same row counts as here (where it is suspended) before
    /// anything is dropped.
    async fn check_same(
        &self,
        id: &TenantId,
        schema: &SchemaName,
        target: &TenantFleet<M>,
        placement: &str,
    ) -> Result<(), Error> {
        let here = fingerprint(&self.conn, schema).await?;
        let there_schema = target.config.naming().schema_for(id)?;
        let there = fingerprint(&target.conn, &there_schema).await?;
        if here == there {
            return Ok(());
        }
        Err(Error::MoveConflict {
            tenant: id.clone(),
            placement: placement.to_owned(),
            reason: format!(
                "its tables and row counts differ (here: {}; there: {})",
                here.join(", "),
                there.join(", ")
            ),
        })
    }

    /// Step 3: drops the schema here and records the placement (and the
    /// `moved` audit row, in the same transaction). Returns the row as it
    /// now stands.
    async fn finish_move(
        &self,
        id: &TenantId,
        placement: &str,
        status: TenantStatus,
    ) -> Result<TenantRecord, Error> {
        let txn = self.lock_row(id).await?;
        let row = self.read_move_row(&txn, id).await?;
        if row.moving_to.as_deref() != Some(placement) {
            // Cancelled (or moved elsewhere) meanwhile: drop nothing.
            return Err(Error::MoveConflict {
                tenant: id.clone(),
                placement: placement.to_owned(),
                reason: "its move was cancelled or changed while it ran; nothing was dropped \
                         here, and the copy there is kept"
                    .to_owned(),
            });
        }
        let schema = row.record.schema.clone();
        self.refuse_shared(id, &schema)?;
        txn.execute_unprepared(&format!(
            "SELECT pg_advisory_xact_lock({}); DROP SCHEMA {} CASCADE",
            AdvisoryLock::TenantMigration.key(&schema),
            schema.quoted()
        ))
        .await
        .map_err(move_err("dropping the schema moved away"))?;
        txn.execute_raw(statement(
            format!(
                "UPDATE {} SET placement = $2, status = $3, moving_to = NULL, \
                 status_before_move = NULL, updated_at = now() WHERE tenant_id = $1",
                self.config.registry().qualified_table()
            ),
            vec![id.as_str().into(), placement.into(), status.as_str().into()],
        ))
        .await
        .map_err(move_err("recording the placement"))?;
        let detail = json!({ "schema": schema.as_str(), "placement": placement });
        self.audit_in(&txn, LifecycleAction::Moved, id, detail)
            .await?;
        notify(&txn, id).await?;
        txn.commit()
            .await
            .map_err(move_err("recording the placement"))?;
        self.registry.invalidate(id);
        let mut record = row.record;
        record.status = status;
        Ok(record)
    }

    /// A `READ COMMITTED` transaction holding the tenant's row lock.
    async fn lock_row(&self, id: &TenantId) -> Result<DatabaseTransaction, Error> {
        let txn = begin_read_committed(&self.conn, None)
            .await
            .map_err(move_err("starting a transaction"))?;
        txn.execute_raw(statement(
            format!(
                "SELECT 1 FROM {} WHERE tenant_id = $1 FOR UPDATE",
                self.config.registry().qualified_table()
            ),
            vec![id.as_str().into()],
        ))
        .await
        .map_err(move_err("locking the tenant's row"))?;
        Ok(txn)
    }

    async fn read_move_row(
        &self,
        txn: &DatabaseTransaction,
        id: &TenantId,
    ) -> Result<MoveRow, Error> {
        let row = txn
            .query_one_raw(statement(
                format!(
                    "SELECT {RECORD_COLUMNS}, placement, moving_to, status_before_move \
                     FROM {} WHERE tenant_id = $1",
                    self.config.registry().qualified_table()
                ),
                vec![id.as_str().into()],
            ))
            .await
            .map_err(move_err("reading the tenant's row"))?
            .ok_or_else(|| Error::UnknownTenant { tenant: id.clone() })?;
        move_row(&row)
    }
}

fn move_row(row: &QueryResult) -> Result<MoveRow, Error> {
    let text = |column: &str| {
        row.try_get::<Option<String>>("", column)
            .map_err(move_err("reading the tenant's row"))
    };
    let status_before_move = match text("status_before_move")? {
        Some(status) => Some(
            status
                .parse()
                .map_err(|e: tenancy_core::Error| Error::Database {
                    action: "reading the status a move restores",
                    source: sea_orm::DbErr::Custom(e.to_string()),
                })?,
        ),
        None => None,
    };
    Ok(MoveRow {
        record: record_from_row(row)?,
        placement: text("placement")?,
        moving_to: text("moving_to")?,
        status_before_move,
    })
}

/// Each table of the schema with its row count, in name order.
async fn fingerprint(
    conn: &sea_orm::DatabaseConnection,
    schema: &SchemaName,
) -> Result<Vec<String>, Error> {
    let err = move_err("comparing the two copies");
    let tables: Vec<String> = conn
        .query_all_raw(statement(
            "SELECT quote_ident(c.relname) AS t FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY c.relname COLLATE \"C\""
                .to_owned(),
            vec![schema.as_str().into()],
        ))
        .await
        .map_err(&err)?
        .iter()
        .map(|row| row.try_get::<String>("", "t"))
        .collect::<Result<_, _>>()
        .map_err(&err)?;
    let mut counts = Vec::with_capacity(tables.len());
    for table in tables {
        // `table` was quoted by the server (`quote_ident`).
        let row = conn
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                format!("SELECT count(*) AS n FROM {}.{table}", schema.quoted()),
            ))
            .await
            .map_err(&err)?;
        let n: i64 = row.map_or(Ok(0), |r| r.try_get("", "n")).map_err(&err)?;
        counts.push(format!("{table}={n}"));
    }
    Ok(counts)
}

/// Announces the row's change with the commit, as every lifecycle call does.
async fn notify(txn: &DatabaseTransaction, id: &TenantId) -> Result<(), Error> {
    sql::notify(txn, id)
        .await
        .map_err(move_err("announcing the change"))
}

fn move_err(action: &'static str) -> impl Fn(sea_orm::DbErr) -> Error {
    move |source| Error::Database { action, source }
}
