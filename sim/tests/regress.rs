//! The regression gate through the `sim` binary: CI trusts its exit code, so a slower
//! failover must exit 1 with a table naming the figure, an unchanged run must exit 0, and the
//! files it compares must be byte-identical from run to run.

mod common;
use common::{sim, workspace};

use sim::report::regress::Baseline;
use std::path::{Path, PathBuf};

/// A 3-seed baseline of scenarios/leader_crash.ron, small enough for the test suite.
const BASELINE: &str = "sim/tests/data/baselines/leader_crash_3_seeds.ron";

fn temp_dir(name: &str) -> PathBuf {
    common::temp_dir("regress", name)
}

/// The table row of `figure`, e.g. "detect p99 (ms)".
fn row<'a>(stdout: &'a str, figure: &str) -> &'a str {
    stdout
        .lines()
        .find(|line| line.contains(&format!(" {figure} ")))
        .unwrap_or_else(|| panic!("no row {figure:?} in:\n{stdout}"))
}

// The same scenario and seeds must not trip the gate, or CI would fail on every run. (Exact
// equality across runs of the same code is what `update_writes_a_deterministic_baseline` and
// `report_files_are_byte_identical_across_runs` check; this baseline may predate small,
// intended changes to the core.)
#[test]
fn unchanged_run_exits_0() {
    let (code, stdout, stderr) = sim(&[
        "regress",
        "scenarios/leader_crash.ron",
        "--baseline",
        BASELINE,
        "--quiet",
    ]);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("no regression"), "{stdout}");
    assert!(!stdout.contains("REGRESSED"), "{stdout}");
    let client_p99 = row(&stdout, "client p99 (ms)");
    assert!(
        client_p99.contains("same") || client_p99.contains("within tolerance"),
        "client p99 unchanged or within tolerance:\n{stdout}"
    );
}

// A longer heartbeat (2 s -> 3 s) delays detection by 3 missed heartbeats: the gate must
// catch it, exit 1, and say which figure moved.
#[test]
fn slower_heartbeat_in_a_copy_exits_1_naming_the_figure() {
    let original = std::fs::read_to_string(workspace().join("scenarios/leader_crash.ron"))
        .expect("the stock scenario exists");
    let slower = original.replace(r#"heartbeat_interval: "2s""#, r#"heartbeat_interval: "3s""#);
    assert_ne!(
        slower, original,
        "the scenario sets the heartbeat explicitly"
    );
    let path = temp_dir("slower").join("leader_crash.ron");
    std::fs::write(&path, slower).expect("temp scenario");
    let path = path.display().to_string();
    let (code, stdout, stderr) = sim(&["regress", &path, "--baseline", BASELINE, "--quiet"]);
    assert_eq!(code, 1, "stdout:\n{stdout}\nstderr:\n{stderr}");
    for figure in ["detect p99 (ms)", "elect p50 (ms)", "client p99 (ms)"] {
        assert!(row(&stdout, figure).contains("REGRESSED"), "{stdout}");
    }
    assert!(stdout.contains("REGRESSION:"), "{stdout}");
    assert!(stdout.contains("the scenario file differs"), "{stdout}");
}

// A shorter heartbeat (2 s -> 1 s) makes failover much faster: with deterministic runs that
// is a change to look at, not a pass. Exit 1 and "changed" unless `--accept` is given.
#[test]
fn much_faster_failover_is_a_change_to_look_at() {
    let original = std::fs::read_to_string(workspace().join("scenarios/leader_crash.ron"))
        .expect("the stock scenario exists");
    let faster = original.replace(r#"heartbeat_interval: "2s""#, r#"heartbeat_interval: "1s""#);
    assert_ne!(
        faster, original,
        "the scenario sets the heartbeat explicitly"
    );
    let path = temp_dir("faster").join("leader_crash.ron");
    std::fs::write(&path, faster).expect("temp scenario");
    let path = path.display().to_string();
    let (code, stdout, stderr) = sim(&["regress", &path, "--baseline", BASELINE, "--quiet"]);
    assert_eq!(code, 1, "stdout:\n{stdout}\nstderr:\n{stderr}");
    for figure in ["detect p99 (ms)", "client p99 (ms)"] {
        assert!(row(&stdout, figure).contains("changed"), "{stdout}");
    }
    assert!(stdout.contains("CHANGED:"), "{stdout}");
    assert!(!stdout.contains("REGRESSED"), "{stdout}");
    let (code, stdout, stderr) = sim(&[
        "regress",
        &path,
        "--baseline",
        BASELINE,
        "--quiet",
        "--accept",
    ]);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("accepted"), "{stdout}");
}

// `--update` writes a baseline a later run compares clean against, byte for byte the same
// each time (no wall-clock data), and it round-trips through the file format.
#[test]
fn update_writes_a_deterministic_baseline() {
    let dir = temp_dir("update");
    let first = dir.join("first.ron").display().to_string();
    let second = dir.join("second.ron").display().to_string();
    for path in [&first, &second] {
        let (code, stdout, stderr) = sim(&[
            "regress",
            "scenarios/leader_isolated.ron",
            "--baseline",
            path,
            "--update",
            "--seeds",
            "2",
            "--quiet",
        ]);
        assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    }
    let bytes = |p: &str| std::fs::read(p).expect("baseline written");
    assert_eq!(bytes(&first), bytes(&second));
    let baseline = Baseline::load(Path::new(&first)).expect("the baseline parses");
    assert_eq!(baseline.scenario, "leader_isolated");
    assert_eq!(baseline.seeds, vec![1, 2]);
    let (code, stdout, _) = sim(&[
        "regress",
        "scenarios/leader_isolated.ron",
        "--baseline",
        &first,
        "--quiet",
    ]);
    assert_eq!(code, 0, "{stdout}");
}

// Report files are what people diff and archive: two runs must write the same bytes, and the
// file must name the scenario, its hash and its seeds.
#[test]
fn report_files_are_byte_identical_across_runs() {
    let mut texts = Vec::new();
    for name in ["a", "b"] {
        let out = temp_dir(&format!("report-{name}"));
        let out_arg = out.display().to_string();
        let (code, stdout, stderr) = sim(&[
            "run",
            "scenarios/leader_crash.ron",
            "--seeds",
            "2",
            "--quiet",
            "--out",
            &out_arg,
        ]);
        assert!(
            code == 0 || code == 1,
            "stdout:\n{stdout}\nstderr:\n{stderr}"
        );
        let read = |file: &str| {
            std::fs::read_to_string(out.join("leader_crash").join(file)).expect("report written")
        };
        texts.push((read("report.ron"), read("report.json")));
    }
    assert_eq!(texts[0], texts[1]);
    let ron = &texts[0].0;
    for needle in [
        "scenario: \"leader_crash\"",
        "scenario_hash:",
        "per_seed:",
        "p99_us:",
    ] {
        assert!(ron.contains(needle), "{needle} missing from report.ron");
    }
}

// A baseline for a different scenario is bad input (exit 2), never a silent comparison.
#[test]
fn baseline_of_another_scenario_exits_2() {
    let (code, _, stderr) = sim(&[
        "regress",
        "scenarios/leader_isolated.ron",
        "--baseline",
        BASELINE,
        "--quiet",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("leader_crash"), "{stderr}");
}
