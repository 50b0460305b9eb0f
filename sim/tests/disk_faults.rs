//! issue 15: the unsafe switch (`cluster.broken: VoteAfterDiskLoss`) must be caught by
//! lost_vote_double_leader, and the same schedule with the switch off must be clean: the wiped
//! replica votes for nobody until it has caught up from a leader.

use sim::commands::common::run_report;
use sim::scenario::{Broken, Scenario};
use std::path::Path;

const SEEDS: [u64; 2] = [1, 2];

fn scenario() -> Scenario {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/lost_vote_double_leader.ron");
    Scenario::load(&path).expect("lost_vote_double_leader is valid")
}

#[test]
fn the_unsafe_switch_is_caught() {
    let scenario = scenario();
    assert_eq!(Broken::VoteAfterDiskLoss, scenario.cluster.broken);
    let report = run_report(&scenario, &SEEDS, 2, false);
    for outcome in &report.per_seed {
        assert!(
            !outcome.findings.is_empty(),
            "seed {}: the wiped replica voted at once and nothing was found",
            outcome.seed
        );
    }
}

#[test]
fn the_same_schedule_without_the_switch_is_clean() {
    let mut scenario = scenario();
    scenario.cluster.broken = Broken::Off;
    let report = run_report(&scenario, &SEEDS, 2, false);
    for outcome in &report.per_seed {
        assert!(
            outcome.findings.is_empty(),
            "seed {}: {:?}",
            outcome.seed,
            outcome.findings
        );
    }
}
