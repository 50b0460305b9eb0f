//! Linear-time safety oracles over a log history and the final logs, run on every seed (Jepsen's
//! Kafka checker is the model). Each violation names the broker property it breaks and the
//! operations (history indices) that show it. Cheaper and more specific than the search, but
//! they only see what these patterns catch; the search sees everything the log model forbids.
//!
//! A queue missing from `FinalState::committed` has no known final log: the oracles that need one
//! skip it. A queue in `FinalState::open` has only a committed prefix (its group did not settle:
//! entries past it may be committed but not yet applied); an acknowledged send past that prefix
//! is neither lost nor kept (`undecided_sends`).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::hashing::{FxBuild, FxMap};
use super::settle::FinalLogs;
use crate::history::{OpInput, OpOutcome, Operation};

/// What the cluster held at the end of the run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FinalState {
    /// The committed log of each queue, as the leader serves it after healing.
    pub committed: FinalLogs,
    /// The committed entries of each replica (by replica name), per queue.
    pub replicas: BTreeMap<String, FinalLogs>,
    /// Queues whose `committed` log is a prefix only: their group did not settle and had
    /// committed entries that no replica had applied at the end.
    pub open: BTreeSet<String>,
}

/// Where a body was seen at an offset.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Sighting {
    /// The acknowledgement of send number `op` (history index).
    Ack { op: usize },
    /// The answer to pull number `op`.
    Pull { op: usize },
    /// The final committed log.
    FinalLog,
}

/// Why a pulled body should not have been there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendStatus {
    /// Its send was answered `Fail`.
    Failed,
    /// Its send's outcome was `Unknown`.
    Unacknowledged,
    /// No client ever sent it.
    NeverSent,
}

/// A broken safety property, with the evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SafetyViolation {
    /// An acknowledged send whose body the final log holds at another offset: the broker told
    /// the client the wrong place (the message itself is kept).
    AckedAtOtherOffset {
        op: usize,
        queue: String,
        body: String,
        acked_offset: u64,
        stored_offset: u64,
    },
    /// Durability of SEND_OK: an acknowledged send's body is not at its offset in the final log.
    LostAcknowledgedSend {
        op: usize,
        queue: String,
        offset: u64,
        body: String,
        /// What the final log holds there instead (`None`: the log is shorter).
        found: Option<String>,
    },
    /// One queue offset, two bodies (State Machine Safety, Raft §5.4.3, seen from clients).
    OffsetConflict {
        queue: String,
        offset: u64,
        first_body: String,
        first: Sighting,
        second_body: String,
        second: Sighting,
    },
    /// One body at two offsets: delivered or stored twice.
    Duplicate {
        queue: String,
        body: String,
        first_offset: u64,
        first: Sighting,
        second_offset: u64,
        second: Sighting,
    },
    /// A client's consecutive pulled bodies jump over entries of the final log.
    ConsumptionSkip {
        op: usize,
        client: u32,
        queue: String,
        /// Final-log offset of the previous body this client consumed and of the next one.
        after_offset: u64,
        next_offset: u64,
    },
    /// A client's consecutive pulled bodies go back in the final log.
    ConsumptionBackwards {
        op: usize,
        client: u32,
        queue: String,
        after_offset: u64,
        next_offset: u64,
    },
    /// A pull returned a body that was never acknowledged and is not in the final log: pulls
    /// read committed entries only, and committed entries are never lost.
    ReadOfUnacknowledged {
        op: usize,
        queue: String,
        body: String,
        status: SendStatus,
    },
    /// A send answered `Fail` (definitely not applied) whose body is in the final log.
    FailedSendApplied {
        op: usize,
        queue: String,
        body: String,
        offset: u64,
    },
    /// The final log holds a body no client sent.
    UnsentEntryInLog {
        queue: String,
        offset: u64,
        body: String,
    },
    /// Two replicas hold different committed entries at one offset (Log Matching, Raft §5.3).
    ReplicaDivergence {
        queue: String,
        offset: u64,
        replica: String,
        body: String,
        other_replica: String,
        other_body: String,
    },
}

/// Runs every oracle. Violations come in a fixed order: per oracle, then history order.
pub fn check(history: &[Operation], finals: &FinalState) -> Vec<SafetyViolation> {
    let mut violations = Vec::new();
    lost_acknowledged_sends(history, finals, &mut violations);
    offset_conflicts_and_duplicates(history, &finals.committed, &mut violations);
    consumption_order(history, &finals.committed, &mut violations);
    unacknowledged_reads(history, &finals.committed, &finals.open, &mut violations);
    replica_divergence(&finals.replicas, &mut violations);
    violations
}

/// Each queue's final log as body -> offset (a body held twice keeps its last offset).
fn offsets_of(committed: &FinalLogs) -> BTreeMap<&str, FxMap<&str, u64>> {
    committed
        .iter()
        .map(|(queue, log)| {
            let offsets = log
                .iter()
                .enumerate()
                .map(|(offset, body)| (body.as_str(), offset as u64))
                .collect();
            (queue.as_str(), offsets)
        })
        .collect()
}

/// Where an acknowledged send stands against its queue's final log.
enum AckStanding {
    /// At its offset, or its queue has no final log.
    Kept,
    /// Past the committed prefix of a queue whose group did not settle.
    Undecided,
    /// Stored elsewhere.
    Elsewhere(u64),
    /// Not in the final log; what is at its offset instead.
    Lost(Option<String>),
}

fn ack_standing(
    committed: &FinalLogs,
    open: &BTreeSet<String>,
    stored: &BTreeMap<&str, FxMap<&str, u64>>,
    queue: &str,
    offset: u64,
    body: &str,
) -> AckStanding {
    let Some(log) = committed.get(queue) else {
        return AckStanding::Kept;
    };
    let found = usize::try_from(offset)
        .ok()
        .and_then(|offset| log.get(offset));
    if found.is_some_and(|found| found == body) {
        return AckStanding::Kept;
    }
    if let Some(&elsewhere) = stored.get(queue).and_then(|offsets| offsets.get(body)) {
        return AckStanding::Elsewhere(elsewhere);
    }
    if found.is_none() && open.contains(queue) {
        return AckStanding::Undecided;
    }
    AckStanding::Lost(found.cloned())
}

fn lost_acknowledged_sends(
    history: &[Operation],
    finals: &FinalState,
    violations: &mut Vec<SafetyViolation>,
) {
    let stored = offsets_of(&finals.committed);
    for (op, operation) in history.iter().enumerate() {
        let (OpInput::Send { queue, body }, OpOutcome::Sent { offset }) =
            (&operation.input, &operation.outcome)
        else {
            continue;
        };
        let standing = ack_standing(
            &finals.committed,
            &finals.open,
            &stored,
            queue,
            *offset,
            body,
        );
        match standing {
            AckStanding::Kept | AckStanding::Undecided => {}
            AckStanding::Elsewhere(stored_offset) => {
                violations.push(SafetyViolation::AckedAtOtherOffset {
                    op,
                    queue: queue.clone(),
                    body: body.clone(),
                    acked_offset: *offset,
                    stored_offset,
                });
            }
            AckStanding::Lost(found) => violations.push(SafetyViolation::LostAcknowledgedSend {
                op,
                queue: queue.clone(),
                offset: *offset,
                body: body.clone(),
                found,
            }),
        }
    }
}

/// Per open queue: the acknowledged sends past its committed prefix (history indices), which
/// may be committed but not yet applied: neither lost nor kept.
pub fn undecided_sends(history: &[Operation], finals: &FinalState) -> BTreeMap<String, Vec<usize>> {
    let stored = offsets_of(&finals.committed);
    let mut undecided: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (op, operation) in history.iter().enumerate() {
        let (OpInput::Send { queue, body }, OpOutcome::Sent { offset }) =
            (&operation.input, &operation.outcome)
        else {
            continue;
        };
        let standing = ack_standing(
            &finals.committed,
            &finals.open,
            &stored,
            queue,
            *offset,
            body,
        );
        if matches!(standing, AckStanding::Undecided) {
            undecided.entry(queue.clone()).or_default().push(op);
        }
    }
    undecided
}

/// Every (offset, body) sighting of a queue, final log first, then history order.
fn sightings<'a>(
    history: &'a [Operation],
    committed: &'a FinalLogs,
) -> BTreeMap<&'a str, Vec<(u64, &'a str, Sighting)>> {
    let mut all: BTreeMap<&str, Vec<(u64, &str, Sighting)>> = BTreeMap::new();
    for (queue, log) in committed {
        let list = all.entry(queue.as_str()).or_default();
        for (offset, body) in log.iter().enumerate() {
            list.push((offset as u64, body.as_str(), Sighting::FinalLog));
        }
    }
    for (op, operation) in history.iter().enumerate() {
        match (&operation.input, &operation.outcome) {
            (OpInput::Send { queue, body }, OpOutcome::Sent { offset }) => {
                let list = all.entry(queue.as_str()).or_default();
                list.push((*offset, body.as_str(), Sighting::Ack { op }));
            }
            (OpInput::Pull { queue, offset, .. }, OpOutcome::Pulled { bodies }) => {
                let list = all.entry(queue.as_str()).or_default();
                for (index, body) in bodies.iter().enumerate() {
                    list.push((offset + index as u64, body.as_str(), Sighting::Pull { op }));
                }
            }
            _ => {}
        }
    }
    all
}

fn offset_conflicts_and_duplicates(
    history: &[Operation],
    committed: &FinalLogs,
    violations: &mut Vec<SafetyViolation>,
) {
    for (queue, list) in sightings(history, committed) {
        // Looked up only, never iterated: findings come out in `list` order.
        let mut at_offset: FxMap<u64, (&str, &Sighting)> = FxMap::default();
        let mut of_body: FxMap<&str, (u64, &Sighting)> = FxMap::default();
        let mut reported: HashSet<(u64, &str), FxBuild> = HashSet::default();
        for (offset, body, sighting) in &list {
            let (first_body, first) = *at_offset.entry(*offset).or_insert((body, sighting));
            // An ack against the final log is reported as a lost send instead.
            let lost_send =
                matches!(sighting, Sighting::Ack { .. }) && *first == Sighting::FinalLog;
            if first_body != *body && !lost_send && reported.insert((*offset, body)) {
                violations.push(SafetyViolation::OffsetConflict {
                    queue: queue.to_string(),
                    offset: *offset,
                    first_body: first_body.to_string(),
                    first: first.clone(),
                    second_body: body.to_string(),
                    second: sighting.clone(),
                });
            }
            let (first_offset, first) = *of_body.entry(body).or_insert((*offset, sighting));
            // An ack against the final log is reported as an ack at another offset instead.
            let acked_elsewhere =
                matches!(sighting, Sighting::Ack { .. }) && *first == Sighting::FinalLog;
            if first_offset != *offset && !acked_elsewhere && reported.insert((*offset, body)) {
                violations.push(SafetyViolation::Duplicate {
                    queue: queue.to_string(),
                    body: body.to_string(),
                    first_offset,
                    first: first.clone(),
                    second_offset: *offset,
                    second: sighting.clone(),
                });
            }
        }
    }
}

fn consumption_order(
    history: &[Operation],
    committed: &FinalLogs,
    violations: &mut Vec<SafetyViolation>,
) {
    let positions = offsets_of(committed);
    // Per (client, queue): where the last pull asked to continue from, and the final-log offset
    // of the last body consumed.
    let mut cursors: BTreeMap<(u32, &str), (u64, Option<u64>)> = BTreeMap::new();
    let mut order: Vec<usize> = (0..history.len()).collect();
    order.sort_by_key(|&op| (history[op].client, history[op].invoke_us, op));
    for op in order {
        let operation = &history[op];
        let (OpInput::Pull { queue, offset, .. }, OpOutcome::Pulled { bodies }) =
            (&operation.input, &operation.outcome)
        else {
            continue;
        };
        let Some(known) = positions.get(queue.as_str()) else {
            continue;
        };
        let cursor = cursors
            .entry((operation.client, queue.as_str()))
            .or_insert((*offset, None));
        // Only a pull that continues where the previous one ended must follow on from it.
        let mut last = if cursor.0 == *offset { cursor.1 } else { None };
        for body in bodies {
            let Some(&next) = known.get(body.as_str()) else {
                continue;
            };
            if let Some(after) = last {
                let (client, queue) = (operation.client, queue.clone());
                if next > after + 1 {
                    violations.push(SafetyViolation::ConsumptionSkip {
                        op,
                        client,
                        queue,
                        after_offset: after,
                        next_offset: next,
                    });
                } else if next <= after {
                    violations.push(SafetyViolation::ConsumptionBackwards {
                        op,
                        client,
                        queue,
                        after_offset: after,
                        next_offset: next,
                    });
                }
            }
            last = Some(next);
        }
        *cursor = (offset + bodies.len() as u64, last);
    }
}

fn unacknowledged_reads(
    history: &[Operation],
    committed: &FinalLogs,
    open: &BTreeSet<String>,
    violations: &mut Vec<SafetyViolation>,
) {
    let mut sends: FxMap<(&str, &str), (usize, &OpOutcome)> = FxMap::default();
    for (op, operation) in history.iter().enumerate() {
        if let OpInput::Send { queue, body } = &operation.input {
            sends
                .entry((queue.as_str(), body.as_str()))
                .or_insert((op, &operation.outcome));
        }
    }
    let in_log = offsets_of(committed);
    for (op, operation) in history.iter().enumerate() {
        let (OpInput::Pull { queue, .. }, OpOutcome::Pulled { bodies }) =
            (&operation.input, &operation.outcome)
        else {
            continue;
        };
        let Some(log) = in_log.get(queue.as_str()) else {
            continue;
        };
        for body in bodies {
            if log.contains_key(body.as_str()) {
                continue;
            }
            let status = match sends.get(&(queue.as_str(), body.as_str())) {
                None => SendStatus::NeverSent,
                Some((_, OpOutcome::Fail)) => SendStatus::Failed,
                // Past an open queue's committed prefix: it may be there, not yet applied.
                Some((_, OpOutcome::Unknown)) if open.contains(queue) => continue,
                Some((_, OpOutcome::Unknown)) => SendStatus::Unacknowledged,
                // Acknowledged but gone: reported as a lost acknowledged send.
                Some(_) => continue,
            };
            violations.push(SafetyViolation::ReadOfUnacknowledged {
                op,
                queue: queue.clone(),
                body: body.clone(),
                status,
            });
        }
    }
    for (queue, log) in committed {
        for (offset, body) in log.iter().enumerate() {
            match sends.get(&(queue.as_str(), body.as_str())) {
                None => violations.push(SafetyViolation::UnsentEntryInLog {
                    queue: queue.clone(),
                    offset: offset as u64,
                    body: body.clone(),
                }),
                Some((op, OpOutcome::Fail)) => {
                    violations.push(SafetyViolation::FailedSendApplied {
                        op: *op,
                        queue: queue.clone(),
                        body: body.clone(),
                        offset: offset as u64,
                    });
                }
                Some(_) => {}
            }
        }
    }
}

fn replica_divergence(
    replicas: &BTreeMap<String, FinalLogs>,
    violations: &mut Vec<SafetyViolation>,
) {
    let names: Vec<&String> = replicas.keys().collect();
    for (first, replica) in names.iter().enumerate() {
        for other_replica in &names[first + 1..] {
            let (logs, other_logs) = (&replicas[*replica], &replicas[*other_replica]);
            for (queue, log) in logs {
                let Some(other_log) = other_logs.get(queue) else {
                    continue;
                };
                let differs = log
                    .iter()
                    .zip(other_log)
                    .enumerate()
                    .find(|(_, (body, other_body))| body != other_body);
                if let Some((offset, (body, other_body))) = differs {
                    violations.push(SafetyViolation::ReplicaDivergence {
                        queue: queue.clone(),
                        offset: offset as u64,
                        replica: (*replica).clone(),
                        body: body.clone(),
                        other_replica: (*other_replica).clone(),
                        other_body: other_body.clone(),
                    });
                }
            }
        }
    }
}
