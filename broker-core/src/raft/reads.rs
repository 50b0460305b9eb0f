//! Linearizable reads on a leader: ReadIndex (Raft §6.4; raft-rs `read_index`).
//!
//! The leader records its commit index when a read arrives (the read index), confirms that it
//! still led at that moment, and answers once it has applied the read index and an entry of its
//! own term (§6.4 step 1: before that, its commit index may lag what an earlier leader
//! acknowledged).
//!
//! Confirmation: the paper and raft-rs send a heartbeat round and count the acknowledgements
//! that echo that round. Our `AppendResponse` echoes nothing but log positions, so the round
//! here is a log position, a *read barrier*: an index whose entry this leader created after the
//! reads arrived. Once a majority (the leader included) acknowledges a match at or beyond it,
//! each of them was still in the leader's term after the reads arrived, so no newer leader had
//! been elected then (its voters would have been in a newer term), and every write acknowledged
//! before the reads arrived is at or below the read index. The barrier is the leader's last
//! entry if it was appended after the reads arrived (a client's send), else a no-op appended for
//! it. One barrier is in flight at a time; reads that arrive meanwhile wait for the next one, so
//! reads cost at most one no-op per round trip however many there are.
//!
//! A leader that loses leadership answers every read in progress `NotLeader`. Reads through
//! the log (DLedger `RAFT_LOG_READ`) are proposals of a no-op: see `client.rs`.

use super::node::Node;
use super::{ReadOutcome, Role};
use crate::store::{EntryKind, PersistOp};
use crate::types::{LogIndex, ReadId};

/// A ReadIndex read and the commit index when it arrived.
#[derive(Debug, Clone, Copy)]
pub(super) struct PendingRead {
    read: ReadId,
    read_index: LogIndex,
}

/// The ReadIndex reads of one leader, in arrival order.
#[derive(Debug, Default)]
pub(super) struct ReadQueue {
    /// Reads that arrived after the barrier in flight was chosen.
    queued: Vec<PendingRead>,
    /// The leader's last index when the latest queued read arrived: their barrier lies beyond.
    queued_at_last_index: LogIndex,
    /// The barrier in flight and the reads it confirms.
    barrier: Option<(LogIndex, Vec<PendingRead>)>,
    /// Confirmed reads and the index each may be served at, waiting for it to be applied.
    /// Indexes never decrease along the list (commit indexes at arrival, floored by one value).
    confirmed: Vec<(ReadId, LogIndex)>,
}

impl ReadQueue {
    /// Reads in progress, in any stage.
    pub(super) fn len(&self) -> usize {
        self.queued.len()
            + self.barrier.as_ref().map_or(0, |(_, reads)| reads.len())
            + self.confirmed.len()
    }

    /// Every read in progress, in arrival order (for failing them all).
    pub(super) fn into_reads(self) -> Vec<ReadId> {
        let confirmed = self.confirmed.into_iter().map(|(read, _)| read);
        let barrier = self.barrier.into_iter().flat_map(|(_, reads)| reads);
        confirmed
            .chain(barrier.map(|pending| pending.read))
            .chain(self.queued.into_iter().map(|pending| pending.read))
            .collect()
    }
}

impl Node {
    /// `Input::ReadIndex`: a follower refuses; a leader queues the read with its read index.
    pub(super) fn read_index(&mut self, read: ReadId) {
        if self.role != Role::Leader {
            let leader_hint = self.leader;
            self.reply_read(read, ReadOutcome::NotLeader { leader_hint });
            return;
        }
        let read_index = self.commit_index;
        let last_index = self.log.last_index();
        let reads_max = self.config.pending_reads_max as usize;
        let state = self.leader_state_mut();
        if state.transfer.is_some() || state.reads.len() >= reads_max {
            self.reply_read(read, ReadOutcome::Busy);
            return;
        }
        state.reads.queued.push(PendingRead { read, read_index });
        state.reads.queued_at_last_index = last_index;
    }

    /// Leader, every step: confirm the barrier in flight if a majority reached it; then start
    /// the next one for the reads queued since.
    pub(super) fn advance_reads(&mut self) {
        self.confirm_read_barrier();
        if self.start_read_barrier() {
            // A group of one confirms at once.
            self.confirm_read_barrier();
        }
    }

    fn confirm_read_barrier(&mut self) {
        let Some(barrier) = self
            .leader_state()
            .reads
            .barrier
            .as_ref()
            .map(|(index, _)| *index)
        else {
            return;
        };
        if !self.reached_by_majority(barrier) {
            return;
        }
        let state = self.leader_state_mut();
        let floor = state.first_index_of_term;
        let (_, reads) = state
            .reads
            .barrier
            .take()
            .expect("invariant: the barrier checked above is in flight");
        for pending in reads {
            let index = pending.read_index.max(floor);
            state.reads.confirmed.push((pending.read, index));
        }
    }

    /// True when the leader and peers acknowledging a match at or beyond `index` are a
    /// majority (`index` is in the leader's log).
    fn reached_by_majority(&self, index: LogIndex) -> bool {
        let peers = self
            .leader_state()
            .progress
            .values()
            .filter(|progress| progress.match_index >= index)
            .count();
        peers + 1 >= self.majority()
    }

    /// Chooses the barrier for the queued reads (appending a no-op if no entry came after
    /// them). During a leadership transfer no no-op is appended: such reads are answered
    /// `Busy`. Returns whether a barrier was started.
    fn start_read_barrier(&mut self) -> bool {
        let last_index = self.log.last_index();
        let term = self.hard_state.term;
        let state = self.leader_state_mut();
        if state.reads.barrier.is_some() || state.reads.queued.is_empty() {
            return false;
        }
        let after_reads = last_index > state.reads.queued_at_last_index;
        if !after_reads && state.transfer.is_some() {
            let reads = std::mem::take(&mut state.reads.queued);
            for pending in reads {
                self.reply_read(pending.read, ReadOutcome::Busy);
            }
            return false;
        }
        let barrier = if after_reads {
            last_index
        } else {
            let noop = self.log.append_new(term, EntryKind::Noop, Vec::new());
            let index = noop.index;
            self.persist(PersistOp::Append {
                entries: vec![noop],
            });
            index
        };
        let state = self.leader_state_mut();
        let reads = std::mem::take(&mut state.reads.queued);
        state.reads.barrier = Some((barrier, reads));
        true
    }

    /// Answers `Ready` every confirmed read whose index is applied (after the `Apply`).
    pub(super) fn answer_applied_reads(&mut self) {
        let applied = self.applied_index;
        let Some(state) = self.leader_state.as_mut() else {
            return;
        };
        let ready = state
            .reads
            .confirmed
            .partition_point(|(_, index)| *index <= applied);
        let answered: Vec<(ReadId, LogIndex)> = state.reads.confirmed.drain(..ready).collect();
        for (read, index) in answered {
            self.reply_read(read, ReadOutcome::Ready { index });
        }
    }
}
