//! Reads: ReadIndex (Raft §6.4) and reads through the log (DLedger RAFT_LOG_READ).

use super::*;
use crate::raft::ReadOutcome;
use crate::types::ReadId;

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

/// A heartbeat of `leader` in `term` carrying ReadIndex round `round`.
fn heartbeat(term: u64, leader: NodeId, prev: (u64, u64), commit: u64, round: u64) -> Message {
    Message::AppendRequest {
        term: Term(term),
        leader,
        prev_log_index: LogIndex(prev.0),
        prev_log_term: Term(prev.1),
        entries: Vec::new(),
        leader_commit: LogIndex(commit),
        read_round: round,
    }
}

/// N1's heartbeat in term 1 carrying round `round`.
fn round_heartbeat(prev: (u64, u64), commit: u64, round: u64) -> Message {
    heartbeat(1, N1, prev, commit, round)
}

/// A success response in `term` matching `matched` (also the follower's last index) that
/// echoes round `round`.
fn echo(term: u64, matched: u64, round: u64) -> Message {
    Message::AppendResponse {
        term: Term(term),
        success: true,
        match_or_hint: LogIndex(matched),
        last_log_index: LogIndex(matched),
        read_round: round,
        forgot: false,
    }
}

fn read_reply(read: u64, outcome: ReadOutcome) -> Effect {
    Effect::ReadReply {
        read: ReadId(read),
        outcome,
    }
}

fn ready(read: u64, index: u64) -> Effect {
    read_reply(
        read,
        ReadOutcome::Ready {
            index: LogIndex(index),
        },
    )
}

fn read_index(read: u64) -> Input {
    Input::ReadIndex { read: ReadId(read) }
}

/// `leader_of(3)` whose no-op (index 1) N2 has acknowledged: committed and applied. N3 has
/// acknowledged nothing (match index 0).
fn committed_leader() -> Node {
    let mut leader = leader_of(3);
    leader.step(AFTER_TIMEOUT_MS + 1, msg(N2, append_ok(1, 1, 1)));
    leader.take_effects();
    assert_eq!(LogIndex(1), leader.status().applied_index);
    leader
}

#[test]
fn read_index_sends_a_heartbeat_round_and_answers_once_a_majority_echoes_it() {
    // Why: Raft §6.4: a leader may have been deposed without knowing it; it answers a read
    // only once a majority of its term confirmed it after the read arrived. It sends a
    // heartbeat round tagged with a new round number at once (each anchored at the follower's
    // match index) and appends nothing.
    let mut leader = committed_leader();
    let now = AFTER_TIMEOUT_MS + 10;
    leader.step(now, read_index(1));
    assert_eq!(
        vec![
            send(N2, round_heartbeat((1, 1), 1, 1)),
            send(N3, round_heartbeat((0, 0), 1, 1)),
        ],
        leader.take_effects()
    );
    assert_eq!(
        LogIndex(1),
        leader.status().last_index,
        "no entry for a read"
    );
    // A response echoing only an earlier round (sent before the read) confirms nothing.
    leader.step(now + 1, msg(N3, echo(1, 1, 0)));
    assert_eq!(Vec::<Effect>::new(), leader.take_effects());
    // N2 echoing round 1 makes a majority with the leader: the read is served at the commit
    // index it arrived with.
    leader.step(now + 2, msg(N2, echo(1, 1, 1)));
    assert_eq!(vec![ready(1, 1)], leader.take_effects());
    assert_eq!(LogIndex(1), leader.status().last_index);
}

#[test]
fn a_read_waits_while_only_a_minority_echoed_its_round() {
    // Why: a leader cut off with a minority must not count it as a majority: in a group of
    // five the leader and one follower echoing the round are two of five; the third answers.
    let mut leader = leader_of(5);
    let now = AFTER_TIMEOUT_MS + 1;
    leader.step(now, msg(N2, append_ok(1, 1, 1)));
    leader.step(now, msg(N3, append_ok(1, 1, 1)));
    leader.take_effects();
    assert_eq!(LogIndex(1), leader.status().commit_index);
    leader.step(now + 1, read_index(1));
    assert_eq!(
        vec![
            send(N2, round_heartbeat((1, 1), 1, 1)),
            send(N3, round_heartbeat((1, 1), 1, 1)),
            send(NodeId(4), round_heartbeat((0, 0), 1, 1)),
            send(NodeId(5), round_heartbeat((0, 0), 1, 1)),
        ],
        leader.take_effects()
    );
    leader.step(now + 2, msg(N2, echo(1, 1, 1)));
    assert_eq!(Vec::<Effect>::new(), leader.take_effects());
    // The same follower again, and another one echoing an older round: still two of five.
    leader.step(now + 3, msg(N2, echo(1, 1, 1)));
    leader.step(now + 3, msg(N3, echo(1, 1, 0)));
    assert_eq!(Vec::<Effect>::new(), leader.take_effects());
    leader.step(now + 4, msg(NodeId(4), echo(1, 1, 1)));
    assert_eq!(vec![ready(1, 1)], leader.take_effects());
}

#[test]
fn a_new_leader_takes_reads_only_once_an_entry_of_its_term_is_committed() {
    // Why: §6.4 step 1: until an entry of its term commits, a new leader's commit index may
    // lag what the previous leader acknowledged. The read waits, with no round sent; when the
    // no-op commits, the read takes that commit index and its round goes out.
    // Node 1 wins term 1; its no-op (index 1, sync 2) is not durable yet.
    let mut leader = fresh(N1, 3);
    let now = AFTER_TIMEOUT_MS;
    leader.step(now, Input::Tick);
    leader.step(now, msg(N2, granted(1, true)));
    leader.step(now, persisted(1));
    leader.step(now, msg(N2, granted(1, false)));
    assert_eq!(Role::Leader, leader.status().role);
    leader.take_effects();
    leader.step(now + 1, read_index(1));
    assert_eq!(Vec::<Effect>::new(), leader.take_effects());
    // N2 holds the no-op durably, but the leader does not yet: nothing of its term commits.
    leader.step(now + 2, msg(N2, append_ok(1, 1, 1)));
    assert_eq!(Vec::<Effect>::new(), leader.take_effects());
    assert_eq!(LogIndex(0), leader.status().commit_index);
    // The no-op becomes durable: 1 commits, and the read's round goes out with read index 1.
    leader.step(now + 3, persisted(2));
    assert_eq!(
        vec![
            send(N2, round_heartbeat((1, 1), 1, 1)),
            send(N3, round_heartbeat((0, 0), 1, 1)),
            Effect::Apply {
                entries: vec![leader.log()[0].clone()]
            },
        ],
        leader.take_effects()
    );
    leader.step(now + 4, msg(N3, echo(1, 1, 1)));
    assert_eq!(vec![ready(1, 1)], leader.take_effects());
    assert_eq!(
        LogIndex(1),
        leader.status().last_index,
        "no entry for a read"
    );
}

#[test]
fn reads_arriving_while_a_round_is_in_flight_share_the_next_round() {
    // Why: batching: one round in flight at a time, however many reads come; the reads that
    // arrived meanwhile go out together as soon as it is confirmed.
    let mut leader = committed_leader();
    let now = AFTER_TIMEOUT_MS + 10;
    leader.step(now, read_index(1));
    leader.take_effects();
    leader.step(now, read_index(2));
    leader.step(now, read_index(3));
    assert_eq!(Vec::<Effect>::new(), leader.take_effects());
    // Round 1 confirmed: read 1 is served and round 2 goes out for reads 2 and 3.
    leader.step(now + 1, msg(N2, echo(1, 1, 1)));
    assert_eq!(
        vec![
            send(N2, round_heartbeat((1, 1), 1, 2)),
            send(N3, round_heartbeat((0, 0), 1, 2)),
            ready(1, 1),
        ],
        leader.take_effects()
    );
    // An echo of round 1 does not confirm round 2; an echo of round 2 does.
    leader.step(now + 2, msg(N3, echo(1, 1, 1)));
    assert_eq!(Vec::<Effect>::new(), leader.take_effects());
    leader.step(now + 3, msg(N3, echo(1, 1, 2)));
    assert_eq!(vec![ready(2, 1), ready(3, 1)], leader.take_effects());
    assert_eq!(
        LogIndex(1),
        leader.status().last_index,
        "no entry for reads"
    );
}

#[test]
fn a_partitioned_leader_answers_no_read_and_refuses_them_when_it_steps_down() {
    // Why: the stale read ReadIndex prevents: a leader cut off from its majority (which may
    // have elected another leader and committed more) must not serve reads from its state;
    // its periodic heartbeats repeat the round, nobody echoes it, and when check quorum makes
    // it step down the reads fail (NOT_LEADER), never answer stale.
    let mut leader = committed_leader();
    let now = AFTER_TIMEOUT_MS + 10;
    leader.step(now, read_index(1));
    assert_eq!(
        vec![
            send(N2, round_heartbeat((1, 1), 1, 1)),
            send(N3, round_heartbeat((0, 0), 1, 1)),
        ],
        leader.take_effects()
    );
    let mut at = now;
    let mut repeated = 0;
    while leader.status().role == Role::Leader {
        at = leader.next_deadline_ms();
        leader.step(at, Input::Tick);
        let effects = leader.take_effects();
        if leader.status().role != Role::Leader {
            assert_eq!(
                vec![read_reply(1, ReadOutcome::NotLeader { leader_hint: None })],
                effects
            );
            break;
        }
        for effect in &effects {
            match effect {
                Effect::Send {
                    msg: Message::AppendRequest { read_round, .. },
                    ..
                } => {
                    assert_eq!(1, *read_round, "every request repeats the round");
                    repeated += 1;
                }
                Effect::ReadReply { .. } => panic!("read answered while cut off at {at}"),
                _ => {}
            }
        }
    }
    assert!(repeated > 0, "periodic heartbeats repeat the round");
    assert_eq!(AFTER_TIMEOUT_MS + 1 + 6000, at);
    assert_eq!(
        LogIndex(1),
        leader.status().last_index,
        "no entry for a read"
    );
}

#[test]
fn a_follower_echoes_the_highest_read_round_of_its_current_term() {
    // Why: the echo confirms only that the follower was in the leader's term after it got
    // the round: a reordered older request does not lower it, and a new term starts over
    // (a round of the old leader must not confirm a read of the new one).
    let mut follower = fresh(N2, 3);
    follower.step(10, msg(N1, round_heartbeat((0, 0), 0, 3)));
    assert_eq!(vec![hard_state(1, None), sync(1)], follower.take_effects());
    follower.step(11, persisted(1));
    assert_eq!(vec![send(N1, echo(1, 0, 3))], follower.take_effects());
    follower.step(12, msg(N1, round_heartbeat((0, 0), 0, 2)));
    assert_eq!(vec![send(N1, echo(1, 0, 3))], follower.take_effects());
    // N3 leads term 2 and has sent round 1 so far.
    follower.step(13, msg(N3, heartbeat(2, N3, (0, 0), 0, 1)));
    assert_eq!(vec![hard_state(2, None), sync(2)], follower.take_effects());
    follower.step(14, persisted(2));
    assert_eq!(vec![send(N3, echo(2, 0, 1))], follower.take_effects());
}

#[test]
fn a_follower_refuses_reads_naming_its_leader() {
    // Why: only the leader can confirm a read; a follower points the client to it.
    let mut follower = fresh(N2, 3);
    follower.step(10, msg(N1, append(1, (0, 0), Vec::new(), 0)));
    follower.take_effects();
    follower.step(11, read_index(1));
    follower.step(11, Input::LogRead { read: ReadId(2) });
    let not_leader = ReadOutcome::NotLeader {
        leader_hint: Some(N1),
    };
    assert_eq!(
        vec![read_reply(1, not_leader.clone()), read_reply(2, not_leader)],
        follower.take_effects()
    );
}

#[test]
fn reads_are_refused_busy_during_a_leadership_transfer() {
    // Why: DLedger's handleRead refuses every read mode with LEADER_TRANSFERRING; the leader
    // must not grow its log (the target is catching up to it) nor serve what it may lose.
    let mut leader = committed_leader();
    let now = AFTER_TIMEOUT_MS + 10;
    leader.step(now, Input::TransferLeadership { to: N3 });
    leader.take_effects();
    leader.step(now, read_index(1));
    leader.step(now, Input::LogRead { read: ReadId(2) });
    assert_eq!(
        vec![
            read_reply(1, ReadOutcome::Busy),
            read_reply(2, ReadOutcome::Busy)
        ],
        leader.take_effects()
    );
}

#[test]
fn log_read_appends_a_noop_and_answers_when_it_is_applied() {
    // Why: DLedger RAFT_LOG_READ (DLedgerServer.dealRaftLogRead) appends an empty NOOP entry
    // and completes the read when that entry is applied.
    let mut leader = committed_leader();
    let now = AFTER_TIMEOUT_MS + 10;
    leader.step(now, Input::LogRead { read: ReadId(1) });
    let entry = noop(leader.log()[0].checksum, 2, 1);
    assert_eq!(
        vec![
            Effect::Persist(PersistOp::Append {
                entries: vec![entry.clone()]
            }),
            sync(3),
            send(N2, append(1, (1, 1), vec![entry.clone()], 1)),
            send(N3, append(1, (1, 1), vec![entry.clone()], 1)),
        ],
        leader.take_effects()
    );
    leader.step(now + 1, msg(N2, append_ok(1, 2, 2)));
    assert_eq!(Vec::<Effect>::new(), leader.take_effects());
    leader.step(now + 2, persisted(3));
    assert_eq!(
        vec![
            Effect::Apply {
                entries: vec![entry]
            },
            ready(1, 2)
        ],
        leader.take_effects()
    );
}

#[test]
fn log_read_not_applied_in_time_is_answered_timeout() {
    // Why: DLedger's pending closures time out with WAIT_QUORUM_ACK_TIMEOUT after
    // maxWaitAckTimeMs, reads through the log included.
    let mut leader = committed_leader();
    let now = AFTER_TIMEOUT_MS + 10;
    leader.step(now, Input::LogRead { read: ReadId(1) });
    leader.take_effects();
    leader.step(now + 2000, msg(N2, append_ok(1, 1, 1)));
    leader.step(now + 2500, Input::Tick);
    let effects = leader.take_effects();
    assert!(
        effects.contains(&read_reply(1, ReadOutcome::Timeout)),
        "{effects:?}"
    );
}

#[test]
fn reads_beyond_pending_reads_max_are_refused_busy() {
    // Why: every queue has a bound; reads waiting on a leader that cannot confirm them (cut
    // off, or followers lagging) must not grow without limit.
    let config = Config {
        pending_reads_max: 2,
        ..Config::default()
    };
    let mut leader = leader_with(3, config);
    let now = AFTER_TIMEOUT_MS + 10;
    leader.step(now, read_index(1));
    leader.step(now, read_index(2));
    leader.take_effects();
    leader.step(now, read_index(3));
    assert_eq!(
        vec![read_reply(3, ReadOutcome::Busy)],
        leader.take_effects()
    );
}
