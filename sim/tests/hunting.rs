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

const HUNT: &str = "scenarios/swarm_hunt.ron";

/// swarm_hunt's variant `name`, loaded from the workspace.
fn hunt_variant(name: &str) -> sim::scenario::Scenario {
    let path = common::workspace().join(HUNT);
    let scenario = sim::scenario::Scenario::load(&path).expect("swarm_hunt is valid");
    scenario
        .variant_scenarios()
        .expect("its variants apply")
        .into_iter()
        .find(|v| v.variant.as_deref() == Some(name))
        .expect("the variant exists")
}

fn run_seeds(
    scenario: &sim::scenario::Scenario,
    seeds: &[u64],
) -> Vec<sim::run::outcome::SeedOutcome> {
    let spec = std::sync::Arc::new(sim::run::RunSpec::from_scenario(scenario));
    sim::run::seeds::run_seeds(spec, seeds, 2, false)
}

/// A compressed-timing cluster under one leader crash, with `trigger` armed at certainty.
fn triggered(trigger: &str) -> String {
    format!(
        r#"Scenario(
    name: "trigger",
    seeds: (first: 1, count: 1),
    duration: "6s",
    cluster: (groups: 1, replicas: 3, read_mode: RaftLogRead,
              raft: (heartbeat_interval: "50ms", max_heartbeat_leak: 3,
                     vote_interval: ("10ms", "50ms"), max_wait_ack: "1s", pre_vote: false)),
    workload: (producers: 2, send_rate: 20, topics: [(name: "t", queues: 1)], consumers: 1,
               send_timeout: "1s"),
    faults: [
        (at: "2s", fault: Crash(Leader(group: 0))),
        (at: "3s", fault: Restart(AllCrashed)),
    ],
    triggers: [(on: {trigger}, chance_ppm: 1000000, down: "300ms")],
    settle_max: "20s",
)"#
    )
}

// Each trigger fires on its event and does what it says; the cluster stays safe (Raft rules).
#[test]
fn each_trigger_fires_on_its_event() {
    for (trigger, event) in [
        ("CrashAfterVoteGrant", Some("voter_crashed_after_grant")),
        ("PowerLoseAfterAppendAck", None),
        ("PowerLoseAfterSendOk", None),
        ("PauseWithPendingRead", None),
    ] {
        let (outcome, _) = common::run_text(&triggered(trigger), 1);
        let fired = outcome.triggers.get(trigger).copied().unwrap_or(0);
        assert!(fired >= 1, "{trigger} never fired: {:?}", outcome.triggers);
        if let Some(event) = event {
            assert!(
                outcome.events.get(event).copied().unwrap_or(0) >= 1,
                "{trigger}: {event} not counted: {:?}",
                outcome.events
            );
        }
        assert!(
            outcome.findings.iter().all(|f| !f.is_safety()),
            "{trigger}: {:?}",
            outcome.findings
        );
        // The trigger's fault moved the run: more elections than the one scripted crash.
        if trigger != "PauseWithPendingRead" {
            assert!(
                outcome.elections >= 3,
                "{trigger}: {} elections",
                outcome.elections
            );
        }
    }
}

// The hunt's configuration per seed: drawn from the seed alone, stored in the outcome, and the
// compressed timing gives many elections; coverage counts are non-zero on a few seeds.
#[test]
fn swarm_hunt_seeds_draw_their_configuration_and_reach_deep_events() {
    let scenario = hunt_variant("raft");
    let outcomes = run_seeds(&scenario, &[1, 2, 3, 4]);
    let again = run_seeds(&scenario, &[1, 2, 3, 4]);
    assert_eq!(outcomes, again, "the same seeds give the same runs");
    let mut configs = std::collections::BTreeSet::new();
    let mut totals: std::collections::BTreeMap<String, u32> = Default::default();
    for outcome in &outcomes {
        let config = outcome
            .config
            .as_ref()
            .expect("a swarm seed stores its draw");
        configs.insert(config.to_string());
        assert!(
            outcome.elections >= 5,
            "seed {}: {} elections",
            outcome.seed,
            outcome.elections
        );
        assert!(
            outcome.findings.iter().all(|f| !f.is_safety()),
            "seed {}: {:?}",
            outcome.seed,
            outcome.findings
        );
        for (event, count) in &outcome.events {
            *totals.entry(event.clone()).or_insert(0) += count;
        }
    }
    assert_eq!(
        configs.len(),
        4,
        "each seed draws its own configuration: {configs:?}"
    );
    for event in ["commit_over_old_terms", "follower_truncated_uncommitted"] {
        assert!(
            totals.get(event).copied().unwrap_or(0) > 0,
            "{event}: {totals:?}"
        );
    }
    // Raft's rules never commit an older-term entry by count.
    assert_eq!(totals.get("old_term_commit"), None, "{totals:?}");
}

// The test-only broker that acknowledges before commit, run under the hunt's configuration
// (raft variant): caught by a data-loss finding (lost, not linearizable, Raft invariant) in at
// least 7 of seeds 1-10 (7 measured; 84 of seeds 1-100). `HUNT_ACK_SEEDS=100` measures the
// share over more seeds (README has the figure).
#[test]
fn ack_before_commit_is_caught_under_the_hunt() {
    let mut scenario = hunt_variant("raft");
    scenario.cluster.broken = sim::scenario::Broken::AckBeforeCommit;
    let count: u64 = std::env::var("HUNT_ACK_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10);
    let seeds: Vec<u64> = (1..=count).collect();
    let caught = run_seeds(&scenario, &seeds)
        .iter()
        .filter(|o| {
            o.findings.iter().any(|f| {
                f.is_safety() && f.kind() != sim::run::outcome::FindingKind::AckedNotConsumed
            })
        })
        .count();
    println!("AckBeforeCommit caught in {caught} of {count} seeds");
    assert!(
        caught * 10 >= seeds.len() * 7,
        "caught in {caught} of {} seeds",
        seeds.len()
    );
}

const CLOCK_SKIPS: &str = "sim/tests/data/faults/broken_clock_skips.ron";

fn unexplained(outcome: &sim::run::outcome::SeedOutcome) -> u32 {
    outcome
        .findings
        .iter()
        .filter_map(|f| match f {
            sim::run::outcome::Finding::UnexplainedElection { count, .. } => Some(*count),
            _ => None,
        })
        .sum()
}

// The unexplained-election oracle against a planted timer defect it was not written with:
// clocks that silently skip ahead make followers campaign while their leader is heard. The
// same calm cluster with the real clocks gives no such finding, and the defect is reported as
// liveness, never as data loss.
#[test]
fn elections_nothing_explains_are_found_and_only_then() {
    let path = common::workspace().join(CLOCK_SKIPS);
    let broken = sim::scenario::Scenario::load(&path).expect("the planted scenario is valid");
    let seeds: Vec<u64> = (1..=10).collect();
    let outcomes = run_seeds(&broken, &seeds);
    let caught = outcomes.iter().filter(|o| unexplained(o) > 0).count();
    assert!(caught >= 5, "caught in {caught} of 10 seeds");
    for outcome in &outcomes {
        assert!(
            outcome.findings.iter().all(|f| !f.is_safety()),
            "seed {}: {:?}",
            outcome.seed,
            outcome.findings
        );
    }
    let mut real = broken.clone();
    real.cluster.broken = sim::scenario::Broken::Off;
    for outcome in run_seeds(&real, &seeds) {
        assert_eq!(
            unexplained(&outcome),
            0,
            "seed {}: {:?}",
            outcome.seed,
            outcome.findings
        );
        assert_eq!(
            outcome.elections, 1,
            "seed {}: a calm cluster elects once",
            outcome.seed
        );
    }
}
