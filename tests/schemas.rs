//! Validated names become real schemas; rejected names never reach the server.
#![allow(clippy::unwrap_used)]

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use tenancy::{NameError, RESERVED_KEYWORDS, SchemaName, SchemaNaming, TenantId};
use tenancy_testing::TestDatabase;

/// What a tenant-creating caller does: validate, then quote; only a validated
/// name can reach `CREATE SCHEMA`.
async fn create_schema(db: &DatabaseConnection, input: &str) -> Result<SchemaName, CreateError> {
    let schema = SchemaName::new(input).map_err(CreateError::Invalid)?;
    db.execute_unprepared(&format!("CREATE SCHEMA {}", schema.quoted()))
        .await
        .map_err(CreateError::Db)?;
    Ok(schema)
}

#[derive(Debug)]
enum CreateError {
    Invalid(NameError),
    Db(sea_orm::DbErr),
}

async fn schemas(db: &DatabaseConnection) -> Vec<String> {
    db.query_all_raw(Statement::from_string(
        DbBackend::Postgres,
        "SELECT schema_name::text FROM information_schema.schemata ORDER BY 1",
    ))
    .await
    .unwrap()
    .iter()
    .map(|row| row.try_get_by_index::<String>(0).unwrap())
    .collect()
}

#[tokio::test]
async fn validated_names_become_schemas() {
    let test_db = TestDatabase::create().await.unwrap();
    let db = test_db.connect().await.unwrap();

    let naming = SchemaNaming::default();
    let acme = naming
        .schema_for(&TenantId::new("acme-corp").unwrap())
        .unwrap();
    let longest = "x".repeat(63);
    let names = [acme.as_str(), "_private", longest.as_str(), "tenant_0"];
    for name in names {
        create_schema(&db, name).await.unwrap();
    }

    let present = schemas(&db).await;
    for name in names {
        // A 63-byte name must arrive whole: PostgreSQL would truncate a longer one.
        assert!(
            present.iter().any(|s| s == name),
            "{name} missing from {present:?}"
        );
    }

    // Creating the same schema twice is the server's error, not a validation error.
    match create_schema(&db, "_private").await {
        Err(CreateError::Db(err)) => assert!(err.to_string().contains("already exists"), "{err}"),
        other => panic!("expected the server to refuse a duplicate schema: {other:?}"),
    }

    db.close().await.unwrap();
    test_db.close().await.unwrap();
}

#[tokio::test]
async fn rejected_names_never_reach_the_server() {
    let test_db = TestDatabase::create().await.unwrap();
    let db = test_db.connect().await.unwrap();
    let before = schemas(&db).await;

    let too_long = "a".repeat(64);
    let hostile = [
        "public",
        "PUBLIC",
        "pg_catalog",
        "pg_toast",
        "information_schema",
        "select",
        "user",
        "1abc",
        "a-b",
        "a;drop schema x",
        "x\"; DROP SCHEMA public CASCADE; --",
        "a\"b",
        "Ümlaut",
        "",
        too_long.as_str(),
        "a\0b",
    ];
    for input in hostile {
        match create_schema(&db, input).await {
            Err(CreateError::Invalid(err)) => assert!(!err.to_string().is_empty()),
            other => panic!("{input:?} was not refused by validation: {other:?}"),
        }
    }

    assert_eq!(
        schemas(&db).await,
        before,
        "a rejected name changed the schemas"
    );
    db.close().await.unwrap();
    test_db.close().await.unwrap();
}

/// Our keyword list must cover every keyword the server reserves, so a server
/// upgrade that reserves a new word fails here rather than in production.
#[tokio::test]
async fn reserved_keywords_cover_the_servers() {
    let test_db = TestDatabase::create().await.unwrap();
    let db = test_db.connect().await.unwrap();
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT word FROM pg_get_keywords() WHERE catcode IN ('R', 'T') ORDER BY word",
        ))
        .await
        .unwrap();
    assert!(!rows.is_empty());
    for row in rows {
        let word: String = row.try_get_by_index(0).unwrap();
        assert!(
            RESERVED_KEYWORDS.contains(&word.as_str()),
            "the server reserves {word:?}, which RESERVED_KEYWORDS lacks"
        );
        assert!(SchemaName::new(&word).is_err());
    }
    db.close().await.unwrap();
    test_db.close().await.unwrap();
}
