//! The fault timeline: what happens, to whom, and when. Targets are symbolic (`Leader(group:
//! 0)`); the runner resolves them to nodes when the fault fires.

use super::duration::{Millis, MillisRange, SignedMillis};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One entry of the timeline: `(at: "10s", fault: Crash(Leader(group: 0)))`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimedFault {
    /// Simulated time since the start of the run.
    pub at: Millis,
    pub fault: Fault,
}

/// Who a fault hits, resolved when it fires. Node numbers follow `Cluster`'s numbering
/// (replica `r` of group `g` is node `g × replicas + r`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Target {
    /// A fixed node: `Node(4)`.
    Node(u32),
    /// The node that is leader of the group at that moment (the newest term's leader).
    Leader { group: u32 },
    /// One follower of the group, chosen by the seeded nemesis RNG.
    Follower { group: u32 },
    /// A minority of the group's replicas (1 of 3, 2 of 5), the leader included if any.
    Minority { group: u32 },
    /// A majority of the group's replicas (2 of 3, 3 of 5), the leader included if any.
    Majority { group: u32 },
    /// Every replica of the group (a power loss of the whole group: `CrashLosingUnsynced(
    /// Group(group: 0))`).
    Group { group: u32 },
    /// One node of the whole cluster, chosen by the seeded nemesis RNG.
    Random,
    /// Every node that is down at that moment; only for `Restart`.
    AllCrashed,
}

impl Target {
    /// The group a target names, if it names one.
    pub fn group(&self) -> Option<u32> {
        match *self {
            Target::Leader { group }
            | Target::Follower { group }
            | Target::Minority { group }
            | Target::Majority { group }
            | Target::Group { group } => Some(group),
            Target::Node(_) | Target::Random | Target::AllCrashed => None,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Target::Node(node) => write!(f, "Node({node})"),
            Target::Leader { group } => write!(f, "Leader(group: {group})"),
            Target::Follower { group } => write!(f, "Follower(group: {group})"),
            Target::Minority { group } => write!(f, "Minority(group: {group})"),
            Target::Majority { group } => write!(f, "Majority(group: {group})"),
            Target::Group { group } => write!(f, "Group(group: {group})"),
            Target::Random => f.write_str("Random"),
            Target::AllCrashed => f.write_str("AllCrashed"),
        }
    }
}

/// What happens. One-argument faults are written positionally (`Crash(Leader(group: 0))`),
/// the others with named fields (`Pause(target: Node(1), for: "10s")`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Fault {
    /// Kill the node. What happens to its unsynced writes is the disk model's business
    /// (`sim::world::disk`).
    Crash(Target),
    /// Kill the node and drop every unsynced write (power loss); a random prefix of them may
    /// survive as a torn tail, which recovery must detect and cut off.
    CrashLosingUnsynced(Target),
    /// `CrashLosingUnsynced`, and at least one unsynced append survives with its last entry
    /// corrupted (a flipped checksum): recovery must detect it with the chained checksum and
    /// cut it off.
    CrashTornTail(Target),
    /// Bring crashed nodes back (`Restart(AllCrashed)` or a node).
    Restart(Target),
    /// Freeze the node (no timers, no receives) for a while, then let it resume as if
    /// nothing happened: the GC-pause / VM-stall case.
    Pause {
        target: Target,
        #[serde(rename = "for")]
        length: Millis,
    },
    /// Cut every link to and from the target until `Heal`.
    Isolate(Target),
    /// Cut links between nodes on different sides until `Heal`: `Partition([[0, 1], [2]])`.
    /// A node on no side keeps all its links.
    Partition(Vec<Vec<u32>>),
    /// Drop messages from `from` to `to` (the reverse direction still works) until `Heal`.
    OneWay { from: Target, to: Target },
    /// Jepsen's bridge on one group: two halves that share one node.
    Bridge { group: u32 },
    /// Jepsen's majorities ring on one group of 5: every node sees a different majority.
    MajoritiesRing { group: u32 },
    /// A deposed leader that clients still reach: the group's leader, with up to a minority
    /// of the others beside it, is cut from the rest of the group, and every client is cut
    /// from the rest, so clients keep sending to and pulling from the old leader while the
    /// majority elects a new one they cannot reach. Until `Heal`.
    DeposeLeader { group: u32 },
    /// Undo every partition, isolation and one-way cut, and clear every per-link latency and
    /// loss (`LinkLatency`, `LinkLoss`). Whole-network settings and duplication stay.
    Heal,
    /// Set the whole network's one-way delay range from now on.
    Latency { min: Millis, max: Millis },
    /// Set the whole network's message loss from now on.
    Loss { ppm: u32 },
    /// Add a delay drawn from `min..=max` to every message from `from` to `to` (one
    /// direction), on top of the network's own, until `Heal`.
    LinkLatency {
        from: Target,
        to: Target,
        min: Millis,
        max: Millis,
    },
    /// Drop this share of the messages from `from` to `to` (one direction) until `Heal`.
    LinkLoss { from: Target, to: Target, ppm: u32 },
    /// Deliver this share of replica-to-replica messages twice (each copy with its own
    /// latency, so they may also reorder), from now on; `Duplicate(ppm: 0)` stops it.
    /// Client traffic is not duplicated: RocketMQ clients talk over TCP.
    Duplicate { ppm: u32 },
    /// Set the node's clock offset from true time: `ClockOffset(target: Node(1), offset:
    /// "+300ms")`. A negative change makes its clock stand still until true time catches up
    /// (local clocks never run backwards).
    ClockOffset {
        target: Target,
        offset: SignedMillis,
    },
    /// Set the node's clock rate error in ppm: +100 runs 100 µs fast per second.
    ClockDrift { target: Target, ppm: i32 },
    /// Step the node's clock by `by` from where it reads now: `ClockJump(target: Leader(group:
    /// 0), by: "-10s")`. The core sees a monotonic clock (the adapter clamps it), so a backward
    /// jump freezes its timers until local time has caught up again, and a forward jump makes
    /// every timer that falls inside the jump fire at once.
    ClockJump { target: Target, by: SignedMillis },
    /// Jepsen's clock strobe: for `for`, every `period` the node's clock jumps by `+delta`,
    /// then back by `-delta`, and so on; it ends where it started.
    ClockStrobe {
        target: Target,
        delta: Millis,
        period: Millis,
        #[serde(rename = "for")]
        length: Millis,
    },
    /// Put the node's clock back on true time: no offset, no drift, no strobe.
    ClockResync(Target),
    /// Make the node's fsyncs take this long from now on.
    SlowDisk { target: Target, fsync: Millis },
    /// Ask the group's leader to hand leadership to `to`.
    TransferLeader { group: u32, to: Target },
    // ---- disk faults beyond a crash (issue 15) ----
    // Each kills the node (its unsynced writes stay in the page cache, as `Crash`) and damages
    // what is on its disk; the node sees the damage when it is restarted (`Restart`).
    /// Flip `bits` bits of one stored entry (its data or checksum): `Corrupt(target:
    /// Follower(group: 0), at: Random, bits: 3)`.
    Corrupt {
        target: Target,
        at: CorruptAt,
        bits: u32,
    },
    /// Drop the last `entries` entries of the stored log (a file cut short).
    Truncate { target: Target, entries: u32 },
    /// The replica comes back with an empty disk under the same id: log and hard state gone.
    WipeDisk(Target),
    /// The hard state (term and vote, and its disk mark) is gone; the log is kept.
    LoseHardState(Target),
    /// A write landed at another entry's place: one stored entry is overwritten with a copy
    /// of another (TigerBeetle's misdirected write).
    MisdirectedWrite(Target),
    /// Seeded swarm faults, from `at` to the end of the fault phase: `Random(kinds: [Crash,
    /// Partition, ClockJump], every: ("2s", "10s"), for: ("1s", "8s"))`. Per seed, which kind
    /// fires, when, on whom, with what parameters and for how long is drawn from a ChaCha
    /// stream of the run seed alone (`nemesis::swarm`); each drawn fault is undone after its
    /// `for` (crash → restart, partition → heal, clock → resync...).
    Random {
        kinds: Vec<FaultKind>,
        every: MillisRange,
        #[serde(rename = "for")]
        length: MillisRange,
        /// Which replicas the disk kinds may damage (default: a fixed minority per seed).
        #[serde(default, skip_serializing_if = "Atlas::is_default")]
        atlas: Atlas,
        /// What a drawn cut's undo heals (default: every cut, as `Heal` does).
        #[serde(default, skip_serializing_if = "CutHeal::is_default")]
        heal: CutHeal,
    },
}

/// What the undo of a drawn cut (isolation, partition, one-way or per-link fault) heals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CutHeal {
    /// Each undo is a `Heal`: every cut in force ends, the other drawn cuts' too, so with
    /// faults every few hundred ms a cut rarely outlasts an election timeout.
    #[default]
    EachUndo,
    /// Cuts accumulate: an undo heals only once no other drawn cut is still in force (the
    /// network heals when the last overlapping cut ends), so a deposed leader stays cut off
    /// long enough for the others to elect.
    AfterLastCut,
}

impl CutHeal {
    pub fn is_default(&self) -> bool {
        *self == CutHeal::EachUndo
    }
}

/// Where `Corrupt` flips bits: the last stored entry, one drawn from the nemesis stream, or
/// the entry at this log index (none when the log is shorter).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CorruptAt {
    Tail,
    Random,
    Entry(u64),
}

/// The storage fault atlas (TigerBeetle's VOPR): which replicas a swarm's disk faults
/// (`Corrupt`, `Truncate`, `WipeDisk`, `LoseHardState`, `MisdirectedWrite`) may hit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Atlas {
    /// A minority of each group, fixed per seed: a majority always keeps an intact copy of
    /// every entry, so nothing committed may be lost.
    #[default]
    Minority,
    /// Any replica: beyond the atlas, committed entries may be lost (the scenario says what
    /// it expects).
    Unbounded,
}

impl Atlas {
    pub fn is_default(&self) -> bool {
        *self == Atlas::Minority
    }
}

/// The fault kinds a `Random` swarm may draw from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
    /// `DeposeLeader` (issue 14: a client cut from the new leader but not from the old one).
    DeposeLeader,
    /// A correlated power loss: a majority of one group, or every replica of it, lose their
    /// unsynced writes at once (`CrashLosingUnsynced(Majority | Group)`).
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
    // issue 15: disk faults (bounded by the swarm's atlas)
    Corrupt,
    Truncate,
    WipeDisk,
    LoseHardState,
    MisdirectedWrite,
}

impl FaultKind {
    pub const ALL: [FaultKind; 27] = [
        FaultKind::Crash,
        FaultKind::CrashLosingUnsynced,
        FaultKind::CrashTornTail,
        FaultKind::Pause,
        FaultKind::Isolate,
        FaultKind::Partition,
        FaultKind::OneWay,
        FaultKind::Bridge,
        FaultKind::MajoritiesRing,
        FaultKind::DeposeLeader,
        FaultKind::PowerLoss,
        FaultKind::Latency,
        FaultKind::Loss,
        FaultKind::LinkLatency,
        FaultKind::LinkLoss,
        FaultKind::Duplicate,
        FaultKind::ClockOffset,
        FaultKind::ClockDrift,
        FaultKind::ClockJump,
        FaultKind::ClockStrobe,
        FaultKind::SlowDisk,
        FaultKind::TransferLeader,
        FaultKind::Corrupt,
        FaultKind::Truncate,
        FaultKind::WipeDisk,
        FaultKind::LoseHardState,
        FaultKind::MisdirectedWrite,
    ];

    /// The disk kinds the atlas bounds.
    pub fn is_disk_damage(self) -> bool {
        matches!(
            self,
            FaultKind::Corrupt
                | FaultKind::Truncate
                | FaultKind::WipeDisk
                | FaultKind::LoseHardState
                | FaultKind::MisdirectedWrite
        )
    }
}

impl Fault {
    /// The variant's name as written in files (`"Crash"`), for tables and messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Fault::Crash(_) => "Crash",
            Fault::CrashLosingUnsynced(_) => "CrashLosingUnsynced",
            Fault::CrashTornTail(_) => "CrashTornTail",
            Fault::Restart(_) => "Restart",
            Fault::Pause { .. } => "Pause",
            Fault::Isolate(_) => "Isolate",
            Fault::Partition(_) => "Partition",
            Fault::OneWay { .. } => "OneWay",
            Fault::Bridge { .. } => "Bridge",
            Fault::MajoritiesRing { .. } => "MajoritiesRing",
            Fault::DeposeLeader { .. } => "DeposeLeader",
            Fault::Heal => "Heal",
            Fault::Latency { .. } => "Latency",
            Fault::Loss { .. } => "Loss",
            Fault::LinkLatency { .. } => "LinkLatency",
            Fault::LinkLoss { .. } => "LinkLoss",
            Fault::Duplicate { .. } => "Duplicate",
            Fault::ClockJump { .. } => "ClockJump",
            Fault::ClockStrobe { .. } => "ClockStrobe",
            Fault::ClockResync(_) => "ClockResync",
            Fault::Random { .. } => "Random",
            Fault::ClockOffset { .. } => "ClockOffset",
            Fault::ClockDrift { .. } => "ClockDrift",
            Fault::SlowDisk { .. } => "SlowDisk",
            Fault::TransferLeader { .. } => "TransferLeader",
            Fault::Corrupt { .. } => "Corrupt",
            Fault::Truncate { .. } => "Truncate",
            Fault::WipeDisk(_) => "WipeDisk",
            Fault::LoseHardState(_) => "LoseHardState",
            Fault::MisdirectedWrite(_) => "MisdirectedWrite",
        }
    }

    /// The targets in this fault, each with the path of its field relative to the fault
    /// (`"0"` for a positional argument, `"target"`, `"from"`...), for validation messages.
    pub fn targets(&self) -> Vec<(&'static str, Target)> {
        match *self {
            Fault::Crash(target)
            | Fault::CrashLosingUnsynced(target)
            | Fault::CrashTornTail(target)
            | Fault::ClockResync(target)
            | Fault::Restart(target)
            | Fault::Isolate(target)
            | Fault::WipeDisk(target)
            | Fault::LoseHardState(target)
            | Fault::MisdirectedWrite(target) => vec![("0", target)],
            Fault::Corrupt { target, .. } | Fault::Truncate { target, .. } => {
                vec![("target", target)]
            }
            Fault::Pause { target, .. }
            | Fault::ClockOffset { target, .. }
            | Fault::ClockDrift { target, .. }
            | Fault::ClockJump { target, .. }
            | Fault::ClockStrobe { target, .. }
            | Fault::SlowDisk { target, .. } => vec![("target", target)],
            Fault::OneWay { from, to }
            | Fault::LinkLatency { from, to, .. }
            | Fault::LinkLoss { from, to, .. } => vec![("from", from), ("to", to)],
            Fault::TransferLeader { to, .. } => vec![("to", to)],
            Fault::Partition(_)
            | Fault::Bridge { .. }
            | Fault::MajoritiesRing { .. }
            | Fault::DeposeLeader { .. }
            | Fault::Heal
            | Fault::Latency { .. }
            | Fault::Loss { .. }
            | Fault::Duplicate { .. }
            | Fault::Random { .. } => Vec::new(),
        }
    }
}
