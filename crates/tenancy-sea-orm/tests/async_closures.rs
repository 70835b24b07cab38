//! The closure forms take async closures that borrow from their caller, and
//! the futures they return can be spawned (they are `Send`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TestResult, create_tenants, insert_project as insert, setup};
use sea_orm::{ConnectionTrait as _, DbErr, TransactionError};
use tenancy_core::Tenant;
use tenancy_sea_orm::{TenantDb, TenantTransaction};

/// Names of the projects in `tenant`'s schema, read unscoped.
async fn names(conn: &sea_orm::DatabaseConnection, tenant: &Tenant) -> Result<Vec<String>, DbErr> {
    let schema = tenancy_core::TenantScope::schema(tenant).quoted();
    let rows = conn
        .query_all_raw(common::stmt(&format!(
            "SELECT name FROM {schema}.projects ORDER BY name"
        )))
        .await?;
    rows.iter().map(|r| r.try_get_by_index(0)).collect()
}

/// A helper a user would write: it borrows `name` for the whole transaction.
async fn add_project(db: &TenantDb, tenant: &Tenant, name: &str) -> Result<usize, DbErr> {
    db.transaction(tenant, async |txn| {
        insert(txn, tenant.id().as_str(), name).await?;
        Ok(name.len())
    })
    .await
}

/// An `async fn` taking the transaction works as a callback's body.
async fn add_two(txn: &TenantTransaction, tenant: &str, names: &[&str]) -> Result<(), DbErr> {
    for name in names {
        insert(txn, tenant, name).await?;
    }
    Ok(())
}

#[tokio::test]
async fn async_closures_borrow_from_the_caller_and_spawn() -> TestResult {
    let (test_db, conn) = setup(2).await?;
    let tenants = create_tenants(&conn, &["a", "b"]).await?;
    conn.execute_unprepared(
        "CREATE TABLE public.tenants (tenant_id text PRIMARY KEY, schema_name text NOT NULL, \
         status text NOT NULL, display_name text NOT NULL DEFAULT '', domain text UNIQUE); \
         INSERT INTO public.tenants VALUES ('b', 'tenant_b', 'active')",
    )
    .await?;
    let db = TenantDb::new(conn.clone())?;
    let (a, b) = (tenants[0].clone(), tenants[1].clone());

    // Borrowed, not moved: `name` outlives the call and is used after it.
    let name = String::from("borrowed");
    assert_eq!(add_project(&db, &a, &name).await?, name.len());

    // Spawned: the future of `transaction` with an async closure is `Send`.
    let task = tokio::spawn({
        let (db, a) = (db.clone(), a.clone());
        async move {
            let local = String::from("spawned");
            add_project(&db, &a, &local).await?;
            let both = ["two", "three"];
            db.transaction(&a, async |txn| add_two(txn, "a", &both).await)
                .await
        }
    });
    task.await??;

    // A savepoint in the same form: its error rolls back only the savepoint.
    let kept = "kept";
    db.transaction(&a, async |txn| {
        insert(txn, "a", kept).await?;
        let undone = txn
            .transaction_async(async |inner| {
                insert(inner, "a", "undone").await?;
                Err::<(), _>(DbErr::Custom("changed my mind".to_owned()))
            })
            .await;
        assert!(matches!(undone, Err(TransactionError::Transaction(_))));
        Ok::<_, DbErr>(())
    })
    .await?;
    assert_eq!(
        names(&conn, &a).await?,
        ["borrowed", "kept", "spawned", "three", "two"]
    );

    // The registered form, borrowing too.
    let registered = String::from("registered");
    db.transaction_registered(b.id(), async |txn| {
        insert(txn, "b", &registered).await?;
        Ok::<_, DbErr>(())
    })
    .await?;
    assert_eq!(names(&conn, &b).await?, [registered]);

    drop(db);
    common::finish(test_db, vec![conn]).await
}
