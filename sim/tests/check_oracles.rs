//! The linear-time safety oracles, each fed a crafted history that breaks exactly its property:
//! an oracle that cannot fire is worse than none, because it reads as "checked and fine".

use std::collections::{BTreeMap, BTreeSet};

use sim::check::gen::{log_history, GenOptions};
use sim::check::oracles::{
    check, undecided_sends, FinalState, SafetyViolation, SendStatus, Sighting,
};
use sim::history::{OpInput, OpOutcome, Operation};

fn send(client: u32, body: &str, at: u64, outcome: OpOutcome) -> Operation {
    Operation {
        client,
        input: OpInput::Send {
            queue: "q".to_string(),
            body: body.to_string(),
        },
        invoke_us: at,
        complete_us: at + 5,
        outcome,
    }
}

fn pull(client: u32, offset: u64, bodies: &[&str], at: u64) -> Operation {
    Operation {
        client,
        input: OpInput::Pull {
            queue: "q".to_string(),
            offset,
            max: 8,
        },
        invoke_us: at,
        complete_us: at + 5,
        outcome: OpOutcome::Pulled {
            bodies: bodies.iter().map(|body| body.to_string()).collect(),
        },
    }
}

fn finals(log: &[&str]) -> FinalState {
    FinalState {
        committed: BTreeMap::from([(
            "q".to_string(),
            log.iter().map(|body| body.to_string()).collect(),
        )]),
        replicas: BTreeMap::new(),
        open: BTreeSet::new(),
    }
}

fn sent(offset: u64) -> OpOutcome {
    OpOutcome::Sent { offset }
}

#[test]
fn an_honest_generated_run_has_no_violations() {
    // Why: oracles run on every seed; a false alarm on a correct run would drown real findings.
    for seed in 0..10 {
        let generated = log_history(&GenOptions {
            ops: 2_000,
            clients: 8,
            parts: 3,
            unknown_ppm: 20_000,
            seed,
            ..GenOptions::default()
        });
        let finals = FinalState {
            committed: generated.final_logs.clone(),
            replicas: BTreeMap::from([
                ("n1".to_string(), generated.final_logs.clone()),
                ("n2".to_string(), generated.final_logs.clone()),
            ]),
            open: BTreeSet::new(),
        };
        assert_eq!(check(&generated.history, &finals), vec![], "seed {seed}");
    }
}

#[test]
fn lost_acknowledged_send() {
    // Why: losing a SEND_OK message after failover is the bug this testbed exists to find.
    let history = vec![send(0, "a", 0, sent(0)), send(1, "b", 10, sent(1))];
    let violations = check(&history, &finals(&["a"]));
    assert_eq!(
        violations,
        vec![SafetyViolation::LostAcknowledgedSend {
            op: 1,
            queue: "q".to_string(),
            offset: 1,
            body: "b".to_string(),
            found: None,
        }]
    );
}

#[test]
fn acknowledged_at_another_offset() {
    // Why: issue 18: a broker that acknowledges at the wrong offset was reported as a lost send
    // plus a duplicate per message; it is one violation per send naming both offsets.
    let history = vec![
        send(0, "a", 0, sent(5)),
        send(1, "b", 10, sent(6)),
        pull(2, 0, &["a", "b"], 20),
    ];
    let violations = check(&history, &finals(&["a", "b"]));
    assert_eq!(
        violations,
        vec![
            SafetyViolation::AckedAtOtherOffset {
                op: 0,
                queue: "q".to_string(),
                body: "a".to_string(),
                acked_offset: 5,
                stored_offset: 0,
            },
            SafetyViolation::AckedAtOtherOffset {
                op: 1,
                queue: "q".to_string(),
                body: "b".to_string(),
                acked_offset: 6,
                stored_offset: 1,
            },
        ]
    );
}

#[test]
fn a_queue_with_only_a_committed_prefix_decides_what_it_holds() {
    // Why: a group that did not settle has applied only a prefix of what it committed: an
    // acknowledged send past it is undecided (not lost), one contradicted inside it is lost,
    // and an unknown send pulled past it may simply not be applied yet.
    let history = vec![
        send(0, "a", 0, sent(0)),
        send(1, "b", 10, sent(1)),
        send(2, "c", 20, sent(2)),
        send(3, "d", 30, OpOutcome::Unknown),
        pull(4, 3, &["d"], 40),
    ];
    let mut open = finals(&["a", "x"]);
    open.open.insert("q".to_string());
    let violations = check(&history, &open);
    assert!(
        matches!(
            violations.as_slice(),
            [SafetyViolation::LostAcknowledgedSend { op: 1, .. }, ..]
        ),
        "{violations:#?}"
    );
    assert!(
        !violations.iter().any(|violation| matches!(
            violation,
            SafetyViolation::LostAcknowledgedSend { op: 2, .. }
                | SafetyViolation::ReadOfUnacknowledged { .. }
        )),
        "{violations:#?}"
    );
    assert_eq!(
        undecided_sends(&history, &open),
        BTreeMap::from([("q".to_string(), vec![2])])
    );
    // The same logs, settled: the send past the end is lost, the pulled unknown one too.
    let settled = check(&history, &finals(&["a", "x"]));
    assert!(settled.iter().any(|violation| matches!(
        violation,
        SafetyViolation::LostAcknowledgedSend { op: 2, .. }
    )));
    assert!(settled.iter().any(|violation| matches!(
        violation,
        SafetyViolation::ReadOfUnacknowledged { op: 4, .. }
    )));
}

#[test]
fn same_offset_two_bodies() {
    // Why: two clients told the same offset for different messages means two leaders committed.
    let history = vec![
        send(0, "a", 0, sent(0)),
        send(1, "b", 0, sent(0)),
        pull(2, 0, &["b"], 20),
    ];
    let violations = check(&history, &FinalState::default());
    assert!(
        violations.iter().any(|violation| matches!(
            violation,
            SafetyViolation::OffsetConflict {
                offset: 0,
                first: Sighting::Ack { op: 0 },
                second: Sighting::Ack { op: 1 },
                ..
            }
        )),
        "{violations:#?}"
    );
}

#[test]
fn duplicate_body() {
    // Why: a retried send stored twice is delivered twice.
    let history = vec![send(0, "a", 0, sent(0)), send(1, "b", 10, sent(1))];
    let violations = check(&history, &finals(&["a", "b", "a"]));
    assert!(
        violations.iter().any(|violation| matches!(
            violation,
            SafetyViolation::Duplicate {
                first_offset: 0,
                second_offset: 2,
                ..
            }
        )),
        "{violations:#?}"
    );
}

#[test]
fn consumption_skips_and_goes_backwards() {
    // Why: a consumer that silently skips or re-reads entries breaks per-queue order.
    let log = ["a", "b", "c", "d"];
    let history = vec![
        send(0, "a", 0, sent(0)),
        send(0, "b", 10, sent(1)),
        send(0, "c", 20, sent(2)),
        send(0, "d", 30, sent(3)),
        // Client 1 continues from offset 1 after reading [a] but gets c: a skip.
        pull(1, 0, &["a"], 40),
        pull(1, 1, &["c"], 50),
        // Client 2 reads [a, b] then continues at 2 but gets a again: backwards.
        pull(2, 0, &["a", "b"], 40),
        pull(2, 2, &["a"], 50),
    ];
    let violations = check(&history, &finals(&log));
    assert!(
        violations.iter().any(|violation| matches!(
            violation,
            SafetyViolation::ConsumptionSkip {
                op: 5,
                client: 1,
                after_offset: 0,
                next_offset: 2,
                ..
            }
        )),
        "{violations:#?}"
    );
    assert!(
        violations.iter().any(|violation| matches!(
            violation,
            SafetyViolation::ConsumptionBackwards {
                op: 7,
                client: 2,
                after_offset: 1,
                next_offset: 0,
                ..
            }
        )),
        "{violations:#?}"
    );
}

#[test]
fn reads_of_failed_unacknowledged_or_unsent_bodies() {
    // Why: pulls read committed entries only; a read entry missing from the final log was lost,
    // and a failed send must not be visible at all.
    let history = vec![
        send(0, "failed", 0, OpOutcome::Fail),
        send(1, "timed-out", 0, OpOutcome::Unknown),
        send(2, "applied-anyway", 0, OpOutcome::Fail),
        pull(3, 0, &["failed", "timed-out", "never"], 20),
    ];
    let violations = check(&history, &finals(&["applied-anyway"]));
    let statuses: Vec<(String, SendStatus)> = violations
        .iter()
        .filter_map(|violation| match violation {
            SafetyViolation::ReadOfUnacknowledged { body, status, .. } => {
                Some((body.clone(), *status))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("failed".to_string(), SendStatus::Failed),
            ("timed-out".to_string(), SendStatus::Unacknowledged),
            ("never".to_string(), SendStatus::NeverSent),
        ]
    );
    assert!(
        violations.iter().any(|violation| matches!(
            violation,
            SafetyViolation::FailedSendApplied {
                op: 2,
                offset: 0,
                ..
            }
        )),
        "{violations:#?}"
    );
}

#[test]
fn unsent_entry_in_log() {
    // Why: an entry nobody sent means corruption or a phantom write.
    let history = vec![send(0, "a", 0, sent(0))];
    let violations = check(&history, &finals(&["a", "phantom"]));
    assert!(
        violations.iter().any(|violation| matches!(
            violation,
            SafetyViolation::UnsentEntryInLog { offset: 1, .. }
        )),
        "{violations:#?}"
    );
}

#[test]
fn replicas_that_diverge() {
    // Why: committed entries must be identical on every replica (Log Matching).
    let log = |bodies: &[&str]| {
        BTreeMap::from([(
            "q".to_string(),
            bodies
                .iter()
                .map(|body| body.to_string())
                .collect::<Vec<String>>(),
        )])
    };
    let finals = FinalState {
        committed: log(&["a", "b"]),
        replicas: BTreeMap::from([
            ("n1".to_string(), log(&["a", "b"])),
            // A shorter committed prefix is fine; a different entry is not.
            ("n2".to_string(), log(&["a"])),
            ("n3".to_string(), log(&["a", "x"])),
        ]),
        open: BTreeSet::new(),
    };
    let history = vec![send(0, "a", 0, sent(0)), send(0, "b", 10, sent(1))];
    let violations = check(&history, &finals);
    assert_eq!(
        violations,
        vec![SafetyViolation::ReplicaDivergence {
            queue: "q".to_string(),
            offset: 1,
            replica: "n1".to_string(),
            body: "b".to_string(),
            other_replica: "n3".to_string(),
            other_body: "x".to_string(),
        }]
    );
}
