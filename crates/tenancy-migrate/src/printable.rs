//! Names in human-readable output: a schema, table or tenant name read from
//! the database may hold a newline or a control character, and printed raw
//! it could forge a line of a report or move the terminal's cursor.

use std::borrow::Cow;

/// `text` unchanged when it is plain printable text, otherwise quoted with
/// Rust's escapes (`"tenant_x\n0 tenants: healthy"`), so it can never start
/// a line of its own.
pub(crate) fn printable(text: &str) -> Cow<'_, str> {
    let quoted = format!("{text:?}");
    // Debug adds the two quotes and escapes anything unsafe (control
    // characters, line separators, quotes, backslashes); when it added
    // nothing else, the text is safe as it is.
    if quoted.len() == text.len() + 2 {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(quoted)
    }
}

/// [`printable`] over a list, joined with `", "`.
pub(crate) fn printable_list(items: &[String]) -> String {
    items
        .iter()
        .map(|item| printable(item))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn plain_names_are_unchanged_and_others_escaped() {
        assert_eq!(printable("tenant_acme"), "tenant_acme");
        assert_eq!(printable("Acme Corp"), "Acme Corp");
        assert_eq!(printable("Zürich"), "Zürich");
        assert_eq!(printable("a\nb"), r#""a\nb""#);
        assert_eq!(printable("a\rb"), r#""a\rb""#);
        assert_eq!(printable("\u{1b}[2J"), r#""\u{1b}[2J""#);
        assert_eq!(printable("a\u{2028}b"), r#""a\u{2028}b""#);
        assert_eq!(printable("say \"hi\""), r#""say \"hi\"""#);
    }
}
