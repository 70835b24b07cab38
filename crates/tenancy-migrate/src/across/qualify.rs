//! Rendering one select per tenant with its tables qualified by the
//! tenant's schema: a sea-query `QueryBuilder` that renders exactly as
//! PostgreSQL's does, except that every unqualified table reference (in
//! `FROM`, in joins, in subqueries at any depth) is written
//! `"tenant_schema"."table"`, the schema through [`SchemaName::quoted`].
//!
//! What cannot be qualified safely is not rendered unqualified: it is
//! recorded as a refusal, and the caller turns it into an error before
//! anything runs. Refused: common table expressions (their names would be
//! qualified as tables), data-modifying subqueries, tables qualified with a
//! database or with a schema that is not one of the fleet's shared
//! schemas, and raw SQL (`Expr::cust`) that could hold a query of its own.
//! As a second line, the reading transaction's search path holds only the
//! shared schemas, so a name that escaped all this could not resolve to any
//! tenant's table.

use std::cell::{Cell, RefCell};
use std::fmt::Write;

use sea_orm::sea_query::{
    BinOper, EscapeBuilder, ExplainStatement, Expr, Func, Oper, OperLeftAssocDecider, OrderExpr,
    PostgresQueryBuilder, PrecedenceDecider, QueryBuilder, Quote, QuotedBuilder, SelectDistinct,
    SelectInto, SelectStatement, SqlWriter, SubQueryStatement, TableName, TableRef,
    TableRefBuilder, Value, WithClause,
};
use tenancy_core::SchemaName;

/// The prefix of the alias of the subquery that holds one tenant's branch
/// of a chunk: when the builder enters it, it qualifies with that branch's
/// schema.
const BRANCH_PREFIX: &str = "tenancy_branch_";

/// The alias of branch `index`.
pub(super) fn branch_alias(index: usize) -> String {
    format!("{BRANCH_PREFIX}{index}")
}

/// A PostgreSQL builder that qualifies tenant tables (see the module docs).
pub(super) struct Qualifier<'a> {
    /// Branch `i`'s schema is `schemas[i]`.
    schemas: &'a [SchemaName],
    /// The schemas a select may name explicitly (the shared ones).
    shared: &'a [String],
    /// The branch being rendered, if inside one.
    current: Cell<Option<usize>>,
    /// The first reason the statement cannot be rendered safely.
    refused: RefCell<Option<String>>,
}

impl<'a> Qualifier<'a> {
    pub(super) fn new(schemas: &'a [SchemaName], shared: &'a [String]) -> Self {
        Self {
            schemas,
            shared,
            current: Cell::new(None),
            refused: RefCell::new(None),
        }
    }

    /// Why the statement rendered so far cannot run, if it cannot.
    pub(super) fn refusal(&self) -> Option<String> {
        self.refused.borrow().clone()
    }

    fn refuse(&self, reason: String) {
        let mut refused = self.refused.borrow_mut();
        if refused.is_none() {
            *refused = Some(reason);
        }
    }

    /// The branch an outermost subquery alias names.
    fn branch_of(&self, alias: &str) -> Option<usize> {
        let index: usize = alias.strip_prefix(BRANCH_PREFIX)?.parse().ok()?;
        (index < self.schemas.len()).then_some(index)
    }

    fn prepare_table(&self, table: &TableName, sql: &mut impl SqlWriter) {
        let TableName(schema, name) = table;
        match (schema, self.current.get()) {
            (None, Some(branch)) => {
                if let Some(tenant) = self.schemas.get(branch) {
                    write_str(sql, &tenant.quoted());
                    write_str(sql, ".");
                }
                self.prepare_iden(name, sql);
            }
            (None, None) => {
                self.refuse(format!("table {name} is outside any tenant's branch"));
                self.prepare_table_name(table, sql);
            }
            (Some(schema), _) => {
                if schema.0.is_some() {
                    self.refuse(format!(
                        "table {name} is qualified with a database; name only shared schemas"
                    ));
                } else if !self.shared.iter().any(|s| *s == schema.1.to_string()) {
                    self.refuse(format!(
                        "table {}.{name} names a schema that is not one of the fleet's shared \
                         schemas; leave tenant tables unqualified",
                        schema.1
                    ));
                }
                self.prepare_table_name(table, sql);
            }
        }
    }
}

fn write_str(sql: &mut impl SqlWriter, s: &str) {
    // sea-query builds into a String, to which writing cannot fail.
    let _ = sql.write_str(s);
}

/// Whether raw SQL could hold a query of its own (a subquery reads tables).
fn may_query(raw: &str) -> bool {
    raw.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .any(|word| word.eq_ignore_ascii_case("select") || word.eq_ignore_ascii_case("table"))
}

impl QuotedBuilder for Qualifier<'_> {
    fn quote(&self) -> Quote {
        PostgresQueryBuilder.quote()
    }
}

impl EscapeBuilder for Qualifier<'_> {
    fn needs_escape(&self, s: &str) -> bool {
        PostgresQueryBuilder.needs_escape(s)
    }

    fn write_escaped(&self, buffer: &mut impl Write, string: &str) {
        PostgresQueryBuilder.write_escaped(buffer, string);
    }

    fn unescape_string(&self, string: &str) -> String {
        PostgresQueryBuilder.unescape_string(string)
    }
}

impl TableRefBuilder for Qualifier<'_> {}

impl OperLeftAssocDecider for Qualifier<'_> {
    fn well_known_left_associative(&self, op: &BinOper) -> bool {
        PostgresQueryBuilder.well_known_left_associative(op)
    }
}

impl PrecedenceDecider for Qualifier<'_> {
    fn inner_expr_well_known_greater_precedence(&self, inner: &Expr, outer_oper: &Oper) -> bool {
        PostgresQueryBuilder.inner_expr_well_known_greater_precedence(inner, outer_oper)
    }
}

/// PostgreSQL's rendering, delegated for everything that holds no table
/// reference; what can hold one is rendered here, with `self`.
impl QueryBuilder for Qualifier<'_> {
    fn placeholder(&self) -> (&'static str, bool) {
        PostgresQueryBuilder.placeholder()
    }

    fn prepare_expr(&self, expr: &Expr, sql: &mut impl SqlWriter) {
        match expr {
            Expr::Custom(raw) | Expr::CustomWithExpr(raw, _) if may_query(raw) => {
                self.refuse(format!(
                    "raw SQL {raw:?} may hold a query, whose tables cannot be qualified; \
                     build it with sea-query instead"
                ));
                self.prepare_expr_common(expr, sql);
            }
            // A cast to an enum type: PostgreSQL's own rendering, whose inner
            // expression is a value or a column in practice; a subquery in
            // it would meet the shared-only search path and fail.
            Expr::AsEnum(..) => PostgresQueryBuilder.prepare_expr(expr, sql),
            _ => self.prepare_expr_common(expr, sql),
        }
    }

    fn write_value(&self, buf: &mut impl Write, value: &Value) -> std::fmt::Result {
        PostgresQueryBuilder.write_value(buf, value)
    }

    fn prepare_select_distinct(&self, distinct: &SelectDistinct, sql: &mut impl SqlWriter) {
        PostgresQueryBuilder.prepare_select_distinct(distinct, sql);
    }

    fn prepare_select_into(&self, into: &SelectInto, sql: &mut impl SqlWriter) {
        self.refuse("SELECT INTO writes a table; a read across tenants only reads".to_owned());
        PostgresQueryBuilder.prepare_select_into(into, sql);
    }

    fn prepare_bin_oper(&self, bin_oper: &BinOper, sql: &mut impl SqlWriter) {
        PostgresQueryBuilder.prepare_bin_oper(bin_oper, sql);
    }

    fn prepare_query_statement(&self, query: &SubQueryStatement, sql: &mut impl SqlWriter) {
        match query {
            SubQueryStatement::SelectStatement(select) => {
                self.prepare_select_statement(select, sql);
            }
            _ => self.refuse("only SELECT subqueries can be read across tenants".to_owned()),
        }
    }

    fn prepare_explain_statement(&self, explain: &ExplainStatement, sql: &mut impl SqlWriter) {
        self.refuse("EXPLAIN cannot be read across tenants".to_owned());
        PostgresQueryBuilder.prepare_explain_statement(explain, sql);
    }

    fn prepare_function_name(&self, function: &Func, sql: &mut impl SqlWriter) {
        PostgresQueryBuilder.prepare_function_name(function, sql);
    }

    fn prepare_table_sample(&self, select: &SelectStatement, sql: &mut impl SqlWriter) {
        PostgresQueryBuilder.prepare_table_sample(select, sql);
    }

    fn prepare_order_expr(&self, order_expr: &OrderExpr, sql: &mut impl SqlWriter) {
        // Its fields are private, so PostgreSQL's builder renders it; a
        // subquery in an ORDER BY would meet the shared-only search path.
        PostgresQueryBuilder.prepare_order_expr(order_expr, sql);
    }

    fn prepare_value(&self, value: Value, sql: &mut impl SqlWriter) {
        PostgresQueryBuilder.prepare_value(value, sql);
    }

    fn write_string_quoted(&self, string: &str, buffer: &mut impl Write) {
        PostgresQueryBuilder.write_string_quoted(string, buffer);
    }

    fn write_bytes(&self, bytes: &[u8], buffer: &mut impl Write) {
        PostgresQueryBuilder.write_bytes(bytes, buffer);
    }

    fn if_null_function(&self) -> &str {
        PostgresQueryBuilder.if_null_function()
    }

    fn prepare_with_clause(&self, with_clause: &WithClause, sql: &mut impl SqlWriter) {
        self.refuse(
            "common table expressions (WITH) are not supported: their names would be read \
             as tenant tables; use a subquery in FROM"
                .to_owned(),
        );
        PostgresQueryBuilder.prepare_with_clause(with_clause, sql);
    }

    fn prepare_table_ref(&self, table_ref: &TableRef, sql: &mut impl SqlWriter) {
        match table_ref {
            TableRef::Table(table, alias) => {
                self.prepare_table(table, sql);
                if let Some(alias) = alias {
                    write_str(sql, " AS ");
                    self.prepare_iden(alias, sql);
                }
            }
            TableRef::SubQuery(query, alias) => {
                let outer = self.current.get();
                if outer.is_none() {
                    self.current.set(self.branch_of(&alias.to_string()));
                }
                write_str(sql, "(");
                self.prepare_select_statement(query, sql);
                write_str(sql, ") AS ");
                self.prepare_iden(alias, sql);
                self.current.set(outer);
            }
            // A VALUES list holds values; a set-returning function in FROM
            // holds expressions, rendered by PostgreSQL's builder (a subquery
            // in its arguments would meet the shared-only search path).
            other => PostgresQueryBuilder.prepare_table_ref(other, sql),
        }
    }
}
