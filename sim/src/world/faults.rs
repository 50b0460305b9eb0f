//! The world's fault transitions and the read-only queries the nemesis needs. Each transition
//! keeps its own invariants: a crashed node is down, not paused, has no inbox and the observer
//! saw it go; a paused node is up; a cut link is in the world's record of connectivity, which
//! the send path consults (`network`).

use super::damage::{Damage, Damaged};
use super::network::{BaseNetwork, NetworkState};
use super::observe::{LeaderMark, LeaderSnapshot, ObservedKind};
use super::wire::replica_addr;
use super::World;
use broker_core::raft::Role;
use broker_core::{NodeId, Term};

/// What a crashed node's disk keeps of its unsynced writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskFate {
    /// A process crash: every write handed to the OS is in the page cache and survives.
    KeepUnsynced,
    /// A power loss: unsynced writes are gone except the first `surviving_writes`.
    LoseUnsynced { surviving_writes: usize },
    /// A power loss that tears the tail: the first `surviving_writes` unsynced writes survive
    /// and the last entry they appended is corrupted (`Disk::crash_torn`).
    TearTail { surviving_writes: usize },
}

/// A change to one node's local clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockChange {
    /// From now on the clock reads true time plus this (µs).
    Offset(i64),
    /// A step from where the clock reads now (µs).
    Jump(i64),
    /// From now on the clock runs this many ppm fast (negative: slow).
    Drift(i64),
    /// Back to true time.
    Resync,
}

impl World {
    pub fn is_down(&self, node: NodeId) -> bool {
        self.lock().down[node.0 as usize]
    }

    pub fn is_paused(&self, node: NodeId) -> bool {
        self.lock().paused[node.0 as usize]
    }

    /// Writes the node handed to its disk and has not synced yet.
    pub fn pending_writes(&self, node: NodeId) -> usize {
        self.lock().disks[node.0 as usize].pending_writes()
    }

    /// Kills a running replica, leaves its disk as `fate` says, and marks it down. A node
    /// already down stays as it is (returns false).
    pub fn crash(&self, node: NodeId, fate: DiskFate) -> bool {
        let now_us = self.now_us();
        let mut shared = self.lock();
        let index = node.0 as usize;
        if shared.down[index] {
            return false;
        }
        self.handle.kill(self.replica_node(node));
        let disk = &mut shared.disks[index];
        match fate {
            DiskFate::KeepUnsynced => {
                let pending = disk.pending_writes();
                disk.crash(pending);
            }
            DiskFate::LoseUnsynced { surviving_writes } => disk.crash(surviving_writes),
            DiskFate::TearTail { surviving_writes } => {
                let pending = disk.pending_writes();
                let corrupted = disk.crash_torn(surviving_writes);
                tracing::info!(%node, pending, surviving = surviving_writes, ?corrupted, "torn tail");
            }
        }
        shared.down[index] = true;
        shared.paused[index] = false;
        shared.inboxes[index] = None;
        shared.observer.on_down(now_us, node);
        drop(shared);
        self.post().unbind(replica_addr(node));
        true
    }

    /// issue 15: kills the replica if it runs (as a process crash: the page cache survives),
    /// then damages its durable disk; it meets the damage when restarted.
    pub fn damage(&self, node: NodeId, damage: Damage, rng: &mut impl rand::Rng) -> Damaged {
        self.crash(node, DiskFate::KeepUnsynced);
        let now_us = self.now_us();
        let mut shared = self.lock();
        let done = super::damage::damage(&mut shared.disks[node.0 as usize], damage, rng);
        tracing::info!(%node, ?damage, ?done, "disk damaged");
        shared.damages.push((now_us, node, done.clone()));
        done
    }

    /// Brings a crashed replica back (it recovers from its disk); a running one is left alone.
    pub fn restart(&self, node: NodeId) {
        {
            let mut shared = self.lock();
            if !shared.down[node.0 as usize] {
                return;
            }
            shared.down[node.0 as usize] = false;
        }
        self.handle.restart(self.replica_node(node));
    }

    /// Freezes a running replica; returns false (and does nothing) when it is down or paused.
    pub fn pause(&self, node: NodeId) -> bool {
        let now_us = self.now_us();
        {
            let mut shared = self.lock();
            if shared.down[node.0 as usize] || shared.paused[node.0 as usize] {
                return false;
            }
            shared.paused[node.0 as usize] = true;
            shared.observer.record(now_us, node, ObservedKind::Paused);
        }
        self.handle.pause(self.replica_node(node));
        true
    }

    /// Lets a paused replica go on as if nothing happened (no-op when it is not paused).
    pub fn resume(&self, node: NodeId) {
        let now_us = self.now_us();
        let mut shared = self.lock();
        if !shared.paused[node.0 as usize] {
            return;
        }
        shared.paused[node.0 as usize] = false;
        self.handle.resume(self.replica_node(node));
        shared.observer.record(now_us, node, ObservedKind::Resumed);
    }

    pub fn set_clock(&self, node: NodeId, change: ClockChange) {
        let now_us = self.now_us();
        let clock = &mut self.lock().clocks[node.0 as usize];
        match change {
            ClockChange::Offset(offset_us) => clock.set_offset(now_us, offset_us),
            ClockChange::Jump(delta_us) => clock.jump(now_us, delta_us),
            ClockChange::Drift(ppm) => clock.set_drift(now_us, ppm),
            ClockChange::Resync => clock.resync(now_us),
        }
    }

    /// The node's fsyncs take this long from now on.
    pub fn set_fsync(&self, node: NodeId, fsync_us: u64) {
        self.lock().disks[node.0 as usize].fsync_latency_us = fsync_us;
    }

    /// Cuts every link to and from the replica until `heal_links`.
    pub fn isolate(&self, node: NodeId) {
        self.lock().network.isolated.insert(node.0);
    }

    /// Drops every message from replica `from` to replica `to` until `heal_links`.
    pub fn cut(&self, from: NodeId, to: NodeId) {
        if from != to {
            self.lock().network.clogged_links.insert((from.0, to.0));
        }
    }

    /// Drops every message between the replica and any client (name servers still reach
    /// it) until `heal_links`.
    pub fn cut_clients(&self, node: NodeId) {
        self.lock().network.cut_from_clients.insert(node.0);
    }

    /// Undoes every isolation and cut, and clears every per-link latency and loss.
    pub fn heal_links(&self) {
        let network = &mut self.lock().network;
        network.link_faults.clear_links();
        network.isolated.clear();
        network.cut_from_clients.clear();
        network.clogged_links.clear();
    }

    /// Adds a delay drawn from `min_us..=max_us` to every message from `from` to `to`.
    pub fn set_link_latency(&self, from: NodeId, to: NodeId, min_us: u64, max_us: u64) {
        let (a, b) = (replica_addr(from).ip(), replica_addr(to).ip());
        self.lock()
            .network
            .link_faults
            .set_link_latency(a, b, min_us, max_us);
    }

    /// Drops this share of the messages from `from` to `to`.
    pub fn set_link_loss(&self, from: NodeId, to: NodeId, ppm: u32) {
        let (a, b) = (replica_addr(from).ip(), replica_addr(to).ip());
        self.lock().network.link_faults.set_link_loss(a, b, ppm);
    }

    /// Delivers this share of replica-to-replica messages twice.
    pub fn set_duplicate_ppm(&self, ppm: u32) {
        self.lock().network.link_faults.set_duplicate_ppm(ppm);
    }

    /// The whole network's one-way delay range from now on.
    pub fn set_latency(&self, min_us: u64, max_us: u64) {
        let base = &mut self.lock().network.base;
        base.latency_us_min = min_us;
        base.latency_us_max = max_us.max(min_us);
    }

    /// The whole network's message loss from now on.
    pub fn set_loss(&self, ppm: u32) {
        self.lock().network.base.loss_ppm = ppm;
    }

    /// The network as the world started: no cut, no link fault, no duplication, the spec's
    /// latency and loss.
    pub fn reset_network(&self) {
        self.lock().network = NetworkState::new(BaseNetwork::of(&self.spec));
    }

    /// The up replica of `group` that believes it leads, in the highest term.
    pub fn leader_of(&self, group: u32) -> Option<(NodeId, Term)> {
        let shared = self.lock();
        self.spec
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

    /// The replica is up, not paused, and exchanges messages both ways with a majority of its
    /// group (itself included).
    pub fn reaches_majority(&self, node: NodeId) -> bool {
        let shared = self.lock();
        if shared.down[node.0 as usize] || shared.paused[node.0 as usize] {
            return false;
        }
        let members = self.spec.members(self.spec.group_of(node));
        let network = &shared.network;
        let reachable = members
            .iter()
            .filter(|m| network.link_works(node.0, m.0) && network.link_works(m.0, node.0))
            .count();
        reachable * 2 > members.len()
    }

    /// Per replica of `group`: its last start refused its disk (issue 15: a recovery error);
    /// it stays down, out of service, and the settle check leaves it out.
    pub fn refused_members(&self, group: u32) -> Vec<bool> {
        let shared = self.lock();
        self.spec
            .members(group)
            .iter()
            .map(|node| shared.refused[node.0 as usize])
            .collect()
    }

    /// What each replica of `group` last reported (None while down or before its first step).
    pub fn member_statuses(&self, group: u32) -> Vec<Option<broker_core::raft::Status>> {
        let shared = self.lock();
        self.spec
            .members(group)
            .iter()
            .map(|node| shared.observer.views[node.0 as usize].status.clone())
            .collect()
    }

    /// Records who leads each group and which replicas reach a majority now, marked `mark`
    /// (the metrics find failover faults in these snapshots).
    pub fn snapshot_leaders(&self, mark: LeaderMark) {
        let snapshot = LeaderSnapshot {
            at_us: self.now_us(),
            mark,
            leaders: (0..self.spec.groups).map(|g| self.leader_of(g)).collect(),
            reaches_majority: (0..self.spec.replica_count())
                .map(|n| self.reaches_majority(NodeId(n)))
                .collect(),
        };
        self.lock().leader_snapshots.push(snapshot);
    }
}
