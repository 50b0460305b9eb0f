//! Turns one seed's raw run into its outcome: failover timelines, findings, counts.

use crate::check::oracles::{self, FinalState, SafetyViolation, Sighting};
use crate::check::{self, CheckOptions, CheckReport, Verdict};
use crate::history::{OpOutcome, Operation};
use crate::metrics::{self, FailoverTimeline};
use crate::run::SeedRun;
use crate::workload::history_queue_name;
use crate::world::observe::{AppliedEntry, InvariantViolation, LostWrites};
use crate::world::WorldSpec;
use broker_core::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Something wrong that a seed showed. Safety findings first, then liveness.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Finding {
    /// A node panicked (an assertion in the core or the adapter): the run stopped there.
    Panic { message: String },
    /// A Raft invariant across nodes broke (see `world::observe`).
    RaftInvariant {
        at_us: u64,
        violation: InvariantViolation,
    },
    /// A restarting replica could not rebuild itself from its disk.
    RecoveryFailed {
        at_us: u64,
        node: NodeId,
        error: String,
    },
    /// A safety oracle over the history and the final logs (`check::oracles`): lost
    /// acknowledged send, offset conflict, duplicate, consumption skip or regression, read of
    /// an unacknowledged send, failed send applied, unsent entry, replica divergence.
    Safety { kind: String, detail: String },
    /// A queue's history is not linearizable against the log model; `window` is the shortest
    /// failing window the checker found, as text.
    NotLinearizable { queue: String, window: String },
    /// Liveness: the group had no single caught-up leader within `settle_max` of healing.
    NotSettled { group: u32 },
}

impl Finding {
    pub fn is_safety(&self) -> bool {
        !matches!(self, Finding::NotSettled { .. })
    }

    pub fn kind(&self) -> &str {
        match self {
            Finding::Panic { .. } => "panic",
            Finding::RaftInvariant { .. } => "raft_invariant",
            Finding::RecoveryFailed { .. } => "recovery_failed",
            Finding::Safety { kind, .. } => kind,
            Finding::NotLinearizable { .. } => "not_linearizable",
            Finding::NotSettled { .. } => "not_settled",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpCounts {
    /// Sends only: acknowledged, definitely failed, unknown.
    pub sent_ok: u32,
    pub failed: u32,
    pub unknown: u32,
    /// Pulls that returned messages (or nothing), failed, or got no answer.
    #[serde(default)]
    pub pulls_ok: u32,
    #[serde(default)]
    pub pulls_failed: u32,
    #[serde(default)]
    pub pulls_unknown: u32,
    /// Distinct message bodies consumers received.
    #[serde(default)]
    pub delivered: u32,
}

/// Everything a report keeps of one seed. Holds no wall-clock data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedOutcome {
    pub seed: u64,
    pub trace_hash: String,
    pub end_us: u64,
    pub ops: OpCounts,
    pub failovers: Vec<FailoverTimeline>,
    /// Faults that cut a leader off from its majority but healed before any replica replaced
    /// it (`FailoverFault::healed_us`): not failovers; their client stage is the cut's cost.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cuts_healed: Vec<FailoverTimeline>,
    pub settle_us: Vec<Option<u64>>,
    pub check: CheckSummary,
    pub findings: Vec<Finding>,
    /// Master–slave: masters that restarted with fewer entries than they had acknowledged:
    /// the explanation of this seed's lost acknowledged sends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost_writes: Vec<LostWrites>,
    /// The faults a `Random` swarm drew for this seed (`nemesis::swarm`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub swarm: Vec<crate::nemesis::swarm::SwarmDraw>,
    /// A self-contained HTML timeline of the first non-linearizable queue, if any.
    #[serde(skip)]
    pub html: Option<String>,
}

/// The linearizability verdict of one seed, with deterministic figures only.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSummary {
    /// "linearizable", "not_linearizable" or "unknown" (the step budget ran out).
    pub verdict: String,
    pub queues: u32,
    pub ops: u64,
    pub steps: u64,
    /// Unknown sends resolved by the final logs: landed / never happened / left unknown.
    pub settled_landed: u32,
    pub settled_never_happened: u32,
    pub left_unknown: u32,
}

impl SeedOutcome {
    pub fn panicked(seed: u64, message: String) -> SeedOutcome {
        SeedOutcome {
            seed,
            trace_hash: String::from("-"),
            end_us: 0,
            ops: OpCounts::default(),
            failovers: Vec::new(),
            cuts_healed: Vec::new(),
            settle_us: Vec::new(),
            check: CheckSummary::default(),
            findings: vec![Finding::Panic { message }],
            lost_writes: Vec::new(),
            swarm: Vec::new(),
            html: None,
        }
    }

    /// The worst client-stage failover of this seed.
    pub fn worst_client_us(&self) -> Option<u64> {
        self.failovers.iter().filter_map(|f| f.client_us).max()
    }
}

/// Checks and measures one finished seed.
pub fn evaluate(spec: &WorldSpec, run: &SeedRun) -> SeedOutcome {
    let group_of_queue = |queue: &str| -> Option<u32> {
        queue
            .strip_prefix('g')
            .and_then(|rest| rest.split('/').next())
            .and_then(|g| g.parse().ok())
    };
    let timelines = metrics::failover_timelines(
        &run.failover_faults,
        &run.observations,
        &run.history,
        spec.replicas,
        group_of_queue,
    );
    let (cuts_healed, failovers): (Vec<FailoverTimeline>, Vec<FailoverTimeline>) =
        timelines.into_iter().zip(&run.failover_faults).fold(
            (Vec::new(), Vec::new()),
            |(mut healed, mut failed_over), (timeline, fault)| {
                if fault.healed_us.is_some() && timeline.elect_us.is_none() {
                    healed.push(timeline);
                } else {
                    failed_over.push(timeline);
                }
                (healed, failed_over)
            },
        );
    let mut findings: Vec<Finding> = run
        .violations
        .iter()
        .map(|(at_us, violation)| Finding::RaftInvariant {
            at_us: *at_us,
            violation: violation.clone(),
        })
        .collect();
    findings.extend(run.recovery_failures.iter().map(|(at_us, node, error)| {
        Finding::RecoveryFailed {
            at_us: *at_us,
            node: *node,
            error: error.clone(),
        }
    }));
    let finals = final_state(spec, &run.final_logs);
    let violations = oracles::check(&run.history, &finals);
    let lost = LostSends::of(&violations);
    findings.extend(violations.into_iter().map(|violation| {
        let kind = lost
            .consequence_kind(&violation)
            .unwrap_or_else(|| safety_kind(&violation));
        Finding::Safety {
            kind: kind.to_string(),
            detail: format!("{violation:?}"),
        }
    }));
    if spec.workload.consumers > 0 {
        findings.extend(unconsumed(&run.history, &lost));
    }
    let report = check::check_log(&run.history, Some(&finals.committed), &seed_check_options());
    for part in report.failing_parts() {
        findings.push(Finding::NotLinearizable {
            queue: part.name.clone(),
            window: part
                .window
                .as_ref()
                .map(|w| format!("{w:?}"))
                .unwrap_or_default(),
        });
    }
    for group in 0..spec.groups {
        if run
            .settle_us
            .get(group as usize)
            .copied()
            .flatten()
            .is_none()
        {
            findings.push(Finding::NotSettled { group });
        }
    }
    SeedOutcome {
        seed: run.seed,
        trace_hash: format!("{:016x}", run.trace_hash),
        end_us: run.end_us,
        ops: count_ops(&run.history),
        failovers,
        cuts_healed,
        settle_us: run.settle_us.clone(),
        check: check_summary(&report),
        findings,
        lost_writes: run.lost_writes.clone(),
        swarm: run.swarm.clone(),
        html: check::html::render_report_html(&report),
    }
}

/// Per seed: one thread (seeds already run in parallel) and a step budget, never a wall-clock
/// limit, so the verdict does not depend on the machine.
fn seed_check_options() -> CheckOptions {
    CheckOptions {
        steps_per_part_max: SEED_CHECK_STEPS_PER_QUEUE_MAX,
        time_limit: None,
        threads: 1,
        ..CheckOptions::default()
    }
}

/// Model steps per queue and seed before the verdict is "unknown".
pub const SEED_CHECK_STEPS_PER_QUEUE_MAX: u64 = 20_000_000;

fn check_summary(report: &CheckReport) -> CheckSummary {
    let settle = report.settle.unwrap_or_default();
    CheckSummary {
        verdict: match report.verdict {
            Verdict::Linearizable => "linearizable",
            Verdict::NotLinearizable => "not_linearizable",
            Verdict::Unknown => "unknown",
        }
        .to_string(),
        queues: report.parts.len() as u32,
        ops: report.parts.iter().map(|p| p.ops as u64).sum(),
        steps: report.parts.iter().map(|p| p.steps).sum(),
        settled_landed: settle.landed as u32,
        settled_never_happened: settle.never_happened as u32,
        left_unknown: settle.left_unknown as u32,
    }
}

/// What the oracles compare against: per replica its committed messages per queue, and per
/// queue the log of the group's most advanced replica (what its leader serves after healing).
fn final_state(spec: &WorldSpec, final_logs: &[Vec<AppliedEntry>]) -> FinalState {
    let mut finals = FinalState::default();
    for group in 0..spec.groups {
        let members = spec.members(group);
        for node in &members {
            finals.replicas.insert(
                format!("{node}"),
                queue_contents(group, &final_logs[node.0 as usize]),
            );
        }
        let most_advanced = members
            .iter()
            .max_by_key(|node| (final_logs[node.0 as usize].len(), std::cmp::Reverse(node.0)))
            .expect("invariant: a group has at least one replica");
        finals
            .committed
            .extend(queue_contents(group, &final_logs[most_advanced.0 as usize]));
    }
    finals
}

/// The kind of an offset conflict that is a consequence of a lost acknowledged send: the lost
/// message's queue offset was given to a later send (a master–slave master that lost its
/// unflushed tail reuses those offsets), seen by its acknowledgement or by a consumer that
/// pulled it. Counted with the loss that explains it, not apart.
pub const LOST_ACKED_OFFSET_REUSED: &str = "lost_acked_offset_reused";

/// The kind of a consumption skip over offsets where acknowledged sends were lost: the consumer
/// had read past them before the master restarted shorter, and its next pulls start beyond the
/// offsets the master gave to new sends. A consequence of the loss, counted with it.
pub const LOST_ACKED_CONSUMER_SKIP: &str = "lost_acked_consumer_skip";

/// Finding kinds that only follow from a lost acknowledged send (and are explained with it).
pub const CONSEQUENCES_OF_LOSS: [&str; 2] = [LOST_ACKED_OFFSET_REUSED, LOST_ACKED_CONSUMER_SKIP];

/// The acknowledged sends the oracles found lost, by history index, by (queue, offset) and by
/// body.
struct LostSends {
    ops: BTreeSet<usize>,
    offsets: BTreeSet<(String, u64)>,
    bodies: BTreeSet<String>,
}

impl LostSends {
    fn of(violations: &[SafetyViolation]) -> LostSends {
        let mut lost = LostSends {
            ops: BTreeSet::new(),
            offsets: BTreeSet::new(),
            bodies: BTreeSet::new(),
        };
        for violation in violations {
            if let SafetyViolation::LostAcknowledgedSend {
                op,
                queue,
                offset,
                body,
                ..
            } = violation
            {
                lost.ops.insert(*op);
                lost.offsets.insert((queue.clone(), *offset));
                lost.bodies.insert(body.clone());
            }
        }
        lost
    }

    /// The kind of `violation` when it is a consequence of these losses, else None.
    fn consequence_kind(&self, violation: &SafetyViolation) -> Option<&'static str> {
        let acked_lost =
            |sighting: &Sighting| matches!(sighting, Sighting::Ack { op } if self.ops.contains(op));
        match violation {
            SafetyViolation::OffsetConflict {
                queue,
                offset,
                first,
                first_body,
                second,
                second_body,
            } => {
                let explained = acked_lost(first)
                    || acked_lost(second)
                    || self.offsets.contains(&(queue.clone(), *offset))
                    || self.bodies.contains(first_body)
                    || self.bodies.contains(second_body);
                explained.then_some(LOST_ACKED_OFFSET_REUSED)
            }
            SafetyViolation::ConsumptionSkip {
                queue,
                after_offset,
                next_offset,
                ..
            } => {
                let skipped = (queue.clone(), after_offset + 1)..(queue.clone(), *next_offset);
                (after_offset + 1 < *next_offset && self.offsets.range(skipped).next().is_some())
                    .then_some(LOST_ACKED_CONSUMER_SKIP)
            }
            _ => None,
        }
    }
}

/// The kind of an acknowledged send that no consumer received by the end of the run (the
/// consumers read on until every queue was drained, within the settle bound).
pub const ACKED_NOT_CONSUMED: &str = "acked_not_consumed";

/// Acknowledged sends (not already found lost) whose body no pull returned. One acknowledged
/// at the offset of a lost send was skipped by a consumer already past that offset: a
/// consequence of the loss (`LOST_ACKED_CONSUMER_SKIP`).
fn unconsumed(history: &[Operation], lost: &LostSends) -> Vec<Finding> {
    let pulled: BTreeSet<(&str, &str)> = history
        .iter()
        .filter_map(|op| match (&op.input, &op.outcome) {
            (crate::history::OpInput::Pull { queue, .. }, OpOutcome::Pulled { bodies }) => Some(
                bodies
                    .iter()
                    .map(move |body| (queue.as_str(), body.as_str())),
            ),
            _ => None,
        })
        .flatten()
        .collect();
    history
        .iter()
        .enumerate()
        .filter(|(index, _)| !lost.ops.contains(index))
        .filter_map(|(index, op)| match (&op.input, &op.outcome) {
            (crate::history::OpInput::Send { queue, body }, OpOutcome::Sent { offset })
                if !pulled.contains(&(queue.as_str(), body.as_str())) =>
            {
                let reused = lost.offsets.contains(&(queue.clone(), *offset));
                Some(Finding::Safety {
                    kind: if reused {
                        LOST_ACKED_CONSUMER_SKIP
                    } else {
                        ACKED_NOT_CONSUMED
                    }
                    .to_string(),
                    detail: format!(
                        "op {index}: {body} acknowledged at {queue} offset {offset}, never pulled"
                    ),
                })
            }
            _ => None,
        })
        .collect()
}

fn safety_kind(violation: &SafetyViolation) -> &'static str {
    match violation {
        SafetyViolation::LostAcknowledgedSend { .. } => "lost_acked",
        SafetyViolation::OffsetConflict { .. } => "offset_conflict",
        SafetyViolation::Duplicate { .. } => "duplicate",
        SafetyViolation::ConsumptionSkip { .. } => "consumption_skip",
        SafetyViolation::ConsumptionBackwards { .. } => "consumption_backwards",
        SafetyViolation::ReadOfUnacknowledged { .. } => "read_of_unacknowledged",
        SafetyViolation::FailedSendApplied { .. } => "failed_send_applied",
        SafetyViolation::UnsentEntryInLog { .. } => "unsent_entry",
        SafetyViolation::ReplicaDivergence { .. } => "replica_divergence",
    }
}

fn count_ops(history: &[Operation]) -> OpCounts {
    let mut counts = OpCounts::default();
    let mut delivered: BTreeSet<&str> = BTreeSet::new();
    for op in history {
        let pull = matches!(op.input, crate::history::OpInput::Pull { .. });
        match (&op.outcome, pull) {
            (OpOutcome::Sent { .. }, _) => counts.sent_ok += 1,
            (OpOutcome::Fail, false) => counts.failed += 1,
            (OpOutcome::Unknown, false) => counts.unknown += 1,
            (OpOutcome::Pulled { bodies }, _) => {
                counts.pulls_ok += 1;
                delivered.extend(bodies.iter().map(String::as_str));
            }
            (OpOutcome::Fail, true) => counts.pulls_failed += 1,
            (OpOutcome::Unknown, true) => counts.pulls_unknown += 1,
        }
    }
    counts.delivered = delivered.len() as u32;
    counts
}

/// A replica's committed messages per history queue name, in queue-offset order.
pub fn queue_contents(group: u32, log: &[AppliedEntry]) -> BTreeMap<String, Vec<String>> {
    let mut queues: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in log {
        if let Some(message) = &entry.message {
            queues
                .entry(history_queue_name(group, &message.queue))
                .or_default()
                .push(message.msg_id.clone());
        }
    }
    queues
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::OpInput;

    fn op(input: OpInput, outcome: OpOutcome) -> Operation {
        Operation {
            client: 0,
            input,
            invoke_us: 0,
            complete_us: 1,
            outcome,
        }
    }

    fn send(body: &str, offset: u64) -> Operation {
        let input = OpInput::Send {
            queue: "g0/a/0".into(),
            body: body.into(),
        };
        op(input, OpOutcome::Sent { offset })
    }

    // Why: the promise that consumers receive every acknowledged message is checked per seed:
    // an acknowledged send no pull returned is a finding, unless it was found lost (then it is
    // counted with the loss), and one acknowledged at a lost send's reused offset is the loss's
    // consumer skip.
    #[test]
    fn an_acknowledged_send_no_pull_returned_is_a_finding() {
        let pull = op(
            OpInput::Pull {
                queue: "g0/a/0".into(),
                offset: 0,
                max: 32,
            },
            OpOutcome::Pulled {
                bodies: vec!["m0".into()],
            },
        );
        let history = vec![send("m0", 0), send("m1", 1), send("m2", 2), pull];
        let none = LostSends::of(&[]);
        let kinds: Vec<String> = unconsumed(&history, &none)
            .iter()
            .map(|f| f.kind().to_string())
            .collect();
        assert_eq!(kinds, vec![ACKED_NOT_CONSUMED, ACKED_NOT_CONSUMED]);

        let lost = LostSends::of(&[SafetyViolation::LostAcknowledgedSend {
            op: 1,
            queue: "g0/a/0".into(),
            offset: 2,
            body: "m1".into(),
            found: Some("m2".into()),
        }]);
        let kinds: Vec<String> = unconsumed(&history, &lost)
            .iter()
            .map(|f| f.kind().to_string())
            .collect();
        assert_eq!(kinds, vec![LOST_ACKED_CONSUMER_SKIP]);
    }
}
