//! Flow control under reordering: the leader's per-follower Probe/Replicate states, stale
//! rejections, and the follower keeping an early batch instead of rejecting it.

use super::*;

/// Small batches and window so a few proposals fill several requests.
fn small_window() -> Config {
    Config {
        append_batch_entries_max: 2,
        inflight_entries_max: 8,
        ..Config::default()
    }
}

fn append(term: u64, prev: (u64, u64), entries: Vec<Entry>, commit: u64) -> Message {
    Message::AppendRequest {
        term: Term(term),
        leader: N1,
        prev_log_index: LogIndex(prev.0),
        prev_log_term: Term(prev.1),
        entries,
        leader_commit: LogIndex(commit),
        read_round: 0,
    }
}

fn rejection(term: u64, hint: u64, last: u64) -> Message {
    Message::AppendResponse {
        term: Term(term),
        success: false,
        match_or_hint: LogIndex(hint),
        last_log_index: LogIndex(last),
        read_round: 0,
        forgot: false,
    }
}

fn propose(node: &mut Node, now: u64, count: u64) {
    for n in 0..count {
        node.step(
            now,
            Input::ClientPropose {
                proposal: ProposalId(100 + n),
                data: vec![n as u8],
            },
        );
    }
}

/// The AppendRequests in `effects` sent to `to`, as (prev index, first..=last entry index).
fn appends_to(effects: &[Effect], to: NodeId) -> Vec<(u64, Vec<u64>)> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Send {
                to: target,
                msg:
                    Message::AppendRequest {
                        prev_log_index,
                        entries,
                        ..
                    },
            } if *target == to => Some((
                prev_log_index.0,
                entries.iter().map(|entry| entry.index.0).collect(),
            )),
            _ => None,
        })
        .collect()
}

/// A leader of term 1 (small window) whose follower N2 acknowledged the noop, with entries
/// 2..=7 proposed and sent to N2 one by one (it pipelines: nothing acknowledged past 1).
fn pipelining_leader() -> Node {
    let mut leader = leader_with(3, small_window());
    let now = AFTER_TIMEOUT_MS + 1;
    leader.step(now, msg(N2, append_ok(1, 1, 1)));
    leader.take_effects();
    propose(&mut leader, now, 6);
    let sent = appends_to(&leader.take_effects(), N2);
    assert_eq!(
        vec![
            (1, vec![2]),
            (2, vec![3]),
            (3, vec![4]),
            (4, vec![5]),
            (5, vec![6]),
            (6, vec![7]),
        ],
        sent
    );
    leader
}

#[test]
fn stale_rejection_does_not_rewind_below_the_match_index() {
    // Why: a rejection that left the follower before its later acks (its log end then was at
    // or below what it has since acknowledged) says nothing new; acting on it rewound the
    // follower and resent entries it already holds, over and over under reordering.
    let mut leader = pipelining_leader();
    let now = AFTER_TIMEOUT_MS + 2;
    leader.step(now, msg(N2, append_ok(1, 5, 7)));
    assert!(appends_to(&leader.take_effects(), N2).is_empty());
    // Sent when N2's log ended at 2 (it had not yet received entry 3).
    leader.step(now, msg(N2, rejection(1, 3, 2)));
    assert_eq!(Vec::<Effect>::new(), leader.take_effects());
    // The pipeline goes on from where it was: entry 8 follows 7.
    propose(&mut leader, now, 1);
    assert_eq!(vec![(7, vec![8])], appends_to(&leader.take_effects(), N2));
}

#[test]
fn a_rejection_probes_with_one_batch_instead_of_resending_the_window() {
    // Why: after a genuine rejection the leader must find the follower's log end again: one
    // request in flight (Probe) until it answers, not the whole window per rejection; further
    // rejections with the same hint (reordered requests of the old window) are ignored; and a
    // success resumes pipelining after what was already sent.
    let mut leader = pipelining_leader();
    let now = AFTER_TIMEOUT_MS + 2;
    leader.step(now, msg(N2, rejection(1, 2, 1)));
    assert_eq!(
        vec![(1, vec![2, 3])],
        appends_to(&leader.take_effects(), N2)
    );
    for _ in 0..3 {
        leader.step(now, msg(N2, rejection(1, 2, 1)));
        assert_eq!(Vec::<Effect>::new(), leader.take_effects());
    }
    // The original requests arrived after all: N2 holds 2..=7.
    leader.step(now + 1, msg(N2, append_ok(1, 7, 7)));
    assert!(appends_to(&leader.take_effects(), N2).is_empty());
    propose(&mut leader, now + 1, 1);
    assert_eq!(vec![(7, vec![8])], appends_to(&leader.take_effects(), N2));
}

#[test]
fn an_older_success_never_moves_the_match_index_back() {
    // Why: acks reorder too; the match index only grows, or commit could count less than is
    // durable and the leader would resend what the follower holds.
    let mut leader = pipelining_leader();
    let now = AFTER_TIMEOUT_MS + 2;
    leader.step(now, msg(N2, append_ok(1, 7, 7)));
    leader.step(now, msg(N2, append_ok(1, 3, 3)));
    assert!(appends_to(&leader.take_effects(), N2).is_empty());
    propose(&mut leader, now, 1);
    assert_eq!(vec![(7, vec![8])], appends_to(&leader.take_effects(), N2));
}

#[test]
fn an_unresponsive_follower_is_probed_with_one_batch() {
    // Why: a follower that stopped answering (down, or its requests lost) gets one request per
    // resend period, not the whole window each time; when it answers, pipelining resumes.
    let mut leader = pipelining_leader();
    let resend_at = AFTER_TIMEOUT_MS + 1 + Config::default().append_resend_ms;
    leader.step(resend_at, Input::Tick);
    assert_eq!(
        vec![(1, vec![2, 3])],
        appends_to(&leader.take_effects(), N2)
    );
    leader.step(resend_at + 3, msg(N2, append_ok(1, 3, 3)));
    assert_eq!(
        vec![(3, vec![4, 5]), (5, vec![6, 7])],
        appends_to(&leader.take_effects(), N2)
    );
}

#[test]
fn follower_keeps_a_reordered_batch_instead_of_rejecting_it() {
    // Why: once it has accepted a request from this leader, a follower that receives a later
    // batch before an earlier one keeps it until the gap fills: a rejection would only make
    // the leader resend what is already on its way.
    let mut follower = fresh(N2, 3);
    let first = noop(0, 1, 1);
    let second = Entry::new(
        first.checksum,
        LogIndex(2),
        Term(1),
        EntryKind::Normal,
        vec![2],
    );
    let third = Entry::new(
        second.checksum,
        LogIndex(3),
        Term(1),
        EntryKind::Normal,
        vec![3],
    );
    follower.step(10, msg(N1, append(1, (0, 0), vec![first.clone()], 0)));
    follower.step(11, persisted(1));
    assert_eq!(
        vec![
            hard_state(1, None),
            Effect::Persist(PersistOp::Append {
                entries: vec![first]
            }),
            sync(1),
            send(N1, append_ok(1, 1, 1)),
        ],
        follower.take_effects()
    );
    follower.step(12, msg(N1, append(1, (2, 1), vec![third.clone()], 1)));
    assert_eq!(Vec::<Effect>::new(), follower.take_effects());
    follower.step(13, msg(N1, append(1, (1, 1), vec![second.clone()], 1)));
    let effects = follower.take_effects();
    assert_eq!(
        vec![
            Effect::Persist(PersistOp::Append {
                entries: vec![second]
            }),
            Effect::Persist(PersistOp::Append {
                entries: vec![third]
            }),
            sync(2),
        ],
        effects[..3].to_vec()
    );
    follower.step(14, persisted(2));
    assert_eq!(vec![send(N1, append_ok(1, 3, 3))], follower.take_effects());
}

/// Node `id` of 3 restarted with entries 1..=3 of term 1 and hard state term 1 (the state after
/// the term-1 leader crashed), stepped once at time 0.
fn survivor_of_term_1(id: NodeId) -> Node {
    let recovered = RecoveredState {
        rejoining: false,
        hard_state: HardState {
            commit_mark: LogIndex(0),
            log_end_mark: LogIndex(0),
            forgotten_through: LogIndex(0),
            term: Term(1),
            voted_for: None,
        },
        entries: chain(&[1, 1, 1]),
    };
    let mut node = node_with(id, 3, recovered);
    node.step(0, Input::Tick);
    assert_eq!(Vec::<Effect>::new(), node.take_effects());
    node
}

/// Steps `node` at `now` with `Persisted` for every `Sync` it asks for (an instant disk) until
/// it asks for nothing more; returns the messages it sent, in order.
fn settle(node: &mut Node, now: u64) -> Vec<(NodeId, Message)> {
    let mut sent = Vec::new();
    loop {
        let effects = node.take_effects();
        if effects.is_empty() {
            return sent;
        }
        for effect in effects {
            match effect {
                Effect::Send { to, msg } => sent.push((to, msg)),
                Effect::Sync { sync_id } => node.step(now, Input::Persisted { sync_id }),
                _ => {}
            }
        }
    }
}

/// Node 1 elected leader of term 2 (node 3 is down), with proposals for entries 5 and 6
/// pipelined behind its noop (4); returns it with its requests to node 2, in sending order.
fn new_leader_pipelining(now: u64) -> (Node, Vec<Message>) {
    let mut leader = survivor_of_term_1(N1);
    leader.step(now, Input::Tick);
    leader.step(now, msg(N2, granted(2, true)));
    let mut sent = settle(&mut leader, now);
    leader.step(now, msg(N2, granted(2, false)));
    assert_eq!(Role::Leader, leader.status().role);
    sent.extend(settle(&mut leader, now));
    propose(&mut leader, now, 2);
    sent.extend(settle(&mut leader, now));
    let requests: Vec<Message> = sent
        .into_iter()
        .filter(|(to, msg)| *to == N2 && matches!(msg, Message::AppendRequest { .. }))
        .map(|(_, msg)| msg)
        .collect();
    assert_eq!(
        vec![(3, vec![4]), (4, vec![5]), (5, vec![6])],
        appends_to(
            &requests
                .iter()
                .map(|msg| send(N2, msg.clone()))
                .collect::<Vec<_>>(),
            N2
        )
    );
    (leader, requests)
}

fn is_rejection(msg: &Message) -> bool {
    matches!(msg, Message::AppendResponse { success: false, .. })
}

#[test]
fn a_new_leader_commits_at_once_when_its_first_requests_overtake_each_other() {
    // Why (sim leader_crash, seed 171): a follower that had not yet heard from the new leader
    // got its second request (prev = the noop) before the first (prev = the old log's end). It
    // rejected and dropped it, then accepted the first and kept the later ones as early
    // batches; its rejection reached the leader after the ack of the noop, so the leader took
    // it as stale, and nothing moved until the resend timer (1 s in which no client write
    // committed). Here the network delivers the requests in that order and each rejection
    // after the acks sent with it (then, the other way round); the leader must commit both
    // proposals without a timer.
    for rejections_first in [false, true] {
        let now = AFTER_TIMEOUT_MS;
        let (mut leader, mut requests) = new_leader_pipelining(now);
        requests.swap(0, 1);
        let mut follower = survivor_of_term_1(N2);
        while !requests.is_empty() {
            let mut responses = Vec::new();
            for request in requests.drain(..) {
                follower.step(now, msg(N1, request));
                responses.extend(settle(&mut follower, now).into_iter().map(|(_, msg)| msg));
            }
            responses.sort_by_key(|msg| is_rejection(msg) != rejections_first);
            for response in responses {
                leader.step(now, msg(N2, response));
                requests.extend(
                    settle(&mut leader, now)
                        .into_iter()
                        .filter(|(to, _)| *to == N2)
                        .map(|(_, msg)| msg),
                );
            }
        }
        assert_eq!(
            LogIndex(6),
            leader.status().commit_index,
            "rejections first: {rejections_first}"
        );
        assert_eq!(LogIndex(6), follower.status().last_index);
    }
}

#[test]
fn a_follower_new_to_the_leader_keeps_a_gap_batch_and_still_reports_its_log_end() {
    // Why: before a follower has accepted anything from a new leader, a request beyond its log
    // may be reordered (keep it, or the leader has to resend it) or its log may lag (the leader
    // must learn where it ends at once, not after a resend timeout): it does both.
    let mut follower = survivor_of_term_1(N2);
    let log = chain(&[1, 1, 1]);
    let fourth = noop(log[2].checksum, 4, 2);
    let fifth = Entry::new(
        fourth.checksum,
        LogIndex(5),
        Term(2),
        EntryKind::Normal,
        vec![5],
    );
    follower.step(10, msg(N1, append(2, (4, 2), vec![fifth.clone()], 0)));
    assert_eq!(
        vec![hard_state(2, None), send(N1, rejection(2, 4, 3)), sync(1),],
        follower.take_effects()
    );
    follower.step(11, persisted(1));
    assert_eq!(Vec::<Effect>::new(), follower.take_effects());
    follower.step(12, msg(N1, append(2, (3, 1), vec![fourth.clone()], 0)));
    assert_eq!(
        vec![
            Effect::Persist(PersistOp::Append {
                entries: vec![fourth]
            }),
            Effect::Persist(PersistOp::Append {
                entries: vec![fifth]
            }),
            sync(2),
            send(N1, append_ok(2, 3, 5)),
        ],
        follower.take_effects()
    );
    follower.step(13, persisted(2));
    assert_eq!(vec![send(N1, append_ok(2, 5, 5))], follower.take_effects());
}

#[test]
fn a_follower_that_dropped_a_batch_for_want_of_room_rejects_again_once_its_log_grows() {
    // Why: the rejection sent when a request finds no room may reach the leader after the
    // acks for the gap before it, and a leader takes a gap rejection at or below what it has
    // seen acknowledged as stale: the dropped entries would wait for the resend timer. Once
    // the gap fills, the follower rejects again with a hint beyond every ack it has sent.
    let mut follower = fresh_with(N2, 3, small_window());
    let log = chain(&[1; 11]);
    follower.step(10, msg(N1, append(1, (0, 0), log[..1].to_vec(), 0)));
    follower.step(11, persisted(1));
    assert_eq!(
        Some(&send(N1, append_ok(1, 1, 1))),
        follower.take_effects().last()
    );
    // Entries 3..=10 fill the room for early batches (inflight_entries_max = 8); 11 is dropped.
    follower.step(12, msg(N1, append(1, (2, 1), log[2..10].to_vec(), 1)));
    assert_eq!(Vec::<Effect>::new(), follower.take_effects());
    follower.step(12, msg(N1, append(1, (10, 1), log[10..].to_vec(), 1)));
    assert_eq!(vec![send(N1, rejection(1, 2, 1))], follower.take_effects());
    follower.step(13, msg(N1, append(1, (1, 1), log[1..2].to_vec(), 1)));
    assert_eq!(
        vec![
            Effect::Persist(PersistOp::Append {
                entries: log[1..2].to_vec()
            }),
            Effect::Persist(PersistOp::Append {
                entries: log[2..10].to_vec()
            }),
            send(N1, rejection(1, 11, 10)),
            sync(2),
            Effect::Apply {
                entries: log[..1].to_vec()
            },
        ],
        follower.take_effects()
    );
    follower.step(14, persisted(2));
    assert_eq!(
        vec![send(N1, append_ok(1, 10, 10))],
        follower.take_effects()
    );
}
