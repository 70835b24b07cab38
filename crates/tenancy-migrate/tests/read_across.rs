#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Reading across tenants against a real PostgreSQL server, over 1,000
//! tenants: the rows equal the union of the same select run in each
//! tenant's own scoped transaction, with the right tenant id on each row;
//! tenants behind, suspended or without a schema are skipped and reported;
//! a SeaORM entity select works; selects that cannot be qualified safely
//! are refused before anything runs.

use std::collections::BTreeMap;
use std::error::Error as StdError;

use futures_util::{StreamExt, TryStreamExt, stream};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{
    Alias, Asterisk, CommonTableExpression, Expr, ExprTrait, JoinType, Order, PostgresQueryBuilder,
    Query, SelectStatement, WithClause,
};
use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, QueryOrder, QueryTrait, Statement};
use sea_orm_migration::async_trait::async_trait;
use sea_orm_migration::{MigrationName, MigrationTrait, MigratorTrait, SchemaManager};
use tenancy_core::{TenantId, TenantStatus};
use tenancy_migrate::{Error, NewTenant, ReadAcross, SkipReason, TenantFleet};
use tenancy_sea_orm::TenantDb;
use tenancy_testing::TestDatabase;

type TestResult = Result<(), Box<dyn StdError>>;

macro_rules! sql_migration {
    ($ty:ident, $name:literal, $up:literal) => {
        struct $ty;

        impl MigrationName for $ty {
            fn name(&self) -> &str {
                $name
            }
        }

        #[allow(elided_lifetimes_in_paths)]
        #[async_trait]
        impl MigrationTrait for $ty {
            async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                manager
                    .get_connection()
                    .execute_unprepared($up)
                    .await
                    .map(drop)
            }
        }
    };
}

sql_migration!(
    CreateProjects,
    "m0001_create_projects",
    "CREATE TABLE projects (id serial PRIMARY KEY, name text NOT NULL, owner_id int NOT NULL)"
);
sql_migration!(
    CreateTasks,
    "m0002_create_tasks",
    "CREATE TABLE tasks (id serial PRIMARY KEY, \
     project_id int NOT NULL REFERENCES projects (id), title text NOT NULL)"
);

struct V1;

impl MigratorTrait for V1 {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateProjects)]
    }
}

struct V2;

impl MigratorTrait for V2 {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateProjects), Box::new(CreateTasks)]
    }
}

/// The tenant table `projects`, as a SeaORM entity (unqualified: it is
/// read through each tenant's search path, or qualified by `read_across`).
// The derives need public items in a module of the test crate.
#[allow(unreachable_pub)]
mod project {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "projects")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub name: String,
        pub owner_id: i32,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

const TENANTS: usize = 1_000;
const BEHIND: usize = 10;
const SUSPENDED: usize = 5;

fn tenant(i: usize) -> TenantId {
    TenantId::new(&format!("t{i:04}")).unwrap()
}

/// A fleet of `TENANTS` tenants: the first `BEHIND` only at V1, the next
/// `SUSPENDED` suspended, one more with its schema dropped by hand; each
/// with its own number of projects and tasks, and a shared `owners` table.
async fn fleet_of_1000(db: &TestDatabase) -> Result<TenantFleet<V2>, Box<dyn StdError>> {
    let conn = db.connect().await?;
    let fleet = TenantFleet::<V2>::new(conn.clone());
    fleet.install().await?;
    let v1 = TenantFleet::<V1>::new(conn.clone());
    let created: Vec<Result<_, Error>> = stream::iter(0..TENANTS)
        .map(|i| {
            let (fleet, v1) = (fleet.clone(), v1.clone());
            async move {
                if i < BEHIND {
                    v1.create(&tenant(i), NewTenant::new()).await
                } else {
                    fleet.create(&tenant(i), NewTenant::new()).await
                }
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    for result in created {
        result?;
    }
    for i in BEHIND..BEHIND + SUSPENDED {
        fleet.suspend(&tenant(i)).await?;
    }
    // Data that differs per tenant: 0-7 projects, a task for every other.
    conn.execute_unprepared(
        "CREATE TABLE public.owners (id int PRIMARY KEY, name text NOT NULL);
         INSERT INTO public.owners VALUES (0, 'zero'), (1, 'one'), (2, 'two');
         DO $$
         DECLARE s text;
         BEGIN
             FOR s IN SELECT schema_name FROM public.tenants LOOP
                 EXECUTE format(
                     'INSERT INTO %I.projects (name, owner_id)
                      SELECT %L || ''-p'' || g, g %% 3
                      FROM generate_series(1, (hashtext(%L) & 7)) g', s, s, s);
                 IF to_regclass(format('%I.tasks', s)) IS NOT NULL THEN
                     EXECUTE format(
                         'INSERT INTO %I.tasks (project_id, title)
                          SELECT id, ''task of '' || name FROM %I.projects WHERE id %% 2 = 0',
                         s, s);
                 END IF;
             END LOOP;
         END $$;",
    )
    .await?;
    let gone = TENANTS - 1;
    conn.execute_unprepared(&format!("DROP SCHEMA tenant_t{gone:04} CASCADE"))
        .await?;
    Ok(fleet)
}

/// Rows as comparable text: the columns named, in order, joined by `|`.
fn row_text(row: &sea_orm::QueryResult, columns: &[&str]) -> String {
    columns
        .iter()
        .map(|c| {
            row.try_get::<Option<String>>("", c)
                .map(|v| v.unwrap_or_else(|| "NULL".into()))
                .or_else(|_| row.try_get::<Option<i64>>("", c).map(|v| format!("{v:?}")))
                .or_else(|_| row.try_get::<Option<i32>>("", c).map(|v| format!("{v:?}")))
                .unwrap()
        })
        .collect::<Vec<_>>()
        .join("|")
}

/// The same select in each tenant's own scoped transaction (the baseline),
/// as `tenant|columns` rows, sorted.
async fn per_tenant(
    db: &TenantDb,
    tenants: &[TenantId],
    select: &SelectStatement,
    columns: &[&str],
) -> Result<Vec<String>, Box<dyn StdError>> {
    let (sql, values) = select.build(PostgresQueryBuilder);
    let mut rows = Vec::new();
    for id in tenants {
        let txn = db.begin_registered(id).await?;
        for row in txn
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                sql.clone(),
                values.clone(),
            ))
            .await?
        {
            rows.push(format!("{id}|{}", row_text(&row, columns)));
        }
        txn.commit().await?;
    }
    rows.sort();
    Ok(rows)
}

/// Tenant tables joined, a shared table joined by its schema, a subquery in
/// the WHERE (qualified too), and a LIMIT that applies per tenant.
fn rich_select() -> SelectStatement {
    let (projects, tasks, owners) = (
        Alias::new("projects"),
        Alias::new("tasks"),
        Alias::new("owners"),
    );
    Query::select()
        .expr_as(
            Expr::col((projects.clone(), Alias::new("name"))),
            Alias::new("project"),
        )
        .expr_as(
            Expr::col((tasks.clone(), Alias::new("title"))),
            Alias::new("task"),
        )
        .expr_as(
            Expr::col((owners.clone(), Alias::new("name"))),
            Alias::new("owner"),
        )
        .from(projects.clone())
        .join(
            JoinType::LeftJoin,
            tasks.clone(),
            Expr::col((tasks, Alias::new("project_id")))
                .equals((projects.clone(), Alias::new("id"))),
        )
        .join(
            JoinType::InnerJoin,
            (Alias::new("public"), owners.clone()),
            Expr::col((owners, Alias::new("id")))
                .equals((projects.clone(), Alias::new("owner_id"))),
        )
        .and_where(
            Expr::col((projects.clone(), Alias::new("id"))).in_subquery(
                Query::select()
                    .column(Alias::new("id"))
                    .from(projects.clone())
                    .and_where(Expr::col(Alias::new("owner_id")).ne(2))
                    .to_owned(),
            ),
        )
        .order_by((projects, Alias::new("id")), Order::Asc)
        .limit(4)
        .to_owned()
}

#[tokio::test]
async fn a_read_across_1000_tenants_equals_the_union_of_per_tenant_reads() -> TestResult {
    let db = TestDatabase::create().await?;
    let fleet = fleet_of_1000(&db).await?;
    let app = TenantDb::new(fleet.connection().clone())?;

    let select = rich_select();
    let read = fleet
        .read_across(
            select.clone(),
            ReadAcross::new().requires("m0002_create_tasks"),
        )
        .await?;

    // Skipped and reported, not errors.
    let mut skips: BTreeMap<String, SkipReason> = BTreeMap::new();
    for skip in &read.skipped {
        skips.insert(skip.tenant.to_string(), skip.reason.clone());
    }
    for i in 0..BEHIND {
        assert_eq!(
            skips.get(tenant(i).as_str()),
            Some(&SkipReason::MigrationMissing("m0002_create_tasks".into()))
        );
    }
    for i in BEHIND..BEHIND + SUSPENDED {
        assert_eq!(
            skips.get(tenant(i).as_str()),
            Some(&SkipReason::Inactive(TenantStatus::Suspended))
        );
    }
    assert_eq!(
        skips.get(tenant(TENANTS - 1).as_str()),
        Some(&SkipReason::SchemaMissing)
    );
    assert_eq!(skips.len(), BEHIND + SUSPENDED + 1, "{skips:?}");
    let included = TENANTS - BEHIND - SUSPENDED - 1;
    assert_eq!(read.tenants.len(), included);

    let columns = ["project", "task", "owner"];
    let mut across: Vec<String> = read
        .rows
        .map_ok(|row| {
            let tenant: String = row.try_get("", "tenant_id").unwrap();
            format!("{tenant}|{}", row_text(&row, &columns))
        })
        .try_collect()
        .await?;
    across.sort();
    let baseline = per_tenant(&app, &read.tenants, &select, &columns).await?;
    assert!(
        baseline.len() > 1_000,
        "too little data: {}",
        baseline.len()
    );
    assert_eq!(across.len(), baseline.len());
    assert_eq!(across, baseline);
    // Each row's tenant id is its own tenant's: project names carry the
    // schema they were written in.
    for row in &across {
        let (tenant, rest) = row.split_once('|').unwrap();
        assert!(rest.starts_with(&format!("tenant_{tenant}-p")), "{row}");
    }

    // Without a required migration the tenants behind are read too (their
    // projects exist), and a filter keeps only the tenants named.
    let names = Query::select()
        .column(Alias::new("name"))
        .from(Alias::new("projects"))
        .to_owned();
    let only = [tenant(0), tenant(20), tenant(BEHIND), "nobody".parse()?];
    let read = fleet
        .read_across(
            names.clone(),
            ReadAcross::new().only(only.clone()).chunk_size(1),
        )
        .await?;
    assert_eq!(read.tenants, [tenant(0), tenant(20)]);
    assert_eq!(read.skipped.len(), 2, "{:?}", read.skipped);
    assert_eq!(read.skipped[0].tenant.as_str(), "nobody");
    assert_eq!(read.skipped[0].reason, SkipReason::NotRegistered);
    assert_eq!(read.skipped[1].tenant, tenant(BEHIND));
    let mut rows: Vec<String> = read
        .rows
        .map_ok(|row| {
            format!(
                "{}|{}",
                row.try_get::<String>("", "tenant_id").unwrap(),
                row_text(&row, &["name"])
            )
        })
        .try_collect()
        .await?;
    rows.sort();
    assert_eq!(
        rows,
        per_tenant(&app, &[tenant(0), tenant(20)], &names, &["name"]).await?
    );
    // Suspended tenants on request.
    let read = fleet
        .read_across(
            names,
            ReadAcross::new()
                .only([tenant(BEHIND)])
                .include_inactive(true),
        )
        .await?;
    assert_eq!(read.tenants, [tenant(BEHIND)]);

    fleet.connection().clone().close().await?;
    db.close().await?;
    Ok(())
}

#[tokio::test]
async fn a_seaorm_entity_select_reads_across_tenants() -> TestResult {
    let db = TestDatabase::create().await?;
    let conn = db.connect().await?;
    let fleet = TenantFleet::<V2>::new(conn.clone());
    fleet.install().await?;
    let app = TenantDb::new(conn.clone())?;
    let ids: Vec<TenantId> = (0..30).map(tenant).collect();
    for (n, id) in ids.iter().enumerate() {
        fleet.create(id, NewTenant::new()).await?;
        let txn = app.begin_registered(id).await?;
        for p in 0..n % 5 {
            project::ActiveModel {
                name: sea_orm::Set(format!("{id}-{p}")),
                owner_id: sea_orm::Set(i32::try_from(p % 2)?),
                ..Default::default()
            }
            .insert(&txn)
            .await?;
        }
        txn.commit().await?;
    }

    let find = project::Entity::find()
        .filter(project::Column::OwnerId.eq(1))
        .order_by_asc(project::Column::Id);
    let read = fleet
        .read_across(find.clone().into_query(), ReadAcross::new().chunk_size(7))
        .await?;
    let mut across: Vec<(String, project::Model)> = read
        .rows
        .map_ok(|row| {
            (
                row.try_get("", "tenant_id").unwrap(),
                project::Model::from_query_result(&row, "").unwrap(),
            )
        })
        .try_collect()
        .await?;
    across.sort_by(|a, b| (&a.0, a.1.id).cmp(&(&b.0, b.1.id)));
    let mut baseline = Vec::new();
    for id in &ids {
        let txn = app.begin_registered(id).await?;
        for model in find.clone().all(&txn).await? {
            baseline.push((id.to_string(), model));
        }
        txn.commit().await?;
    }
    assert!(!baseline.is_empty());
    assert_eq!(across, baseline);

    conn.close().await?;
    db.close().await?;
    Ok(())
}

#[tokio::test]
async fn selects_that_cannot_be_qualified_are_refused_before_running() -> TestResult {
    let db = TestDatabase::create().await?;
    let conn = db.connect().await?;
    let fleet = TenantFleet::<V2>::new(conn.clone());
    fleet.install().await?;
    fleet.create(&tenant(1), NewTenant::new()).await?;
    let projects = || Alias::new("projects");

    let refused = |result: Result<_, Error>| match result {
        Err(Error::UnsupportedRead { reason }) => reason,
        other => panic!("not refused: {other:?}"),
    };
    // A table in another tenant's schema.
    let reason = refused(
        fleet
            .read_across(
                Query::select()
                    .column(Asterisk)
                    .from((Alias::new("tenant_t0001"), projects()))
                    .to_owned(),
                ReadAcross::new(),
            )
            .await,
    );
    assert!(reason.contains("tenant_t0001"), "{reason}");
    // A common table expression.
    let cte = CommonTableExpression::new()
        .query(Query::select().column(Asterisk).from(projects()).to_owned())
        .table_name(Alias::new("recent"))
        .to_owned();
    let with = Query::select()
        .column(Asterisk)
        .from(Alias::new("recent"))
        .with_cte(WithClause::new().cte(cte).to_owned())
        .to_owned();
    let reason = refused(fleet.read_across(with, ReadAcross::new()).await);
    assert!(reason.contains("WITH"), "{reason}");
    // Raw SQL holding a query.
    let raw = Query::select()
        .expr(Expr::cust("(SELECT count(*) FROM projects)"))
        .from(projects())
        .to_owned();
    refused(fleet.read_across(raw, ReadAcross::new()).await);
    // An unknown required migration.
    let reason = refused(
        fleet
            .read_across(
                Query::select().column(Asterisk).from(projects()).to_owned(),
                ReadAcross::new().requires("m9999_nothing"),
            )
            .await,
    );
    assert!(reason.contains("m9999_nothing"), "{reason}");
    // The second line of defence: the reading transaction's search path
    // holds the shared schemas only, so a name the library did not qualify
    // could not resolve to a tenant's table; and it is read-only.
    let mut settings = Query::select()
        .expr_as(
            Expr::cust("current_setting('search_path')"),
            Alias::new("path"),
        )
        .expr_as(
            Expr::cust("current_setting('transaction_read_only')"),
            Alias::new("read_only"),
        )
        .expr_as(
            Expr::cust("current_setting('transaction_isolation')"),
            Alias::new("isolation"),
        )
        .from(projects())
        .to_owned();
    // One row per tenant: count over an empty table would give none.
    let settings = Query::select()
        .expr_as(Expr::cust("max(path)"), Alias::new("path"))
        .expr_as(Expr::cust("max(read_only)"), Alias::new("read_only"))
        .expr_as(Expr::cust("max(isolation)"), Alias::new("isolation"))
        .from_subquery(
            settings
                .union(
                    sea_orm::sea_query::UnionType::All,
                    Query::select()
                        .expr(Expr::cust("current_setting('search_path')"))
                        .expr(Expr::cust("current_setting('transaction_read_only')"))
                        .expr(Expr::cust("current_setting('transaction_isolation')"))
                        .to_owned(),
                )
                .to_owned(),
            Alias::new("s"),
        )
        .to_owned();
    let rows: Vec<sea_orm::QueryResult> = fleet
        .read_across(settings, ReadAcross::new())
        .await?
        .rows
        .try_collect()
        .await?;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].try_get::<String>("", "path")?, "public");
    assert_eq!(rows[0].try_get::<String>("", "read_only")?, "on");
    assert_eq!(
        rows[0].try_get::<String>("", "isolation")?,
        "repeatable read"
    );

    conn.close().await?;
    db.close().await?;
    Ok(())
}

#[tokio::test]
async fn every_chunk_reads_the_same_snapshot() -> TestResult {
    let db = TestDatabase::create().await?;
    let conn = db.connect().await?;
    let fleet = TenantFleet::<V1>::new(conn.clone());
    fleet.install().await?;
    let app = TenantDb::new(conn.clone())?;
    let ids: Vec<TenantId> = (0..3).map(tenant).collect();
    for id in &ids {
        fleet.create(id, NewTenant::new()).await?;
        let txn = app.begin_registered(id).await?;
        txn.execute_unprepared("INSERT INTO projects (name, owner_id) VALUES ('before', 0)")
            .await?;
        txn.commit().await?;
    }
    let names = Query::select()
        .column(Alias::new("name"))
        .from(Alias::new("projects"))
        .to_owned();
    // One tenant per chunk: three queries, in one transaction, then in
    // three that share its snapshot.
    for connections in [1, 3] {
        let mut rows = fleet
            .read_across(
                names.clone(),
                ReadAcross::new().chunk_size(1).connections(connections),
            )
            .await?
            .rows;
        let first = rows.try_next().await?.expect("a first row");
        if connections == 1 {
            assert_eq!(first.try_get::<String>("", "tenant_id")?, "t0000");
        }
        // Committed after the snapshot was taken, before the last chunks
        // have run (or at least before their rows were read).
        for id in &ids {
            let txn = app.begin_registered(id).await?;
            txn.execute_unprepared("INSERT INTO projects (name, owner_id) VALUES ('after', 0)")
                .await?;
            txn.commit().await?;
        }
        let mut names_read: Vec<String> = rows
            .map_ok(|row| row.try_get::<String>("", "name").unwrap())
            .try_collect()
            .await?;
        names_read.push(first.try_get("", "name")?);
        assert_eq!(
            names_read,
            ["before", "before", "before"],
            "{connections} connection(s): a chunk saw a later commit"
        );
        for id in &ids {
            let txn = app.begin_registered(id).await?;
            txn.execute_unprepared("DELETE FROM projects WHERE name = 'after'")
                .await?;
            txn.commit().await?;
        }
    }

    conn.close().await?;
    db.close().await?;
    Ok(())
}
