//! Turns one seed's raw run into its outcome: failover timelines, findings, counts.

use crate::history::{OpInput, OpOutcome, Operation};
use crate::metrics::{self, FailoverTimeline};
use crate::workload::history_queue_name;
use crate::world::observe::{AppliedEntry, InvariantViolation};
use crate::world::{SeedRun, WorldSpec};
use broker_core::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    /// After healing, replicas of a group hold different committed logs.
    ReplicasDiverge {
        group: u32,
        a: NodeId,
        b: NodeId,
        first_difference: u64,
    },
    /// An acknowledged send is not at its offset in a replica's committed log.
    AckedSendMissing {
        queue: String,
        offset: u64,
        body: String,
        replica: NodeId,
        found: Option<String>,
    },
    /// Liveness: the group had no single caught-up leader within `settle_max` of healing.
    NotSettled { group: u32 },
}

impl Finding {
    pub fn is_safety(&self) -> bool {
        !matches!(self, Finding::NotSettled { .. })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Finding::Panic { .. } => "panic",
            Finding::RaftInvariant { .. } => "raft_invariant",
            Finding::RecoveryFailed { .. } => "recovery_failed",
            Finding::ReplicasDiverge { .. } => "replicas_diverge",
            Finding::AckedSendMissing { .. } => "lost_acked",
            Finding::NotSettled { .. } => "not_settled",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpCounts {
    pub sent_ok: u32,
    pub failed: u32,
    pub unknown: u32,
}

/// Everything a report keeps of one seed. Holds no wall-clock data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedOutcome {
    pub seed: u64,
    pub trace_hash: String,
    pub end_us: u64,
    pub ops: OpCounts,
    pub failovers: Vec<FailoverTimeline>,
    pub settle_us: Vec<Option<u64>>,
    pub findings: Vec<Finding>,
}

impl SeedOutcome {
    pub fn panicked(seed: u64, message: String) -> SeedOutcome {
        SeedOutcome {
            seed,
            trace_hash: String::from("-"),
            end_us: 0,
            ops: OpCounts::default(),
            failovers: Vec::new(),
            settle_us: Vec::new(),
            findings: vec![Finding::Panic { message }],
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
    let failovers = metrics::failover_timelines(
        &run.failover_faults,
        &run.observations,
        &run.history,
        spec.replicas,
        group_of_queue,
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
    for group in 0..spec.groups {
        findings.extend(check_replicas_agree(spec, group, &run.final_logs));
        findings.extend(check_acked_sends(
            spec,
            group,
            &run.final_logs,
            &run.history,
        ));
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
        settle_us: run.settle_us.clone(),
        findings,
    }
}

fn count_ops(history: &[Operation]) -> OpCounts {
    let mut counts = OpCounts::default();
    for op in history {
        match op.outcome {
            OpOutcome::Sent { .. } => counts.sent_ok += 1,
            OpOutcome::Fail => counts.failed += 1,
            OpOutcome::Unknown => counts.unknown += 1,
            OpOutcome::Pulled { .. } => {}
        }
    }
    counts
}

/// No two replicas of a group committed different entries at one index (the chained checksum
/// covers prefixes). A replica that merely lags is a liveness matter (`NotSettled`).
fn check_replicas_agree(
    spec: &WorldSpec,
    group: u32,
    final_logs: &[Vec<AppliedEntry>],
) -> Option<Finding> {
    let members = spec.members(group);
    for (i, a) in members.iter().enumerate() {
        for b in &members[i + 1..] {
            let (log_a, log_b) = (&final_logs[a.0 as usize], &final_logs[b.0 as usize]);
            let common = log_a.len().min(log_b.len());
            if common > 0 && log_a[common - 1] != log_b[common - 1] {
                let first_difference = log_a
                    .iter()
                    .zip(log_b.iter())
                    .position(|(x, y)| x != y)
                    .expect("invariant: the logs differ within their common prefix")
                    as u64
                    + 1;
                return Some(Finding::ReplicasDiverge {
                    group,
                    a: *a,
                    b: *b,
                    first_difference,
                });
            }
        }
    }
    None
}

/// Every acknowledged send is at its queue offset, with its body, in every replica's log.
fn check_acked_sends(
    spec: &WorldSpec,
    group: u32,
    final_logs: &[Vec<AppliedEntry>],
    history: &[Operation],
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for replica in spec.members(group) {
        let queues = queue_contents(group, &final_logs[replica.0 as usize]);
        for op in history {
            let (OpInput::Send { queue, body }, OpOutcome::Sent { offset }) =
                (&op.input, &op.outcome)
            else {
                continue;
            };
            if !queue.starts_with(&format!("g{group}/")) {
                continue;
            }
            let found = queues
                .get(queue)
                .and_then(|bodies| bodies.get(*offset as usize))
                .cloned();
            if found.as_ref() != Some(body) {
                findings.push(Finding::AckedSendMissing {
                    queue: queue.clone(),
                    offset: *offset,
                    body: body.clone(),
                    replica,
                    found,
                });
            }
        }
    }
    findings
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
