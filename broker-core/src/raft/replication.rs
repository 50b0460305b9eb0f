//! Log replication (Raft §5.3): the leader pushes entries and heartbeats, resends what is not
//! acknowledged, commits by counting durable replicas of a current-term entry (§5.4.2), and
//! steps down without a majority (check quorum). Per follower it pipelines or probes
//! (`progress.rs`) and ignores stale rejections. The follower checks prev index/term, keeps a
//! request that arrived before the ones it follows (rejecting it as well while it has not yet
//! accepted anything from this leader), truncates a conflicting uncommitted suffix, and
//! acknowledges only durable, verified entries.
//!
//! DLedger fidelity (`Fidelity`) changes four things here: the commit rule
//! (`commit_by_quorum_watermark`), the first heartbeat anchor of a new leader
//! (`watermark_from_compare`), how a leader decides to step down
//! (`step_down_by_heartbeat_rounds`), and how far back a conflicting follower points the leader
//! (`compare_below_commit`); a follower then records, instead of asserting, the truncation of an
//! entry it knew committed.

use super::node::{EarlyAppend, LeaderState, Node, Waiter};
use super::progress::Rejection;
use super::{ProposeOutcome, ReadOutcome, Role, SafetyViolation};
use crate::proto::Message;
use crate::store::{Entry, PersistOp};
use crate::types::{LogIndex, NodeId, Term};

impl Node {
    // ---------------------------------------------------------------- follower side

    pub(super) fn on_append_request(
        &mut self,
        from: NodeId,
        term: Term,
        prev: (LogIndex, Term),
        entries: Vec<Entry>,
        leader_commit: LogIndex,
        read_round: u64,
    ) {
        if term < self.hard_state.term {
            self.send_append_rejection(from, LogIndex(0));
            return;
        }
        assert!(
            self.role != Role::Leader,
            "invariant: two leaders in term {} ({} and {})",
            term,
            self.id,
            from
        );
        if self.role != Role::Follower || self.leader != Some(from) {
            self.become_follower(term, Some(from));
        }
        self.leader_contact_ms = self.now_ms;
        self.reset_election_timer();
        self.duty.read_round = self.duty.read_round.max(read_round);
        let (prev_index, prev_term) = prev;
        match self.log.term_at(prev_index) {
            None => {
                let through = LogIndex(prev_index.0 + entries.len() as u64);
                let early = EarlyAppend {
                    prev_term,
                    entries,
                    leader_commit,
                };
                let kept = self.keep_early_append(prev_index, early);
                if !kept {
                    self.duty.dropped_through = self.duty.dropped_through.max(through);
                }
                if !kept || !self.duty.leader_verified {
                    self.send_append_rejection(from, self.log.last_index().next());
                }
            }
            Some(found) if found != prev_term => {
                let floor = if self.config.fidelity.compare_below_commit {
                    LogIndex(1)
                } else {
                    self.commit_index.next()
                };
                let hint = self
                    .log
                    .first_index_of_term_at(prev_index, floor)
                    .max(floor);
                self.send_append_rejection(from, hint);
            }
            Some(_) => {
                self.duty.leader_verified = true;
                self.accept_entries(prev_index, entries, leader_commit);
                self.accept_early_appends();
                self.report_dropped_gap(from);
            }
        }
    }

    /// A request we dropped for want of room still lies beyond our log: reject once more. Our
    /// first rejection may reach the leader after acks at or beyond its hint, and a leader takes
    /// such a rejection as stale; this one's hint is beyond every ack sent so far.
    fn report_dropped_gap(&mut self, leader: NodeId) {
        let last_index = self.log.last_index();
        if self.duty.dropped_through > last_index {
            self.duty.dropped_through = LogIndex(0);
            self.send_append_rejection(leader, last_index.next());
        }
    }

    /// Keeps a request of the current leader whose prev index is beyond our log, if it has
    /// entries and there is room; it is applied once our log reaches its prev index (it was
    /// reordered behind one still on its way, or the leader's next probe fills the gap).
    ///
    /// Until we have accepted a request of this leader (new term, or we restarted), our log may
    /// lag: the caller then also rejects, so the leader learns at once where our log ends.
    /// Keeping matters for that rejection too: the leader takes a gap rejection whose hint it
    /// has since seen acknowledged as stale (`Progress::rejected`), which holds only if the
    /// rejected request was not dropped. A request that finds no room is dropped and rejected.
    fn keep_early_append(&mut self, prev_index: LogIndex, early: EarlyAppend) -> bool {
        if early.entries.is_empty() {
            return false;
        }
        let kept: usize = self
            .duty
            .early_appends
            .values()
            .map(|kept| kept.entries.len())
            .sum();
        let kept_max = self.config.inflight_entries_max as usize;
        if kept + early.entries.len() > kept_max {
            return false;
        }
        let longer = self
            .duty
            .early_appends
            .get(&prev_index)
            .is_none_or(|kept| kept.entries.len() < early.entries.len());
        if longer {
            self.duty.early_appends.insert(prev_index, early);
        }
        true
    }

    /// Accepts the kept requests our log now reaches, in prev-index order. One whose prev term
    /// no longer matches is dropped (the leader resends what we then lack).
    fn accept_early_appends(&mut self) {
        while let Some(kept) = self.duty.early_appends.first_entry() {
            let prev_index = *kept.key();
            if prev_index > self.log.last_index() {
                return;
            }
            let early = kept.remove();
            if self.log.term_at(prev_index) == Some(early.prev_term) {
                self.accept_entries(prev_index, early.entries, early.leader_commit);
            }
        }
    }

    fn send_append_rejection(&mut self, to: NodeId, hint: LogIndex) {
        let msg = Message::AppendResponse {
            term: self.hard_state.term,
            success: false,
            match_or_hint: hint,
            last_log_index: self.log.last_index(),
            read_round: self.duty.read_round,
            forgot: self.forgotten.is_some() || self.unconfirmed_cut.is_some(),
        };
        self.send(to, msg);
    }

    /// prev matched: skip entries we already hold, truncate at the first conflict, append the
    /// rest, and learn the commit index up to what is verified equal to the leader's log.
    fn accept_entries(
        &mut self,
        prev_index: LogIndex,
        entries: Vec<Entry>,
        leader_commit: LogIndex,
    ) {
        let end = LogIndex(prev_index.0 + entries.len() as u64);
        let mut new_entries = Vec::new();
        for entry in entries {
            if !new_entries.is_empty() {
                new_entries.push(entry);
                continue;
            }
            match self.log.get(entry.index) {
                Some(held) if held.term == entry.term => {
                    assert_eq!(
                        held.checksum, entry.checksum,
                        "invariant: Log Matching (§5.3): same index and term, different entry"
                    );
                }
                Some(_) => {
                    self.truncate_conflict(entry.index, entry.term);
                    new_entries.push(entry);
                }
                None => new_entries.push(entry),
            }
        }
        self.append_from_leader(new_entries);
        self.duty.verified_match = self.duty.verified_match.max(end);
        let learned = leader_commit.min(self.duty.verified_match);
        self.commit_index = self.commit_index.max(learned);
        self.duty.ack_owed = true;
        if self
            .unconfirmed_cut
            .is_some_and(|cut| self.duty.verified_match >= cut)
        {
            self.unconfirmed_cut = None;
        }
        self.catch_up_after_disk_loss();
    }

    /// `disk_marks`: a node that forgot what it acknowledged or voted may vote again once a
    /// leader has told it a commit index at or past everything its disk held, at an entry of
    /// that leader's term (Raft commits an entry of its own term only after every earlier
    /// committed one, so each entry committed with the lost acknowledgements is held again).
    fn catch_up_after_disk_loss(&mut self) {
        let Some(forgotten) = self.forgotten else {
            return;
        };
        let at_leader_term = self.log.term_at(self.commit_index) == Some(self.hard_state.term);
        if self.commit_index >= forgotten.through && self.commit_index.0 > 0 && at_leader_term {
            self.forgotten = None;
        }
    }

    /// A follower says its disk lost acknowledged entries: its match index is no more than
    /// its log now (it could otherwise count toward a commit it does not hold).
    pub(super) fn forget_acks_beyond(
        &mut self,
        from: NodeId,
        term: Term,
        last_log_index: LogIndex,
    ) {
        if self.role != Role::Leader || term != self.hard_state.term {
            return;
        }
        self.progress_mut(from).forget_beyond(last_log_index);
    }

    fn truncate_conflict(&mut self, from: LogIndex, term: Term) {
        assert!(
            self.role != Role::Leader,
            "invariant: a leader never truncates its own log"
        );
        if from <= self.commit_index && self.config.fidelity.departs_from_raft() {
            self.lose_committed_entries(from, term);
        }
        assert!(
            from > self.commit_index,
            "invariant: truncating committed entry {} (commit {})",
            from,
            self.commit_index
        );
        assert!(
            from > self.duty.verified_match,
            "invariant: truncating entries verified equal to the leader's"
        );
        self.log.truncate_from(from);
        self.durability.truncated(from);
        self.watermark.truncated(from);
        self.persist(PersistOp::TruncateFrom { from });
    }

    /// DLedger fidelity: the leader overwrites entries this follower knew committed (possible
    /// after a commit by count of an older-term entry, Figure 8). Record it, let the commit
    /// index fall back below the cut, and keep the applied index: what was applied stays applied
    /// (apply is monotone), and entries are applied again only beyond it.
    fn lose_committed_entries(&mut self, from: LogIndex, term: Term) {
        let leader = self
            .leader
            .expect("invariant: a follower truncates only for its current leader");
        self.record_safety_violation(SafetyViolation::CommittedEntryTruncated {
            from,
            commit_index: self.commit_index,
            applied_index: self.applied_index,
            term,
            leader,
        });
        self.commit_index = from.prev();
        // The commit index went back as part of the recorded violation, not by accident.
        self.watermark.lowered_commit(self.commit_index);
    }

    fn append_from_leader(&mut self, entries: Vec<Entry>) {
        let Some(first) = entries.first() else {
            return;
        };
        assert!(
            first.verifies_after(self.log.checksum_at(self.log.last_index())),
            "invariant: entry {} from the leader does not chain onto our log",
            first.index
        );
        for entry in &entries {
            self.log.push(entry.clone());
        }
        self.persist(PersistOp::Append { entries });
    }

    /// Sends the success response for what is durable and verified, once the hard state of this
    /// term is durable too; the rest follows after the next `Persisted`.
    pub(super) fn send_owed_ack(&mut self) {
        let Some(leader) = self.leader else {
            return;
        };
        if !self.duty.ack_owed || self.durability.durable_hard_state().term != self.hard_state.term
        {
            return;
        }
        let reportable = self
            .durability
            .durable_index()
            .min(self.duty.verified_match);
        let complete = reportable == self.duty.verified_match;
        if reportable <= self.duty.acked_match && !complete {
            return;
        }
        self.duty.acked_match = reportable;
        self.duty.ack_owed = !complete;
        let msg = Message::AppendResponse {
            term: self.hard_state.term,
            success: true,
            match_or_hint: reportable,
            last_log_index: self.log.last_index(),
            read_round: self.duty.read_round,
            forgot: self.forgotten.is_some() || self.unconfirmed_cut.is_some(),
        };
        self.send(leader, msg);
    }

    // ---------------------------------------------------------------- leader side

    pub(super) fn on_append_response(
        &mut self,
        from: NodeId,
        term: Term,
        success: bool,
        match_or_hint: LogIndex,
        last_log_index: LogIndex,
        read_round: u64,
    ) {
        if self.role != Role::Leader || term != self.hard_state.term {
            return;
        }
        self.read_round_echoed(from, read_round);
        let last_index = self.log.last_index();
        let now_ms = self.now_ms;
        let resend_ms = self.config.append_resend_ms;
        let majority = self.majority();
        let state = self.leader_state_mut();
        if state.round.responders.insert(from) && state.round.responders.len() + 1 == majority {
            state.round_quorum_at_ms = now_ms;
        }
        let progress = self.progress_mut(from);
        progress.last_heard_ms = now_ms;
        progress.compare_at = None;
        if success {
            assert!(
                match_or_hint <= last_index,
                "invariant: follower {from} matches {match_or_hint} beyond our last index {last_index}"
            );
            progress.acknowledged(match_or_hint, now_ms, resend_ms);
        } else {
            progress.rejected(Rejection {
                hint: match_or_hint,
                follower_last: last_log_index,
            });
        }
    }

    fn progress_mut(&mut self, peer: NodeId) -> &mut super::progress::Progress {
        self.leader_state
            .as_mut()
            .expect("invariant: only a leader has progress")
            .progress
            .get_mut(&peer)
            .expect("invariant: every peer has a progress entry")
    }

    pub(super) fn leader_state(&self) -> &LeaderState {
        self.leader_state
            .as_ref()
            .expect("invariant: role Leader has leader state")
    }

    pub(super) fn leader_state_mut(&mut self) -> &mut LeaderState {
        self.leader_state
            .as_mut()
            .expect("invariant: role Leader has leader state")
    }

    /// Pushes new (or to-be-resent) entries to every follower, batched, within the in-flight
    /// window.
    pub(super) fn replicate(&mut self) {
        let peers: Vec<NodeId> = self.peers().collect();
        for peer in peers {
            while self.send_next_batch(peer) {}
        }
    }

    /// Sends one batch to `peer` if there is something to send and room in its window.
    fn send_next_batch(&mut self, peer: NodeId) -> bool {
        let last_index = self.log.last_index();
        let batch_max = u64::from(self.config.append_batch_entries_max);
        let inflight_max = u64::from(self.config.inflight_entries_max);
        let resend_at_ms = self.now_ms + self.config.append_resend_ms;
        let progress = self.progress_mut(peer);
        let room = progress.room_entries(batch_max, inflight_max);
        if progress.next_index > last_index || room == 0 {
            return false;
        }
        let count = batch_max
            .min(room)
            .min(last_index.0 - progress.next_index.0 + 1);
        let first = progress.next_index;
        progress.sent(LogIndex(first.0 + count - 1), resend_at_ms);
        let entries = self.log.slice(first, LogIndex(first.0 + count - 1));
        self.send_append(peer, first.prev(), entries);
        true
    }

    fn send_append(&mut self, peer: NodeId, prev_log_index: LogIndex, entries: Vec<Entry>) {
        let msg = Message::AppendRequest {
            term: self.hard_state.term,
            leader: self.id,
            prev_log_index,
            prev_log_term: self
                .log
                .term_at(prev_log_index)
                .expect("invariant: prev index is inside the leader's log"),
            entries,
            leader_commit: self.commit_index,
            read_round: self.leader_state().reads.round_sent(),
        };
        self.send(peer, msg);
    }

    /// Commit = the highest index durable on a majority (the leader counting its durable index)
    /// whose entry is of the current term (§5.4.2, Figure 8: never commit an older-term entry by
    /// counting replicas; it commits indirectly with the current-term entry after it).
    ///
    /// `commit_by_quorum_watermark` (DLedger `QuorumAckChecker`): the same quorum index, whatever
    /// the term of its entry.
    pub(super) fn leader_advance_commit(&mut self) {
        let mut matched: Vec<LogIndex> = self
            .leader_state()
            .progress
            .values()
            .map(|progress| progress.match_index)
            .collect();
        matched.push(self.durability.durable_index());
        matched.sort_unstable_by(|a, b| b.cmp(a));
        let candidate = matched[self.majority() - 1];
        let term_allows = self.config.fidelity.commit_by_quorum_watermark
            || self.log.term_at(candidate) == Some(self.hard_state.term);
        if candidate > self.commit_index && term_allows {
            self.commit_index = candidate;
        }
    }

    /// Timers of a leader: check quorum (or, DLedger, the heartbeat round that ends now),
    /// proposal and transfer timeouts, heartbeat, resend.
    pub(super) fn leader_tick(&mut self) {
        if self.config.fidelity.step_down_by_heartbeat_rounds {
            if self.heartbeat_rounds_lost_majority() {
                // DLedger `changeRoleToCandidate`: campaign again after a vote interval.
                let term = self.hard_state.term;
                self.become_follower(term, None);
                self.election_deadline_ms = self.now_ms + self.vote_interval_ms();
                return;
            }
        } else if !self.leader_has_quorum() {
            let term = self.hard_state.term;
            self.become_follower(term, None);
            return;
        }
        self.expire_proposals();
        self.expire_transfer();
        let now_ms = self.now_ms;
        if now_ms >= self.leader_state().heartbeat_at_ms {
            self.leader_state_mut().heartbeat_at_ms = now_ms + self.config.heartbeat_interval_ms;
            self.send_heartbeats();
        }
        for progress in self.leader_state_mut().progress.values_mut() {
            if progress.resend_at_ms.is_some_and(|at| at <= now_ms) {
                progress.resend();
            }
        }
    }

    /// Empty appends anchored at each follower's match index, so they always verify (with
    /// `watermark_from_compare`, at the leader's last index at election until the follower first
    /// answers: DLedger's COMPARE). Starts a new heartbeat round.
    pub(super) fn send_heartbeats(&mut self) {
        self.leader_state_mut().round = Default::default();
        self.send_heartbeat_appends();
    }

    /// One empty append to each follower, anchored as `send_heartbeats` says, without starting
    /// a DLedger heartbeat round (a ReadIndex round goes out this way).
    pub(super) fn send_heartbeat_appends(&mut self) {
        let anchors: Vec<(NodeId, LogIndex)> = self
            .leader_state()
            .progress
            .iter()
            .map(|(peer, progress)| (*peer, progress.compare_at.unwrap_or(progress.match_index)))
            .collect();
        for (peer, match_index) in anchors {
            self.send_append(peer, match_index, Vec::new());
        }
    }

    /// `step_down_by_heartbeat_rounds` (DLedger `sendHeartbeats`): the heartbeat round due now
    /// ends without a majority, and none has had one for more than leak × heartbeat (DLedger
    /// compares `elapsed(lastSuccHeartBeatTime) > maxHeartBeatLeak * heartBeatTimeIntervalMs`).
    fn heartbeat_rounds_lost_majority(&self) -> bool {
        let state = self.leader_state();
        if self.now_ms < state.heartbeat_at_ms
            || state.round.responders.len() + 1 >= self.majority()
        {
            return false;
        }
        self.now_ms - state.round_quorum_at_ms > self.config.election_timeout_ms_base()
    }

    /// True while the leader heard from a majority (itself included) within the election
    /// timeout base (Raft check quorum).
    fn leader_has_quorum(&self) -> bool {
        self.quorum_lost_at_ms()
            .is_none_or(|lost_at| self.now_ms < lost_at)
    }

    /// The local time at which, hearing nothing more, the leader loses its majority (Raft check
    /// quorum; with DLedger heartbeat rounds the heartbeat timer judges instead).
    pub(super) fn quorum_lost_at_ms(&self) -> Option<u64> {
        let needed = self.majority() - 1;
        if needed == 0 || self.config.fidelity.step_down_by_heartbeat_rounds {
            return None;
        }
        let mut heard: Vec<u64> = self
            .leader_state()
            .progress
            .values()
            .map(|progress| progress.last_heard_ms)
            .collect();
        heard.sort_unstable_by(|a, b| b.cmp(a));
        Some(heard[needed - 1] + self.config.election_timeout_ms_base())
    }

    /// Leaves the leader role's state: every unanswered proposal learns the leadership is lost,
    /// every read in progress is refused.
    pub(super) fn step_down(&mut self) {
        let state = self
            .leader_state
            .take()
            .expect("invariant: a leader stepping down has leader state");
        let not_leader = ReadOutcome::NotLeader { leader_hint: None };
        for pending in state.pending.into_values() {
            match pending.waiter {
                Waiter::Proposal(proposal) => self.reply(proposal, ProposeOutcome::LeadershipLost),
                Waiter::LogRead(read) => self.reply_read(read, not_leader.clone()),
            }
        }
        for read in state.reads.into_reads() {
            self.reply_read(read, not_leader.clone());
        }
    }

    pub(super) fn leader_deadline_ms(&self, state: &LeaderState) -> u64 {
        let mut deadline = state.heartbeat_at_ms;
        for progress in state.progress.values() {
            if let Some(at) = progress.resend_at_ms {
                deadline = deadline.min(at);
            }
        }
        if let Some(lost_at) = self.quorum_lost_at_ms() {
            deadline = deadline.min(lost_at);
        }
        if let Some(pending) = state.pending.values().next() {
            deadline = deadline.min(pending.deadline_ms);
        }
        if let Some(transfer) = &state.transfer {
            deadline = deadline.min(transfer.deadline_ms);
        }
        deadline
    }
}
