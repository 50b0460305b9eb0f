use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Timing and bounds of one replica. Defaults follow DLedger's `DLedgerConfig`; the protocol
/// follows the Raft paper unless `fidelity` switches on DLedger's departures from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Leader heartbeat period (DLedger `heartBeatTimeIntervalMs` = 2000).
    pub heartbeat_interval_ms: u64,
    /// Missed heartbeats before a follower starts an election, and before a leader that has not
    /// heard from a majority steps down (DLedger `maxHeartBeatLeak` = 3).
    pub max_heartbeat_leak: u32,
    /// Random wait before (re)trying an election (DLedger `minVoteIntervalMs` = 300).
    pub vote_interval_ms_min: u64,
    /// (DLedger `maxVoteIntervalMs` = 1000).
    pub vote_interval_ms_max: u64,
    /// A proposal not committed within this is answered `Timeout` (DLedger `maxWaitAckTimeMs`).
    pub max_wait_ack_ms: u64,
    /// A leader resends entries a follower has not acknowledged within this
    /// (DLedger `maxPushTimeOutMs` = 1000).
    pub append_resend_ms: u64,
    /// Ask for pre-votes before incrementing the term (Raft §9.6; DLedger has no pre-vote but
    /// its `REJECT_ALREADY_HAS_LEADER` plays the same role).
    pub pre_vote: bool,
    /// Most entries in one AppendRequest.
    pub append_batch_entries_max: u32,
    /// Most entries sent to one follower and not yet acknowledged.
    pub inflight_entries_max: u32,
    /// Most proposals waiting for commit on a leader; more are answered `Busy`.
    pub pending_proposals_max: u32,
    /// A leadership transfer that has not completed within this is abandoned.
    pub transfer_timeout_ms: u64,
    /// Most ReadIndex reads waiting on a leader (queued, being confirmed, or waiting for apply);
    /// more are answered `Busy`.
    #[serde(default = "default_pending_reads_max")]
    pub pending_reads_max: u32,
    /// Which of DLedger's departures from the Raft paper this replica makes (default: none).
    #[serde(default)]
    pub fidelity: Fidelity,
    /// Disk marks (issue 15): the hard state carries a commit mark, recovery refuses a disk
    /// that lost committed entries, and a node that forgot what it acknowledged or voted
    /// (damaged log, lost hard state, wiped disk) neither votes nor campaigns until it has
    /// caught up from a leader (`store::recover`). Off by default (the behaviour before);
    /// the simulator turns it on.
    #[serde(default)]
    pub disk_marks: bool,
    /// Test-only unsafe switch: a node that lost its hard state or disk rebuilds its term from
    /// its log and votes at once (the classic lost-vote bug: two leaders in a term, lost
    /// committed entries). Needs `disk_marks` (refusals still apply).
    #[serde(default)]
    pub unsafe_vote_after_disk_loss: bool,
}

fn default_pending_reads_max() -> u32 {
    10_000
}

/// DLedger's departures from the Raft paper, one switch each (all off: the Raft paper, which is
/// the default). `Fidelity::DLEDGER` turns all of them on; `Config::dledger_fidelity()` also turns
/// pre-vote off, which DLedger does not have. The sources cited are openmessaging/dledger: the
/// commit and watermark switches mirror releases up to `dledger-all-0.3.1.2` (0.2.x and 0.3.x,
/// e.g. `dledger-0.2.7`); 0.4.0 (#298) keys watermarks by the acknowledged entry's term, which
/// restores the Raft rule for commits.
///
/// A node with any switch on records the Raft safety properties it then breaks as
/// `SafetyViolation`s (`Node::take_safety_violations`) instead of panicking.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Fidelity {
    /// Commit the quorum (median) of the peers' watermarks whatever the term of the entry there:
    /// `DLedgerEntryPusher.QuorumAckChecker.doWork` sorts the watermarks of the current term and
    /// takes the middle one, and `DLedgerMmapFileStore.updateCommittedIndex(term, index)` (HEAD:
    /// `MemberState.leaderUpdateCommittedIndex`) checks only the leader's term. Raft instead
    /// commits by counting replicas only an entry of the current term (§5.4.2, Figure 8).
    pub commit_by_quorum_watermark: bool,
    /// A new leader appends no entry of its own term (releases before 0.4.0 never do; since #306
    /// `DLedgerConfig.enableFastAdvanceCommitIndex`, false by default, makes
    /// `DLedgerServer.FastAdvanceCommitIndexService` append one).
    /// It announces itself with an immediate heartbeat round instead
    /// (`DLedgerLeaderElector.changeRoleToLeader` resets `lastSendHeartBeatTime`). Raft appends
    /// a no-op at once (§8).
    pub skip_noop_on_election: bool,
    /// A new leader first checks each follower's log at its own last index (the COMPARE state of
    /// `DLedgerEntryPusher.EntryDispatcher.doCompare`) and takes the index where they agree as the
    /// follower's watermark in the new term (`changeState(index, APPEND)` calls
    /// `updatePeerWaterMark(term, peer, index)`), so previous-term entries count toward commit
    /// without any entry of the new term. Raft learns the match index from acknowledged appends
    /// (with the no-op, that append carries the same check); only with `skip_noop_on_election`
    /// does this switch change what the leader learns.
    pub watermark_from_compare: bool,
    /// Votes are judged as `DLedgerLeaderElector.handleVote` does, in its order: log first
    /// (`REJECT_EXPIRED_LEDGER_TERM`, `REJECT_SMALL_LEDGER_END_INDEX`), then the term
    /// (`REJECT_EXPIRED_VOTE_TERM`; in the same term, another vote: `REJECT_ALREADY_HAS_LEADER` if
    /// a leader is known, else `REJECT_ALREADY_VOTED`; a higher term is adopted, the node stepping
    /// down, and refused with `REJECT_TERM_NOT_READY`, after which the candidate asks again in the
    /// same term, `maintainAsCandidate`'s `REVOTE_IMMEDIATELY`), then `REJECT_TERM_SMALL_THAN_LEDGER`
    /// (unreachable while a node's term is at least its last entry's, which recovery enforces).
    /// A candidate that did not win moves to the next term only as `maintainAsCandidate` does
    /// (`WAIT_TO_VOTE_NEXT`); with too few answers, a known leader, or a majority short because
    /// of newer logs it votes again in the same term (`WAIT_TO_REVOTE`), and a newer term heard
    /// in a refusal is adopted with a vote interval to wait (`knownMaxTermInGroup`). No leader
    /// stickiness for higher terms and no pre-vote (requires `pre_vote: false`). Raft here:
    /// pre-vote (§9.6), term first, a vote of a higher term refused while a leader is live, and
    /// every new election in a new term.
    pub dledger_vote_checks: bool,
    /// A leader steps down when its heartbeat rounds have had no majority of responses for more
    /// than `max_heartbeat_leak × heartbeat_interval_ms`, judged when a round ends (the next one is
    /// sent), as `DLedgerLeaderElector.sendHeartbeats` does with `lastSuccHeartBeatTime`; it then
    /// campaigns after a vote interval (DLedger: `changeRoleToCandidate`). A round counts the
    /// peers that answered while it was the latest; it has its majority from the response that
    /// completes it. The window starts at election (DLedger keeps `lastSuccHeartBeatTime` from
    /// earlier leaderships, initially -1, so its new leader steps down at its first round without
    /// a majority; our heartbeat acks wait for the new term to be durable, DLedger's do not).
    /// Raft's check quorum here: step down exactly an election timeout base after the
    /// majority-th most recent response from any peer.
    pub step_down_by_heartbeat_rounds: bool,
    /// A follower whose entry at the leader's check index conflicts points the leader back to
    /// where its conflicting run starts, however far below its own commit index: DLedger's
    /// follower (`EntryHandler.handleDoCompare`, `handleDoTruncate`) compares and truncates
    /// without looking at its committed index, and the leader's `EntryDispatcher.doCompare`
    /// steps back until the logs agree. Raft never asks below commit index + 1 (a committed
    /// entry cannot conflict); after a DLedger commit by count one can, and without this switch
    /// the new leader could never repair that follower.
    pub compare_below_commit: bool,
}

impl Fidelity {
    /// The Raft paper: every switch off.
    pub const RAFT: Fidelity = Fidelity {
        commit_by_quorum_watermark: false,
        skip_noop_on_election: false,
        watermark_from_compare: false,
        dledger_vote_checks: false,
        step_down_by_heartbeat_rounds: false,
        compare_below_commit: false,
    };

    /// DLedger: every switch on.
    pub const DLEDGER: Fidelity = Fidelity {
        commit_by_quorum_watermark: true,
        skip_noop_on_election: true,
        watermark_from_compare: true,
        dledger_vote_checks: true,
        step_down_by_heartbeat_rounds: true,
        compare_below_commit: true,
    };

    /// True when any switch is on: such a node records broken Raft safety properties as values
    /// instead of asserting them.
    pub fn departs_from_raft(&self) -> bool {
        *self != Fidelity::RAFT
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            heartbeat_interval_ms: 2000,
            max_heartbeat_leak: 3,
            vote_interval_ms_min: 300,
            vote_interval_ms_max: 1000,
            max_wait_ack_ms: 2500,
            append_resend_ms: 1000,
            pre_vote: true,
            append_batch_entries_max: 64,
            inflight_entries_max: 1024,
            pending_proposals_max: 10_000,
            transfer_timeout_ms: 5000,
            pending_reads_max: default_pending_reads_max(),
            fidelity: Fidelity::RAFT,
            disk_marks: false,
            unsafe_vote_after_disk_loss: false,
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{field} must be at least {min}, got {value}")]
    TooSmall {
        field: &'static str,
        min: u64,
        value: u64,
    },
    #[error("vote_interval_ms_min ({min}) must not exceed vote_interval_ms_max ({max})")]
    VoteIntervalInverted { min: u64, max: u64 },
    #[error(
        "append_batch_entries_max ({batch}) must not exceed inflight_entries_max ({inflight})"
    )]
    BatchExceedsInflight { batch: u32, inflight: u32 },
    #[error("fidelity.dledger_vote_checks needs pre_vote off (DLedger has no pre-vote)")]
    PreVoteWithDLedgerVotes,
}

impl Config {
    /// The defaults with every DLedger switch on (`Fidelity::DLEDGER`) and pre-vote off.
    pub fn dledger_fidelity() -> Config {
        Config {
            pre_vote: false,
            fidelity: Fidelity::DLEDGER,
            ..Config::default()
        }
    }

    /// The election timeout floor: `max_heartbeat_leak × heartbeat_interval_ms`.
    pub fn election_timeout_ms_base(&self) -> u64 {
        self.heartbeat_interval_ms * u64::from(self.max_heartbeat_leak)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let at_least = |field: &'static str, value: u64, min: u64| {
            if value < min {
                Err(ConfigError::TooSmall { field, min, value })
            } else {
                Ok(())
            }
        };
        at_least("heartbeat_interval_ms", self.heartbeat_interval_ms, 1)?;
        at_least("max_heartbeat_leak", u64::from(self.max_heartbeat_leak), 1)?;
        at_least("max_wait_ack_ms", self.max_wait_ack_ms, 1)?;
        at_least("append_resend_ms", self.append_resend_ms, 1)?;
        at_least(
            "append_batch_entries_max",
            u64::from(self.append_batch_entries_max),
            1,
        )?;
        at_least(
            "inflight_entries_max",
            u64::from(self.inflight_entries_max),
            1,
        )?;
        at_least(
            "pending_proposals_max",
            u64::from(self.pending_proposals_max),
            1,
        )?;
        at_least("transfer_timeout_ms", self.transfer_timeout_ms, 1)?;
        at_least("pending_reads_max", u64::from(self.pending_reads_max), 1)?;
        if self.fidelity.dledger_vote_checks && self.pre_vote {
            return Err(ConfigError::PreVoteWithDLedgerVotes);
        }
        if self.vote_interval_ms_min > self.vote_interval_ms_max {
            return Err(ConfigError::VoteIntervalInverted {
                min: self.vote_interval_ms_min,
                max: self.vote_interval_ms_max,
            });
        }
        if self.append_batch_entries_max > self.inflight_entries_max {
            return Err(ConfigError::BatchExceedsInflight {
                batch: self.append_batch_entries_max,
                inflight: self.inflight_entries_max,
            });
        }
        Ok(())
    }
}
