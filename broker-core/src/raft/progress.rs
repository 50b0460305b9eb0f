//! What a leader knows about one follower (Raft Figure 2 `nextIndex`/`matchIndex`), how much it
//! may send it (Probe or Replicate, as raft-rs's `Progress`), plus the timers DLedger keeps per
//! peer: when entries were last pushed and when the peer last answered.
//!
//! Messages reorder, so responses arrive late and out of order. A rejection is acted on only
//! when it can still be news: one the follower sent while its log ended at or below what it has
//! since acknowledged is stale, and while probing, only a hint below the probe moves it. That a
//! gap rejection at or below the match index is stale rests on the follower: it keeps the
//! rejected request (applied once the gap fills) and, if it had to drop one for want of room,
//! rejects again once its log grows, with a hint beyond its acks (`replication.rs`).

use crate::types::LogIndex;

/// How many entries the leader may have in flight to one follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    /// Where the follower's log ends (or matches ours) is not known: one request at a time.
    Probe,
    /// Optimistic (a new leader) or the follower accepted our last probe: pipeline up to
    /// `inflight_entries_max`.
    Replicate,
}

/// The parts of a rejection the leader judges it by.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rejection {
    /// Where the follower asks the leader to retry from.
    pub(super) hint: LogIndex,
    /// The follower's last index when it rejected (durable or not).
    pub(super) follower_last: LogIndex,
}

impl Rejection {
    /// The request's prev index was beyond the follower's log (rather than a term conflict).
    fn is_gap(&self) -> bool {
        self.hint == self.follower_last.next()
    }
}

#[derive(Debug, Clone)]
pub(super) struct Progress {
    /// Highest index known durable on the follower and equal to ours. Never decreases, except
    /// when the follower's disk lost acknowledged entries (`forget_beyond`).
    pub(super) match_index: LogIndex,
    /// Next index to send (optimistic: entries in flight are already counted).
    pub(super) next_index: LogIndex,
    /// Entries after this one and before `next_index` are in flight (sent, not acknowledged).
    /// At least `match_index`; raised when the leader backs up (the entries it gave up on are
    /// no longer in flight). While probing, the probe starts right after it.
    window_start: LogIndex,
    pub(super) flow: Flow,
    /// Local time at which unacknowledged entries are pushed again (`None`: nothing in flight).
    pub(super) resend_at_ms: Option<u64>,
    /// Local time of the last response from this follower in the current term (check quorum).
    pub(super) last_heard_ms: u64,
    /// `watermark_from_compare` (DLedger COMPARE): until the follower first answers, heartbeats
    /// check its log at this index (the leader's last index at election) rather than at the
    /// match index, so the answer tells where their logs agree.
    pub(super) compare_at: Option<LogIndex>,
}

impl Progress {
    /// A new leader: nothing sent yet. Followers are usually up to date, so it pipelines right
    /// after its last entry; the first rejection of a lagging follower starts a probe.
    pub(super) fn new(last_index: LogIndex, now_ms: u64, compare: bool) -> Progress {
        Progress {
            match_index: LogIndex(0),
            next_index: last_index.next(),
            window_start: last_index,
            flow: Flow::Replicate,
            resend_at_ms: None,
            last_heard_ms: now_ms,
            compare_at: compare.then_some(last_index),
        }
    }

    /// Entries sent and not yet acknowledged.
    pub(super) fn inflight_entries(&self) -> u64 {
        self.next_index.0 - 1 - self.window_start.0
    }

    /// How many more entries may go out now: a probe waits for its answer; a pipeline fills
    /// its window.
    pub(super) fn room_entries(&self, batch_max: u64, inflight_max: u64) -> u64 {
        match self.flow {
            Flow::Probe if self.inflight_entries() > 0 => 0,
            Flow::Probe => batch_max,
            Flow::Replicate => inflight_max.saturating_sub(self.inflight_entries()),
        }
    }

    /// Records that entries up to `last_sent` went out.
    pub(super) fn sent(&mut self, last_sent: LogIndex, resend_at_ms: u64) {
        self.next_index = last_sent.next();
        self.resend_at_ms.get_or_insert(resend_at_ms);
    }

    /// A success response: the follower holds our log durably up to `match_index`. An older
    /// (reordered) success changes nothing; progress ends a probe.
    pub(super) fn acknowledged(&mut self, match_index: LogIndex, now_ms: u64, resend_ms: u64) {
        if match_index > self.match_index {
            self.match_index = match_index;
            self.resend_at_ms = Some(now_ms + resend_ms);
            self.flow = Flow::Replicate;
        }
        self.window_start = self.window_start.max(self.match_index);
        if self.next_index <= self.window_start {
            self.next_index = self.window_start.next();
        }
        if self.inflight_entries() == 0 {
            self.resend_at_ms = None;
        }
    }

    /// A rejection. Ignored when stale; otherwise probe from the hint, never below what is
    /// known to match nor above what was sent. Returns whether it was acted on.
    pub(super) fn rejected(&mut self, rejection: Rejection) -> bool {
        let Rejection { hint, .. } = rejection;
        if rejection.is_gap() && hint <= self.match_index {
            // The follower's log ended at or below what it has acknowledged since, and it kept
            // the request (a dropped one is rejected again, with a hint beyond its acks).
            return false;
        }
        let retry_from = hint.max(self.match_index.next()).min(self.next_index);
        let probing_from = self.window_start.next();
        let stale = match self.flow {
            // The probe in flight already asks from at or below the hint: this answers an
            // older request; the probe's own answer is on its way.
            Flow::Probe => retry_from >= probing_from,
            // The follower holds everything sent: it answers a request from before a back-up.
            Flow::Replicate => rejection.is_gap() && hint >= self.next_index,
        };
        if stale {
            return false;
        }
        self.probe_from(retry_from);
        true
    }

    /// `disk_marks`: the follower's disk lost what it acknowledged; its log ends at
    /// `follower_last`. Its acknowledgements beyond that no longer count: probe from there.
    pub(super) fn forget_beyond(&mut self, follower_last: LogIndex) {
        if follower_last >= self.match_index {
            return;
        }
        self.match_index = follower_last;
        self.window_start = follower_last;
        self.probe_from(follower_last.next());
    }

    /// Unacknowledged for too long: probe again from just after the match index.
    pub(super) fn resend(&mut self) {
        self.probe_from(self.match_index.next());
    }

    fn probe_from(&mut self, next_index: LogIndex) {
        self.flow = Flow::Probe;
        self.next_index = next_index;
        self.window_start = next_index.prev();
        self.resend_at_ms = None;
    }

    /// What must hold between the fields, given the leader's last index.
    pub(super) fn check(&self, last_index: LogIndex) {
        assert!(
            self.match_index <= self.window_start,
            "invariant: progress window starts below the match index"
        );
        assert!(
            self.window_start < self.next_index,
            "invariant: progress next index at or below its window start"
        );
        assert!(
            self.next_index <= last_index.next(),
            "invariant: progress next index beyond the leader's log"
        );
    }
}
