//! Permanent regression test of the library's one promise: inside a tenant's
//! scope, every way SeaORM has to read or write (entities, streams, raw
//! statements, `sea_query` statements, counts, bulk updates and deletes)
//! reaches that tenant's tables and nothing else: not another tenant's rows,
//! not the `public` table of the same name.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use std::collections::BTreeSet;

use common::{
    CANARY_TENANT, Route, TestResult, create_tenants, project, scalar, search_path, setup, stmt,
};
use futures_util::TryStreamExt as _;
use sea_orm::sea_query::{Expr, ExprTrait as _, Query};
use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, ConnectionTrait, DbBackend, EntityTrait as _,
    PaginatorTrait as _, QueryFilter as _, QueryOrder as _, Set, Statement,
};
use tenancy_core::{SchemaName, TenantScope as _};
use tenancy_sea_orm::TenantTransaction;

/// A's rows get serial ids 1..=3; B's rows explicit ids 1001..=1003, so a
/// primary key of B's can be looked up in A's scope unambiguously.
const B_IDS: [i32; 3] = [1001, 1002, 1003];

async fn insert_a(
    txn: &TenantTransaction,
    name: &str,
    code: i32,
) -> Result<project::Model, sea_orm::DbErr> {
    project::ActiveModel {
        tenant: Set("a".to_owned()),
        name: Set(name.to_owned()),
        code: Set(code),
        ..Default::default()
    }
    .insert(txn)
    .await
}

/// Every read of A's scope, each checked to return exactly A's rows.
async fn assert_reads_only(
    txn: &TenantTransaction,
    tenant: &str,
    expected_ids: &BTreeSet<i32>,
) -> TestResult {
    // Entity: all.
    let all = project::Entity::find().all(txn).await?;
    assert!(
        all.iter().all(|p| p.tenant == tenant),
        "all() leaked: {all:?}"
    );
    assert_eq!(
        all.iter().map(|p| p.id).collect::<BTreeSet<_>>(),
        *expected_ids
    );

    // Entity: one (each of the ordering ends).
    let first = project::Entity::find()
        .order_by_asc(project::Column::Id)
        .one(txn)
        .await?
        .unwrap();
    let last = project::Entity::find()
        .order_by_desc(project::Column::Id)
        .one(txn)
        .await?
        .unwrap();
    assert_eq!(first.tenant, tenant);
    assert_eq!(last.tenant, tenant);
    assert_eq!(Some(&first.id), expected_ids.first());
    assert_eq!(Some(&last.id), expected_ids.last());

    // Entity: find_by_id of each own id.
    for id in expected_ids {
        let found = project::Entity::find_by_id(*id).one(txn).await?.unwrap();
        assert_eq!(found.tenant, tenant);
    }

    // Entity: stream, collected (the stream borrows the transaction's connection
    // until it is dropped, at the end of this block).
    let streamed: Vec<project::Model> = {
        let stream = project::Entity::find().stream(txn).await?;
        stream.try_collect().await?
    };
    assert!(
        streamed.iter().all(|p| p.tenant == tenant),
        "stream leaked: {streamed:?}"
    );
    assert_eq!(
        streamed.iter().map(|p| p.id).collect::<BTreeSet<_>>(),
        *expected_ids
    );

    // Raw statement, unqualified table.
    let rows = txn
        .query_all_raw(stmt("SELECT id, tenant FROM projects ORDER BY id"))
        .await?;
    let mut raw_ids = BTreeSet::new();
    for row in &rows {
        assert_eq!(row.try_get::<String>("", "tenant")?, tenant);
        raw_ids.insert(row.try_get::<i32>("", "id")?);
    }
    assert_eq!(raw_ids, *expected_ids);

    // Raw statement with bound values (prepared, cached on the connection).
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM projects WHERE tenant <> $1",
            [tenant.into()],
        ))
        .await?
        .unwrap();
    assert_eq!(
        row.try_get::<i64>("", "n")?,
        0,
        "a row of another tenant is visible"
    );

    // sea_query statement.
    let select = Query::select()
        .columns([project::Column::Id, project::Column::Tenant])
        .from(project::Entity)
        .to_owned();
    let rows = txn.query_all(&select).await?;
    assert_eq!(rows.len(), expected_ids.len());
    for row in &rows {
        assert_eq!(row.try_get::<String>("", "tenant")?, tenant);
    }

    // Count.
    assert_eq!(
        project::Entity::find().count(txn).await?,
        expected_ids.len() as u64
    );

    // The public canary is never visible.
    let canary = project::Entity::find()
        .filter(project::Column::Tenant.eq(CANARY_TENANT))
        .all(txn)
        .await?;
    assert!(
        canary.is_empty(),
        "the public canary leaked into {tenant}'s scope"
    );
    assert!(
        project::Entity::find_by_id(424_242)
            .one(txn)
            .await?
            .is_none()
    );
    Ok(())
}

async fn tenant_scope_reads_and_writes_only_its_own_rows(route: Route) -> TestResult {
    let (test_db, conn) = setup(2).await?;
    let tenants = create_tenants(&conn, &["a", "b"]).await?;
    let (a, b) = (&tenants[0], &tenants[1]);
    // The library's pool goes by `route`; setup and checks use `conn`, direct.
    let Some(app) = route.connect("isolation", &test_db, 2).await? else {
        return common::finish(test_db, vec![conn]).await;
    };
    let db = route.tenant_db(&app);

    // Writes: A inserts with serial ids, B with explicit ids A does not have.
    let txn = db.begin(a).await?;
    assert_eq!(search_path(&txn).await?, "tenant_a, public");
    let mut a_ids = BTreeSet::new();
    for (name, code) in [("alpha", 7), ("beta", 8), ("gamma", 9)] {
        let model = insert_a(&txn, name, code).await?;
        assert_eq!(model.tenant, "a");
        a_ids.insert(model.id);
    }
    txn.commit().await?;
    assert_eq!(a_ids, BTreeSet::from([1, 2, 3]));

    let txn = db.begin(b).await?;
    for (id, (name, code)) in B_IDS
        .into_iter()
        .zip([("alpha", 7), ("beta", 8), ("gamma", 9)])
    {
        let model = project::ActiveModel {
            id: Set(id),
            tenant: Set("b".to_owned()),
            name: Set(name.to_owned()),
            code: Set(code),
        }
        .insert(&txn)
        .await?;
        assert_eq!(model.id, id);
    }
    txn.commit().await?;
    let b_ids: BTreeSet<i32> = B_IDS.into_iter().collect();

    // The writes landed in each tenant's schema, and not in public.
    assert_eq!(
        scalar::<i64, _>(
            &conn,
            r#"SELECT count(*) FROM "tenant_a".projects WHERE tenant = 'a'"#
        )
        .await?,
        3
    );
    assert_eq!(
        scalar::<i64, _>(&conn, r#"SELECT count(*) FROM "tenant_a".projects"#).await?,
        3
    );
    assert_eq!(
        scalar::<i64, _>(
            &conn,
            r#"SELECT count(*) FROM "tenant_b".projects WHERE tenant = 'b'"#
        )
        .await?,
        3
    );
    assert_eq!(
        scalar::<i64, _>(&conn, r#"SELECT count(*) FROM "tenant_b".projects"#).await?,
        3
    );
    assert_eq!(
        scalar::<i64, _>(&conn, "SELECT count(*) FROM public.projects").await?,
        1
    );

    // Reads: each scope sees exactly its rows, by every read path.
    let txn = db.begin(a).await?;
    assert_reads_only(&txn, "a", &a_ids).await?;
    // B's primary keys do not exist in A's scope.
    for id in B_IDS {
        assert!(
            project::Entity::find_by_id(id).one(&txn).await?.is_none(),
            "B's row {id} visible in A's scope"
        );
    }
    let by_b_ids = project::Entity::find()
        .filter(project::Column::Id.is_in(B_IDS))
        .count(&txn)
        .await?;
    assert_eq!(by_b_ids, 0);
    txn.commit().await?;

    let txn = db.begin(b).await?;
    assert_reads_only(&txn, "b", &b_ids).await?;
    for id in &a_ids {
        assert!(
            project::Entity::find_by_id(*id).one(&txn).await?.is_none(),
            "A's row {id} visible in B's scope"
        );
    }
    txn.commit().await?;

    // Bulk writes filtered by B's ids, in A's scope, touch nothing.
    let txn = db.begin(a).await?;
    let updated = project::Entity::update_many()
        .col_expr(project::Column::Name, Expr::value("hijacked"))
        .filter(project::Column::Id.is_in(B_IDS))
        .exec(&txn)
        .await?;
    assert_eq!(updated.rows_affected, 0);
    let deleted = project::Entity::delete_many()
        .filter(project::Column::Id.is_in(B_IDS))
        .exec(&txn)
        .await?;
    assert_eq!(deleted.rows_affected, 0);
    let deleted = project::Entity::delete_many()
        .filter(project::Column::Tenant.eq(CANARY_TENANT))
        .exec(&txn)
        .await?;
    assert_eq!(
        deleted.rows_affected, 0,
        "the public canary was deletable from A's scope"
    );
    // An unfiltered bulk update in A's scope touches A's rows only.
    let updated = project::Entity::update_many()
        .col_expr(
            project::Column::Code,
            Expr::col(project::Column::Code).add(100),
        )
        .exec(&txn)
        .await?;
    assert_eq!(updated.rows_affected, 3);
    txn.commit().await?;

    // B's rows and the canary are untouched.
    let txn = db.begin(b).await?;
    let b_rows = project::Entity::find()
        .order_by_asc(project::Column::Id)
        .all(&txn)
        .await?;
    assert_eq!(
        b_rows
            .iter()
            .map(|p| (p.id, p.name.as_str(), p.code))
            .collect::<Vec<_>>(),
        [(1001, "alpha", 7), (1002, "beta", 8), (1003, "gamma", 9)]
    );
    txn.commit().await?;
    let txn = db.begin(a).await?;
    let a_codes: Vec<i32> = project::Entity::find()
        .order_by_asc(project::Column::Id)
        .all(&txn)
        .await?
        .into_iter()
        .map(|p| p.code)
        .collect();
    assert_eq!(a_codes, [107, 108, 109]);
    txn.commit().await?;
    let canary = conn
        .query_one_raw(stmt("SELECT tenant, name, code FROM public.projects"))
        .await?
        .unwrap();
    assert_eq!(canary.try_get::<String>("", "tenant")?, CANARY_TENANT);
    assert_eq!(canary.try_get::<i32>("", "code")?, 1);

    // Unscoped, the same entity reads the public table: the canary alone.
    let unscoped = project::Entity::find().all(&conn).await?;
    assert_eq!(unscoped.len(), 1);
    assert_eq!(unscoped[0].tenant, CANARY_TENANT);

    drop(db);
    common::finish(test_db, vec![conn, app]).await
}

/// Two scopes open at the same time on two pooled connections, statements
/// interleaved: each keeps its own tenant.
async fn interleaved_scopes_stay_apart(route: Route) -> TestResult {
    let (test_db, conn) = setup(2).await?;
    let tenants = create_tenants(&conn, &["a", "b"]).await?;
    // The library's pool goes by `route`; setup and checks use `conn`, direct.
    let Some(app) = route.connect("isolation", &test_db, 2).await? else {
        return common::finish(test_db, vec![conn]).await;
    };
    let db = route.tenant_db(&app);

    let txn_a = db.begin(&tenants[0]).await?;
    let txn_b = db.begin(&tenants[1]).await?;
    for round in 0..5 {
        insert_a(&txn_a, &format!("a{round}"), round).await?;
        project::ActiveModel {
            tenant: Set("b".to_owned()),
            name: Set(format!("b{round}")),
            code: Set(round),
            ..Default::default()
        }
        .insert(&txn_b)
        .await?;
        let seen_a = project::Entity::find().all(&txn_a).await?;
        let seen_b = project::Entity::find().all(&txn_b).await?;
        assert!(seen_a.iter().all(|p| p.tenant == "a"));
        assert!(seen_b.iter().all(|p| p.tenant == "b"));
        assert_eq!(seen_a.len(), round as usize + 1);
        assert_eq!(seen_b.len(), round as usize + 1);
    }
    txn_a.commit().await?;
    txn_b.rollback().await?;

    // A committed, B rolled back.
    assert_eq!(
        scalar::<i64, _>(&conn, r#"SELECT count(*) FROM "tenant_a".projects"#).await?,
        5
    );
    assert_eq!(
        scalar::<i64, _>(&conn, r#"SELECT count(*) FROM "tenant_b".projects"#).await?,
        0
    );

    // A bare schema name is a scope too (no tenant id): same isolation.
    let schema = SchemaName::new("tenant_b")?;
    let txn = db.begin(&schema).await?;
    assert!(txn.scope().tenant.is_none());
    assert_eq!(project::Entity::find().count(&txn).await?, 0);
    txn.commit().await?;
    let txn = db.begin(tenants[0].schema()).await?;
    assert_eq!(project::Entity::find().count(&txn).await?, 5);
    txn.commit().await?;

    drop(db);
    common::finish(test_db, vec![conn, app]).await
}

both_routes!(
    #[tokio::test]
    tenant_scope_reads_and_writes_only_its_own_rows
);

both_routes!(
    #[tokio::test]
    interleaved_scopes_stay_apart
);
