//! The one validation function and the one quoting function for every schema
//! name that reaches SQL. Nothing else in the workspace may build an identifier.

use crate::error::{Error, NameKind};
use crate::keywords::reserved_keyword;

/// PostgreSQL truncates identifiers to `NAMEDATALEN - 1` bytes; we refuse instead,
/// because a silently truncated name could collide with another tenant's.
pub const MAX_IDENTIFIER_LEN: usize = 63;

const IDENT_START: &str = "a lowercase ASCII letter or '_'";
const IDENT_ALLOWED: &str = "lowercase ASCII letters, digits and '_'";

/// Checks `input` against the rules for `kind` (schema name, shared schema or
/// schema prefix). Keywords and system names are matched case-insensitively so
/// that `PUBLIC` or `Select` are reported as what they are rather than as a bad
/// character.
pub(crate) fn validate_identifier(input: &str, kind: NameKind) -> Result<(), Error> {
    let Some(first) = input.chars().next() else {
        return Err(Error::Empty { kind });
    };
    if input.len() > MAX_IDENTIFIER_LEN {
        return Err(Error::TooLong {
            kind,
            input: input.to_owned(),
            len: input.len(),
            max: MAX_IDENTIFIER_LEN,
        });
    }
    if kind == NameKind::SchemaName
        && (input.eq_ignore_ascii_case("public")
            || input.eq_ignore_ascii_case("information_schema"))
    {
        return Err(Error::SystemSchema {
            kind,
            input: input.to_owned(),
        });
    }
    if input
        .get(..3)
        .is_some_and(|start| start.eq_ignore_ascii_case("pg_"))
    {
        return Err(Error::SystemPrefix {
            kind,
            input: input.to_owned(),
        });
    }
    // A prefix is only the start of a name, so a keyword there is harmless.
    if kind != NameKind::SchemaPrefix
        && let Some(keyword) = reserved_keyword(input)
    {
        return Err(Error::ReservedKeyword {
            kind,
            input: input.to_owned(),
            keyword,
        });
    }
    if !(first.is_ascii_lowercase() || first == '_') {
        return Err(Error::InvalidStart {
            kind,
            input: input.to_owned(),
            character: first,
            expected: IDENT_START,
        });
    }
    if let Some((position, character)) = input
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
    {
        return Err(Error::InvalidCharacter {
            kind,
            input: input.to_owned(),
            position,
            character,
            allowed: IDENT_ALLOWED,
        });
    }
    Ok(())
}

/// Renders a validated name as a quoted SQL identifier.
///
/// Validation already excludes `"`, but doubling it here keeps this function
/// safe on its own: the quoting must never depend on a check made elsewhere.
pub(crate) fn quote_identifier(name: &str) -> String {
    let mut quoted = String::with_capacity(name.len() + 2);
    push_quoted_identifier(&mut quoted, name);
    quoted
}

/// [`quote_identifier`], appended to `out`: the opening of every scoped
/// transaction is written this way, without a string per name.
pub(crate) fn push_quoted_identifier(out: &mut String, name: &str) {
    out.reserve(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
}

/// Renders text as a SQL string literal, doubling `'`. Only ever applied to
/// an already quoted, validated identifier; doubling keeps it safe on its own.
pub(crate) fn quote_literal(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('\'');
    for c in text.chars() {
        if c == '\'' {
            quoted.push('\'');
        }
        quoted.push(c);
    }
    quoted.push('\'');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_doubles_embedded_quotes() {
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_identifier("tenant_acme"), "\"tenant_acme\"");
    }

    #[test]
    fn literal_quoting_doubles_single_quotes() {
        assert_eq!(quote_literal("a'b"), "'a''b'");
        assert_eq!(quote_literal("\"t\""), "'\"t\"'");
    }

    #[test]
    fn prefix_may_be_a_keyword_but_not_pg() {
        assert!(validate_identifier("user_", NameKind::SchemaPrefix).is_ok());
        assert!(validate_identifier("pg_", NameKind::SchemaPrefix).is_err());
    }

    #[test]
    fn shared_schema_may_be_public() {
        assert!(validate_identifier("public", NameKind::SharedSchema).is_ok());
        assert!(validate_identifier("public", NameKind::SchemaName).is_err());
    }
}
