//! Faults: what each one does to the world, with targets resolved at the moment it fires.
//!
//! A process `Crash` keeps the writes the node had handed to the OS (they are in the page
//! cache); `CrashLosingUnsynced` is a power loss: unsynced writes are gone, except a random
//! prefix that may survive as a torn tail.
//!
//! `CrashTornTail` goes one further: at least one unsynced append survives and its last entry
//! is corrupted, so recovery must find it with the chained checksum and cut it off.
//!
//! Network faults madsim has (clogs, whole-network latency and loss) go through `NetSim`;
//! those it lacks (per-link latency and loss, duplication) through our send path
//! ([`network`]). Clock faults change the node's [`crate::world::clock::NodeClock`]; the adapter
//! feeds the core a clamped, monotonic reading of it. `Random` swarms are expanded by
//! [`swarm`] before the run.
//!
//! Failover is measured from every fault after which a group's leader can no longer exchange
//! messages with a majority of its group (down, paused, isolated, partitioned, one-way cut),
//! whatever the fault's kind.

pub mod network;
pub mod swarm;

use crate::world::disk::Disk;
use crate::scenario::{Fault, Target};
use crate::world::observe::ObservedKind;
use crate::world::wire::replica_addr;
use crate::world::{mix_seed, World};
use broker_core::raft::Role;
use broker_core::{NodeId, Term};
use madsim::net::NetSim;
use madsim::runtime::{Handle, NodeHandle};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A fault that took a group's leader out of its majority: failover is measured from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverFault {
    pub fault_index: usize,
    pub group: u32,
    pub t0_us: u64,
    pub old_leader: NodeId,
    pub old_term: Term,
    /// When the old leader, still leading its term, could again exchange messages with a
    /// majority before any replica replaced it: the cut healed first (µs). Stages after this
    /// are not this fault's failover, and such a fault is reported apart, not as a failover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healed_us: Option<u64>,
}

/// An instruction to a replica from outside the protocol (an operator's admin command).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminCommand {
    TransferLeadership {
        to: NodeId,
    },
    /// Step now: the node's clock changed, so a timer may be due earlier than it planned for.
    Wake,
}

pub struct Nemesis {
    world: Arc<World>,
    handle: Handle,
    nodes: Vec<NodeHandle>,
    rng: ChaCha8Rng,
    isolated: BTreeSet<u32>,
    /// Directed links (from, to) that drop every message.
    clogged_links: BTreeSet<(u32, u32)>,
    failovers: Vec<FailoverFault>,
    applied: usize,
    /// Per replica: bumped by a clock resync, which ends any strobe running on that clock.
    clock_epochs: Arc<Vec<AtomicU64>>,
}

impl Nemesis {
    pub fn new(world: Arc<World>, handle: Handle, nodes: Vec<NodeHandle>) -> Nemesis {
        // Its own stream, so workload changes do not move the fault schedule.
        let rng = ChaCha8Rng::seed_from_u64(mix_seed(world.seed, 0x4E45_4D45_5349_5300, 0));
        let clock_epochs = Arc::new(
            (0..world.spec.replica_count())
                .map(|_| AtomicU64::new(0))
                .collect(),
        );
        Nemesis {
            world,
            handle,
            nodes,
            rng,
            isolated: BTreeSet::new(),
            clogged_links: BTreeSet::new(),
            failovers: Vec::new(),
            applied: 0,
            clock_epochs,
        }
    }

    pub fn into_failover_faults(self) -> Vec<FailoverFault> {
        self.failovers
    }

    /// Carries out the fault; returns the nodes its targets resolved to.
    pub fn apply(&mut self, fault: &Fault) -> Vec<NodeId> {
        let index = self.applied;
        self.applied += 1;
        let effective_before: Vec<Option<(NodeId, Term)>> = (0..self.world.spec.groups)
            .map(|group| self.effective_leader(group))
            .collect();
        let nodes = self.carry_out(fault);
        tracing::info!(fault_index = index, ?fault, ?nodes, "fault");
        if is_clock_fault(fault) {
            // A sleeping replica planned its next wake-up by the old clock.
            for node in &nodes {
                self.world.admin(*node, AdminCommand::Wake);
            }
        }
        for (group, before) in effective_before.into_iter().enumerate() {
            let Some((leader, term)) = before else {
                continue;
            };
            if !self.leader_reaches_majority(leader) {
                self.failovers.push(FailoverFault {
                    fault_index: index,
                    group: group as u32,
                    t0_us: self.world.now_us(),
                    old_leader: leader,
                    old_term: term,
                    healed_us: None,
                });
            }
        }
        self.close_healed_failovers();
        nodes
    }

    /// Marks the open failover faults whose old leader leads its group again with a majority
    /// (no replica replaced it: the cut healed before any failover).
    /// Master–slave groups never replace their master: its outage always counts as one.
    fn close_healed_failovers(&mut self) {
        if self.world.spec.is_master_slave() {
            return;
        }
        let now_us = self.world.now_us();
        let open: Vec<usize> = (0..self.failovers.len())
            .filter(|&index| self.failovers[index].healed_us.is_none())
            .filter(|&index| self.failovers[index].t0_us < now_us)
            .collect();
        for index in open {
            let fault = &self.failovers[index];
            let still_leads =
                self.current_leader(fault.group) == Some((fault.old_leader, fault.old_term));
            if still_leads && self.leader_reaches_majority(fault.old_leader) {
                self.failovers[index].healed_us = Some(now_us);
            }
        }
    }

    /// Does what the fault says; returns the nodes it resolved to.
    fn carry_out(&mut self, fault: &Fault) -> Vec<NodeId> {
        match fault {
            Fault::Crash(target) => self.for_each(target, |n, node| n.crash(node, false)),
            Fault::CrashLosingUnsynced(target) => {
                self.for_each(target, |n, node| n.crash(node, true))
            }
            Fault::CrashTornTail(target) => self.for_each(target, Nemesis::crash_torn),
            Fault::Restart(target) => self.for_each(target, Nemesis::restart),
            Fault::Pause { target, length } => {
                let for_us = length.as_ms() * 1_000;
                self.for_each(target, |n, node| n.pause(node, for_us))
            }
            Fault::Isolate(target) => self.for_each(target, |n, node| {
                n.net().clog_node(n.nodes[node.0 as usize].id());
                n.isolated.insert(node.0);
            }),
            Fault::Partition(sides) => {
                self.partition(sides);
                Vec::new()
            }
            Fault::OneWay { from, to } => {
                let sources = self.resolve(from);
                let targets = self.resolve(to);
                for a in &sources {
                    for b in &targets {
                        self.clog_link(a.0, b.0);
                    }
                }
                sources.into_iter().chain(targets).collect()
            }
            Fault::Bridge { group } => self.bridge(*group),
            Fault::MajoritiesRing { group } => self.majorities_ring(*group),
            Fault::Heal => {
                self.heal_network();
                Vec::new()
            }
            Fault::Latency { min, max } => {
                let (min, max) = (min.as_duration(), max.as_duration());
                self.net().update_config(|config| {
                    config.send_latency = min..max.max(min + Duration::from_micros(1));
                });
                Vec::new()
            }
            Fault::Loss { ppm } => {
                let rate = f64::from(*ppm) / 1_000_000.0;
                self.net()
                    .update_config(|config| config.packet_loss_rate = rate);
                Vec::new()
            }
            Fault::ClockOffset { target, offset } => {
                let offset_us = offset.as_ms() * 1_000;
                self.for_each(target, |n, node| {
                    let mut shared = n.world.lock();
                    let now = shared.now_us();
                    shared.clocks[node.0 as usize].set_offset(now, offset_us);
                })
            }
            Fault::ClockJump { target, by } => {
                let by_us = by.as_ms() * 1_000;
                self.for_each(target, |n, node| {
                    let mut shared = n.world.lock();
                    let now = shared.now_us();
                    shared.clocks[node.0 as usize].jump(now, by_us);
                })
            }
            Fault::ClockStrobe {
                target,
                delta,
                period,
                length,
            } => {
                let (delta_us, period_us) = (delta.as_ms() * 1_000, period.as_ms() * 1_000);
                let length_us = length.as_ms() * 1_000;
                self.for_each(target, |n, node| {
                    n.strobe(node, delta_us, period_us, length_us)
                })
            }
            Fault::ClockResync(target) => self.for_each(target, Nemesis::resync_clock),
            Fault::ClockDrift { target, ppm } => self.for_each(target, |n, node| {
                let mut shared = n.world.lock();
                let now = shared.now_us();
                shared.clocks[node.0 as usize].set_drift(now, i64::from(*ppm));
            }),
            Fault::SlowDisk { target, fsync } => {
                let fsync_us = fsync.as_ms() * 1_000;
                self.for_each(target, |n, node| {
                    n.world.lock().disks[node.0 as usize].fsync_latency_us = fsync_us;
                })
            }
            Fault::LinkLatency { from, to, min, max } => {
                let (min_us, max_us) = (min.as_ms() * 1_000, max.as_ms() * 1_000);
                self.for_each_link(from, to, |a, b| {
                    network::set_link_latency(a, b, min_us, max_us)
                })
            }
            Fault::LinkLoss { from, to, ppm } => {
                self.for_each_link(from, to, |a, b| network::set_link_loss(a, b, *ppm))
            }
            Fault::Duplicate { ppm } => {
                network::set_duplicate_ppm(*ppm);
                Vec::new()
            }
            Fault::Random { .. } => {
                unreachable!("invariant: swarm entries are expanded by nemesis::swarm::Timeline")
            }
            Fault::TransferLeader { group, to } => {
                let Some((leader, _)) = self.current_leader(*group) else {
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
        self.heal_network();
        network::reset();
        let latency = self.world.spec.latency_us_min..self.world.spec.latency_us_max;
        let loss = f64::from(self.world.spec.loss_ppm) / 1_000_000.0;
        self.net().update_config(|config| {
            config.send_latency = Duration::from_micros(latency.start)
                ..Duration::from_micros(latency.end.max(latency.start + 1));
            config.packet_loss_rate = loss;
        });
        for n in 0..self.world.spec.replica_count() {
            let node = NodeId(n);
            self.resync_clock(node);
            self.world.admin(node, AdminCommand::Wake);
            let (down, paused) = {
                let mut shared = self.world.lock();
                shared.disks[n as usize].fsync_latency_us = self.world.spec.fsync_us;
                (shared.down[n as usize], shared.paused[n as usize])
            };
            if paused {
                self.resume(node);
            }
            if down {
                self.restart(node);
            }
        }
        self.close_healed_failovers();
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
        mut action: impl FnMut(std::net::IpAddr, std::net::IpAddr),
    ) -> Vec<NodeId> {
        let sources = self.resolve(from);
        let targets = self.resolve(to);
        for a in &sources {
            for b in targets.iter().filter(|b| *b != a) {
                action(replica_addr(*a).ip(), replica_addr(*b).ip());
            }
        }
        sources.into_iter().chain(targets).collect()
    }

    fn resync_clock(&mut self, node: NodeId) {
        self.clock_epochs[node.0 as usize].fetch_add(1, Ordering::Relaxed);
        let mut shared = self.world.lock();
        let now = shared.now_us();
        shared.clocks[node.0 as usize].resync(now);
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
            {
                let mut shared = world.lock();
                let now = shared.now_us();
                shared.clocks[node.0 as usize].jump(now, delta);
            }
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

    fn net(&self) -> Arc<NetSim> {
        madsim::plugin::simulator::<NetSim>()
    }

    fn crash(&mut self, node: NodeId, lose_unsynced: bool) {
        self.kill_with(node, |disk, rng| {
            let surviving = if lose_unsynced {
                rng.gen_range(0..=disk.pending_writes())
            } else {
                disk.pending_writes()
            };
            disk.crash(surviving);
        });
    }

    /// A power loss that tears the tail: at least one unsynced write survives, and the last
    /// entry the survivors appended is corrupted (`Disk::crash_torn`).
    fn crash_torn(&mut self, node: NodeId) {
        self.kill_with(node, |disk, rng| {
            let pending = disk.pending_writes();
            let surviving = if pending == 0 {
                0
            } else {
                rng.gen_range(1..=pending)
            };
            let corrupted = disk.crash_torn(surviving);
            tracing::info!(%node, pending, surviving, ?corrupted, "torn tail");
        });
    }

    /// Kills a running replica, lets `disk_fate` decide what its disk keeps, and marks it down.
    fn kill_with(&mut self, node: NodeId, disk_fate: impl FnOnce(&mut Disk, &mut ChaCha8Rng)) {
        let mut shared = self.world.lock();
        if shared.down[node.0 as usize] {
            return;
        }
        self.handle.kill(self.nodes[node.0 as usize].id());
        let now = shared.now_us();
        disk_fate(&mut shared.disks[node.0 as usize], &mut self.rng);
        shared.down[node.0 as usize] = true;
        shared.paused[node.0 as usize] = false;
        shared.inboxes[node.0 as usize] = None;
        shared.observer.on_down(now, node);
    }

    fn restart(&mut self, node: NodeId) {
        {
            let mut shared = self.world.lock();
            if !shared.down[node.0 as usize] {
                return;
            }
            shared.down[node.0 as usize] = false;
        }
        self.handle.restart(self.nodes[node.0 as usize].id());
    }

    fn pause(&mut self, node: NodeId, for_us: u64) {
        {
            let mut shared = self.world.lock();
            if shared.down[node.0 as usize] || shared.paused[node.0 as usize] {
                return;
            }
            shared.paused[node.0 as usize] = true;
            let now = shared.now_us();
            shared.observer.record(now, node, ObservedKind::Paused);
        }
        self.handle.pause(self.nodes[node.0 as usize].id());
        let world = self.world.clone();
        let handle = self.handle.clone();
        let id = self.nodes[node.0 as usize].id();
        madsim::task::spawn(async move {
            madsim::time::sleep(Duration::from_micros(for_us)).await;
            resume_node(&world, &handle, id, node);
        });
    }

    fn resume(&mut self, node: NodeId) {
        let id = self.nodes[node.0 as usize].id();
        resume_node(&self.world, &self.handle, id, node);
    }

    fn cut_both_ways(&mut self, a: u32, b: u32) {
        self.clog_link(a, b);
        self.clog_link(b, a);
    }

    fn partition(&mut self, sides: &[Vec<u32>]) {
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
                self.cut_both_ways(a.0, b.0);
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
                    self.cut_both_ways(ring[i].0, ring[j].0);
                }
            }
        }
        ring
    }

    fn clog_link(&mut self, a: u32, b: u32) {
        if a == b || !self.clogged_links.insert((a, b)) {
            return;
        }
        self.net()
            .clog_link(self.nodes[a as usize].id(), self.nodes[b as usize].id());
    }

    fn heal_network(&mut self) {
        network::clear_links();
        let net = self.net();
        for n in std::mem::take(&mut self.isolated) {
            net.unclog_node(self.nodes[n as usize].id());
        }
        for (a, b) in std::mem::take(&mut self.clogged_links) {
            net.unclog_link(self.nodes[a as usize].id(), self.nodes[b as usize].id());
        }
    }

    fn link_works(&self, a: u32, b: u32) -> bool {
        a == b
            || (!self.isolated.contains(&a)
                && !self.isolated.contains(&b)
                && !self.clogged_links.contains(&(a, b)))
    }

    /// The up replica of `group` that believes it leads, in the highest term.
    fn current_leader(&self, group: u32) -> Option<(NodeId, Term)> {
        let shared = self.world.lock();
        self.world
            .spec
            .members(group)
            .into_iter()
            .filter(|node| !shared.down[node.0 as usize])
            .filter_map(|node| {
                shared.observer.views[node.0 as usize]
                    .status
                    .as_ref()
                    .filter(|s| s.role == Role::Leader)
                    .map(|s| (node, s.term))
            })
            .max_by_key(|(_, term)| *term)
    }

    /// The current leader, if it can lead: up, not paused, and in touch with a majority.
    fn effective_leader(&self, group: u32) -> Option<(NodeId, Term)> {
        self.current_leader(group)
            .filter(|(leader, _)| self.leader_reaches_majority(*leader))
    }

    fn leader_reaches_majority(&self, leader: NodeId) -> bool {
        {
            let shared = self.world.lock();
            if shared.down[leader.0 as usize] || shared.paused[leader.0 as usize] {
                return false;
            }
        }
        let members = self.world.spec.members(self.world.spec.group_of(leader));
        let reachable = members
            .iter()
            .filter(|m| self.link_works(leader.0, m.0) && self.link_works(m.0, leader.0))
            .count();
        reachable * 2 > members.len()
    }

    fn resolve(&mut self, target: &Target) -> Vec<NodeId> {
        let spec = self.world.spec.clone();
        match target {
            Target::Node(n) => vec![NodeId(*n)],
            Target::Leader { group } => self
                .current_leader(*group)
                .map(|(leader, _)| vec![leader])
                .unwrap_or_default(),
            Target::Follower { group } => {
                let leader = self.current_leader(*group).map(|(leader, _)| leader);
                let followers: Vec<NodeId> = {
                    let shared = self.world.lock();
                    spec.members(*group)
                        .into_iter()
                        .filter(|node| Some(*node) != leader && !shared.down[node.0 as usize])
                        .collect()
                };
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
                let leader = self.current_leader(*group).map(|(leader, _)| leader);
                let mut others: Vec<NodeId> = spec
                    .members(*group)
                    .into_iter()
                    .filter(|node| Some(*node) != leader)
                    .collect();
                others.shuffle(&mut self.rng);
                leader.into_iter().chain(others).take(size).collect()
            }
            Target::Random => {
                let node = self.rng.gen_range(0..spec.replica_count());
                vec![NodeId(node)]
            }
            Target::AllCrashed => {
                let shared = self.world.lock();
                (0..spec.replica_count())
                    .filter(|n| shared.down[*n as usize])
                    .map(NodeId)
                    .collect()
            }
        }
    }
}

fn is_clock_fault(fault: &Fault) -> bool {
    matches!(
        fault,
        Fault::ClockOffset { .. }
            | Fault::ClockDrift { .. }
            | Fault::ClockJump { .. }
            | Fault::ClockStrobe { .. }
            | Fault::ClockResync(_)
    )
}

fn resume_node(world: &World, handle: &Handle, id: madsim::task::NodeId, node: NodeId) {
    let mut shared = world.lock();
    if !shared.paused[node.0 as usize] {
        return;
    }
    shared.paused[node.0 as usize] = false;
    handle.resume(id);
    let now = shared.now_us();
    shared.observer.record(now, node, ObservedKind::Resumed);
}
