//! The quickstart, the axum example and the admin example against a database that is not
//! there: one line on stderr naming host:port, the cause and what to set,
//! never a Debug dump, and `health`'s own "cannot check" exit code.
#![cfg(feature = "cli")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod example_binary;
use example_binary::example_binary;
use std::path::PathBuf;
use std::process::{Command, Output};

/// The example binary (see `example_binary`).
fn example(name: &str) -> PathBuf {
    example_binary(name, "cli,axum")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// Nothing listens on port 1 of the loopback: refused at once.
const REFUSED: &str = "postgres://postgres:hunter2@127.0.0.1:1/postgres";

#[test]
fn the_quickstart_says_in_one_line_what_to_set() {
    let output = Command::new(example("quickstart"))
        .env("TENANCY_TEST_DATABASE_URL", REFUSED)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = stderr(&output);
    assert_eq!(err.lines().count(), 1, "{err}");
    for wanted in [
        "127.0.0.1:1",
        "connection refused",
        "TENANCY_TEST_DATABASE_URL",
    ] {
        assert!(err.contains(wanted), "{wanted}: {err}");
    }
    assert!(!err.contains('{') && !err.contains("hunter2"), "{err}");
}

#[cfg(feature = "axum")]
#[test]
fn the_axum_example_says_in_one_line_what_to_set() {
    let output = Command::new(example("axum_app"))
        .env("TENANCY_TEST_DATABASE_URL", REFUSED)
        .env("PORT", "0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = stderr(&output);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("127.0.0.1:1: connection refused"), "{err}");
    assert!(!err.contains('{') && !err.contains("hunter2"), "{err}");
}

#[test]
fn the_admin_example_cannot_check_health_without_a_database() {
    let output = Command::new(example("admin"))
        .env("DATABASE_URL", REFUSED)
        .args(["--connect-timeout", "2", "health"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let err = stderr(&output);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("127.0.0.1:1") && err.contains("connection refused"),
        "{err}"
    );
    assert!(!err.contains('{') && !err.contains("hunter2"), "{err}");
}
