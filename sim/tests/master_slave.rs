//! Classic master–slave replication in the simulated world: ASYNC_MASTER with ASYNC_FLUSH loses
//! acknowledged sends when the master loses power (and the report explains them), SYNC_MASTER
//! loses none across a master crash, and neither ever promotes a slave.

use sim::commands::common::run_report;
use sim::report::print::lost_acks_explained;
use sim::run::outcome::{FindingKind, SeedOutcome};
use sim::scenario::Scenario;
use std::path::Path;

fn scenario(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(name);
    Scenario::load(&path).expect("stock scenarios are valid")
}

fn lost_acked(outcome: &SeedOutcome) -> usize {
    outcome
        .findings
        .iter()
        .filter(|f| f.kind() == FindingKind::LostAcked)
        .count()
}

// The deterministic seeds 1..=3 each lose 49 to 63 acknowledged sends (under one flush
// interval of page-cache writes); every loss is explained by the master's lost writes, and the
// scenario's expectations (lost_acked <= 150, not linearizable) hold.
#[test]
fn async_master_power_loss_loses_acknowledged_sends_and_explains_them() {
    let scenario = scenario("async_master_crash_disk_loss.ron");
    let report = run_report(&scenario, &[1, 2, 3], 2, false);
    assert!(report.all_held(), "{:?}", report.expectations);
    let lost: Vec<usize> = report.per_seed.iter().map(lost_acked).collect();
    assert!(
        lost.iter().any(|n| *n > 0),
        "some seed loses acknowledged sends: {lost:?}"
    );
    for outcome in &report.per_seed {
        if lost_acked(outcome) == 0 {
            continue;
        }
        let lost_writes = outcome
            .lost_writes
            .first()
            .expect("a master restarted with fewer entries than it acknowledged");
        assert!(lost_writes.recovered_index < lost_writes.committed_index);
        assert!(
            (lost_writes.committed_index.0 - lost_writes.recovered_index.0) as usize
                >= lost_acked(outcome),
            "the master lost at least as many entries as clients lost acknowledged sends"
        );
        assert_eq!(outcome.failovers.len(), 1, "the master crash is a failover");
        let failover = &outcome.failovers[0];
        assert_eq!(
            (failover.detect_us, failover.elect_us, failover.commit_us),
            (None, None, None),
            "no election in master–slave mode"
        );
        assert!(
            failover.client_us.expect("sends succeed again") >= 10_000_000,
            "sends succeed only after the master is back (10 s later)"
        );
    }
    let text = lost_acks_explained(&report).expect("the report explains the losses");
    assert!(text.contains("restarted at 25.0 s"), "{text}");
    // The scenario's consumers read some lost messages before the power loss: the reuse of
    // their offsets and the consumers' skips are attributed to the loss (`all_held` above
    // means no other safety finding was left unexplained).
    let kinds: Vec<FindingKind> = report
        .per_seed
        .iter()
        .flat_map(|o| o.findings.iter().map(|f| f.kind()))
        .collect();
    assert!(
        kinds.contains(&FindingKind::LostAckedOffsetReused),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&FindingKind::LostAckedConsumerSkip),
        "{kinds:?}"
    );
    assert!(text.contains("consumer skips over their offsets"), "{text}");
}

// SYNC_MASTER acknowledges only what a slave holds durably, and the crashed master keeps what
// it handed to the OS: nothing acknowledged is lost, the queues stay linearizable, and clients
// wait for the master (no promotion) for at least its 20 s of downtime.
#[test]
fn sync_master_crash_loses_nothing_and_waits_for_the_master() {
    let scenario = scenario("sync_master_crash.ron");
    let report = run_report(&scenario, &[1, 2, 3], 2, false);
    assert!(report.all_held(), "{:?}", report.expectations);
    for outcome in &report.per_seed {
        assert!(
            outcome.findings.is_empty(),
            "seed {}: {:?}",
            outcome.seed,
            outcome.findings
        );
        assert!(outcome.lost_writes.is_empty());
        assert!(outcome.ops.sent_ok > 0);
        let client = outcome.failovers[0]
            .client_us
            .expect("sends succeed again after the master restarts");
        assert!(
            client >= 20_000_000,
            "seed {}: a send succeeded {client} µs after the crash, before the master was back",
            outcome.seed
        );
    }
    assert!(lost_acks_explained(&report).is_none());
}
