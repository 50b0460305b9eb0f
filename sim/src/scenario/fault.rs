//! The fault timeline: what happens, to whom, and when. Targets are symbolic (`Leader(group:
//! 0)`); the runner resolves them to nodes when the fault fires.

use super::duration::{Millis, SignedMillis};
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
            | Target::Majority { group } => Some(group),
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
    /// (`sim::disk`).
    Crash(Target),
    /// Kill the node and drop every unsynced write (power loss); a random prefix of them may
    /// survive as a torn tail, which recovery must detect and cut off.
    CrashLosingUnsynced(Target),
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
    /// Undo every partition, isolation and one-way cut.
    Heal,
    /// Set the whole network's one-way delay range from now on.
    Latency { min: Millis, max: Millis },
    /// Set the whole network's message loss from now on.
    Loss { ppm: u32 },
    /// Set the node's clock offset from true time: `ClockOffset(target: Node(1), offset:
    /// "+300ms")`. A negative change makes its clock stand still until true time catches up
    /// (local clocks never run backwards).
    ClockOffset {
        target: Target,
        offset: SignedMillis,
    },
    /// Set the node's clock rate error in ppm: +100 runs 100 µs fast per second.
    ClockDrift { target: Target, ppm: i32 },
    /// Make the node's fsyncs take this long from now on.
    SlowDisk { target: Target, fsync: Millis },
    /// Ask the group's leader to hand leadership to `to`.
    TransferLeader { group: u32, to: Target },
}

impl Fault {
    /// The variant's name as written in files (`"Crash"`), for tables and messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Fault::Crash(_) => "Crash",
            Fault::CrashLosingUnsynced(_) => "CrashLosingUnsynced",
            Fault::Restart(_) => "Restart",
            Fault::Pause { .. } => "Pause",
            Fault::Isolate(_) => "Isolate",
            Fault::Partition(_) => "Partition",
            Fault::OneWay { .. } => "OneWay",
            Fault::Bridge { .. } => "Bridge",
            Fault::MajoritiesRing { .. } => "MajoritiesRing",
            Fault::Heal => "Heal",
            Fault::Latency { .. } => "Latency",
            Fault::Loss { .. } => "Loss",
            Fault::ClockOffset { .. } => "ClockOffset",
            Fault::ClockDrift { .. } => "ClockDrift",
            Fault::SlowDisk { .. } => "SlowDisk",
            Fault::TransferLeader { .. } => "TransferLeader",
        }
    }

    /// The targets in this fault, each with the path of its field relative to the fault
    /// (`"0"` for a positional argument, `"target"`, `"from"`...), for validation messages.
    pub fn targets(&self) -> Vec<(&'static str, Target)> {
        match *self {
            Fault::Crash(target)
            | Fault::CrashLosingUnsynced(target)
            | Fault::Restart(target)
            | Fault::Isolate(target) => vec![("0", target)],
            Fault::Pause { target, .. }
            | Fault::ClockOffset { target, .. }
            | Fault::ClockDrift { target, .. }
            | Fault::SlowDisk { target, .. } => vec![("target", target)],
            Fault::OneWay { from, to } => vec![("from", from), ("to", to)],
            Fault::TransferLeader { to, .. } => vec![("to", to)],
            Fault::Partition(_)
            | Fault::Bridge { .. }
            | Fault::MajoritiesRing { .. }
            | Fault::Heal
            | Fault::Latency { .. }
            | Fault::Loss { .. } => Vec::new(),
        }
    }
}
