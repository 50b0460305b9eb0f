//! DLedger-style Raft as a pure state machine.
//!
//! ```text
//! let mut node = Node::new(config, id, members, recovered, rng_seed)?;
//! node.step(now_ms, Input::Tick);
//! for effect in node.take_effects() { /* Send, Persist, Sync, Reply, Apply, ReadReply */ }
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
//!
//! # Reads
//! `Input::ReadIndex` (Raft §6.4) answers `Effect::ReadReply` once the leader has confirmed
//! it still leads and has applied the read index; `Input::LogRead` (DLedger `RAFT_LOG_READ`)
//! appends a no-op and answers once it is applied. See `reads.rs`.
//!
//! # Fidelity: Raft or DLedger
//! `Config::fidelity` (`Fidelity`) holds one switch per way DLedger departs from the Raft
//! paper; all off (the default) is the paper, `Fidelity::DLEDGER` / `Config::dledger_fidelity()`
//! is DLedger (openmessaging/dledger up to `dledger-all-0.3.1.2`):
//!
//! | switch | DLedger source | Raft instead |
//! |---|---|---|
//! | `commit_by_quorum_watermark` | `DLedgerEntryPusher.QuorumAckChecker.doWork`: commit the median watermark; `updateCommittedIndex` / `MemberState.leaderUpdateCommittedIndex` check only the leader's term | commit by count only an entry of the current term (§5.4.2, Figure 8) |
//! | `skip_noop_on_election` | `DLedgerConfig.enableFastAdvanceCommitIndex = false`; `changeRoleToLeader` heartbeats at once | a new leader appends a no-op (§8) |
//! | `watermark_from_compare` | `EntryDispatcher.doCompare` + `changeState(index, APPEND)` → `updatePeerWaterMark(term, peer, index)` | match index learned from acknowledged appends |
//! | `dledger_vote_checks` | `DLedgerLeaderElector.handleVote` (log, then term, `TERM_NOT_READY`); `maintainAsCandidate` (revote in the same term unless `WAIT_TO_VOTE_NEXT`) | pre-vote, term first, stickiness, a new term per election |
//! | `step_down_by_heartbeat_rounds` | `DLedgerLeaderElector.sendHeartbeats` / `maintainAsLeader` (`lastSuccHeartBeatTime`, `maxHeartBeatLeak`) | check quorum on per-peer last response |
//! | `compare_below_commit` | `EntryHandler.handleDoCompare` / `handleDoTruncate` ignore the committed index; `EntryDispatcher.doCompare` steps back until the logs agree | a follower never points the leader below its commit index + 1 |
//!
//! With any switch on, a node that breaks a Raft safety property it would otherwise assert
//! (today: truncating an entry it knew committed) records a `SafetyViolation` instead of
//! panicking, keeps its applied state (apply stays monotone) and carries on; read them with
//! `Node::take_safety_violations`.

mod client;
mod config;
mod durability;
mod election;
mod invariants;
mod log;
mod node;
mod progress;
mod reads;
mod replication;
#[cfg(test)]
mod tests;

pub use config::{Config, ConfigError, Fidelity};
pub use node::{Node, RecoveryError};

use crate::proto::Message;
use crate::store::{Entry, PersistOp};
use crate::types::{LogIndex, NodeId, ProposalId, ReadId, SyncId, Term};
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
    /// A linearizable read (Raft §6.4 ReadIndex): answered `ReadReply` with `Ready { index }`
    /// once this leader has committed an entry of its term, has confirmed, by a majority of
    /// its term echoing a heartbeat round sent after the read arrived, that it still led then,
    /// and has applied `index` (its commit index when it took the read). Appends no entry.
    ReadIndex { read: ReadId },
    /// A read through the log (DLedger `RAFT_LOG_READ`): the leader appends a no-op and
    /// answers `ReadReply` with `Ready { index }` once that entry is applied.
    LogRead { read: ReadId },
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
    /// The answer to a `ReadIndex` or `LogRead`; with `Ready`, it follows the `Apply` that
    /// reached the read's index.
    ReadReply { read: ReadId, outcome: ReadOutcome },
}

/// The answer to one read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadOutcome {
    /// Serve the read from the applied state now: it is linearizable at any index from `index`
    /// (applied) on.
    Ready { index: LogIndex },
    /// Not served: this node is not (or stopped being) the leader.
    NotLeader { leader_hint: Option<NodeId> },
    /// Not served: too many reads are waiting (`pending_reads_max`), or a leadership transfer
    /// is in progress (DLedger `LEADER_TRANSFERRING`).
    Busy,
    /// A `LogRead` whose entry was not applied within `max_wait_ack_ms`.
    Timeout,
}

/// A Raft safety property that a node with DLedger switches on (`Fidelity`) broke. Such a node
/// records it instead of asserting, keeps its applied state and goes on, so that observers can
/// see what the break costs (an acknowledged message lost, a read that is later undone).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SafetyViolation {
    /// State Machine Safety / Leader Completeness (Raft §5.4): this follower truncated entries
    /// from `from` on to take the conflicting entries of `leader` (term `term`), though it knew
    /// entries up to `commit_index` committed and had applied up to `applied_index`. Its commit
    /// index falls back to `from - 1`; its applied index stays (apply is monotone), so the
    /// entries it applied at `from..=applied_index` differ from the log it now holds.
    CommittedEntryTruncated {
        from: LogIndex,
        commit_index: LogIndex,
        applied_index: LogIndex,
        term: Term,
        leader: NodeId,
    },
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
