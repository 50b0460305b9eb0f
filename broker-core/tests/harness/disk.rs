//! A simulated disk: writes (`PersistOp`s) wait in a pending queue until a `Sync` covering them
//! completes; a crash keeps only a random prefix of the pending writes, and may tear the last
//! appended entry (its bytes half written), which recovery must cut.

use broker_core::store::{Entry, HardState, PersistOp, RecoveredState};
use broker_core::types::{LogIndex, SyncId};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Default, Clone)]
pub struct Disk {
    /// What survives any crash.
    pub hard_state: HardState,
    pub entries: Vec<Entry>,
    /// Written, not yet durable, in order.
    pending: Vec<PersistOp>,
    /// Each requested sync and how many pending ops (counted from the start of `pending`) it covers.
    syncs: Vec<(SyncId, usize)>,
}

impl Disk {
    pub fn write(&mut self, op: PersistOp) {
        self.pending.push(op);
    }

    pub fn request_sync(&mut self, sync_id: SyncId) {
        self.syncs.push((sync_id, self.pending.len()));
    }

    /// The sync finished: its ops (and every earlier one) become durable.
    pub fn complete_sync(&mut self, sync_id: SyncId) {
        let Some(position) = self.syncs.iter().position(|(id, _)| *id == sync_id) else {
            panic!("harness: sync {sync_id:?} completed twice or never requested");
        };
        let covered = self.syncs[position].1;
        let done: Vec<PersistOp> = self.pending.drain(..covered).collect();
        for op in done {
            self.apply(op);
        }
        self.syncs.drain(..=position);
        for (_, count) in &mut self.syncs {
            *count -= covered;
        }
    }

    /// Index of the last durable entry.
    pub fn last_index(&self) -> LogIndex {
        LogIndex(self.entries.len() as u64)
    }

    /// The durable checksum at `index`, if the disk holds that entry.
    pub fn checksum_at(&self, index: LogIndex) -> Option<u32> {
        let position = usize::try_from(index.0).ok()?.checked_sub(1)?;
        self.entries.get(position).map(|entry| entry.checksum)
    }

    fn apply(&mut self, op: PersistOp) {
        match op {
            PersistOp::HardState(hard_state) => self.hard_state = hard_state,
            PersistOp::TruncateFrom { from } => {
                let keep = usize::try_from(from.0.saturating_sub(1)).expect("index fits usize");
                self.entries.truncate(keep);
            }
            PersistOp::Append { entries } => {
                let first = entries.first().map(|entry| entry.index);
                assert_eq!(
                    first,
                    Some(self.last_index().next()),
                    "harness: Append must start right after the disk's last entry"
                );
                self.entries.extend(entries);
            }
        }
    }

    /// The process died: a random prefix of the pending writes reached the platter, the rest
    /// is lost; with `tear` the last surviving appended entry is half written.
    pub fn crash(&mut self, rng: &mut ChaCha8Rng, tear: bool) {
        let survive = rng.gen_range(0..=self.pending.len());
        let survivors: Vec<PersistOp> = self.pending.drain(..survive).collect();
        let tear_last = tear && matches!(survivors.last(), Some(PersistOp::Append { .. }));
        for op in survivors {
            self.apply(op);
        }
        if tear_last {
            if let Some(last) = self.entries.last_mut() {
                last.data.push(0xEE);
            }
        }
        self.pending.clear();
        self.syncs.clear();
    }

    pub fn recovered(&self) -> RecoveredState {
        RecoveredState {
            hard_state: self.hard_state.clone(),
            entries: self.entries.clone(),
            rejoining: false,
        }
    }
}
