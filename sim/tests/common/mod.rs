//! Helpers shared by the integration tests that drive the `sim` binary. Each test crate uses
//! only some of them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root: scenario paths in tests are relative to it.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs the `sim` binary in `dir`; returns (exit code, stdout, stderr).
pub fn sim_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the sim binary runs");
    (
        output
            .status
            .code()
            .expect("sim exits, it is not killed by a signal"),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs the `sim` binary from the workspace root.
pub fn sim(args: &[&str]) -> (i32, String, String) {
    sim_in(&workspace(), args)
}

/// A fresh folder per test process: `hasim-<prefix>-<pid>-<name>` under the temp dir.
pub fn temp_dir(prefix: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hasim-{prefix}-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
