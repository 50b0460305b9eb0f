//! The broker on top of the replicated CommitLog: a send appends one entry; committed entries
//! are dispatched into a ConsumeQueue per (topic, queue), which assigns the queue offset; SEND_OK
//! goes out only after commit; pulls read committed messages only.

mod consume_queue;
pub mod protocol;

pub use consume_queue::{ConsumeQueue, ConsumeQueues};
pub use protocol::{ClientRequest, ClientResponse, QueueKey, StoredMessage, StoredOffsetCommit};

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
                let response = self.pull(&queue, offset, max);
                self.respond(client, request_id, response);
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
                let response = match self.readable() {
                    Ok(_) => ClientResponse::Offset {
                        offset: self.queues.committed_offset(&group, &queue),
                    },
                    Err(refusal) => refusal,
                };
                self.respond(client, request_id, response);
            }
        }
        self.drain_raft();
    }

    pub fn take_effects(&mut self) -> Vec<BrokerEffect> {
        std::mem::take(&mut self.effects)
    }

    /// A pull, served by the leader from its applied (committed) log.
    ///
    /// # Read safety
    /// A leader serves reads only once it has applied an entry of its own term (Raft §8):
    /// before that, its commit index may lag what the previous leader acknowledged, and a pull
    /// could miss an acknowledged message (`Busy` until then). There is no ReadIndex round:
    /// a leader that was cut off still serves pulls from its local state until check-quorum
    /// makes it step down. This is safe as long as no other leader can commit in the
    /// meantime: followers refuse votes while they hear from a leader (leader stickiness) and
    /// the old leader steps down after the election timeout without a quorum, so the reads
    /// rest on a lease of one election timeout, which holds only with bounded clock drift
    /// between replicas. Scenarios that skew clocks past that bound can show stale reads.
    fn pull(&self, queue: &QueueKey, offset: u64, max: u32) -> ClientResponse {
        match self.readable() {
            Ok(applied) => self.queues.pull(queue, offset, max, applied),
            Err(refusal) => refusal,
        }
    }

    /// The applied index a leader may read at, or the refusal (see `pull`).
    fn readable(&self) -> Result<LogIndex, ClientResponse> {
        let status = self.raft.status();
        if status.role != Role::Leader {
            return Err(ClientResponse::NotLeader {
                leader_hint: status.leader,
            });
        }
        let applied_term = usize::try_from(status.applied_index.0)
            .ok()
            .and_then(|applied| applied.checked_sub(1))
            .and_then(|position| self.raft.log().get(position))
            .map(|entry| entry.term);
        if applied_term != Some(status.term) {
            return Err(ClientResponse::Busy);
        }
        Ok(status.applied_index)
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut broker = Broker::new(
            raft::Config::default(),
            NodeId(0),
            vec![NodeId(0)],
            RecoveredState::default(),
            1,
        )
        .expect("a fresh replica");
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
        // The commit is a log entry, but neither a message nor part of the queue.
        let last = broker.raft().log().last().expect("entries").clone();
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

    #[test]
    fn a_new_leader_serves_pulls_only_after_applying_an_entry_of_its_term() {
        // Why: Raft §8: before its first entry commits, a new leader's commit index may lag
        // what the previous leader acknowledged; a pull then could miss an acknowledged message.
        let mut broker = Broker::new(
            raft::Config::default(),
            NodeId(0),
            vec![NodeId(0)],
            RecoveredState::default(),
            1,
        )
        .expect("a fresh replica");
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
        let pull = ClientRequest::Pull {
            queue: queue(),
            offset: 0,
            max: 8,
        };
        // The leader's first entry is not durable yet, so nothing of its term is applied.
        assert_eq!(broker.raft().status().applied_index, LogIndex(0));
        client(&mut broker, now, 1, pull.clone());
        let responses: Vec<_> = broker
            .take_effects()
            .into_iter()
            .filter_map(|effect| match effect {
                BrokerEffect::Respond { response, .. } => Some(response),
                _ => None,
            })
            .collect();
        assert_eq!(responses, vec![ClientResponse::Busy]);
        for sync_id in held {
            broker.step(now, BrokerInput::Persisted { sync_id });
        }
        run(&mut broker, now, now + 100);
        client(&mut broker, now + 100, 2, pull);
        let responses = run(&mut broker, now + 100, now + 110);
        assert!(responses.contains(&(
            2,
            ClientResponse::Pulled {
                offset: 0,
                msg_ids: Vec::new()
            }
        )));
    }

    #[test]
    fn a_follower_refuses_offset_queries_and_commits_naming_the_leader() {
        // Why: offsets are answered from committed state by the leader only.
        let mut broker = Broker::new(
            raft::Config::default(),
            NodeId(1),
            vec![NodeId(0), NodeId(1), NodeId(2)],
            RecoveredState::default(),
            1,
        )
        .expect("a fresh replica");
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
