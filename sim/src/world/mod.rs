//! The madsim world of one seed: one simulated node per replica and per name server, the
//! state kept outside the nodes (disks, clocks, the network's faults, observer, history), and
//! the transitions that change it (`faults.rs`), each keeping its own invariants. The state is
//! private: the nemesis, the clients and the run change it only through these methods.

pub mod alarm;
pub mod clock;
pub mod coverage;
pub mod damage;
pub mod disk;
pub mod drops;
mod faults;
pub mod nameserver;
pub mod network;
pub mod observe;
pub mod replica;
pub mod spec;
pub mod summary;
pub mod triggers;
pub mod wire;

pub use faults::{ClockChange, DiskFate};
pub use spec::{Broken, Replication, WorldSpec};

use crate::history::Operation;
use broker_core::broker::{Broker, BrokerEffect, ReplicaNode};
use broker_core::master_slave::{self, MasterSlaveBroker};
use broker_core::raft::Role;
use broker_core::{NodeId, SyncId};
use clock::NodeClock;
use disk::Disk;
use futures::channel::mpsc;
use futures::StreamExt;
use network::{BaseNetwork, Inbox, NetworkState, Post};
use observe::{
    AppliedEntry, InvariantViolation, LeaderSnapshot, LostWrites, Observation, Observer,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// An instruction to a replica from outside the protocol (an operator's admin command).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminCommand {
    TransferLeadership {
        to: NodeId,
    },
    /// Step now: the node's clock changed, so a timer may be due earlier than it planned for.
    Wake,
}

/// State kept outside the simulated nodes: it survives kills.
struct Shared {
    disks: Vec<Disk>,
    clocks: Vec<NodeClock>,
    incarnations: Vec<u32>,
    down: Vec<bool>,
    paused: Vec<bool>,
    observer: Observer,
    history: Vec<Operation>,
    recovery_failures: Vec<(u64, NodeId, String)>,
    /// Disk faults done (issue 15), in order: time, node, what was damaged.
    damages: Vec<(u64, NodeId, damage::Damaged)>,
    /// Per replica: its last start failed (recovery refused its disk).
    refused: Vec<bool>,
    /// Per replica: the running incarnation's event queue (None while down).
    inboxes: Vec<Option<futures::channel::mpsc::UnboundedSender<replica::Event>>>,
    /// Every route fetch of every client, in completion order (only with name servers).
    route_fetches: Vec<nameserver::RouteFetch>,
    /// Per queue (history name): the offset its consumer pulls next.
    consumer_offsets: BTreeMap<String, u64>,
    network: NetworkState,
    /// Who led and who reached a majority at each moment the nemesis marked.
    leader_snapshots: Vec<LeaderSnapshot>,
    /// Faults fired on events (`triggers`).
    triggers: triggers::Triggers,
    /// Raft event coverage (`coverage`).
    coverage: coverage::Coverage,
    /// Replica-to-replica datagrams the network dropped, per addressee.
    peer_drops: drops::PeerDrops,
}

pub struct World {
    pub spec: Arc<WorldSpec>,
    pub seed: u64,
    shared: Mutex<Shared>,
    time: madsim::time::TimeHandle,
    handle: madsim::runtime::Handle,
    /// madsim's id of each replica's node, by replica number (set once they are created).
    replica_nodes: OnceLock<Vec<madsim::task::NodeId>>,
    /// madsim's id of each name server's node.
    name_server_nodes: OnceLock<Vec<madsim::task::NodeId>>,
    /// Every datagram in flight and fsync completion due, and who is bound where.
    post: Mutex<Post>,
    /// Wakes the post's task when a parcel is due earlier than it sleeps until.
    post_wake: Mutex<Option<mpsc::UnboundedSender<()>>>,
    workload_stopped: AtomicBool,
    /// Undoes of triggered faults (restart, resume), carried out by the undo task.
    trigger_undo: Mutex<Option<mpsc::UnboundedSender<(u64, NodeId, triggers::TriggerAction)>>>,
    /// Set once consumers have drained every queue (or ran out of time): they stop pulling.
    consumers_stopped: AtomicBool,
}

/// What a world holds at the end of a seed, taken out of it (`World::take_results`).
pub struct WorldResults {
    /// Client operations, sorted by invocation time, then client.
    pub history: Vec<Operation>,
    pub observations: Vec<Observation>,
    pub violations: Vec<(u64, InvariantViolation)>,
    pub recovery_failures: Vec<(u64, NodeId, String)>,
    pub damages: Vec<(u64, NodeId, damage::Damaged)>,
    pub lost_writes: Vec<LostWrites>,
    pub final_logs: Vec<Vec<AppliedEntry>>,
    pub trace_hash: u64,
    pub route_fetches: Vec<nameserver::RouteFetch>,
    pub leader_snapshots: Vec<LeaderSnapshot>,
    /// How often each trigger fired (`triggers::TriggerKind` by name).
    pub triggers_fired: BTreeMap<String, u32>,
    /// Raft event coverage (`coverage::EVENTS`), by event.
    pub events: BTreeMap<String, u32>,
    /// Replica-to-replica datagrams the network dropped, per addressee.
    pub peer_drops: drops::PeerDrops,
}

impl World {
    /// A fresh world in the current madsim runtime, with its replica and name server nodes
    /// created (in that order) and started.
    pub fn create(spec: Arc<WorldSpec>, seed: u64) -> Arc<World> {
        let replicas = spec.replica_count();
        let shared = Shared {
            disks: (0..replicas)
                .map(|_| Disk::new(spec.fsync.as_us()))
                .collect(),
            clocks: vec![NodeClock::default(); replicas as usize],
            incarnations: vec![0; replicas as usize],
            down: vec![false; replicas as usize],
            paused: vec![false; replicas as usize],
            observer: if spec.is_master_slave() {
                Observer::new_master_slave(spec.groups, spec.replicas)
            } else {
                Observer::new(spec.groups, spec.replicas)
            },
            history: Vec::new(),
            recovery_failures: Vec::new(),
            damages: Vec::new(),
            refused: vec![false; replicas as usize],
            inboxes: vec![None; replicas as usize],
            route_fetches: Vec::new(),
            consumer_offsets: BTreeMap::new(),
            network: NetworkState::new(BaseNetwork::of(&spec)),
            leader_snapshots: Vec::new(),
            triggers: triggers::Triggers::new(spec.triggers.clone(), seed),
            coverage: coverage::Coverage::new(spec.replicas),
            peer_drops: drops::PeerDrops::new(replicas, spec.election_window_us()),
        };
        let handle = madsim::runtime::Handle::current();
        let (post_wake, wakes) = mpsc::unbounded();
        let (trigger_undo, undos) = mpsc::unbounded();
        let world = Arc::new(World {
            spec: spec.clone(),
            seed,
            shared: Mutex::new(shared),
            time: madsim::time::TimeHandle::current(),
            handle: handle.clone(),
            replica_nodes: OnceLock::new(),
            name_server_nodes: OnceLock::new(),
            post: Mutex::new(Post::default()),
            post_wake: Mutex::new(Some(post_wake)),
            workload_stopped: AtomicBool::new(false),
            trigger_undo: Mutex::new(Some(trigger_undo)),
            consumers_stopped: AtomicBool::new(false),
        });
        // On the supervisor's node, which no fault touches.
        madsim::task::spawn(world.clone().run_post(wakes));
        // Only with triggers armed: an extra task would move every stock scenario's schedule.
        if !spec.triggers.is_empty() {
            madsim::task::spawn(World::run_trigger_undos(Arc::downgrade(&world), undos));
        }
        let replica_nodes = (0..replicas)
            .map(|n| {
                // Weak: madsim keeps a node's init closure for restarts, and the world holds
                // the runtime's handle; a strong reference here would keep both alive forever.
                let world = Arc::downgrade(&world);
                let node = NodeId(n);
                handle
                    .create_node()
                    .name(format!("replica-{n}"))
                    .ip(wire::replica_addr(node).ip())
                    .init(move || replica::run_replica(World::upgrade(&world), node))
                    .build()
                    .id()
            })
            .collect();
        world
            .replica_nodes
            .set(replica_nodes)
            .expect("invariant: set once, here");
        let name_server_nodes = (0..spec.name_servers)
            .map(|index| {
                let world = Arc::downgrade(&world);
                handle
                    .create_node()
                    .name(format!("name-server-{index}"))
                    .ip(wire::name_server_addr(index).ip())
                    .init(move || nameserver::run_name_server(World::upgrade(&world), index))
                    .build()
                    .id()
            })
            .collect();
        world
            .name_server_nodes
            .set(name_server_nodes)
            .expect("invariant: set once, here");
        world
    }

    /// The world a node's init closure refers to (weakly, see `create`).
    pub fn upgrade(world: &std::sync::Weak<World>) -> Arc<World> {
        world
            .upgrade()
            .expect("invariant: nodes start only while the seed's supervisor holds the world")
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared
            .lock()
            .expect("invariant: the simulation is single-threaded, no lock is poisoned")
    }

    fn post(&self) -> MutexGuard<'_, Post> {
        self.post
            .lock()
            .expect("invariant: the simulation is single-threaded, no lock is poisoned")
    }

    /// The post's task: sleeps until the next datagram is due (or an earlier one is posted),
    /// then hands every due one to its inbox, in arrival order.
    async fn run_post(self: Arc<World>, mut wakes: mpsc::UnboundedReceiver<()>) {
        let mut alarm = alarm::Alarm::new();
        let mut due = Vec::new();
        loop {
            let next_us = self.post().take_due(self.now_us(), &mut due);
            for (inbox, wire) in due.drain(..) {
                inbox(wire);
            }
            let woke = match next_us {
                Some(due_us) => {
                    futures::select_biased! {
                        woke = wakes.next() => woke,
                        () = futures::FutureExt::fuse(alarm.until(due_us)) => Some(()),
                    }
                }
                None => wakes.next().await,
            };
            if woke.is_none() {
                return; // the world's results were taken
            }
        }
    }

    /// The triggers' undo task (on the supervisor's node, which no fault touches): restarts or
    /// resumes a node a trigger took down, `down_us` after it fired.
    async fn run_trigger_undos(
        world: std::sync::Weak<World>,
        mut undos: mpsc::UnboundedReceiver<(u64, NodeId, triggers::TriggerAction)>,
    ) {
        while let Some((down_us, node, action)) = undos.next().await {
            let world = world.clone();
            madsim::task::spawn(async move {
                madsim::time::sleep(std::time::Duration::from_micros(down_us)).await;
                let Some(world) = world.upgrade() else {
                    return;
                };
                match action {
                    triggers::TriggerAction::Pause => world.resume(node),
                    triggers::TriggerAction::Crash | triggers::TriggerAction::PowerLoss => {
                        world.restart(node)
                    }
                }
            });
        }
    }

    /// After `node` stepped (on a pull with `pull_request_id`, if it was one): the trigger
    /// whose event that was, if one is armed and its chance says so (`fire_trigger` carries it
    /// out once the step's effects went out).
    pub fn check_triggers(
        &self,
        node: NodeId,
        pull_request_id: Option<u64>,
        replica: &dyn ReplicaNode,
        effects: &[BrokerEffect],
    ) -> Option<triggers::Fired> {
        let now_us = self.now_us();
        let mut shared = self.lock();
        let status = replica.status();
        if !self.spec.is_master_slave() {
            shared
                .coverage
                .after_step(node, &status, replica.log(), effects);
        }
        if self.workload_stopped.load(Ordering::Relaxed) || !shared.triggers.is_armed() {
            return None;
        }
        shared.triggers.after_step(
            now_us,
            node,
            pull_request_id,
            effects,
            &status,
            replica.log(),
        )
    }

    /// Carries out a fired trigger on its node and has it undone `down_us` later. Returns
    /// true when the node was crashed (its task must stop).
    pub fn fire_trigger(&self, fired: triggers::Fired) -> bool {
        let node = fired.node;
        tracing::info!(%node, kind = ?fired.kind, action = ?fired.action, down_us = fired.down_us, "trigger");
        let done = match fired.action {
            triggers::TriggerAction::Crash => self.crash(node, DiskFate::KeepUnsynced),
            triggers::TriggerAction::PowerLoss => self.crash(
                node,
                DiskFate::LoseUnsynced {
                    surviving_writes: 0,
                },
            ),
            triggers::TriggerAction::Pause => self.pause(node),
        };
        if done && fired.kind == triggers::TriggerKind::CrashAfterVoteGrant {
            self.lock()
                .coverage
                .count(coverage::VOTER_CRASHED_AFTER_GRANT);
        }
        if done {
            if let Some(undo) = &*self
                .trigger_undo
                .lock()
                .expect("invariant: the simulation is single-threaded, no lock is poisoned")
            {
                let _ = undo.unbounded_send((fired.down_us, node, fired.action));
            }
        }
        done && fired.action != triggers::TriggerAction::Pause
    }

    /// `addr` receives into `inbox` from now on (a node's new incarnation).
    pub fn bind(&self, addr: SocketAddr, inbox: Inbox) {
        self.post().bind(addr, inbox);
    }

    fn wake_post(&self, wake: bool) {
        if wake {
            if let Some(post_wake) = &*self
                .post_wake
                .lock()
                .expect("invariant: the simulation is single-threaded, no lock is poisoned")
            {
                let _ = post_wake.unbounded_send(());
            }
        }
    }

    fn replica_node(&self, node: NodeId) -> madsim::task::NodeId {
        self.replica_nodes
            .get()
            .expect("invariant: replica nodes exist from World::create on")[node.0 as usize]
    }

    pub fn now_us(&self) -> u64 {
        self.time.elapsed().as_micros() as u64
    }

    /// The node's local clock in ms (never negative).
    pub fn local_ms(&self, node: NodeId) -> u64 {
        let now_us = self.now_us();
        let local_us = self.lock().clocks[node.0 as usize].local_us(now_us);
        let skipped_us = self.broken_clock_skip_us(node, now_us);
        u64::try_from(local_us.max(0)).expect("invariant: clamped to >= 0") / 1_000
            + skipped_us / 1_000
    }

    /// Test-only `Broken::ClockSkipsAhead`: how far the clock of a replica other than 0 has
    /// silently skipped (whichever leads, a follower's clock skips).
    fn broken_clock_skip_us(&self, node: NodeId, now_us: u64) -> u64 {
        if self.spec.broken != Broken::ClockSkipsAhead || node == NodeId(0) {
            return 0;
        }
        let raft = &self.spec.raft;
        let election_us = (raft.election_timeout_ms_base() + raft.vote_interval_ms_max) * 1_000;
        (now_us / spec::CLOCK_SKIP_PERIOD_US) * election_us
    }

    /// How much global time passes while the node's local clock advances by `local_us`.
    pub fn global_delay_us(&self, node: NodeId, local_us: u64) -> u64 {
        self.lock().clocks[node.0 as usize].global_delay_us(local_us)
    }

    /// Safety violations a replica recorded about itself (DLedger fidelity), as findings.
    pub fn record_node_violations(
        &self,
        node: NodeId,
        violations: Vec<broker_core::raft::SafetyViolation>,
    ) {
        let now_us = self.now_us();
        let mut shared = self.lock();
        for violation in violations {
            tracing::info!(%node, ?violation, "replica broke a Raft safety property");
            shared.observer.violations.push((
                now_us,
                observe::InvariantViolation::ReportedByNode { node, violation },
            ));
        }
    }

    pub fn consumers_stopped(&self) -> bool {
        self.consumers_stopped.load(Ordering::Relaxed)
    }

    /// Consumers stop pulling from now on.
    pub fn stop_consumers(&self) {
        self.consumers_stopped.store(true, Ordering::Relaxed);
    }

    /// A consumer will next pull `queue` (history name) from `offset`.
    pub fn record_consumer_offset(&self, queue: String, offset: u64) {
        self.lock().consumer_offsets.insert(queue, offset);
    }

    /// Every queue's consumer has pulled up to the end of the queue as its group's leader
    /// applied it (with one leader per group; no leader: not drained). `queues` are the
    /// queues' history names (`QueueId`'s text form).
    pub fn consumers_drained(&self, queues: &[String]) -> bool {
        let shared = self.lock();
        let mut applied: BTreeMap<String, u64> = BTreeMap::new();
        for group in 0..self.spec.groups {
            let leader = self.spec.members(group).into_iter().find(|node| {
                let view = &shared.observer.views[node.0 as usize];
                view.up && view.status.as_ref().is_some_and(|s| s.role == Role::Leader)
            });
            let Some(leader) = leader else {
                return false;
            };
            let mut by_key: BTreeMap<&broker_core::broker::QueueKey, u64> = BTreeMap::new();
            for entry in &shared.observer.views[leader.0 as usize].applied {
                if let Some(message) = &entry.message {
                    *by_key.entry(&message.queue).or_insert(0) += 1;
                }
            }
            for (key, count) in by_key {
                let name = crate::ids::QueueId::new(group, key.clone()).to_string();
                *applied.entry(name).or_insert(0) += count;
            }
        }
        queues.iter().all(|name| {
            let end = applied.get(name).copied().unwrap_or(0);
            shared.consumer_offsets.get(name).copied().unwrap_or(0) >= end
        })
    }

    pub fn workload_stopped(&self) -> bool {
        self.workload_stopped.load(Ordering::Relaxed)
    }

    /// The end of the fault phase: producers send nothing new from now on.
    pub fn stop_workload(&self) {
        self.workload_stopped.store(true, Ordering::Relaxed);
    }

    pub fn record_route_fetch(&self, fetch: nameserver::RouteFetch) {
        tracing::debug!(?fetch, "route fetch");
        self.lock().route_fetches.push(fetch);
    }

    pub fn record_operation(&self, operation: Operation) {
        let mut shared = self.lock();
        shared.observer.trace_extra(&operation);
        shared.history.push(operation);
    }

    /// Hands an operator command to a running replica (dropped when it is down).
    pub fn admin(&self, node: NodeId, command: AdminCommand) {
        if let Some(inbox) = &self.lock().inboxes[node.0 as usize] {
            let _ = inbox.unbounded_send(replica::Event::Admin(command));
        }
    }

    /// Sends a datagram from `from` (a replica, a name server or a client) without waiting:
    /// the network's cuts, loss, latency and link faults decide when it arrives, if ever
    /// (`NetworkState::route`).
    pub fn send(&self, from: SocketAddr, to: SocketAddr, wire: wire::Wire) {
        let peer = matches!(wire, wire::Wire::Peer { .. });
        let now_us = self.now_us();
        let delays_us = {
            let mut shared = self.lock();
            let delays_us = shared
                .network
                .route(from, to, peer, &mut madsim::rand::thread_rng());
            if peer && delays_us.is_empty() {
                if let Some(node) = wire::replica_of(to) {
                    shared.peer_drops.note(node, now_us);
                }
            }
            delays_us
        };
        let mut wake = false;
        {
            let mut post = self.post();
            let last = delays_us.len().saturating_sub(1);
            let mut wire = Some(wire);
            for (copy, delay_us) in delays_us.into_iter().enumerate() {
                let this = if copy == last {
                    wire.take()
                        .expect("invariant: the last copy takes the datagram")
                } else {
                    wire.clone()
                        .expect("invariant: taken only by the last copy")
                };
                wake |= post.post_datagram(to, this, now_us + delay_us);
            }
        }
        self.wake_post(wake);
    }

    /// Builds the broker of a (re)starting replica from its disk; registers its event queue.
    pub fn start_replica(
        &self,
        node: NodeId,
        inbox: mpsc::UnboundedSender<replica::Event>,
    ) -> Option<Box<dyn ReplicaNode>> {
        let now_us = self.now_us();
        let wires = inbox.clone();
        self.bind(
            wire::replica_addr(node),
            Arc::new(move |wire| wires.unbounded_send(replica::Event::Wire(wire)).is_ok()),
        );
        let mut shared = self.lock();
        shared.inboxes[node.0 as usize] = Some(inbox);
        let index = node.0 as usize;
        shared.incarnations[index] += 1;
        let incarnation = shared.incarnations[index];
        let mut recovered = shared.disks[index].recover();
        // The deployment knows the replica ran before and that its hard state file is gone:
        // an empty disk is a lost one. A replica that crashed before its first write (it never
        // voted nor acknowledged) comes back as a new one: with 2 of 5 disks damaged, refusing
        // its vote too left the group without a majority (swarm_disk seed 25, not settled).
        recovered.rejoining = incarnation > 1 && shared.disks[index].hard_state_lost();
        let group = self.spec.group_of(node);
        let rng_seed = mix_seed(self.seed, u64::from(node.0), u64::from(incarnation));
        let built: Result<Box<dyn ReplicaNode>, String> = match self.spec.replication {
            Replication::DLedger => Broker::new(
                self.spec.raft.clone(),
                node,
                self.spec.members(group),
                recovered,
                rng_seed,
            )
            .map(|broker| {
                let mut broker = broker.with_read_mode(self.spec.read_mode);
                broker.unsafe_ack_before_commit = self.spec.broken == Broken::AckBeforeCommit;
                broker.unsafe_ack_wrong_offset = self.spec.broken == Broken::AckWrongOffset;
                Box::new(broker) as Box<dyn ReplicaNode>
            })
            .map_err(|error| error.to_string()),
            Replication::MasterSlave(mode) => MasterSlaveBroker::new(
                master_slave::Config::with_replication(mode),
                node,
                self.spec.members(group),
                recovered,
            )
            .map(|broker| Box::new(broker) as Box<dyn ReplicaNode>)
            .map_err(|error| error.to_string()),
        };
        match built {
            Ok(replica) => {
                shared.refused[index] = false;
                tracing::debug!(%node, incarnation, "replica started");
                shared
                    .observer
                    .on_start(now_us, node, replica.log(), incarnation > 1);
                Some(replica)
            }
            Err(error) => {
                shared.refused[index] = true;
                shared.recovery_failures.push((now_us, node, error));
                None
            }
        }
    }

    /// Records a step's writes and observations; returns the fsyncs it asked for, to complete
    /// later, as (sync id, covered write, completion time), in completion order.
    pub fn after_step(
        &self,
        node: NodeId,
        replica: &dyn ReplicaNode,
        effects: &[BrokerEffect],
    ) -> Vec<(SyncId, Option<u64>, u64)> {
        let now_us = self.now_us();
        let mut shared = self.lock();
        let mut syncs: Vec<(SyncId, Option<u64>, u64)> = Vec::new();
        for effect in effects {
            match effect {
                BrokerEffect::Persist(op) => {
                    shared.observer.on_persist(now_us, node, op);
                    shared.disks[node.0 as usize].write(op.clone());
                }
                BrokerEffect::Sync { sync_id } => {
                    let (upto, at) = shared.disks[node.0 as usize].start_sync(now_us);
                    syncs.push((*sync_id, upto, at));
                }
                BrokerEffect::Send { .. } | BrokerEffect::Respond { .. } => {}
            }
        }
        shared
            .observer
            .on_status(now_us, replica.status(), replica.log());
        syncs
    }

    /// The fsync covering the node's writes up to `upto_seq` completed.
    pub fn complete_sync(&self, node: NodeId, upto_seq: u64) {
        self.lock().disks[node.0 as usize].complete_sync(upto_seq);
    }

    /// Takes the seed's results out of the world, then drops the world's heavy state: tasks
    /// still pending at the end (receive loops, waiting clients) hold `Arc<World>` in reference
    /// cycles through their channels, and madsim frees a task only when it is polled again or
    /// its last waker drops. Without this every seed leaked its disks, logs and observations
    /// (35-55 MB a seed; a 500-seed swarm ran out of 24 GiB).
    pub fn take_results(&self) -> WorldResults {
        let mut shared = self.lock();
        let final_logs = shared
            .observer
            .views
            .iter()
            .map(|view| view.applied.clone())
            .collect();
        let mut history = std::mem::take(&mut shared.history);
        history.sort_by_key(|op| (op.invoke_us, op.client));
        let results = WorldResults {
            history,
            observations: std::mem::take(&mut shared.observer.events),
            violations: std::mem::take(&mut shared.observer.violations),
            recovery_failures: std::mem::take(&mut shared.recovery_failures),
            damages: std::mem::take(&mut shared.damages),
            lost_writes: std::mem::take(&mut shared.observer.lost_writes),
            final_logs,
            trace_hash: shared.observer.trace_hash(),
            route_fetches: std::mem::take(&mut shared.route_fetches),
            leader_snapshots: std::mem::take(&mut shared.leader_snapshots),
            triggers_fired: shared
                .triggers
                .fired
                .iter()
                .map(|(kind, count)| (format!("{kind:?}"), *count))
                .collect(),
            events: shared
                .coverage
                .counts
                .iter()
                .map(|(event, count)| (event.to_string(), *count))
                .collect(),
            peer_drops: std::mem::take(&mut shared.peer_drops),
        };
        shared.disks.clear();
        shared.inboxes.clear();
        drop(shared);
        self.post().clear();
        *self
            .post_wake
            .lock()
            .expect("invariant: the simulation is single-threaded, no lock is poisoned") = None;
        *self
            .trigger_undo
            .lock()
            .expect("invariant: the simulation is single-threaded, no lock is poisoned") = None;
        let mut shared = self.lock();
        shared.observer = Observer::new(0, 0);
        results
    }

    /// Kills every node of the world (replicas, then name servers), at the end of a seed.
    pub fn kill_all_nodes(&self) {
        let replicas = self.replica_nodes.get().into_iter().flatten();
        let name_servers = self.name_server_nodes.get().into_iter().flatten();
        for node in replicas.chain(name_servers) {
            self.handle.kill(*node);
        }
    }
}

/// SplitMix64 over the run seed and two more numbers: independent streams per node/incarnation.
pub fn mix_seed(seed: u64, a: u64, b: u64) -> u64 {
    let mut z =
        seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
