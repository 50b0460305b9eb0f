//! What a leader knows about one follower (Raft Figure 2 `nextIndex`/`matchIndex`), plus the
//! timers DLedger keeps per peer: when entries were last pushed and when the peer last answered.

use crate::types::LogIndex;

#[derive(Debug, Clone)]
pub(super) struct Progress {
    /// Highest index known durable on the follower and equal to ours.
    pub(super) match_index: LogIndex,
    /// Next index to send (optimistic: entries in flight are already counted).
    pub(super) next_index: LogIndex,
    /// Entries after this one and before `next_index` are in flight (sent, not acknowledged).
    /// At least `match_index`; raised when the leader backs up (the entries it gave up on are
    /// no longer in flight).
    window_start: LogIndex,
    /// Local time at which unacknowledged entries are pushed again (`None`: nothing in flight).
    pub(super) resend_at_ms: Option<u64>,
    /// Local time of the last response from this follower in the current term (check quorum).
    pub(super) last_heard_ms: u64,
}

impl Progress {
    /// A new leader: nothing sent yet; start probing right after our last entry.
    pub(super) fn new(last_index: LogIndex, now_ms: u64) -> Progress {
        Progress {
            match_index: LogIndex(0),
            next_index: last_index.next(),
            window_start: last_index,
            resend_at_ms: None,
            last_heard_ms: now_ms,
        }
    }

    /// Entries sent and not yet acknowledged.
    pub(super) fn inflight_entries(&self) -> u64 {
        self.next_index.0 - 1 - self.window_start.0
    }

    /// Records that entries up to `last_sent` went out.
    pub(super) fn sent(&mut self, last_sent: LogIndex, resend_at_ms: u64) {
        self.next_index = last_sent.next();
        self.resend_at_ms.get_or_insert(resend_at_ms);
    }

    /// A success response: the follower holds our log durably up to `match_index`.
    pub(super) fn acknowledged(&mut self, match_index: LogIndex, now_ms: u64, resend_ms: u64) {
        if match_index > self.match_index {
            self.match_index = match_index;
            self.resend_at_ms = Some(now_ms + resend_ms);
        }
        self.window_start = self.window_start.max(self.match_index);
        if self.next_index <= self.window_start {
            self.next_index = self.window_start.next();
        }
        if self.inflight_entries() == 0 {
            self.resend_at_ms = None;
        }
    }

    /// A rejection: retry from `hint`, never below what is known to match nor above what was sent.
    pub(super) fn rejected(&mut self, hint: LogIndex) {
        let floor = self.match_index.next();
        self.back_up(hint.min(self.next_index).max(floor));
    }

    /// Unacknowledged for too long: send again from just after the match index.
    pub(super) fn resend(&mut self) {
        self.back_up(self.match_index.next());
    }

    fn back_up(&mut self, next_index: LogIndex) {
        self.next_index = next_index;
        self.window_start = next_index.prev();
        self.resend_at_ms = None;
    }
}
