//! DLedger-style Raft as a pure state machine.
//!
//! ```text
//! let mut node = Node::new(config, id, members, recovered, rng_seed)?;
//! node.step(now_ms, Input::Tick);
//! for effect in node.take_effects() { /* Send, Persist, Sync, Reply, Apply */ }
//! let wake_at_ms = node.next_deadline_ms();
//! ```
//! `now_ms` is the node's *local* clock (the caller applies skew and drift); it must never go
//! backwards between steps of one node instance.
//!
//! Caller contract:
//! - carry out effects in order; `Persist` ops are applied to the disk in order, and a crash may
//!   drop any suffix of those not covered by a completed `Sync`;
//! - `Node::new` may already have effects (`Persist(TruncateFrom)` + `Sync` when it cut a torn
//!   tail): take them before the first step;
//! - timers are armed at the first `step` (send a `Tick` right after creating the node);
//! - `Persisted { sync_id }` goes only to the node instance that emitted that `Sync`: drop it if
//!   the node restarted in between (the node panics on a sync id it never issued).

mod client;
mod config;
mod durability;
mod election;
mod invariants;
mod log;
mod node;
mod progress;
mod replication;
#[cfg(test)]
mod tests;

pub use config::{Config, ConfigError};
pub use node::{Node, RecoveryError};

use crate::proto::Message;
use crate::store::{Entry, PersistOp};
use crate::types::{LogIndex, NodeId, ProposalId, SyncId, Term};
use serde::{Deserialize, Serialize};

/// What the caller feeds into `Node::step`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Time passed; fire whatever timers are due at `now_ms`.
    Tick,
    /// A message from another replica arrived.
    Message { from: NodeId, msg: Message },
    /// A client asks the node to replicate `data`. Answered later with `Effect::Reply`.
    ClientPropose { proposal: ProposalId, data: Vec<u8> },
    /// Every write requested before `Effect::Sync { sync_id }` (inclusive) is now durable.
    Persisted { sync_id: SyncId },
    /// Ask this node, if leader, to hand leadership to `to` once `to` is caught up.
    TransferLeadership { to: NodeId },
}

/// What the node asks its caller to do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Send a message to another replica (best effort: it may be lost, delayed, duplicated).
    Send { to: NodeId, msg: Message },
    /// Write to the local disk (not yet durable).
    Persist(PersistOp),
    /// Make every earlier `Persist` durable, then report `Input::Persisted { sync_id }`.
    Sync { sync_id: SyncId },
    /// The answer to a `ClientPropose`.
    Reply {
        proposal: ProposalId,
        outcome: ProposeOutcome,
    },
    /// Entries that are now committed, in log order; each index is applied once per node
    /// lifetime (after a restart, application starts again from index 1).
    Apply { entries: Vec<Entry> },
}

/// The answer to one proposal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProposeOutcome {
    /// Committed at `index` in `term` (the node's term when it was proposed).
    Committed { index: LogIndex, term: Term },
    /// Definitely not appended: this node is not the leader. `leader_hint` is who it believes is.
    NotLeader { leader_hint: Option<NodeId> },
    /// Definitely not appended: too many proposals are waiting (`pending_proposals_max`) or a
    /// leadership transfer is in progress.
    Busy,
    /// Appended but not committed within `max_wait_ack_ms` (DLedger `WAIT_QUORUM_ACK_TIMEOUT`):
    /// it may still commit later, or be truncated.
    Timeout,
    /// Appended, then this node stopped being leader before commit: it may still commit.
    LeadershipLost,
}

/// Raft roles. Allowed transitions are listed in one `match` in the node (`Role::may_become`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    Follower,
    /// Asking for pre-votes (Raft §9.6): term not yet incremented.
    PreCandidate,
    Candidate,
    Leader,
}

impl Role {
    /// The role state machine, in one place (sled-style): every allowed `from -> to` pair.
    pub fn may_become(self, to: Role) -> bool {
        use Role::*;
        match (self, to) {
            (Follower, PreCandidate) | (Follower, Candidate) | (Follower, Follower) => true,
            (PreCandidate, Candidate) | (PreCandidate, Follower) | (PreCandidate, PreCandidate) => {
                true
            }
            (Candidate, Leader) | (Candidate, Follower) | (Candidate, Candidate) => true,
            (Candidate, PreCandidate) => false,
            (Leader, Follower) => true,
            (Follower, Leader) | (PreCandidate, Leader) | (Leader, PreCandidate) => false,
            (Leader, Candidate) | (Leader, Leader) => false,
        }
    }
}

/// A snapshot of what a node believes, for observers (metrics, cluster invariant checks).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub id: NodeId,
    pub role: Role,
    pub term: Term,
    pub voted_for: Option<NodeId>,
    pub leader: Option<NodeId>,
    pub last_index: LogIndex,
    pub last_term: Term,
    /// Highest index known durable on this node.
    pub durable_index: LogIndex,
    pub commit_index: LogIndex,
    pub applied_index: LogIndex,
}
