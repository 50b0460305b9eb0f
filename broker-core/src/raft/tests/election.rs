//! Elections: timeouts, pre-vote, votes persisted before they are granted, stickiness.

use super::*;
use crate::proto::VoteRejectReason;

#[test]
fn follower_stays_quiet_before_the_election_timeout() {
    // Why: DLedger waits max_heartbeat_leak × heartbeat (6000 ms) plus a vote interval before
    // campaigning; an early election would disturb a healthy leader.
    let mut node = fresh(N1, 3);
    let deadline = node.next_deadline_ms();
    assert!((6300..=7000).contains(&deadline), "deadline {deadline}");
    node.step(deadline - 1, Input::Tick);
    assert_eq!(Vec::<Effect>::new(), node.take_effects());
    assert_eq!(Role::Follower, node.status().role);
}

#[test]
fn follower_timeout_sends_pre_votes_without_changing_its_term() {
    // Why: a pre-vote (Raft §9.6) asks with term + 1 but must not bump the local term, so a
    // partitioned node cannot inflate terms and disrupt the cluster on its return.
    let mut node = fresh(N1, 3);
    node.step(AFTER_TIMEOUT_MS, Input::Tick);
    assert_eq!(
        vec![
            send(N2, vote_request(1, N1, (0, 0), true)),
            send(N3, vote_request(1, N1, (0, 0), true)),
        ],
        node.take_effects()
    );
    let status = node.status();
    assert_eq!(Role::PreCandidate, status.role);
    assert_eq!(Term(0), status.term);
}

#[test]
fn pre_vote_majority_starts_a_real_election_that_persists_term_and_vote() {
    // Why: the real election bumps the term and votes for self; that hard state must be
    // persisted (and synced) as part of the same step.
    let mut node = fresh(N1, 3);
    node.step(AFTER_TIMEOUT_MS, Input::Tick);
    node.take_effects();
    node.step(AFTER_TIMEOUT_MS, msg(N2, granted(1, true)));
    assert_eq!(
        vec![
            hard_state(1, Some(N1)),
            send(N2, vote_request(1, N1, (0, 0), false)),
            send(N3, vote_request(1, N1, (0, 0), false)),
            sync(1),
        ],
        node.take_effects()
    );
    assert_eq!(Role::Candidate, node.status().role);
    assert_eq!(Term(1), node.status().term);
}

#[test]
fn candidate_counts_its_own_vote_only_once_durable() {
    // Why: if a candidate counted its vote before the fsync and crashed, it could come back
    // without the vote, vote for another node in the same term, and two leaders could win.
    let mut node = fresh(N1, 3);
    node.step(AFTER_TIMEOUT_MS, Input::Tick);
    node.step(AFTER_TIMEOUT_MS, msg(N2, granted(1, true)));
    node.take_effects();
    node.step(AFTER_TIMEOUT_MS, msg(N2, granted(1, false)));
    assert_eq!(Vec::<Effect>::new(), node.take_effects());
    assert_eq!(Role::Candidate, node.status().role);
    node.step(AFTER_TIMEOUT_MS, persisted(1));
    let noop = noop(0, 1, 1);
    let append = |to| {
        send(
            to,
            Message::AppendRequest {
                term: Term(1),
                leader: N1,
                prev_log_index: LogIndex(0),
                prev_log_term: Term(0),
                entries: vec![noop.clone()],
                leader_commit: LogIndex(0),
                read_round: 0,
            },
        )
    };
    assert_eq!(
        vec![
            Effect::Persist(PersistOp::Append {
                entries: vec![noop.clone()]
            }),
            sync(2),
            append(N2),
            append(N3),
        ],
        node.take_effects()
    );
    assert_eq!(Role::Leader, node.status().role);
}

#[test]
fn voter_persists_its_vote_before_answering() {
    // Why: Raft Figure 2 requires currentTerm and votedFor on stable storage before responding;
    // the granted response must wait for Persisted.
    let mut node = fresh(N2, 3);
    node.step(100, msg(N1, vote_request(1, N1, (0, 0), false)));
    assert_eq!(vec![hard_state(1, Some(N1)), sync(1)], node.take_effects());
    node.step(101, persisted(1));
    assert_eq!(vec![send(N1, granted(1, false))], node.take_effects());
}

#[test]
fn voter_refuses_a_second_candidate_in_the_same_term() {
    // Why: one vote per term is what makes at most one leader per term (Raft §5.2).
    let mut node = fresh(N2, 3);
    node.step(100, msg(N1, vote_request(1, N1, (0, 0), false)));
    node.step(101, persisted(1));
    node.take_effects();
    node.step(102, msg(N3, vote_request(1, N3, (0, 0), false)));
    assert_eq!(
        vec![send(
            N3,
            Message::VoteResponse {
                term: Term(1),
                pre_vote: false,
                granted: false,
                reject_reason: Some(VoteRejectReason::AlreadyVoted),
            }
        )],
        node.take_effects()
    );
    assert_eq!(Some(N1), node.status().voted_for);
}

#[test]
fn voter_refuses_a_candidate_with_an_older_log() {
    // Why: Leader Completeness (§5.4.1) rests on voters refusing candidates whose last term is
    // older, or whose log is shorter with the same last term.
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
    let mut node = node_with(N2, 3, recovered);
    node.step(0, Input::Tick);
    node.take_effects();
    node.step(10, msg(N1, vote_request(3, N1, (5, 1), false)));
    node.step(11, msg(N3, vote_request(3, N3, (1, 2), false)));
    let reject = |reason| Message::VoteResponse {
        term: Term(3),
        pre_vote: false,
        granted: false,
        reject_reason: Some(reason),
    };
    assert_eq!(
        vec![
            hard_state(3, None),
            send(N1, reject(VoteRejectReason::ExpiredLedgerTerm)),
            sync(1),
            send(N3, reject(VoteRejectReason::SmallLedgerEndIndex)),
        ],
        node.take_effects()
    );
}

#[test]
fn pre_vote_is_refused_while_a_leader_is_live_and_changes_nothing() {
    // Why: leader stickiness: a node that heard from its leader within the election timeout
    // must not help a (possibly partitioned) node start an election, nor adopt its term.
    let mut node = fresh(N2, 3);
    let heartbeat = Message::AppendRequest {
        term: Term(1),
        leader: N1,
        prev_log_index: LogIndex(0),
        prev_log_term: Term(0),
        entries: Vec::new(),
        leader_commit: LogIndex(0),
        read_round: 0,
    };
    node.step(100, msg(N1, heartbeat));
    node.take_effects();
    node.step(200, msg(N3, vote_request(2, N3, (0, 0), true)));
    assert_eq!(
        vec![send(
            N3,
            Message::VoteResponse {
                term: Term(1),
                pre_vote: true,
                granted: false,
                reject_reason: Some(VoteRejectReason::AlreadyHasLeader),
            }
        )],
        node.take_effects()
    );
    assert_eq!(Term(1), node.status().term);
    // After the election timeout without the leader, the same pre-vote is granted.
    node.step(100 + 6000, msg(N3, vote_request(2, N3, (0, 0), true)));
    assert_eq!(vec![send(N3, granted(2, true))], node.take_effects());
    assert_eq!(Term(1), node.status().term);
}

#[test]
fn failed_pre_vote_retries_after_a_vote_interval() {
    // Why: a pre-candidate that gets no majority must try again after a fresh random vote
    // interval (300..=1000 ms), not after the full election timeout.
    let mut node = fresh(N1, 3);
    node.step(AFTER_TIMEOUT_MS, Input::Tick);
    node.take_effects();
    let retry = node.next_deadline_ms();
    assert!(
        (AFTER_TIMEOUT_MS + 300..=AFTER_TIMEOUT_MS + 1000).contains(&retry),
        "retry at {retry}"
    );
    node.step(retry, Input::Tick);
    assert_eq!(
        vec![
            send(N2, vote_request(1, N1, (0, 0), true)),
            send(N3, vote_request(1, N1, (0, 0), true)),
        ],
        node.take_effects()
    );
}

#[test]
fn restarted_voter_does_not_vote_twice_in_a_term() {
    // Why: a vote that was answered was durable, so after a crash the voter must still refuse
    // other candidates of that term; a vote lost before its fsync was never answered, so voting
    // again after the restart is not a second vote.
    let mut voter = fresh(N2, 3);
    voter.step(100, msg(N1, vote_request(1, N1, (0, 0), false)));
    voter.step(101, persisted(1));
    assert_eq!(
        vec![
            hard_state(1, Some(N1)),
            sync(1),
            send(N1, granted(1, false))
        ],
        voter.take_effects()
    );
    let durable = RecoveredState {
        rejoining: false,
        hard_state: voter.durable_hard_state().clone(),
        entries: Vec::new(),
    };
    let mut restarted = node_with(N2, 3, durable);
    restarted.step(200, msg(N3, vote_request(1, N3, (0, 0), false)));
    let effects = restarted.take_effects();
    assert!(
        effects.iter().all(|effect| !matches!(
            effect,
            Effect::Send {
                msg: Message::VoteResponse { granted: true, .. },
                ..
            }
        )),
        "restarted voter granted a second vote: {effects:?}"
    );

    // The unsynced case: the crash loses the vote before it was ever sent.
    let mut voter = fresh(N2, 3);
    voter.step(100, msg(N1, vote_request(1, N1, (0, 0), false)));
    assert_eq!(vec![hard_state(1, Some(N1)), sync(1)], voter.take_effects());
    let durable = RecoveredState {
        rejoining: false,
        hard_state: voter.durable_hard_state().clone(),
        entries: Vec::new(),
    };
    assert_eq!(HardState::default(), durable.hard_state);
    let mut restarted = node_with(N2, 3, durable);
    restarted.step(200, msg(N3, vote_request(1, N3, (0, 0), false)));
    restarted.step(201, persisted(1));
    assert_eq!(
        vec![
            hard_state(1, Some(N3)),
            sync(1),
            send(N3, granted(1, false))
        ],
        restarted.take_effects()
    );
}

#[test]
fn higher_term_message_turns_a_leader_into_a_follower_and_fails_its_proposals() {
    // Why: a deposed leader must stop and tell its clients their proposals' fate is unknown
    // (LeadershipLost), never claim a commit it can no longer make.
    let mut leader = leader_of(3);
    leader.step(
        AFTER_TIMEOUT_MS + 1,
        Input::ClientPropose {
            proposal: ProposalId(9),
            data: vec![1],
        },
    );
    leader.take_effects();
    let newer = Message::AppendResponse {
        term: Term(5),
        success: false,
        match_or_hint: LogIndex(0),
        last_log_index: LogIndex(0),
        read_round: 0,
        forgot: false,
    };
    leader.step(AFTER_TIMEOUT_MS + 2, msg(N2, newer));
    let effects = leader.take_effects();
    assert_eq!(
        vec![(ProposalId(9), ProposeOutcome::LeadershipLost)],
        replies(&effects)
    );
    assert_eq!(Role::Follower, leader.status().role);
    assert_eq!(Term(5), leader.status().term);
}
