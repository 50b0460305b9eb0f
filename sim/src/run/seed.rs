//! One seed, from start to settled: build the world, start the clients, play the fault
//! timeline through the nemesis, stop the workload, heal, let the cluster settle, let the
//! consumers drain, and collect what happened (`SeedRun`).

use super::settle::settle;
use super::spec::RunSpec;
use crate::history::Operation;
use crate::ids::QueueId;
use crate::metrics::{self, FailoverFault};
use crate::nemesis::{self, swarm};
use crate::workload::{self, WorkloadSpec};
use crate::world::nameserver::RouteFetch;
use crate::world::observe::{self, InvariantViolation, Observation};
use crate::world::World;
use broker_core::broker::ClientId;
use broker_core::NodeId;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

/// What one seed produced, before checking.
#[derive(Clone, Debug)]
pub struct SeedRun {
    pub seed: u64,
    pub history: Vec<Operation>,
    pub observations: Vec<Observation>,
    pub violations: Vec<(u64, InvariantViolation)>,
    pub recovery_failures: Vec<(u64, NodeId, String)>,
    /// Disk faults done (issue 15): time, node, what was damaged.
    pub damages: Vec<(u64, NodeId, crate::world::damage::Damaged)>,
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
    pub swarm: Vec<super::spec::SwarmDrawReport>,
    /// Every route fetch of every client (only with name servers).
    pub route_fetches: Vec<RouteFetch>,
    /// Every fault the nemesis played in the fault phase, in the order played (fixed ones,
    /// drawn ones and their undos), in the scenario's vocabulary: this seed's schedule made
    /// explicit (`sim shrink` starts from it).
    pub played: Vec<crate::scenario::TimedFault>,
    /// How often each event trigger fired (`world::triggers`).
    pub triggers: std::collections::BTreeMap<String, u32>,
    /// Raft event coverage (`world::coverage`).
    pub events: std::collections::BTreeMap<String, u32>,
    /// Replica-to-replica datagrams the network dropped, per addressee (`run::elections`).
    pub peer_drops: crate::world::drops::PeerDrops,
}

/// Runs one seed in a fresh madsim runtime on the current thread (call on a fresh OS thread).
pub fn run_seed(spec: Arc<RunSpec>, seed: u64) -> SeedRun {
    // The world's own post carries every datagram with the scenario's latency and loss
    // (`world::network`); madsim's network is not used.
    let config = madsim::Config::default();
    let runtime = madsim::runtime::Runtime::with_seed_and_config(seed, config);
    runtime.block_on(supervise(spec, seed))
}

async fn supervise(spec: Arc<RunSpec>, seed: u64) -> SeedRun {
    let handle = madsim::runtime::Handle::current();
    let world = World::create(spec.world.clone(), seed);
    let clients = start_clients(&world, &spec.workload, &handle);

    let mut nemesis = nemesis::Nemesis::new(world.clone());
    let mut timeline = swarm::Timeline::new(&spec.world, &spec.faults, seed);
    for (index, drawn) in timeline.drawn.iter().enumerate() {
        tracing::info!(
            index,
            at_ms = drawn.at.as_ms(),
            for_ms = drawn.length.as_ms(),
            fault = ?drawn.fault,
            "swarm schedule"
        );
    }
    let swarm = timeline.drawn.clone();
    let mut played = Vec::new();
    let mut cuts = swarm::CutsInForce::default();
    while let Some(step) = timeline.pop_before(spec.duration) {
        sleep_until(&world, step.at.as_us()).await;
        if !cuts.carry_out(&step) {
            continue;
        }
        played.push(super::spec::scenario_timed_fault(step.at, &step.fault));
        let nodes = nemesis.apply(&step.fault);
        if let Some(undo_after) = step.undo_after {
            let undos = swarm::undo(&spec.world, &step.fault, &nodes);
            cuts.fired(&step, &undos);
            for fault in undos {
                timeline.push(swarm::Step {
                    at: step.at + undo_after,
                    fault,
                    undo_after: None,
                    cuts_accumulate: step.cuts_accumulate,
                });
            }
        }
    }
    sleep_until(&world, spec.duration.as_us()).await;
    world.stop_workload();
    let heal_at_us = world.now_us();
    nemesis.heal_all();
    let settle_us = settle(&world, heal_at_us, spec.settle_max.as_us()).await;
    // Let the last in-flight sends time out so the history is complete.
    let send_timeout_us = spec.workload.send_timeout_us;
    sleep_until(&world, heal_at_us + send_timeout_us).await;
    if spec.workload.consumers > 0 {
        drain_consumers(&world, &spec, heal_at_us).await;
    }

    let end_us = world.now_us();
    let results = world.take_results();
    let run = SeedRun {
        seed,
        history: results.history,
        observations: results.observations,
        violations: results.violations,
        recovery_failures: results.recovery_failures,
        damages: results.damages,
        failover_faults: metrics::failover_faults(
            &results.leader_snapshots,
            spec.world.is_master_slave(),
        ),
        lost_writes: results.lost_writes,
        settle_us,
        final_logs: results.final_logs,
        trace_hash: results.trace_hash,
        end_us,
        swarm: super::spec::report_swarm(&swarm),
        route_fetches: results.route_fetches,
        played,
        triggers: results.triggers_fired,
        events: results.events,
        peer_drops: results.peer_drops,
    };
    // Killed nodes' tasks are dropped when next polled: kill them all, then let the executor
    // run once so the tasks woken by the closed inboxes and sockets go.
    world.kill_all_nodes();
    for node in clients {
        handle.kill(node);
    }
    madsim::time::sleep(Duration::from_millis(1)).await;
    run
}

/// Creates the producer nodes, then the consumer nodes (their client ids, and addresses,
/// follow the producers'); returns their madsim ids.
fn start_clients(
    world: &Arc<World>,
    workload: &Arc<WorkloadSpec>,
    handle: &madsim::runtime::Handle,
) -> Vec<madsim::task::NodeId> {
    let mut nodes = Vec::new();
    for c in 0..workload.producers {
        // Weak: see `World::create`.
        let (world, workload) = (Arc::downgrade(world), workload.clone());
        let client = ClientId(c);
        let node = handle
            .create_node()
            .name(format!("producer-{c}"))
            .ip(client_ip(client))
            .init(move || workload::run_producer(World::upgrade(&world), workload.clone(), client))
            .build();
        nodes.push(node.id());
    }
    for index in 0..workload.consumers {
        let (world, workload) = (Arc::downgrade(world), workload.clone());
        let client = ClientId(workload.producers + index);
        let node = handle
            .create_node()
            .name(format!("consumer-{index}"))
            .ip(client_ip(client))
            .init(move || {
                workload::run_consumer(World::upgrade(&world), workload.clone(), client, index)
            })
            .build();
        nodes.push(node.id());
    }
    nodes
}

/// Consumers read on until every queue is drained (every acknowledged message can be
/// consumed), within the settle bound; then their last pulls get one send timeout.
async fn drain_consumers(world: &World, spec: &RunSpec, heal_at_us: u64) {
    let queues: Vec<String> = spec
        .workload
        .queues
        .iter()
        .map(|(group, queue)| QueueId::new(*group, queue.clone()).to_string())
        .collect();
    let drain_until_us = heal_at_us + spec.settle_max.as_us().max(spec.workload.send_timeout_us);
    while !world.consumers_drained(&queues) && world.now_us() < drain_until_us {
        madsim::time::sleep(Duration::from_millis(50)).await;
    }
    world.stop_consumers();
    let stopped_at_us = world.now_us();
    sleep_until(world, stopped_at_us + spec.workload.send_timeout_us).await;
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
