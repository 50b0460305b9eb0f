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

/// The group's leader just before `at_us` (observations before it): the up node whose last
/// role is Leader, in the highest term.
pub fn leader_at(
    run: &sim::run::SeedRun,
    nodes: std::ops::Range<u32>,
    at_us: u64,
) -> Option<(broker_core::NodeId, broker_core::Term)> {
    use broker_core::raft::Role;
    use sim::world::observe::ObservedKind;
    let mut state: Vec<(bool, Option<(Role, broker_core::Term)>)> =
        vec![(true, None); nodes.end as usize];
    for o in run.observations.iter().filter(|o| o.at_us < at_us) {
        if !nodes.contains(&o.node.0) {
            continue;
        }
        let slot = &mut state[o.node.0 as usize];
        match o.kind {
            ObservedKind::Role { role, term } => *slot = (true, Some((role, term))),
            ObservedKind::Crashed => *slot = (false, None),
            ObservedKind::Restarted => slot.0 = true,
            _ => {}
        }
    }
    nodes
        .filter_map(|n| match state[n as usize] {
            (true, Some((Role::Leader, term))) => Some((broker_core::NodeId(n), term)),
            _ => None,
        })
        .max_by_key(|(_, term)| *term)
}

/// Runs one seed of a scenario text (file name `test.ron`); panics, failing the test, if the
/// seed panicked.
pub fn run_text(text: &str, seed: u64) -> (sim::run::outcome::SeedOutcome, sim::run::SeedRun) {
    let scenario = sim::scenario::Scenario::parse(text, "test.ron").expect("valid test scenario");
    let spec = std::sync::Arc::new(sim::run::RunSpec::from_scenario(&scenario));
    sim::run::seeds::run_one_full(spec, seed).expect("the seed runs without panicking")
}

/// The seed has no finding of any kind.
pub fn assert_clean(outcome: &sim::run::outcome::SeedOutcome) {
    assert!(
        outcome.findings.is_empty(),
        "seed {}: {:?}",
        outcome.seed,
        outcome.findings
    );
}
