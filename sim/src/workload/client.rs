//! What one client believes about the cluster, as a pure state shared by its operations, and
//! the events and commands its operation machines (`send.rs`, `pull.rs`) speak. No IO, no
//! async: the shell (`connection.rs`) feeds events with the time and carries out commands.
//!
//! Without name servers a client finds leaders by itself: it guesses, follows NOT_LEADER
//! hints, and avoids a replica that timed out for `suspect_us`. With name servers it sends
//! where its route says (each group's master, broker id 0) and never follows hints: it asks
//! for a route fetch when a broker refuses with NOT_LEADER and when its route names no master
//! for a group it must use (and fetches periodically, `routes.rs`). A timeout fetches nothing
//! (RocketMQ's producer only learns a new master from its periodic poll).

use super::WorkloadSpec;
use crate::history::Operation;
use crate::ids::QueueId;
use crate::world::nameserver::RefreshReason;
use broker_core::broker::{ClientId, ClientRequest, ClientResponse, QueueKey};
use broker_core::NodeId;

/// What a client is and the settings it runs with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    pub client: ClientId,
    pub groups: u32,
    /// Replicas per group; replica `index` of group `g` is node `g * replicas + index`.
    pub replicas: u32,
    /// With name servers: targets come from routes, and leader hints are never followed.
    pub routes_by_name_server: bool,
    pub workload: WorkloadSpec,
}

/// What happened to an operation since its last command: the caller's input to `step`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The operation begins.
    Start,
    /// The answer to the `Command::Request` in flight.
    Answer(ClientResponse),
    /// No answer to the `Command::Request` in flight by its deadline.
    NoAnswer,
    /// The `Command::Sleep` is over.
    Woke,
}

/// What an operation asks its caller to do, in order. `Request`, `Sleep` and `Done` end a step:
/// each step's list ends in exactly one of them, and only there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Ask the route refresher for a fetch now (with name servers only).
    FetchRoutes(RefreshReason),
    /// Append an operation to the history.
    Record(Operation),
    /// The consumer will next pull `queue` from `offset`.
    RecordOffset { queue: QueueId, offset: u64 },
    /// Send `request` to replica `to` and wait for its answer until `deadline_us`; then
    /// `Event::Answer` or `Event::NoAnswer`.
    Request {
        to: NodeId,
        request: ClientRequest,
        deadline_us: u64,
    },
    /// Wait `us` (a backoff or a poll interval), then `Event::Woke`.
    Sleep { us: u64 },
    /// The operation is over.
    Done,
}

impl Command {
    /// Whether the command ends a step (the caller waits, or the operation is over).
    pub fn ends_step(&self) -> bool {
        matches!(
            self,
            Command::Request { .. } | Command::Sleep { .. } | Command::Done
        )
    }
}

/// The time and whether the client was told to stop, at a step of a machine.
#[derive(Clone, Copy, Debug)]
pub struct At {
    pub now_us: u64,
    pub stopped: bool,
}

/// One operation of a client, driven by events. `stopped`: whether the workload (for sends)
/// or the consumers (for pulls) were told to stop.
pub trait ClientMachine {
    fn step(
        &mut self,
        event: Event,
        now_us: u64,
        stopped: bool,
        client: &mut ClientState,
    ) -> Vec<Command>;
}

/// What a NOT_LEADER answer made the client do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// With name servers: a route fetch is asked for; the hint is ignored.
    FetchRoutes(RefreshReason),
    /// The hint named a usable replica: it is the believed leader now.
    FollowedHint,
    /// No usable hint: the next replica of the group is the guess now.
    Rotated,
}

/// What one client believes about the cluster, shared by all its operations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientState {
    config: ClientConfig,
    /// Per group: the replica believed to lead it (an index into the group's replicas).
    leader_guess: Vec<u32>,
    /// Per replica: avoid it until this time (µs).
    suspect_until_us: Vec<u64>,
    /// Per group: avoid its queues until this time (µs), after a send to it timed out.
    group_avoided_until_us: Vec<u64>,
    /// With name servers: per group, the master the latest route named.
    route: Vec<Option<NodeId>>,
}

impl ClientState {
    pub fn new(config: ClientConfig) -> ClientState {
        let groups = config.groups as usize;
        let replicas_total = (config.groups * config.replicas) as usize;
        ClientState {
            config,
            leader_guess: vec![0; groups],
            suspect_until_us: vec![0; replicas_total],
            group_avoided_until_us: vec![0; groups],
            route: vec![None; groups],
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    pub fn workload(&self) -> &WorkloadSpec {
        &self.config.workload
    }

    /// The queue at `slot` of the workload's queue list.
    pub fn queue(&self, slot: usize) -> QueueId {
        let (group, queue): &(u32, QueueKey) = &self.config.workload.queues[slot];
        QueueId::new(*group, queue.clone())
    }

    /// Replica `index` of `group`.
    pub fn replica(&self, group: u32, index: u32) -> NodeId {
        NodeId(group * self.config.replicas + index)
    }

    /// The replica to ask in `group`. Without name servers: the believed leader (see
    /// `choose_replica`). With: the master the route names; None when it names none, and then
    /// a route fetch is asked for in `commands`.
    pub fn target(&self, group: u32, now_us: u64, commands: &mut Vec<Command>) -> Option<NodeId> {
        if !self.config.routes_by_name_server {
            return Some(self.choose_replica(group, now_us));
        }
        let master = self.route[group as usize];
        if master.is_none() {
            commands.push(Command::FetchRoutes(RefreshReason::NoMaster { group }));
        }
        master
    }

    /// The believed leader, or the next replica of the group that is not suspect; when all
    /// are, the one whose suspicion ends first.
    pub fn choose_replica(&self, group: u32, now_us: u64) -> NodeId {
        let replicas = self.config.replicas;
        let guess = self.leader_guess[group as usize];
        let candidates: Vec<NodeId> = (0..replicas)
            .map(|step| self.replica(group, (guess + step) % replicas))
            .collect();
        candidates
            .iter()
            .copied()
            .find(|node| !self.is_suspect(*node, now_us))
            .unwrap_or_else(|| {
                *candidates
                    .iter()
                    .min_by_key(|node| self.suspect_until_us[node.0 as usize])
                    .expect("invariant: a group has at least one replica")
            })
    }

    pub fn is_suspect(&self, node: NodeId, now_us: u64) -> bool {
        self.suspect_until_us[node.0 as usize] > now_us
    }

    /// Avoid `node` for `suspect_us` (RocketMQ's latency fault tolerance).
    pub fn suspect(&mut self, node: NodeId, now_us: u64) {
        self.suspect_until_us[node.0 as usize] = now_us + self.config.workload.suspect_us;
    }

    /// Latency fault avoidance: keep messages off `group` for `group_avoid_us`.
    pub fn avoid_group(&mut self, group: u32, now_us: u64) {
        self.group_avoided_until_us[group as usize] = now_us + self.config.workload.group_avoid_us;
    }

    pub fn believe_leader(&mut self, group: u32, node: NodeId) {
        self.leader_guess[group as usize] = node.0 - group * self.config.replicas;
    }

    /// The replica after `after` is the group's guess now.
    pub fn rotate(&mut self, group: u32, after: NodeId) {
        let replicas = self.config.replicas;
        self.leader_guess[group as usize] = (after.0 - group * replicas + 1) % replicas;
    }

    /// A NOT_LEADER from `by` in `group`: with name servers, a route fetch; without, follow a
    /// hint that names another replica not suspect, else try the next replica.
    pub fn on_not_leader(
        &mut self,
        group: u32,
        by: NodeId,
        leader_hint: Option<NodeId>,
        now_us: u64,
    ) -> Refusal {
        if self.config.routes_by_name_server {
            return Refusal::FetchRoutes(RefreshReason::Refused { group, by });
        }
        match leader_hint.filter(|hint| !self.is_suspect(*hint, now_us) && *hint != by) {
            Some(hint) => {
                self.believe_leader(group, hint);
                Refusal::FollowedHint
            }
            None => {
                self.rotate(group, by);
                Refusal::Rotated
            }
        }
    }

    /// May a message go to `group` now: not avoided, and (with name servers) with a master
    /// in the route.
    pub fn writable(&self, group: u32, now_us: u64) -> bool {
        self.group_avoided_until_us[group as usize] <= now_us
            && (!self.config.routes_by_name_server || self.route[group as usize].is_some())
    }

    /// The first writable queue from `slot` on (`slot` itself when none is).
    pub fn writable_slot(&self, slot: usize, now_us: u64) -> usize {
        let queues = &self.config.workload.queues;
        (0..queues.len())
            .map(|step| (slot + step) % queues.len())
            .find(|candidate| self.writable(queues[*candidate].0, now_us))
            .unwrap_or(slot)
    }

    /// The queue after `slot` for a message's next attempt: the next one of another group,
    /// writable if any is.
    pub fn retry_slot(&self, slot: usize, failed_group: u32, now_us: u64) -> usize {
        let queues = &self.config.workload.queues;
        let others: Vec<usize> = (1..=queues.len())
            .map(|step| (slot + step) % queues.len())
            .filter(|candidate| queues[*candidate].0 != failed_group)
            .collect();
        others
            .iter()
            .copied()
            .find(|candidate| self.writable(queues[*candidate].0, now_us))
            .or_else(|| others.first().copied())
            .unwrap_or(slot)
    }

    /// With name servers: the masters the latest route answer named, per group.
    pub fn set_route(&mut self, masters: Vec<Option<NodeId>>) {
        self.route = masters;
    }

    pub fn route(&self) -> &[Option<NodeId>] {
        &self.route
    }
}
