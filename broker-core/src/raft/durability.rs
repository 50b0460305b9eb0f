//! What is known durable: the node asks for writes (`Persist`) and a `Sync`; the caller answers
//! `Persisted { sync_id }`. Each outstanding sync remembers the log end and the hard state it
//! covers, so the node never reports (or counts) more than the disk holds.

use crate::store::HardState;
use crate::types::{LogIndex, SyncId};
use std::collections::VecDeque;

#[derive(Debug)]
struct PendingSync {
    sync_id: SyncId,
    /// The last log index when the sync was requested, lowered by later truncations.
    last_index: LogIndex,
    hard_state: HardState,
}

#[derive(Debug)]
pub(super) struct Durability {
    /// Highest index whose entry (as the log holds it now) is durable.
    durable_index: LogIndex,
    durable_hard_state: HardState,
    /// `Persist` ops were emitted since the last `Sync`.
    dirty: bool,
    next_sync_id: u64,
    pending: VecDeque<PendingSync>,
}

impl Durability {
    /// State after recovery: everything recovered is durable.
    pub(super) fn recovered(durable_index: LogIndex, hard_state: HardState) -> Durability {
        Durability {
            durable_index,
            durable_hard_state: hard_state,
            dirty: false,
            next_sync_id: 1,
            pending: VecDeque::new(),
        }
    }

    pub(super) fn durable_index(&self) -> LogIndex {
        self.durable_index
    }

    pub(super) fn durable_hard_state(&self) -> &HardState {
        &self.durable_hard_state
    }

    /// `Persist` ops wait for a `Sync`.
    pub(super) fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Notes that a `Persist` op was emitted.
    pub(super) fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// If writes are waiting, allocates a sync covering them; the caller emits `Sync`.
    pub(super) fn take_sync(
        &mut self,
        last_index: LogIndex,
        hard_state: &HardState,
    ) -> Option<SyncId> {
        if !self.dirty {
            return None;
        }
        self.dirty = false;
        let sync_id = SyncId(self.next_sync_id);
        self.next_sync_id += 1;
        self.pending.push_back(PendingSync {
            sync_id,
            last_index,
            hard_state: hard_state.clone(),
        });
        Some(sync_id)
    }

    /// The log was cut to end before `from`: entries at `from` and later are no longer durable,
    /// and no pending sync may make them so.
    pub(super) fn truncated(&mut self, from: LogIndex) {
        let last_kept = from.prev();
        self.durable_index = self.durable_index.min(last_kept);
        for sync in &mut self.pending {
            sync.last_index = sync.last_index.min(last_kept);
        }
    }

    /// `Persisted { sync_id }`: every sync up to `sync_id` is complete. Stale duplicates are
    /// ignored; a sync id never issued by this node instance is a caller bug.
    pub(super) fn persisted(&mut self, sync_id: SyncId) {
        assert!(
            sync_id.0 < self.next_sync_id,
            "invariant: Persisted for sync {sync_id:?} that this node never requested \
             (Persisted must not cross a restart)"
        );
        while let Some(front) = self.pending.front() {
            if front.sync_id > sync_id {
                break;
            }
            let done = self
                .pending
                .pop_front()
                .expect("invariant: front exists, checked above");
            self.durable_index = self.durable_index.max(done.last_index);
            self.durable_hard_state = done.hard_state;
        }
    }
}
