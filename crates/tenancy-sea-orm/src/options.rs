use std::fmt::Write as _;
use std::time::Duration;

use sea_orm::{AccessMode, IsolationLevel};
use tenancy_core::{RoleName, SearchPath};

use crate::schema_check::SchemaCheck;

/// Per-transaction settings, applied in the same message as `BEGIN`, so they
/// cost no extra round trip and end with the transaction.
///
/// ```
/// use std::time::Duration;
/// use tenancy::orm::ScopeOptions;
///
/// let options = ScopeOptions::new()
///     .statement_timeout(Duration::from_secs(5))
///     .role("tenant_acme_rw".parse()?);
/// assert_eq!(options.timeout(), Some(Duration::from_secs(5)));
/// # Ok::<(), tenancy::NameError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeOptions {
    statement_timeout: Option<Duration>,
    role: Option<RoleName>,
    isolation_level: Option<IsolationLevel>,
    access_mode: Option<AccessMode>,
}

impl ScopeOptions {
    /// No settings: the server's defaults.
    ///
    /// ```
    /// assert_eq!(tenancy::orm::ScopeOptions::new(), Default::default());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// `SET LOCAL statement_timeout`: any statement of the transaction running
    /// longer is cancelled by the server (rounded to whole milliseconds).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let options = tenancy::orm::ScopeOptions::new().statement_timeout(Duration::from_millis(250));
    /// assert_eq!(options.timeout(), Some(Duration::from_millis(250)));
    /// ```
    #[must_use]
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = Some(timeout);
        self
    }

    /// `SET LOCAL ROLE`: the transaction runs as this role, so a deployment with
    /// one PostgreSQL role per tenant has the server itself enforce isolation.
    /// The connecting user must be a member of the role.
    ///
    /// ```
    /// let options = tenancy::orm::ScopeOptions::new().role("reporting".parse()?);
    /// assert_eq!(options.role_name().map(|r| r.as_str()), Some("reporting"));
    /// # Ok::<(), tenancy::NameError>(())
    /// ```
    #[must_use]
    pub fn role(mut self, role: RoleName) -> Self {
        self.role = Some(role);
        self
    }

    /// The transaction's isolation level (`BEGIN ISOLATION LEVEL …`).
    ///
    /// ```
    /// use sea_orm::IsolationLevel;
    /// let options = tenancy::orm::ScopeOptions::new().isolation_level(IsolationLevel::Serializable);
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn isolation_level(mut self, level: IsolationLevel) -> Self {
        self.isolation_level = Some(level);
        self
    }

    /// The transaction's access mode (`READ ONLY` or `READ WRITE`).
    ///
    /// ```
    /// use sea_orm::AccessMode;
    /// let options = tenancy::orm::ScopeOptions::new().access_mode(AccessMode::ReadOnly);
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn access_mode(mut self, mode: AccessMode) -> Self {
        self.access_mode = Some(mode);
        self
    }

    /// The statement timeout, if set.
    ///
    /// ```
    /// assert_eq!(tenancy::orm::ScopeOptions::new().timeout(), None);
    /// ```
    #[must_use]
    pub fn timeout(&self) -> Option<Duration> {
        self.statement_timeout
    }

    /// The role, if set.
    ///
    /// ```
    /// assert!(tenancy::orm::ScopeOptions::new().role_name().is_none());
    /// ```
    #[must_use]
    pub fn role_name(&self) -> Option<&RoleName> {
        self.role.as_ref()
    }

    /// The one message that opens a scoped transaction: `BEGIN`, the search
    /// path and the settings, and a check that fails when the tenant's schema
    /// is missing or not usable by the current role (`SET search_path`
    /// accepts both, and either would silently send every query to `public`).
    ///
    /// Every identifier comes from a validated name through its quoting
    /// function; numbers and SeaORM's isolation/access keywords are not input.
    pub(crate) fn begin_statement(&self, path: &SearchPath, check: SchemaCheck<'_>) -> String {
        // Written piece by piece into one buffer: this runs on every
        // transaction, and `format!` with a string per quoted name cost
        // about a third of our client-side work per transaction (callgrind,
        // BENCHMARKS.md "Client-side cost").
        let mut sql = String::with_capacity(192);
        sql.push_str("BEGIN");
        if let Some(level) = self.isolation_level {
            let _ = write!(sql, " ISOLATION LEVEL {level}");
        }
        if let Some(mode) = self.access_mode {
            let _ = write!(sql, " {mode}");
        }
        sql.push_str("; ");
        path.push_set_local_statement(&mut sql);
        if let Some(role) = &self.role {
            sql.push_str("; SET LOCAL ROLE ");
            role.push_quoted(&mut sql);
        }
        if let Some(timeout) = self.statement_timeout {
            // At least 1 ms: 0 would mean "no timeout", the opposite of the intent.
            let millis = timeout.as_millis().max(1);
            let _ = write!(sql, "; SET LOCAL statement_timeout = {millis}");
        }
        // On every transaction, after SET ROLE: a schema dropped a moment ago,
        // or a role without USAGE, must never let a statement fall through to
        // the shared schemas (PostgreSQL silently skips a missing schema, or
        // one without USAGE, on the search path). See `schema_check`.
        match check {
            // A utility statement: no plan, so it costs next to nothing, and
            // resolving the qualified name fails with 3F000 when the schema is
            // missing and 42501 (from aclcheck_error) without USAGE. It takes
            // no snapshot either, so REPEATABLE READ still snapshots at the
            // caller's first statement.
            SchemaCheck::Lock(table) => {
                sql.push_str("; LOCK TABLE ");
                path.tenant().push_quoted(&mut sql);
                sql.push('.');
                table.push_quoted(&mut sql);
                sql.push_str(" IN ACCESS SHARE MODE");
            }
            // The cast fails with 3F000 when the schema is missing (while the
            // statement is parsed), the division with 22012 without USAGE. No
            // row comes back, but the server plans it every time.
            SchemaCheck::Select => {
                let _ = write!(
                    sql,
                    "; SELECT WHERE 1 / pg_catalog.has_schema_privilege({}, 'USAGE')::int = 0",
                    path.tenant().regnamespace()
                );
            }
        }
        sql
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenancy_core::TableName;

    #[test]
    fn begin_statement_is_one_message() {
        let path = SearchPath::new("tenant_acme".parse().unwrap());
        assert_eq!(
            ScopeOptions::new().begin_statement(&path, SchemaCheck::Select),
            r#"BEGIN; SET LOCAL search_path TO "tenant_acme", "public"; SELECT WHERE 1 / pg_catalog.has_schema_privilege('"tenant_acme"'::regnamespace, 'USAGE')::int = 0"#
        );
        let options = ScopeOptions::new()
            .isolation_level(IsolationLevel::RepeatableRead)
            .access_mode(AccessMode::ReadOnly)
            .role("app_ro".parse().unwrap())
            .statement_timeout(Duration::from_micros(10));
        assert_eq!(
            options.begin_statement(
                &SearchPath::strict("tenant_acme".parse().unwrap()),
                SchemaCheck::Select
            ),
            r#"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL search_path TO "tenant_acme"; SET LOCAL ROLE "app_ro"; SET LOCAL statement_timeout = 1; SELECT WHERE 1 / pg_catalog.has_schema_privilege('"tenant_acme"'::regnamespace, 'USAGE')::int = 0"#
        );
        let ledger = TableName::migration_ledger();
        assert_eq!(
            ScopeOptions::new().begin_statement(&path, SchemaCheck::Lock(&ledger)),
            r#"BEGIN; SET LOCAL search_path TO "tenant_acme", "public"; LOCK TABLE "tenant_acme"."seaql_migrations" IN ACCESS SHARE MODE"#
        );
    }
}
