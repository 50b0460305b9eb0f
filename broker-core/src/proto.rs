//! Every message between replicas. Client-facing messages live with the broker layer.

use crate::store::Entry;
use crate::types::{LogIndex, NodeId, Term};
use serde::{Deserialize, Serialize};

/// Why a vote (or pre-vote) was refused. Named after DLedger's `VoteResponse.RESULT` values
/// where one exists, so a trace reads like DLedger's logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VoteRejectReason {
    /// The candidate's term is older than ours (DLedger `REJECT_EXPIRED_VOTE_TERM`).
    ExpiredVoteTerm,
    /// We already voted for someone else in this term (`REJECT_ALREADY_VOTED`).
    AlreadyVoted,
    /// We heard from a live leader recently (`REJECT_ALREADY_HAS_LEADER`).
    AlreadyHasLeader,
    /// The candidate's last log term is older than ours (`REJECT_EXPIRED_LEDGER_TERM`).
    ExpiredLedgerTerm,
    /// Same last term, shorter log (`REJECT_SMALL_LEDGER_END_INDEX`).
    SmallLedgerEndIndex,
    /// DLedger fidelity: the candidate's term was ahead of ours; we adopted it (stepping down)
    /// and the candidate should ask again in that term (`REJECT_TERM_NOT_READY`).
    TermNotReady,
    /// DLedger fidelity: the candidate's term is below the term of our last entry
    /// (`REJECT_TERM_SMALL_THAN_LEDGER`).
    TermSmallThanLedger,
    /// `disk_marks`: our disk lost what we acknowledged or voted, and we have not caught up
    /// from a leader yet: we vote for nobody.
    CatchingUp,
}

/// A Raft message. Heartbeats are `AppendRequest`s with no entries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// RequestVote (Raft §5.2), or a pre-vote (§9.6) when `pre_vote` is set: a pre-vote carries
    /// the term the candidate *would* use and changes no state on the receiver.
    VoteRequest {
        term: Term,
        candidate: NodeId,
        last_log_index: LogIndex,
        last_log_term: Term,
        pre_vote: bool,
        /// Set when the leader asked for this election (`TimeoutNow`): bypasses leader stickiness.
        leadership_transfer: bool,
    },
    VoteResponse {
        term: Term,
        pre_vote: bool,
        granted: bool,
        reject_reason: Option<VoteRejectReason>,
    },
    /// AppendEntries (Raft §5.3); `entries` empty = heartbeat.
    AppendRequest {
        term: Term,
        leader: NodeId,
        prev_log_index: LogIndex,
        prev_log_term: Term,
        entries: Vec<Entry>,
        leader_commit: LogIndex,
        /// The leader's latest ReadIndex round (Raft §6.4; raft-rs's heartbeat context): every
        /// request carries it, so periodic heartbeats repeat a round whose messages were lost.
        /// 0: no round started in this term.
        read_round: u64,
    },
    AppendResponse {
        term: Term,
        /// True when the entries were accepted *and are durable* on the follower.
        success: bool,
        /// On success: the highest index known to match the leader (durable).
        /// On failure: a hint, the index the leader should retry from (follower's last index + 1
        /// or the first index of the conflicting term).
        match_or_hint: LogIndex,
        /// The follower's last log index, durable or not.
        last_log_index: LogIndex,
        /// `disk_marks`: the follower's disk lost entries it may have acknowledged and it has
        /// not caught up since: the leader forgets its acknowledgements beyond its log.
        #[serde(default)]
        forgot: bool,
        /// The highest `read_round` the follower has received from the leader of its current
        /// term (0: none): echoing a round confirms that the follower was still in the leader's
        /// term after that round was sent.
        read_round: u64,
    },
    /// Sent by a leader to a caught-up follower it hands leadership to: start an election now.
    TimeoutNow { term: Term },
}

impl Message {
    pub fn term(&self) -> Term {
        match self {
            Message::VoteRequest { term, .. }
            | Message::VoteResponse { term, .. }
            | Message::AppendRequest { term, .. }
            | Message::AppendResponse { term, .. }
            | Message::TimeoutNow { term } => *term,
        }
    }
}

/// Classic master–slave replication (RocketMQ's HAService): no terms, no elections. The master
/// is authoritative; the chained checksum lets both sides tell where a slave's log stops
/// agreeing with the master's (see `master_slave` for the protocol).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HaMessage {
    /// Slave → master (HAClient's offset report, sent every `slave_report_interval_ms` and after
    /// every fsync): the slave's log up to `index` is durable, and its entry at `index` has
    /// `checksum` (0 at index 0). `index` is the slave's durable index, or lower while the slave
    /// is looking for the point where it agrees with the master.
    Report { index: LogIndex, checksum: u32 },
    /// Master → slave (HAConnection's transfer): `entries` follow the master's entry at
    /// `prev_index`, whose checksum is `prev_checksum`; `master_commit` is what the master has
    /// acknowledged to clients.
    Push {
        prev_index: LogIndex,
        prev_checksum: u32,
        entries: Vec<Entry>,
        master_commit: LogIndex,
    },
}

/// Anything one replica sends another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerMessage {
    Raft(Message),
    Ha(HaMessage),
}
