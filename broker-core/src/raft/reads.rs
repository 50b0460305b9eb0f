//! Linearizable reads on a leader: ReadIndex (Raft §6.4; raft-rs `read_index`).
//!
//! 1. The leader takes reads only once it has committed an entry of its own term: before that,
//!    its commit index may lag what an earlier leader acknowledged. Reads arriving earlier wait.
//! 2. The read index is the commit index then (at arrival, or when the first entry of the term
//!    committed for the reads that waited).
//! 3. The leader confirms that it still leads: it sends a heartbeat round tagged with a new
//!    round number (`AppendRequest::read_round`); a follower echoes the highest round it
//!    received in its current term (`AppendResponse::read_round`). Once a majority, the leader
//!    included, has echoed that round or a later one in the leader's term, each of them was
//!    still in that term after the reads arrived, so no newer leader had been elected then
//!    (its voters would have been in a newer term), and every write acknowledged before the
//!    reads arrived is at or below the read index.
//! 4. It answers `Ready { index: read_index }` once it has applied the read index.
//!
//! One round is in flight at a time; reads that arrive meanwhile share the next one, sent as
//! soon as the one in flight is confirmed. Every request a leader sends carries its latest
//! round, so the periodic heartbeats repeat a round whose messages were lost. No entry is
//! appended for a read. With `skip_noop_on_election` (DLedger) a new leader appends nothing of
//! its own term, so its reads wait for its first client entry to commit (DLedger itself offers
//! no ReadIndex).
//!
//! A leader that loses leadership answers every read in progress `NotLeader`; during a
//! leadership transfer new reads are refused `Busy`. Reads through the log (DLedger
//! `RAFT_LOG_READ`) are proposals of a no-op: see `client.rs`.

use super::node::Node;
use super::{ReadOutcome, Role};
use crate::types::{LogIndex, NodeId, ReadId};
use std::collections::BTreeMap;

/// A ReadIndex read and its read index.
#[derive(Debug, Clone, Copy)]
pub(super) struct PendingRead {
    read: ReadId,
    read_index: LogIndex,
}

/// The ReadIndex reads of one leader, each stage in arrival order.
#[derive(Debug, Default)]
pub(super) struct ReadQueue {
    /// Reads that arrived before the leader committed an entry of its term.
    awaiting_term_commit: Vec<ReadId>,
    /// Reads with their read index, for the round after the one in flight.
    queued: Vec<PendingRead>,
    /// The latest round sent (0: none yet); rounds count from 1 in each leadership.
    round_sent: u64,
    /// The reads that round `round_sent` confirms; empty when no round is in flight.
    in_flight: Vec<PendingRead>,
    /// The highest round each follower echoed in this term.
    echoed: BTreeMap<NodeId, u64>,
    /// Confirmed reads and their read index, waiting for it to be applied. Indexes never
    /// decrease along the list (commit indexes, taken in order).
    confirmed: Vec<(ReadId, LogIndex)>,
}

impl ReadQueue {
    /// Reads in progress, in any stage.
    pub(super) fn len(&self) -> usize {
        self.awaiting_term_commit.len()
            + self.queued.len()
            + self.in_flight.len()
            + self.confirmed.len()
    }

    /// Every read in progress, in arrival order (for failing them all).
    pub(super) fn into_reads(self) -> Vec<ReadId> {
        let confirmed = self.confirmed.into_iter().map(|(read, _)| read);
        let in_flight = self.in_flight.into_iter().map(|pending| pending.read);
        let queued = self.queued.into_iter().map(|pending| pending.read);
        confirmed
            .chain(in_flight)
            .chain(queued)
            .chain(self.awaiting_term_commit)
            .collect()
    }

    /// The round every request of this leader carries.
    pub(super) fn round_sent(&self) -> u64 {
        self.round_sent
    }

    /// The leader and the followers that echoed round `round_sent` or later are a majority.
    fn round_confirmed(&self, majority: usize) -> bool {
        let echoed = self
            .echoed
            .values()
            .filter(|round| **round >= self.round_sent)
            .count();
        echoed + 1 >= majority
    }
}

impl Node {
    /// `Input::ReadIndex`: a follower refuses; a leader takes the read with its read index, or
    /// keeps it until an entry of its term is committed.
    pub(super) fn read_index(&mut self, read: ReadId) {
        if self.role != Role::Leader {
            let leader_hint = self.leader;
            self.reply_read(read, ReadOutcome::NotLeader { leader_hint });
            return;
        }
        let read_index = self.commit_index;
        let reads_max = self.config.pending_reads_max as usize;
        let state = self.leader_state_mut();
        if state.transfer.is_some() || state.reads.len() >= reads_max {
            self.reply_read(read, ReadOutcome::Busy);
            return;
        }
        if read_index >= state.first_index_of_term {
            state.reads.queued.push(PendingRead { read, read_index });
        } else {
            state.reads.awaiting_term_commit.push(read);
        }
    }

    /// A follower of this leader's term echoed `round` (in any `AppendResponse`).
    pub(super) fn read_round_echoed(&mut self, from: NodeId, round: u64) {
        let reads = &mut self.leader_state_mut().reads;
        assert!(
            round <= reads.round_sent,
            "invariant: {from} echoes read round {round}, beyond the latest sent {}",
            reads.round_sent
        );
        let echoed = reads.echoed.entry(from).or_default();
        *echoed = (*echoed).max(round);
    }

    /// Leader, every step: take the reads that waited for an entry of the term, confirm the
    /// round in flight if a majority echoed it, then send the next round for the reads queued.
    pub(super) fn advance_reads(&mut self) {
        self.take_reads_awaiting_term_commit();
        self.confirm_read_round();
        if self.start_read_round() {
            // A group of one confirms at once.
            self.confirm_read_round();
        }
    }

    /// Once an entry of the leader's term is committed, the reads that waited for it take the
    /// commit index as their read index.
    fn take_reads_awaiting_term_commit(&mut self) {
        let read_index = self.commit_index;
        let state = self.leader_state_mut();
        if read_index < state.first_index_of_term || state.reads.awaiting_term_commit.is_empty() {
            return;
        }
        let reads = std::mem::take(&mut state.reads.awaiting_term_commit);
        let pending = reads
            .into_iter()
            .map(|read| PendingRead { read, read_index });
        state.reads.queued.extend(pending);
    }

    fn confirm_read_round(&mut self) {
        let majority = self.majority();
        let state = self.leader_state_mut();
        if state.reads.in_flight.is_empty() || !state.reads.round_confirmed(majority) {
            return;
        }
        let floor = state.first_index_of_term;
        for pending in std::mem::take(&mut state.reads.in_flight) {
            assert!(
                pending.read_index >= floor,
                "invariant: read index {} below the first index of the term {floor}",
                pending.read_index
            );
            state
                .reads
                .confirmed
                .push((pending.read, pending.read_index));
        }
    }

    /// Sends a new heartbeat round for the queued reads if none is in flight. Returns whether
    /// one was sent.
    fn start_read_round(&mut self) -> bool {
        let reads = &mut self.leader_state_mut().reads;
        if !reads.in_flight.is_empty() || reads.queued.is_empty() {
            return false;
        }
        reads.round_sent += 1;
        reads.in_flight = std::mem::take(&mut reads.queued);
        self.send_heartbeat_appends();
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
