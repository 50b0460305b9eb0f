//! Faults: what each one does to the world, with targets resolved at the moment it fires.
//!
//! A process `Crash` keeps the writes the node had handed to the OS (they are in the page
//! cache); `CrashLosingUnsynced` is a power loss: unsynced writes are gone, except a random
//! prefix that may survive as a torn tail.
//!
//! `CrashTornTail` goes one further: at least one unsynced append survives and its last entry
//! is corrupted, so recovery must find it with the chained checksum and cut it off.
//!
//! The disk faults of issue 15 (`Fault::Damage`: corrupt, truncate, wipe, lost hard state,
//! misdirected write) kill the node as `Crash` does and damage its durable disk
//! (`world::damage`); the node meets the damage when it restarts.
//!
//! The nemesis takes no lock and owns no world state: it resolves a fault's targets when the
//! fault fires (drawing from its own seeded stream) and carries it out through the world's
//! transitions (`World::crash`, `pause`, `cut`, `set_clock`...; the network faults live in
//! `world::network`). Clock faults change the node's clock; the adapter feeds the core a
//! clamped, monotonic reading of it. `Random` swarms are expanded by [`swarm`] before the run.
//!
//! Around every fault it has the world snapshot its leaders (`World::snapshot_leaders`), from
//! which `metrics` finds the faults that took a group's leader out of its majority.

pub mod atlas;
pub mod plan;
pub mod swarm;

use crate::world::observe::LeaderMark;
use crate::world::{mix_seed, AdminCommand, ClockChange, DiskFate, World};
use broker_core::NodeId;
pub use plan::{Fault, FaultKind, FaultPlan, Planned, Swarm, Target};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub struct Nemesis {
    world: Arc<World>,
    rng: ChaCha8Rng,
    /// Faults played so far (undos included): the next one's index.
    applied: usize,
    /// Per replica: bumped by a clock resync, which ends any strobe running on that clock.
    clock_epochs: Arc<Vec<AtomicU64>>,
}

impl Nemesis {
    pub fn new(world: Arc<World>) -> Nemesis {
        // Its own stream, so workload changes do not move the fault schedule.
        let rng = ChaCha8Rng::seed_from_u64(mix_seed(world.seed, 0x4E45_4D45_5349_5300, 0));
        let clock_epochs = Arc::new(
            (0..world.spec.replica_count())
                .map(|_| AtomicU64::new(0))
                .collect(),
        );
        Nemesis {
            world,
            rng,
            applied: 0,
            clock_epochs,
        }
    }

    /// Carries out the fault; returns the nodes its targets resolved to.
    pub fn apply(&mut self, fault: &Fault) -> Vec<NodeId> {
        let fault_index = self.applied;
        self.applied += 1;
        self.world
            .snapshot_leaders(LeaderMark::BeforeFault { fault_index });
        let nodes = self.carry_out(fault);
        tracing::info!(fault_index, ?fault, ?nodes, "fault");
        if fault.is_clock_fault() {
            // A sleeping replica planned its next wake-up by the old clock.
            for node in &nodes {
                self.world.admin(*node, AdminCommand::Wake);
            }
        }
        self.world
            .snapshot_leaders(LeaderMark::AfterFault { fault_index });
        nodes
    }

    /// Does what the fault says; returns the nodes it resolved to.
    fn carry_out(&mut self, fault: &Fault) -> Vec<NodeId> {
        match fault {
            Fault::Crash(target) => self.for_each(target, |n, node| {
                n.world.crash(node, DiskFate::KeepUnsynced);
            }),
            Fault::CrashLosingUnsynced(target) => {
                self.for_each(target, Nemesis::crash_losing_unsynced)
            }
            Fault::CrashTornTail(target) => self.for_each(target, Nemesis::crash_torn),
            Fault::Restart(target) => self.for_each(target, |n, node| n.world.restart(node)),
            Fault::Pause { target, length } => {
                self.for_each(target, |n, node| n.pause(node, length.as_us()))
            }
            Fault::Isolate(target) => self.for_each(target, |n, node| n.world.isolate(node)),
            Fault::Partition(sides) => {
                self.partition(sides);
                Vec::new()
            }
            Fault::OneWay { from, to } => {
                let sources = self.resolve(from);
                let targets = self.resolve(to);
                for a in &sources {
                    for b in &targets {
                        self.world.cut(*a, *b);
                    }
                }
                sources.into_iter().chain(targets).collect()
            }
            Fault::Bridge { group } => self.bridge(*group),
            Fault::MajoritiesRing { group } => self.majorities_ring(*group),
            Fault::DeposeLeader { group } => self.depose_leader(*group),
            Fault::Heal => {
                self.world.heal_links();
                Vec::new()
            }
            Fault::Latency { min, max } => {
                self.world.set_latency(min.as_us(), max.as_us());
                Vec::new()
            }
            Fault::Loss { ppm } => {
                self.world.set_loss(*ppm);
                Vec::new()
            }
            Fault::ClockOffset { target, offset_us } => self.for_each(target, |n, node| {
                n.world.set_clock(node, ClockChange::Offset(*offset_us));
            }),
            Fault::ClockJump { target, by_us } => self.for_each(target, |n, node| {
                n.world.set_clock(node, ClockChange::Jump(*by_us));
            }),
            Fault::ClockStrobe {
                target,
                delta,
                period,
                length,
            } => self.for_each(target, |n, node| {
                n.strobe(node, delta.as_us(), period.as_us(), length.as_us())
            }),
            Fault::ClockResync(target) => self.for_each(target, Nemesis::resync_clock),
            Fault::ClockDrift { target, ppm } => self.for_each(target, |n, node| {
                n.world.set_clock(node, ClockChange::Drift(i64::from(*ppm)));
            }),
            Fault::SlowDisk { target, fsync } => {
                self.for_each(target, |n, node| n.world.set_fsync(node, fsync.as_us()))
            }
            Fault::LinkLatency { from, to, min, max } => {
                let world = self.world.clone();
                self.for_each_link(from, to, |a, b| {
                    world.set_link_latency(a, b, min.as_us(), max.as_us())
                })
            }
            Fault::LinkLoss { from, to, ppm } => {
                let world = self.world.clone();
                self.for_each_link(from, to, |a, b| world.set_link_loss(a, b, *ppm))
            }
            Fault::Duplicate { ppm } => {
                self.world.set_duplicate_ppm(*ppm);
                Vec::new()
            }
            Fault::Damage { target, damage } => self.for_each(target, |n, node| {
                n.world.damage(node, *damage, &mut n.rng);
            }),
            Fault::TransferLeader { group, to } => {
                let Some((leader, _)) = self.world.leader_of(*group) else {
                    return Vec::new();
                };
                let targets = self.resolve(to);
                if let Some(to) = targets.first() {
                    self.world
                        .admin(leader, AdminCommand::TransferLeadership { to: *to });
                }
                targets
            }
        }
    }

    /// End of the fault phase: the network heals, clocks resync, disks speed up, paused and
    /// crashed nodes return.
    pub fn heal_all(&mut self) {
        self.world.reset_network();
        for n in 0..self.world.spec.replica_count() {
            let node = NodeId(n);
            self.resync_clock(node);
            self.world.admin(node, AdminCommand::Wake);
            self.world.set_fsync(node, self.world.spec.fsync.as_us());
            let (down, paused) = (self.world.is_down(node), self.world.is_paused(node));
            if paused {
                self.world.resume(node);
            }
            if down {
                self.world.restart(node);
            }
        }
        self.world.snapshot_leaders(LeaderMark::Healed);
    }

    fn for_each(
        &mut self,
        target: &Target,
        mut action: impl FnMut(&mut Nemesis, NodeId),
    ) -> Vec<NodeId> {
        let nodes = self.resolve(target);
        for node in &nodes {
            action(self, *node);
        }
        nodes
    }

    /// Every directed link from a `from` node to a `to` node, by replica address.
    fn for_each_link(
        &mut self,
        from: &Target,
        to: &Target,
        mut action: impl FnMut(NodeId, NodeId),
    ) -> Vec<NodeId> {
        let sources = self.resolve(from);
        let targets = self.resolve(to);
        for a in &sources {
            for b in targets.iter().filter(|b| *b != a) {
                action(*a, *b);
            }
        }
        sources.into_iter().chain(targets).collect()
    }

    fn resync_clock(&mut self, node: NodeId) {
        self.clock_epochs[node.0 as usize].fetch_add(1, Ordering::Relaxed);
        self.world.set_clock(node, ClockChange::Resync);
    }

    /// Jepsen's strobe: jump by +delta now, then every period the other way, until `length_us`
    /// has passed; the clock ends where it started. A resync of the node ends it early.
    fn strobe(&mut self, node: NodeId, delta_us: u64, period_us: u64, length_us: u64) {
        let epochs = self.clock_epochs.clone();
        let epoch = epochs[node.0 as usize].load(Ordering::Relaxed);
        let world = self.world.clone();
        let delta_us =
            i64::try_from(delta_us).expect("invariant: validated clock deltas are small");
        let jump = move |delta: i64| -> bool {
            if epochs[node.0 as usize].load(Ordering::Relaxed) != epoch {
                return false;
            }
            world.set_clock(node, ClockChange::Jump(delta));
            world.admin(node, AdminCommand::Wake);
            true
        };
        jump(delta_us);
        madsim::task::spawn(async move {
            let mut ahead = true;
            let mut elapsed_us = 0;
            while elapsed_us + period_us <= length_us {
                madsim::time::sleep(Duration::from_micros(period_us)).await;
                elapsed_us += period_us;
                if !jump(if ahead { -delta_us } else { delta_us }) {
                    return;
                }
                ahead = !ahead;
            }
            if ahead {
                jump(-delta_us);
            }
        });
    }

    /// A power loss: a random prefix of the unsynced writes survives (none to all of them).
    fn crash_losing_unsynced(&mut self, node: NodeId) {
        if self.world.is_down(node) {
            return;
        }
        let surviving_writes = self.rng.gen_range(0..=self.world.pending_writes(node));
        self.world
            .crash(node, DiskFate::LoseUnsynced { surviving_writes });
    }

    /// A power loss that tears the tail: at least one unsynced write survives, and the last
    /// entry the survivors appended is corrupted (`Disk::crash_torn`).
    fn crash_torn(&mut self, node: NodeId) {
        if self.world.is_down(node) {
            return;
        }
        let pending = self.world.pending_writes(node);
        let surviving_writes = if pending == 0 {
            0
        } else {
            self.rng.gen_range(1..=pending)
        };
        self.world
            .crash(node, DiskFate::TearTail { surviving_writes });
    }

    /// Freezes the node for `for_us`, then lets it resume (unless something resumed or
    /// crashed it first).
    fn pause(&mut self, node: NodeId, for_us: u64) {
        if !self.world.pause(node) {
            return;
        }
        let world = self.world.clone();
        madsim::task::spawn(async move {
            madsim::time::sleep(Duration::from_micros(for_us)).await;
            world.resume(node);
        });
    }

    fn cut_both_ways(&mut self, a: NodeId, b: NodeId) {
        self.world.cut(a, b);
        self.world.cut(b, a);
    }

    fn partition(&mut self, sides: &[Vec<NodeId>]) {
        for (i, side) in sides.iter().enumerate() {
            for other in &sides[i + 1..] {
                for a in side {
                    for b in other {
                        self.cut_both_ways(*a, *b);
                    }
                }
            }
        }
    }

    /// Jepsen's bridge: two halves of the group that share one node.
    fn bridge(&mut self, group: u32) -> Vec<NodeId> {
        let mut members = self.world.spec.members(group);
        members.shuffle(&mut self.rng);
        let middle = members.len() / 2;
        let (left, right) = (&members[..middle], &members[middle + 1..]);
        for a in left {
            for b in right {
                self.cut_both_ways(*a, *b);
            }
        }
        vec![members[middle]]
    }

    /// Jepsen's majorities ring: in a shuffled ring, each node keeps links only to the nodes
    /// within ring distance ⌈⌊n/2⌋/2⌉, so with 5 replicas each sees itself and its two
    /// neighbours, a majority, and no two nodes see the same one.
    fn majorities_ring(&mut self, group: u32) -> Vec<NodeId> {
        let mut ring = self.world.spec.members(group);
        ring.shuffle(&mut self.rng);
        let n = ring.len();
        let reach = (n / 2).div_ceil(2);
        for i in 0..n {
            for j in i + 1..n {
                let distance = (j - i).min(n - (j - i));
                if distance > reach {
                    self.cut_both_ways(ring[i], ring[j]);
                }
            }
        }
        ring
    }

    /// A deposed leader that clients still reach: the leader and up to a minority of the
    /// others (drawn) on one side, the rest on the other, and clients cut from the rest. With
    /// no leader at that moment, nothing happens. Returns the deposed side, leader first.
    fn depose_leader(&mut self, group: u32) -> Vec<NodeId> {
        let Some((leader, _)) = self.world.leader_of(group) else {
            return Vec::new();
        };
        let mut others: Vec<NodeId> = self
            .world
            .spec
            .members(group)
            .into_iter()
            .filter(|node| *node != leader)
            .collect();
        others.shuffle(&mut self.rng);
        let minority = (self.world.spec.replicas as usize - 1) / 2;
        let beside = self.rng.gen_range(0..minority);
        let (with_leader, rest) = others.split_at(beside);
        let deposed: Vec<NodeId> = std::iter::once(leader)
            .chain(with_leader.iter().copied())
            .collect();
        for a in &deposed {
            for b in rest {
                self.cut_both_ways(*a, *b);
            }
        }
        for node in rest {
            self.world.cut_clients(*node);
        }
        deposed
    }

    fn resolve(&mut self, target: &Target) -> Vec<NodeId> {
        let spec = self.world.spec.clone();
        match target {
            Target::Node(node) => vec![*node],
            Target::Leader { group } => self
                .world
                .leader_of(*group)
                .map(|(leader, _)| vec![leader])
                .unwrap_or_default(),
            Target::Follower { group } => {
                let leader = self.world.leader_of(*group).map(|(leader, _)| leader);
                let followers: Vec<NodeId> = spec
                    .members(*group)
                    .into_iter()
                    .filter(|node| Some(*node) != leader && !self.world.is_down(*node))
                    .collect();
                followers
                    .choose(&mut self.rng)
                    .copied()
                    .into_iter()
                    .collect()
            }
            Target::Minority { group } | Target::Majority { group } => {
                let size = match target {
                    Target::Minority { .. } => (spec.replicas - 1) / 2,
                    _ => spec.replicas / 2 + 1,
                } as usize;
                let leader = self.world.leader_of(*group).map(|(leader, _)| leader);
                let mut others: Vec<NodeId> = spec
                    .members(*group)
                    .into_iter()
                    .filter(|node| Some(*node) != leader)
                    .collect();
                others.shuffle(&mut self.rng);
                leader.into_iter().chain(others).take(size).collect()
            }
            Target::Group { group } => spec.members(*group),
            Target::Random => {
                let node = self.rng.gen_range(0..spec.replica_count());
                vec![NodeId(node)]
            }
            Target::AllCrashed => (0..spec.replica_count())
                .map(NodeId)
                .filter(|node| self.world.is_down(*node))
                .collect(),
        }
    }
}
