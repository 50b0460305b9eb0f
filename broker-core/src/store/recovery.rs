//! What a restarting replica makes of its disk, as a pure function of what it finds there
//! (issue 15: disk faults beyond a crash). Entries carry a checksum chained over the previous
//! entry (`entry.rs`); recovery verifies the chain and keeps the valid prefix. With disk marks
//! on (`Config::disk_marks`), the hard state also carries the commit index the node last knew
//! (`HardState::commit_mark`), and recovery decides:
//! - a bad entry at or below the mark, or a log that ends below it: a committed entry is gone
//!   from this disk; the node refuses to start (`DiskDamage`), an operator's case;
//! - a bad entry that is the last one stored: a torn write (power lost mid-append), which was
//!   never acknowledged: cut it, catch up from the leader;
//! - a bad entry with intact entries after it, a log that ends before the hard state's
//!   `log_end_mark` (a truncated file), or a hard state that is gone while the disk
//!   shows the node ran before: the node may have acknowledged entries or granted votes it no
//!   longer knows of. It cuts (or restarts its term from its log) and must neither vote nor
//!   campaign until it has caught up from a leader (`Forgotten`).

use super::{Entry, HardState, RecoveredState};
use crate::types::{LogIndex, Term};
use thiserror::Error;

/// Recovery refused: what is lost from this disk was committed.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum DiskDamage {
    #[error(
        "entry {index} is damaged at or below the commit mark {commit_mark}: a committed entry is lost"
    )]
    CommittedEntryDamaged {
        index: LogIndex,
        commit_mark: LogIndex,
    },
    #[error(
        "the log ends at {last_index}, below the commit mark {commit_mark}: committed entries are missing"
    )]
    CommittedEntriesMissing {
        last_index: LogIndex,
        commit_mark: LogIndex,
    },
}

/// What the node forgot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forgot {
    /// Entries it may have acknowledged (a bad entry in the middle of its log).
    Entries,
    /// Its term and vote (log kept).
    HardState,
    /// Everything: the disk came back empty.
    Disk,
}

/// A node that forgot what it acknowledged or voted: it must not vote or campaign until it has
/// learned, from a leader, a commit index at or past `through` at an entry of that leader's
/// term (so every entry committed with its lost acknowledgements is in its log again).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forgotten {
    pub what: Forgot,
    /// The last index the disk held before the cut (0 when unknown).
    pub through: LogIndex,
    /// The term recovered (or rebuilt from the log when the hard state was lost).
    pub term: Term,
}

/// What recovery keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    pub hard_state: HardState,
    pub entries: Vec<Entry>,
    /// The first index cut off, if any (the disk must be told to drop it).
    pub cut_at: Option<LogIndex>,
    /// Set when the node must catch up before it votes (only with disk marks).
    pub forgotten: Option<Forgotten>,
    /// The hard state was rebuilt, or its catching-up mark changed: it must be written back.
    pub hard_state_rebuilt: bool,
}

/// Cuts a recovered log at its first entry that is not consecutive or whose chained checksum does
/// not verify. Returns the valid prefix and the index where the cut happened.
pub fn cut_at_first_bad_entry(mut entries: Vec<Entry>) -> (Vec<Entry>, Option<LogIndex>) {
    let mut previous_checksum = 0u32;
    for (position, entry) in entries.iter().enumerate() {
        let expected = LogIndex(position as u64 + 1);
        if entry.index != expected || !entry.verifies_after(previous_checksum) {
            entries.truncate(position);
            return (entries, Some(expected));
        }
        previous_checksum = entry.checksum;
    }
    (entries, None)
}

/// Recovery from `recovered`. Without disk marks: the valid prefix, nothing refused, nothing
/// forgotten (the behaviour before issue 15). `vote_after_disk_loss` is the unsafe switch: the
/// node rebuilds what it lost and votes at once (the classic bug), never `Forgotten`.
pub fn recover(
    recovered: RecoveredState,
    disk_marks: bool,
    vote_after_disk_loss: bool,
) -> Result<Recovery, DiskDamage> {
    let RecoveredState {
        hard_state,
        entries,
        rejoining,
    } = recovered;
    let stored = entries.len() as u64;
    let (entries, cut_at) = cut_at_first_bad_entry(entries);
    if !disk_marks {
        return Ok(Recovery {
            hard_state,
            entries,
            cut_at,
            forgotten: None,
            hard_state_rebuilt: false,
        });
    }
    let commit_mark = hard_state.commit_mark;
    if let Some(index) = cut_at.filter(|index| *index <= commit_mark) {
        return Err(DiskDamage::CommittedEntryDamaged { index, commit_mark });
    }
    let last_index = LogIndex(entries.len() as u64);
    if last_index < commit_mark {
        return Err(DiskDamage::CommittedEntriesMissing {
            last_index,
            commit_mark,
        });
    }
    let last_term = entries.last().map_or(Term(0), |entry| entry.term);
    let hard_state_lost = hard_state == HardState::default() && (rejoining || stored > 0);
    let (hard_state, forgotten, rebuilt) = if hard_state_lost {
        let what = if stored == 0 {
            Forgot::Disk
        } else {
            Forgot::HardState
        };
        let rebuilt = HardState {
            term: last_term,
            voted_for: None,
            commit_mark: LogIndex(0),
            // What the disk held: a later restart that finds less lost entries this node
            // may have acknowledged since (swarm_disk seeds 880, 1652: not settled).
            log_end_mark: LogIndex(stored),
            forgotten_through: LogIndex(0),
        };
        let forgotten = Forgotten {
            what,
            through: LogIndex(stored),
            term: last_term,
        };
        (rebuilt, Some(forgotten), last_term > Term(0))
    } else {
        // A bad last entry is a torn write (never acknowledged); one with intact entries after
        // it is damage to synced data the node may have acknowledged; so is a log that ends
        // before the last index the hard state saw (entries lost from the end).
        let damaged_inside = cut_at.is_some_and(|index| index.0 < stored);
        let cut_short = stored < hard_state.log_end_mark.0;
        // A node restarted again before it caught up is still catching up.
        let still_catching_up = hard_state.forgotten_through > LogIndex(0);
        let forgotten = (damaged_inside || cut_short || still_catching_up).then(|| Forgotten {
            what: Forgot::Entries,
            through: LogIndex(stored)
                .max(hard_state.log_end_mark)
                .max(hard_state.forgotten_through),
            term: hard_state.term,
        });
        (hard_state, forgotten, false)
    };
    let forgotten = forgotten.filter(|_| !vote_after_disk_loss);
    // The hard state remembers that this node is catching up, so a restart before it has
    // caught up neither votes nor counts as a node that acknowledged what it lost.
    let mut hard_state = hard_state;
    let forgotten_through = forgotten.map_or(LogIndex(0), |forgotten| forgotten.through);
    let rewrite = rebuilt || hard_state.forgotten_through != forgotten_through;
    hard_state.forgotten_through = forgotten_through;
    Ok(Recovery {
        hard_state,
        entries,
        cut_at,
        forgotten,
        hard_state_rebuilt: rewrite,
    })
}
