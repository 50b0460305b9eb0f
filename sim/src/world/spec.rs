//! What a world is made of: the cluster, its network and disks, the clients' settings and the
//! fault timeline, in integer simulated microseconds.

use crate::scenario::{Broken, ReadMode, Replication, Scenario, TimedFault};
use crate::workload::WorkloadSpec;
use broker_core::broker::QueueKey;
use broker_core::master_slave;
use broker_core::raft;
use broker_core::NodeId;
use serde::{Deserialize, Serialize};

/// A valid scenario that asks for something this build does not simulate.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {what}")]
pub struct UnsupportedScenario {
    pub file: String,
    pub what: String,
}

/// How long a producer avoids a replica that did not answer in time.
pub const SUSPECT_US_DEFAULT: u64 = 10_000_000;

/// Everything a run needs, in integer simulated microseconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorldSpec {
    pub replication: Replication,
    pub groups: u32,
    pub replicas: u32,
    pub raft: raft::Config,
    pub latency_us_min: u64,
    pub latency_us_max: u64,
    pub loss_ppm: u32,
    pub fsync_us: u64,
    /// Clients start sending after this (a leader is elected first).
    pub warmup_us: u64,
    /// The fault phase: faults fire and clients send until then.
    pub duration_us: u64,
    /// After healing, the cluster must converge within this.
    pub settle_max_us: u64,
    pub workload: WorkloadSpec,
    pub faults: Vec<TimedFault>,
    /// Name servers (0: none, clients follow leader hints; see `nameserver`).
    #[serde(default)]
    pub name_servers: u32,
    /// Brokers register with every name server this often (and at once on a role change).
    #[serde(default)]
    pub register_interval_us: u64,
    /// A name server drops a broker it has not heard from for this long.
    #[serde(default)]
    pub broker_expiry_us: u64,
    /// How DLedger replicas answer pulls (`ReadMode::UnsafeRead`: consumers pull from every
    /// replica in turn).
    #[serde(default)]
    pub read_mode: ReadMode,
    /// Test-only: a deliberately broken broker.
    #[serde(default)]
    pub broken: Broken,
}

impl WorldSpec {
    /// Refuses what a valid scenario may ask for but this build does not simulate.
    /// Every replication mode is simulated now; kept as the place for future refusals.
    pub fn check_supported(scenario: &Scenario) -> Result<(), UnsupportedScenario> {
        match scenario.cluster.replication {
            Replication::DLedger | Replication::SyncMasterSlave | Replication::AsyncMasterSlave => {
                Ok(())
            }
        }
    }

    /// The master–slave replica config of this world (None in DLedger mode). Flush is
    /// ASYNC_FLUSH, RocketMQ's default `flushDiskType` (scenarios have no flush field yet).
    pub fn master_slave_config(&self) -> Option<master_slave::Config> {
        let replication = match self.replication {
            Replication::DLedger => return None,
            Replication::SyncMasterSlave => master_slave::ReplicationMode::Sync,
            Replication::AsyncMasterSlave => master_slave::ReplicationMode::Async,
        };
        Some(master_slave::Config::with_replication(replication))
    }

    pub fn is_master_slave(&self) -> bool {
        self.replication != Replication::DLedger
    }

    /// The world a (validated, supported: `check_supported`) scenario describes.
    pub fn from_scenario(scenario: &Scenario) -> WorldSpec {
        let cluster = &scenario.cluster;
        let raft = cluster.core_raft_config();
        let queues = scenario
            .workload
            .topics
            .iter()
            .flat_map(|topic| {
                (0..topic.queues).map(move |queue_id| {
                    (
                        queue_id % cluster.groups,
                        QueueKey {
                            topic: topic.name.clone(),
                            queue_id,
                        },
                    )
                })
            })
            .collect();
        let duration_us = scenario.duration.as_ms() * 1_000;
        let first_fault_us = scenario
            .faults
            .first()
            .map_or(duration_us, |f| f.at.as_ms() * 1_000);
        // Clients start once the first leader is likely elected, and before the first fault.
        let warmup_us = ((raft.election_timeout_ms_base() + raft.vote_interval_ms_max + 1_000)
            * 1_000)
            .min(first_fault_us);
        let send_timeout_us = scenario.workload.send_timeout.as_ms() * 1_000;
        WorldSpec {
            replication: cluster.replication,
            groups: cluster.groups,
            replicas: cluster.replicas,
            latency_us_min: cluster.network.latency.min.as_ms() * 1_000,
            latency_us_max: cluster.network.latency.max.as_ms() * 1_000,
            loss_ppm: cluster.network.loss_ppm,
            fsync_us: cluster.disk.fsync.as_ms() * 1_000,
            warmup_us,
            duration_us,
            settle_max_us: scenario.settle_max.as_ms() * 1_000,
            workload: WorkloadSpec {
                producers: scenario.workload.producers,
                send_rate_per_s: scenario.workload.send_rate,
                queues,
                send_timeout_us,
                retry_backoff_us: 50_000,
                // RocketMQ's latency fault tolerance keeps a broker that timed out out of
                // rotation for seconds; shorter, and followers' stale leader hints send
                // clients back to a dead leader before the election ends.
                suspect_us: SUSPECT_US_DEFAULT.max(send_timeout_us),
                // Half that: a group comes back into rotation while its replica that timed out
                // is still avoided, so a client without name servers asks another replica of
                // the group (and learns the new leader from its hint), not the dead one again.
                group_avoid_us: SUSPECT_US_DEFAULT.max(send_timeout_us) / 2,
                consumers: scenario.workload.consumers,
                consumer_poll_us: 100_000,
                route_refresh_us: scenario.workload.route_refresh.as_ms() * 1_000,
            },
            faults: scenario.faults.clone(),
            name_servers: cluster.name_servers,
            register_interval_us: cluster.register_interval.as_ms() * 1_000,
            broker_expiry_us: cluster.broker_expiry.as_ms() * 1_000,
            read_mode: cluster.read_mode,
            broken: cluster.broken,
            raft,
        }
    }

    pub fn replica_count(&self) -> u32 {
        self.groups * self.replicas
    }
    pub fn group_of(&self, node: NodeId) -> u32 {
        node.0 / self.replicas
    }
    pub fn members(&self, group: u32) -> Vec<NodeId> {
        (0..self.replicas)
            .map(|r| NodeId(group * self.replicas + r))
            .collect()
    }
}
