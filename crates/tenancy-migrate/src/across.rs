//! Reading across tenants: one select, written for one tenant with
//! unqualified table names, run over many tenants as chunked `UNION ALL`
//! queries with a `tenant_id` column, streamed, in read-only transactions
//! that share one snapshot.

mod options;
mod qualify;
mod rows;

use std::collections::HashSet;

use sea_orm::sea_query::{Alias, Asterisk, Expr, Query, SelectStatement, UnionType};
use sea_orm::{DbBackend, Statement};
use sea_orm_migration::MigratorTrait;
use tenancy_core::{SchemaName, TenantId, TenantStatus};

use crate::{Error, SchemaState, TenantFleet};
pub use options::{CrossTenantRead, CrossTenantRows, ReadAcross, SkipReason, SkippedTenant};
use qualify::{Qualifier, branch_alias};

impl<M: MigratorTrait> TenantFleet<M> {
    /// Runs `select`, written for one tenant with unqualified table names,
    /// over every active tenant (or those [`ReadAcross`] picks), and
    /// streams the rows, each with its tenant's id in a `tenant_id` column.
    ///
    /// How: the tenants come from one read of every ledger (as
    /// [`fleet_status`](Self::fleet_status) does); each chunk of
    /// [`ReadAcross::chunk_size`] tenants is one `UNION ALL` query whose
    /// branches are `select` with its tables qualified by the tenant's
    /// schema (through the one quoting function) and the tenant id a bound
    /// value. The chunks run in `REPEATABLE READ READ ONLY` transactions on
    /// up to [`ReadAcross::connections`] pooled connections (the fleet's
    /// concurrency by default) that share one exported snapshot, so every
    /// chunk sees the same committed state; their search path is the shared
    /// schemas only: a table name that escaped qualification could not
    /// resolve to any tenant's table. A `LIMIT` or `ORDER BY` in
    /// `select` applies per tenant, as if each tenant were queried alone;
    /// order across tenants is not defined (sort in the consumer, or
    /// aggregate in SQL per tenant).
    ///
    /// A SeaORM `Select<E>` gives its statement with
    /// `QueryTrait::into_query()`; rows decode with
    /// `E::Model::from_query_result(&row, "")` (the extra column is
    /// ignored).
    ///
    /// Tables qualified with a shared schema (a join to a shared table)
    /// are left as they are.
    ///
    /// # Errors
    /// - [`Error::UnsupportedRead`], before anything runs, for a select
    ///   that cannot be qualified safely: a `WITH`, a data-modifying
    ///   subquery, a table in a schema that is not shared, raw SQL that may
    ///   hold a query; or an unknown required migration;
    /// - [`Error::Database`] when the registry or the ledgers cannot be
    ///   read; in the stream, when a chunk fails (a tenant dropped since the
    ///   ledgers were read, a column missing from one tenant's table).
    ///
    /// ```
    /// use futures_util::TryStreamExt;
    /// use sea_orm::sea_query::{Alias, Expr, Query};
    /// use sea_orm_migration::prelude::*;
    /// use tenancy::migrate::{NewTenant, ReadAcross, TenantFleet};
    ///
    /// struct CreateProjects;
    /// impl MigrationName for CreateProjects {
    ///     fn name(&self) -> &str { "m0001_create_projects" }
    /// }
    /// #[async_trait::async_trait]
    /// impl MigrationTrait for CreateProjects {
    ///     async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
    ///         manager.get_connection().execute_unprepared(
    ///             "CREATE TABLE projects (id serial PRIMARY KEY, name text NOT NULL); \
    ///              INSERT INTO projects (name) VALUES ('Rocket'), ('Sled')",
    ///         ).await.map(drop)
    ///     }
    /// }
    /// struct TenantMigrator;
    /// impl MigratorTrait for TenantMigrator {
    ///     fn migrations() -> Vec<Box<dyn MigrationTrait>> { vec![Box::new(CreateProjects)] }
    /// }
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let test_db = tenancy_testing::TestDatabase::create().await?;
    /// # let conn = test_db.connect().await?;
    /// let fleet = TenantFleet::<TenantMigrator>::new(conn.clone());
    /// fleet.install().await?;
    /// fleet.create(&"acme".parse()?, NewTenant::new()).await?;
    /// fleet.create(&"globex".parse()?, NewTenant::new()).await?;
    ///
    /// // Written for one tenant: `projects` is unqualified.
    /// let select = Query::select()
    ///     .expr_as(Expr::col(Alias::new("name")).count(), Alias::new("projects"))
    ///     .from(Alias::new("projects"))
    ///     .to_owned();
    /// let read = fleet.read_across(select, ReadAcross::new().requires("m0001_create_projects")).await?;
    /// assert!(read.skipped.is_empty());
    /// let mut counts: Vec<(String, i64)> = read
    ///     .rows
    ///     .map_ok(|row| (row.try_get("", "tenant_id").unwrap(), row.try_get("", "projects").unwrap()))
    ///     .try_collect()
    ///     .await?;
    /// counts.sort();
    /// assert_eq!(counts, [("acme".to_owned(), 2), ("globex".to_owned(), 2)]);
    /// # conn.close().await?;
    /// # test_db.close().await?;
    /// # Ok(()) }
    /// ```
    pub async fn read_across(
        &self,
        select: SelectStatement,
        options: ReadAcross,
    ) -> Result<CrossTenantRead, Error> {
        if let Some(required) = &options.requires
            && !M::migrations().iter().any(|m| m.name() == required)
        {
            return Err(Error::UnsupportedRead {
                reason: format!("the required migration {required} is not one of this migrator's"),
            });
        }
        let shared = self.shared_names();
        // Refuse before reading anything: render once for a placeholder.
        let probe = SchemaName::new("tenancy_probe")?;
        chunk_statement(&select, &options, &[(probe, "probe")], &shared)?;

        let status = self.fleet_status().await?;
        let wanted: Option<HashSet<&TenantId>> = options.only.as_ref().map(|o| o.iter().collect());
        let mut tenants = Vec::new();
        let mut skipped = Vec::new();
        for tenant in &status.tenants {
            if wanted.as_ref().is_some_and(|w| !w.contains(&tenant.tenant)) {
                continue;
            }
            let reason = match (tenant.status, &tenant.state) {
                (TenantStatus::Active, _) => None,
                (TenantStatus::Suspended | TenantStatus::Provisioning, _)
                    if options.include_inactive =>
                {
                    None
                }
                (status, _) => Some(SkipReason::Inactive(status)),
            }
            .or(match tenant.state {
                SchemaState::MissingSchema => Some(SkipReason::SchemaMissing),
                _ => None,
            })
            .or(options
                .requires
                .as_ref()
                .filter(|required| !tenant.applied.contains(required))
                .map(|required| SkipReason::MigrationMissing(required.clone())));
            match reason {
                None => tenants.push((tenant.tenant.clone(), tenant.schema.clone())),
                Some(reason) => skipped.push(SkippedTenant {
                    tenant: tenant.tenant.clone(),
                    reason,
                }),
            }
        }
        if let Some(only) = &options.only {
            let registered: HashSet<&TenantId> = status.tenants.iter().map(|t| &t.tenant).collect();
            for tenant in only.iter().filter(|t| !registered.contains(t)) {
                skipped.push(SkippedTenant {
                    tenant: tenant.clone(),
                    reason: SkipReason::NotRegistered,
                });
            }
            skipped.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        }
        for skip in &skipped {
            tracing::debug!(tenant = %skip.tenant, reason = %skip.reason, "left out of a cross-tenant read");
        }

        let statements = tenants
            .chunks(options.chunk_size)
            .map(|chunk| {
                let branches: Vec<(SchemaName, &str)> = chunk
                    .iter()
                    .map(|(id, schema)| (schema.clone(), id.as_str()))
                    .collect();
                chunk_statement(&select, &options, &branches, &shared)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let connections = options
            .connections
            .unwrap_or_else(|| self.config.concurrency());
        let rows = rows::stream_chunks(
            self.conn.clone(),
            self.shared_path(),
            statements,
            connections,
        );
        Ok(CrossTenantRead {
            tenants: tenants.into_iter().map(|(id, _)| id).collect(),
            skipped,
            corrupt: status.corrupt,
            rows,
        })
    }

    /// The schemas a select may name explicitly: the shared ones and the
    /// registry's.
    fn shared_names(&self) -> Vec<String> {
        std::iter::once(self.config.registry().schema())
            .chain(self.config.shared_schemas())
            .map(|s| s.as_str().to_owned())
            .collect()
    }

    /// The reading transaction's search path: the shared schemas only.
    fn shared_path(&self) -> String {
        tenancy_core::SearchPath::set_local_shared_only_statement(self.config.shared_schemas())
    }
}

/// One chunk's `UNION ALL`: per tenant, `SELECT * FROM (<select, tenant id
/// appended>) AS tenancy_branch_<i>`, qualified by the tenant's schema.
fn chunk_statement(
    select: &SelectStatement,
    options: &ReadAcross,
    branches: &[(SchemaName, &str)],
    shared: &[String],
) -> Result<Statement, Error> {
    let wrap = |index: usize, tenant: &str| {
        let mut branch = select.clone();
        branch.expr_as(
            Expr::val(tenant),
            Alias::new(options.tenant_column.as_str()),
        );
        Query::select()
            .column(Asterisk)
            .from_subquery(branch, Alias::new(branch_alias(index)))
            .to_owned()
    };
    let mut branches_iter = branches.iter().enumerate();
    let Some((_, (_, first))) = branches_iter.next() else {
        return Err(Error::UnsupportedRead {
            reason: "no tenant to read".to_owned(),
        });
    };
    let mut query = wrap(0, first);
    for (index, (_, tenant)) in branches_iter {
        query.union(UnionType::All, wrap(index, tenant));
    }
    let schemas: Vec<SchemaName> = branches.iter().map(|(s, _)| s.clone()).collect();
    let qualifier = Qualifier::new(&schemas, shared);
    let (sql, values) = query.build_any(&qualifier);
    if let Some(reason) = qualifier.refusal() {
        return Err(Error::UnsupportedRead { reason });
    }
    Ok(Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        values,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use sea_orm::sea_query::{ExprTrait, JoinType};

    use super::*;

    fn shared() -> Vec<String> {
        vec!["public".to_owned()]
    }

    #[test]
    fn each_branch_reads_its_own_schema_and_shared_tables_are_left_alone() {
        let (projects, owners) = (Alias::new("projects"), Alias::new("owners"));
        let select = Query::select()
            .column((projects.clone(), Alias::new("name")))
            .from(projects.clone())
            .join(
                JoinType::InnerJoin,
                (Alias::new("public"), owners.clone()),
                Expr::col((owners, Alias::new("id"))).equals((projects, Alias::new("owner_id"))),
            )
            .and_where(
                Expr::col(Alias::new("id")).in_subquery(
                    Query::select()
                        .column(Alias::new("project_id"))
                        .from(Alias::new("tasks"))
                        .to_owned(),
                ),
            )
            .to_owned();
        let a = SchemaName::new("tenant_a").unwrap();
        let b = SchemaName::new("tenant_b_x").unwrap();
        let statement = chunk_statement(
            &select,
            &ReadAcross::new(),
            &[(a, "a"), (b, "b-x")],
            &shared(),
        )
        .unwrap();
        assert_eq!(
            statement.sql,
            r#"SELECT * FROM (SELECT "projects"."name", $1 AS "tenant_id" FROM "tenant_a"."projects" INNER JOIN "public"."owners" ON "owners"."id" = "projects"."owner_id" WHERE "id" IN (SELECT "project_id" FROM "tenant_a"."tasks")) AS "tenancy_branch_0" UNION ALL (SELECT * FROM (SELECT "projects"."name", $2 AS "tenant_id" FROM "tenant_b_x"."projects" INNER JOIN "public"."owners" ON "owners"."id" = "projects"."owner_id" WHERE "id" IN (SELECT "project_id" FROM "tenant_b_x"."tasks")) AS "tenancy_branch_1")"#
        );
        let values = statement.values.unwrap().0;
        assert_eq!(values, ["a".into(), "b-x".into()]);
    }

    #[test]
    fn a_table_in_an_unshared_schema_is_refused() {
        let select = Query::select()
            .column(Asterisk)
            .from((Alias::new("tenant_other"), Alias::new("projects")))
            .to_owned();
        let probe = SchemaName::new("tenant_a").unwrap();
        let refused = chunk_statement(&select, &ReadAcross::new(), &[(probe, "a")], &shared());
        assert!(
            matches!(&refused, Err(Error::UnsupportedRead { reason }) if reason.contains("tenant_other")),
            "{refused:?}"
        );
    }
}
