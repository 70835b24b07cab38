//! The examples as a user runs them: processes built from `examples/`.

use std::path::PathBuf;
use std::process::Command;

/// The binary of example `name`. `cargo test` builds examples next to
/// `deps/`, where the test runs from; when the test was built alone
/// (`--test <file>`), the example is built here with `features`.
pub(crate) fn example_binary(name: &str, features: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !path.exists() {
        let mut build = Command::new(env!("CARGO"));
        build.args(["build", "--quiet", "--example", name]);
        if !features.is_empty() {
            build.args(["--features", features]);
        }
        let status = build.status().unwrap();
        assert!(status.success(), "cannot build the {name} example");
    }
    path
}
