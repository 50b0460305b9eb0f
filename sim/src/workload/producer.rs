//! Producers: open-loop sends at a fixed rate, and the client connection producers and
//! consumers share: leader guesses or routes, waiting requests, avoided replicas and groups.
//!
//! Without name servers a client finds leaders by itself: it guesses, follows NOT_LEADER
//! hints, and avoids a replica that timed out for `suspect_us`. With name servers it sends
//! where its route says (each group's master, broker id 0) and never follows hints: it
//! fetches routes at start, every `route_refresh_us` (its own phase, drawn from the seed:
//! clients start at different times), when a broker refuses with NOT_LEADER, and when its
//! route names no master for a group it must use. A timeout fetches nothing (RocketMQ's
//! producer only learns a new master from its periodic poll).
//!
//! A message is sent in up to `SEND_ATTEMPTS_MAX` attempts. Each attempt is one history
//! operation on one queue, with its own body (`p3-17`, then `p3-17#1`, `p3-17#2`) and its own
//! `send_timeout`, retrying within its group after definite refusals until then. With more
//! than one group, a message whose attempt was not acknowledged is sent again on a queue of
//! another group, and a group whose send timed out is avoided for `group_avoid_us` (RocketMQ's
//! `retryTimesWhenSendFailed` and `sendLatencyFaultEnable`). With one group an attempt is the
//! whole message, as before.

use super::{attempt_body, history_queue_name, WorkloadSpec};
use crate::history::{OpInput, OpOutcome, Operation};
use crate::world::nameserver::{masters_of, RefreshReason, RouteFetch};
use crate::world::replica::{send_datagram, spawn_receivers};
use crate::world::wire::{client_addr, name_server_addr, replica_addr, Wire};
use crate::world::{mix_seed, World};
use broker_core::broker::{ClientId, ClientRequest, ClientResponse};
use broker_core::NodeId;
use futures::channel::mpsc;
use futures::channel::oneshot;
use futures::StreamExt;
use madsim::net::Endpoint;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Attempts per message (RocketMQ: `retryTimesWhenSendFailed` 2, plus the first).
pub const SEND_ATTEMPTS_MAX: u32 = 3;
/// A route request with no answer by then is given up, and the next name server is asked
/// next time (RocketMQ's `getTopicRouteInfoFromNameServer` waits 3 s).
pub const ROUTE_REQUEST_TIMEOUT_US: u64 = 3_000_000;

/// A route answer: per group, broker id to replica.
type Brokers = Vec<BTreeMap<u64, NodeId>>;

/// What one producer believes about the cluster, shared by its in-flight sends.
struct ProducerState {
    /// Per group: the replica believed to lead it (an index into the group's replicas).
    leader_guess: Vec<u32>,
    /// Per replica: avoid it until this time (µs).
    suspect_until_us: Vec<u64>,
    /// Per group: avoid its queues until this time (µs), after a send to it timed out.
    group_avoided_until_us: Vec<u64>,
    /// With name servers: per group, the master the latest route named.
    route: Vec<Option<NodeId>>,
    waiting: BTreeMap<u64, oneshot::Sender<ClientResponse>>,
    route_waiting: BTreeMap<u64, oneshot::Sender<Brokers>>,
    next_request_id: u64,
}

/// One client's connection to the cluster: its address, leader guesses and waiting requests.
/// Producers send through it; consumers (`consumer.rs`) pull and commit offsets through it.
pub(super) struct Producer {
    pub(super) world: Arc<World>,
    pub(super) id: ClientId,
    pub(super) endpoint: Arc<Endpoint>,
    pub(super) workload: Arc<WorkloadSpec>,
    state: Mutex<ProducerState>,
    /// With name servers: asks the client's route refresher for a fetch now.
    refresh: Option<mpsc::UnboundedSender<RefreshReason>>,
}

impl Producer {
    fn state(&self) -> MutexGuard<'_, ProducerState> {
        self.state
            .lock()
            .expect("invariant: the simulation is single-threaded, no lock is poisoned")
    }
}

/// Binds client `client`'s address and starts routing the responses it receives.
pub(super) async fn connect(
    world: Arc<World>,
    workload: Arc<WorkloadSpec>,
    client: ClientId,
) -> Arc<Producer> {
    let spec = world.spec.clone();
    let endpoint = Endpoint::bind(client_addr(client))
        .await
        .expect("invariant: each client has its own address");
    let replicas_total = (spec.groups * spec.replicas) as usize;
    let (refresh, refresh_requests) = if spec.name_servers > 0 {
        let (tx, rx) = mpsc::unbounded();
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let producer = Arc::new(Producer {
        world,
        id: client,
        endpoint: Arc::new(endpoint),
        workload,
        state: Mutex::new(ProducerState {
            leader_guess: vec![0; spec.groups as usize],
            suspect_until_us: vec![0; replicas_total],
            group_avoided_until_us: vec![0; spec.groups as usize],
            route: vec![None; spec.groups as usize],
            waiting: BTreeMap::new(),
            route_waiting: BTreeMap::new(),
            next_request_id: 0,
        }),
        refresh,
    });
    spawn_response_router(producer.clone());
    if let Some(requests) = refresh_requests {
        let producer = producer.clone();
        madsim::task::spawn(async move { refresh_routes(producer, requests).await });
    }
    producer
}

/// Where in its `period_us` a client's route poll timer fires: its own phase, drawn from the
/// run seed and the client (clients start at different times), so the first periodic fetch
/// comes this long after the client starts.
pub fn route_poll_phase_us(seed: u64, client: ClientId, period_us: u64) -> u64 {
    let mut rng = ChaCha8Rng::seed_from_u64(mix_seed(seed, 0x524F_5554_4553, u64::from(client.0)));
    rng.gen_range(0..period_us.max(1))
}

/// The client's route refresher: a fetch at start, then one per period (fixed rate, from the
/// client's phase) and one per burst of requests from sends and pulls.
async fn refresh_routes(
    client: Arc<Producer>,
    mut requests: mpsc::UnboundedReceiver<RefreshReason>,
) {
    let spec = client.world.spec.clone();
    let period_us = client.workload.route_refresh_us.max(1);
    let mut next_periodic_us =
        client.world.now_us() + route_poll_phase_us(client.world.seed, client.id, period_us);
    let mut name_server = client.id.0 % spec.name_servers.max(1);
    let mut reason = RefreshReason::Start;
    loop {
        client.fetch_route(&mut name_server, reason).await;
        let wait_us = next_periodic_us.saturating_sub(client.world.now_us());
        reason = match madsim::time::timeout(Duration::from_micros(wait_us), requests.next()).await
        {
            Ok(Some(reason)) => {
                // One fetch answers every request made so far.
                while requests.try_recv().is_ok() {}
                reason
            }
            Ok(None) => return,
            Err(_elapsed) => {
                while next_periodic_us <= client.world.now_us() {
                    next_periodic_us += period_us;
                }
                RefreshReason::Periodic
            }
        };
    }
}

/// Runs producer `client` for the whole fault phase.
pub async fn run_producer(world: Arc<World>, workload: Arc<WorkloadSpec>, client: ClientId) {
    let spec = workload.clone();
    let producer = connect(world.clone(), workload, client).await;

    let interval_us = 1_000_000 / u64::from(spec.send_rate_per_s.max(1));
    // Producers start staggered so their sends interleave.
    let phase_us = interval_us * u64::from(client.0) / u64::from(spec.producers.max(1));
    let targets = spec.queues.len();
    let mut sequence = 0u64;
    let mut in_flight = Vec::new();
    loop {
        let at_us = spec.warmup_us + phase_us + sequence * interval_us;
        if at_us >= spec.duration_us || world.workload_stopped() {
            break;
        }
        madsim::time::sleep(Duration::from_micros(at_us.saturating_sub(world.now_us()))).await;
        let slot = (sequence as usize + client.0 as usize) % targets;
        let msg_id = format!("p{}-{}", client.0, sequence);
        let producer = producer.clone();
        in_flight.push(madsim::task::spawn(async move {
            producer.send_message(slot, msg_id).await;
        }));
        sequence += 1;
    }
    // A node whose main task returns exits, and its other tasks die with it: wait for every
    // send to be recorded first.
    for send in in_flight {
        send.await.expect("invariant: a send task does not panic");
    }
}

fn spawn_response_router(producer: Arc<Producer>) {
    let (tx, mut responses) = mpsc::unbounded::<Wire>();
    spawn_receivers(producer.endpoint.clone(), tx, |wire| wire);
    madsim::task::spawn(async move {
        while let Some(wire) = responses.next().await {
            match wire {
                Wire::Response {
                    request_id,
                    response,
                } => {
                    if let Some(waiter) = producer.state().waiting.remove(&request_id) {
                        let _ = waiter.send(response);
                    }
                }
                Wire::Route {
                    request_id,
                    brokers,
                } => {
                    if let Some(waiter) = producer.state().route_waiting.remove(&request_id) {
                        let _ = waiter.send(brokers);
                    }
                }
                Wire::Peer { .. }
                | Wire::Request { .. }
                | Wire::Register { .. }
                | Wire::RouteRequest { .. } => {}
            }
        }
    });
}

impl Producer {
    /// One message: attempts, each recorded, until one is acknowledged, the attempts run out,
    /// or (with one group) after the first.
    async fn send_message(&self, slot: usize, msg_id: String) {
        let spec = &self.world.spec;
        let mut slot = self.writable_slot(slot);
        for attempt in 0..SEND_ATTEMPTS_MAX {
            let (group, queue) = self.workload.queues[slot].clone();
            let operation = self
                .send(group, queue, attempt_body(&msg_id, attempt))
                .await;
            let acknowledged = matches!(operation.outcome, OpOutcome::Sent { .. });
            self.world.record_operation(operation);
            // No new attempt once the workload stopped: the run collects the history one send
            // timeout after that.
            if acknowledged || spec.groups == 1 || self.world.workload_stopped() {
                return;
            }
            slot = self.retry_slot(slot, group);
        }
    }

    /// May a message go to `group` now: not avoided, and (with name servers) with a master
    /// in the route.
    fn writable(&self, group: u32) -> bool {
        let now_us = self.world.now_us();
        let state = self.state();
        state.group_avoided_until_us[group as usize] <= now_us
            && (self.refresh.is_none() || state.route[group as usize].is_some())
    }

    /// The first writable queue from `slot` on (`slot` itself when none is).
    fn writable_slot(&self, slot: usize) -> usize {
        let queues = &self.workload.queues;
        (0..queues.len())
            .map(|step| (slot + step) % queues.len())
            .find(|candidate| self.writable(queues[*candidate].0))
            .unwrap_or(slot)
    }

    /// The queue after `slot` for a message's next attempt: the next one of another group,
    /// writable if any is.
    fn retry_slot(&self, slot: usize, failed_group: u32) -> usize {
        let queues = &self.workload.queues;
        let others: Vec<usize> = (1..=queues.len())
            .map(|step| (slot + step) % queues.len())
            .filter(|candidate| queues[*candidate].0 != failed_group)
            .collect();
        others
            .iter()
            .copied()
            .find(|candidate| self.writable(queues[*candidate].0))
            .or_else(|| others.first().copied())
            .unwrap_or(slot)
    }

    /// One send attempt, with retries within its group after definite refusals, until
    /// acknowledged or out of time.
    async fn send(
        &self,
        group: u32,
        queue: broker_core::broker::QueueKey,
        msg_id: String,
    ) -> Operation {
        let invoke_us = self.world.now_us();
        let deadline_us = invoke_us + self.workload.send_timeout_us;
        let input = OpInput::Send {
            queue: history_queue_name(group, &queue),
            body: msg_id.clone(),
        };
        let outcome = loop {
            let Some(target) = self.target(group) else {
                // With name servers: no master of the group in the route; a fetch is asked for.
                if !self.backoff(deadline_us).await {
                    break OpOutcome::Fail;
                }
                continue;
            };
            let (request_id, answer) = self.register();
            let request = Wire::Request {
                client: self.id,
                request_id,
                request: ClientRequest::Send {
                    queue: queue.clone(),
                    msg_id: msg_id.clone(),
                },
            };
            send_datagram(&self.endpoint, replica_addr(target), request);
            let attempt_us = self.world.now_us();
            let left_us = deadline_us.saturating_sub(attempt_us);
            let response = madsim::time::timeout(Duration::from_micros(left_us), answer).await;
            let response = match response {
                Ok(Ok(response)) => response,
                _ => {
                    self.state().waiting.remove(&request_id);
                    // Only a replica that sat on a request for long is suspect, not one whose
                    // answer the op's deadline merely cut short.
                    let waited_us = self.world.now_us() - attempt_us;
                    if waited_us * 2 >= self.workload.send_timeout_us {
                        self.suspect(target);
                        self.avoid_group(group);
                    }
                    break OpOutcome::Unknown;
                }
            };
            match response {
                ClientResponse::SendOk { queue_offset, .. } => {
                    self.believe_leader(group, target);
                    break OpOutcome::Sent {
                        offset: queue_offset,
                    };
                }
                ClientResponse::Timeout | ClientResponse::LeadershipLost => {
                    break OpOutcome::Unknown;
                }
                ClientResponse::NotLeader { .. } if self.refresh.is_some() => {
                    self.request_refresh(RefreshReason::Refused { group, by: target });
                    if !self.backoff(deadline_us).await {
                        break OpOutcome::Fail;
                    }
                }
                ClientResponse::NotLeader { leader_hint } => {
                    let usable =
                        leader_hint.filter(|hint| !self.is_suspect(*hint) && *hint != target);
                    match usable {
                        Some(hint) => self.believe_leader(group, hint),
                        None => {
                            self.rotate(group, target);
                            if !self.backoff(deadline_us).await {
                                break OpOutcome::Fail;
                            }
                        }
                    }
                }
                ClientResponse::Busy => {
                    if !self.backoff(deadline_us).await {
                        break OpOutcome::Fail;
                    }
                }
                ClientResponse::Pulled { .. }
                | ClientResponse::OffsetCommitted
                | ClientResponse::Offset { .. } => {
                    panic!("invariant: a broker answers a send with a send response")
                }
            }
            if self.world.now_us() >= deadline_us {
                break OpOutcome::Fail;
            }
        };
        Operation {
            client: self.id.0,
            input,
            invoke_us,
            complete_us: self.world.now_us(),
            outcome,
        }
    }

    /// One request to `target`, waiting up to `timeout_us` for its answer (None: no answer).
    pub(super) async fn request(
        &self,
        target: NodeId,
        request: ClientRequest,
        timeout_us: u64,
    ) -> Option<ClientResponse> {
        let (request_id, answer) = self.register();
        let wire = Wire::Request {
            client: self.id,
            request_id,
            request,
        };
        send_datagram(&self.endpoint, replica_addr(target), wire);
        match madsim::time::timeout(Duration::from_micros(timeout_us), answer).await {
            Ok(Ok(response)) => Some(response),
            _ => {
                self.state().waiting.remove(&request_id);
                None
            }
        }
    }

    /// With name servers: fetches the route from `name_server` (the next one after no answer)
    /// and records the fetch.
    async fn fetch_route(&self, name_server: &mut u32, reason: RefreshReason) {
        let asked_us = self.world.now_us();
        let (tx, answer) = oneshot::channel();
        let request_id = {
            let mut state = self.state();
            let request_id = state.next_request_id;
            state.next_request_id += 1;
            state.route_waiting.insert(request_id, tx);
            request_id
        };
        let request = Wire::RouteRequest {
            client: self.id,
            request_id,
        };
        let asked = *name_server;
        send_datagram(&self.endpoint, name_server_addr(asked), request);
        let timeout = Duration::from_micros(ROUTE_REQUEST_TIMEOUT_US);
        let (answered_us, masters) = match madsim::time::timeout(timeout, answer).await {
            Ok(Ok(brokers)) => {
                let masters = masters_of(&brokers);
                self.state().route = masters.clone();
                (Some(self.world.now_us()), masters)
            }
            _ => {
                self.state().route_waiting.remove(&request_id);
                *name_server = (asked + 1) % self.world.spec.name_servers.max(1);
                (None, Vec::new())
            }
        };
        self.world.record_route_fetch(RouteFetch {
            client: self.id.0,
            reason,
            name_server: asked,
            asked_us,
            answered_us,
            masters,
        });
    }

    /// With name servers: asks for a route fetch now (requests made during one are answered
    /// by the next). Without: nothing.
    pub(super) fn request_refresh(&self, reason: RefreshReason) {
        if let Some(refresh) = &self.refresh {
            let _ = refresh.unbounded_send(reason);
        }
    }

    /// Whether this client routes by name server (and so never follows leader hints).
    pub(super) fn routes_by_name_server(&self) -> bool {
        self.refresh.is_some()
    }

    /// The replica to ask in `group`. Without name servers: the believed leader (see
    /// `choose_replica`). With: the master the route names; None when it names none, and a
    /// fetch is asked for.
    pub(super) fn target(&self, group: u32) -> Option<NodeId> {
        if self.refresh.is_none() {
            return Some(self.choose_replica(group));
        }
        let master = self.state().route[group as usize];
        if master.is_none() {
            self.request_refresh(RefreshReason::NoMaster { group });
        }
        master
    }

    /// Latency fault avoidance: keep messages off `group` for `group_avoid_us`.
    fn avoid_group(&self, group: u32) {
        let until = self.world.now_us() + self.workload.group_avoid_us;
        self.state().group_avoided_until_us[group as usize] = until;
    }

    pub(super) fn register(&self) -> (u64, oneshot::Receiver<ClientResponse>) {
        let (tx, rx) = oneshot::channel();
        let mut state = self.state();
        let request_id = state.next_request_id;
        state.next_request_id += 1;
        state.waiting.insert(request_id, tx);
        (request_id, rx)
    }

    /// Sleeps the retry backoff; false when that would pass the deadline.
    pub(super) async fn backoff(&self, deadline_us: u64) -> bool {
        let backoff_us = self.workload.retry_backoff_us;
        if self.world.now_us() + backoff_us >= deadline_us {
            return false;
        }
        madsim::time::sleep(Duration::from_micros(backoff_us)).await;
        true
    }

    pub(super) fn replica(&self, group: u32, index: u32) -> NodeId {
        NodeId(group * self.world.spec.replicas + index)
    }

    /// The believed leader, or the next replica of the group that is not suspect; when all
    /// are, the one whose suspicion ends first.
    pub(super) fn choose_replica(&self, group: u32) -> NodeId {
        let replicas = self.world.spec.replicas;
        let guess = self.state().leader_guess[group as usize];
        let candidates: Vec<NodeId> = (0..replicas)
            .map(|step| self.replica(group, (guess + step) % replicas))
            .collect();
        candidates
            .iter()
            .copied()
            .find(|node| !self.is_suspect(*node))
            .unwrap_or_else(|| {
                let state = self.state();
                *candidates
                    .iter()
                    .min_by_key(|node| state.suspect_until_us[node.0 as usize])
                    .expect("invariant: a group has at least one replica")
            })
    }

    pub(super) fn is_suspect(&self, node: NodeId) -> bool {
        self.state().suspect_until_us[node.0 as usize] > self.world.now_us()
    }

    pub(super) fn suspect(&self, node: NodeId) {
        let until = self.world.now_us() + self.workload.suspect_us;
        self.state().suspect_until_us[node.0 as usize] = until;
    }

    pub(super) fn believe_leader(&self, group: u32, node: NodeId) {
        let index = node.0 - group * self.world.spec.replicas;
        self.state().leader_guess[group as usize] = index;
    }

    pub(super) fn rotate(&self, group: u32, after: NodeId) {
        let replicas = self.world.spec.replicas;
        let index = (after.0 - group * replicas + 1) % replicas;
        self.state().leader_guess[group as usize] = index;
    }
}
