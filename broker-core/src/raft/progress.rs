//! What a leader knows about one follower (Raft Figure 2 `nextIndex`/`matchIndex`), plus the
//! timers DLedger keeps per peer: when entries were last pushed and when the peer last answered.

use crate::types::LogIndex;

#[derive(Debug, Clone)]
pub(super) struct Progress {
    /// Highest index known durable on the follower and equal to ours.
    pub(super) match_index: LogIndex,
    /// Next index to send (optimistic: entries in flight are already counted).
    pub(super) next_index: LogIndex,
    /// Local time at which unacknowledged entries are pushed again (`None`: nothing in flight).
    pub(super) resend_at_ms: Option<u64>,
    /// Local time of the last response from this follower in the current term (check quorum).
    pub(super) last_heard_ms: u64,
}

impl Progress {
    pub(super) fn new(last_index: LogIndex, now_ms: u64) -> Progress {
        Progress {
            match_index: LogIndex(0),
            next_index: last_index.next(),
            resend_at_ms: None,
            last_heard_ms: now_ms,
        }
    }

    /// Entries sent and not yet acknowledged.
    pub(super) fn inflight_entries(&self) -> u64 {
        self.next_index.0 - 1 - self.match_index.0
    }

    /// A success response: the follower holds our log durably up to `match_index`.
    pub(super) fn acknowledged(&mut self, match_index: LogIndex, now_ms: u64, resend_ms: u64) {
        if match_index > self.match_index {
            self.match_index = match_index;
            self.resend_at_ms = Some(now_ms + resend_ms);
        }
        if self.next_index <= self.match_index {
            self.next_index = self.match_index.next();
        }
        if self.inflight_entries() == 0 {
            self.resend_at_ms = None;
        }
    }

    /// A rejection: retry from `hint`, never below what is known to match.
    pub(super) fn rejected(&mut self, hint: LogIndex, last_index: LogIndex) {
        let floor = self.match_index.next();
        let ceiling = last_index.next();
        self.next_index = hint.max(floor).min(ceiling).min(self.next_index.max(floor));
        if self.inflight_entries() == 0 {
            self.resend_at_ms = None;
        }
    }
}
