//! Seeded swarm faults (TigerBeetle's VOPR, FoundationDB's simulation): a `Random(kinds, every,
//! for)` entry of the timeline is expanded, per seed, into concrete faults drawn from a ChaCha
//! stream of the run seed and the entry's position alone, so changing the workload or the
//! cluster's timing never moves the schedule. Each drawn fault is undone after its `for`
//! (crash → restart, cut → heal, clock → resync, slow disk → the scenario's fsync...).
//!
//! [`Timeline`] merges the fixed faults, the drawn ones and their undos in time order.

use super::plan::{Atlas, Fault, FaultKind, FaultPlan, Planned, Swarm, Target};
use crate::ids::SimTime;
use crate::world::damage::{Damage, Spot};
use crate::world::{mix_seed, WorldSpec};
use broker_core::NodeId;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The swarm's own stream tag ("SWARM").
const SWARM_STREAM: u64 = 0x5357_4152_4D00;

/// One drawn fault: fires `at`, undone `length` later (if still in the fault phase; the heal
/// undoes the rest).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwarmDraw {
    pub at: SimTime,
    pub fault: Fault,
    pub length: SimTime,
}

/// Draws the faults of the swarm at position `entry` of the plan, from `start` until `end`.
pub fn draw(
    spec: &WorldSpec,
    seed: u64,
    entry: usize,
    start: SimTime,
    end: SimTime,
    swarm: &Swarm,
) -> Vec<SwarmDraw> {
    let mut rng = ChaCha8Rng::seed_from_u64(mix_seed(seed, SWARM_STREAM, entry as u64));
    let mut draws = Vec::new();
    let mut at = start;
    loop {
        at += SimTime::from_ms(rng.gen_range(swarm.every_ms_min..=swarm.every_ms_max));
        if at >= end {
            return draws;
        }
        let kind = *swarm
            .kinds
            .choose(&mut rng)
            .expect("invariant: validation requires at least one kind");
        let length = SimTime::from_ms(rng.gen_range(swarm.length_ms_min..=swarm.length_ms_max));
        let fault = if is_disk_damage(kind) {
            draw_damage(spec, seed, &mut rng, kind, swarm.atlas)
        } else {
            draw_fault(spec, &mut rng, kind, length)
        };
        draws.push(SwarmDraw { at, fault, length });
    }
}

/// A node of the group or its leader, half and half.
fn draw_target(spec: &WorldSpec, rng: &mut ChaCha8Rng, group: u32) -> Target {
    if rng.gen_bool(0.5) {
        Target::Leader { group }
    } else {
        Target::Node(NodeId(
            group * spec.replicas + rng.gen_range(0..spec.replicas),
        ))
    }
}

fn draw_link(spec: &WorldSpec, rng: &mut ChaCha8Rng, group: u32) -> (Target, Target) {
    let mut members = spec.members(group);
    members.shuffle(rng);
    (Target::Node(members[0]), Target::Node(members[1]))
}

/// A magnitude from `min..=max`, then a sign, half and half.
fn signed(rng: &mut ChaCha8Rng, min: u64, max: u64) -> i64 {
    let magnitude =
        i64::try_from(rng.gen_range(min..=max)).expect("invariant: drawn magnitudes are small");
    if rng.gen_bool(0.5) {
        magnitude
    } else {
        -magnitude
    }
}

fn draw_fault(spec: &WorldSpec, rng: &mut ChaCha8Rng, kind: FaultKind, length: SimTime) -> Fault {
    let group = rng.gen_range(0..spec.groups);
    let target = draw_target(spec, rng, group);
    match kind {
        FaultKind::Crash => Fault::Crash(target),
        FaultKind::CrashLosingUnsynced => Fault::CrashLosingUnsynced(target),
        FaultKind::CrashTornTail => Fault::CrashTornTail(target),
        FaultKind::Pause => Fault::Pause { target, length },
        FaultKind::Isolate => Fault::Isolate(target),
        FaultKind::Partition => {
            let mut members = spec.members(group);
            members.shuffle(rng);
            let cut = rng.gen_range(1..=members.len() / 2);
            let (left, right) = members.split_at(cut);
            Fault::Partition(vec![left.to_vec(), right.to_vec()])
        }
        FaultKind::OneWay => {
            let (from, to) = draw_link(spec, rng, group);
            // Half the time the leader can send but not hear from one follower.
            if rng.gen_bool(0.5) {
                Fault::OneWay {
                    from: to,
                    to: Target::Leader { group },
                }
            } else {
                Fault::OneWay { from, to }
            }
        }
        FaultKind::Bridge => Fault::Bridge { group },
        FaultKind::MajoritiesRing => Fault::MajoritiesRing { group },
        FaultKind::DeposeLeader => Fault::DeposeLeader { group },
        // Jepsen's coordinated power failure: a majority, or the whole group, at once.
        FaultKind::PowerLoss => Fault::CrashLosingUnsynced(if rng.gen_bool(0.5) {
            Target::Majority { group }
        } else {
            Target::Group { group }
        }),
        FaultKind::Latency => {
            let min_ms = rng.gen_range(1..=20);
            Fault::Latency {
                min: SimTime::from_ms(min_ms),
                max: SimTime::from_ms(min_ms + rng.gen_range(0..=200)),
            }
        }
        FaultKind::Loss => Fault::Loss {
            ppm: rng.gen_range(1_000..=200_000),
        },
        FaultKind::LinkLatency => {
            let (from, to) = draw_link(spec, rng, group);
            let min_ms = rng.gen_range(1..=500);
            Fault::LinkLatency {
                from,
                to,
                min: SimTime::from_ms(min_ms),
                max: SimTime::from_ms(min_ms + rng.gen_range(0..=2_000)),
            }
        }
        FaultKind::LinkLoss => {
            let (from, to) = draw_link(spec, rng, group);
            Fault::LinkLoss {
                from,
                to,
                ppm: rng.gen_range(100_000..=1_000_000),
            }
        }
        FaultKind::Duplicate => Fault::Duplicate {
            ppm: rng.gen_range(10_000..=500_000),
        },
        FaultKind::ClockOffset => Fault::ClockOffset {
            target,
            offset_us: signed(rng, 100, 30_000) * 1_000,
        },
        FaultKind::ClockDrift => Fault::ClockDrift {
            target,
            ppm: i32::try_from(signed(rng, 1_000, 500_000))
                .expect("invariant: drawn drift fits i32"),
        },
        FaultKind::ClockJump => Fault::ClockJump {
            target,
            by_us: signed(rng, 100, 30_000) * 1_000,
        },
        FaultKind::ClockStrobe => Fault::ClockStrobe {
            target,
            delta: SimTime::from_ms(rng.gen_range(100..=5_000)),
            period: SimTime::from_ms(rng.gen_range(100..=2_000)),
            length: length.max(SimTime::from_ms(2_000)),
        },
        FaultKind::SlowDisk => Fault::SlowDisk {
            target,
            fsync: SimTime::from_ms(rng.gen_range(50..=2_000)),
        },
        FaultKind::TransferLeader => Fault::TransferLeader {
            group,
            to: Target::Follower { group },
        },
        FaultKind::Corrupt
        | FaultKind::Truncate
        | FaultKind::WipeDisk
        | FaultKind::LoseHardState
        | FaultKind::MisdirectedWrite => unreachable!("invariant: disk kinds go to draw_damage"),
    }
}

fn is_disk_damage(kind: FaultKind) -> bool {
    matches!(
        kind,
        FaultKind::Corrupt
            | FaultKind::Truncate
            | FaultKind::WipeDisk
            | FaultKind::LoseHardState
            | FaultKind::MisdirectedWrite
    )
}

/// issue 15: a disk fault on a replica the atlas allows (`atlas::damageable`); with a
/// single-replica group under the default atlas there is none, and the draw is a plain crash.
fn draw_damage(
    spec: &WorldSpec,
    seed: u64,
    rng: &mut ChaCha8Rng,
    kind: FaultKind,
    atlas: Atlas,
) -> Fault {
    let group = rng.gen_range(0..spec.groups);
    let allowed = super::atlas::damageable(spec, seed, group, atlas);
    let Some(node) = allowed.choose(rng).copied() else {
        return Fault::Crash(Target::Leader { group });
    };
    let target = Target::Node(node);
    let damage = match kind {
        FaultKind::Corrupt => Damage::Corrupt {
            at: match rng.gen_range(0..3) {
                0 => Spot::Tail,
                _ => Spot::Random,
            },
            bits: rng.gen_range(1..=8),
        },
        FaultKind::Truncate => Damage::Truncate {
            entries: rng.gen_range(1..=200),
        },
        FaultKind::WipeDisk => Damage::Wipe,
        FaultKind::LoseHardState => Damage::LoseHardState,
        _ => Damage::Misdirected,
    };
    Fault::Damage { target, damage }
}

/// What undoes a drawn fault that resolved to `nodes`.
pub fn undo(spec: &WorldSpec, fault: &Fault, nodes: &[NodeId]) -> Vec<Fault> {
    let each = |make: &dyn Fn(Target) -> Fault| -> Vec<Fault> {
        nodes.iter().map(|node| make(Target::Node(*node))).collect()
    };
    match fault {
        Fault::Crash(_)
        | Fault::CrashLosingUnsynced(_)
        | Fault::CrashTornTail(_)
        | Fault::Damage { .. } => each(&Fault::Restart),
        Fault::Isolate(_)
        | Fault::Partition(_)
        | Fault::OneWay { .. }
        | Fault::Bridge { .. }
        | Fault::MajoritiesRing { .. }
        | Fault::DeposeLeader { .. }
        | Fault::LinkLatency { .. }
        | Fault::LinkLoss { .. } => vec![Fault::Heal],
        Fault::Latency { .. } => vec![Fault::Latency {
            min: spec.latency_min,
            max: spec.latency_max,
        }],
        Fault::Loss { .. } => vec![Fault::Loss { ppm: spec.loss_ppm }],
        Fault::Duplicate { .. } => vec![Fault::Duplicate { ppm: 0 }],
        Fault::ClockOffset { .. }
        | Fault::ClockDrift { .. }
        | Fault::ClockJump { .. }
        | Fault::ClockStrobe { .. } => each(&Fault::ClockResync),
        Fault::SlowDisk { .. } => each(&|target| Fault::SlowDisk {
            target,
            fsync: spec.fsync,
        }),
        Fault::Pause { .. }
        | Fault::TransferLeader { .. }
        | Fault::Restart(_)
        | Fault::Heal
        | Fault::ClockResync(_) => Vec::new(),
    }
}

/// One step of the merged timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub at: SimTime,
    pub fault: Fault,
    /// For drawn faults: undo this long after it fires.
    pub undo_after: Option<SimTime>,
    /// Drawn by a swarm whose cuts accumulate (`Swarm::heal_after_last_cut`): the cut's undo
    /// heals only once no other such cut is in force (`CutsInForce`).
    pub cuts_accumulate: bool,
}

/// The drawn cuts in force of swarms whose cuts accumulate: a cut's `Heal` undo is carried out
/// only when it ends the last of them.
#[derive(Debug, Default)]
pub struct CutsInForce(u32);

impl CutsInForce {
    /// A step fired; `undos` are what will undo it.
    pub fn fired(&mut self, step: &Step, undos: &[Fault]) {
        if step.cuts_accumulate && step.undo_after.is_some() && undos.contains(&Fault::Heal) {
            self.0 += 1;
        }
    }

    /// Whether `step`, now due, is to be carried out: an accumulating cut's `Heal` only when
    /// it ends the last cut in force.
    pub fn carry_out(&mut self, step: &Step) -> bool {
        if !(step.cuts_accumulate && step.undo_after.is_none() && step.fault == Fault::Heal) {
            return true;
        }
        assert!(
            self.0 > 0,
            "invariant: each such heal undoes one cut that fired"
        );
        self.0 -= 1;
        self.0 == 0
    }
}

/// Fixed faults, drawn faults and undos, in time order (ties: in the order they were added).
pub struct Timeline {
    queue: BinaryHeap<Reverse<(SimTime, u64)>>,
    steps: Vec<Option<Step>>,
    /// Every drawn fault, for the trace and the report.
    pub drawn: Vec<SwarmDraw>,
}

impl Timeline {
    pub fn new(spec: &WorldSpec, plan: &FaultPlan, seed: u64) -> Timeline {
        let mut timeline = Timeline {
            queue: BinaryHeap::new(),
            steps: Vec::new(),
            drawn: Vec::new(),
        };
        for (entry, (at, planned)) in plan.entries.iter().enumerate() {
            match planned {
                Planned::Swarm(swarm) => {
                    for drawn in draw(spec, seed, entry, *at, plan.end, swarm) {
                        timeline.push(Step {
                            at: drawn.at,
                            fault: drawn.fault.clone(),
                            undo_after: Some(drawn.length),
                            cuts_accumulate: swarm.heal_after_last_cut,
                        });
                        timeline.drawn.push(drawn);
                    }
                }
                Planned::Fault(fault) => timeline.push(Step {
                    at: *at,
                    fault: fault.clone(),
                    undo_after: None,
                    cuts_accumulate: false,
                }),
            }
        }
        timeline.drawn.sort_by_key(|drawn| drawn.at);
        timeline
    }

    pub fn push(&mut self, step: Step) {
        let seq = self.steps.len() as u64;
        self.queue.push(Reverse((step.at, seq)));
        self.steps.push(Some(step));
    }

    /// The next step due before `end`, if any.
    pub fn pop_before(&mut self, end: SimTime) -> Option<Step> {
        let Reverse((at, seq)) = *self.queue.peek()?;
        if at >= end {
            return None;
        }
        self.queue.pop();
        self.steps[usize::try_from(seq).expect("invariant: step counts fit in usize")].take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(at_ms: u64, fault: Fault, undo_after_ms: Option<u64>) -> Step {
        Step {
            at: SimTime::from_ms(at_ms),
            fault,
            undo_after: undo_after_ms.map(SimTime::from_ms),
            cuts_accumulate: true,
        }
    }

    // Two overlapping drawn cuts: the first one's heal is skipped (the second is still on),
    // the second one's heals; a plain swarm's and a scenario's heals always happen.
    #[test]
    fn accumulating_cuts_heal_when_the_last_one_ends() {
        let mut cuts = CutsInForce::default();
        let isolate = step(100, Fault::Isolate(Target::Node(NodeId(0))), Some(500));
        let depose = step(300, Fault::DeposeLeader { group: 0 }, Some(900));
        for fired in [&isolate, &depose] {
            assert!(cuts.carry_out(fired));
            cuts.fired(fired, &[Fault::Heal]);
        }
        assert!(!cuts.carry_out(&step(600, Fault::Heal, None)));
        assert!(cuts.carry_out(&step(1_200, Fault::Heal, None)));

        let mut plain = step(1_300, Fault::Heal, None);
        plain.cuts_accumulate = false;
        assert!(cuts.carry_out(&plain));
        // A crash's undo is a restart, not a heal: no cut is counted.
        let crash = step(1_400, Fault::Crash(Target::Node(NodeId(1))), Some(100));
        cuts.fired(&crash, &[Fault::Restart(Target::Node(NodeId(1)))]);
        assert_eq!(0, cuts.0);
    }
}
