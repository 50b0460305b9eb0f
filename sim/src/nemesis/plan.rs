//! The fault plan the nemesis plays: what happens, to whom and when, in simulated time. The
//! run layer builds it from a validated scenario (`run::spec`), once; nothing here parses.
//!
//! Targets are symbolic (`Leader { group: 0 }`) and resolved when the fault fires. Node
//! numbers follow the world's numbering (replica `r` of group `g` is node `g × replicas + r`).

use crate::ids::SimTime;
use crate::world::damage::Damage;
use broker_core::NodeId;

/// Who a fault hits, resolved when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Node(NodeId),
    /// The group's leader at that moment (the newest term's leader); nobody when it has none.
    Leader {
        group: u32,
    },
    /// One follower of the group that is up, drawn from the nemesis stream.
    Follower {
        group: u32,
    },
    /// A minority of the group's replicas, the leader first if there is one.
    Minority {
        group: u32,
    },
    /// A majority of the group's replicas, the leader first if there is one.
    Majority {
        group: u32,
    },
    /// Every replica of the group.
    Group {
        group: u32,
    },
    /// One node of the whole cluster, drawn from the nemesis stream.
    Random,
    /// Every node that is down at that moment.
    AllCrashed,
}

/// What happens. Each is carried out by `Nemesis::apply` through the world's transitions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Kill the node; the writes it handed to the OS survive.
    Crash(Target),
    /// Power loss: unsynced writes are gone but for a random prefix (a torn tail).
    CrashLosingUnsynced(Target),
    /// Power loss where at least one unsynced append survives with its last entry corrupted.
    CrashTornTail(Target),
    Restart(Target),
    /// Freeze the node for `length`, then let it resume.
    Pause {
        target: Target,
        length: SimTime,
    },
    /// Cut every link to and from the target until `Heal`.
    Isolate(Target),
    /// Cut links between nodes on different sides until `Heal`.
    Partition(Vec<Vec<NodeId>>),
    /// Drop messages from `from` to `to` until `Heal`.
    OneWay {
        from: Target,
        to: Target,
    },
    /// Jepsen's bridge on one group: two halves that share one node.
    Bridge {
        group: u32,
    },
    /// Jepsen's majorities ring on one group.
    MajoritiesRing {
        group: u32,
    },
    /// The leader and up to a minority beside it cut from the rest of the group, and every
    /// client cut from the rest: clients reach only the deposed side. Until `Heal`.
    DeposeLeader {
        group: u32,
    },
    /// Undo every cut and per-link fault.
    Heal,
    /// The whole network's one-way delay range from now on.
    Latency {
        min: SimTime,
        max: SimTime,
    },
    /// The whole network's message loss from now on.
    Loss {
        ppm: u32,
    },
    /// Extra delay on every message from `from` to `to` until `Heal`.
    LinkLatency {
        from: Target,
        to: Target,
        min: SimTime,
        max: SimTime,
    },
    /// Drop this share of the messages from `from` to `to` until `Heal`.
    LinkLoss {
        from: Target,
        to: Target,
        ppm: u32,
    },
    /// Deliver this share of replica-to-replica messages twice, from now on.
    Duplicate {
        ppm: u32,
    },
    /// Set the node's clock offset from true time (µs, signed).
    ClockOffset {
        target: Target,
        offset_us: i64,
    },
    /// Set the node's clock rate error (ppm, signed).
    ClockDrift {
        target: Target,
        ppm: i32,
    },
    /// Step the node's clock from where it reads now (µs, signed).
    ClockJump {
        target: Target,
        by_us: i64,
    },
    /// Jepsen's strobe: every `period` for `length`, jump by `+delta`, then back.
    ClockStrobe {
        target: Target,
        delta: SimTime,
        period: SimTime,
        length: SimTime,
    },
    /// Put the node's clock back on true time.
    ClockResync(Target),
    /// The node's fsyncs take this long from now on.
    SlowDisk {
        target: Target,
        fsync: SimTime,
    },
    /// Ask the group's leader to hand leadership to `to`.
    TransferLeader {
        group: u32,
        to: Target,
    },
    /// issue 15: kill the node (page cache kept) and damage its disk; it sees the damage when
    /// restarted.
    Damage {
        target: Target,
        damage: Damage,
    },
}

impl Fault {
    pub fn is_clock_fault(&self) -> bool {
        matches!(
            self,
            Fault::ClockOffset { .. }
                | Fault::ClockDrift { .. }
                | Fault::ClockJump { .. }
                | Fault::ClockStrobe { .. }
                | Fault::ClockResync(_)
        )
    }
}

/// The fault kinds a swarm may draw from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    Crash,
    CrashLosingUnsynced,
    CrashTornTail,
    Pause,
    Isolate,
    Partition,
    OneWay,
    Bridge,
    MajoritiesRing,
    DeposeLeader,
    /// A majority of one group, or all of it, lose power at once.
    PowerLoss,
    Latency,
    Loss,
    LinkLatency,
    LinkLoss,
    Duplicate,
    ClockOffset,
    ClockDrift,
    ClockJump,
    ClockStrobe,
    SlowDisk,
    TransferLeader,
    Corrupt,
    Truncate,
    WipeDisk,
    LoseHardState,
    MisdirectedWrite,
}

/// Which replicas a swarm's disk faults may damage (`nemesis::atlas`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Atlas {
    /// A fixed minority per seed and group.
    Minority,
    /// Any replica.
    Unbounded,
}

/// Seeded swarm faults from the entry's time to the end of the fault phase (`swarm::draw`).
/// Gaps and lengths are drawn in whole milliseconds, as scenarios write them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Swarm {
    pub kinds: Vec<FaultKind>,
    pub every_ms_min: u64,
    pub every_ms_max: u64,
    pub length_ms_min: u64,
    pub length_ms_max: u64,
    pub atlas: Atlas,
    /// A drawn cut's undo heals only once no other drawn cut of this swarm is in force.
    pub heal_after_last_cut: bool,
}

/// One entry of the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Planned {
    Fault(Fault),
    Swarm(Swarm),
}

/// The whole plan: entries in the scenario's order, and the end of the fault phase (nothing
/// fires from then on; the run heals everything).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultPlan {
    pub entries: Vec<(SimTime, Planned)>,
    pub end: SimTime,
}
