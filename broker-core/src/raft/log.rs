//! The in-memory copy of the replicated log: entries 1..=last, consecutive, checksums chained.
//! Writes here are mirrored by `PersistOp`s the node emits; this type only keeps the data.

use crate::store::{Entry, EntryKind};
use crate::types::{LogIndex, Term};

#[derive(Debug, Default)]
pub(super) struct RaftLog {
    /// `entries[i].index == i + 1`.
    entries: Vec<Entry>,
}

impl RaftLog {
    pub(super) fn from_entries(entries: Vec<Entry>) -> RaftLog {
        RaftLog { entries }
    }

    pub(super) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub(super) fn last_index(&self) -> LogIndex {
        LogIndex(self.entries.len() as u64)
    }

    pub(super) fn last_term(&self) -> Term {
        self.entries.last().map_or(Term(0), |entry| entry.term)
    }

    /// The entry at `index`, if present (index 0 is never an entry).
    pub(super) fn get(&self, index: LogIndex) -> Option<&Entry> {
        let position = usize::try_from(index.0).ok()?.checked_sub(1)?;
        self.entries.get(position)
    }

    /// The term of the entry at `index`; index 0 has term 0; `None` past the end.
    pub(super) fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index.0 == 0 {
            return Some(Term(0));
        }
        self.get(index).map(|entry| entry.term)
    }

    /// The chained checksum after `index` (0 before the first entry).
    pub(super) fn checksum_at(&self, index: LogIndex) -> u32 {
        if index.0 == 0 {
            return 0;
        }
        self.get(index)
            .expect("invariant: checksum asked for an index inside the log")
            .checksum
    }

    /// Entries `from..=to` (inclusive), cloned for sending or applying.
    pub(super) fn slice(&self, from: LogIndex, to: LogIndex) -> Vec<Entry> {
        if to < from {
            return Vec::new();
        }
        let start = usize::try_from(from.0 - 1).expect("invariant: index fits in usize");
        let end = usize::try_from(to.0).expect("invariant: index fits in usize");
        self.entries[start..end].to_vec()
    }

    /// Builds and appends the next entry of `term`; returns a copy for persisting.
    pub(super) fn append_new(&mut self, term: Term, kind: EntryKind, data: Vec<u8>) -> Entry {
        let previous = self.checksum_at(self.last_index());
        let entry = Entry::new(previous, self.last_index().next(), term, kind, data);
        self.entries.push(entry.clone());
        entry
    }

    /// Appends an entry built elsewhere (by the leader). The chain is checked by the caller.
    pub(super) fn push(&mut self, entry: Entry) {
        assert_eq!(
            entry.index,
            self.last_index().next(),
            "invariant: appended entries are consecutive"
        );
        self.entries.push(entry);
    }

    /// Drops every entry with index >= `from`.
    pub(super) fn truncate_from(&mut self, from: LogIndex) {
        assert!(
            from.0 >= 1,
            "invariant: truncation starts at index 1 or later"
        );
        let keep = usize::try_from(from.0 - 1).expect("invariant: index fits in usize");
        self.entries.truncate(keep);
    }

    /// The first index of the run of entries with the same term as the entry at `index`,
    /// looking back no further than `floor` (so a rejection costs O(uncommitted entries)).
    pub(super) fn first_index_of_term_at(&self, index: LogIndex, floor: LogIndex) -> LogIndex {
        let term = self.term_at(index);
        let mut first = index;
        while first > floor && first.0 > 1 && self.term_at(first.prev()) == term {
            first = first.prev();
        }
        first
    }

    /// True when a candidate whose log ends at (`last_term`, `last_index`) is at least as up to
    /// date as this log (Raft §5.4.1: compare last terms, then last indexes).
    pub(super) fn candidate_is_up_to_date(&self, last_term: Term, last_index: LogIndex) -> bool {
        (last_term, last_index) >= (self.last_term(), self.last_index())
    }
}
