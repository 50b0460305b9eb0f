//! Turns one seed's raw run into its outcome: failover timelines, findings, counts.

use crate::check::losses::{self, LossConsequence, LostSends};
use crate::check::oracles::{self, FinalState, SafetyViolation};
use crate::check::{self, CheckOptions, CheckReport};
use crate::history::{OpInput, OpOutcome, Operation};
use crate::ids::QueueId;
use crate::metrics::{self, FailoverTimeline};
use crate::run::outcome::{
    explain_by_disk_faults, CheckSummary, DiskFault, Finding, FindingKind, OpCounts, SeedOutcome,
};
use crate::run::RunSpec;
use crate::run::SeedRun;
use crate::world::observe::{AppliedEntry, InvariantViolation, ObservedKind};
use broker_core::raft::Role;
use std::collections::{BTreeMap, BTreeSet};

/// Checks and measures one finished seed.
pub fn evaluate(spec: &RunSpec, run: &SeedRun) -> SeedOutcome {
    let (failovers, cuts_healed) = failovers_and_healed_cuts(spec, run);
    let finals = final_state(spec, run);
    let disk_faults = disk_faults(run);
    let mut findings = world_findings(run, &disk_faults);
    findings.extend(oracle_findings(spec, run, &finals));
    // A queue with only a committed prefix settles nothing: its unknown sends stay open.
    let mut complete = finals.committed.clone();
    complete.retain(|queue, _| !finals.open.contains(queue));
    let report = check::check_log(&run.history, Some(&complete), &seed_check_options());
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
    findings.extend(not_settled(spec, run));
    findings.extend(unexplained_elections(spec, run));
    let (elections, highest_term) = elections(run);
    SeedOutcome {
        seed: run.seed,
        trace_hash: format!("{:016x}", run.trace_hash),
        end_us: run.end_us,
        ops: count_ops(&run.history),
        failovers,
        cuts_healed,
        settle_us: run.settle_us.clone(),
        check: check_summary(&report),
        elections,
        highest_term,
        findings,
        lost_writes: run.lost_writes.clone(),
        disk_faults,
        swarm: run.swarm.clone(),
        triggers: run.triggers.clone(),
        events: run.events.clone(),
        config: None,
        html: check::html::render_report_html(&report),
    }
}

/// One finding per group whose new terms the election audit could not explain.
fn unexplained_elections(spec: &RunSpec, run: &SeedRun) -> Vec<Finding> {
    let audit = super::elections::audit(spec, run);
    let mut by_group: BTreeMap<u32, Vec<&super::elections::UnexplainedElection>> = BTreeMap::new();
    for election in &audit.unexplained {
        by_group.entry(election.group).or_default().push(election);
    }
    by_group
        .into_iter()
        .map(|(group, elections)| {
            let first = elections[0];
            Finding::UnexplainedElection {
                group,
                count: u32::try_from(elections.len()).expect("invariant: fewer than 2^32 terms"),
                first_at_us: first.at_us,
                node: first.node,
                term: first.term,
                window_us: spec.world.election_window_us(),
            }
        })
        .collect()
}

/// Leaders elected (a replica's role becoming Leader) and the highest term any role reached.
fn elections(run: &SeedRun) -> (u32, u64) {
    let mut elected = 0u32;
    let mut highest = 0u64;
    for observation in &run.observations {
        if let ObservedKind::Role { role, term } = observation.kind {
            highest = highest.max(term.0);
            if role == Role::Leader {
                elected += 1;
            }
        }
    }
    (elected, highest)
}

/// The failover timelines of the run's faults, split into failovers and cuts that healed
/// before any replica replaced the leader.
fn failovers_and_healed_cuts(
    spec: &RunSpec,
    run: &SeedRun,
) -> (Vec<FailoverTimeline>, Vec<FailoverTimeline>) {
    let timelines = metrics::failover_timelines(
        &run.failover_faults,
        &run.observations,
        &run.history,
        spec.world.replicas,
        |queue: &str| queue.parse::<QueueId>().ok().map(|queue| queue.group),
    );
    let mut failovers = Vec::new();
    let mut cuts_healed = Vec::new();
    for (timeline, fault) in timelines.into_iter().zip(&run.failover_faults) {
        if fault.healed_us.is_some() && timeline.elect_us.is_none() {
            cuts_healed.push(timeline);
        } else {
            failovers.push(timeline);
        }
    }
    (failovers, cuts_healed)
}

/// The disk faults that damaged something, in time order (issue 15).
fn disk_faults(run: &SeedRun) -> Vec<DiskFault> {
    run.damages
        .iter()
        .filter_map(|(at_us, node, damaged)| {
            damaged.describe().map(|damage| DiskFault {
                at_us: *at_us,
                node: *node,
                damage,
            })
        })
        .collect()
}

/// What the world itself saw go wrong: broken Raft invariants, then failed recoveries, each
/// named with the disk faults on that replica that explain it.
fn world_findings(run: &SeedRun, disk_faults: &[DiskFault]) -> Vec<Finding> {
    let invariants =
        first_of_each_kind(&run.violations)
            .into_iter()
            .map(|((at_us, violation), repeats)| Finding::RaftInvariant {
                at_us: *at_us,
                violation: violation.clone(),
                repeats,
            });
    let recoveries =
        run.recovery_failures
            .iter()
            .map(|(at_us, node, error)| Finding::RecoveryFailed {
                at_us: *at_us,
                node: *node,
                error: match explain_by_disk_faults(disk_faults, Some(*node), *at_us) {
                    Some(explained) => format!("{error}; {explained}"),
                    None => error.clone(),
                },
            });
    invariants.chain(recoveries).collect()
}

/// The first violation of each kind (a node's own report counts by what it reported), in
/// order of first appearance, with how many more of that kind followed.
fn first_of_each_kind(
    violations: &[(u64, InvariantViolation)],
) -> Vec<(&(u64, InvariantViolation), u32)> {
    type Key = (
        std::mem::Discriminant<InvariantViolation>,
        Option<std::mem::Discriminant<broker_core::raft::SafetyViolation>>,
    );
    let key = |violation: &InvariantViolation| -> Key {
        let reported = match violation {
            InvariantViolation::ReportedByNode { violation, .. } => {
                Some(std::mem::discriminant(violation))
            }
            _ => None,
        };
        (std::mem::discriminant(violation), reported)
    };
    let mut firsts: Vec<(Key, &(u64, InvariantViolation), u32)> = Vec::new();
    for entry in violations {
        let k = key(&entry.1);
        match firsts.iter_mut().find(|(seen, _, _)| *seen == k) {
            Some((_, _, repeats)) => *repeats += 1,
            None => firsts.push((k, entry, 0)),
        }
    }
    firsts
        .into_iter()
        .map(|(_, first, repeats)| (first, repeats))
        .collect()
}

/// The safety oracles' violations (a loss's consequences under their own kinds, the sends
/// acknowledged at another offset as one finding per group), then, with consumers, the
/// acknowledged sends no consumer received; then, per group that did not settle, what it left
/// undecided.
fn oracle_findings(spec: &RunSpec, run: &SeedRun, finals: &FinalState) -> Vec<Finding> {
    let violations = oracles::check(&run.history, finals);
    let lost = LostSends::of(&violations);
    let mut acked_elsewhere: BTreeMap<u32, Vec<&SafetyViolation>> = BTreeMap::new();
    let mut findings: Vec<Finding> = Vec::new();
    for violation in &violations {
        if let SafetyViolation::AckedAtOtherOffset { queue, .. } = violation {
            acked_elsewhere
                .entry(group_of(queue))
                .or_default()
                .push(violation);
            continue;
        }
        let kind = match lost.consequence(violation) {
            Some(consequence) => consequence_kind(consequence),
            None => FindingKind::of_violation(violation),
        };
        findings.push(Finding::Safety {
            kind,
            detail: format!("{violation:?}"),
        });
    }
    findings.extend(
        acked_elsewhere
            .iter()
            .map(|(group, acked)| acked_at_other_offsets(*group, acked)),
    );
    let unsettled = unsettled_groups(spec, run);
    let mut unconsumed_unsettled: BTreeMap<u32, usize> = BTreeMap::new();
    if spec.workload.consumers > 0 {
        // Per queue: the first acknowledged send no consumer received, and how many in all
        // (one consumer stuck is one finding, not one per message).
        let mut never_pulled: BTreeMap<String, (String, u32)> = BTreeMap::new();
        for unconsumed in losses::unconsumed(&run.history, &lost) {
            let group = group_of(&unconsumed.queue);
            if unsettled.contains(&group) {
                *unconsumed_unsettled.entry(group).or_default() += 1;
                continue;
            }
            let detail = format!(
                "op {}: {} acknowledged at {} offset {}, never pulled",
                unconsumed.op, unconsumed.body, unconsumed.queue, unconsumed.offset
            );
            match unconsumed.consequence {
                // A lost send's consequence is counted with the loss, send by send.
                Some(consequence) => findings.push(Finding::Safety {
                    kind: consequence_kind(consequence),
                    detail,
                }),
                None => {
                    never_pulled
                        .entry(unconsumed.queue.to_string())
                        .or_insert((detail, 0))
                        .1 += 1;
                }
            }
        }
        findings.extend(
            never_pulled
                .into_values()
                .map(|(first, count)| Finding::Safety {
                    kind: FindingKind::AckedNotConsumed,
                    detail: if count == 1 {
                        first
                    } else {
                        format!("{first}; {count} acknowledged sends of this queue never pulled")
                    },
                }),
        );
    }
    let mut undecided: BTreeMap<u32, usize> = BTreeMap::new();
    for (queue, ops) in oracles::undecided_sends(&run.history, finals) {
        *undecided.entry(group_of(&queue)).or_default() += ops.len();
    }
    for &group in &unsettled {
        let (open, unconsumed) = (
            undecided.get(&group).copied().unwrap_or(0),
            unconsumed_unsettled.get(&group).copied().unwrap_or(0),
        );
        if open == 0 && unconsumed == 0 {
            continue;
        }
        let progress = commit_progress(spec, run, group);
        findings.push(Finding::LossUnknown {
            group,
            detail: format!(
                "unknown: the group did not settle; {open} acknowledged sends are past the log \
                 its replicas had applied (committed up to index {}, applied up to {}): they \
                 may be committed but not yet applied; {unconsumed} acknowledged sends were \
                 never pulled (the consumers could not drain the group). Neither counts as \
                 lost; a longer settle_max, or fixing why it did not settle, decides them",
                progress.committed, progress.applied
            ),
        });
    }
    findings
}

/// The group a history queue name belongs to (`g0/orders/1` → 0).
fn group_of(queue: &str) -> u32 {
    queue
        .parse::<QueueId>()
        .map(|queue| queue.group)
        .expect("invariant: history queues are written as QueueId text")
}

/// One finding for every send of a group acknowledged at another offset than it was stored
/// at: the first one, how many, and the shifts seen.
fn acked_at_other_offsets(group: u32, acked: &[&SafetyViolation]) -> Finding {
    let mut shifts: BTreeSet<i128> = BTreeSet::new();
    let mut queues: BTreeSet<&str> = BTreeSet::new();
    for violation in acked {
        if let SafetyViolation::AckedAtOtherOffset {
            queue,
            acked_offset,
            stored_offset,
            ..
        } = violation
        {
            shifts.insert(i128::from(*acked_offset) - i128::from(*stored_offset));
            queues.insert(queue);
        }
    }
    let Some(SafetyViolation::AckedAtOtherOffset {
        op,
        queue,
        body,
        acked_offset,
        stored_offset,
    }) = acked.first()
    else {
        unreachable!("invariant: a group's list holds acks at other offsets");
    };
    let shown: Vec<String> = shifts
        .iter()
        .take(8)
        .map(|shift| format!("{shift:+}"))
        .collect();
    Finding::Safety {
        kind: FindingKind::AckedWrongOffset,
        detail: format!(
            "acknowledged at offset {acked_offset}, stored at offset {stored_offset} (op {op}, \
             {body} on {queue}); {} sends of group {group} on {} queues were acknowledged at \
             another offset than they were stored at (acknowledged − stored: {}{}): the broker \
             answers SEND_OK with the wrong queue offset, the messages themselves are kept",
            acked.len(),
            queues.len(),
            shown.join(", "),
            if shifts.len() > shown.len() {
                ", …"
            } else {
                ""
            },
        ),
    }
}

fn consequence_kind(consequence: LossConsequence) -> FindingKind {
    match consequence {
        LossConsequence::OffsetReused => FindingKind::LostAckedOffsetReused,
        LossConsequence::ConsumerSkip => FindingKind::LostAckedConsumerSkip,
    }
}

/// Liveness: every group with no settle time.
fn not_settled(spec: &RunSpec, run: &SeedRun) -> Vec<Finding> {
    unsettled_groups(spec, run)
        .into_iter()
        .map(|group| Finding::NotSettled { group })
        .collect()
}

/// The groups with no settle time, ascending.
fn unsettled_groups(spec: &RunSpec, run: &SeedRun) -> BTreeSet<u32> {
    (0..spec.world.groups)
        .filter(|group| {
            run.settle_us
                .get(*group as usize)
                .copied()
                .flatten()
                .is_none()
        })
        .collect()
}

/// How far a group got: the highest index a leader of it committed, and the highest index a
/// replica of it had applied at the end.
struct CommitProgress {
    committed: u64,
    applied: u64,
}

fn commit_progress(spec: &RunSpec, run: &SeedRun, group: u32) -> CommitProgress {
    let members = spec.world.members(group);
    let committed = run
        .observations
        .iter()
        .filter(|observation| members.contains(&observation.node))
        .filter_map(|observation| match observation.kind {
            ObservedKind::LeaderCommit { index, .. } => Some(index.0),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let applied = members
        .iter()
        .filter_map(|node| run.final_logs[node.0 as usize].last())
        .map(|entry| entry.index.0)
        .max()
        .unwrap_or(0);
    CommitProgress { committed, applied }
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
        verdict: Some(report.verdict),
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
/// A group that did not settle and had committed entries no replica applied leaves its queues
/// open (`FinalState::open`): the log is a committed prefix only.
fn final_state(spec: &RunSpec, run: &SeedRun) -> FinalState {
    let final_logs = &run.final_logs;
    let unsettled = unsettled_groups(spec, run);
    let mut finals = FinalState::default();
    for group in 0..spec.world.groups {
        let members = spec.world.members(group);
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
        // Every workload queue has a final log, empty when nothing of it was applied (else
        // its acknowledged sends would go unchecked).
        let mut contents = queue_contents(group, &final_logs[most_advanced.0 as usize]);
        for queue in group_queues(spec, group) {
            contents.entry(queue).or_default();
        }
        if unsettled.contains(&group) {
            let progress = commit_progress(spec, run, group);
            if progress.committed > progress.applied {
                finals.open.extend(contents.keys().cloned());
            }
        }
        finals.committed.extend(contents);
    }
    finals
}

/// The history names of a group's workload queues.
fn group_queues(spec: &RunSpec, group: u32) -> Vec<String> {
    spec.workload
        .queues
        .iter()
        .filter(|(queue_group, _)| *queue_group == group)
        .map(|(_, queue)| QueueId::new(group, queue.clone()).to_string())
        .collect()
}

fn count_ops(history: &[Operation]) -> OpCounts {
    let mut counts = OpCounts::default();
    let mut delivered: BTreeSet<&str> = BTreeSet::new();
    for op in history {
        let pull = matches!(op.input, OpInput::Pull { .. });
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

/// A replica's committed messages per history queue name, in queue-offset order. Keyed by the
/// queue's text, as the history names it (the checker and the oracles read it so).
pub fn queue_contents(group: u32, log: &[AppliedEntry]) -> BTreeMap<String, Vec<String>> {
    // Grouped by the core's key first: a queue's name is formatted once, not per entry.
    let mut by_key: BTreeMap<&broker_core::broker::QueueKey, Vec<String>> = BTreeMap::new();
    for entry in log {
        if let Some(message) = &entry.message {
            by_key
                .entry(&message.queue)
                .or_default()
                .push(message.msg_id.clone());
        }
    }
    by_key
        .into_iter()
        .map(|(key, bodies)| (QueueId::new(group, key.clone()).to_string(), bodies))
        .collect()
}
