//! The async shell around a client's pure state: its address, its waiting requests, its route
//! refresher, and `drive`, which feeds an operation machine (`send.rs`, `pull.rs`) events with
//! the time and carries out its commands. Kept thin: all decisions are the machines'.

use super::client::{ClientConfig, ClientMachine, ClientState, Command, Event};
use super::routes::{route_poll_phase_us, RouteRefresh};
use super::WorkloadSpec;
use crate::world::nameserver::RefreshReason;
use crate::world::wire::{client_addr, name_server_addr, replica_addr, Wire};
use crate::world::World;
use broker_core::broker::{ClientId, ClientRequest, ClientResponse};
use broker_core::NodeId;
use futures::channel::mpsc;
use futures::channel::oneshot;
use futures::StreamExt;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// A route answer: per group, broker id to replica.
type Brokers = Vec<BTreeMap<u64, NodeId>>;

/// The requests waiting for an answer.
struct Waiting {
    responses: BTreeMap<u64, oneshot::Sender<ClientResponse>>,
    routes: BTreeMap<u64, oneshot::Sender<Brokers>>,
    next_request_id: u64,
}

impl Waiting {
    fn next_request_id(&mut self) -> u64 {
        let request_id = self.next_request_id;
        self.next_request_id += 1;
        request_id
    }
}

/// One client's connection to the cluster. Producers send through it; consumers pull and
/// commit offsets through it.
pub(super) struct Connection {
    pub(super) world: Arc<World>,
    id: ClientId,
    address: SocketAddr,
    workload: Arc<WorkloadSpec>,
    client: Mutex<ClientState>,
    waiting: Mutex<Waiting>,
    /// With name servers: asks the client's route refresher for a fetch now.
    refresh: Option<mpsc::UnboundedSender<RefreshReason>>,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .expect("invariant: the simulation is single-threaded, no lock is poisoned")
}

/// Binds client `client`'s address and starts routing the responses it receives (and, with
/// name servers, its route refresher).
pub(super) async fn connect(
    world: Arc<World>,
    workload: Arc<WorkloadSpec>,
    client: ClientId,
) -> Arc<Connection> {
    let spec = world.spec.clone();
    let (refresh, refresh_requests) = if spec.name_servers > 0 {
        let (tx, rx) = mpsc::unbounded();
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let config = ClientConfig {
        client,
        groups: spec.groups,
        replicas: spec.replicas,
        routes_by_name_server: spec.name_servers > 0,
        workload: WorkloadSpec::clone(&workload),
    };
    let connection = Arc::new(Connection {
        world,
        id: client,
        address: client_addr(client),
        workload,
        client: Mutex::new(ClientState::new(config)),
        waiting: Mutex::new(Waiting {
            responses: BTreeMap::new(),
            routes: BTreeMap::new(),
            next_request_id: 0,
        }),
        refresh,
    });
    bind_responses(&connection);
    if let Some(requests) = refresh_requests {
        let connection = connection.clone();
        madsim::task::spawn(async move { refresh_routes(connection, requests).await });
    }
    connection
}

/// Binds the client's address: each answer goes straight to the request waiting for it.
fn bind_responses(connection: &Arc<Connection>) {
    let waiting = connection.clone();
    let inbox = move |wire: Wire| {
        match wire {
            Wire::Response {
                request_id,
                response,
            } => {
                let waiter = locked(&waiting.waiting).responses.remove(&request_id);
                if let Some(waiter) = waiter {
                    let _ = waiter.send(response);
                }
            }
            Wire::Route {
                request_id,
                brokers,
            } => {
                let waiter = locked(&waiting.waiting).routes.remove(&request_id);
                if let Some(waiter) = waiter {
                    let _ = waiter.send(brokers);
                }
            }
            Wire::Peer { .. }
            | Wire::Request { .. }
            | Wire::Register { .. }
            | Wire::RouteRequest { .. } => {}
        }
        true
    };
    connection.world.bind(connection.address, Arc::new(inbox));
}

/// The client's route refresher: fetches when `RouteRefresh` says, and on requests.
async fn refresh_routes(
    connection: Arc<Connection>,
    mut requests: mpsc::UnboundedReceiver<RefreshReason>,
) {
    let world = connection.world.clone();
    let spec = &world.spec;
    let period_us = connection.workload.route_refresh_us.max(1);
    let mut refresh = RouteRefresh::new(
        connection.id,
        spec.name_servers,
        connection.workload.route_refresh_us,
        world.now_us(),
        route_poll_phase_us(world.seed, connection.id, period_us),
    );
    let mut reason = RefreshReason::Start;
    loop {
        connection.fetch_route(&mut refresh, reason).await;
        let wait_us = refresh.wait_us(world.now_us());
        reason = match madsim::time::timeout(Duration::from_micros(wait_us), requests.next()).await
        {
            Ok(Some(reason)) => {
                // One fetch answers every request made so far.
                while requests.try_recv().is_ok() {}
                reason
            }
            Ok(None) => return,
            Err(_elapsed) => refresh.timer_fired(world.now_us()),
        };
    }
}

impl Connection {
    fn client(&self) -> MutexGuard<'_, ClientState> {
        locked(&self.client)
    }

    /// Runs `machine` to its end: each step's commands in order, waiting where one says.
    /// `stopped` tells the machine whether its kind of client was told to stop.
    pub(super) async fn drive(
        &self,
        machine: &mut impl ClientMachine,
        stopped: fn(&World) -> bool,
    ) {
        let mut event = Event::Start;
        loop {
            let now_us = self.world.now_us();
            let commands = machine.step(event, now_us, stopped(&self.world), &mut self.client());
            let mut next = None;
            for command in commands {
                assert!(next.is_none(), "invariant: a waiting command ends its step");
                match command {
                    Command::FetchRoutes(reason) => self.request_refresh(reason),
                    Command::Record(operation) => self.world.record_operation(operation),
                    Command::RecordOffset { queue, offset } => {
                        self.world.record_consumer_offset(queue.to_string(), offset)
                    }
                    Command::Request {
                        to,
                        request,
                        deadline_us,
                    } => {
                        next = Some(match self.request(to, request, deadline_us).await {
                            Some(response) => Event::Answer(response),
                            None => Event::NoAnswer,
                        });
                    }
                    Command::Sleep { us } => {
                        madsim::time::sleep(Duration::from_micros(us)).await;
                        next = Some(Event::Woke);
                    }
                    Command::Done => return,
                }
            }
            event = next.expect("invariant: every step ends in a wait or Done");
        }
    }

    /// One request to `target`, waiting until `deadline_us` for its answer (None: no answer).
    async fn request(
        &self,
        target: NodeId,
        request: ClientRequest,
        deadline_us: u64,
    ) -> Option<ClientResponse> {
        let (tx, answer) = oneshot::channel();
        let request_id = {
            let mut waiting = locked(&self.waiting);
            let request_id = waiting.next_request_id();
            waiting.responses.insert(request_id, tx);
            request_id
        };
        let wire = Wire::Request {
            client: self.id,
            request_id,
            request,
        };
        self.world.send(self.address, replica_addr(target), wire);
        let timeout = Duration::from_micros(deadline_us.saturating_sub(self.world.now_us()));
        match madsim::time::timeout(timeout, answer).await {
            Ok(Ok(response)) => Some(response),
            _ => {
                locked(&self.waiting).responses.remove(&request_id);
                None
            }
        }
    }

    /// With name servers: one route fetch, as `refresh` says, recorded.
    async fn fetch_route(&self, refresh: &mut RouteRefresh, reason: RefreshReason) {
        let ask = refresh.ask(reason, self.world.now_us());
        let (tx, answer) = oneshot::channel();
        let request_id = {
            let mut waiting = locked(&self.waiting);
            let request_id = waiting.next_request_id();
            waiting.routes.insert(request_id, tx);
            request_id
        };
        let request = Wire::RouteRequest {
            client: self.id,
            request_id,
        };
        self.world
            .send(self.address, name_server_addr(ask.name_server), request);
        let timeout = Duration::from_micros(ask.deadline_us.saturating_sub(self.world.now_us()));
        let fetch = match madsim::time::timeout(timeout, answer).await {
            Ok(Ok(brokers)) => refresh.answered(&brokers, self.world.now_us(), &mut self.client()),
            _ => {
                locked(&self.waiting).routes.remove(&request_id);
                refresh.unanswered()
            }
        };
        self.world.record_route_fetch(fetch);
    }

    /// With name servers: asks for a route fetch now (requests made during one are answered
    /// by the next). Without: nothing.
    fn request_refresh(&self, reason: RefreshReason) {
        if let Some(refresh) = &self.refresh {
            let _ = refresh.unbounded_send(reason);
        }
    }
}
