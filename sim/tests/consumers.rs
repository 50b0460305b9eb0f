//! Consumers in the simulated world: across a DLedger leader crash, the consumer group receives
//! every acknowledged message at least once, each queue in queue order; and `sim compare`
//! prints one row per scenario.

use sim::check::Verdict;
use sim::history::{OpInput, OpOutcome};
use sim::run::evaluate::{evaluate, queue_contents};
use sim::run::run_seed;
use sim::run::RunSpec;
use sim::scenario::Scenario;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

const SCENARIO: &str = r#"
Scenario(
    name: "consumers_leader_crash",
    seeds: (first: 1, count: 2),
    duration: "20s",
    cluster: (groups: 1, replicas: 3, replication: DLedger,
              raft: (heartbeat_interval: "500ms", max_heartbeat_leak: 3,
                     vote_interval: ("100ms", "300ms")),
              network: (latency: ("1ms", "5ms"), loss_ppm: 0),
              disk: (fsync: "2ms")),
    workload: (producers: 3, send_rate: 40, topics: [(name: "orders", queues: 3)],
               consumers: 2, send_timeout: "2s"),
    faults: [
        (at: "8s", fault: Crash(Leader(group: 0))),
        (at: "14s", fault: Restart(AllCrashed)),
    ],
    expect: (linearizable: true, lost_acked: 0),
)
"#;

// Why: the issue's promise for consumers: every acknowledged message reaches the consumer
// group at least once, and every pull returns the queue's committed log from the offset it
// asked for (queue order), across a failover; offset commits never show up as messages.
#[test]
fn consumers_receive_every_acknowledged_message_in_queue_order() {
    let scenario = Scenario::parse(SCENARIO, "consumers_leader_crash.ron").expect("valid");
    let spec = Arc::new(RunSpec::from_scenario(&scenario));
    for seed in [1u64, 2] {
        let spec_for_seed = spec.clone();
        let run = std::thread::spawn(move || run_seed(spec_for_seed, seed))
            .join()
            .expect("the seed does not panic");
        let outcome = evaluate(&spec, &run);
        assert!(
            outcome.findings.is_empty(),
            "seed {seed}: {:?}",
            outcome.findings
        );
        assert_eq!(
            outcome.check.verdict,
            Some(Verdict::Linearizable),
            "seed {seed}"
        );
        // The most advanced replica's committed queues (the final logs hold no offset commit).
        let final_log = run
            .final_logs
            .iter()
            .max_by_key(|log| log.len())
            .expect("replicas");
        let queues = queue_contents(0, final_log);
        let mut delivered: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        let mut pulls = 0;
        for op in &run.history {
            let (OpInput::Pull { queue, offset, .. }, OpOutcome::Pulled { bodies }) =
                (&op.input, &op.outcome)
            else {
                continue;
            };
            pulls += 1;
            let log = &queues[queue.as_str()];
            let start = *offset as usize;
            assert_eq!(
                &log[start..start + bodies.len()],
                bodies.as_slice(),
                "seed {seed}: a pull of {queue} at {offset} returns the log from there"
            );
            delivered
                .entry(queue.as_str())
                .or_default()
                .extend(bodies.iter().map(String::as_str));
        }
        assert!(pulls > 100, "seed {seed}: consumers pulled ({pulls} pulls)");
        let mut acked = 0;
        for op in &run.history {
            if let (OpInput::Send { queue, body }, OpOutcome::Sent { .. }) =
                (&op.input, &op.outcome)
            {
                acked += 1;
                assert!(
                    delivered
                        .get(queue.as_str())
                        .is_some_and(|bodies| bodies.contains(body.as_str())),
                    "seed {seed}: acknowledged {body} in {queue} was never consumed"
                );
            }
        }
        assert!(acked > 1_000, "seed {seed}: {acked} acknowledged sends");
        assert!(outcome.ops.delivered >= acked, "seed {seed}");
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

// Why: `sim compare` is one table with a row per scenario file, run through the binary.
#[test]
fn compare_prints_a_row_per_scenario() {
    let scenarios = workspace().join("scenarios");
    let dledger = scenarios.join("leader_crash.ron");
    let sync = scenarios.join("sync_master_crash.ron");
    let output = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(["compare", "--seeds", "1", "--quiet"])
        .arg(&dledger)
        .arg(&sync)
        .current_dir(workspace())
        .output()
        .expect("the sim binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{stdout}\n{stderr}"
    );
    let row = |name: &str, mode: &str| {
        stdout
            .lines()
            .filter(|line| line.contains(name) && line.contains(mode))
            .count()
    };
    assert_eq!(row("leader_crash", "DLedger"), 1, "{stdout}");
    assert_eq!(row("sync_master_crash", "SyncMasterSlave"), 1, "{stdout}");
    assert!(stdout.contains("delivered to consumers"), "{stdout}");
}
