//! What the CLI prints: error lines with what to do, the tenant table, JSON.

use std::io::Write;

use super::Exit;
use crate::printable::printable;
use crate::{CorruptRecord, Error, TenantRecord};

/// A clap outcome: `--help` and `--version` go to `out` and succeed; a usage
/// error is one line on `err` and exit code 2.
pub(super) fn clap_error(error: &clap::Error, out: &mut impl Write, err: &mut impl Write) -> Exit {
    use clap::error::ErrorKind;
    let rendered = error.render().to_string();
    match error.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = write!(out, "{rendered}");
            // A bare invocation prints help but did nothing: usage error.
            if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                Exit::Usage
            } else {
                Exit::Success
            }
        }
        _ => {
            // clap adds usage and tips on further lines; one line is the promise.
            let first = rendered
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("error");
            let _ = writeln!(err, "{first} (run with --help for usage)");
            Exit::Usage
        }
    }
}

/// Writes `message` as one line on `err` and returns `exit`.
pub(super) fn fail(err: &mut impl Write, exit: Exit, message: &str) -> Exit {
    let _ = writeln!(err, "error: {}", one_line(message));
    exit
}

/// What the CLI was doing when an error came, so that its hint is true.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// `create`: a failure leaves nothing registered or created.
    Create,
    /// `adopt`: a failure leaves the schema as it was and unregistered.
    Adopt,
    /// Anything else.
    Other,
}

/// The circumstances of an error, for its hint.
#[derive(Debug)]
pub(super) struct Situation<'a> {
    pub(super) action: Action,
    /// Whether the CLI connected by itself (`--database-url` exists).
    pub(super) connects: bool,
    /// The registry table, when the error came from its absence.
    pub(super) missing_registry: Option<&'a str>,
}

/// One line for a library error: its message (which names the tenant) and,
/// where the message does not say it, what to do about it, in the CLI's
/// words (commands and flags, never library types).
pub(super) fn error(err: &mut impl Write, error: &Error, situation: &Situation<'_>) -> Exit {
    fail(err, Exit::Failure, &message(error, situation))
}

fn message(error: &Error, situation: &Situation<'_>) -> String {
    if let Some(table) = situation.missing_registry {
        let url = if situation.connects {
            " (or check that --database-url names the right database)"
        } else {
            ""
        };
        return format!(
            "{error}; the registry {table} does not exist in this database: run `install` \
             first{url}"
        );
    }
    // The library's messages name library calls here; say them as commands.
    match error {
        Error::TenantDeleted { tenant } => {
            return format!(
                "tenant {tenant} is deleted, so it cannot be resumed or suspended; `drop \
                 {tenant} --yes` drops it for good and frees its id and schema"
            );
        }
        Error::DropNotConfirmed { tenant } => {
            return format!(
                "refusing to drop tenant {tenant} and its schema without confirmation; pass --yes"
            );
        }
        _ => {}
    }
    match hint(error, situation.action) {
        Some(hint) => format!("{error}; {hint}"),
        None => error.to_string(),
    }
}

fn hint(error: &Error, action: Action) -> Option<String> {
    Some(match (error, action) {
        (Error::UnknownTenant { .. }, _) => "run `list` to see the registered tenants".to_owned(),
        (Error::SchemaMissing { .. }, Action::Adopt) => {
            "nothing was registered; check the schema's name, or create the schema first".to_owned()
        }
        (Error::SchemaMissing { tenant, .. }, _) => format!(
            "recreate the schema (or restore it from a backup), or unregister the tenant with \
             `drop {tenant} --yes`"
        ),
        (Error::SchemaExists { tenant, schema }, _) => {
            format!("to register it as this tenant: `adopt {tenant} {schema}`")
        }
        (Error::Migration { .. } | Error::Panicked { .. }, Action::Create) => {
            "nothing was registered or created; fix the migration and run it again".to_owned()
        }
        (Error::Migration { .. } | Error::Panicked { .. }, Action::Adopt) => {
            "the schema was left as it was and nothing was registered; fix the migration and \
             run it again"
                .to_owned()
        }
        (Error::Migration { .. } | Error::RevertFailed { .. } | Error::Panicked { .. }, _) => {
            "the tenant was rolled back unchanged; fix the migration and run it again".to_owned()
        }
        (Error::SharedMigration { .. }, _) => {
            "the shared schema was rolled back unchanged; fix the migration and run it again"
                .to_owned()
        }
        (Error::CorruptRegistry { .. }, _) => "`list` shows every unreadable row".to_owned(),
        _ => return None,
    })
}

/// Server errors can span lines; the CLI promises one line per error, so
/// whitespace runs become one space and any other control character is
/// escaped.
fn one_line(message: &str) -> String {
    message
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// One error line per unreadable registry row; `Some(Exit::Failure)` when
/// there was any.
pub(super) fn corrupt(err: &mut impl Write, rows: &[CorruptRecord]) -> Option<Exit> {
    for row in rows {
        fail(
            err,
            Exit::Failure,
            &format!("{row}; fix or remove the row by hand"),
        );
    }
    (!rows.is_empty()).then_some(Exit::Failure)
}

/// `value` as pretty JSON on `out`.
pub(super) fn json(
    out: &mut impl Write,
    err: &mut impl Write,
    value: &impl serde::Serialize,
) -> Exit {
    match serde_json::to_writer_pretty(&mut *out, value) {
        Ok(()) => {
            let _ = writeln!(out);
            Exit::Success
        }
        Err(e) => fail(err, Exit::Failure, &format!("could not write JSON: {e}")),
    }
}

/// The tenants as an aligned table: id, schema, status, name, domain.
pub(super) fn table(out: &mut impl Write, records: &[TenantRecord]) {
    let rows: Vec<[String; 5]> = records
        .iter()
        .map(|r| {
            [
                r.id.to_string(),
                r.schema.to_string(),
                r.status.to_string(),
                printable(&r.display_name).into_owned(),
                printable(r.domain.as_deref().unwrap_or_default()).into_owned(),
            ]
        })
        .collect();
    let header = ["ID", "SCHEMA", "STATUS", "NAME", "DOMAIN"].map(str::to_owned);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
}
