//! The madsim world of one seed: one simulated node per replica and per client, the shared
//! state kept outside the nodes (disks, clocks, observer, history), and the supervisor that
//! plays the fault timeline, heals, lets the cluster settle and collects the results.

pub mod clock;
pub mod disk;
pub mod nameserver;
pub mod observe;
pub mod replica;
pub mod summary;
pub mod wire;

use clock::NodeClock;
use disk::Disk;
use crate::history::Operation;
use crate::nemesis::{self, AdminCommand, FailoverFault};
use crate::scenario::{Broken, ReadMode, Replication, Scenario, TimedFault};
use crate::workload::{self, WorkloadSpec};
use broker_core::broker::{Broker, BrokerEffect, ClientId, QueueKey, ReplicaNode};
use broker_core::master_slave::{self, MasterSlaveBroker};
use broker_core::raft::{self, Role};
use broker_core::{LogIndex, NodeId, SyncId, Term};
use observe::{InvariantViolation, Observation, Observer};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// A valid scenario that asks for something this build does not simulate.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {what}")]
pub struct UnsupportedScenario {
    pub file: String,
    pub what: String,
}

/// How long a producer avoids a replica that did not answer in time.
pub const SUSPECT_US_DEFAULT: u64 = 10_000_000;

/// Everything a run needs, in integer simulated microseconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorldSpec {
    pub replication: Replication,
    pub groups: u32,
    pub replicas: u32,
    pub raft: raft::Config,
    pub latency_us_min: u64,
    pub latency_us_max: u64,
    pub loss_ppm: u32,
    pub fsync_us: u64,
    /// Clients start sending after this (a leader is elected first).
    pub warmup_us: u64,
    /// The fault phase: faults fire and clients send until then.
    pub duration_us: u64,
    /// After healing, the cluster must converge within this.
    pub settle_max_us: u64,
    pub workload: WorkloadSpec,
    pub faults: Vec<TimedFault>,
    /// Name servers (0: none, clients follow leader hints; see `nameserver`).
    #[serde(default)]
    pub name_servers: u32,
    /// Brokers register with every name server this often (and at once on a role change).
    #[serde(default)]
    pub register_interval_us: u64,
    /// A name server drops a broker it has not heard from for this long.
    #[serde(default)]
    pub broker_expiry_us: u64,
    /// How DLedger replicas answer pulls (`ReadMode::UnsafeRead`: consumers pull from every
    /// replica in turn).
    #[serde(default)]
    pub read_mode: ReadMode,
    /// Test-only: a deliberately broken broker.
    #[serde(default)]
    pub broken: Broken,
}

impl WorldSpec {
    /// Refuses what a valid scenario may ask for but this build does not simulate.
    /// Every replication mode is simulated now; kept as the place for future refusals.
    pub fn check_supported(scenario: &Scenario) -> Result<(), UnsupportedScenario> {
        match scenario.cluster.replication {
            Replication::DLedger | Replication::SyncMasterSlave | Replication::AsyncMasterSlave => {
                Ok(())
            }
        }
    }

    /// The master–slave replica config of this world (None in DLedger mode). Flush is
    /// ASYNC_FLUSH, RocketMQ's default `flushDiskType` (scenarios have no flush field yet).
    pub fn master_slave_config(&self) -> Option<master_slave::Config> {
        let replication = match self.replication {
            Replication::DLedger => return None,
            Replication::SyncMasterSlave => master_slave::ReplicationMode::Sync,
            Replication::AsyncMasterSlave => master_slave::ReplicationMode::Async,
        };
        Some(master_slave::Config::with_replication(replication))
    }

    pub fn is_master_slave(&self) -> bool {
        self.replication != Replication::DLedger
    }

    /// The world a (validated, supported: `check_supported`) scenario describes.
    pub fn from_scenario(scenario: &Scenario) -> WorldSpec {
        let cluster = &scenario.cluster;
        let raft = cluster.core_raft_config();
        let queues = scenario
            .workload
            .topics
            .iter()
            .flat_map(|topic| {
                (0..topic.queues).map(move |queue_id| {
                    (
                        queue_id % cluster.groups,
                        QueueKey {
                            topic: topic.name.clone(),
                            queue_id,
                        },
                    )
                })
            })
            .collect();
        let duration_us = scenario.duration.as_ms() * 1_000;
        let first_fault_us = scenario
            .faults
            .first()
            .map_or(duration_us, |f| f.at.as_ms() * 1_000);
        // Clients start once the first leader is likely elected, and before the first fault.
        let warmup_us = ((raft.election_timeout_ms_base() + raft.vote_interval_ms_max + 1_000)
            * 1_000)
            .min(first_fault_us);
        let send_timeout_us = scenario.workload.send_timeout.as_ms() * 1_000;
        WorldSpec {
            replication: cluster.replication,
            groups: cluster.groups,
            replicas: cluster.replicas,
            latency_us_min: cluster.network.latency.min.as_ms() * 1_000,
            latency_us_max: cluster.network.latency.max.as_ms() * 1_000,
            loss_ppm: cluster.network.loss_ppm,
            fsync_us: cluster.disk.fsync.as_ms() * 1_000,
            warmup_us,
            duration_us,
            settle_max_us: scenario.settle_max.as_ms() * 1_000,
            workload: WorkloadSpec {
                producers: scenario.workload.producers,
                send_rate_per_s: scenario.workload.send_rate,
                queues,
                send_timeout_us,
                retry_backoff_us: 50_000,
                // RocketMQ's latency fault tolerance keeps a broker that timed out out of
                // rotation for seconds; shorter, and followers' stale leader hints send
                // clients back to a dead leader before the election ends.
                suspect_us: SUSPECT_US_DEFAULT.max(send_timeout_us),
                // Half that: a group comes back into rotation while its replica that timed out
                // is still avoided, so a client without name servers asks another replica of
                // the group (and learns the new leader from its hint), not the dead one again.
                group_avoid_us: SUSPECT_US_DEFAULT.max(send_timeout_us) / 2,
                consumers: scenario.workload.consumers,
                consumer_poll_us: 100_000,
                route_refresh_us: scenario.workload.route_refresh.as_ms() * 1_000,
            },
            faults: scenario.faults.clone(),
            name_servers: cluster.name_servers,
            register_interval_us: cluster.register_interval.as_ms() * 1_000,
            broker_expiry_us: cluster.broker_expiry.as_ms() * 1_000,
            read_mode: cluster.read_mode,
            broken: cluster.broken,
            raft,
        }
    }

    pub fn replica_count(&self) -> u32 {
        self.groups * self.replicas
    }
    pub fn group_of(&self, node: NodeId) -> u32 {
        node.0 / self.replicas
    }
    pub fn members(&self, group: u32) -> Vec<NodeId> {
        (0..self.replicas)
            .map(|r| NodeId(group * self.replicas + r))
            .collect()
    }
}

/// State kept outside the simulated nodes: it survives kills.
pub struct Shared {
    time: madsim::time::TimeHandle,
    pub disks: Vec<Disk>,
    pub clocks: Vec<NodeClock>,
    pub incarnations: Vec<u32>,
    pub down: Vec<bool>,
    pub paused: Vec<bool>,
    pub observer: Observer,
    pub history: Vec<Operation>,
    pub recovery_failures: Vec<(u64, NodeId, String)>,
    /// Per replica: the running incarnation's event queue (None while down).
    pub inboxes: Vec<Option<futures::channel::mpsc::UnboundedSender<replica::Event>>>,
    /// Every route fetch of every client, in completion order (only with name servers).
    pub route_fetches: Vec<nameserver::RouteFetch>,
    /// Per queue (history name): the offset its consumer pulls next.
    pub consumer_offsets: BTreeMap<String, u64>,
}

impl Shared {
    pub fn now_us(&self) -> u64 {
        self.time.elapsed().as_micros() as u64
    }

    /// The node's local clock in ms (never negative).
    pub fn local_ms(&self, node: NodeId) -> u64 {
        let local_us = self.clocks[node.0 as usize].local_us(self.now_us());
        u64::try_from(local_us.max(0)).expect("invariant: clamped to >= 0") / 1_000
    }
}

pub struct World {
    pub spec: Arc<WorldSpec>,
    pub seed: u64,
    shared: Mutex<Shared>,
    time: madsim::time::TimeHandle,
    workload_stopped: AtomicBool,
    /// Set once consumers have drained every queue (or ran out of time): they stop pulling.
    consumers_stopped: AtomicBool,
}

impl World {
    /// Safety violations a replica recorded about itself (DLedger fidelity), as findings.
    pub fn record_node_violations(
        &self,
        node: NodeId,
        violations: Vec<broker_core::raft::SafetyViolation>,
    ) {
        let mut shared = self.lock();
        let now_us = shared.now_us();
        for violation in violations {
            tracing::info!(%node, ?violation, "replica broke a Raft safety property");
            shared.observer.violations.push((
                now_us,
                observe::InvariantViolation::ReportedByNode { node, violation },
            ));
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared
            .lock()
            .expect("invariant: the simulation is single-threaded, no lock is poisoned")
    }

    pub fn now_us(&self) -> u64 {
        self.time.elapsed().as_micros() as u64
    }

    pub fn consumers_stopped(&self) -> bool {
        self.consumers_stopped.load(Ordering::Relaxed)
    }

    /// A consumer will next pull `queue` (history name) from `offset`.
    pub fn record_consumer_offset(&self, queue: String, offset: u64) {
        self.lock().consumer_offsets.insert(queue, offset);
    }

    /// Every queue's consumer has pulled up to the end of the queue as its group's leader
    /// applied it (with one leader per group; no leader: not drained).
    fn consumers_drained(&self) -> bool {
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
            for entry in &shared.observer.views[leader.0 as usize].applied {
                if let Some(message) = &entry.message {
                    let name = workload::history_queue_name(group, &message.queue);
                    *applied.entry(name).or_insert(0) += 1;
                }
            }
        }
        self.spec.workload.queues.iter().all(|(group, queue)| {
            let name = workload::history_queue_name(*group, queue);
            let end = applied.get(&name).copied().unwrap_or(0);
            shared.consumer_offsets.get(&name).copied().unwrap_or(0) >= end
        })
    }

    pub fn workload_stopped(&self) -> bool {
        self.workload_stopped.load(Ordering::Relaxed)
    }

    pub fn record_route_fetch(&self, fetch: nameserver::RouteFetch) {
        tracing::debug!(?fetch, "route fetch");
        self.lock().route_fetches.push(fetch);
    }

    pub fn record_operation(&self, operation: Operation) {
        let mut shared = self.lock();
        let line = serde_json::to_vec(&operation).expect("invariant: operations serialise");
        shared.observer.trace_extra(&line);
        shared.history.push(operation);
    }

    /// Hands an operator command to a running replica (dropped when it is down).
    pub fn admin(&self, node: NodeId, command: AdminCommand) {
        if let Some(inbox) = &self.lock().inboxes[node.0 as usize] {
            let _ = inbox.unbounded_send(replica::Event::Admin(command));
        }
    }

    /// Builds the broker of a (re)starting replica from its disk; registers its event queue.
    pub fn start_replica(
        &self,
        node: NodeId,
        inbox: futures::channel::mpsc::UnboundedSender<replica::Event>,
    ) -> Option<Box<dyn ReplicaNode>> {
        let mut shared = self.lock();
        shared.inboxes[node.0 as usize] = Some(inbox);
        let now_us = shared.now_us();
        let index = node.0 as usize;
        shared.incarnations[index] += 1;
        let incarnation = shared.incarnations[index];
        let recovered = shared.disks[index].recover();
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
                let mut broker = broker.with_read_mode(self.spec.read_mode.to_core());
                broker.unsafe_ack_before_commit = self.spec.broken == Broken::AckBeforeCommit;
                Box::new(broker) as Box<dyn ReplicaNode>
            })
            .map_err(|error| error.to_string()),
            Replication::SyncMasterSlave | Replication::AsyncMasterSlave => MasterSlaveBroker::new(
                self.spec
                    .master_slave_config()
                    .expect("invariant: a master-slave replication mode"),
                node,
                self.spec.members(group),
                recovered,
            )
            .map(|broker| Box::new(broker) as Box<dyn ReplicaNode>)
            .map_err(|error| error.to_string()),
        };
        match built {
            Ok(replica) => {
                tracing::debug!(%node, incarnation, "replica started");
                shared
                    .observer
                    .on_start(now_us, node, replica.log(), incarnation > 1);
                Some(replica)
            }
            Err(error) => {
                shared.recovery_failures.push((now_us, node, error));
                None
            }
        }
    }

    /// Records a step's writes and observations; returns the syncs to complete later as
    /// (sync id, covered write, completion time).
    pub fn after_step(
        &self,
        node: NodeId,
        replica: &dyn ReplicaNode,
        effects: &[BrokerEffect],
    ) -> Vec<(SyncId, Option<u64>, u64)> {
        let mut shared = self.lock();
        let now_us = shared.now_us();
        let mut syncs = Vec::new();
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
}

/// SplitMix64 over the run seed and two more numbers: independent streams per node/incarnation.
pub fn mix_seed(seed: u64, a: u64, b: u64) -> u64 {
    let mut z =
        seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What one seed produced, before checking.
#[derive(Clone, Debug)]
pub struct SeedRun {
    pub seed: u64,
    pub history: Vec<Operation>,
    pub observations: Vec<Observation>,
    pub violations: Vec<(u64, InvariantViolation)>,
    pub recovery_failures: Vec<(u64, NodeId, String)>,
    pub failover_faults: Vec<FailoverFault>,
    /// Master–slave: masters that restarted with fewer entries than they had acknowledged.
    pub lost_writes: Vec<observe::LostWrites>,
    /// Per group: µs from heal to convergence, or None when it did not converge in time.
    pub settle_us: Vec<Option<u64>>,
    /// Per replica: the applied (committed) log at the end.
    pub final_logs: Vec<Vec<observe::AppliedEntry>>,
    pub trace_hash: u64,
    pub end_us: u64,
    /// The faults a `Random` swarm drew for this seed, in time order.
    pub swarm: Vec<nemesis::swarm::SwarmDraw>,
    /// Every route fetch of every client (only with name servers).
    pub route_fetches: Vec<nameserver::RouteFetch>,
}

/// Runs one seed in a fresh madsim runtime on the current thread (call on a fresh OS thread).
pub fn run_seed(spec: Arc<WorldSpec>, seed: u64) -> SeedRun {
    let mut config = madsim::Config::default();
    config.net.send_latency = Duration::from_micros(spec.latency_us_min)
        ..Duration::from_micros(spec.latency_us_max.max(spec.latency_us_min + 1));
    config.net.packet_loss_rate = f64::from(spec.loss_ppm) / 1_000_000.0;
    let runtime = madsim::runtime::Runtime::with_seed_and_config(seed, config);
    runtime.block_on(supervise(spec, seed))
}

async fn supervise(spec: Arc<WorldSpec>, seed: u64) -> SeedRun {
    let handle = madsim::runtime::Handle::current();
    let time = madsim::time::TimeHandle::current();
    nemesis::network::reset();
    let replicas = spec.replica_count();
    let shared = Shared {
        time: time.clone(),
        disks: (0..replicas).map(|_| Disk::new(spec.fsync_us)).collect(),
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
        inboxes: vec![None; replicas as usize],
        route_fetches: Vec::new(),
        consumer_offsets: BTreeMap::new(),
    };
    let world = Arc::new(World {
        spec: spec.clone(),
        seed,
        shared: Mutex::new(shared),
        time,
        workload_stopped: AtomicBool::new(false),
        consumers_stopped: AtomicBool::new(false),
    });

    let replica_nodes: Vec<madsim::runtime::NodeHandle> = (0..replicas)
        .map(|n| {
            let world = world.clone();
            let node = NodeId(n);
            handle
                .create_node()
                .name(format!("replica-{n}"))
                .ip(wire::replica_addr(node).ip())
                .init(move || replica::run_replica(world.clone(), node))
                .build()
        })
        .collect();
    let mut all_nodes: Vec<madsim::task::NodeId> =
        replica_nodes.iter().map(|node| node.id()).collect();
    for index in 0..spec.name_servers {
        let world = world.clone();
        let node = handle
            .create_node()
            .name(format!("name-server-{index}"))
            .ip(wire::name_server_addr(index).ip())
            .init(move || nameserver::run_name_server(world.clone(), index))
            .build();
        all_nodes.push(node.id());
    }
    for c in 0..spec.workload.producers {
        let world = world.clone();
        let client = ClientId(c);
        let node = handle
            .create_node()
            .name(format!("producer-{c}"))
            .ip(client_ip(client))
            .init(move || workload::run_producer(world.clone(), client))
            .build();
        all_nodes.push(node.id());
    }
    // Consumers' client ids (and addresses) follow the producers'.
    for index in 0..spec.workload.consumers {
        let world = world.clone();
        let client = ClientId(spec.workload.producers + index);
        let node = handle
            .create_node()
            .name(format!("consumer-{index}"))
            .ip(client_ip(client))
            .init(move || workload::run_consumer(world.clone(), client, index))
            .build();
        all_nodes.push(node.id());
    }

    let mut nemesis = nemesis::Nemesis::new(world.clone(), handle.clone(), replica_nodes);
    let mut timeline = nemesis::swarm::Timeline::new(&spec, seed);
    for (index, drawn) in timeline.drawn.iter().enumerate() {
        tracing::info!(
            index,
            at_ms = drawn.at_us / 1_000,
            for_ms = drawn.for_us / 1_000,
            fault = ?drawn.fault,
            "swarm schedule"
        );
    }
    let swarm = timeline.drawn.clone();
    while let Some(step) = timeline.pop_before(spec.duration_us) {
        sleep_until(&world, step.at_us).await;
        let nodes = nemesis.apply(&step.fault);
        if let Some(undo_after_us) = step.undo_after_us {
            for fault in nemesis::swarm::undo(&spec, &step.fault, &nodes) {
                timeline.push(nemesis::swarm::Step {
                    at_us: step.at_us + undo_after_us,
                    fault,
                    undo_after_us: None,
                });
            }
        }
    }
    sleep_until(&world, spec.duration_us).await;
    world.workload_stopped.store(true, Ordering::Relaxed);
    let heal_at_us = world.now_us();
    nemesis.heal_all();
    let settle_us = settle(&world, heal_at_us).await;
    // Let the last in-flight sends time out so the history is complete.
    sleep_until(&world, heal_at_us + spec.workload.send_timeout_us).await;
    if spec.workload.consumers > 0 {
        // Consumers read on until every queue is drained (every acknowledged message can be
        // consumed), within the settle bound; then their last pulls get one send timeout.
        let drain_until_us = heal_at_us + spec.settle_max_us.max(spec.workload.send_timeout_us);
        while !world.consumers_drained() && world.now_us() < drain_until_us {
            madsim::time::sleep(Duration::from_millis(50)).await;
        }
        world.consumers_stopped.store(true, Ordering::Relaxed);
        let stopped_at_us = world.now_us();
        sleep_until(&world, stopped_at_us + spec.workload.send_timeout_us).await;
    }

    let end_us = world.now_us();
    let failover_faults = nemesis.into_failover_faults();
    let run = finish(&world, seed, failover_faults, settle_us, end_us, swarm);
    // Killed nodes' tasks are dropped when next polled: kill them all, then let the executor
    // run once so the tasks woken by the closed inboxes and sockets go.
    for node in all_nodes {
        handle.kill(node);
    }
    madsim::time::sleep(Duration::from_millis(1)).await;
    run
}

/// Takes the seed's results out of the world, then drops the world's heavy state: tasks still
/// pending at the end (receive loops, waiting clients) hold `Arc<World>` in reference cycles
/// through their channels, and madsim frees a task only when it is polled again or its last
/// waker drops. Without this every seed leaked its disks, logs and observations (35-55 MB a
/// seed; a 500-seed swarm ran out of 24 GiB).
fn finish(
    world: &World,
    seed: u64,
    failover_faults: Vec<FailoverFault>,
    settle_us: Vec<Option<u64>>,
    end_us: u64,
    swarm: Vec<nemesis::swarm::SwarmDraw>,
) -> SeedRun {
    let mut shared = world.lock();
    let final_logs = shared
        .observer
        .views
        .iter()
        .map(|view| view.applied.clone())
        .collect();
    let mut history = std::mem::take(&mut shared.history);
    history.sort_by_key(|op| (op.invoke_us, op.client));
    let run = SeedRun {
        seed,
        history,
        observations: std::mem::take(&mut shared.observer.events),
        violations: std::mem::take(&mut shared.observer.violations),
        recovery_failures: std::mem::take(&mut shared.recovery_failures),
        failover_faults,
        lost_writes: std::mem::take(&mut shared.observer.lost_writes),
        settle_us,
        final_logs,
        trace_hash: shared.observer.trace_hash(),
        end_us,
        swarm,
        route_fetches: std::mem::take(&mut shared.route_fetches),
    };
    shared.disks.clear();
    shared.inboxes.clear();
    shared.observer = Observer::new(0, 0);
    run
}

fn client_ip(client: ClientId) -> IpAddr {
    let c = u8::try_from(client.0 + 1).expect("invariant: validated scenarios have < 255 clients");
    IpAddr::V4(Ipv4Addr::new(10, 0, 1, c))
}

async fn sleep_until(world: &World, at_us: u64) {
    let now = world.now_us();
    if at_us > now {
        madsim::time::sleep(Duration::from_micros(at_us - now)).await;
    }
}

/// Polls until every group has one leader and every replica has applied the leader's whole log.
async fn settle(world: &World, heal_at_us: u64) -> Vec<Option<u64>> {
    let spec = &world.spec;
    let mut settled: Vec<Option<u64>> = vec![None; spec.groups as usize];
    // Per group: (leader, term, commit index) seen at the previous poll.
    let mut previous: Vec<Option<(NodeId, Term, LogIndex)>> = vec![None; spec.groups as usize];
    let poll = Duration::from_millis(50);
    loop {
        let now = world.now_us();
        {
            let shared = world.lock();
            for group in 0..spec.groups {
                let slot = group as usize;
                if settled[slot].is_none()
                    && (group_converged(&shared, spec, group)
                        || caught_up_with(&shared, spec, group, previous[slot]))
                {
                    settled[slot] = Some(now - heal_at_us);
                }
                previous[slot] = sole_leader(&shared, spec, group)
                    .map(|leader| (leader.id, leader.term, leader.commit_index));
            }
        }
        if settled.iter().all(Option::is_some) || now >= heal_at_us + spec.settle_max_us {
            return settled;
        }
        madsim::time::sleep(poll).await;
    }
}

/// The group's leader, if exactly one replica leads.
fn sole_leader(shared: &Shared, spec: &WorldSpec, group: u32) -> Option<raft::Status> {
    let leaders: Vec<raft::Status> = spec
        .members(group)
        .iter()
        .filter_map(|node| shared.observer.views[node.0 as usize].status.clone())
        .filter(|status| status.role == Role::Leader)
        .collect();
    match leaders.as_slice() {
        [leader] => Some(leader.clone()),
        _ => None,
    }
}

/// A group whose log never stops growing (reads through the log, `RaftLogRead`, keep
/// appending) is settled when the same sole leader still leads and every replica, following
/// it, has applied at least what that leader had committed one poll earlier.
fn caught_up_with(
    shared: &Shared,
    spec: &WorldSpec,
    group: u32,
    previous: Option<(NodeId, Term, LogIndex)>,
) -> bool {
    let (Some((leader_id, term, commit)), Some(leader)) =
        (previous, sole_leader(shared, spec, group))
    else {
        return false;
    };
    leader.id == leader_id
        && leader.term == term
        && spec.members(group).iter().all(|node| {
            shared.observer.views[node.0 as usize]
                .status
                .as_ref()
                .is_some_and(|s| {
                    s.term == term && s.applied_index >= commit && s.leader == Some(leader_id)
                })
        })
}

fn group_converged(shared: &Shared, spec: &WorldSpec, group: u32) -> bool {
    let Some(leader) = sole_leader(shared, spec, group) else {
        return false;
    };
    leader.commit_index == leader.last_index
        && spec.members(group).iter().all(|node| {
            shared.observer.views[node.0 as usize]
                .status
                .as_ref()
                .is_some_and(|s| {
                    s.term == leader.term
                        && s.applied_index == leader.last_index
                        && s.leader == Some(leader.id)
                })
        })
}
