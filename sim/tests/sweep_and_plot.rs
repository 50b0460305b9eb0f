//! `sim sweep` and the SVG plots through the binary: a sweep must order its rows as given and
//! show failover growing with the heartbeat; the plots must exist and name every replica's
//! lane, since a picture missing a replica would hide exactly the node that misbehaved.

mod common;
use common::{sim_in, workspace};

use std::path::PathBuf;

fn temp_dir(name: &str) -> PathBuf {
    common::temp_dir("plot", name)
}

/// The first number (ms) in the table cell `column` (0-based, cells split by '┆') of the row
/// that starts with `label`.
fn cell_ms(stdout: &str, label: &str, column: usize) -> f64 {
    let line = stdout
        .lines()
        .find(|l| l.contains(label))
        .unwrap_or_else(|| panic!("no row {label:?}:\n{stdout}"));
    let cell = line.split('┆').nth(column).expect("the column exists");
    cell.split('/')
        .next()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no number in {cell:?}"))
}

// Rows come in the order the values were given, and detection (3 missed heartbeats) must grow
// with the heartbeat: 500 ms -> about 2 s, 3 s -> about 9 s.
#[test]
fn sweep_of_two_heartbeats_orders_rows_and_grows_failover() {
    let out = temp_dir("sweep");
    let out_arg = out.display().to_string();
    let (code, stdout, stderr) = sim_in(
        &workspace(),
        &[
            "sweep",
            "scenarios/leader_crash.ron",
            "--set",
            "raft.heartbeat_interval=500ms,3s",
            "--seeds",
            "2",
            "--quiet",
            "--out",
            &out_arg,
        ],
    );
    assert!(
        code == 0 || code == 1,
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let fast = stdout
        .find("raft.heartbeat_interval=500ms")
        .expect("a row for 500ms");
    let slow = stdout
        .find("raft.heartbeat_interval=3s")
        .expect("a row for 3s");
    assert!(fast < slow, "rows in the given order:\n{stdout}");
    let detect_p50 = |label| cell_ms(&stdout, label, 1);
    assert!(
        detect_p50("raft.heartbeat_interval=3s")
            > detect_p50("raft.heartbeat_interval=500ms") + 3_000.0,
        "{stdout}"
    );
    let svg = std::fs::read_to_string(out.join("leader_crash").join("sweep.svg"))
        .expect("the sweep chart is written");
    assert!(svg.starts_with("<svg"), "an SVG document");
    assert!(svg.contains("client p99"), "the chart names its lines");
}

// `run --plot worst` re-runs the worst seed and draws it: one labelled lane per replica, plus
// the distribution of client failover across seeds.
#[test]
fn run_plot_worst_draws_a_lane_per_replica() {
    let out = temp_dir("run");
    let out_arg = out.display().to_string();
    let (code, stdout, stderr) = sim_in(
        &workspace(),
        &[
            "run",
            "scenarios/leader_crash.ron",
            "--seeds",
            "2",
            "--quiet",
            "--plot",
            "worst",
            "--out",
            &out_arg,
        ],
    );
    assert!(
        code == 0 || code == 1,
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let dir = out.join("leader_crash");
    let timeline = std::fs::read_dir(&dir)
        .expect("report dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".timeline.svg"))
        .unwrap_or_else(|| panic!("no timeline in {}:\n{stdout}", dir.display()));
    let svg = std::fs::read_to_string(&timeline).expect("timeline readable");
    for node in 0..3 {
        let label = format!("replica n{node}");
        assert_eq!(svg.matches(&label).count(), 1, "lane label {label} once");
    }
    assert!(!svg.contains("replica n3"), "three replicas, three lanes");
    for legend in ["leader", "follower", "down", "send ok"] {
        assert!(svg.contains(legend), "legend entry {legend}");
    }
    let histogram = std::fs::read_to_string(dir.join("failover-client.svg"))
        .expect("the failover histogram is written");
    assert!(histogram.contains("CDF"));
}

// `replay --plot` draws the replayed seed under reports/<scenario>/ of the working directory.
#[test]
fn replay_plot_draws_the_replayed_seed() {
    let dir = temp_dir("replay");
    let scenario = workspace().join("scenarios/leader_isolated.ron");
    let scenario_arg = scenario.display().to_string();
    let (code, stdout, stderr) = sim_in(&dir, &["replay", &scenario_arg, "--seed", "3", "--plot"]);
    assert!(
        code == 0 || code == 1,
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let svg = std::fs::read_to_string(dir.join("reports/leader_isolated/seed-3.timeline.svg"))
        .expect("the replayed seed's timeline is written");
    assert!(
        svg.contains("fault: Isolate"),
        "the fault window is labelled"
    );
    assert!(svg.contains("replica n2"));
}
