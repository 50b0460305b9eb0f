//! `sim shrink` through the binary: the test-only AckBeforeCommit broker under a swarm of
//! overlapping faults (19 played for seed 2) is cut down to at most two faults that still
//! lose acknowledged sends; the minimal file replays to the same finding, deterministically;
//! a seed without the finding asked for is bad input.

mod common;
use common::sim;

const SWARM: &str = "sim/tests/data/faults/broken_ack_before_commit_swarm.ron";

fn header_field<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find_map(|line| line.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{text}"))
}

#[test]
fn shrinks_the_swarm_schedule_to_two_faults_that_still_lose_acked_sends() {
    let out = common::temp_dir("shrink", "swarm");
    let out_text = out.to_str().expect("a UTF-8 temp path");
    let args = [
        "shrink", SWARM, "--seed", "2", "--jobs", "2", "--quiet", "--out", out_text,
    ];
    let (code, stdout, stderr) = sim(&args);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("its schedule made explicit: 19 faults"),
        "{stdout}"
    );
    let path = out.join("broken_ack_before_commit_swarm/seed-2.min.ron");
    assert!(
        stdout.contains(&format!("minimal scenario: {}", path.display())),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "REPRODUCE WITH: cargo run --release -p sim -- replay {} --seed 2",
            path.display()
        )),
        "{stdout}"
    );
    assert!(out
        .join("broken_ack_before_commit_swarm/seed-2.min.timeline.svg")
        .is_file());
    let text = std::fs::read_to_string(&path).expect("the minimal scenario is written");
    assert_eq!(
        header_field(&text, "// Still finds: "),
        "lost_acked (seed 2)."
    );
    let to = header_field(&text, "// To:   ");
    let faults: usize = to
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no fault count in {to:?}"));
    assert!(faults <= 2, "shrunk to {faults} faults: {to}");
    assert_eq!(
        text.matches("fault: ").count(),
        faults,
        "the header counts the file's faults:\n{text}"
    );

    // The minimal file on its own: the same finding, and two identical runs.
    let trace = out.join("min.trace");
    let trace_text = trace.to_str().expect("a UTF-8 temp path");
    let path_text = path.to_str().expect("a UTF-8 temp path");
    let (code, stdout, stderr) = sim(&["replay", path_text, "--seed", "2", "--trace", trace_text]);
    assert_eq!(code, 1, "a finding exits 1:\n{stdout}\n{stderr}");
    assert!(stdout.contains("lost_acked"), "{stdout}");
    assert!(
        stdout.contains("identical, the run is deterministic"),
        "{stdout}"
    );
}

#[test]
fn a_seed_without_the_finding_is_bad_input() {
    let out = common::temp_dir("shrink", "clean");
    let out = out.to_str().expect("a UTF-8 temp path");
    let (code, stdout, stderr) = sim(&[
        "shrink",
        "scenarios/leader_crash.ron",
        "--seed",
        "1",
        "--quiet",
        "--out",
        out,
    ]);
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("seed 1 has no finding: nothing to shrink"),
        "{stderr}"
    );
    let (code, _, stderr) = sim(&[
        "shrink",
        SWARM,
        "--seed",
        "2",
        "--finding",
        "duplicate",
        "--quiet",
        "--out",
        out,
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("seed 2 has no \"duplicate\" finding (it has: "),
        "{stderr}"
    );
    let (code, _, stderr) = sim(&[
        "shrink",
        SWARM,
        "--seed",
        "2",
        "--max-trials",
        "0",
        "--out",
        out,
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--max-trials must be at least 1"),
        "{stderr}"
    );
}
