//! Unit tests that drive one node and assert the exact effects it asks for (in the style of
//! openraft's engine tests). Timing uses the DLedger defaults: election timeout base 6000 ms,
//! vote interval 300..=1000 ms, heartbeat 2000 ms.

mod election;
mod fidelity;
mod flow_control;
mod reads;
mod recovery;
mod replication;
mod transfer;

use super::{Config, Effect, Input, Node, ProposeOutcome, Role};
use crate::proto::Message;
use crate::store::{Entry, EntryKind, HardState, PersistOp, RecoveredState};
use crate::types::{LogIndex, NodeId, ProposalId, SyncId, Term};

pub(super) const N1: NodeId = NodeId(1);
pub(super) const N2: NodeId = NodeId(2);
pub(super) const N3: NodeId = NodeId(3);

/// Past the latest possible first election deadline (6000 + 1000).
pub(super) const AFTER_TIMEOUT_MS: u64 = 7000;

pub(super) fn members(count: u32) -> Vec<NodeId> {
    (1..=count).map(NodeId).collect()
}

pub(super) fn node_with(id: NodeId, count: u32, recovered: RecoveredState) -> Node {
    Node::new(Config::default(), id, members(count), recovered, 7).expect("valid test node")
}

/// A fresh node that has seen its first step at time 0.
pub(super) fn fresh(id: NodeId, count: u32) -> Node {
    fresh_with(id, count, Config::default())
}

/// A fresh node with `config` that has seen its first step at time 0.
pub(super) fn fresh_with(id: NodeId, count: u32, config: Config) -> Node {
    let mut node = Node::new(config, id, members(count), RecoveredState::default(), 7)
        .expect("valid test node");
    node.step(0, Input::Tick);
    assert_eq!(Vec::<Effect>::new(), node.take_effects());
    node
}

/// Builds a chained log from `(term, kind)` pairs, starting at index 1.
pub(super) fn chain(terms: &[u64]) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    for (position, term) in terms.iter().enumerate() {
        let previous = entries.last().map_or(0, |entry| entry.checksum);
        let data = vec![position as u8];
        entries.push(Entry::new(
            previous,
            LogIndex(position as u64 + 1),
            Term(*term),
            EntryKind::Normal,
            data,
        ));
    }
    entries
}

pub(super) fn msg(from: NodeId, msg: Message) -> Input {
    Input::Message { from, msg }
}

pub(super) fn persisted(sync_id: u64) -> Input {
    Input::Persisted {
        sync_id: SyncId(sync_id),
    }
}

pub(super) fn send(to: NodeId, msg: Message) -> Effect {
    Effect::Send { to, msg }
}

pub(super) fn hard_state(term: u64, voted_for: Option<NodeId>) -> Effect {
    Effect::Persist(PersistOp::HardState(HardState {
        commit_mark: LogIndex(0),
        log_end_mark: LogIndex(0),
        forgotten_through: LogIndex(0),
        term: Term(term),
        voted_for,
    }))
}

pub(super) fn sync(sync_id: u64) -> Effect {
    Effect::Sync {
        sync_id: SyncId(sync_id),
    }
}

pub(super) fn vote_request(
    term: u64,
    candidate: NodeId,
    last: (u64, u64),
    pre_vote: bool,
) -> Message {
    Message::VoteRequest {
        term: Term(term),
        candidate,
        last_log_index: LogIndex(last.0),
        last_log_term: Term(last.1),
        pre_vote,
        leadership_transfer: false,
    }
}

pub(super) fn granted(term: u64, pre_vote: bool) -> Message {
    Message::VoteResponse {
        term: Term(term),
        pre_vote,
        granted: true,
        reject_reason: None,
    }
}

pub(super) fn append_ok(term: u64, matched: u64, last: u64) -> Message {
    Message::AppendResponse {
        term: Term(term),
        success: true,
        match_or_hint: LogIndex(matched),
        last_log_index: LogIndex(last),
        read_round: 0,
        forgot: false,
    }
}

pub(super) fn noop(previous: u32, index: u64, term: u64) -> Entry {
    Entry::new(
        previous,
        LogIndex(index),
        Term(term),
        EntryKind::Noop,
        Vec::new(),
    )
}

/// Node 1 of `count`, elected leader of term 1 at time `AFTER_TIMEOUT_MS` with pre-vote and
/// votes from nodes 2..=majority; its noop (index 1) is durable locally. Effects are drained.
pub(super) fn leader_of(count: u32) -> Node {
    leader_with(count, Config::default())
}

/// As `leader_of`, with `config`.
pub(super) fn leader_with(count: u32, config: Config) -> Node {
    let mut node = fresh_with(N1, count, config);
    let now = AFTER_TIMEOUT_MS;
    node.step(now, Input::Tick);
    let majority = count / 2 + 1;
    for voter in 2..=majority {
        node.step(now, msg(NodeId(voter), granted(1, true)));
    }
    node.step(now, persisted(1));
    for voter in 2..=majority {
        node.step(now, msg(NodeId(voter), granted(1, false)));
    }
    assert_eq!(Role::Leader, node.status().role);
    node.step(now, persisted(2));
    node.take_effects();
    assert_eq!(LogIndex(1), node.status().durable_index);
    node
}

pub(super) fn replies(effects: &[Effect]) -> Vec<(ProposalId, ProposeOutcome)> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Reply { proposal, outcome } => Some((*proposal, outcome.clone())),
            _ => None,
        })
        .collect()
}
