//! issue 14: a deposed leader that clients still reach (`DeposeLeader`). The correct broker
//! acknowledges nothing it cannot commit there; the test-only AckBeforeCommit broker answers
//! SEND_OK from the deposed side and those sends are lost after the heal.

use sim::commands::common::run_report;
use sim::run::outcome::FindingKind;
use sim::scenario::{Broken, Scenario};
use std::path::Path;

const SEEDS: [u64; 2] = [1, 2];

fn scenario() -> Scenario {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/deposed_leader_clients.ron");
    Scenario::load(&path).expect("deposed_leader_clients is valid")
}

#[test]
fn a_deposed_leader_acknowledges_nothing_it_cannot_commit() {
    let report = run_report(&scenario(), &SEEDS, 2, false);
    for outcome in &report.per_seed {
        assert!(
            outcome.findings.is_empty(),
            "seed {}: {:?}",
            outcome.seed,
            outcome.findings
        );
        // Clients could reach only the deposed side: sends failed or went unanswered there.
        assert!(
            outcome.ops.failed + outcome.ops.unknown > 0,
            "{:?}",
            outcome.ops
        );
    }
}

#[test]
fn acknowledging_before_commit_loses_the_deposed_leaders_sends() {
    let mut scenario = scenario();
    scenario.cluster.broken = Broken::AckBeforeCommit;
    let report = run_report(&scenario, &SEEDS, 2, false);
    for outcome in &report.per_seed {
        assert!(
            outcome.count(FindingKind::LostAcked) > 0,
            "seed {}: {:?}",
            outcome.seed,
            outcome.findings
        );
    }
}
