//! DLedger fidelity: one test (at least) per `Fidelity` switch, showing the DLedger behaviour it
//! mirrors next to what the Raft paper does.

use super::*;
use crate::proto::VoteRejectReason;
use crate::raft::{ConfigError, Fidelity, SafetyViolation};

/// Default timing, pre-vote off, and exactly the switches given.
fn with_switches(fidelity: Fidelity) -> Config {
    Config {
        pre_vote: false,
        fidelity,
        ..Config::default()
    }
}

fn only_commit_rule() -> Config {
    with_switches(Fidelity {
        commit_by_quorum_watermark: true,
        ..Fidelity::RAFT
    })
}

fn heartbeat(term: u64, prev: (u64, u64), commit: u64) -> Message {
    Message::AppendRequest {
        term: Term(term),
        leader: N1,
        prev_log_index: LogIndex(prev.0),
        prev_log_term: Term(prev.1),
        entries: Vec::new(),
        leader_commit: LogIndex(commit),
        read_round: 0,
    }
}

fn rejected(term: u64, reason: VoteRejectReason) -> Message {
    Message::VoteResponse {
        term: Term(term),
        pre_vote: false,
        granted: false,
        reject_reason: Some(reason),
    }
}

/// Node 1 of `count` with `recovered` on disk, elected without pre-vote at `AFTER_TIMEOUT_MS`
/// by nodes 2..=majority; effects of the election are returned, not asserted.
fn elected(count: u32, config: Config, recovered: RecoveredState) -> (Node, Vec<Effect>) {
    let mut node = Node::new(config, N1, members(count), recovered, 7).expect("valid node");
    node.step(0, Input::Tick);
    node.take_effects();
    let now = AFTER_TIMEOUT_MS;
    node.step(now, Input::Tick);
    node.step(now, persisted(1));
    node.take_effects();
    let term = node.status().term.0;
    for voter in 2..=count / 2 + 1 {
        node.step(now, msg(NodeId(voter), granted(term, false)));
    }
    assert_eq!(Role::Leader, node.status().role);
    let effects = node.take_effects();
    (node, effects)
}

/// S1's disk in Figure 8 (c): it led term 2 and wrote index 2 (term 2); S5 led term 3.
fn figure_8_s1() -> RecoveredState {
    RecoveredState {
        rejoining: false,
        hard_state: HardState {
            commit_mark: LogIndex(0),
            log_end_mark: LogIndex(0),
            forgotten_through: LogIndex(0),
            term: Term(3),
            voted_for: None,
        },
        entries: chain(&[1, 2]),
    }
}

#[test]
fn dledger_commit_rule_commits_a_previous_term_entry_by_count() {
    // Why: DLedger's QuorumAckChecker commits the median watermark and only checks the
    // leader's term (updateCommittedIndex / leaderUpdateCommittedIndex), so the Figure 8 entry
    // (index 2, term 2) commits as soon as a majority holds it, before any term-4 entry does;
    // Raft keeps it uncommitted (`figure_8_an_older_term_entry_is_not_committed_by_counting`).
    for (config, commits) in [
        (only_commit_rule(), true),
        (with_switches(Fidelity::RAFT), false),
    ] {
        let (mut s1, _) = elected(5, config, figure_8_s1());
        assert_eq!(Term(4), s1.status().term);
        let now = AFTER_TIMEOUT_MS + 1;
        s1.step(now, msg(N2, append_ok(4, 2, 2)));
        assert_eq!(Vec::<Effect>::new(), s1.take_effects());
        s1.step(now, msg(N3, append_ok(4, 2, 3)));
        let expected = if commits {
            vec![Effect::Apply {
                entries: s1.log()[..2].to_vec(),
            }]
        } else {
            Vec::new()
        };
        assert_eq!(expected, s1.take_effects(), "commit by count: {commits}");
        let commit = if commits { 2 } else { 0 };
        assert_eq!(LogIndex(commit), s1.status().commit_index);
    }
}

#[test]
fn dledger_leader_appends_no_noop_and_heartbeats_at_once() {
    // Why: DLedger's enableFastAdvanceCommitIndex defaults to false: a new leader writes
    // nothing of its term; changeRoleToLeader resets lastSendHeartBeatTime so it announces
    // itself with a heartbeat round at once. Raft appends and pushes a no-op (§8).
    let config = with_switches(Fidelity {
        skip_noop_on_election: true,
        ..Fidelity::RAFT
    });
    let (leader, effects) = elected(3, config, RecoveredState::default());
    assert_eq!(
        vec![
            send(N2, heartbeat(1, (0, 0), 0)),
            send(N3, heartbeat(1, (0, 0), 0)),
        ],
        effects
    );
    assert_eq!(LogIndex(0), leader.status().last_index);
    let (_, raft_effects) = elected(3, with_switches(Fidelity::RAFT), RecoveredState::default());
    assert!(matches!(
        raft_effects.first(),
        Some(Effect::Persist(PersistOp::Append { entries })) if entries[0].kind == EntryKind::Noop
    ));
}

#[test]
fn dledger_compare_makes_previous_term_entries_count_toward_commit() {
    // Why: DLedger's EntryDispatcher starts each follower in COMPARE at the leader's last
    // index and, on a match, sets the follower's watermark in the new term to that index
    // (changeState(index, APPEND) → updatePeerWaterMark): with the commit rule, previous-term
    // entries then commit without any entry of the new term. Without COMPARE (and without a
    // no-op) the leader's heartbeats check nothing beyond the match index and learn nothing.
    let recovered = || RecoveredState {
        rejoining: false,
        hard_state: HardState {
            commit_mark: LogIndex(0),
            log_end_mark: LogIndex(0),
            forgotten_through: LogIndex(0),
            term: Term(1),
            voted_for: None,
        },
        entries: chain(&[1, 1]),
    };
    let (mut leader, effects) = elected(3, Config::dledger_fidelity(), recovered());
    assert_eq!(
        vec![
            send(N2, heartbeat(2, (2, 1), 0)),
            send(N3, heartbeat(2, (2, 1), 0)),
        ],
        effects
    );
    leader.step(AFTER_TIMEOUT_MS + 3, msg(N2, append_ok(2, 2, 2)));
    assert_eq!(
        vec![Effect::Apply {
            entries: leader.log().to_vec()
        }],
        leader.take_effects()
    );
    // The next heartbeats check at the match index, as Raft's do.
    leader.step(AFTER_TIMEOUT_MS + 2000, Input::Tick);
    assert_eq!(
        vec![
            send(N2, heartbeat(2, (2, 1), 2)),
            send(N3, heartbeat(2, (2, 1), 2)),
        ],
        leader.take_effects()
    );

    let without_compare = with_switches(Fidelity {
        watermark_from_compare: false,
        ..Fidelity::DLEDGER
    });
    let (_, effects) = elected(3, without_compare, recovered());
    assert_eq!(
        vec![
            send(N2, heartbeat(2, (0, 0), 0)),
            send(N3, heartbeat(2, (0, 0), 0)),
        ],
        effects
    );
}

/// A DLedger-fidelity voter (node 2 of 3) whose log is [1 (t1), 2 (t2)], in term 2.
fn dledger_voter() -> Node {
    let recovered = RecoveredState {
        rejoining: false,
        hard_state: HardState {
            commit_mark: LogIndex(0),
            log_end_mark: LogIndex(0),
            forgotten_through: LogIndex(0),
            term: Term(2),
            voted_for: None,
        },
        entries: chain(&[1, 2]),
    };
    let mut node =
        Node::new(Config::dledger_fidelity(), N2, members(3), recovered, 7).expect("valid node");
    node.step(0, Input::Tick);
    node.take_effects();
    node
}

#[test]
fn dledger_voter_judges_the_log_before_the_term() {
    // Why: handleVote checks REJECT_EXPIRED_LEDGER_TERM and REJECT_SMALL_LEDGER_END_INDEX
    // before any term check, so a candidate of a newer term with an older log is refused
    // without moving the voter's term; and a request failing both checks is refused for its
    // log. Raft checks the term first (adopting a newer one) and reports the stale term.
    let mut voter = dledger_voter();
    voter.step(10, msg(N1, vote_request(9, N1, (1, 1), false)));
    voter.step(11, msg(N3, vote_request(9, N3, (1, 2), false)));
    voter.step(12, msg(N1, vote_request(1, N1, (1, 1), false)));
    voter.step(13, msg(N3, vote_request(1, N3, (2, 2), false)));
    assert_eq!(
        vec![
            send(N1, rejected(2, VoteRejectReason::ExpiredLedgerTerm)),
            send(N3, rejected(2, VoteRejectReason::SmallLedgerEndIndex)),
            send(N1, rejected(2, VoteRejectReason::ExpiredLedgerTerm)),
            send(N3, rejected(2, VoteRejectReason::ExpiredVoteTerm)),
        ],
        voter.take_effects()
    );
    assert_eq!(Term(2), voter.status().term);

    // Raft (pre-vote off): the stale term is reported, and a newer term is adopted.
    let recovered = RecoveredState {
        rejoining: false,
        hard_state: HardState {
            commit_mark: LogIndex(0),
            log_end_mark: LogIndex(0),
            forgotten_through: LogIndex(0),
            term: Term(2),
            voted_for: None,
        },
        entries: chain(&[1, 2]),
    };
    let mut raft =
        Node::new(with_switches(Fidelity::RAFT), N2, members(3), recovered, 7).expect("valid node");
    raft.step(0, Input::Tick);
    raft.step(12, msg(N1, vote_request(1, N1, (1, 1), false)));
    raft.step(13, msg(N1, vote_request(9, N1, (1, 1), false)));
    assert_eq!(
        vec![
            send(N1, rejected(2, VoteRejectReason::ExpiredVoteTerm)),
            hard_state(9, None),
            send(N1, rejected(9, VoteRejectReason::ExpiredLedgerTerm)),
            sync(1),
        ],
        raft.take_effects()
    );
}

#[test]
fn dledger_voter_adopts_a_newer_term_refuses_term_not_ready_then_grants() {
    // Why: handleVote answers a newer term with REJECT_TERM_NOT_READY after adopting it
    // (changeRoleToCandidate + nextTerm: vote cleared); the candidate asks again in the same
    // term (REVOTE_IMMEDIATELY) and, the log being fine, gets the vote.
    let mut voter = dledger_voter();
    voter.step(10, msg(N1, vote_request(3, N1, (2, 2), false)));
    assert_eq!(
        vec![
            hard_state(3, None),
            send(N1, rejected(3, VoteRejectReason::TermNotReady)),
            sync(1),
        ],
        voter.take_effects()
    );
    voter.step(11, msg(N1, vote_request(3, N1, (2, 2), false)));
    voter.step(12, persisted(1));
    voter.step(12, persisted(2));
    assert_eq!(
        vec![
            hard_state(3, Some(N1)),
            sync(2),
            send(N1, granted(3, false))
        ],
        voter.take_effects()
    );
    // Another candidate of term 3 now: already voted, and no leader known yet.
    voter.step(13, msg(N3, vote_request(3, N3, (2, 2), false)));
    assert_eq!(
        vec![send(N3, rejected(3, VoteRejectReason::AlreadyVoted))],
        voter.take_effects()
    );
    // Once N1 leads term 3, the same request is refused for the known leader.
    voter.step(14, msg(N1, heartbeat(3, (2, 2), 0)));
    voter.take_effects();
    voter.step(15, msg(N3, vote_request(3, N3, (2, 2), false)));
    assert_eq!(
        vec![send(N3, rejected(3, VoteRejectReason::AlreadyHasLeader))],
        voter.take_effects()
    );
}

#[test]
fn dledger_candidate_asks_again_after_term_not_ready() {
    // Why: maintainAsCandidate revotes at once in the same term when accepted + not-ready
    // votes make a majority; without it, a voter that adopted the term would never be asked.
    let config = Config::dledger_fidelity();
    let mut candidate = fresh_with(N1, 3, config);
    candidate.step(AFTER_TIMEOUT_MS, Input::Tick);
    candidate.take_effects();
    candidate.step(
        AFTER_TIMEOUT_MS + 1,
        msg(N2, rejected(1, VoteRejectReason::TermNotReady)),
    );
    assert_eq!(
        vec![send(N2, vote_request(1, N1, (0, 0), false))],
        candidate.take_effects()
    );
}

#[test]
fn dledger_leader_steps_down_for_an_up_to_date_candidate_of_a_newer_term() {
    // Why: DLedger has no leader stickiness for newer terms: handleVote makes even a live
    // leader adopt the term (changeRoleToCandidate). Raft (even without pre-vote) refuses the
    // vote while it leads (`REJECT_ALREADY_HAS_LEADER`) and keeps leading.
    let (mut leader, _) = elected(3, Config::dledger_fidelity(), RecoveredState::default());
    leader.step(
        AFTER_TIMEOUT_MS + 5,
        msg(N3, vote_request(2, N3, (0, 0), false)),
    );
    assert_eq!(
        vec![
            hard_state(2, None),
            send(N3, rejected(2, VoteRejectReason::TermNotReady)),
            sync(2),
        ],
        leader.take_effects()
    );
    assert_eq!(Role::Follower, leader.status().role);

    let (mut raft, _) = elected(3, with_switches(Fidelity::RAFT), RecoveredState::default());
    raft.take_effects();
    raft.step(
        AFTER_TIMEOUT_MS + 5,
        msg(N3, vote_request(2, N3, (1, 1), false)),
    );
    assert_eq!(
        vec![send(N3, rejected(1, VoteRejectReason::AlreadyHasLeader))],
        raft.take_effects()
    );
    assert_eq!(Role::Leader, raft.status().role);
}

#[test]
fn dledger_leader_steps_down_when_a_heartbeat_round_ends_long_after_the_last_majority() {
    // Why: DLedger's sendHeartbeats judges each round when it ends (the next one is sent) and
    // steps down once elapsed(lastSuccHeartBeatTime) > maxHeartBeatLeak × heartBeatInterval
    // (6000 ms): with the last majority at +100 ms, rounds end at +2000, +4000, +6000 (5900 ms:
    // not yet) and +8000 (7900 ms: step down). Raft's check quorum steps down at exactly
    // +100 + 6000. Both then campaign: DLedger after a vote interval.
    let config = with_switches(Fidelity {
        step_down_by_heartbeat_rounds: true,
        ..Fidelity::RAFT
    });
    let elected_at = AFTER_TIMEOUT_MS;
    for (config, steps_down_at) in [
        (config, elected_at + 8000),
        (with_switches(Fidelity::RAFT), elected_at + 6100),
    ] {
        let (mut leader, _) = elected(3, config.clone(), RecoveredState::default());
        leader.step(elected_at + 100, msg(N2, append_ok(1, 0, 0)));
        let mut now = elected_at + 100;
        while now < steps_down_at - 1 {
            now = leader.next_deadline_ms().min(steps_down_at - 1);
            leader.step(now, Input::Tick);
            assert_eq!(Role::Leader, leader.status().role, "at {now}");
        }
        assert_eq!(steps_down_at, leader.next_deadline_ms());
        leader.step(steps_down_at, Input::Tick);
        assert_eq!(Role::Follower, leader.status().role);
        let campaign_in = leader.next_deadline_ms() - steps_down_at;
        if config.fidelity.step_down_by_heartbeat_rounds {
            assert!((300..=1000).contains(&campaign_in), "{campaign_in}");
        } else {
            assert!((6300..=7000).contains(&campaign_in), "{campaign_in}");
        }
    }
}

#[test]
fn dledger_heartbeat_round_with_a_majority_keeps_the_leader() {
    // Why: a round counts the peers that answered while it was the latest: one answer per
    // round from one of two followers is a majority of three, so the leader stays however
    // long that lasts.
    let config = with_switches(Fidelity {
        step_down_by_heartbeat_rounds: true,
        ..Fidelity::RAFT
    });
    let (mut leader, _) = elected(3, config, RecoveredState::default());
    for round in 0..10 {
        let start = AFTER_TIMEOUT_MS + round * 2000;
        leader.step(start + 50, msg(N2, append_ok(1, 0, 0)));
        leader.step(start + 2000, Input::Tick);
        assert_eq!(Role::Leader, leader.status().role, "round {round}");
    }
}

#[test]
fn dledger_follower_records_a_lost_committed_entry_instead_of_panicking() {
    // Why: with the DLedger commit rule a leader can make an entry committed that a later
    // leader overwrites (Figure 8 (d)). Raft asserts (`follower_refuses_to_truncate_a_committed_entry`);
    // DLedger fidelity records the State Machine Safety break as a value, lowers the commit
    // index below the cut, keeps what it applied (apply stays monotone) and goes on.
    let recovered = RecoveredState {
        rejoining: false,
        hard_state: HardState {
            commit_mark: LogIndex(0),
            log_end_mark: LogIndex(0),
            forgotten_through: LogIndex(0),
            term: Term(4),
            voted_for: None,
        },
        entries: chain(&[1, 2]),
    };
    let mut follower =
        Node::new(Config::dledger_fidelity(), N2, members(5), recovered, 7).expect("node");
    follower.step(0, Input::Tick);
    let first = follower.log()[0].clone();
    follower.step(10, msg(N1, heartbeat(4, (2, 2), 2)));
    assert_eq!(LogIndex(2), follower.status().applied_index);
    follower.take_effects();
    let other = Entry::new(
        first.checksum,
        LogIndex(2),
        Term(3),
        EntryKind::Normal,
        b"s5".to_vec(),
    );
    let s5 = NodeId(5);
    let from_s5 = Message::AppendRequest {
        term: Term(5),
        leader: s5,
        prev_log_index: LogIndex(1),
        prev_log_term: Term(1),
        entries: vec![other.clone()],
        leader_commit: LogIndex(1),
        read_round: 0,
    };
    follower.step(20, msg(s5, from_s5));
    assert_eq!(
        vec![
            hard_state(5, None),
            Effect::Persist(PersistOp::TruncateFrom { from: LogIndex(2) }),
            Effect::Persist(PersistOp::Append {
                entries: vec![other]
            }),
            sync(1),
        ],
        follower.take_effects()
    );
    assert_eq!(
        vec![SafetyViolation::CommittedEntryTruncated {
            from: LogIndex(2),
            commit_index: LogIndex(2),
            applied_index: LogIndex(2),
            term: Term(3),
            leader: s5,
        }],
        follower.take_safety_violations()
    );
    let status = follower.status();
    assert_eq!(
        (LogIndex(1), LogIndex(2)),
        (status.commit_index, status.applied_index)
    );
    assert!(follower.take_safety_violations().is_empty());
}

#[test]
fn dledger_candidate_that_cannot_win_votes_again_in_the_same_term() {
    // Why: maintainAsCandidate moves to the next term only when its election failed for want
    // of votes it could still get (WAIT_TO_VOTE_NEXT); too few answers, or too many voters
    // with a newer log, make it vote again in the same term (WAIT_TO_REVOTE, the latter after
    // an extra maxVoteIntervalMs). That is what keeps a lagging or cut-off DLedger node, which
    // has no pre-vote, from inflating terms.
    let config = Config::dledger_fidelity();
    let mut candidate = fresh_with(N1, 3, config.clone());
    candidate.step(AFTER_TIMEOUT_MS, Input::Tick);
    candidate.step(AFTER_TIMEOUT_MS, persisted(1));
    candidate.take_effects();
    // Responses are judged when the retry timer fires (DLedger judges them once all have
    // answered, then waits nextTimeToRequestVote). No answer at all: same term.
    let retry = candidate.next_deadline_ms();
    candidate.step(retry, Input::Tick);
    assert_eq!(
        vec![
            send(N2, vote_request(1, N1, (0, 0), false)),
            send(N3, vote_request(1, N1, (0, 0), false)),
        ],
        candidate.take_effects()
    );
    // Both voters hold a newer log (they answer in their own, older term): same term, and
    // the round after waits an extra vote_interval_ms_max.
    candidate.step(
        retry + 1,
        msg(N2, rejected(0, VoteRejectReason::ExpiredLedgerTerm)),
    );
    candidate.step(
        retry + 1,
        msg(N3, rejected(0, VoteRejectReason::SmallLedgerEndIndex)),
    );
    let judged = candidate.next_deadline_ms();
    candidate.step(judged, Input::Tick);
    assert_eq!(Term(1), candidate.status().term);
    assert_eq!(2, candidate.take_effects().len(), "two vote requests");
    let again = candidate.next_deadline_ms();
    assert!(
        (judged + 300 + 1000..=judged + 1000 + 1000).contains(&again),
        "{again}"
    );
    // Both answer but refuse for a vote already given: next term.
    candidate.step(again, Input::Tick);
    candidate.take_effects();
    candidate.step(
        again + 1,
        msg(N2, rejected(1, VoteRejectReason::AlreadyVoted)),
    );
    candidate.step(
        again + 1,
        msg(N3, rejected(1, VoteRejectReason::AlreadyVoted)),
    );
    let next = candidate.next_deadline_ms();
    candidate.step(next, Input::Tick);
    assert_eq!(
        vec![
            hard_state(2, Some(N1)),
            send(N2, vote_request(2, N1, (0, 0), false)),
            send(N3, vote_request(2, N1, (0, 0), false)),
            sync(2),
        ],
        candidate.take_effects()
    );
}

#[test]
fn dledger_follower_points_the_leader_below_its_commit_index() {
    // Why: DLedger's follower compares and truncates without looking at its committed index
    // (handleDoCompare / handleDoTruncate). After a commit by count, a newer leader whose entry
    // conflicts at a committed index must be pointed there, or it could never repair the
    // follower; Raft's follower never points below commit + 1 (nothing committed conflicts).
    let recovered = || RecoveredState {
        rejoining: false,
        hard_state: HardState {
            commit_mark: LogIndex(0),
            log_end_mark: LogIndex(0),
            forgotten_through: LogIndex(0),
            term: Term(4),
            voted_for: None,
        },
        entries: chain(&[1, 2]),
    };
    let s5 = NodeId(5);
    let compare = |term| Message::AppendRequest {
        term: Term(term),
        leader: s5,
        prev_log_index: LogIndex(2),
        prev_log_term: Term(3),
        entries: Vec::new(),
        leader_commit: LogIndex(0),
        read_round: 0,
    };
    let reject = |hint| Message::AppendResponse {
        term: Term(5),
        success: false,
        match_or_hint: LogIndex(hint),
        last_log_index: LogIndex(2),
        read_round: 0,
        forgot: false,
    };
    for (config, hint) in [
        (Config::dledger_fidelity(), 2),
        (with_switches(Fidelity::RAFT), 3),
    ] {
        let mut follower = Node::new(config, N2, members(5), recovered(), 7).expect("node");
        follower.step(0, Input::Tick);
        follower.step(10, msg(N1, heartbeat(4, (2, 2), 2)));
        assert_eq!(LogIndex(2), follower.status().commit_index);
        follower.take_effects();
        follower.step(20, msg(s5, compare(5)));
        assert_eq!(
            vec![hard_state(5, None), send(s5, reject(hint)), sync(1)],
            follower.take_effects()
        );
    }
}

#[test]
fn dledger_vote_checks_refuse_pre_vote_in_the_config() {
    // Why: DLedger has no pre-vote; a pre-vote in front of its vote checks would be neither
    // protocol. The mix is a config error, not a silent choice.
    let mixed = Config {
        pre_vote: true,
        ..Config::dledger_fidelity()
    };
    assert_eq!(Err(ConfigError::PreVoteWithDLedgerVotes), mixed.validate());
    assert_eq!(Ok(()), Config::dledger_fidelity().validate());
    assert!(Config::dledger_fidelity().fidelity.departs_from_raft());
    assert!(!Config::default().fidelity.departs_from_raft());
}
