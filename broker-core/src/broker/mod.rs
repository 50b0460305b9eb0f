//! The broker on top of the replicated CommitLog: a send appends one entry; committed entries
//! are dispatched into a ConsumeQueue per (topic, queue), which assigns the queue offset; SEND_OK
//! goes out only after commit; pulls read committed (applied) messages only, when and where the
//! `ReadMode` allows.

mod consume_queue;
pub mod protocol;

pub use consume_queue::{ConsumeQueue, ConsumeQueues};
pub use protocol::{ClientRequest, ClientResponse, QueueKey, StoredMessage, StoredOffsetCommit};

use crate::proto::PeerMessage;
use crate::raft::{
    self, Effect, Input, Node, ProposeOutcome, ReadOutcome, RecoveryError, SafetyViolation, Status,
};
use crate::store::{Entry, PersistOp, RecoveredState};
use crate::types::{LogIndex, NodeId, ProposalId, ReadId, SyncId};
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
    /// Raft safety properties the replica broke and recorded instead of asserting (DLedger
    /// fidelity only, `raft::Fidelity`); empty for every other replica.
    fn take_safety_violations(&mut self) -> Vec<SafetyViolation> {
        Vec::new()
    }
}

/// How a DLedger-mode replica answers pulls and consumer offset queries (DLedger's `ReadMode`:
/// `UNSAFE_READ`, `RAFT_LOG_READ`, `READ_INDEX_READ`, `LEASE_READ`).
///
/// DLedger itself (`DLedgerServer.handleRead`) serves only `UNSAFE_READ` and `RAFT_LOG_READ`
/// (`READ_INDEX_READ` and `LEASE_READ` throw `UNSUPPORTED`), refuses every mode while a
/// leadership transfer is in progress (`LEADER_TRANSFERRING`), and its clients default to
/// `RAFT_LOG_READ` (`RegisterReadRequest`, `ReadCommand`, `RegisterDLedgerClient.read`).
/// RocketMQ's DLedger CommitLog does not go through `handleRead` at all. The default here is
/// `ReadIndex`, the Raft paper's (§6.4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadMode {
    /// Raft §6.4 ReadIndex (raft-rs `read_index`): the leader answers once it has confirmed it
    /// still led when the read arrived and has applied its commit index of that moment and an
    /// entry of its own term (`Input::ReadIndex`). Followers answer `NotLeader`. A leader cut
    /// off from its majority answers nothing until it steps down, then `NotLeader`.
    #[default]
    ReadIndex,
    /// DLedger `RAFT_LOG_READ` (`DLedgerServer.dealRaftLogRead`): the leader appends a no-op
    /// entry and answers once it is applied (`Input::LogRead`). Followers answer `NotLeader`.
    RaftLogRead,
    /// DLedger `UNSAFE_READ` (`dealUnsafeRead`): whichever replica gets the request, follower or
    /// deposed leader included, answers at once from what it has applied. May be stale.
    UnsafeRead,
}

/// A read waiting for the Raft node's `ReadReply`.
#[derive(Debug)]
enum PendingRead {
    Pull {
        client: ClientId,
        request_id: u64,
        queue: QueueKey,
        offset: u64,
        max: u32,
    },
    QueryOffset {
        client: ClientId,
        request_id: u64,
        group: String,
        queue: QueueKey,
    },
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
    read_mode: ReadMode,
    /// Pulls and offset queries waiting for the Raft node, by read.
    reads: BTreeMap<ReadId, PendingRead>,
    next_read: u64,
    effects: Vec<BrokerEffect>,
    /// Test-only, deliberately broken: answer SEND_OK as soon as the leader appends a send,
    /// before it commits (the simulator's scenarios must catch this). Never set it otherwise.
    #[doc(hidden)]
    pub unsafe_ack_before_commit: bool,
    /// Proposals already answered by `unsafe_ack_before_commit`.
    acked_early: std::collections::BTreeSet<ProposalId>,
    /// Test-only, deliberately broken: answer SEND_OK with a queue offset
    /// `UNSAFE_ACK_OFFSET_SHIFT` past the one the send is stored at (the oracles must name it).
    /// Never set it otherwise.
    #[doc(hidden)]
    pub unsafe_ack_wrong_offset: bool,
}

/// How far past the stored offset `unsafe_ack_wrong_offset` acknowledges a send.
#[doc(hidden)]
pub const UNSAFE_ACK_OFFSET_SHIFT: u64 = 5;

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
            read_mode: ReadMode::default(),
            reads: BTreeMap::new(),
            next_read: 0,
            effects: Vec::new(),
            unsafe_ack_before_commit: false,
            acked_early: std::collections::BTreeSet::new(),
            unsafe_ack_wrong_offset: false,
        })
    }

    /// The same replica answering reads in `mode` (default `ReadMode::ReadIndex`).
    pub fn with_read_mode(mut self, mode: ReadMode) -> Broker {
        self.read_mode = mode;
        self
    }

    pub fn read_mode(&self) -> ReadMode {
        self.read_mode
    }

    pub fn raft(&self) -> &Node {
        &self.raft
    }

    /// The Raft safety properties this replica broke since the last call (DLedger fidelity
    /// only; see `raft::SafetyViolation`).
    pub fn take_safety_violations(&mut self) -> Vec<SafetyViolation> {
        self.raft.take_safety_violations()
    }

    pub fn queue(&self, key: &QueueKey) -> Option<&ConsumeQueue> {
        self.queues.get(key)
    }

    /// The consumer offset `group` committed for `queue`, as this replica has applied it.
    pub fn committed_offset(&self, group: &str, queue: &QueueKey) -> Option<u64> {
        self.queues.committed_offset(group, queue)
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
                let read = PendingRead::Pull {
                    client,
                    request_id,
                    queue,
                    offset,
                    max,
                };
                self.read(now_ms, read);
            }
            BrokerInput::Client {
                client,
                request_id,
                request:
                    ClientRequest::CommitOffset {
                        group,
                        queue,
                        offset,
                    },
            } => {
                // Through the log, like a send: answered OffsetCommitted once applied.
                let proposal = ProposalId(self.next_proposal);
                self.next_proposal += 1;
                self.proposals.insert(proposal, (client, request_id));
                let data = StoredOffsetCommit {
                    group,
                    queue,
                    offset,
                }
                .encode();
                self.raft
                    .step(now_ms, Input::ClientPropose { proposal, data });
            }
            BrokerInput::Client {
                client,
                request_id,
                request: ClientRequest::QueryOffset { group, queue },
            } => {
                let read = PendingRead::QueryOffset {
                    client,
                    request_id,
                    group,
                    queue,
                };
                self.read(now_ms, read);
            }
        }
        self.drain_raft();
    }

    pub fn take_effects(&mut self) -> Vec<BrokerEffect> {
        std::mem::take(&mut self.effects)
    }

    /// A pull or offset query, answered from the applied (committed) state as the read mode
    /// allows: at once (`UnsafeRead`), or when the Raft node's `ReadReply` says so.
    ///
    /// # Read safety
    /// `ReadIndex` and `RaftLogRead` are linearizable: the leader answers only after a majority
    /// of its term acknowledged a heartbeat round (`ReadIndex`) or an entry (`RaftLogRead`) sent
    /// after the read arrived (so no newer leader existed then) and after it applied every entry
    /// committed before the read arrived plus an entry of its own term (Raft §6.4; before that, its commit index may lag what the
    /// previous leader acknowledged). No clock is involved. `UnsafeRead` is not linearizable: a
    /// follower or a cut-off leader answers from whatever it has applied.
    fn read(&mut self, now_ms: u64, pending: PendingRead) {
        if self.read_mode == ReadMode::UnsafeRead {
            let (client, request_id) = pending.client();
            let response = self.serve(&pending);
            self.respond(client, request_id, response);
            return;
        }
        let read = ReadId(self.next_read);
        self.next_read += 1;
        self.reads.insert(read, pending);
        let input = match self.read_mode {
            ReadMode::ReadIndex => Input::ReadIndex { read },
            ReadMode::RaftLogRead => Input::LogRead { read },
            ReadMode::UnsafeRead => unreachable!("invariant: unsafe reads are answered above"),
        };
        self.raft.step(now_ms, input);
    }

    /// The answer to a read from this replica's applied state.
    fn serve(&self, pending: &PendingRead) -> ClientResponse {
        let applied = self.raft.status().applied_index;
        match pending {
            PendingRead::Pull {
                queue, offset, max, ..
            } => self.queues.pull(queue, *offset, *max, applied),
            PendingRead::QueryOffset { group, queue, .. } => ClientResponse::Offset {
                offset: self.queues.committed_offset(group, queue),
            },
        }
    }

    fn on_read_reply(&mut self, read: ReadId, outcome: ReadOutcome) {
        let pending = self
            .reads
            .remove(&read)
            .expect("invariant: the node replies once to each read the broker made");
        let (client, request_id) = pending.client();
        let response = match outcome {
            ReadOutcome::Ready { index } => {
                assert!(
                    self.raft.status().applied_index >= index,
                    "invariant: a read is ready only once its index is applied"
                );
                self.serve(&pending)
            }
            ReadOutcome::NotLeader { leader_hint } => ClientResponse::NotLeader { leader_hint },
            ReadOutcome::Busy => ClientResponse::Busy,
            ReadOutcome::Timeout => ClientResponse::Timeout,
        };
        self.respond(client, request_id, response);
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
                Effect::ReadReply { read, outcome } => self.on_read_reply(read, outcome),
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
            let Some(message) = StoredMessage::decode(&stored.data) else {
                // A consumer offset commit: applied to the offset table by `dispatch`.
                self.respond(client, request_id, ClientResponse::OffsetCommitted);
                continue;
            };
            let queue_offset = self
                .queues
                .get(&message.queue)
                .and_then(|q| q.offset_of(index))
                .expect("invariant: an applied send was dispatched to its ConsumeQueue");
            let queue_offset = if self.unsafe_ack_wrong_offset {
                queue_offset + UNSAFE_ACK_OFFSET_SHIFT
            } else {
                queue_offset
            };
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

impl PendingRead {
    fn client(&self) -> (ClientId, u64) {
        match self {
            PendingRead::Pull {
                client, request_id, ..
            }
            | PendingRead::QueryOffset {
                client, request_id, ..
            } => (*client, *request_id),
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
    fn take_safety_violations(&mut self) -> Vec<SafetyViolation> {
        Broker::take_safety_violations(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::Role;

    /// A fresh one-replica group (node 0), default config: it elects itself.
    fn single_replica() -> Broker {
        Broker::new(
            raft::Config::default(),
            NodeId(0),
            vec![NodeId(0)],
            RecoveredState::default(),
            1,
        )
        .expect("a fresh replica")
    }

    /// Node 1 of a fresh group of three, default config: a follower until it times out.
    fn fresh_follower() -> Broker {
        Broker::new(
            raft::Config::default(),
            NodeId(1),
            vec![NodeId(0), NodeId(1), NodeId(2)],
            RecoveredState::default(),
            1,
        )
        .expect("a fresh replica")
    }

    fn queue() -> QueueKey {
        QueueKey {
            topic: "orders".into(),
            queue_id: 1,
        }
    }

    /// Steps a one-replica group until `until_ms`, completing every sync at once; returns the
    /// client responses seen.
    fn run(broker: &mut Broker, from_ms: u64, until_ms: u64) -> Vec<(u64, ClientResponse)> {
        let mut responses = Vec::new();
        let mut now = from_ms;
        while now <= until_ms {
            broker.step(now, BrokerInput::Tick);
            loop {
                let effects = broker.take_effects();
                if effects.is_empty() {
                    break;
                }
                for effect in effects {
                    match effect {
                        BrokerEffect::Sync { sync_id } => {
                            broker.step(now, BrokerInput::Persisted { sync_id })
                        }
                        BrokerEffect::Respond {
                            request_id,
                            response,
                            ..
                        } => responses.push((request_id, response)),
                        BrokerEffect::Send { .. } | BrokerEffect::Persist(_) => {}
                    }
                }
            }
            now += 10;
        }
        responses
    }

    fn client(broker: &mut Broker, now_ms: u64, request_id: u64, request: ClientRequest) {
        broker.step(
            now_ms,
            BrokerInput::Client {
                client: ClientId(7),
                request_id,
                request,
            },
        );
    }

    #[test]
    fn offset_commits_go_through_the_log_and_are_not_messages() {
        // Why: consumer offsets are committed through the log (DESIGN.md); readers that build
        // per-queue logs from entries must not mistake a commit for a message.
        let mut broker = single_replica();
        run(&mut broker, 0, 20_000);
        assert_eq!(broker.raft().status().role, Role::Leader);
        let query = ClientRequest::QueryOffset {
            group: "g".into(),
            queue: queue(),
        };
        client(&mut broker, 20_000, 1, query.clone());
        let send = ClientRequest::Send {
            queue: queue(),
            msg_id: "m0".into(),
        };
        client(&mut broker, 20_000, 2, send);
        let commit = ClientRequest::CommitOffset {
            group: "g".into(),
            queue: queue(),
            offset: 1,
        };
        client(&mut broker, 20_000, 3, commit);
        let responses = run(&mut broker, 20_000, 20_100);
        assert!(responses.contains(&(1, ClientResponse::Offset { offset: None })));
        assert!(responses.iter().any(|(id, r)| *id == 2
            && matches!(
                r,
                ClientResponse::SendOk {
                    queue_offset: 0,
                    ..
                }
            )));
        assert!(responses.contains(&(3, ClientResponse::OffsetCommitted)));
        client(&mut broker, 20_100, 4, query);
        let responses = run(&mut broker, 20_100, 20_110);
        assert!(responses.contains(&(4, ClientResponse::Offset { offset: Some(1) })));
        // The commit is a log entry, but neither a message nor part of the queue (ReadIndex
        // queries append no entry).
        let last = broker
            .raft()
            .log()
            .iter()
            .rev()
            .find(|entry| entry.kind == crate::store::EntryKind::Normal)
            .expect("entries")
            .clone();
        assert_eq!(StoredMessage::decode(&last.data), None);
        assert_eq!(
            StoredOffsetCommit::decode(&last.data).map(|c| c.offset),
            Some(1)
        );
        assert_eq!(broker.queue(&queue()).map(ConsumeQueue::len), Some(1));
        let message = StoredMessage {
            queue: queue(),
            msg_id: "m0".into(),
        };
        assert_eq!(StoredOffsetCommit::decode(&message.encode()), None);
    }

    /// A one-replica group stepped until it is leader, its no-op not yet durable: the syncs
    /// asked for since it won are returned, not completed. Returns the time reached.
    fn leader_with_held_noop(broker: &mut Broker) -> (u64, Vec<SyncId>) {
        let mut held = Vec::new();
        let mut now = 0;
        while broker.raft().status().role != Role::Leader && now < 20_000 {
            broker.step(now, BrokerInput::Tick);
            for effect in broker.take_effects() {
                if let BrokerEffect::Sync { sync_id } = effect {
                    if broker.raft().status().role == Role::Leader {
                        held.push(sync_id);
                    } else {
                        broker.step(now, BrokerInput::Persisted { sync_id });
                    }
                }
            }
            // Syncs asked for while handling a Persisted (the step may have made it leader)
            // are held.
            for effect in broker.take_effects() {
                if let BrokerEffect::Sync { sync_id } = effect {
                    held.push(sync_id);
                }
            }
            now += 10;
        }
        assert_eq!(broker.raft().status().role, Role::Leader);
        (now, held)
    }

    fn responses(broker: &mut Broker) -> Vec<(u64, ClientResponse)> {
        broker
            .take_effects()
            .into_iter()
            .filter_map(|effect| match effect {
                BrokerEffect::Respond {
                    request_id,
                    response,
                    ..
                } => Some((request_id, response)),
                _ => None,
            })
            .collect()
    }

    fn pull_all() -> ClientRequest {
        ClientRequest::Pull {
            queue: queue(),
            offset: 0,
            max: 8,
        }
    }

    #[test]
    fn a_new_leader_serves_pulls_only_after_applying_an_entry_of_its_term() {
        // Why: Raft §6.4 step 1: before its first entry commits, a new leader's commit index
        // may lag what the previous leader acknowledged; a pull then could miss an acknowledged
        // message. ReadIndex holds the pull until the no-op of the leader's term is applied.
        let mut broker = single_replica();
        let (now, held) = leader_with_held_noop(&mut broker);
        // The leader's first entry is not durable yet, so nothing of its term is applied.
        assert_eq!(broker.raft().status().applied_index, LogIndex(0));
        client(&mut broker, now, 1, pull_all());
        assert_eq!(responses(&mut broker), Vec::new());
        for sync_id in held {
            broker.step(now, BrokerInput::Persisted { sync_id });
        }
        assert_eq!(
            responses(&mut broker),
            vec![(
                1,
                ClientResponse::Pulled {
                    offset: 0,
                    msg_ids: Vec::new()
                }
            )]
        );
    }

    #[test]
    fn unsafe_read_answers_at_once_from_applied_state_on_any_replica() {
        // Why: DLedger UNSAFE_READ (`dealUnsafeRead`) does no check at all: a follower answers
        // from what it has applied, where ReadIndex and RAFT_LOG_READ send it to the leader.
        let follower = |mode| fresh_follower().with_read_mode(mode);
        let mut unsafe_follower = follower(ReadMode::UnsafeRead);
        client(&mut unsafe_follower, 0, 1, pull_all());
        assert_eq!(
            responses(&mut unsafe_follower),
            vec![(
                1,
                ClientResponse::Pulled {
                    offset: 0,
                    msg_ids: Vec::new()
                }
            )]
        );
        for mode in [ReadMode::ReadIndex, ReadMode::RaftLogRead] {
            let mut broker = follower(mode);
            client(&mut broker, 0, 1, pull_all());
            assert_eq!(
                responses(&mut broker),
                vec![(1, ClientResponse::NotLeader { leader_hint: None })],
                "{mode:?}"
            );
        }
    }

    #[test]
    fn unsafe_read_on_a_new_leader_may_miss_what_is_committed() {
        // Why: the stale read UNSAFE_READ allows: a leader whose no-op is not yet applied
        // answers at once from an applied index that may lag the commit index (here 0).
        let mut broker = single_replica().with_read_mode(ReadMode::UnsafeRead);
        let (now, _held) = leader_with_held_noop(&mut broker);
        client(&mut broker, now, 1, pull_all());
        assert_eq!(
            responses(&mut broker),
            vec![(
                1,
                ClientResponse::Pulled {
                    offset: 0,
                    msg_ids: Vec::new()
                }
            )]
        );
        assert_eq!(broker.raft().status().applied_index, LogIndex(0));
    }

    #[test]
    fn raft_log_read_answers_when_its_noop_is_applied() {
        // Why: DLedger RAFT_LOG_READ (`dealRaftLogRead`) appends a NOOP entry per read and
        // answers when it is applied: the pull then sees every send committed before it.
        let mut broker = single_replica().with_read_mode(ReadMode::RaftLogRead);
        run(&mut broker, 0, 20_000);
        let send = ClientRequest::Send {
            queue: queue(),
            msg_id: "m0".into(),
        };
        client(&mut broker, 20_000, 1, send);
        client(&mut broker, 20_000, 2, pull_all());
        let read_entry = broker
            .raft()
            .log()
            .last()
            .expect("the read's entry")
            .clone();
        assert_eq!(read_entry.kind, crate::store::EntryKind::Noop);
        // Nothing is answered before the entries are durable and applied.
        for effect in broker.take_effects() {
            match effect {
                BrokerEffect::Respond { .. } => panic!("answered before commit: {effect:?}"),
                BrokerEffect::Sync { sync_id } => {
                    broker.step(20_001, BrokerInput::Persisted { sync_id })
                }
                BrokerEffect::Send { .. } | BrokerEffect::Persist(_) => {}
            }
        }
        let responses = responses(&mut broker);
        assert!(responses.contains(&(
            2,
            ClientResponse::Pulled {
                offset: 0,
                msg_ids: vec!["m0".to_string()]
            }
        )));
        assert!(broker.raft().status().applied_index >= read_entry.index);
    }

    #[test]
    fn a_follower_refuses_offset_queries_and_commits_naming_the_leader() {
        // Why: offsets are answered from committed state by the leader only.
        let mut broker = fresh_follower();
        client(
            &mut broker,
            0,
            1,
            ClientRequest::QueryOffset {
                group: "g".into(),
                queue: queue(),
            },
        );
        client(
            &mut broker,
            0,
            2,
            ClientRequest::CommitOffset {
                group: "g".into(),
                queue: queue(),
                offset: 3,
            },
        );
        let responses: Vec<_> = broker
            .take_effects()
            .into_iter()
            .filter_map(|effect| match effect {
                BrokerEffect::Respond {
                    request_id,
                    response,
                    ..
                } => Some((request_id, response)),
                _ => None,
            })
            .collect();
        assert_eq!(
            responses,
            vec![
                (1, ClientResponse::NotLeader { leader_hint: None }),
                (2, ClientResponse::NotLeader { leader_hint: None }),
            ]
        );
    }
}
