use serde::{Deserialize, Serialize};
use thiserror::Error;

/// When the master acknowledges a send (RocketMQ `brokerRole`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplicationMode {
    /// SYNC_MASTER: SEND_OK once a slave reports the entry durable; FLUSH_SLAVE_TIMEOUT
    /// (outcome unknown) after `sync_wait_ms`.
    Sync,
    /// ASYNC_MASTER: SEND_OK after the local write; slaves copy it later.
    Async,
}

/// When a write counts as done locally (RocketMQ `flushDiskType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlushMode {
    /// SYNC_FLUSH: wait for the local fsync (FLUSH_DISK_TIMEOUT after `sync_wait_ms`).
    Sync,
    /// ASYNC_FLUSH: done once handed to the OS (page cache); an fsync runs every
    /// `flush_interval_ms`. A power loss drops what was not yet flushed.
    Async,
}

/// Timing and bounds of one master–slave replica. Defaults follow RocketMQ's
/// `MessageStoreConfig` where it has the setting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub replication: ReplicationMode,
    pub flush: FlushMode,
    /// A slave reports its durable index this often even with nothing new (RocketMQ
    /// `haSendHeartbeatInterval` = 5000 ms; shorter here so a slave that lost a push, or a
    /// restarted master, catches up within a second). Slaves also report after every fsync.
    pub slave_report_interval_ms: u64,
    /// A send waiting for a slave (SYNC) or for the local fsync (SYNC_FLUSH) is answered
    /// `Timeout` after this (RocketMQ `syncFlushTimeout` = 5000 ms: FLUSH_SLAVE_TIMEOUT /
    /// FLUSH_DISK_TIMEOUT, outcome unknown).
    pub sync_wait_ms: u64,
    /// ASYNC_FLUSH: period of the background fsync (RocketMQ `flushIntervalCommitLog` = 500 ms).
    pub flush_interval_ms: u64,
    /// Most entries in one push to a slave.
    pub push_batch_entries_max: u32,
    /// Most sends waiting for a slave or an fsync on the master; more are answered `Busy`.
    pub pending_sends_max: u32,
}

impl Config {
    /// RocketMQ's defaults for a broker role, with ASYNC_FLUSH (RocketMQ's default flushDiskType).
    pub fn with_replication(replication: ReplicationMode) -> Config {
        Config {
            replication,
            flush: FlushMode::Async,
            slave_report_interval_ms: 1_000,
            sync_wait_ms: 5_000,
            flush_interval_ms: 500,
            push_batch_entries_max: 64,
            pending_sends_max: 10_000,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("slave_report_interval_ms", self.slave_report_interval_ms),
            ("sync_wait_ms", self.sync_wait_ms),
            ("flush_interval_ms", self.flush_interval_ms),
            (
                "push_batch_entries_max",
                u64::from(self.push_batch_entries_max),
            ),
            ("pending_sends_max", u64::from(self.pending_sends_max)),
        ];
        if let Some((field, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(ConfigError::Zero { field });
        }
        // A sync send must outlive at least one periodic report, or a single lost push makes
        // every send time out.
        if self.sync_wait_ms <= self.slave_report_interval_ms {
            return Err(ConfigError::SyncWaitNotAboveReportInterval {
                sync_wait_ms: self.sync_wait_ms,
                slave_report_interval_ms: self.slave_report_interval_ms,
            });
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("{field} must be > 0")]
    Zero { field: &'static str },
    #[error("sync_wait_ms ({sync_wait_ms}) must exceed slave_report_interval_ms ({slave_report_interval_ms})")]
    SyncWaitNotAboveReportInterval {
        sync_wait_ms: u64,
        slave_report_interval_ms: u64,
    },
}
