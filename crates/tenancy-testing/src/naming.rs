//! Database names, identifier quoting and URL surgery.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use url::Url;

/// Prefix of every database this crate creates; the sweep only ever looks at these.
pub const DATABASE_PREFIX: &str = "tenancy_test_";

/// Databases older than this are considered abandoned by a crashed run.
pub const STALE_AFTER: Duration = Duration::from_secs(60 * 60);

static COUNTER: AtomicU64 = AtomicU64::new(0);

pub(crate) fn unix_now() -> u64 {
    // A clock before 1970 is not worth an error path: it only makes names look old.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `tenancy_test_<unix secs>_<pid>_<counter>`: the timestamp lets a later run date it,
/// pid + counter keep parallel binaries and parallel tests apart.
pub(crate) fn new_database_name() -> String {
    database_name(
        unix_now(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
    )
}

pub(crate) fn database_name(created_at: u64, pid: u32, counter: u64) -> String {
    format!("{DATABASE_PREFIX}{created_at}_{pid}_{counter}")
}

/// The creation time embedded in one of our names, or `None` for anything we did not
/// name (those are never swept).
pub(crate) fn created_at(name: &str) -> Option<u64> {
    let rest = name.strip_prefix(DATABASE_PREFIX)?;
    let mut parts = rest.split('_');
    let secs = parts.next()?.parse().ok()?;
    let pid = parts.next()?;
    let counter = parts.next()?;
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (all_digits(pid) && all_digits(counter) && parts.next().is_none()).then_some(secs)
}

pub(crate) fn is_stale(name: &str, now: u64) -> bool {
    // A timestamp in the future (clock skew between hosts) is treated as young.
    created_at(name).is_some_and(|t| now.saturating_sub(t) > STALE_AFTER.as_secs())
}

pub(crate) fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// `server_url` with its database path replaced, keeping credentials and query parameters
/// (`sslmode`, `host=/socket/dir`, ...).
pub(crate) fn url_with_database(
    server_url: &str,
    database: &str,
) -> Result<String, url::ParseError> {
    let mut url = Url::parse(server_url)?;
    url.set_path(&format!("/{database}"));
    Ok(url.into())
}

/// The URL with any password masked, for error messages and logs.
pub(crate) fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // Only fails for URLs that cannot have credentials, which this one just had.
            let _ = parsed.set_password(Some("***"));
            parsed.into()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_their_timestamp() {
        let name = database_name(1_732_370_000, 12345, 7);
        assert_eq!(name, "tenancy_test_1732370000_12345_7");
        assert_eq!(created_at(&name), Some(1_732_370_000));
    }

    #[test]
    fn foreign_names_are_not_dated() {
        for name in [
            "postgres",
            "tenancy_test_",
            "tenancy_test_abc_1_2",
            "tenancy_test_1732370000",
            "tenancy_test_1732370000_1",
            "tenancy_test_1732370000_1_2_3",
            "tenancy_test_1732370000_x_2",
            "tenancy_testing_1732370000_1_2",
        ] {
            assert_eq!(created_at(name), None, "{name}");
        }
    }

    #[test]
    fn staleness_is_strictly_older_than_an_hour() {
        let now = 1_000_000;
        assert!(is_stale(&database_name(now - 3601, 1, 0), now));
        assert!(!is_stale(&database_name(now - 3600, 1, 0), now));
        assert!(!is_stale(&database_name(now + 60, 1, 0), now));
        assert!(!is_stale("other_db", now));
    }

    #[test]
    fn names_are_unique_and_safe() {
        let a = new_database_name();
        let b = new_database_name();
        assert_ne!(a, b);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
        );
        assert!(
            a.len() <= 63,
            "PostgreSQL truncates identifiers at 63 bytes"
        );
    }

    #[test]
    fn identifiers_double_their_quotes() {
        assert_eq!(quote_ident("plain"), "\"plain\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn database_is_swapped_in_the_url() {
        assert_eq!(
            url_with_database("postgres://u:p@h:5433/postgres?sslmode=disable", "x").unwrap(),
            "postgres://u:p@h:5433/x?sslmode=disable"
        );
        assert_eq!(
            url_with_database("postgres://postgres@127.0.0.1:5432", "x").unwrap(),
            "postgres://postgres@127.0.0.1:5432/x"
        );
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("not a url"), "not a url");
    }
}
