#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// `MigrationTrait` (async_trait) spells its argument `&SchemaManager`.
#![allow(elided_lifetimes_in_paths)]
//! Export, import and clone against a real server: a tenant with a rich
//! schema is exported and imported (beside itself under a new id, and into
//! a second database), and the copy is compared with the original row by
//! row and catalog entry by catalog entry.

use std::error::Error as StdError;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, TransactionTrait};
use sea_orm_migration::async_trait::async_trait;
use sea_orm_migration::{MigrationName, MigrationTrait, MigratorTrait, SchemaManager};
use tenancy_core::{SchemaName, SearchPath, TenantId, TenantStatus};
use tenancy_migrate::{Error, ImportOptions, NewTenant, TenantFleet};
use tenancy_testing::TestDatabase;

type TestResult = Result<(), Box<dyn StdError>>;

/// Every common column type, an enum, a domain and a composite type of the
/// tenant's own, identity, serial and standalone sequences, a stored
/// generated column, a dropped column, foreign keys, a check constraint,
/// partial, unique and expression indexes, comments.
const RICH_SCHEMA: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN positive_int AS integer CONSTRAINT positive CHECK (VALUE > 0);
CREATE TYPE address AS (street text, zip varchar(10));
CREATE SEQUENCE invoice_no AS integer START 1000 INCREMENT 5;
CREATE TABLE customers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    email varchar(120) UNIQUE,
    code char(4),
    mood mood NOT NULL DEFAULT 'ok',
    credit positive_int,
    home address,
    created timestamptz NOT NULL DEFAULT now(),
    name_upper text GENERATED ALWAYS AS (upper(name)) STORED
);
COMMENT ON TABLE customers IS 'People who buy; it''s "quoted"';
COMMENT ON COLUMN customers.email IS 'unique when set';
CREATE TABLE orders (
    id serial PRIMARY KEY,
    gone integer,
    customer_id bigint NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    invoice integer DEFAULT nextval('invoice_no'),
    small smallint, big bigint,
    amount numeric(12, 2) CONSTRAINT amount_not_negative CHECK (amount >= 0),
    ratio double precision, approx real, paid boolean,
    note text, blob bytea, ref uuid,
    day date, at_time time, at_tz timestamptz, at_local timestamp, span interval,
    doc json, docb jsonb, tags text[], matrix integer[], addr inet, feeling mood
);
ALTER TABLE orders DROP COLUMN gone;
CREATE UNIQUE INDEX orders_ref_key ON orders (ref) WHERE ref IS NOT NULL;
CREATE INDEX orders_lower_note ON orders (lower(note));
COMMENT ON INDEX orders_lower_note IS 'case-insensitive search';
-- Names that need quoting everywhere, and a keyword.
CREATE TABLE "Odd ""quoted"" Table" ("Mixed Case" text DEFAULT 'it''s', "select" integer PRIMARY KEY);
CREATE INDEX "Odd index" ON "Odd ""quoted"" Table" (lower("Mixed Case"));
COMMENT ON COLUMN "Odd ""quoted"" Table"."select" IS 'a keyword';
CREATE TABLE order_lines (
    order_id integer NOT NULL REFERENCES orders (id),
    line smallint NOT NULL,
    qty positive_int NOT NULL,
    PRIMARY KEY (order_id, line)
);
"#;

/// Rows with NULLs, quotes, newlines, backslashes, tabs, non-ASCII text,
/// and sequences left mid-way (rows deleted, values drawn and unused).
const RICH_DATA: &str = r#"
INSERT INTO customers (name, email, code, mood, credit, home) VALUES
    ('Ada', 'ada@example.com', 'AD01', 'happy', 10, ROW('1 Main St', '12345')),
    (E'O''Brien "the\tquoted"\nline two \\ backslash', NULL, NULL, 'sad', NULL, NULL),
    ('Zoë ✓', 'zoe@example.com', 'ZO', 'ok', 3, ROW(NULL, 'x'));
INSERT INTO customers (name) VALUES ('deleted later');
DELETE FROM customers WHERE name = 'deleted later';
INSERT INTO orders (customer_id, small, big, amount, ratio, approx, paid, note, blob, ref, day,
                    at_time, at_tz, at_local, span, doc, docb, tags, matrix, addr, feeling) VALUES
    (1, -32768, 9223372036854775807, 12345.67, 0.1, 3.4028235e38, true, E'tab\there\r\nCRLF',
     '\x00ff5c0a'::bytea, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2024-02-29', '23:59:59.999999',
     '2024-06-01 12:00:00.123456+02', '1999-12-31 23:59:59', '1 year 2 mons 3 days 04:05:06.7',
     '{"a": [1, 2, {"b": null}]}', '{"z": 1, "a": "\\u00e9"}', ARRAY['x', NULL, 'with,comma', 'q"uote'],
     ARRAY[[1, 2], [3, 4]], '192.168.0.1/24', 'happy'),
    (2, NULL, NULL, NULL, 'NaN', '-Infinity', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, NULL, NULL, NULL, NULL),
    (3, 0, 0, 0, -0.000001, 1.5, false, '', ''::bytea, NULL, 'infinity', '00:00', 'epoch', '-infinity',
     '-1 days', 'null', '[]', '{}', '{}', '::1', 'sad');
INSERT INTO orders (customer_id) VALUES (1);
DELETE FROM orders WHERE id = 4;
SELECT nextval('invoice_no');
INSERT INTO order_lines VALUES (1, 1, 2), (1, 2, 5), (3, 1, 1);
INSERT INTO "Odd ""quoted"" Table" VALUES ('Tab\there', 1);
"#;

struct Rich;

impl MigrationName for Rich {
    fn name(&self) -> &str {
        "m0001_rich_schema"
    }
}

#[async_trait]
impl MigrationTrait for Rich {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(RICH_SCHEMA)
            .await
            .map(drop)
    }
}

struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(Rich)]
    }
}

fn id(s: &str) -> TenantId {
    s.parse().unwrap()
}

async fn fleet(conn: &DatabaseConnection) -> Result<TenantFleet<Migrator>, Error> {
    let fleet = TenantFleet::<Migrator>::new(conn.clone());
    fleet.install().await?;
    Ok(fleet)
}

/// Runs `sql` with the search path pinned to `schema` alone.
async fn in_schema(conn: &DatabaseConnection, schema: &str, sql: &str) -> Result<(), DbErr> {
    let txn = conn.begin().await?;
    let path = SearchPath::strict(SchemaName::new(schema).unwrap());
    txn.execute_unprepared(&path.set_local_statement()).await?;
    txn.execute_unprepared(sql).await?;
    txn.commit().await
}

/// The first column of every row of `sql`, as text, run with the search
/// path pinned to `schema` alone (so catalog output is unqualified) and the
/// same output settings whatever the database's defaults (so two databases
/// print equal values the same).
async fn texts(conn: &DatabaseConnection, schema: &str, sql: &str) -> Result<Vec<String>, DbErr> {
    let txn = conn.begin().await?;
    let path = SearchPath::strict(SchemaName::new(schema).unwrap());
    txn.execute_unprepared(&format!(
        "{}; SET LOCAL DateStyle TO 'ISO, YMD'; SET LOCAL IntervalStyle TO postgres; \
         SET LOCAL TimeZone TO 'UTC'; SET LOCAL extra_float_digits TO 3; \
         SET LOCAL bytea_output TO hex",
        path.set_local_statement()
    ))
    .await?;
    let rows = txn
        .query_all_raw(Statement::from_string(DbBackend::Postgres, sql.to_owned()))
        .await?;
    txn.commit().await?;
    rows.iter()
        .map(|r| r.try_get_by_index::<String>(0))
        .collect()
}

/// What a schema holds, one line per catalog entry, names unqualified.
const CATALOG: &str = r#"
WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
SELECT line FROM (
    SELECT format('column %s.%s %s default=%s notnull=%s identity=%s generated=%s comment=%s',
                  c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
                  pg_get_expr(d.adbin, d.adrelid), a.attnotnull, a.attidentity, a.attgenerated,
                  col_description(c.oid, a.attnum)) AS line
      FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
     WHERE c.relnamespace = (SELECT oid FROM ns) AND c.relkind IN ('r', 'c')
    UNION ALL
    SELECT format('relation %s kind=%s comment=%s', c.relname, c.relkind, obj_description(c.oid, 'pg_class'))
      FROM pg_class c WHERE c.relnamespace = (SELECT oid FROM ns)
    UNION ALL
    SELECT format('constraint %s on %s: %s', con.conname, con.conrelid::regclass, pg_get_constraintdef(con.oid))
      FROM pg_constraint con WHERE con.connamespace = (SELECT oid FROM ns)
    UNION ALL
    SELECT format('index %s', pg_get_indexdef(i.indexrelid, 0, true))
      FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid WHERE c.relnamespace = (SELECT oid FROM ns)
    UNION ALL
    SELECT format('sequence %s last=%s type=%s start=%s inc=%s owned=%s', c.relname,
                  pg_sequence_last_value(c.oid), format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement,
                  (SELECT format('%s.%s', d.refobjid::regclass, d.refobjsubid) FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')))
      FROM pg_class c JOIN pg_sequence s ON s.seqrelid = c.oid WHERE c.relnamespace = (SELECT oid FROM ns)
    UNION ALL
    SELECT format('type %s kind=%s base=%s notnull=%s labels=%s', t.typname, t.typtype,
                  format_type(t.typbasetype, t.typtypmod), t.typnotnull,
                  (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid))
      FROM pg_type t WHERE t.typnamespace = (SELECT oid FROM ns)
) catalog ORDER BY line COLLATE "C"
"#;

/// Every row of every table of the schema, as text, in a stable order.
async fn all_rows(conn: &DatabaseConnection, schema: &str) -> Result<Vec<String>, DbErr> {
    let tables = texts(
        conn,
        schema,
        "SELECT quote_ident(relname) FROM pg_class WHERE relnamespace = current_schema()::regnamespace \
         AND relkind = 'r' ORDER BY relname COLLATE \"C\"",
    )
    .await?;
    let mut rows = Vec::new();
    for table in tables {
        // `table` was quoted by the server.
        let sql = format!(
            "SELECT format('%s: %s', {}, t::text) FROM {table} t ORDER BY t::text COLLATE \"C\"",
            literal(&table)
        );
        rows.extend(texts(conn, schema, &sql).await?);
    }
    Ok(rows)
}

/// `text` as a SQL string literal (test data only).
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Asserts that two schemas hold the same catalog entries and rows.
async fn assert_identical(
    (a_conn, a): (&DatabaseConnection, &str),
    (b_conn, b): (&DatabaseConnection, &str),
) -> TestResult {
    let a_catalog = texts(a_conn, a, CATALOG).await?;
    let b_catalog = texts(b_conn, b, CATALOG).await?;
    assert!(a_catalog.len() > 60, "{a_catalog:#?}");
    assert_eq!(a_catalog, b_catalog);
    let a_rows = all_rows(a_conn, a).await?;
    assert_eq!(a_rows.len(), 11, "{a_rows:#?}"); // 3 customers, 3 orders, 3 lines, 1 odd, 1 ledger row
    assert_eq!(a_rows, all_rows(b_conn, b).await?);
    Ok(())
}

/// A tenant `acme` with the rich schema and its data.
async fn rich_tenant(fleet: &TenantFleet<Migrator>) -> TestResult {
    fleet
        .create(
            &id("acme"),
            NewTenant::new()
                .display_name("Acme \"Corp\"")
                .domain("acme.example.com")
                .status(TenantStatus::Suspended),
        )
        .await?;
    in_schema(fleet.connection(), "tenant_acme", RICH_DATA).await?;
    Ok(())
}

#[tokio::test]
async fn an_import_beside_the_original_is_identical_row_by_row_and_in_the_catalog() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let fleet = fleet(conn).await?;
        rich_tenant(&fleet).await?;

        let mut file = Vec::new();
        let exported = fleet.export_tenant(&id("acme"), &mut file).await?;
        assert_eq!(exported.tables, 5); // four tables and the ledger
        assert_eq!(exported.bytes, file.len() as u64);

        let imported = fleet
            .import_tenant(
                &file[..],
                ImportOptions::new().as_tenant(id("acme-copy")).domain(None),
            )
            .await?;
        assert_eq!(imported.source, id("acme"));
        assert_eq!(imported.record.schema.as_str(), "tenant_acme_copy");
        assert_eq!(imported.record.display_name, "Acme \"Corp\"");
        assert_eq!(imported.record.status, TenantStatus::Suspended);
        assert_eq!(imported.record.domain, None);
        assert_eq!(imported.rows, 11);

        assert_identical((conn, "tenant_acme"), (conn, "tenant_acme_copy")).await?;

        // The sequences go on from where they stood, the same in both.
        let next = "INSERT INTO customers (name) VALUES ('n'); INSERT INTO orders (customer_id) VALUES (1)";
        for schema in ["tenant_acme", "tenant_acme_copy"] {
            in_schema(conn, schema, next).await?;
            let ids = texts(
                conn,
                schema,
                "SELECT format('%s %s %s', (SELECT max(id) FROM customers), (SELECT max(id) FROM orders), \
                 (SELECT max(invoice) FROM orders))",
            )
            .await?;
            assert_eq!(ids, ["5 5 1025"], "{schema}");
        }

        // The copy's migration ledger came along: nothing is pending.
        let status = fleet.fleet_status().await?;
        assert!(status.is_up_to_date(), "{status:?}");
        Ok(())
    })
    .await
}

#[tokio::test]
async fn an_import_into_another_database_is_identical_and_keeps_the_registry_row() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let fleet = fleet(conn).await?;
        rich_tenant(&fleet).await?;
        let mut file = Vec::new();
        fleet.export_tenant(&id("acme"), &mut file).await?;

        // The other database reads and prints values differently, and
        // defaults to repeatable read: the import pins what it needs.
        let other_db = TestDatabase::create().await?;
        conn.execute_unprepared(&format!(
            "ALTER DATABASE \"{}\" SET default_transaction_isolation = 'repeatable read'; \
             ALTER DATABASE \"{0}\" SET DateStyle = 'SQL, DMY'; \
             ALTER DATABASE \"{0}\" SET IntervalStyle = 'iso_8601'; \
             ALTER DATABASE \"{0}\" SET TimeZone = 'Pacific/Chatham'; \
             ALTER DATABASE \"{0}\" SET extra_float_digits = -3; \
             ALTER DATABASE \"{0}\" SET bytea_output = 'escape'",
            other_db.name()
        ))
        .await?;
        let other = other_db.connect().await?;
        let outcome = async {
            let there = self::fleet(&other).await?;
            let imported = there.import_tenant(&file[..], ImportOptions::new()).await?;
            assert_eq!(imported.record.id, id("acme"));
            assert_eq!(imported.record.schema.as_str(), "tenant_acme");
            assert_eq!(imported.record.domain.as_deref(), Some("acme.example.com"));
            assert_eq!(imported.record.status, TenantStatus::Suspended);
            assert_identical((conn, "tenant_acme"), (&other, "tenant_acme")).await?;

            // And back, exported from the database with those defaults
            // (sqlx pins DateStyle, TimeZone and extra_float_digits when it
            // connects; the export pins them all again, for any client).
            let mut back = Vec::new();
            there.export_tenant(&id("acme"), &mut back).await?;
            let options = ImportOptions::new().as_tenant(id("acme-back")).domain(None);
            self::fleet(conn)
                .await?
                .import_tenant(&back[..], options)
                .await?;
            assert_identical((conn, "tenant_acme"), (conn, "tenant_acme_back")).await
        }
        .await;
        other.close().await?;
        other_db.close().await?;
        outcome
    })
    .await
}

#[tokio::test]
async fn an_import_never_overwrites_and_leaves_nothing_when_refused() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let fleet = fleet(conn).await?;
        rich_tenant(&fleet).await?;
        let mut file = Vec::new();
        fleet.export_tenant(&id("acme"), &mut file).await?;
        let before = all_rows(conn, "tenant_acme").await?;

        let err = fleet
            .import_tenant(&file[..], ImportOptions::new())
            .await
            .unwrap_err();
        assert!(matches!(&err, Error::TenantExists { tenant } if tenant.as_str() == "acme"), "{err}");

        // The domain is taken by acme.
        let err = fleet
            .import_tenant(&file[..], ImportOptions::new().as_tenant(id("globex")))
            .await
            .unwrap_err();
        assert!(matches!(&err, Error::DomainTaken { owner, .. } if owner.as_str() == "acme"), "{err}");

        // An unregistered schema of the target's name.
        conn.execute_unprepared("CREATE SCHEMA tenant_initech").await?;
        let err = fleet
            .import_tenant(&file[..], ImportOptions::new().as_tenant(id("initech")).domain(None))
            .await
            .unwrap_err();
        assert!(matches!(&err, Error::SchemaExists { schema, .. } if schema.as_str() == "tenant_initech"), "{err}");

        assert_eq!(all_rows(conn, "tenant_acme").await?, before);
        let registered = fleet.list(tenancy_migrate::StatusFilter::All).await?;
        let ids: Vec<_> = registered.tenants.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["acme"]);
        Ok(())
    })
    .await
}

/// Schemas and registry rows of `tenant`, to prove a failed import left none.
async fn traces(conn: &DatabaseConnection, tenant: &str, schema: &str) -> Result<i64, DbErr> {
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = $2) \
                  + (SELECT count(*) FROM public.tenants WHERE tenant_id = $1) AS n",
            [tenant.into(), schema.into()],
        ))
        .await?
        .unwrap();
    row.try_get("", "n")
}

#[tokio::test]
async fn a_failure_mid_import_leaves_nothing_behind() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let fleet = fleet(conn).await?;
        rich_tenant(&fleet).await?;
        let mut file = Vec::new();
        fleet.export_tenant(&id("acme"), &mut file).await?;
        let copy = || ImportOptions::new().as_tenant(id("copy")).domain(None);

        // Cut short in the middle of the data: read error inside COPY.
        let cut = &file[..file.len() * 3 / 4];
        let err = fleet.import_tenant(cut, copy()).await.unwrap_err();
        assert!(matches!(err, Error::InvalidExport { .. }), "{err}");
        assert!(err.to_string().contains("cut short"), "{err}");
        assert_eq!(traces(conn, "copy", "tenant_copy").await?, 0);

        // A row the server refuses: the customer's mood `happy` becomes an
        // unknown label, after the schema and earlier tables were made.
        let needle = b"\thappy\t";
        let at = file.windows(needle.len()).position(|w| w == needle).unwrap();
        let mut bad = file.clone();
        bad[at + 1..at + 6].copy_from_slice(b"HAPPY");
        let err = fleet.import_tenant(&bad[..], copy()).await.unwrap_err();
        assert!(
            matches!(&err, Error::ImportFailed { tenant, step: "loading the data", .. } if tenant.as_str() == "copy"),
            "{err}"
        );
        assert!(err.to_string().contains("HAPPY"), "{err}");
        assert_eq!(traces(conn, "copy", "tenant_copy").await?, 0);

        // Data that breaks a constraint added after it: a duplicate email.
        let needle = b"zoe@example.com";
        let at = file.windows(needle.len()).position(|w| w == needle).unwrap();
        let mut dup = file.clone();
        dup[at..at + needle.len()].copy_from_slice(b"ada@example.com");
        let err = fleet.import_tenant(&dup[..], copy()).await.unwrap_err();
        assert!(matches!(&err, Error::ImportFailed { step, .. } if step.contains("constraints")), "{err}");
        assert_eq!(traces(conn, "copy", "tenant_copy").await?, 0);

        // And the same file, intact, imports.
        fleet.import_tenant(&file[..], copy()).await?;
        assert_eq!(traces(conn, "copy", "tenant_copy").await?, 2);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_clone_is_identical_and_independent() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let fleet = fleet(conn).await?;
        rich_tenant(&fleet).await?;
        let report = fleet.clone_tenant(&id("acme"), &id("trial")).await?;
        assert_eq!(report.export.tenant, id("acme"));
        assert_eq!(report.import.record.schema.as_str(), "tenant_trial");
        assert_eq!(report.import.record.domain, None);
        assert_identical((conn, "tenant_acme"), (conn, "tenant_trial")).await?;

        in_schema(conn, "tenant_trial", "DELETE FROM order_lines").await?;
        assert_eq!(
            texts(
                conn,
                "tenant_acme",
                "SELECT count(*)::text FROM order_lines"
            )
            .await?,
            ["3"]
        );

        // Cloning onto an existing tenant is refused; cloning an unknown one too.
        let err = fleet
            .clone_tenant(&id("acme"), &id("trial"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::TenantExists { .. }), "{err}");
        let err = fleet
            .clone_tenant(&id("nobody"), &id("other"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::UnknownTenant { .. }), "{err}");
        assert_eq!(traces(conn, "other", "tenant_other").await?, 0);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_clone_on_a_pool_of_one_connection_is_refused_at_once() -> TestResult {
    TestDatabase::with(async |db, conn| -> TestResult {
        fleet(conn)
            .await?
            .create(&id("acme"), NewTenant::new())
            .await?;
        let mut options = db.connect_options();
        options.max_connections(1);
        let single = sea_orm::Database::connect(options).await?;
        let err = TenantFleet::<Migrator>::new(single.clone())
            .clone_tenant(&id("acme"), &id("copy"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("two connections"), "{err}");
        assert_eq!(traces(conn, "copy", "tenant_copy").await?, 0);
        single.close().await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn an_export_refuses_a_schema_with_objects_it_does_not_carry() -> TestResult {
    TestDatabase::with(async |_db, conn| -> TestResult {
        let fleet = fleet(conn).await?;
        rich_tenant(&fleet).await?;
        in_schema(
            conn,
            "tenant_acme",
            "CREATE VIEW happy_customers AS SELECT * FROM customers WHERE mood = 'happy'; \
             CREATE FUNCTION touch() RETURNS integer LANGUAGE sql AS 'SELECT 1'",
        )
        .await?;
        // A trigger whose function lives elsewhere: found through its table.
        conn.execute_unprepared(
            "CREATE FUNCTION public.keep() RETURNS trigger LANGUAGE plpgsql \
             AS 'BEGIN RETURN NEW; END'; \
             CREATE TRIGGER keep_rows BEFORE INSERT ON tenant_acme.orders \
             FOR EACH ROW EXECUTE FUNCTION public.keep()",
        )
        .await?;
        let mut file = Vec::new();
        let err = fleet
            .export_tenant(&id("acme"), &mut file)
            .await
            .unwrap_err();
        match &err {
            Error::ExportUnsupported { objects, .. } => {
                assert_eq!(
                    objects,
                    &[
                        "function touch()",
                        "trigger keep_rows on orders",
                        "view happy_customers"
                    ]
                );
            }
            other => panic!("{other}"),
        }
        assert!(file.is_empty());

        let err = fleet
            .export_tenant(&id("nobody"), &mut file)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::UnknownTenant { .. }), "{err}");
        conn.execute_unprepared("DROP SCHEMA tenant_acme CASCADE")
            .await?;
        let err = fleet
            .export_tenant(&id("acme"), &mut file)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::SchemaMissing { .. }), "{err}");
        Ok(())
    })
    .await
}
