//! The broker on top of the replicated CommitLog: a send appends one entry; committed entries
//! are dispatched into a ConsumeQueue per (topic, queue), which assigns the queue offset; SEND_OK
//! goes out only after commit; pulls read committed messages only.

mod consume_queue;
pub mod protocol;

pub use consume_queue::{ConsumeQueue, ConsumeQueues};
pub use protocol::{ClientRequest, ClientResponse, QueueKey, StoredMessage};

use crate::proto::PeerMessage;
use crate::raft::{self, Effect, Input, Node, ProposeOutcome, RecoveryError, Role, Status};
use crate::store::{Entry, PersistOp, RecoveredState};
use crate::types::{LogIndex, NodeId, ProposalId, SyncId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A client, as the broker knows it (the address replies go to).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClientId(pub u32);

/// What the caller feeds into a replica's `step`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BrokerInput {
    /// Time passed; fire whatever timers are due.
    Tick,
    /// Every write requested before `BrokerEffect::Sync { sync_id }` is durable.
    Persisted { sync_id: SyncId },
    /// A message from another replica of the group.
    Peer { from: NodeId, msg: PeerMessage },
    /// An operator asks the leader to hand leadership to `to` (DLedger's preferred leader).
    TransferLeadership { to: NodeId },
    /// A request from a client.
    Client {
        client: ClientId,
        request_id: u64,
        request: ClientRequest,
    },
}

/// What the broker asks its caller to do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BrokerEffect {
    Send {
        to: NodeId,
        msg: PeerMessage,
    },
    Persist(PersistOp),
    Sync {
        sync_id: SyncId,
    },
    Respond {
        client: ClientId,
        request_id: u64,
        response: ClientResponse,
    },
}

/// One replica of a broker group, whatever its replication mode: what the simulator drives.
pub trait ReplicaNode {
    fn step(&mut self, now_ms: u64, input: BrokerInput);
    fn take_effects(&mut self) -> Vec<BrokerEffect>;
    /// The local time at which the replica next needs a `Tick`.
    fn next_deadline_ms(&self) -> u64;
    /// Role, term, commit and apply progress (master–slave: the master reports `Leader`).
    fn status(&self) -> Status;
    /// The replica's whole CommitLog in memory (durable or not).
    fn log(&self) -> &[Entry];
}

/// A broker replica of one group in DLedger mode.
pub struct Broker {
    raft: Node,
    queues: ConsumeQueues,
    /// Sends proposed and not yet answered, by proposal.
    proposals: BTreeMap<ProposalId, (ClientId, u64)>,
    /// Sends known committed at an index not yet applied here.
    committed_unapplied: BTreeMap<LogIndex, (ClientId, u64)>,
    next_proposal: u64,
    effects: Vec<BrokerEffect>,
    /// Test-only, deliberately broken: answer SEND_OK as soon as the leader appends a send,
    /// before it commits (the simulator's scenarios must catch this). Never set it otherwise.
    #[doc(hidden)]
    pub unsafe_ack_before_commit: bool,
    /// Proposals already answered by `unsafe_ack_before_commit`.
    acked_early: std::collections::BTreeSet<ProposalId>,
}

impl Broker {
    pub fn new(
        config: raft::Config,
        id: NodeId,
        members: Vec<NodeId>,
        recovered: RecoveredState,
        rng_seed: u64,
    ) -> Result<Broker, RecoveryError> {
        Ok(Broker {
            raft: Node::new(config, id, members, recovered, rng_seed)?,
            queues: ConsumeQueues::default(),
            proposals: BTreeMap::new(),
            committed_unapplied: BTreeMap::new(),
            next_proposal: 0,
            effects: Vec::new(),
            unsafe_ack_before_commit: false,
            acked_early: std::collections::BTreeSet::new(),
        })
    }

    pub fn raft(&self) -> &Node {
        &self.raft
    }

    pub fn queue(&self, key: &QueueKey) -> Option<&ConsumeQueue> {
        self.queues.get(key)
    }

    pub fn step(&mut self, now_ms: u64, input: BrokerInput) {
        match input {
            BrokerInput::Tick => self.raft.step(now_ms, Input::Tick),
            BrokerInput::Persisted { sync_id } => {
                self.raft.step(now_ms, Input::Persisted { sync_id })
            }
            BrokerInput::Peer {
                from,
                msg: PeerMessage::Raft(msg),
            } => self.raft.step(now_ms, Input::Message { from, msg }),
            // A master–slave message reaching a DLedger group: a misconfigured peer; dropped.
            BrokerInput::Peer {
                msg: PeerMessage::Ha(_),
                ..
            } => {}
            BrokerInput::TransferLeadership { to } => {
                self.raft.step(now_ms, Input::TransferLeadership { to })
            }
            BrokerInput::Client {
                client,
                request_id,
                request: ClientRequest::Send { queue, msg_id },
            } => {
                let proposal = ProposalId(self.next_proposal);
                self.next_proposal += 1;
                self.proposals.insert(proposal, (client, request_id));
                let data = StoredMessage {
                    queue: queue.clone(),
                    msg_id,
                }
                .encode();
                let appended_before = self.raft.log().len();
                self.raft
                    .step(now_ms, Input::ClientPropose { proposal, data });
                if self.unsafe_ack_before_commit && self.raft.log().len() > appended_before {
                    self.ack_early(proposal, client, request_id, &queue);
                }
            }
            BrokerInput::Client {
                client,
                request_id,
                request: ClientRequest::Pull { queue, offset, max },
            } => {
                let response = self.pull(&queue, offset, max);
                self.respond(client, request_id, response);
            }
        }
        self.drain_raft();
    }

    pub fn take_effects(&mut self) -> Vec<BrokerEffect> {
        std::mem::take(&mut self.effects)
    }

    fn pull(&self, queue: &QueueKey, offset: u64, max: u32) -> ClientResponse {
        let status = self.raft.status();
        if status.role != Role::Leader {
            return ClientResponse::NotLeader {
                leader_hint: status.leader,
            };
        }
        self.queues.pull(queue, offset, max, status.applied_index)
    }

    fn respond(&mut self, client: ClientId, request_id: u64, response: ClientResponse) {
        self.effects.push(BrokerEffect::Respond {
            client,
            request_id,
            response,
        });
    }

    /// Carries the Raft node's effects over: IO goes out, applies and replies are handled here.
    fn drain_raft(&mut self) {
        for effect in self.raft.take_effects() {
            match effect {
                Effect::Send { to, msg } => self.effects.push(BrokerEffect::Send {
                    to,
                    msg: PeerMessage::Raft(msg),
                }),
                Effect::Persist(op) => self.effects.push(BrokerEffect::Persist(op)),
                Effect::Sync { sync_id } => self.effects.push(BrokerEffect::Sync { sync_id }),
                Effect::Apply { entries } => {
                    for entry in &entries {
                        self.queues.dispatch(entry);
                    }
                }
                Effect::Reply { proposal, outcome } => self.on_reply(proposal, outcome),
            }
        }
        self.answer_applied();
    }

    /// The broken path of `unsafe_ack_before_commit`: SEND_OK with the queue offset the entry
    /// would get if it commits.
    fn ack_early(
        &mut self,
        proposal: ProposalId,
        client: ClientId,
        request_id: u64,
        queue: &QueueKey,
    ) {
        let log = self.raft.log();
        let applied = usize::try_from(self.raft.status().applied_index.0)
            .expect("invariant: log indexes fit in usize");
        let unapplied_before = log[applied.min(log.len() - 1)..log.len() - 1]
            .iter()
            .filter_map(|entry| StoredMessage::decode(&entry.data))
            .filter(|message| &message.queue == queue)
            .count() as u64;
        let queue_offset = self.queues.get(queue).map_or(0, ConsumeQueue::len) + unapplied_before;
        let log_index = log[log.len() - 1].index;
        self.acked_early.insert(proposal);
        self.respond(
            client,
            request_id,
            ClientResponse::SendOk {
                queue_offset,
                log_index,
            },
        );
    }

    fn on_reply(&mut self, proposal: ProposalId, outcome: ProposeOutcome) {
        let (client, request_id) = self
            .proposals
            .remove(&proposal)
            .expect("invariant: the node replies once to each proposal the broker made");
        if self.acked_early.remove(&proposal) {
            return;
        }
        let response = match outcome {
            ProposeOutcome::Committed { index, .. } => {
                self.committed_unapplied.insert(index, (client, request_id));
                return;
            }
            ProposeOutcome::NotLeader { leader_hint } => ClientResponse::NotLeader { leader_hint },
            ProposeOutcome::Busy => ClientResponse::Busy,
            ProposeOutcome::Timeout => ClientResponse::Timeout,
            ProposeOutcome::LeadershipLost => ClientResponse::LeadershipLost,
        };
        self.respond(client, request_id, response);
    }

    /// SEND_OK for every committed send whose entry has been dispatched to its ConsumeQueue.
    fn answer_applied(&mut self) {
        let applied = self.raft.status().applied_index;
        while let Some(entry) = self.committed_unapplied.first_entry() {
            let index = *entry.key();
            if index > applied {
                break;
            }
            let (client, request_id) = entry.remove();
            let stored = &self.raft.log()
                [usize::try_from(index.0 - 1).expect("invariant: log indexes fit in usize")];
            let message = StoredMessage::decode(&stored.data)
                .expect("invariant: a committed send is a StoredMessage");
            let queue_offset = self
                .queues
                .get(&message.queue)
                .and_then(|q| q.offset_of(index))
                .expect("invariant: an applied send was dispatched to its ConsumeQueue");
            self.respond(
                client,
                request_id,
                ClientResponse::SendOk {
                    queue_offset,
                    log_index: index,
                },
            );
        }
    }
}

impl ReplicaNode for Broker {
    fn step(&mut self, now_ms: u64, input: BrokerInput) {
        Broker::step(self, now_ms, input);
    }
    fn take_effects(&mut self) -> Vec<BrokerEffect> {
        Broker::take_effects(self)
    }
    fn next_deadline_ms(&self) -> u64 {
        self.raft.next_deadline_ms()
    }
    fn status(&self) -> Status {
        self.raft.status()
    }
    fn log(&self) -> &[Entry] {
        self.raft.log()
    }
}
