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

/// `leader_of(3)` whose no-op (index 1) N2 has acknowledged: committed and applied.
fn committed_leader() -> Node {
    let mut leader = leader_of(3);
    leader.step(AFTER_TIMEOUT_MS + 1, msg(N2, append_ok(1, 1, 1)));
    leader.take_effects();
    assert_eq!(LogIndex(1), leader.status().applied_index);
    leader
}

#[test]
fn read_index_waits_until_a_majority_acknowledges_a_barrier_after_the_read() {
    // Why: Raft §6.4: a leader may have been deposed without knowing it; it answers a read
    // only once a majority of its term confirmed it after the read arrived. The confirmation
    // is a barrier entry created after the read: here a no-op, pushed at once.
    let mut leader = committed_leader();
    let now = AFTER_TIMEOUT_MS + 10;
    leader.step(now, read_index(1));
    let barrier = noop(leader.log()[0].checksum, 2, 1);
    assert_eq!(
        vec![
            Effect::Persist(PersistOp::Append {
                entries: vec![barrier.clone()]
            }),
            sync(3),
            send(N2, append(1, (1, 1), vec![barrier.clone()], 1)),
            send(N3, append(1, (1, 1), vec![barrier], 1)),
        ],
        leader.take_effects()
    );
    // An acknowledgement of what was there before the read confirms nothing.
    leader.step(now + 1, msg(N3, append_ok(1, 1, 1)));
    assert_eq!(Vec::<Effect>::new(), leader.take_effects());
    // N2 reaching the barrier makes a majority: the read is served at the commit index it
    // arrived with (applied already), without waiting for the barrier to commit.
    leader.step(now + 2, msg(N2, append_ok(1, 2, 2)));
    assert_eq!(vec![ready(1, 1)], leader.take_effects());
    assert_eq!(LogIndex(1), leader.status().commit_index);
}

#[test]
fn read_index_on_a_new_leader_waits_for_an_entry_of_its_term() {
    // Why: §6.4 step 1: until an entry of its term commits, a new leader's commit index may
    // lag what the previous leader acknowledged; the read is served at the no-op's index.
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
    leader.take_effects();
    // N2 holds the no-op and the barrier (2) durably: the barrier is confirmed, but nothing of
    // the leader's term is committed (its own no-op is not durable): the read waits.
    leader.step(now + 2, msg(N2, append_ok(1, 2, 2)));
    assert_eq!(Vec::<Effect>::new(), leader.take_effects());
    assert_eq!(LogIndex(0), leader.status().commit_index);
    // The no-op becomes durable here: 1 commits, and the read is served at 1, not at the
    // commit index 0 it arrived with.
    leader.step(now + 3, persisted(2));
    assert_eq!(
        vec![
            Effect::Apply {
                entries: vec![leader.log()[0].clone()]
            },
            ready(1, 1)
        ],
        leader.take_effects()
    );
}

#[test]
fn reads_arriving_while_a_barrier_is_in_flight_share_the_next_one() {
    // Why: batching: one barrier (at most one no-op) per round trip however many reads come.
    // A client's entry appended after the waiting reads serves as their barrier.
    let mut leader = committed_leader();
    let now = AFTER_TIMEOUT_MS + 10;
    leader.step(now, read_index(1));
    leader.step(now, read_index(2));
    leader.step(now, read_index(3));
    let appended: usize = leader
        .take_effects()
        .iter()
        .filter(|effect| matches!(effect, Effect::Persist(PersistOp::Append { .. })))
        .count();
    assert_eq!(1, appended, "one barrier for the first read");
    leader.step(
        now + 1,
        Input::ClientPropose {
            proposal: ProposalId(7),
            data: b"x".to_vec(),
        },
    );
    leader.take_effects();
    assert_eq!(LogIndex(3), leader.status().last_index);
    // N2 reaches the first barrier (2): read 1 is served; reads 2 and 3 take the proposal (3)
    // as their barrier, no new no-op.
    leader.step(now + 2, msg(N2, append_ok(1, 2, 3)));
    assert_eq!(vec![ready(1, 1)], leader.take_effects());
    assert_eq!(LogIndex(3), leader.status().last_index);
    leader.step(now + 3, msg(N2, append_ok(1, 3, 3)));
    assert_eq!(vec![ready(2, 1), ready(3, 1)], leader.take_effects());
}

#[test]
fn a_partitioned_leader_answers_no_read_and_refuses_them_when_it_steps_down() {
    // Why: the stale read ReadIndex prevents: a leader cut off from its majority (which may
    // have elected another leader and committed more) must not serve reads from its state;
    // when check quorum makes it step down, the reads fail (NOT_LEADER), never answer stale.
    let mut leader = committed_leader();
    let now = AFTER_TIMEOUT_MS + 10;
    leader.step(now, read_index(1));
    leader.take_effects();
    let mut at = now;
    while leader.status().role == Role::Leader {
        at = leader.next_deadline_ms();
        leader.step(at, Input::Tick);
        let effects = leader.take_effects();
        if leader.status().role == Role::Leader {
            assert!(
                effects
                    .iter()
                    .all(|effect| !matches!(effect, Effect::ReadReply { .. })),
                "read answered while cut off at {at}: {effects:?}"
            );
        } else {
            assert_eq!(
                vec![read_reply(1, ReadOutcome::NotLeader { leader_hint: None })],
                effects
            );
        }
    }
    assert_eq!(AFTER_TIMEOUT_MS + 1 + 6000, at);
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
