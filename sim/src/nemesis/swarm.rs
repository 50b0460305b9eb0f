//! Seeded swarm faults (TigerBeetle's VOPR, FoundationDB's simulation): a `Random(kinds, every,
//! for)` entry of the timeline is expanded, per seed, into concrete faults drawn from a ChaCha
//! stream of the run seed and the entry's position alone, so changing the workload or the
//! cluster's timing never moves the schedule. Each drawn fault is undone after its `for`
//! (crash → restart, cut → heal, clock → resync, slow disk → the scenario's fsync...).
//!
//! [`Timeline`] merges the fixed faults, the drawn ones and their undos in time order.

use crate::scenario::{Fault, FaultKind, Millis, MillisRange, SignedMillis, Target};
use crate::world::{mix_seed, WorldSpec};
use broker_core::NodeId;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The swarm's own stream tag ("SWARM").
const SWARM_STREAM: u64 = 0x5357_4152_4D00;

/// One drawn fault: fires at `at_us`, undone `for_us` later (if still in the fault phase;
/// the heal undoes the rest).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwarmDraw {
    pub at_us: u64,
    pub fault: Fault,
    pub for_us: u64,
}

/// Draws the faults of the `Random` entry at position `entry` of the timeline.
pub fn draw(
    spec: &WorldSpec,
    seed: u64,
    entry: usize,
    start_us: u64,
    kinds: &[FaultKind],
    every: MillisRange,
    length: MillisRange,
) -> Vec<SwarmDraw> {
    let mut rng = ChaCha8Rng::seed_from_u64(mix_seed(seed, SWARM_STREAM, entry as u64));
    let mut draws = Vec::new();
    let mut at_us = start_us;
    loop {
        at_us += rng.gen_range(every.min.as_ms()..=every.max.as_ms()) * 1_000;
        if at_us >= spec.duration_us {
            return draws;
        }
        let kind = *kinds
            .choose(&mut rng)
            .expect("invariant: validation requires at least one kind");
        let for_us = rng.gen_range(length.min.as_ms()..=length.max.as_ms()) * 1_000;
        let fault = draw_fault(spec, &mut rng, kind, for_us);
        draws.push(SwarmDraw {
            at_us,
            fault,
            for_us,
        });
    }
}

/// A node of the group or its leader, half and half.
fn draw_target(spec: &WorldSpec, rng: &mut ChaCha8Rng, group: u32) -> Target {
    if rng.gen_bool(0.5) {
        Target::Leader { group }
    } else {
        Target::Node(group * spec.replicas + rng.gen_range(0..spec.replicas))
    }
}

fn draw_link(spec: &WorldSpec, rng: &mut ChaCha8Rng, group: u32) -> (Target, Target) {
    let mut members = spec.members(group);
    members.shuffle(rng);
    (Target::Node(members[0].0), Target::Node(members[1].0))
}

fn signed(rng: &mut ChaCha8Rng, min_ms: u64, max_ms: u64) -> SignedMillis {
    let magnitude = i64::try_from(rng.gen_range(min_ms..=max_ms))
        .expect("invariant: drawn magnitudes are small");
    SignedMillis(if rng.gen_bool(0.5) {
        magnitude
    } else {
        -magnitude
    })
}

fn draw_fault(spec: &WorldSpec, rng: &mut ChaCha8Rng, kind: FaultKind, for_us: u64) -> Fault {
    let group = rng.gen_range(0..spec.groups);
    let target = draw_target(spec, rng, group);
    match kind {
        FaultKind::Crash => Fault::Crash(target),
        FaultKind::CrashLosingUnsynced => Fault::CrashLosingUnsynced(target),
        FaultKind::CrashTornTail => Fault::CrashTornTail(target),
        FaultKind::Pause => Fault::Pause {
            target,
            length: Millis(for_us / 1_000),
        },
        FaultKind::Isolate => Fault::Isolate(target),
        FaultKind::Partition => {
            let mut members: Vec<u32> = spec.members(group).into_iter().map(|n| n.0).collect();
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
        FaultKind::Latency => {
            let min = rng.gen_range(1..=20);
            Fault::Latency {
                min: Millis(min),
                max: Millis(min + rng.gen_range(0..=200)),
            }
        }
        FaultKind::Loss => Fault::Loss {
            ppm: rng.gen_range(1_000..=200_000),
        },
        FaultKind::LinkLatency => {
            let (from, to) = draw_link(spec, rng, group);
            let min = rng.gen_range(1..=500);
            Fault::LinkLatency {
                from,
                to,
                min: Millis(min),
                max: Millis(min + rng.gen_range(0..=2_000)),
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
            offset: signed(rng, 100, 30_000),
        },
        FaultKind::ClockDrift => Fault::ClockDrift {
            target,
            ppm: i32::try_from(signed(rng, 1_000, 500_000).as_ms())
                .expect("invariant: drawn drift fits i32"),
        },
        FaultKind::ClockJump => Fault::ClockJump {
            target,
            by: signed(rng, 100, 30_000),
        },
        FaultKind::ClockStrobe => Fault::ClockStrobe {
            target,
            delta: Millis(rng.gen_range(100..=5_000)),
            period: Millis(rng.gen_range(100..=2_000)),
            length: Millis((for_us / 1_000).max(2_000)),
        },
        FaultKind::SlowDisk => Fault::SlowDisk {
            target,
            fsync: Millis(rng.gen_range(50..=2_000)),
        },
        FaultKind::TransferLeader => Fault::TransferLeader {
            group,
            to: Target::Follower { group },
        },
    }
}

/// What undoes a drawn fault that resolved to `nodes`.
pub fn undo(spec: &WorldSpec, fault: &Fault, nodes: &[NodeId]) -> Vec<Fault> {
    let each = |make: &dyn Fn(Target) -> Fault| -> Vec<Fault> {
        nodes.iter().map(|n| make(Target::Node(n.0))).collect()
    };
    match fault {
        Fault::Crash(_) | Fault::CrashLosingUnsynced(_) | Fault::CrashTornTail(_) => {
            each(&Fault::Restart)
        }
        Fault::Isolate(_)
        | Fault::Partition(_)
        | Fault::OneWay { .. }
        | Fault::Bridge { .. }
        | Fault::MajoritiesRing { .. }
        | Fault::LinkLatency { .. }
        | Fault::LinkLoss { .. } => vec![Fault::Heal],
        Fault::Latency { .. } => vec![Fault::Latency {
            min: Millis(spec.latency_us_min / 1_000),
            max: Millis(spec.latency_us_max / 1_000),
        }],
        Fault::Loss { .. } => vec![Fault::Loss { ppm: spec.loss_ppm }],
        Fault::Duplicate { .. } => vec![Fault::Duplicate { ppm: 0 }],
        Fault::ClockOffset { .. }
        | Fault::ClockDrift { .. }
        | Fault::ClockJump { .. }
        | Fault::ClockStrobe { .. } => each(&Fault::ClockResync),
        Fault::SlowDisk { .. } => each(&|target| Fault::SlowDisk {
            target,
            fsync: Millis(spec.fsync_us / 1_000),
        }),
        Fault::Pause { .. }
        | Fault::TransferLeader { .. }
        | Fault::Restart(_)
        | Fault::Heal
        | Fault::ClockResync(_)
        | Fault::Random { .. } => Vec::new(),
    }
}

/// One step of the merged timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub at_us: u64,
    pub fault: Fault,
    /// For drawn faults: undo this long after it fires.
    pub undo_after_us: Option<u64>,
}

/// Fixed faults, drawn faults and undos, in time order (ties: in the order they were added).
pub struct Timeline {
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    steps: Vec<Option<Step>>,
    /// Every drawn fault, for the trace and the report.
    pub drawn: Vec<SwarmDraw>,
}

impl Timeline {
    pub fn new(spec: &WorldSpec, seed: u64) -> Timeline {
        let mut timeline = Timeline {
            queue: BinaryHeap::new(),
            steps: Vec::new(),
            drawn: Vec::new(),
        };
        for (entry, timed) in spec.faults.iter().enumerate() {
            let at_us = timed.at.as_ms() * 1_000;
            match &timed.fault {
                Fault::Random {
                    kinds,
                    every,
                    length,
                } => {
                    for drawn in draw(spec, seed, entry, at_us, kinds, *every, *length) {
                        timeline.push(Step {
                            at_us: drawn.at_us,
                            fault: drawn.fault.clone(),
                            undo_after_us: Some(drawn.for_us),
                        });
                        timeline.drawn.push(drawn);
                    }
                }
                fault => timeline.push(Step {
                    at_us,
                    fault: fault.clone(),
                    undo_after_us: None,
                }),
            }
        }
        timeline.drawn.sort_by_key(|drawn| drawn.at_us);
        timeline
    }

    pub fn push(&mut self, step: Step) {
        let seq = self.steps.len() as u64;
        self.queue.push(Reverse((step.at_us, seq)));
        self.steps.push(Some(step));
    }

    /// The next step due before `end_us`, if any.
    pub fn pop_before(&mut self, end_us: u64) -> Option<Step> {
        let Reverse((at_us, seq)) = *self.queue.peek()?;
        if at_us >= end_us {
            return None;
        }
        self.queue.pop();
        self.steps[usize::try_from(seq).expect("invariant: step counts fit in usize")].take()
    }
}
