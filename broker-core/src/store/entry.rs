use crate::types::{LogIndex, Term};
use serde::{Deserialize, Serialize};

/// Why an entry is in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    /// Appended by a new leader to commit the entries of earlier terms (Raft §8).
    Noop,
    /// A client proposal: the bytes are opaque to Raft (the broker layer encodes its commands).
    Normal,
}

/// A log entry: index, term, payload, and a checksum chained over the previous entry's
/// checksum (DLedger's chain CRC), so a divergent or torn replica is detectable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub index: LogIndex,
    pub term: Term,
    pub kind: EntryKind,
    pub data: Vec<u8>,
    pub checksum: u32,
}

/// The checksum of an entry given the checksum of its predecessor (0 before index 1).
pub fn chain_checksum(
    previous_checksum: u32,
    index: LogIndex,
    term: Term,
    kind: EntryKind,
    data: &[u8],
) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&previous_checksum.to_le_bytes());
    hasher.update(&index.0.to_le_bytes());
    hasher.update(&term.0.to_le_bytes());
    hasher.update(&[match kind {
        EntryKind::Noop => 0u8,
        EntryKind::Normal => 1u8,
    }]);
    hasher.update(data);
    hasher.finalize()
}

impl Entry {
    /// Builds an entry that follows one whose checksum is `previous_checksum`.
    pub fn new(
        previous_checksum: u32,
        index: LogIndex,
        term: Term,
        kind: EntryKind,
        data: Vec<u8>,
    ) -> Entry {
        let checksum = chain_checksum(previous_checksum, index, term, kind, &data);
        Entry {
            index,
            term,
            kind,
            data,
            checksum,
        }
    }

    /// True when this entry's checksum matches its content and its predecessor's checksum.
    pub fn verifies_after(&self, previous_checksum: u32) -> bool {
        self.checksum
            == chain_checksum(
                previous_checksum,
                self.index,
                self.term,
                self.kind,
                &self.data,
            )
    }
}
