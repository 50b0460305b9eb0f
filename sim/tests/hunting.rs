//! Hunting through the `sim` binary: `run --until-finding` stops at the first seed with a
//! finding and prints its replay command; `findability` prints each kind's share of seeds.
//! The broker that acknowledges before commit (a test-only bug) is the quarry.

mod common;
use common::sim;

const BROKEN: &str = "sim/tests/data/faults/broken_ack_before_commit.ron";

// The first seed with a finding, in order, and nothing after it; the same answer every run.
#[test]
fn until_finding_stops_at_the_first_finding_seed() {
    let out = common::temp_dir("hunting", "until");
    let out = out.to_str().expect("a UTF-8 temp path");
    let args = [
        "run",
        BROKEN,
        "--seeds",
        "8",
        "--until-finding",
        "--jobs",
        "2",
        "--quiet",
        "--out",
        out,
    ];
    let (code, stdout, stderr) = sim(&args);
    assert_eq!(code, 1, "a finding exits 1:\n{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find(|line| line.starts_with("first finding after"))
        .unwrap_or_else(|| panic!("no first-finding line:\n{stdout}"));
    assert!(
        line.contains("REPRODUCE WITH: cargo run --release -p sim -- replay"),
        "{line}"
    );
    let ran: usize = line
        .trim_start_matches("first finding after ")
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a seed count in {line:?}"));
    assert!((1..8).contains(&ran), "stopped early: {line}");
    assert!(stdout.contains(&format!("{ran} seeds in")), "{stdout}");
    let (again, stdout_again, _) = sim(&args);
    assert_eq!(again, 1);
    let line_again = stdout_again
        .lines()
        .find(|line| line.starts_with("first finding after"))
        .expect("the same line again");
    assert_eq!(
        line, line_again,
        "which seed is first does not depend on timing"
    );
}

// A clean scenario runs every seed and says so, exit 0.
#[test]
fn until_finding_without_a_finding_runs_every_seed() {
    let out = common::temp_dir("hunting", "clean");
    let (code, stdout, stderr) = sim(&[
        "run",
        "scenarios/leader_crash.ron",
        "--seeds",
        "2",
        "--until-finding",
        "--quiet",
        "--out",
        out.to_str().expect("a UTF-8 temp path"),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("no finding in 2 seeds"), "{stdout}");
}

// Findability names the kind, its share and the clean seeds a fix needs.
#[test]
fn findability_prints_share_and_clean_seeds_per_kind() {
    let (code, stdout, stderr) = sim(&["findability", BROKEN, "--seeds", "5", "--quiet"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("findability of broken_ack_before_commit over 5 seeds"),
        "{stdout}"
    );
    let row = stdout
        .lines()
        .find(|line| line.contains("lost_acked"))
        .unwrap_or_else(|| panic!("a lost_acked row:\n{stdout}"));
    assert!(row.contains(" of 5"), "{row}");
}
