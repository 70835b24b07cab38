//! What the CLI prints: error lines, the tenant table, JSON, progress.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::Exit;
use crate::printable::printable;
use crate::{CorruptRecord, Error, MigrateAll, MigrationEvent, TenantRecord};

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

/// One line for a library error: its message (which names the tenant) and,
/// where the message does not say it, what to do about it.
pub(super) fn error(err: &mut impl Write, error: &Error) -> Exit {
    let message = match hint(error) {
        Some(hint) => format!("{error}; {hint}"),
        None => error.to_string(),
    };
    fail(err, Exit::Failure, &message)
}

fn hint(error: &Error) -> Option<String> {
    Some(match error {
        Error::UnknownTenant { .. } => "run `list` to see the registered tenants".to_owned(),
        Error::TenantDeleted { tenant } => format!("here: `drop {tenant} --yes`"),
        Error::SchemaMissing { tenant, .. } => {
            format!("recreate the schema, or unregister the tenant with `drop {tenant} --yes`")
        }
        Error::Migration { .. } | Error::Rollback { .. } | Error::Panicked { .. } => {
            "the tenant was rolled back unchanged; fix the migration and run it again".to_owned()
        }
        Error::SharedMigration { .. } => {
            "the shared schema was rolled back unchanged; fix the migration and run it again"
                .to_owned()
        }
        Error::Database { .. } => {
            "check --database-url (or DATABASE_URL) and that `install` has run".to_owned()
        }
        Error::CorruptRegistry { .. } => "`list` shows every unreadable row".to_owned(),
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

/// Adds progress reporting to a fleet run: a bar on a terminal, one line per
/// finished tenant otherwise (logs, CI). The bar, if any, is returned so the
/// caller clears it before printing the report.
pub(super) fn with_progress(options: MigrateAll) -> (MigrateAll, Option<ProgressBar>) {
    if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(0);
        if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}") {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(200));
        let handle = bar.clone();
        let options = options.on_event(move |event| {
            handle.set_length(event.progress().total as u64);
            handle.set_message(event.tenant().to_string());
            if event.is_terminal() {
                handle.inc(1);
            }
        });
        (options, Some(bar))
    } else {
        (options.on_event(plain_line), None)
    }
}

fn plain_line(event: &MigrationEvent<'_>) {
    let progress = event.progress();
    let line = match event {
        MigrationEvent::Finished {
            tenant,
            applied,
            duration,
            ..
        } => {
            format!("{tenant}: {} migration(s) in {duration:.2?}", applied.len())
        }
        MigrationEvent::Failed { error, .. } => format!("FAILED: {}", one_line(&error.to_string())),
        MigrationEvent::Skipped { tenant, .. } => format!("{tenant}: skipped"),
        _ => return,
    };
    let _ = writeln!(std::io::stderr().lock(), "[{progress}] {line}");
}
