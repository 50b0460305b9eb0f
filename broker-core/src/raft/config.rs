use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Timing and bounds of one replica. Defaults follow DLedger's `DLedgerConfig`.
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
}

impl Config {
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
