//! Progress of a fleet run, written while it runs.
//!
//! Events fire on the tasks migrating tenants, where the CLI's writer (a
//! borrowed `&mut impl Write`, neither `Send` nor `'static`) cannot go: they
//! travel as lines over a channel, and the task running the CLI writes them
//! while it drives the run.

use std::future::Future;
use std::io::Write;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;

use crate::{Error, FleetReport, MigrateAll, MigrationEvent};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// One line per finished tenant on the CLI's error writer (logs, CI,
    /// tests).
    Lines,
    /// A bar on the process's stderr, which is a terminal: only when that
    /// is the writer the CLI was given.
    Bar,
}

/// Runs `run` with `options` plus progress reporting, writing the progress
/// to `err` as it comes.
pub(super) async fn with_progress<F>(
    mode: Mode,
    options: MigrateAll,
    err: &mut impl Write,
    run: impl FnOnce(MigrateAll) -> F,
) -> Result<FleetReport, Error>
where
    F: Future<Output = Result<FleetReport, Error>>,
{
    match mode {
        Mode::Bar => {
            let bar = bar();
            let handle = bar.clone();
            let result = run(options.on_event(move |event| {
                handle.set_length(event.progress().total as u64);
                handle.set_message(event.tenant().to_string());
                if event.is_terminal() {
                    handle.inc(1);
                }
            }))
            .await;
            bar.finish_and_clear();
            result
        }
        Mode::Lines => {
            let (sender, mut lines) = mpsc::unbounded_channel();
            let run = run(options.on_event(move |event| {
                if let Some(line) = line(event) {
                    // The receiver outlives the run; nothing to do if not.
                    let _ = sender.send(line);
                }
            }));
            tokio::pin!(run);
            let result = loop {
                tokio::select! {
                    result = &mut run => break result,
                    Some(line) = lines.recv() => {
                        let _ = writeln!(err, "{line}");
                    }
                }
            };
            // Events sent just before the run ended.
            while let Ok(line) = lines.try_recv() {
                let _ = writeln!(err, "{line}");
            }
            result
        }
    }
}

fn bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// The line for a tenant's last event; nothing for `Started`.
fn line(event: &MigrationEvent<'_>) -> Option<String> {
    let progress = event.progress();
    let line = match event {
        MigrationEvent::Finished {
            tenant,
            applied: [],
            ..
        } => format!("{tenant}: nothing to do"),
        MigrationEvent::Finished {
            tenant,
            applied,
            duration,
            ..
        } => format!("{tenant}: {} migration(s) in {duration:.2?}", applied.len()),
        // The error itself is one line of the summary after the report.
        MigrationEvent::Failed { tenant, .. } => format!("{tenant}: FAILED"),
        MigrationEvent::Skipped { tenant, .. } => format!("{tenant}: skipped"),
        _ => return None,
    };
    Some(format!("[{progress}] {line}"))
}
