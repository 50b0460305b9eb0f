//! The log and the hard state as plain data. The core never writes anything: it asks for
//! writes with `Effect::Persist` / `Effect::Sync`, and the caller reports durability back with
//! `Input::Persisted`. After a crash the caller hands back what was durable as `RecoveredState`.

mod entry;
mod recovery;

pub use entry::{chain_checksum, Entry, EntryKind};
pub use recovery::{cut_at_first_bad_entry, recover, DiskDamage, Forgot, Forgotten, Recovery};

use crate::types::{LogIndex, NodeId, Term};
use serde::{Deserialize, Serialize};

/// What must survive a crash besides the log (Raft §5.1, Figure 2 "persistent state").
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    pub term: Term,
    pub voted_for: Option<NodeId>,
    /// A disk mark (`Config::disk_marks`): a commit index this node knew when it wrote this
    /// hard state (a lower bound of what is committed), so recovery can tell that a damaged or
    /// missing entry was committed (`recovery.rs`). 0 without disk marks.
    #[serde(default)]
    pub commit_mark: LogIndex,
    /// A disk mark: the log's last index when this hard state was written. It is written after
    /// the appends of its step, so every acknowledged (synced) entry is at or below it, and a
    /// log that ends below it lost entries it may have acknowledged (a truncated file).
    #[serde(default)]
    pub log_end_mark: LogIndex,
    /// A disk mark: this node forgot what it acknowledged or voted through this index and has
    /// not caught up from a leader since (`store::Forgotten`); 0 when it has. Recovery keeps
    /// such a node catching up across restarts.
    #[serde(default)]
    pub forgotten_through: LogIndex,
}

/// One durable write, in the order the core asked for them. The caller applies them in order;
/// a crash before the covering `Sync` completes may drop any suffix of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PersistOp {
    /// Replace the hard state.
    HardState(HardState),
    /// Remove every entry with index >= `from` (a follower dropping a conflicting, uncommitted suffix).
    TruncateFrom { from: LogIndex },
    /// Append entries; the first one's index is the current last index + 1.
    Append { entries: Vec<Entry> },
}

/// What a restarting node finds on its disk: the durable hard state and log prefix.
/// A torn tail (entries whose chained checksum does not verify) is cut by `Node::new`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveredState {
    pub hard_state: HardState,
    pub entries: Vec<Entry>,
    /// The node ran before (its deployment says so, not its disk): an empty disk is a lost
    /// one, not a new node's (`recovery.rs`).
    pub rejoining: bool,
}
