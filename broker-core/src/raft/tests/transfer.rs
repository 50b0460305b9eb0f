//! Leadership transfer (DLedger preferred leader).

use super::*;

fn caught_up_leader() -> Node {
    let mut leader = leader_of(3);
    leader.step(AFTER_TIMEOUT_MS + 1, msg(N2, append_ok(1, 1, 1)));
    leader.step(AFTER_TIMEOUT_MS + 1, msg(N3, append_ok(1, 1, 1)));
    leader.take_effects();
    leader
}

#[test]
fn transfer_to_a_caught_up_follower_sends_timeout_now_and_refuses_proposals() {
    // Why: the leader must stop appending (Busy) so the target stays caught up, and hand over
    // with TimeoutNow only once the target holds the whole log.
    let mut leader = caught_up_leader();
    let now = AFTER_TIMEOUT_MS + 10;
    leader.step(now, Input::TransferLeadership { to: N3 });
    assert_eq!(
        vec![send(N3, Message::TimeoutNow { term: Term(1) })],
        leader.take_effects()
    );
    leader.step(
        now + 1,
        Input::ClientPropose {
            proposal: ProposalId(2),
            data: vec![],
        },
    );
    assert_eq!(
        vec![Effect::Reply {
            proposal: ProposalId(2),
            outcome: ProposeOutcome::Busy
        }],
        leader.take_effects()
    );
}

#[test]
fn transfer_waits_until_the_target_catches_up() {
    // Why: a target missing entries would lose the election (or worse, win without them if
    // voters were careless); TimeoutNow must wait for its match index to reach the log end.
    let mut leader = leader_of(3);
    let now = AFTER_TIMEOUT_MS + 10;
    leader.step(now, Input::TransferLeadership { to: N2 });
    assert_eq!(Vec::<Effect>::new(), leader.take_effects());
    leader.step(now + 1, msg(N2, append_ok(1, 1, 1)));
    let noop = leader.log()[0].clone();
    assert_eq!(
        vec![
            send(N2, Message::TimeoutNow { term: Term(1) }),
            Effect::Apply {
                entries: vec![noop]
            },
        ],
        leader.take_effects()
    );
}

#[test]
fn abandoned_transfer_accepts_proposals_again() {
    // Why: a transfer that cannot complete (target dead) must not leave the group unwritable.
    let mut leader = leader_of(3);
    let now = AFTER_TIMEOUT_MS + 10;
    leader.step(now, Input::TransferLeadership { to: N2 });
    leader.step(now + 4000, msg(N3, append_ok(1, 1, 1)));
    leader.step(now + 5000, Input::Tick);
    leader.take_effects();
    leader.step(
        now + 5001,
        Input::ClientPropose {
            proposal: ProposalId(3),
            data: vec![],
        },
    );
    let effects = leader.take_effects();
    assert!(replies(&effects).is_empty(), "{effects:?}");
    assert_eq!(LogIndex(2), leader.status().last_index);
}

#[test]
fn timeout_now_starts_an_election_that_bypasses_stickiness() {
    // Why: the target must campaign at once (no pre-vote), and voters that still hear the old
    // leader must grant anyway because the leader asked for it.
    let mut target = fresh(N2, 3);
    let heartbeat = Message::AppendRequest {
        term: Term(1),
        leader: N1,
        prev_log_index: LogIndex(0),
        prev_log_term: Term(0),
        entries: Vec::new(),
        leader_commit: LogIndex(0),
        read_round: 0,
    };
    target.step(10, msg(N1, heartbeat.clone()));
    target.take_effects();
    target.step(20, msg(N1, Message::TimeoutNow { term: Term(1) }));
    let request = |to| {
        send(
            to,
            Message::VoteRequest {
                term: Term(2),
                candidate: N2,
                last_log_index: LogIndex(0),
                last_log_term: Term(0),
                pre_vote: false,
                leadership_transfer: true,
            },
        )
    };
    assert_eq!(
        vec![hard_state(2, Some(N2)), request(N1), request(N3), sync(2)],
        target.take_effects()
    );
    // A voter that heard the leader 10 ms ago still grants a transfer vote.
    let mut voter = fresh(N3, 3);
    voter.step(10, msg(N1, heartbeat));
    voter.take_effects();
    let transfer_vote = Message::VoteRequest {
        term: Term(2),
        candidate: N2,
        last_log_index: LogIndex(0),
        last_log_term: Term(0),
        pre_vote: false,
        leadership_transfer: true,
    };
    voter.step(25, msg(N2, transfer_vote));
    voter.step(26, persisted(2));
    assert_eq!(
        vec![
            hard_state(2, Some(N2)),
            sync(2),
            send(N2, granted(2, false))
        ],
        voter.take_effects()
    );
}
