//! The tenant registry's contract, in one place: where the table is, its
//! columns, the row type, how a row read back is validated, and the channel
//! changes to it are announced on.
//!
//! Two crates rely on it: `tenancy-sea-orm` reads the registry on every
//! request (through a cache) and `tenancy-migrate` creates and writes it. The
//! contract lives here, in the crate without I/O, because none of it needs a
//! database: the crates that query hand over the text values they read, and
//! [`TenantRecord::from_columns`] decides what they mean. So a row means the
//! same thing, and an unusable row is the same [`CorruptRecord`], whichever
//! crate read it.
//!
//! # The table
//!
//! `"public"."tenants"` unless moved ([`RegistryTable`]). `tenancy-migrate`'s
//! `install` creates it with these columns, which are what is read back
//! ([`columns::SELECT_LIST`]); more columns (plans, timestamps, settings)
//! may be added freely:
//!
//! | column         | type                   | holds                                     |
//! |----------------|------------------------|-------------------------------------------|
//! | `tenant_id`    | `text PRIMARY KEY`     | a [`TenantId`]                            |
//! | `schema_name`  | `text NOT NULL UNIQUE` | a [`SchemaName`]                          |
//! | `display_name` | `text NOT NULL`        | free text, may be empty                   |
//! | `domain`       | `text UNIQUE`          | the tenant's host name, lowercase, or NULL |
//! | `status`       | `text NOT NULL`        | one of [`TenantStatus::as_str`]'s values  |
//! | `placement`    | `text`                 | NULL: the schema is in this database; else the name of the database the tenant was moved to |
//! | `moving_to`    | `text`                 | while a move is under way: where to       |
//! | `status_before_move` | `text`           | while a move is under way: the status to restore |
//!
//! The last three belong to `tenancy-migrate`'s moves
//! (`TenantFleet::move_tenant`) and are not part of a [`TenantRecord`]: a
//! row with a `placement` stays as the record of where the tenant went
//! (routing by it is for a later version), and fleet-wide calls of this
//! database leave it out.
//!
//! # Change notifications
//!
//! Every change a lifecycle call makes to a row sends
//! `NOTIFY` on [`NOTIFY_CHANNEL`] with the tenant id as payload, inside the
//! transaction that makes it, so it is delivered only if the change commits.
//! A process that listens forgets its cached copy of that tenant at once.
//! The channel is one per database, not one per registry table: two
//! registries in one database only cost each other a spurious cache miss.

use std::fmt;

use crate::{SchemaName, SharedSchema, TableName, Tenant, TenantId, TenantStatus};

/// The channel every registry change is announced on, with the tenant id as
/// payload (`SELECT pg_notify('tenancy_registry', 'acme')`).
///
/// ```
/// assert_eq!(tenancy::registry::NOTIFY_CHANNEL, "tenancy_registry");
/// ```
pub const NOTIFY_CHANNEL: &str = "tenancy_registry";

/// The registry's column names.
pub mod columns {
    /// The tenant id, the primary key.
    pub const TENANT_ID: &str = "tenant_id";
    /// The tenant's schema, unique.
    pub const SCHEMA_NAME: &str = "schema_name";
    /// The display name (may be empty).
    pub const DISPLAY_NAME: &str = "display_name";
    /// The domain, unique, or NULL.
    pub const DOMAIN: &str = "domain";
    /// The lifecycle status.
    pub const STATUS: &str = "status";
    /// Where the tenant lives: NULL for this database, else the name of
    /// the database it was moved to.
    pub const PLACEMENT: &str = "placement";
    /// While a move is under way, the name of the database it goes to.
    pub const MOVING_TO: &str = "moving_to";
    /// While a move is under way, the status the move restores.
    pub const STATUS_BEFORE_MOVE: &str = "status_before_move";
    /// Every column a [`TenantRecord`](super::TenantRecord) is read from, as a
    /// `SELECT` list.
    ///
    /// ```
    /// use tenancy::registry::columns;
    /// assert_eq!(columns::SELECT_LIST, "tenant_id, schema_name, display_name, domain, status");
    /// ```
    pub const SELECT_LIST: &str = "tenant_id, schema_name, display_name, domain, status";
}

/// Where the registry table is: a shared schema and a table name,
/// `"public"."tenants"` by default.
///
/// ```
/// use tenancy::registry::RegistryTable;
/// use tenancy::{SharedSchema, TableName};
///
/// assert_eq!(RegistryTable::default().qualified(), r#""public"."tenants""#);
/// let moved = RegistryTable::new(SharedSchema::new("control")?, TableName::new("registry")?);
/// assert_eq!(moved.qualified(), r#""control"."registry""#);
/// # Ok::<(), tenancy::NameError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RegistryTable {
    schema: SharedSchema,
    table: TableName,
}

impl Default for RegistryTable {
    fn default() -> Self {
        Self::new(SharedSchema::public(), TableName::tenants())
    }
}

impl RegistryTable {
    /// The registry at `schema.table`.
    ///
    /// ```
    /// use tenancy::{SharedSchema, TableName, registry::RegistryTable};
    /// let table = RegistryTable::new(SharedSchema::public(), TableName::new("tenant_registry")?);
    /// assert_eq!(table.table().as_str(), "tenant_registry");
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn new(schema: SharedSchema, table: TableName) -> Self {
        Self { schema, table }
    }

    /// The shared schema holding the table.
    ///
    /// ```
    /// let table = tenancy::registry::RegistryTable::default();
    /// assert_eq!(table.schema().as_str(), "public");
    /// ```
    #[must_use]
    pub fn schema(&self) -> &SharedSchema {
        &self.schema
    }

    /// The table's name.
    ///
    /// ```
    /// let table = tenancy::registry::RegistryTable::default();
    /// assert_eq!(table.table().as_str(), "tenants");
    /// ```
    #[must_use]
    pub fn table(&self) -> &TableName {
        &self.table
    }

    /// The table as it appears in SQL: `"schema"."table"`.
    ///
    /// ```
    /// let table = tenancy::registry::RegistryTable::default();
    /// assert_eq!(table.qualified(), r#""public"."tenants""#);
    /// ```
    #[must_use]
    pub fn qualified(&self) -> String {
        self.table.qualified(&self.schema)
    }
}

/// One registry row, validated.
///
/// ```
/// use tenancy::TenantStatus;
/// use tenancy::registry::TenantRecord;
///
/// let row = [("tenant_id", "acme"), ("schema_name", "tenant_acme"), ("display_name", "Acme"),
///            ("status", "suspended")];
/// let record = TenantRecord::from_columns(|column| {
///     Ok(row.iter().find(|(c, _)| *c == column).map(|(_, v)| (*v).to_owned()))
/// })?;
/// assert_eq!(record.status, TenantStatus::Suspended);
/// assert_eq!(record.domain, None);
/// # Ok::<(), tenancy::registry::CorruptRecord>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct TenantRecord {
    /// The tenant's id (`tenant_id`).
    pub id: TenantId,
    /// Its schema (`schema_name`).
    pub schema: SchemaName,
    /// Its display name (`display_name`, may be empty).
    pub display_name: String,
    /// Its domain or subdomain, if any (`domain`).
    pub domain: Option<String>,
    /// Its lifecycle status (`status`).
    pub status: TenantStatus,
}

impl TenantRecord {
    /// Validates a row. `read(column)` gives a column's value as text
    /// (`Ok(None)` for NULL), or why it cannot be read as text; every name is
    /// validated again, since the table may have been written by hand.
    ///
    /// # Errors
    /// [`CorruptRecord`] naming the tenant as stored and what is wrong: a
    /// NULL or non-text `tenant_id`, `schema_name`, `display_name` or
    /// `status`, an invalid id or schema name, an unknown status.
    ///
    /// ```
    /// use tenancy::registry::TenantRecord;
    ///
    /// let bad = TenantRecord::from_columns(|column| {
    ///     Ok(Some(match column {
    ///         "tenant_id" => "acme",
    ///         "schema_name" => "public", // not a tenant schema
    ///         "status" => "active",
    ///         _ => "",
    ///     }.to_owned()))
    /// })
    /// .unwrap_err();
    /// assert_eq!(bad.tenant, "acme");
    /// assert!(bad.to_string().contains("public"), "{bad}");
    /// ```
    pub fn from_columns(
        mut read: impl FnMut(&str) -> Result<Option<String>, String>,
    ) -> Result<Self, CorruptRecord> {
        let [tenant_id, schema_name, display_name, domain, status] = [
            columns::TENANT_ID,
            columns::SCHEMA_NAME,
            columns::DISPLAY_NAME,
            columns::DOMAIN,
            columns::STATUS,
        ]
        .map(|column| (column, read(column)));
        let raw = |(_, value): &(&str, Result<Option<String>, String>)| {
            value.as_ref().ok().cloned().flatten()
        };
        let corrupt = |reason: String| CorruptRecord {
            tenant: raw(&tenant_id).unwrap_or_default(),
            schema: raw(&schema_name),
            status: raw(&status),
            reason,
        };
        let text = |(column, value): &(&str, Result<Option<String>, String>)| match value {
            Ok(Some(value)) => Ok(value.clone()),
            Ok(None) => Err(corrupt(format!("column {column} is NULL"))),
            Err(why) => Err(corrupt(format!("column {column}: {why}"))),
        };
        // Names the column and the value: whoever wrote the row can find it.
        let invalid = |column: &str, value: &str, err: crate::Error| {
            corrupt(format!("{column} {value:?} is unusable: {err}"))
        };
        let raw_id = text(&tenant_id)?;
        let id = TenantId::new(&raw_id).map_err(|e| invalid(tenant_id.0, &raw_id, e))?;
        let raw_schema = text(&schema_name)?;
        let schema =
            SchemaName::new(&raw_schema).map_err(|e| invalid(schema_name.0, &raw_schema, e))?;
        let raw_status = text(&status)?;
        let status = raw_status
            .parse()
            .map_err(|e| invalid(status.0, &raw_status, e))?;
        let display_name = text(&display_name)?;
        let domain = match domain {
            (_, Ok(value)) => value,
            (column, Err(why)) => return Err(corrupt(format!("column {column}: {why}"))),
        };
        Ok(Self {
            id,
            schema,
            display_name,
            domain,
            status,
        })
    }

    /// The tenant to scope to: its id and schema, whatever its status.
    ///
    /// ```
    /// # use tenancy::registry::TenantRecord;
    /// # fn demo(record: TenantRecord) {
    /// use tenancy::TenantScope;
    /// let tenant = record.tenant();
    /// assert_eq!(tenant.schema(), &record.schema);
    /// # }
    /// ```
    #[must_use]
    pub fn tenant(&self) -> Tenant {
        Tenant::new(self.id.clone(), self.schema.clone())
    }
}

/// A registry row that does not validate (written by hand: an invalid
/// tenant id or schema name, an unknown status, a NULL where a value is
/// needed). The SeaORM layer refuses the tenant; fleet-wide calls of
/// `tenancy-migrate` report it as that tenant's problem and go on with the
/// others; calls on that one tenant fail and change nothing.
///
/// The raw values are as stored: escape them before printing
/// ([`Display`](fmt::Display) does).
///
/// ```
/// fn alert(bad: &tenancy::registry::CorruptRecord) {
///     eprintln!("{bad}"); // the tenant id quoted and escaped, and what is wrong
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct CorruptRecord {
    /// The tenant id as stored (empty when it is NULL).
    pub tenant: String,
    /// The schema name as stored, if it is text.
    pub schema: Option<String>,
    /// The status as stored, if it is text.
    pub status: Option<String>,
    /// What is wrong with the row.
    pub reason: String,
}

impl CorruptRecord {
    /// Whether a fleet run restricted to `wanted` statuses covers this row:
    /// unless its status reads as one outside them (an unreadable status is
    /// no reason to leave a tenant out).
    ///
    /// ```
    /// # fn demo(bad: tenancy::registry::CorruptRecord) {
    /// let in_run = bad.in_run(|status| status.allows_access());
    /// # }
    /// ```
    #[must_use]
    pub fn in_run(&self, wanted: impl Fn(TenantStatus) -> bool) -> bool {
        self.status
            .as_deref()
            .and_then(|s| s.parse::<TenantStatus>().ok())
            .is_none_or(wanted)
    }
}

impl fmt::Display for CorruptRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the registry row of tenant {:?} is unusable: {}",
            self.tenant, self.reason
        )
    }
}

impl std::error::Error for CorruptRecord {}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(row: &[(&str, Option<&str>)]) -> Result<TenantRecord, CorruptRecord> {
        TenantRecord::from_columns(|column| {
            row.iter()
                .find(|(c, _)| *c == column)
                .map(|(_, v)| v.map(str::to_owned))
                .ok_or_else(|| format!("no column {column}"))
        })
    }

    const GOOD: [(&str, Option<&str>); 5] = [
        ("tenant_id", Some("acme")),
        ("schema_name", Some("tenant_acme")),
        ("display_name", Some("Acme")),
        ("domain", None),
        ("status", Some("active")),
    ];

    fn with(column: &str, value: Option<&str>) -> Vec<(&'static str, Option<String>)> {
        GOOD.iter()
            .map(|(c, v)| {
                let v = if *c == column { value } else { *v };
                (*c, v.map(str::to_owned))
            })
            .collect()
    }

    fn parse_owned(row: &[(&'static str, Option<String>)]) -> Result<TenantRecord, CorruptRecord> {
        let borrowed: Vec<_> = row.iter().map(|(c, v)| (*c, v.as_deref())).collect();
        parse(&borrowed)
    }

    #[test]
    fn a_valid_row_reads_back() {
        let record = parse(&GOOD).unwrap();
        assert_eq!(record.id.as_str(), "acme");
        assert_eq!(record.schema.as_str(), "tenant_acme");
        assert_eq!(record.display_name, "Acme");
        assert_eq!(record.domain, None);
        assert_eq!(record.status, TenantStatus::Active);
    }

    #[test]
    fn every_unusable_value_is_reported_with_the_stored_row() {
        for (column, value, expected) in [
            ("tenant_id", Some("Not An Id"), "Not An Id"),
            ("schema_name", Some("pg_catalog"), "pg_catalog"),
            ("status", Some("paused"), "paused"),
            ("status", None, "status is NULL"),
            ("display_name", None, "display_name is NULL"),
        ] {
            let bad = parse_owned(&with(column, value)).unwrap_err();
            assert!(bad.to_string().contains(expected), "{column}: {bad}");
        }
        let bad = parse_owned(&with("status", Some("paused"))).unwrap_err();
        assert_eq!(bad.tenant, "acme");
        assert_eq!(bad.schema.as_deref(), Some("tenant_acme"));
        assert_eq!(bad.status.as_deref(), Some("paused"));
        assert!(bad.in_run(|s| s == TenantStatus::Suspended));
    }

    #[test]
    fn a_column_that_cannot_be_read_names_the_column() {
        let row: Vec<_> = GOOD
            .iter()
            .filter(|(c, _)| *c != "domain")
            .copied()
            .collect();
        let bad = parse(&row).unwrap_err();
        assert!(
            bad.reason.contains("column domain: no column domain"),
            "{bad}"
        );
    }
}
