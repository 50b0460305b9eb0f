//! The unexplained-election oracle (issue 14): every new term a group enters must have a cause.
//! A replica starts an election only when it stopped hearing its leader; in a simulation every
//! reason for that is known — a fault or its undo (crash, pause, cut, heal, clock step, slow
//! disk, a leadership transfer until the core's transfer timeout, the heal at the end of the fault phase), an event trigger (seen as
//! a crash or pause), a datagram to the candidate the network dropped, the group's first
//! election, or an election still going on (a split vote's next term). A new term with none of
//! these within the election window (`WorldSpec::election_window_us`) before it means the
//! cluster's timers misbehave: a liveness defect even when no data is lost.

use super::seed::SeedRun;
use super::spec::RunSpec;
use crate::scenario::{Fault, Millis, Target, TimedFault};
use crate::world::observe::ObservedKind;
use broker_core::raft::Role;
use broker_core::NodeId;
use std::collections::{BTreeMap, BTreeSet};

/// A new term no cause explains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnexplainedElection {
    pub at_us: u64,
    pub group: u32,
    /// The replica that entered the term first (the candidate).
    pub node: NodeId,
    pub term: u64,
}

/// What the oracle saw in one seed: how many terms each group entered, and those unexplained.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ElectionAudit {
    pub new_terms: u32,
    pub unexplained: Vec<UnexplainedElection>,
}

/// Audits every new term of every group in `run` (DLedger mode only: master–slave groups
/// never elect).
pub fn audit(spec: &RunSpec, run: &SeedRun) -> ElectionAudit {
    if spec.world.is_master_slave() {
        return ElectionAudit::default();
    }
    let window_us = spec.world.election_window_us();
    let disturbances = Disturbances::of(spec, run);
    let mut audit = ElectionAudit::default();
    // Per group: the highest term seen, when the last new term started and whether it was
    // explained, and the terms that had a leader.
    let mut highest: BTreeMap<u32, u64> = BTreeMap::new();
    let mut last_start: BTreeMap<u32, (u64, bool)> = BTreeMap::new();
    let mut led: BTreeMap<u32, BTreeSet<u64>> = BTreeMap::new();
    // Per group: when its latest leader took office. A replica that did not vote for it hears
    // of it only with its first heartbeat, up to a heartbeat and the slowest delivery later.
    let mut leader_since: BTreeMap<u32, u64> = BTreeMap::new();
    let unheard_us = spec.world.raft.heartbeat_interval_ms * 1_000 + spec.world.latency_max.as_us();
    // Per replica: its last role, and whether its candidacy under way (if any) was explained.
    let mut last_role: BTreeMap<NodeId, Role> = BTreeMap::new();
    let mut candidacy_explained: BTreeMap<NodeId, bool> = BTreeMap::new();
    let campaigning = |role: Role| matches!(role, Role::PreCandidate | Role::Candidate);
    for observation in &run.observations {
        let ObservedKind::Role { role, term } = observation.kind else {
            continue;
        };
        let node = observation.node;
        let group = spec.world.group_of(node);
        let at_us = observation.at_us;
        let from_us = at_us.saturating_sub(window_us);
        let led_terms = led.entry(group).or_default();
        if role == Role::Leader {
            led_terms.insert(term.0);
            leader_since.insert(group, at_us);
        }
        let previous_term = highest.get(&group).copied().unwrap_or(0);
        // Why this replica would stop hearing a leader now: the group never had one, an
        // explained election that has produced no leader yet goes on (a split vote's next
        // term, or a replica it made step down), the group's leader is too new to have been
        // heard, or something disturbed the cluster or dropped a datagram to this replica
        // within the window.
        let fresh_cause = || {
            let group_election_on = !led_terms.contains(&previous_term)
                && last_start
                    .get(&group)
                    .is_some_and(|(start, explained)| *explained && *start >= from_us);
            let leader_unheard = leader_since
                .get(&group)
                .is_some_and(|since| at_us <= since + unheard_us);
            led_terms.is_empty()
                || group_election_on
                || leader_unheard
                || disturbances.any_within(from_us, at_us)
                || run.peer_drops.any_within(node, from_us, at_us)
        };
        let was_campaigning = last_role.get(&node).is_some_and(|r| campaigning(*r));
        last_role.insert(node, role);
        let explained = if campaigning(role) {
            // A candidate that retries (a new term after a lost vote) keeps its first cause.
            if !was_campaigning {
                candidacy_explained.insert(node, fresh_cause());
            }
            candidacy_explained.get(&node).copied().unwrap_or(true)
        } else {
            candidacy_explained.remove(&node);
            term.0 <= previous_term || fresh_cause()
        };
        if term.0 <= previous_term {
            continue;
        }
        highest.insert(group, term.0);
        audit.new_terms += 1;
        last_start.insert(group, (at_us, explained));
        if !explained {
            audit.unexplained.push(UnexplainedElection {
                at_us,
                group,
                node,
                term: term.0,
            });
        }
    }
    audit
}

/// The spans of simulated time when something was disturbing the cluster, from the faults
/// played and the replicas seen down or paused.
struct Disturbances {
    spans: Vec<(u64, u64)>,
}

impl Disturbances {
    fn of(spec: &RunSpec, run: &SeedRun) -> Disturbances {
        let end_us = run.end_us;
        let mut spans = played_spans(spec, &run.played, end_us);
        // The heal of everything at the end of the fault phase.
        let phase_end_us = spec.duration.as_us();
        spans.push((phase_end_us, phase_end_us));
        spans.extend(down_spans(run, end_us));
        Disturbances { spans }
    }

    fn any_within(&self, from_us: u64, to_us: u64) -> bool {
        self.spans
            .iter()
            .any(|(start, end)| *start <= to_us && *end >= from_us)
    }
}

/// When each replica was down (crashed, until restarted) or paused (until resumed), from the
/// observations: this covers the faults event triggers fire, which the played list lacks.
fn down_spans(run: &SeedRun, end_us: u64) -> Vec<(u64, u64)> {
    let mut since: BTreeMap<NodeId, u64> = BTreeMap::new();
    let mut spans = Vec::new();
    for observation in &run.observations {
        match observation.kind {
            ObservedKind::Crashed | ObservedKind::Paused => {
                since.entry(observation.node).or_insert(observation.at_us);
            }
            ObservedKind::Restarted | ObservedKind::Resumed => {
                if let Some(start) = since.remove(&observation.node) {
                    spans.push((start, observation.at_us));
                }
            }
            ObservedKind::Role { .. } | ObservedKind::LeaderCommit { .. } => {}
        }
    }
    spans.extend(since.values().map(|start| (*start, end_us)));
    spans
}

/// The spans the played faults disturbed: each fault's own moment, what lasts (a pause, a
/// strobe, a clock stepped back) for its length, and what holds until undone (cuts until a
/// heal, the whole network's latency, loss or duplication off its base, a drifting clock, a
/// slow disk) until it is.
fn played_spans(spec: &RunSpec, played: &[TimedFault], end_us: u64) -> Vec<(u64, u64)> {
    let ms = |millis: Millis| millis.as_ms() * 1_000;
    let base_latency = (
        spec.world.latency_min.as_us(),
        spec.world.latency_max.as_us(),
    );
    let base_fsync_us = spec.world.fsync.as_us();
    let mut spans = Vec::new();
    let mut cut_since: Option<u64> = None;
    let mut latency_since: Option<u64> = None;
    let mut loss_since: Option<u64> = None;
    let mut duplicate_since: Option<u64> = None;
    let mut drift_since: BTreeMap<Target, u64> = BTreeMap::new();
    let mut slow_since: BTreeMap<Target, u64> = BTreeMap::new();
    // Starts a lasting disturbance (if not already on) or ends it.
    fn hold(since: &mut Option<u64>, on: bool, at_us: u64, spans: &mut Vec<(u64, u64)>) {
        match (since.take(), on) {
            (None, true) => *since = Some(at_us),
            (Some(start), true) => *since = Some(start),
            (Some(start), false) => spans.push((start, at_us)),
            (None, false) => {}
        }
    }
    fn hold_of(
        map: &mut BTreeMap<Target, u64>,
        target: Target,
        on: bool,
        at_us: u64,
        spans: &mut Vec<(u64, u64)>,
    ) {
        let mut since = map.remove(&target);
        hold(&mut since, on, at_us, spans);
        if let Some(start) = since {
            map.insert(target, start);
        }
    }
    for timed in played {
        let at_us = ms(timed.at);
        spans.push((at_us, at_us));
        match &timed.fault {
            Fault::Pause { length, .. } | Fault::ClockStrobe { length, .. } => {
                spans.push((at_us, at_us + ms(*length)));
            }
            // A clock set back freezes the node's timers until true time catches up.
            Fault::ClockOffset { offset: by, .. } | Fault::ClockJump { by, .. } => {
                spans.push((at_us, at_us + by.as_ms().unsigned_abs() * 1_000));
            }
            Fault::Isolate(_)
            | Fault::Partition(_)
            | Fault::OneWay { .. }
            | Fault::Bridge { .. }
            | Fault::MajoritiesRing { .. }
            | Fault::DeposeLeader { .. }
            | Fault::LinkLatency { .. }
            | Fault::LinkLoss { .. } => hold(&mut cut_since, true, at_us, &mut spans),
            Fault::Heal => hold(&mut cut_since, false, at_us, &mut spans),
            Fault::Latency { min, max } => {
                let off_base = (ms(*min), ms(*max)) != base_latency;
                hold(&mut latency_since, off_base, at_us, &mut spans);
            }
            Fault::Loss { ppm } => {
                let off_base = *ppm != spec.world.loss_ppm;
                hold(&mut loss_since, off_base, at_us, &mut spans);
            }
            Fault::Duplicate { ppm } => {
                hold(&mut duplicate_since, *ppm > 0, at_us, &mut spans);
            }
            Fault::ClockDrift { target, ppm } => {
                hold_of(&mut drift_since, *target, *ppm != 0, at_us, &mut spans);
            }
            Fault::ClockResync(target) => {
                hold_of(&mut drift_since, *target, false, at_us, &mut spans);
            }
            Fault::SlowDisk { target, fsync } => {
                let slow = ms(*fsync) != base_fsync_us;
                hold_of(&mut slow_since, *target, slow, at_us, &mut spans);
            }
            // The leader sends TimeoutNow once the target has caught up, within the core's
            // transfer timeout.
            Fault::TransferLeader { .. } => {
                spans.push((at_us, at_us + spec.world.raft.transfer_timeout_ms * 1_000));
            }
            // A moment each: crashes and restarts are also seen as replicas down (`down_spans`).
            Fault::Crash(_)
            | Fault::CrashLosingUnsynced(_)
            | Fault::CrashTornTail(_)
            | Fault::Restart(_)
            | Fault::Corrupt { .. }
            | Fault::Truncate { .. }
            | Fault::WipeDisk(_)
            | Fault::LoseHardState(_)
            | Fault::MisdirectedWrite(_)
            | Fault::Random { .. } => {}
        }
    }
    let still_on = [cut_since, latency_since, loss_since, duplicate_since]
        .into_iter()
        .flatten()
        .chain(drift_since.into_values())
        .chain(slow_since.into_values());
    spans.extend(still_on.map(|start| (start, end_us)));
    spans
}
