//! Simulated durable storage for one replica, kept outside the node so it survives `kill`.
//! Writes land as pending; a sync makes every earlier write durable after the fsync latency;
//! a crash drops pending writes, optionally keeping a prefix of them (a torn write).

use broker_core::store::{PersistOp, RecoveredState};
use std::collections::VecDeque;

#[derive(Clone, Debug, Default)]
pub struct Disk {
    durable: RecoveredState,
    /// Writes not yet synced, oldest first; the first has sequence number `pending_first_seq`.
    pending: VecDeque<PersistOp>,
    pending_first_seq: u64,
    /// One fsync at a time: the last one scheduled completes then (simulated µs)...
    busy_until_us: u64,
    /// ...and starts then. A sync asked for before it starts joins it (group commit), so at
    /// most one fsync waits behind the running one however many syncs are asked for.
    last_start_us: u64,
    pub fsync_latency_us: u64,
    /// A disk fault took the hard state (WipeDisk, LoseHardState). A replica writes its hard
    /// state file when it first votes or learns a term; a missing file on a replica that ran
    /// before is a lost one, while a default one that was never written (a crash before the
    /// first write) is a replica that never voted nor acknowledged anything.
    hard_state_lost: bool,
}

impl Disk {
    pub fn new(fsync_latency_us: u64) -> Disk {
        Disk {
            fsync_latency_us,
            ..Disk::default()
        }
    }

    /// Queues a write; returns its sequence number.
    pub fn write(&mut self, op: PersistOp) -> u64 {
        self.pending.push_back(op);
        self.pending_first_seq + self.pending.len() as u64 - 1
    }

    /// Starts an fsync covering every write so far: returns (covered sequence number or None
    /// when nothing is pending, completion time). Fsyncs complete one after another.
    pub fn start_sync(&mut self, now_us: u64) -> (Option<u64>, u64) {
        let upto = (!self.pending.is_empty())
            .then(|| self.pending_first_seq + self.pending.len() as u64 - 1);
        if self.last_start_us > now_us {
            // The queued fsync has not started: it will cover these writes too.
            return (upto, self.busy_until_us);
        }
        let start = self.busy_until_us.max(now_us);
        let complete_at = start + self.fsync_latency_us;
        self.last_start_us = start;
        self.busy_until_us = complete_at;
        (upto, complete_at)
    }

    /// The fsync covering writes up to `upto_seq` completed: they are durable now.
    pub fn complete_sync(&mut self, upto_seq: u64) {
        while self.pending_first_seq <= upto_seq {
            let Some(op) = self.pending.pop_front() else {
                break;
            };
            self.pending_first_seq += 1;
            apply(&mut self.durable, op);
        }
    }

    /// The machine lost power: pending writes are gone, except the first `surviving_writes`.
    pub fn crash(&mut self, surviving_writes: usize) {
        let survivors: Vec<PersistOp> = self.pending.drain(..).take(surviving_writes).collect();
        for op in survivors {
            apply(&mut self.durable, op);
        }
        self.pending_first_seq = 0;
        self.busy_until_us = 0;
        self.last_start_us = 0;
    }

    /// A power loss that tears the last surviving write: the first `surviving_writes` pending
    /// writes reach the platter, and the last log entry they appended is corrupted (its
    /// checksum flipped), as a half-written sector would leave it. Only unsynced data is ever
    /// corrupted. Returns the index of the corrupted entry, if a surviving append left one.
    pub fn crash_torn(&mut self, surviving_writes: usize) -> Option<u64> {
        let survivors: Vec<PersistOp> = self.pending.drain(..).take(surviving_writes).collect();
        let mut last_appended = None;
        for op in survivors {
            match &op {
                PersistOp::Append { entries } => {
                    last_appended = entries.last().map(|e| e.index.0);
                }
                PersistOp::TruncateFrom { from } => {
                    last_appended = last_appended.filter(|index| *index < from.0);
                }
                PersistOp::HardState(_) => {}
            }
            apply(&mut self.durable, op);
        }
        self.pending_first_seq = 0;
        self.busy_until_us = 0;
        self.last_start_us = 0;
        let index = last_appended?;
        let position = usize::try_from(index - 1).expect("invariant: log indexes fit in usize");
        let entry = self.durable.entries.get_mut(position)?;
        entry.checksum ^= 0xA5A5_A5A5;
        Some(index)
    }

    /// The number of writes a crash now would drop.
    pub fn pending_writes(&self) -> usize {
        self.pending.len()
    }

    /// What a restarting node reads.
    pub fn recover(&self) -> RecoveredState {
        assert!(
            self.pending.is_empty(),
            "invariant: a node recovers only after crash() dropped its pending writes"
        );
        self.durable.clone()
    }

    pub fn durable(&self) -> &RecoveredState {
        &self.durable
    }

    /// Whether a disk fault took the hard state (sticky: what was lost stays lost).
    pub fn hard_state_lost(&self) -> bool {
        self.hard_state_lost
    }

    /// A disk fault took the hard state (`damage`).
    pub fn lose_hard_state(&mut self) {
        self.hard_state_lost = true;
    }

    /// The durable state, for disk faults (`damage`); only while nothing is pending.
    pub fn durable_mut(&mut self) -> &mut RecoveredState {
        assert!(
            self.pending.is_empty(),
            "invariant: a disk is damaged only while its node is down"
        );
        &mut self.durable
    }
}

fn apply(state: &mut RecoveredState, op: PersistOp) {
    match op {
        PersistOp::HardState(hard_state) => state.hard_state = hard_state,
        PersistOp::TruncateFrom { from } => {
            let keep = usize::try_from(from.0.saturating_sub(1))
                .expect("invariant: log indexes fit in usize");
            state.entries.truncate(keep);
        }
        PersistOp::Append { entries } => {
            for entry in entries {
                assert_eq!(
                    entry.index.0,
                    state.entries.len() as u64 + 1,
                    "invariant: appends extend the durable log without gaps"
                );
                state.entries.push(entry);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use broker_core::store::{Entry, EntryKind, HardState};
    use broker_core::{LogIndex, NodeId, Term};

    fn entry(index: u64) -> Entry {
        Entry::new(
            0,
            LogIndex(index),
            Term(1),
            EntryKind::Normal,
            vec![index as u8],
        )
    }

    // Only synced writes survive a crash; unsynced ones are lost.
    #[test]
    fn crash_drops_unsynced_writes() {
        let mut disk = Disk::new(2_000);
        disk.write(PersistOp::HardState(HardState {
            commit_mark: LogIndex(0),
            log_end_mark: LogIndex(0),
            forgotten_through: LogIndex(0),
            term: Term(1),
            voted_for: Some(NodeId(0)),
        }));
        disk.write(PersistOp::Append {
            entries: vec![entry(1)],
        });
        let (upto, at) = disk.start_sync(10_000);
        assert_eq!((upto, at), (Some(1), 12_000));
        disk.complete_sync(1);
        disk.write(PersistOp::Append {
            entries: vec![entry(2)],
        });
        disk.crash(0);
        let recovered = disk.recover();
        assert_eq!(recovered.hard_state.term, Term(1));
        assert_eq!(recovered.entries, vec![entry(1)]);
    }

    // A torn tail corrupts the last entry the surviving prefix appended, and nothing synced.
    #[test]
    fn torn_tail_corrupts_the_last_surviving_append() {
        let mut disk = Disk::new(1_000);
        disk.write(PersistOp::Append {
            entries: vec![entry(1)],
        });
        disk.start_sync(0);
        disk.complete_sync(0);
        for i in 2..=4 {
            disk.write(PersistOp::Append {
                entries: vec![entry(i)],
            });
        }
        assert_eq!(disk.crash_torn(2), Some(3));
        let recovered = disk.recover();
        assert_eq!(recovered.entries.len(), 3);
        assert_eq!(recovered.entries[0], entry(1));
        assert_eq!(recovered.entries[1], entry(2));
        assert_ne!(recovered.entries[2].checksum, entry(3).checksum);
        // Nothing unsynced: nothing to tear.
        assert_eq!(disk.crash_torn(5), None);
    }

    // A torn write keeps a prefix of the pending writes; fsyncs queue behind each other.
    #[test]
    fn torn_write_keeps_a_prefix_and_fsyncs_serialise() {
        let mut disk = Disk::new(1_000);
        for i in 1..=3 {
            disk.write(PersistOp::Append {
                entries: vec![entry(i)],
            });
        }
        let (_, first) = disk.start_sync(0);
        let (_, second) = disk.start_sync(0);
        assert_eq!((first, second), (1_000, 2_000));
        // A third, asked for before the second started, joins it (group commit).
        let (_, third) = disk.start_sync(500);
        assert_eq!(third, 2_000);
        disk.crash(2);
        assert_eq!(disk.recover().entries.len(), 2);
        disk.write(PersistOp::TruncateFrom { from: LogIndex(2) });
        disk.complete_sync(0);
        assert_eq!(disk.recover().entries, vec![entry(1)]);
    }
}
