//! Checks after every step (always on, also in release). What the previous step left is kept in
//! a `Watermark`, so each check is O(1) amortised: the checksum chain is verified only over the
//! entries appended since the last step.

use super::node::Node;
use super::Role;
use crate::store::HardState;
use crate::types::{LogIndex, NodeId, Term};

#[derive(Debug, Clone)]
pub(super) struct Watermark {
    term: Term,
    voted_for: Option<NodeId>,
    commit_index: LogIndex,
    /// Entries up to here were verified consecutive and chained.
    chain_verified: LogIndex,
    /// When leader at the end of the last step: its term and last entry (index, checksum).
    leader_tail: Option<(Term, LogIndex, u32)>,
}

impl Watermark {
    pub(super) fn initial(hard_state: &HardState, last_index: LogIndex) -> Watermark {
        Watermark {
            term: hard_state.term,
            voted_for: hard_state.voted_for,
            commit_index: LogIndex(0),
            chain_verified: last_index,
            leader_tail: None,
        }
    }

    /// The log lost entries from `from`: they must be verified again once replaced.
    pub(super) fn truncated(&mut self, from: LogIndex) {
        self.chain_verified = self.chain_verified.min(from.prev());
    }

    /// The commit index fell back to `commit_index` as part of a recorded safety violation
    /// (DLedger fidelity): the monotonic-commit check starts again from there.
    pub(super) fn lowered_commit(&mut self, commit_index: LogIndex) {
        self.commit_index = self.commit_index.min(commit_index);
    }
}

impl Node {
    pub(super) fn check_invariants(&mut self) {
        let before = self.watermark.clone();
        let term = self.hard_state.term;
        assert!(
            term >= before.term,
            "invariant: term went back from {} to {}",
            before.term,
            term
        );
        if term == before.term && before.voted_for.is_some() {
            assert_eq!(
                self.hard_state.voted_for, before.voted_for,
                "invariant: one vote per term ({term})"
            );
        }
        let last_index = self.log.last_index();
        assert!(
            self.commit_index <= last_index,
            "invariant: commit {} beyond last index {}",
            self.commit_index,
            last_index
        );
        // After a recorded loss of committed entries (DLedger fidelity) the applied index
        // stays where it was while the commit index falls back.
        assert!(
            self.applied_index <= self.commit_index || self.safety_violations_total > 0,
            "invariant: applied {} beyond commit {}",
            self.applied_index,
            self.commit_index
        );
        assert!(
            self.commit_index >= before.commit_index,
            "invariant: commit went back from {} to {}",
            before.commit_index,
            self.commit_index
        );
        assert!(
            self.durability.durable_index() <= last_index,
            "invariant: durable index beyond last index"
        );
        assert!(
            self.durability.durable_hard_state().term <= term,
            "invariant: durable term ahead of the in-memory term"
        );
        self.check_role_state();
        if let Some(state) = &self.leader_state {
            for progress in state.progress.values() {
                progress.check(last_index);
            }
        }
        self.check_leader_kept_its_log(&before);
        self.check_chain_since(before.chain_verified);
        self.watermark = Watermark {
            term,
            voted_for: self.hard_state.voted_for,
            commit_index: self.commit_index,
            chain_verified: last_index,
            leader_tail: self.leader_tail(),
        };
    }

    fn check_role_state(&self) {
        match self.role {
            Role::Leader => {
                assert_eq!(
                    self.leader,
                    Some(self.id),
                    "invariant: a leader knows itself"
                );
                assert_eq!(
                    self.hard_state.voted_for,
                    Some(self.id),
                    "invariant: a leader voted for itself"
                );
                assert!(
                    self.leader_state.is_some(),
                    "invariant: a leader has leader state"
                );
            }
            Role::Candidate => {
                assert_eq!(
                    self.hard_state.voted_for,
                    Some(self.id),
                    "invariant: a candidate voted for itself"
                );
                assert!(
                    self.leader_state.is_none(),
                    "invariant: only a leader has leader state"
                );
            }
            Role::Follower | Role::PreCandidate => {
                assert!(
                    self.leader_state.is_none(),
                    "invariant: only a leader has leader state"
                );
            }
        }
    }

    fn leader_tail(&self) -> Option<(Term, LogIndex, u32)> {
        (self.role == Role::Leader).then(|| {
            let last = self.log.last_index();
            (self.hard_state.term, last, self.log.checksum_at(last))
        })
    }

    /// A leader that is still leader of the same term kept every entry it had (and its chain).
    fn check_leader_kept_its_log(&self, before: &Watermark) {
        let Some((term, last, checksum)) = before.leader_tail else {
            return;
        };
        if self.role != Role::Leader || self.hard_state.term != term {
            return;
        }
        assert!(
            self.log.last_index() >= last,
            "invariant: a leader never truncates its own log"
        );
        assert_eq!(
            self.log.checksum_at(last),
            checksum,
            "invariant: a leader never rewrites its own log"
        );
    }

    /// Entries after `verified` are consecutive and each checksum chains onto its predecessor.
    fn check_chain_since(&self, verified: LogIndex) {
        let mut previous_checksum = self.log.checksum_at(verified);
        let mut expected = verified.next();
        while let Some(entry) = self.log.get(expected) {
            assert_eq!(
                entry.index, expected,
                "invariant: log indexes are consecutive"
            );
            assert!(
                entry.verifies_after(previous_checksum),
                "invariant: checksum chain broken at {}",
                entry.index
            );
            previous_checksum = entry.checksum;
            expected = expected.next();
        }
    }
}
