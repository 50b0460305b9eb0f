//! An in-process cluster for Raft tests (no madsim): a seeded scheduler that delivers messages
//! with random delays (so they reorder), drops and duplicates them, cuts links, completes fsyncs
//! after a delay, and crashes and restarts nodes (losing writes that were not synced). After
//! every event the `Checker` verifies the cross-node Raft properties, and the harness checks
//! that every committed entry is durable on a majority of disks. Safety violations that nodes
//! with DLedger fidelity record (`Node::take_safety_violations`) are collected in
//! `node_violations`.
#![allow(dead_code)]

mod checker;
mod disk;

pub use checker::Checker;
pub use disk::Disk;

use broker_core::proto::Message;
use broker_core::raft::{
    Config, Effect, Fidelity, Input, Node, ProposeOutcome, ReadOutcome, Role, SafetyViolation,
    Status,
};
use broker_core::types::{LogIndex, NodeId, ProposalId, ReadId, SyncId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};

/// Timing small enough for many elections per simulated second: heartbeat 100 ms, election
/// timeout base 300 ms, vote interval 50..=150 ms.
pub fn fast_config() -> Config {
    Config {
        heartbeat_interval_ms: 100,
        max_heartbeat_leak: 3,
        vote_interval_ms_min: 50,
        vote_interval_ms_max: 150,
        max_wait_ack_ms: 300,
        append_resend_ms: 100,
        pre_vote: true,
        append_batch_entries_max: 8,
        inflight_entries_max: 32,
        pending_proposals_max: 64,
        transfer_timeout_ms: 500,
        pending_reads_max: 64,
        fidelity: Fidelity::RAFT,
        disk_marks: false,
        unsafe_vote_after_disk_loss: false,
    }
}

/// `fast_config` with every DLedger switch on (and pre-vote off, which DLedger lacks).
pub fn fast_dledger_config() -> Config {
    Config {
        pre_vote: false,
        fidelity: Fidelity::DLEDGER,
        ..fast_config()
    }
}

/// Network behaviour; probabilities in parts per million.
#[derive(Debug, Clone)]
pub struct Network {
    pub drop_ppm: u32,
    pub duplicate_ppm: u32,
    pub delay_ms_min: u64,
    pub delay_ms_max: u64,
    /// One fsync takes 1..=this many ms (fsyncs of one disk run one after another).
    pub fsync_ms_max: u64,
    /// Receive cost (madsim-like): each node takes in messages on this many workers, each
    /// busy `receive_ms` per message; a message waits for a free worker. 0: no cost.
    pub receive_workers: usize,
    pub receive_ms: u64,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            drop_ppm: 0,
            duplicate_ppm: 0,
            delay_ms_min: 1,
            delay_ms_max: 5,
            fsync_ms_max: 3,
            receive_workers: 0,
            receive_ms: 0,
        }
    }
}

#[derive(Debug)]
enum Event {
    Deliver {
        from: NodeId,
        to: NodeId,
        msg: Message,
    },
    SyncDone {
        node: NodeId,
        incarnation: u64,
        sync_id: SyncId,
    },
    Tick {
        node: NodeId,
        incarnation: u64,
    },
}

struct Replica {
    node: Option<Node>,
    disk: Disk,
    incarnation: u64,
    /// Local clock = global time + this offset (per node, constant).
    clock_offset_ms: u64,
    /// Global time of the one Tick that is current for this replica.
    tick_at_ms: Option<u64>,
    /// Global time when the disk finishes its queued fsyncs (they run one after another).
    fsync_free_at_ms: u64,
    /// Global time at which each receive worker is free again (see `Network::receive_workers`).
    receive_free_at_ms: Vec<u64>,
    /// Last applied index in this incarnation (applies must be consecutive).
    applied: LogIndex,
    was_leader_in: Option<broker_core::types::Term>,
}

#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub events: u64,
    pub steps: u64,
    pub crashes: u64,
    pub messages_sent: u64,
    pub messages_dropped: u64,
    /// Entries carried by AppendRequests (resends included).
    pub append_entries_sent: u64,
    /// AppendResponses with `success: false`.
    pub append_rejections: u64,
}

pub struct Cluster {
    pub config: Config,
    pub ids: Vec<NodeId>,
    replicas: BTreeMap<NodeId, Replica>,
    rng: ChaCha8Rng,
    seed: u64,
    now_ms: u64,
    queue: BTreeMap<(u64, u64), Event>,
    sequence: u64,
    pub network: Network,
    /// Directed links that drop everything (`(from, to)`).
    blocked: BTreeSet<(NodeId, NodeId)>,
    /// Nodes whose AppendRequests are dropped (they can still vote and campaign).
    appends_dropped_from: BTreeSet<NodeId>,
    pub checker: Checker,
    next_proposal: u64,
    /// Every reply: (global time, proposal, outcome).
    pub replies: Vec<(u64, ProposalId, ProposeOutcome)>,
    /// Every read answer: (global time, node, read, outcome).
    pub read_replies: Vec<(u64, NodeId, ReadId, ReadOutcome)>,
    next_read: u64,
    /// Safety violations recorded by nodes (DLedger fidelity): (global time, node, violation).
    pub node_violations: Vec<(u64, NodeId, SafetyViolation)>,
    proposed_at: BTreeMap<ProposalId, u64>,
    pub stats: Stats,
}

impl Cluster {
    pub fn new(seed: u64, size: u32, config: Config) -> Cluster {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let ids: Vec<NodeId> = (1..=size).map(NodeId).collect();
        let mut replicas = BTreeMap::new();
        for id in &ids {
            let replica = Replica {
                node: None,
                disk: Disk::default(),
                incarnation: 0,
                clock_offset_ms: rng.gen_range(0..1000),
                tick_at_ms: None,
                fsync_free_at_ms: 0,
                receive_free_at_ms: Vec::new(),
                applied: LogIndex(0),
                was_leader_in: None,
            };
            replicas.insert(*id, replica);
        }
        let mut cluster = Cluster {
            config,
            ids: ids.clone(),
            replicas,
            rng,
            seed,
            now_ms: 0,
            queue: BTreeMap::new(),
            sequence: 0,
            network: Network::default(),
            blocked: BTreeSet::new(),
            appends_dropped_from: BTreeSet::new(),
            checker: Checker::default(),
            next_proposal: 1,
            replies: Vec::new(),
            read_replies: Vec::new(),
            next_read: 1,
            node_violations: Vec::new(),
            proposed_at: BTreeMap::new(),
            stats: Stats::default(),
        };
        for id in ids {
            cluster.start(id);
        }
        cluster
    }

    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.replicas[&id].node.as_ref()
    }

    pub fn disk(&self, id: NodeId) -> &Disk {
        &self.replicas[&id].disk
    }

    pub fn is_up(&self, id: NodeId) -> bool {
        self.replicas[&id].node.is_some()
    }

    pub fn statuses(&self) -> Vec<Status> {
        self.replicas
            .values()
            .filter_map(|replica| replica.node.as_ref().map(Node::status))
            .collect()
    }

    /// The live leader with the highest term, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.statuses()
            .into_iter()
            .filter(|status| status.role == Role::Leader)
            .max_by_key(|status| status.term)
            .map(|status| status.id)
    }

    // ------------------------------------------------------------------ faults

    pub fn crash(&mut self, id: NodeId) {
        let tear = self.rng.gen_bool(0.5);
        let replica = self.replicas.get_mut(&id).expect("known node");
        if replica.node.take().is_none() {
            return;
        }
        replica.incarnation += 1;
        replica.tick_at_ms = None;
        replica.disk.crash(&mut self.rng, tear);
        self.stats.crashes += 1;
    }

    pub fn restart(&mut self, id: NodeId) {
        if !self.is_up(id) {
            self.start(id);
        }
    }

    fn start(&mut self, id: NodeId) {
        let replica = self.replicas.get_mut(&id).expect("known node");
        let recovered = replica.disk.recovered();
        let rng_seed = self.seed ^ (u64::from(id.0) << 32) ^ replica.incarnation;
        let node = Node::new(
            self.config.clone(),
            id,
            self.ids.clone(),
            recovered,
            rng_seed,
        )
        .expect("harness: a disk written by this node recovers");
        replica.node = Some(node);
        replica.applied = LogIndex(0);
        replica.was_leader_in = None;
        replica.fsync_free_at_ms = replica.fsync_free_at_ms.max(self.now_ms);
        let effects = self.node_mut(id).take_effects();
        self.carry_out(id, effects);
        self.step_node(id, Input::Tick);
    }

    /// Cuts every link between `side` and the rest, both ways.
    pub fn partition(&mut self, side: &[NodeId]) {
        for a in side {
            for b in &self.ids {
                if !side.contains(b) {
                    self.blocked.insert((*a, *b));
                    self.blocked.insert((*b, *a));
                }
            }
        }
    }

    pub fn block_one_way(&mut self, from: NodeId, to: NodeId) {
        self.blocked.insert((from, to));
    }

    /// Drops every AppendRequest `id` sends (it still votes and campaigns), until
    /// `heal_network`.
    pub fn drop_appends_from(&mut self, id: NodeId) {
        self.appends_dropped_from.insert(id);
    }

    pub fn heal_network(&mut self) {
        self.blocked.clear();
        self.appends_dropped_from.clear();
    }

    /// Faults stop: links heal, messages are neither lost nor duplicated, every node is up.
    pub fn heal_all(&mut self) {
        self.heal_network();
        self.network.drop_ppm = 0;
        self.network.duplicate_ppm = 0;
        for id in self.ids.clone() {
            self.restart(id);
        }
    }

    // ------------------------------------------------------------------ clients

    /// A client sends a proposal to `id`; returns its id (the reply lands in `replies`).
    pub fn propose(&mut self, id: NodeId) -> ProposalId {
        let proposal = ProposalId(self.next_proposal);
        self.next_proposal += 1;
        let data = proposal.0.to_le_bytes().to_vec();
        self.checker.proposed(proposal, data.clone());
        self.proposed_at.insert(proposal, self.now_ms);
        if self.is_up(id) {
            self.step_node(id, Input::ClientPropose { proposal, data });
        }
        proposal
    }

    /// A client asks `id` for a ReadIndex read; the answer lands in `read_replies`.
    pub fn read_index(&mut self, id: NodeId) -> ReadId {
        let read = ReadId(self.next_read);
        self.next_read += 1;
        if self.is_up(id) {
            self.step_node(id, Input::ReadIndex { read });
        }
        read
    }

    pub fn transfer_leadership(&mut self, from: NodeId, to: NodeId) {
        if self.is_up(from) {
            self.step_node(from, Input::TransferLeadership { to });
        }
    }

    /// The global time at which `proposal` was sent to a node.
    pub fn proposed_at_ms(&self, proposal: ProposalId) -> u64 {
        self.proposed_at[&proposal]
    }

    /// The first proposal invoked at or after `since_ms` that was acknowledged, with the time.
    pub fn first_commit_since(&self, since_ms: u64) -> Option<(ProposalId, u64)> {
        self.replies.iter().find_map(|(at, proposal, outcome)| {
            let invoked = self.proposed_at[proposal];
            matches!(outcome, ProposeOutcome::Committed { .. })
                .then_some((*proposal, *at))
                .filter(|_| invoked >= since_ms)
        })
    }

    /// Liveness: proposes every 50 ms to the apparent leader (or any node) until a proposal
    /// made at or after `since_ms` commits; returns the global time of that commit, or `None`
    /// if it did not happen by `since_ms + bound_ms`.
    pub fn await_commit(&mut self, since_ms: u64, bound_ms: u64) -> Option<u64> {
        let give_up = since_ms + bound_ms;
        while self.now_ms <= give_up {
            let target = match self.leader() {
                Some(leader) => leader,
                None => self.ids[self.rng.gen_range(0..self.ids.len())],
            };
            self.propose(target);
            let until = self.now_ms + 50;
            self.run_until(until);
            if let Some((_, at)) = self.first_commit_since(since_ms) {
                return Some(at);
            }
        }
        None
    }

    // ------------------------------------------------------------------ the scheduler

    /// Runs every event due up to `until_ms` (global time), then sets the clock to it.
    pub fn run_until(&mut self, until_ms: u64) {
        while let Some(entry) = self.queue.first_entry() {
            if entry.key().0 > until_ms {
                break;
            }
            let ((at, _), event) = entry.remove_entry();
            self.now_ms = at;
            self.stats.events += 1;
            self.handle(event);
            self.check_durable_majority();
        }
        self.now_ms = self.now_ms.max(until_ms);
    }

    fn schedule(&mut self, at_ms: u64, event: Event) {
        self.sequence += 1;
        self.queue.insert((at_ms, self.sequence), event);
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Deliver { from, to, msg } => {
                if self.is_up(to) {
                    self.step_node(to, Input::Message { from, msg });
                }
            }
            Event::SyncDone {
                node,
                incarnation,
                sync_id,
            } => {
                let replica = self.replicas.get_mut(&node).expect("known node");
                if replica.incarnation == incarnation && replica.node.is_some() {
                    replica.disk.complete_sync(sync_id);
                    self.step_node(node, Input::Persisted { sync_id });
                }
            }
            Event::Tick { node, incarnation } => {
                let replica = &self.replicas[&node];
                let current = replica.incarnation == incarnation
                    && replica.tick_at_ms == Some(self.now_ms)
                    && replica.node.is_some();
                if current {
                    self.replicas.get_mut(&node).expect("known node").tick_at_ms = None;
                    self.step_node(node, Input::Tick);
                }
            }
        }
    }

    fn node_mut(&mut self, id: NodeId) -> &mut Node {
        self.replicas
            .get_mut(&id)
            .expect("known node")
            .node
            .as_mut()
            .expect("node is up")
    }

    fn step_node(&mut self, id: NodeId, input: Input) {
        self.stats.steps += 1;
        let local_ms = self.now_ms + self.replicas[&id].clock_offset_ms;
        let node = self.node_mut(id);
        node.step(local_ms, input);
        let effects = node.take_effects();
        let violations = node.take_safety_violations();
        let now_ms = self.now_ms;
        self.node_violations
            .extend(violations.into_iter().map(|v| (now_ms, id, v)));
        self.carry_out(id, effects);
        self.after_step(id);
    }

    fn carry_out(&mut self, id: NodeId, effects: Vec<Effect>) {
        let status = self.replicas[&id]
            .node
            .as_ref()
            .expect("node is up")
            .status();
        self.checker.saw_effects(&status, &effects);
        for effect in effects {
            match effect {
                Effect::Send { to, msg } => self.send(id, to, msg),
                Effect::Persist(op) => self.replica_mut(id).disk.write(op),
                Effect::Sync { sync_id } => self.request_sync(id, sync_id),
                Effect::Reply { proposal, outcome } => {
                    self.replies.push((self.now_ms, proposal, outcome));
                }
                Effect::ReadReply { read, outcome } => {
                    self.read_replies.push((self.now_ms, id, read, outcome));
                }
                Effect::Apply { entries } => {
                    let replica = self.replica_mut(id);
                    for entry in &entries {
                        assert_eq!(
                            entry.index,
                            replica.applied.next(),
                            "applies are consecutive within a node lifetime"
                        );
                        replica.applied = entry.index;
                    }
                }
            }
        }
    }

    fn replica_mut(&mut self, id: NodeId) -> &mut Replica {
        self.replicas.get_mut(&id).expect("known node")
    }

    fn send(&mut self, from: NodeId, to: NodeId, msg: Message) {
        self.stats.messages_sent += 1;
        match &msg {
            Message::AppendRequest { entries, .. } => {
                self.stats.append_entries_sent += entries.len() as u64;
            }
            Message::AppendResponse { success: false, .. } => self.stats.append_rejections += 1,
            _ => {}
        }
        let append_dropped = self.appends_dropped_from.contains(&from)
            && matches!(msg, Message::AppendRequest { .. });
        let dropped = self.blocked.contains(&(from, to))
            || append_dropped
            || self.rng.gen_range(0..1_000_000) < self.network.drop_ppm;
        if dropped {
            self.stats.messages_dropped += 1;
            return;
        }
        let copies = if self.rng.gen_range(0..1_000_000) < self.network.duplicate_ppm {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = self
                .rng
                .gen_range(self.network.delay_ms_min..=self.network.delay_ms_max);
            let event = Event::Deliver {
                from,
                to,
                msg: msg.clone(),
            };
            let arrive_at = self.receive_at(to, self.now_ms + delay);
            self.schedule(arrive_at, event);
        }
    }

    /// When a message reaching `to` at `arrive_at_ms` is taken in, given the receive cost.
    fn receive_at(&mut self, to: NodeId, arrive_at_ms: u64) -> u64 {
        let (workers, receive_ms) = (self.network.receive_workers, self.network.receive_ms);
        if workers == 0 {
            return arrive_at_ms;
        }
        let free_at = &mut self.replica_mut(to).receive_free_at_ms;
        free_at.resize(workers, 0);
        let worker = free_at
            .iter_mut()
            .min()
            .expect("at least one receive worker");
        let done_at = (*worker).max(arrive_at_ms) + receive_ms;
        *worker = done_at;
        done_at
    }

    fn request_sync(&mut self, id: NodeId, sync_id: SyncId) {
        let fsync_ms = self.rng.gen_range(1..=self.network.fsync_ms_max);
        let now_ms = self.now_ms;
        let replica = self.replica_mut(id);
        replica.disk.request_sync(sync_id);
        let done_at = replica.fsync_free_at_ms.max(now_ms) + fsync_ms;
        replica.fsync_free_at_ms = done_at;
        let incarnation = replica.incarnation;
        self.schedule(
            done_at,
            Event::SyncDone {
                node: id,
                incarnation,
                sync_id,
            },
        );
    }

    /// Checks after a node's step, then arms its next Tick.
    fn after_step(&mut self, id: NodeId) {
        let replica = &self.replicas[&id];
        let node = replica.node.as_ref().expect("node is up");
        let status = node.status();
        self.checker.saw_status(&status);
        let newly_leader =
            status.role == Role::Leader && replica.was_leader_in != Some(status.term);
        if newly_leader {
            self.checker.check_leader_log(&status, node.log());
        }
        let deadline_local = node.next_deadline_ms();
        let offset = replica.clock_offset_ms;
        let incarnation = replica.incarnation;
        let tick_at = deadline_local.saturating_sub(offset).max(self.now_ms);
        let replica = self.replica_mut(id);
        if status.role == Role::Leader {
            replica.was_leader_in = Some(status.term);
        }
        if replica.tick_at_ms != Some(tick_at) {
            replica.tick_at_ms = Some(tick_at);
            self.schedule(
                tick_at,
                Event::Tick {
                    node: id,
                    incarnation,
                },
            );
        }
    }

    /// Durability: the last committed entry is on the durable disk of a majority (acks and the
    /// leader's own count must only ever cover synced writes, and crashes lose only unsynced).
    fn check_durable_majority(&mut self) {
        let Some(last) = self.checker.committed_last() else {
            return;
        };
        let (index, checksum) = (last.index, last.checksum);
        let holders = self
            .replicas
            .values()
            .filter(|replica| replica.disk.checksum_at(index) == Some(checksum))
            .count();
        if holders <= self.ids.len() / 2 {
            let violation = format!(
                "committed entry {index} is durable on only {holders} of {} disks",
                self.ids.len()
            );
            self.checker.fail(violation);
        }
    }
}
