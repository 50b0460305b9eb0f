//! What a world is made of: the broker groups and how they replicate, the network, the disks
//! and the name servers, in simulated time. The run layer builds it from a validated scenario
//! (`run::spec`); the clients' settings and the fault plan are not the world's business.

use crate::ids::SimTime;
use broker_core::broker::ReadMode;
use broker_core::master_slave;
use broker_core::raft;
use broker_core::NodeId;

/// How a group's replicas replicate their commit log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replication {
    /// DLedger: a Raft log, automatic failover.
    DLedger,
    /// A master and its slaves, synchronous or asynchronous; no automatic promotion.
    MasterSlave(master_slave::ReplicationMode),
}

/// Test-only: a deliberately broken broker, to show that the checks catch it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Broken {
    /// The real broker.
    #[default]
    Off,
    /// SEND_OK as soon as the leader appends, before the send commits.
    AckBeforeCommit,
    /// SEND_OK names a queue offset other than the one the entry is stored at.
    AckWrongOffset,
    /// Every replica's clock but replica 0's reads ahead by one more election timeout every
    /// `CLOCK_SKIP_PERIOD_US`, with no fault recorded (`World::local_ms`).
    ClockSkipsAhead,
}

/// How often `Broken::ClockSkipsAhead` skips the clocks ahead.
pub const CLOCK_SKIP_PERIOD_US: u64 = 3_000_000;

/// Everything the world needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorldSpec {
    pub replication: Replication,
    pub groups: u32,
    pub replicas: u32,
    pub raft: raft::Config,
    pub latency_min: SimTime,
    pub latency_max: SimTime,
    pub loss_ppm: u32,
    pub fsync: SimTime,
    /// Name servers (0: none, clients follow leader hints; see `nameserver`).
    pub name_servers: u32,
    /// Brokers register with every name server this often (and at once on a role change).
    pub register_interval: SimTime,
    /// A name server drops a broker it has not heard from for this long.
    pub broker_expiry: SimTime,
    /// How DLedger replicas answer pulls (`UnsafeRead`: consumers pull from every replica in
    /// turn).
    pub read_mode: ReadMode,
    pub broken: Broken,
    /// Faults fired on events (`triggers`), armed per seed by a swarm configuration.
    pub triggers: Vec<super::triggers::TriggerSpec>,
}

impl WorldSpec {
    pub fn is_master_slave(&self) -> bool {
        self.replication != Replication::DLedger
    }

    pub fn replica_count(&self) -> u32 {
        self.groups * self.replicas
    }

    /// How far back a cause explains an election: two election timeouts (the base plus the
    /// vote jitter's top) and the network's slowest delivery. Within it, a fault, a perturbation
    /// or a dropped datagram to the candidate explains why it stopped hearing its leader
    /// (`run::elections`).
    pub fn election_window_us(&self) -> u64 {
        let election_ms = self.raft.election_timeout_ms_base() + self.raft.vote_interval_ms_max;
        2 * election_ms * 1_000 + self.latency_max.as_us()
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
