//! The Raft node: a pure state machine. `step` takes one input at a local time, changes state,
//! and queues effects; `take_effects` hands them to the caller in order.
//!
//! Durability rules (the order the caller must follow is the order of the effects):
//! - every `Persist` is followed, within the same step, by one `Sync` covering it;
//! - a granted `VoteResponse` and a successful `AppendResponse` are emitted only once a
//!   `Persisted` covering the vote (and the acknowledged entries) has come back;
//! - a leader counts its own log only up to its durable index when committing.
//!
//! The parts live in sibling files: `election.rs` (timeouts, pre-vote, votes),
//! `replication.rs` (append, acks, commit), `client.rs` (proposals and leadership transfer),
//! `reads.rs` (ReadIndex and log reads), `invariants.rs` (checks after every step).

use super::durability::Durability;
use super::invariants::Watermark;
use super::log::RaftLog;
use super::progress::Progress;
use super::reads::ReadQueue;
use super::{Config, Effect, Input, ProposeOutcome, ReadOutcome, Role, SafetyViolation, Status};
use crate::proto::{Message, VoteRejectReason};
use crate::store::{Entry, Forgotten, HardState, PersistOp, RecoveredState};
use crate::types::{LogIndex, NodeId, ProposalId, ReadId, Term};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RecoveryError {
    #[error("invalid config: {0}")]
    Config(#[from] super::ConfigError),
    #[error("node {id} is not among the members {members:?}")]
    NotAMember { id: NodeId, members: Vec<NodeId> },
    /// A recovered entry has a term above the recovered hard state's term. The node persists the
    /// hard state of a term before any entry of that term (in one ordered stream of writes, of
    /// which a crash drops only a suffix), so this disk did not come from this node: refusing is
    /// safer than guessing a term, which could let the node vote twice in it.
    #[error(
        "entry {index} has term {entry_term}, above the recovered hard state term {hard_state_term}"
    )]
    EntryTermAboveHardState {
        index: LogIndex,
        entry_term: Term,
        hard_state_term: Term,
    },
    /// The recovered hard state votes for a node that is not a member.
    #[error("recovered vote for {voted_for}, who is not among the members")]
    VoteForNonMember { voted_for: NodeId },
    /// `disk_marks`: what this disk lost was committed (`store::recover`).
    #[error("disk damage: {0}")]
    Disk(#[from] crate::store::DiskDamage),
}

/// Who waits for an entry this leader appended: a client proposal, or a read through the log.
#[derive(Debug, Clone, Copy)]
pub(super) enum Waiter {
    Proposal(ProposalId),
    LogRead(ReadId),
}

/// An entry appended by this leader for a client and not yet answered.
#[derive(Debug, Clone)]
pub(super) struct PendingProposal {
    pub(super) waiter: Waiter,
    pub(super) deadline_ms: u64,
}

/// The heartbeat round in progress (`Fidelity::step_down_by_heartbeat_rounds`): the peers that
/// answered since it was sent (whatever request they answered).
#[derive(Debug, Default)]
pub(super) struct HeartbeatRound {
    pub(super) responders: BTreeSet<NodeId>,
}

/// A leadership hand-over in progress (DLedger's preferred leader).
#[derive(Debug, Clone)]
pub(super) struct Transfer {
    pub(super) to: NodeId,
    pub(super) deadline_ms: u64,
    pub(super) timeout_now_sent: bool,
}

/// State only a leader has; dropped when it steps down.
#[derive(Debug)]
pub(super) struct LeaderState {
    pub(super) progress: BTreeMap<NodeId, Progress>,
    pub(super) heartbeat_at_ms: u64,
    pub(super) pending: BTreeMap<LogIndex, PendingProposal>,
    pub(super) transfer: Option<Transfer>,
    /// The first index of this leader's term (its last index at election + 1).
    pub(super) first_index_of_term: LogIndex,
    /// ReadIndex reads in progress.
    pub(super) reads: ReadQueue,
    /// DLedger step-down: the round in progress, and when a round last had its majority.
    pub(super) round: HeartbeatRound,
    pub(super) round_quorum_at_ms: u64,
}

/// An AppendRequest of the current leader that arrived before the entries it follows (messages
/// reorder); applied when they arrive.
#[derive(Debug, Clone)]
pub(super) struct EarlyAppend {
    pub(super) prev_term: Term,
    pub(super) entries: Vec<Entry>,
    pub(super) leader_commit: LogIndex,
}

/// What a follower owes the leader or a candidate of the current term; reset when the term moves.
#[derive(Debug, Default)]
pub(super) struct FollowerDuty {
    /// This node instance accepted a request of the current leader: a later request that does
    /// not reach our log yet was reordered behind one still on its way (or lost, which the
    /// leader's resend covers), so it is only kept. Before that it is kept and rejected (our
    /// log may lag: the rejection tells the leader where it ends).
    pub(super) leader_verified: bool,
    /// Early requests of the current leader by prev index; at most `inflight_entries_max`
    /// entries in all.
    pub(super) early_appends: BTreeMap<LogIndex, EarlyAppend>,
    /// The last index of the requests dropped (rejected, not kept) for want of room, until it
    /// is reported again once our log grows (0: none).
    pub(super) dropped_through: LogIndex,
    /// Highest index known equal to the current leader's log (verified by prev index/term).
    pub(super) verified_match: LogIndex,
    /// The last match index reported to the current leader.
    pub(super) acked_match: LogIndex,
    /// An append was accepted and its success response has not been sent in full.
    pub(super) ack_owed: bool,
    /// A vote was granted to this candidate; the response waits until the vote is durable.
    pub(super) vote_owed: Option<NodeId>,
    /// The highest ReadIndex round received from the current leader, echoed in every
    /// `AppendResponse` (`reads.rs`).
    pub(super) read_round: u64,
}

pub struct Node {
    pub(super) config: Config,
    pub(super) id: NodeId,
    /// Every replica, this one included, sorted.
    pub(super) members: Vec<NodeId>,
    pub(super) rng: ChaCha8Rng,
    pub(super) role: Role,
    pub(super) hard_state: HardState,
    pub(super) leader: Option<NodeId>,
    pub(super) log: RaftLog,
    pub(super) durability: Durability,
    pub(super) commit_index: LogIndex,
    pub(super) applied_index: LogIndex,
    pub(super) effects: Vec<Effect>,
    /// Local time of the current step (never goes backwards).
    pub(super) now_ms: u64,
    /// False until the first step: timers are armed relative to the first `now_ms` seen.
    pub(super) started: bool,
    /// Local time we last heard from a leader of the current term (for stickiness).
    pub(super) leader_contact_ms: u64,
    /// Follower: start a pre-vote/election at this time. (Pre)candidate: retry at this time.
    pub(super) election_deadline_ms: u64,
    /// Responses in the current (pre-)election: who granted, who refused.
    pub(super) votes: BTreeMap<NodeId, bool>,
    /// `dledger_vote_checks`: why each voter refused in the current election (whatever term
    /// it answered with), for DLedger's decision to vote again in the same term.
    pub(super) vote_rejections: BTreeMap<NodeId, VoteRejectReason>,
    /// The current election was asked for by the leader (`TimeoutNow`).
    pub(super) transfer_election: bool,
    pub(super) duty: FollowerDuty,
    pub(super) leader_state: Option<LeaderState>,
    pub(super) watermark: Watermark,
    /// Broken Raft safety properties not yet taken by the caller (DLedger fidelity only).
    pub(super) safety_violations: Vec<SafetyViolation>,
    /// Broken Raft safety properties recorded by this node instance, taken or not.
    pub(super) safety_violations_total: u64,
    /// `disk_marks`: this node forgot what it acknowledged or voted; it neither votes nor
    /// campaigns until it has caught up (`caught_up_after_disk_loss`).
    pub(super) forgotten: Option<Forgotten>,
    /// `disk_marks`: recovery cut the log's last entry as a torn write (`store::recover`). A
    /// flipped bit in a synced, acknowledged last entry looks the same, so until our log is
    /// verified past the cut again our responses say `forgot` and the leader stops counting
    /// acknowledgements beyond our log (else it takes our rejections as stale and never sends
    /// what we lost: swarm_disk seeds 229, 288, not settled). Voting is not held back.
    pub(super) unconfirmed_cut: Option<LogIndex>,
}

impl Node {
    /// Builds a node from what survived on its disk. `members` lists every replica, itself
    /// included. `rng_seed` seeds the ChaCha stream that draws election jitter.
    ///
    /// A torn or invalid log tail (an entry out of sequence or whose chained checksum does not
    /// verify, and everything after it) is dropped; the node then asks for
    /// `Persist(TruncateFrom)` + `Sync` (see `take_effects`) so the disk matches. The hard state
    /// is kept; commit and applied indexes restart at 0.
    pub fn new(
        config: Config,
        id: NodeId,
        mut members: Vec<NodeId>,
        recovered: RecoveredState,
        rng_seed: u64,
    ) -> Result<Node, RecoveryError> {
        config.validate()?;
        members.sort();
        members.dedup();
        if !members.contains(&id) {
            return Err(RecoveryError::NotAMember { id, members });
        }
        let recovery = crate::store::recover(
            recovered,
            config.disk_marks,
            config.unsafe_vote_after_disk_loss,
        )?;
        let crate::store::Recovery {
            hard_state,
            entries,
            cut_at,
            forgotten,
            hard_state_rebuilt,
        } = recovery;
        if let Some(voted_for) = hard_state.voted_for {
            if !members.contains(&voted_for) {
                return Err(RecoveryError::VoteForNonMember { voted_for });
            }
        }
        if let Some(entry) = entries.iter().find(|entry| entry.term > hard_state.term) {
            return Err(RecoveryError::EntryTermAboveHardState {
                index: entry.index,
                entry_term: entry.term,
                hard_state_term: hard_state.term,
            });
        }
        let unconfirmed_cut = cut_at.filter(|_| config.disk_marks);
        let log = RaftLog::from_entries(entries);
        let durability = Durability::recovered(log.last_index(), hard_state.clone());
        let watermark = Watermark::initial(&hard_state, log.last_index());
        let mut node = Node {
            config,
            id,
            members,
            rng: ChaCha8Rng::seed_from_u64(rng_seed),
            role: Role::Follower,
            hard_state,
            leader: None,
            log,
            durability,
            commit_index: LogIndex(0),
            applied_index: LogIndex(0),
            effects: Vec::new(),
            now_ms: 0,
            started: false,
            leader_contact_ms: 0,
            election_deadline_ms: 0,
            votes: BTreeMap::new(),
            vote_rejections: BTreeMap::new(),
            transfer_election: false,
            duty: FollowerDuty::default(),
            leader_state: None,
            watermark,
            safety_violations: Vec::new(),
            safety_violations_total: 0,
            forgotten,
            unconfirmed_cut,
        };
        node.reset_election_timer();
        if let Some(from) = cut_at {
            node.persist(PersistOp::TruncateFrom { from });
        }
        if hard_state_rebuilt {
            node.persist(PersistOp::HardState(node.hard_state.clone()));
        }
        node.flush_sync();
        Ok(node)
    }

    /// Feeds one input at local time `now_ms` (which must not go backwards).
    pub fn step(&mut self, now_ms: u64, input: Input) {
        assert!(
            now_ms >= self.now_ms,
            "invariant: local time goes backwards ({now_ms} < {})",
            self.now_ms
        );
        self.now_ms = now_ms;
        if !self.started {
            self.started = true;
            self.leader_contact_ms = now_ms;
            self.reset_election_timer();
        }
        match input {
            Input::Tick => self.tick(),
            Input::Message { from, msg } => self.receive(from, msg),
            Input::ClientPropose { proposal, data } => self.propose(proposal, data),
            Input::Persisted { sync_id } => self.durability.persisted(sync_id),
            Input::TransferLeadership { to } => self.transfer_leadership(to),
            Input::ReadIndex { read } => self.read_index(read),
            Input::LogRead { read } => self.log_read(read),
        }
        self.finish_step();
        self.check_invariants();
    }

    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// The Raft safety properties this node broke since the last call, in order. Always empty
    /// with `Fidelity::RAFT` (the node asserts them instead).
    pub fn take_safety_violations(&mut self) -> Vec<SafetyViolation> {
        std::mem::take(&mut self.safety_violations)
    }

    /// The local time at which the node next needs a `Tick`.
    pub fn next_deadline_ms(&self) -> u64 {
        match &self.leader_state {
            Some(state) => self.leader_deadline_ms(state),
            None => self.election_deadline_ms,
        }
    }

    pub fn status(&self) -> Status {
        Status {
            id: self.id,
            role: self.role,
            term: self.hard_state.term,
            voted_for: self.hard_state.voted_for,
            leader: self.leader,
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
            durable_index: self.durability.durable_index(),
            commit_index: self.commit_index,
            applied_index: self.applied_index,
        }
    }

    /// The whole in-memory log (durable or not), for observers and checks.
    pub fn log(&self) -> &[Entry] {
        self.log.entries()
    }

    /// The durable hard state (what a crash right now would keep), for observers and checks.
    pub fn durable_hard_state(&self) -> &HardState {
        self.durability.durable_hard_state()
    }

    fn tick(&mut self) {
        if self.role == Role::Leader {
            self.leader_tick();
        } else if self.now_ms >= self.election_deadline_ms {
            self.election_timeout();
        }
    }

    /// Routes a message; first applies the term rule (Raft §5.1): a higher term makes us a
    /// follower of that term, except for messages that by design carry a term we must not adopt
    /// (pre-votes, granted pre-vote responses, and vote requests refused for stickiness).
    fn receive(&mut self, from: NodeId, msg: Message) {
        if from == self.id || !self.members.contains(&from) {
            return;
        }
        if msg.term() > self.hard_state.term && self.adopts_term_of(&msg) {
            let candidate = self.role == Role::Candidate;
            self.become_follower(msg.term(), None);
            if candidate
                && self.config.fidelity.dledger_vote_checks
                && matches!(msg, Message::VoteResponse { .. })
            {
                // DLedger `maintainAsCandidate`: a newer term in the group is adopted
                // (knownMaxTermInGroup) and the node votes again after a vote interval.
                self.election_deadline_ms = self.now_ms + self.vote_interval_ms();
            }
        }
        match msg {
            Message::VoteRequest {
                term,
                candidate,
                last_log_index,
                last_log_term,
                pre_vote,
                leadership_transfer,
            } => {
                if candidate == from {
                    let request = super::election::VoteRequestView {
                        term,
                        last_log_index,
                        last_log_term,
                        pre_vote,
                        leadership_transfer,
                    };
                    self.on_vote_request(from, request);
                }
            }
            Message::VoteResponse {
                term,
                pre_vote,
                granted,
                reject_reason,
            } => self.on_vote_response(from, term, pre_vote, granted, reject_reason),
            Message::AppendRequest {
                term,
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
                read_round,
                ..
            } => self.on_append_request(
                from,
                term,
                (prev_log_index, prev_log_term),
                entries,
                leader_commit,
                read_round,
            ),
            Message::AppendResponse {
                term,
                success,
                match_or_hint,
                last_log_index,
                read_round,
                forgot,
            } => {
                if forgot {
                    self.forget_acks_beyond(from, term, last_log_index);
                }
                self.on_append_response(
                    from,
                    term,
                    success,
                    match_or_hint,
                    last_log_index,
                    read_round,
                )
            }
            Message::TimeoutNow { term } => self.on_timeout_now(from, term),
        }
    }

    fn adopts_term_of(&self, msg: &Message) -> bool {
        match msg {
            Message::VoteRequest { pre_vote: true, .. } => false,
            // DLedger judges the log before the term, and adopts the term only then.
            Message::VoteRequest { .. } if self.config.fidelity.dledger_vote_checks => false,
            Message::VoteRequest {
                leadership_transfer,
                ..
            } => *leadership_transfer || !self.hears_live_leader(),
            Message::VoteResponse {
                pre_vote: true,
                granted: true,
                ..
            } => false,
            _ => true,
        }
    }

    /// Leader stickiness: we are the leader, or heard from one within the election timeout.
    pub(super) fn hears_live_leader(&self) -> bool {
        match self.role {
            Role::Leader => true,
            _ => {
                self.leader.is_some()
                    && self.now_ms < self.leader_contact_ms + self.config.election_timeout_ms_base()
            }
        }
    }

    /// Everything that follows from the input: win an election whose self-vote became durable,
    /// advance commit and reads, sync what was written, push entries, send owed responses,
    /// apply, answer reads.
    fn finish_step(&mut self) {
        self.try_win_election();
        if self.role == Role::Leader {
            self.leader_advance_commit();
            self.advance_reads();
        }
        self.mark_disk();
        self.flush_sync();
        if self.role == Role::Leader {
            self.replicate();
            self.maybe_send_timeout_now();
        } else {
            self.send_owed_vote();
            self.send_owed_ack();
        }
        self.apply_committed();
        self.answer_applied_reads();
    }

    /// `disk_marks`: when writes are already going to disk in this step, the hard state
    /// rides along after them (no fsync of its own) with the commit index known durable here
    /// (commit and durable index both: a torn unsynced tail is never below it) and the log's
    /// last index, so every synced entry is at or below `log_end_mark`.
    fn mark_disk(&mut self) {
        if !self.config.disk_marks || !self.durability.is_dirty() {
            return;
        }
        let commit_mark = self
            .commit_index
            .min(self.durability.durable_index())
            .max(self.hard_state.commit_mark);
        let forgotten_through = self
            .forgotten
            .map_or(LogIndex(0), |forgotten| forgotten.through);
        // While catching up, the mark keeps what the lost disk held: entries cut again before
        // the node caught up are still entries it may have acknowledged.
        let log_end_mark = self.log.last_index().max(forgotten_through);
        let marks = (
            self.hard_state.commit_mark,
            self.hard_state.log_end_mark,
            self.hard_state.forgotten_through,
        );
        if (commit_mark, log_end_mark, forgotten_through) == marks {
            return;
        }
        self.hard_state.commit_mark = commit_mark;
        self.hard_state.log_end_mark = log_end_mark;
        self.hard_state.forgotten_through = forgotten_through;
        self.persist(PersistOp::HardState(self.hard_state.clone()));
    }

    // ---- small helpers shared by the sibling files ----

    pub(super) fn majority(&self) -> usize {
        self.members.len() / 2 + 1
    }

    pub(super) fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        let id = self.id;
        self.members
            .iter()
            .copied()
            .filter(move |member| *member != id)
    }

    pub(super) fn send(&mut self, to: NodeId, msg: Message) {
        self.effects.push(Effect::Send { to, msg });
    }

    pub(super) fn reply(&mut self, proposal: ProposalId, outcome: ProposeOutcome) {
        self.effects.push(Effect::Reply { proposal, outcome });
    }

    pub(super) fn reply_read(&mut self, read: ReadId, outcome: ReadOutcome) {
        self.effects.push(Effect::ReadReply { read, outcome });
    }

    /// Records a broken Raft safety property (DLedger fidelity; Raft fidelity asserts).
    pub(super) fn record_safety_violation(&mut self, violation: SafetyViolation) {
        assert!(
            self.config.fidelity.departs_from_raft(),
            "invariant: Raft fidelity asserts safety, never records a violation: {violation:?}"
        );
        self.safety_violations.push(violation);
        self.safety_violations_total += 1;
    }

    pub(super) fn persist(&mut self, op: PersistOp) {
        self.effects.push(Effect::Persist(op));
        self.durability.mark_dirty();
    }

    pub(super) fn flush_sync(&mut self) {
        if let Some(sync_id) = self
            .durability
            .take_sync(self.log.last_index(), &self.hard_state)
        {
            self.effects.push(Effect::Sync { sync_id });
        }
    }

    /// Changes the hard state and asks to persist it. A hard-state write still waiting right
    /// before this one (same unsynced batch, nothing in between) is replaced rather than repeated.
    pub(super) fn set_hard_state(&mut self, term: Term, voted_for: Option<NodeId>) {
        self.hard_state = HardState {
            term,
            voted_for,
            commit_mark: self.hard_state.commit_mark,
            log_end_mark: self.hard_state.log_end_mark,
            forgotten_through: self.hard_state.forgotten_through,
        };
        let op = PersistOp::HardState(self.hard_state.clone());
        if let Some(Effect::Persist(PersistOp::HardState(_))) = self.effects.last() {
            self.effects.pop();
        }
        self.persist(op);
    }

    pub(super) fn set_role(&mut self, to: Role) {
        assert!(
            self.role.may_become(to),
            "invariant: role transition {:?} -> {:?} is not allowed",
            self.role,
            to
        );
        self.role = to;
    }

    /// A fresh random wait in `[vote_interval_ms_min, vote_interval_ms_max]`.
    pub(super) fn vote_interval_ms(&mut self) -> u64 {
        self.rng
            .gen_range(self.config.vote_interval_ms_min..=self.config.vote_interval_ms_max)
    }

    /// Follower timer: election timeout base plus a fresh jitter, from now.
    pub(super) fn reset_election_timer(&mut self) {
        let jitter = self.vote_interval_ms();
        self.election_deadline_ms = self.now_ms + self.config.election_timeout_ms_base() + jitter;
    }

    /// Becomes a follower of `term` (adopting it if higher) with `leader` if known.
    pub(super) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        assert!(
            term >= self.hard_state.term,
            "invariant: never follow an older term"
        );
        if term > self.hard_state.term {
            self.set_hard_state(term, None);
            self.duty = FollowerDuty::default();
        }
        let was = self.role;
        if was == Role::Leader {
            self.step_down();
        }
        self.set_role(Role::Follower);
        self.votes.clear();
        self.vote_rejections.clear();
        self.transfer_election = false;
        self.leader = leader;
        if was != Role::Follower {
            self.reset_election_timer();
        }
    }

    /// Entries now committed and not yet applied go out in one `Apply`, then proposal replies.
    fn apply_committed(&mut self) {
        if self.commit_index <= self.applied_index {
            return;
        }
        let entries = self.log.slice(self.applied_index.next(), self.commit_index);
        self.applied_index = self.commit_index;
        self.effects.push(Effect::Apply { entries });
        self.reply_committed();
    }
}
