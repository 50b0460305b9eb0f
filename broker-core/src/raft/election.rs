//! Elections: follower timeout, pre-vote (Raft §9.6), real votes (§5.2), leader stickiness,
//! and the election a leader asks for with `TimeoutNow` (leadership transfer).
//!
//! DLedger fidelity: `dledger_vote_checks` judges votes in `DLedgerLeaderElector.handleVote`'s
//! order (`judge_dledger_vote`), and `skip_noop_on_election` makes a new leader announce itself
//! with a heartbeat round instead of a no-op entry.

use super::node::{LeaderState, Node};
use super::progress::Progress;
use super::Role;
use crate::proto::{Message, VoteRejectReason};
use crate::store::EntryKind;
use crate::store::PersistOp;
use crate::types::{LogIndex, NodeId, Term};
use std::collections::BTreeMap;

/// The fields of a `VoteRequest` the voter needs (the candidate is the sender).
#[derive(Debug, Clone, Copy)]
pub(super) struct VoteRequestView {
    pub(super) term: Term,
    pub(super) last_log_index: LogIndex,
    pub(super) last_log_term: Term,
    pub(super) pre_vote: bool,
    pub(super) leadership_transfer: bool,
}

impl Node {
    /// The election timer fired: a follower or pre-candidate (re)starts a pre-vote (or a vote
    /// when pre-vote is off); a candidate whose election failed tries again in a new term.
    pub(super) fn election_timeout(&mut self) {
        if self.forgotten.is_some() {
            // Forgot what it acknowledged or voted: no campaign before catching up.
            self.reset_election_timer();
            return;
        }
        match self.role {
            Role::Candidate if self.config.fidelity.dledger_vote_checks => {
                self.dledger_retry_election();
            }
            Role::Follower | Role::PreCandidate if self.config.pre_vote => self.start_pre_vote(),
            Role::Follower | Role::PreCandidate | Role::Candidate => self.start_election(false),
            Role::Leader => unreachable!("invariant: a leader has no election timer"),
        }
    }

    fn start_pre_vote(&mut self) {
        self.set_role(Role::PreCandidate);
        self.leader = None;
        self.transfer_election = false;
        self.votes = BTreeMap::from([(self.id, true)]);
        self.election_deadline_ms = self.now_ms + self.vote_interval_ms();
        self.request_votes(true);
    }

    /// Term + 1, vote for self, persist; requests go out at once, but the node counts its own
    /// vote only once it is durable (`try_win_election`), so a crash cannot make it vote twice.
    pub(super) fn start_election(&mut self, leadership_transfer: bool) {
        self.set_role(Role::Candidate);
        let term = Term(self.hard_state.term.0 + 1);
        self.set_hard_state(term, Some(self.id));
        self.duty = Default::default();
        self.leader = None;
        self.transfer_election = leadership_transfer;
        self.votes = BTreeMap::new();
        self.vote_rejections = BTreeMap::new();
        self.election_deadline_ms = self.now_ms + self.vote_interval_ms();
        self.request_votes(false);
    }

    /// `dledger_vote_checks`: a candidate whose election did not pass decides as DLedger's
    /// `maintainAsCandidate` parses the responses (its own vote counted): a voter that knows a
    /// leader (`WAIT_TO_REVOTE`, a vote interval + leak × heartbeat later), too few answers
    /// (`WAIT_TO_REVOTE`), or too many voters with a newer log (`WAIT_TO_REVOTE`, a vote
    /// interval + `vote_interval_ms_max` later) make it ask again in the same term; otherwise
    /// it moves to the next term (`WAIT_TO_VOTE_NEXT`). So a candidate that cannot win does not
    /// inflate terms (DLedger's stand-in for pre-vote).
    fn dledger_retry_election(&mut self) {
        let granted = self.votes.values().filter(|granted| **granted).count();
        let answered = 1 + granted + self.vote_rejections.len();
        let newer_log = self
            .vote_rejections
            .values()
            .filter(|reason| {
                matches!(
                    reason,
                    VoteRejectReason::ExpiredLedgerTerm | VoteRejectReason::SmallLedgerEndIndex
                )
            })
            .count();
        let has_leader = self
            .vote_rejections
            .values()
            .any(|reason| *reason == VoteRejectReason::AlreadyHasLeader);
        let majority = self.majority();
        let wait_extra_ms = if has_leader {
            self.config.election_timeout_ms_base()
        } else if answered < majority {
            0
        } else if answered - newer_log < majority {
            self.config.vote_interval_ms_max
        } else {
            self.start_election(false);
            return;
        };
        self.votes = BTreeMap::new();
        self.vote_rejections = BTreeMap::new();
        self.election_deadline_ms = self.now_ms + self.vote_interval_ms() + wait_extra_ms;
        self.request_votes(false);
    }

    fn request_votes(&mut self, pre_vote: bool) {
        let msg = self.vote_request(pre_vote);
        let peers: Vec<NodeId> = self.peers().collect();
        for peer in peers {
            self.send(peer, msg.clone());
        }
    }

    fn vote_request(&self, pre_vote: bool) -> Message {
        let term = if pre_vote {
            Term(self.hard_state.term.0 + 1)
        } else {
            self.hard_state.term
        };
        Message::VoteRequest {
            term,
            candidate: self.id,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
            pre_vote,
            leadership_transfer: self.transfer_election,
        }
    }

    pub(super) fn on_vote_request(&mut self, from: NodeId, request: VoteRequestView) {
        let outcome = if self.forgotten.is_some() {
            Err(VoteRejectReason::CatchingUp)
        } else if request.pre_vote {
            self.judge_pre_vote(request)
        } else if self.config.fidelity.dledger_vote_checks {
            self.judge_dledger_vote(from, request)
        } else {
            self.judge_vote(from, request)
        };
        match outcome {
            Err(reason) => {
                let msg = Message::VoteResponse {
                    term: self.hard_state.term,
                    pre_vote: request.pre_vote,
                    granted: false,
                    reject_reason: Some(reason),
                };
                self.send(from, msg);
            }
            Ok(()) if request.pre_vote => {
                let msg = Message::VoteResponse {
                    term: request.term,
                    pre_vote: true,
                    granted: true,
                    reject_reason: None,
                };
                self.send(from, msg);
            }
            Ok(()) => self.grant_vote(from),
        }
    }

    /// A pre-vote changes nothing here: grant if the candidate's next term is ahead of ours,
    /// we hear no live leader (unless the leader asked for this election), and its log is at
    /// least as up to date.
    fn judge_pre_vote(&self, request: VoteRequestView) -> Result<(), VoteRejectReason> {
        if request.term <= self.hard_state.term {
            return Err(VoteRejectReason::ExpiredVoteTerm);
        }
        if !request.leadership_transfer && self.hears_live_leader() {
            return Err(VoteRejectReason::AlreadyHasLeader);
        }
        self.judge_log(request)
    }

    /// A real vote, after the term rule ran: a request still ahead of our term was refused for
    /// stickiness; one behind is expired; otherwise one vote per term, for an up-to-date log.
    fn judge_vote(&self, from: NodeId, request: VoteRequestView) -> Result<(), VoteRejectReason> {
        if request.term > self.hard_state.term {
            return Err(VoteRejectReason::AlreadyHasLeader);
        }
        if request.term < self.hard_state.term {
            return Err(VoteRejectReason::ExpiredVoteTerm);
        }
        if self.hard_state.voted_for.is_some_and(|voted| voted != from) {
            return Err(VoteRejectReason::AlreadyVoted);
        }
        self.judge_log(request)
    }

    /// `dledger_vote_checks`: `DLedgerLeaderElector.handleVote`, check by check. The log comes
    /// first, so a candidate with an older log is refused without moving our term; a candidate
    /// of a newer term is refused too, once, after we adopt its term (stepping down if leader):
    /// it asks again in that term. No stickiness: a live leader does not protect us from that.
    /// DLedger's `REJECT_UNKNOWN_LEADER`/`REJECT_UNEXPECTED_LEADER` (we drop messages from
    /// non-members) and `REJECT_TAKING_LEADERSHIP` (no preferred-leader config here) are left out.
    fn judge_dledger_vote(
        &mut self,
        from: NodeId,
        request: VoteRequestView,
    ) -> Result<(), VoteRejectReason> {
        let last_term = self.log.last_term();
        if request.last_log_term < last_term {
            return Err(VoteRejectReason::ExpiredLedgerTerm);
        }
        if request.last_log_term == last_term && request.last_log_index < self.log.last_index() {
            return Err(VoteRejectReason::SmallLedgerEndIndex);
        }
        let term = self.hard_state.term;
        if request.term < term {
            return Err(VoteRejectReason::ExpiredVoteTerm);
        }
        if request.term > term {
            self.become_follower(request.term, None);
            return Err(VoteRejectReason::TermNotReady);
        }
        if self.hard_state.voted_for.is_some_and(|voted| voted != from) {
            return Err(if self.leader.is_some() {
                VoteRejectReason::AlreadyHasLeader
            } else {
                VoteRejectReason::AlreadyVoted
            });
        }
        if request.term < last_term {
            return Err(VoteRejectReason::TermSmallThanLedger);
        }
        Ok(())
    }

    fn judge_log(&self, request: VoteRequestView) -> Result<(), VoteRejectReason> {
        if self
            .log
            .candidate_is_up_to_date(request.last_log_term, request.last_log_index)
        {
            Ok(())
        } else if request.last_log_term < self.log.last_term() {
            Err(VoteRejectReason::ExpiredLedgerTerm)
        } else {
            Err(VoteRejectReason::SmallLedgerEndIndex)
        }
    }

    /// Records the vote (persisted); the response waits in `vote_owed` until durable.
    fn grant_vote(&mut self, candidate: NodeId) {
        if self.hard_state.voted_for.is_none() {
            self.set_hard_state(self.hard_state.term, Some(candidate));
        }
        if self.role == Role::PreCandidate {
            self.set_role(Role::Follower);
            self.votes.clear();
        }
        self.duty.vote_owed = Some(candidate);
        self.reset_election_timer();
    }

    /// Sends the granted vote once the durable hard state holds it (Raft §5.1 / Figure 2:
    /// "persist before responding").
    pub(super) fn send_owed_vote(&mut self) {
        let Some(candidate) = self.duty.vote_owed else {
            return;
        };
        let durable = self.durability.durable_hard_state();
        if durable.term != self.hard_state.term || durable.voted_for != Some(candidate) {
            return;
        }
        self.duty.vote_owed = None;
        let msg = Message::VoteResponse {
            term: self.hard_state.term,
            pre_vote: false,
            granted: true,
            reject_reason: None,
        };
        self.send(candidate, msg);
    }

    pub(super) fn on_vote_response(
        &mut self,
        from: NodeId,
        term: Term,
        pre_vote: bool,
        granted: bool,
        reject_reason: Option<VoteRejectReason>,
    ) {
        let term_not_ready = self.config.fidelity.dledger_vote_checks
            && self.role == Role::Candidate
            && !pre_vote
            && term == self.hard_state.term
            && reject_reason == Some(VoteRejectReason::TermNotReady);
        if term_not_ready {
            // DLedger `REVOTE_IMMEDIATELY`: the voter is in our term now; ask again.
            let msg = self.vote_request(false);
            self.send(from, msg);
            return;
        }
        let dledger_candidate =
            self.config.fidelity.dledger_vote_checks && self.role == Role::Candidate && !pre_vote;
        if let (true, false, Some(reason)) = (dledger_candidate, granted, reject_reason) {
            // DLedger counts refusals whatever term the voter answers with.
            self.vote_rejections.insert(from, reason);
            return;
        }
        let current = match self.role {
            Role::PreCandidate => {
                pre_vote && (term == Term(self.hard_state.term.0 + 1) || !granted)
            }
            Role::Candidate => !pre_vote && term == self.hard_state.term,
            Role::Follower | Role::Leader => false,
        };
        if current {
            self.votes.insert(from, granted);
        }
    }

    /// Counts votes. A pre-candidate with a majority starts the real election; a candidate
    /// wins with a majority that includes its own vote only once that vote is durable.
    pub(super) fn try_win_election(&mut self) {
        let granted = self.votes.values().filter(|granted| **granted).count();
        match self.role {
            Role::PreCandidate if granted >= self.majority() => self.start_election(false),
            Role::Candidate if self.own_vote_durable() && granted + 1 >= self.majority() => {
                self.become_leader();
            }
            _ => {}
        }
    }

    fn own_vote_durable(&self) -> bool {
        let durable = self.durability.durable_hard_state();
        durable.term == self.hard_state.term && durable.voted_for == Some(self.id)
    }

    fn become_leader(&mut self) {
        self.set_role(Role::Leader);
        self.leader = Some(self.id);
        self.votes.clear();
        self.transfer_election = false;
        let last_index = self.log.last_index();
        let now_ms = self.now_ms;
        let compare = self.config.fidelity.watermark_from_compare;
        let progress = self
            .peers()
            .map(|peer| (peer, Progress::new(last_index, now_ms, compare)))
            .collect();
        self.leader_state = Some(LeaderState {
            progress,
            heartbeat_at_ms: now_ms + self.config.heartbeat_interval_ms,
            pending: BTreeMap::new(),
            transfer: None,
            first_index_of_term: last_index.next(),
            reads: Default::default(),
            round: Default::default(),
            round_quorum_at_ms: now_ms,
        });
        if self.config.fidelity.skip_noop_on_election {
            self.send_heartbeats();
            return;
        }
        let noop = self
            .log
            .append_new(self.hard_state.term, EntryKind::Noop, Vec::new());
        self.persist(PersistOp::Append {
            entries: vec![noop],
        });
    }

    /// The leader asks us to take over: elect now, without pre-vote, bypassing stickiness.
    pub(super) fn on_timeout_now(&mut self, from: NodeId, term: Term) {
        let from_our_leader = term == self.hard_state.term && self.leader == Some(from);
        if from_our_leader
            && self.forgotten.is_none()
            && matches!(self.role, Role::Follower | Role::PreCandidate)
        {
            self.start_election(true);
        }
    }
}
