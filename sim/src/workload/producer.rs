use super::history_queue_name;
use crate::history::{OpInput, OpOutcome, Operation};
use crate::world::replica::{send_datagram, spawn_receivers};
use crate::world::wire::{client_addr, replica_addr, Wire};
use crate::world::World;
use broker_core::broker::{ClientId, ClientRequest, ClientResponse};
use broker_core::NodeId;
use futures::channel::mpsc;
use futures::channel::oneshot;
use futures::StreamExt;
use madsim::net::Endpoint;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// What one producer believes about the cluster, shared by its in-flight sends.
struct ProducerState {
    /// Per group: the replica believed to lead it (an index into the group's replicas).
    leader_guess: Vec<u32>,
    /// Per replica: avoid it until this time (µs).
    suspect_until_us: Vec<u64>,
    waiting: BTreeMap<u64, oneshot::Sender<ClientResponse>>,
    next_request_id: u64,
}

/// One client's connection to the cluster: its address, leader guesses and waiting requests.
/// Producers send through it; consumers (`consumer.rs`) pull and commit offsets through it.
pub(super) struct Producer {
    pub(super) world: Arc<World>,
    pub(super) id: ClientId,
    pub(super) endpoint: Arc<Endpoint>,
    state: Mutex<ProducerState>,
}

impl Producer {
    fn state(&self) -> MutexGuard<'_, ProducerState> {
        self.state
            .lock()
            .expect("invariant: the simulation is single-threaded, no lock is poisoned")
    }
}

/// Binds client `client`'s address and starts routing the responses it receives.
pub(super) async fn connect(world: Arc<World>, client: ClientId) -> Arc<Producer> {
    let spec = world.spec.clone();
    let endpoint = Endpoint::bind(client_addr(client))
        .await
        .expect("invariant: each client has its own address");
    let replicas_total = (spec.groups * spec.replicas) as usize;
    let producer = Arc::new(Producer {
        world,
        id: client,
        endpoint: Arc::new(endpoint),
        state: Mutex::new(ProducerState {
            leader_guess: vec![0; spec.groups as usize],
            suspect_until_us: vec![0; replicas_total],
            waiting: BTreeMap::new(),
            next_request_id: 0,
        }),
    });
    spawn_response_router(producer.clone());
    producer
}

/// Runs producer `client` for the whole fault phase.
pub async fn run_producer(world: Arc<World>, client: ClientId) {
    let spec = world.spec.clone();
    let producer = connect(world.clone(), client).await;

    let interval_us = 1_000_000 / u64::from(spec.workload.send_rate_per_s.max(1));
    // Producers start staggered so their sends interleave.
    let phase_us = interval_us * u64::from(client.0) / u64::from(spec.workload.producers.max(1));
    let targets = spec.workload.queues.len();
    let mut sequence = 0u64;
    let mut in_flight = Vec::new();
    loop {
        let at_us = spec.warmup_us + phase_us + sequence * interval_us;
        if at_us >= spec.duration_us || world.workload_stopped() {
            break;
        }
        madsim::time::sleep(Duration::from_micros(at_us.saturating_sub(world.now_us()))).await;
        let slot = (sequence as usize + client.0 as usize) % targets;
        let (group, queue) = spec.workload.queues[slot].clone();
        let msg_id = format!("p{}-{}", client.0, sequence);
        let producer = producer.clone();
        in_flight.push(madsim::task::spawn(async move {
            let operation = producer.send(group, queue, msg_id).await;
            producer.world.record_operation(operation);
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
            if let Wire::Response {
                request_id,
                response,
            } = wire
            {
                if let Some(waiter) = producer.state().waiting.remove(&request_id) {
                    let _ = waiter.send(response);
                }
            }
        }
    });
}

impl Producer {
    /// One send, with retries after definite refusals, until acknowledged or out of time.
    async fn send(
        &self,
        group: u32,
        queue: broker_core::broker::QueueKey,
        msg_id: String,
    ) -> Operation {
        let spec = &self.world.spec;
        let invoke_us = self.world.now_us();
        let deadline_us = invoke_us + spec.workload.send_timeout_us;
        let input = OpInput::Send {
            queue: history_queue_name(group, &queue),
            body: msg_id.clone(),
        };
        let outcome = loop {
            let target = self.choose_replica(group);
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
                    if waited_us * 2 >= spec.workload.send_timeout_us {
                        self.suspect(target);
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
        let backoff_us = self.world.spec.workload.retry_backoff_us;
        if self.world.now_us() + backoff_us >= deadline_us {
            return false;
        }
        madsim::time::sleep(Duration::from_micros(backoff_us)).await;
        true
    }

    fn replica(&self, group: u32, index: u32) -> NodeId {
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
        let until = self.world.now_us() + self.world.spec.workload.suspect_us;
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
