//! Turns one seed's raw run into its outcome: failover timelines, findings, counts.

use crate::check::losses::{self, LossConsequence, LostSends};
use crate::check::oracles::{self, FinalState};
use crate::check::{self, CheckOptions, CheckReport};
use crate::history::{OpInput, OpOutcome, Operation};
use crate::ids::QueueId;
use crate::metrics::{self, FailoverTimeline};
use crate::run::outcome::{CheckSummary, Finding, FindingKind, OpCounts, SeedOutcome};
use crate::run::RunSpec;
use crate::run::SeedRun;
use crate::world::observe::AppliedEntry;
use std::collections::{BTreeMap, BTreeSet};

/// Checks and measures one finished seed.
pub fn evaluate(spec: &RunSpec, run: &SeedRun) -> SeedOutcome {
    let (failovers, cuts_healed) = failovers_and_healed_cuts(spec, run);
    let finals = final_state(spec, &run.final_logs);
    let mut findings = world_findings(run);
    findings.extend(oracle_findings(spec, run, &finals));
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
    findings.extend(not_settled(spec, run));
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

/// What the world itself saw go wrong: broken Raft invariants, then failed recoveries.
fn world_findings(run: &SeedRun) -> Vec<Finding> {
    let invariants = run
        .violations
        .iter()
        .map(|(at_us, violation)| Finding::RaftInvariant {
            at_us: *at_us,
            violation: violation.clone(),
        });
    let recoveries =
        run.recovery_failures
            .iter()
            .map(|(at_us, node, error)| Finding::RecoveryFailed {
                at_us: *at_us,
                node: *node,
                error: error.clone(),
            });
    invariants.chain(recoveries).collect()
}

/// The safety oracles' violations (a loss's consequences under their own kinds), then, with
/// consumers, the acknowledged sends no consumer received.
fn oracle_findings(spec: &RunSpec, run: &SeedRun, finals: &FinalState) -> Vec<Finding> {
    let violations = oracles::check(&run.history, finals);
    let lost = LostSends::of(&violations);
    let mut findings: Vec<Finding> = violations
        .into_iter()
        .map(|violation| {
            let kind = match lost.consequence(&violation) {
                Some(consequence) => consequence_kind(consequence),
                None => FindingKind::of_violation(&violation),
            };
            Finding::Safety {
                kind,
                detail: format!("{violation:?}"),
            }
        })
        .collect();
    if spec.workload.consumers > 0 {
        findings.extend(
            losses::unconsumed(&run.history, &lost)
                .into_iter()
                .map(|unconsumed| Finding::Safety {
                    kind: unconsumed
                        .consequence
                        .map_or(FindingKind::AckedNotConsumed, consequence_kind),
                    detail: format!(
                        "op {}: {} acknowledged at {} offset {}, never pulled",
                        unconsumed.op, unconsumed.body, unconsumed.queue, unconsumed.offset
                    ),
                }),
        );
    }
    findings
}

fn consequence_kind(consequence: LossConsequence) -> FindingKind {
    match consequence {
        LossConsequence::OffsetReused => FindingKind::LostAckedOffsetReused,
        LossConsequence::ConsumerSkip => FindingKind::LostAckedConsumerSkip,
    }
}

/// Liveness: every group with no settle time.
fn not_settled(spec: &RunSpec, run: &SeedRun) -> Vec<Finding> {
    (0..spec.world.groups)
        .filter(|group| {
            run.settle_us
                .get(*group as usize)
                .copied()
                .flatten()
                .is_none()
        })
        .map(|group| Finding::NotSettled { group })
        .collect()
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
fn final_state(spec: &RunSpec, final_logs: &[Vec<AppliedEntry>]) -> FinalState {
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
        finals
            .committed
            .extend(queue_contents(group, &final_logs[most_advanced.0 as usize]));
    }
    finals
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
    let mut queues: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in log {
        if let Some(message) = &entry.message {
            queues
                .entry(QueueId::new(group, message.queue.clone()).to_string())
                .or_default()
                .push(message.msg_id.clone());
        }
    }
    queues
}
