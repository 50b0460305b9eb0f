//! Replication: what a leader sends, what a follower persists and acknowledges, and commit.

use super::*;

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

fn normal(previous: u32, index: u64, term: u64, data: &[u8]) -> Entry {
    Entry::new(
        previous,
        LogIndex(index),
        Term(term),
        EntryKind::Normal,
        data.to_vec(),
    )
}

#[test]
fn leader_proposal_is_persisted_synced_and_pushed_at_once() {
    // Why: DLedger pushes new entries as soon as they are appended; the leader's own write and
    // the push run in parallel, the Sync covering the write within the same step.
    let mut leader = leader_of(3);
    let now = AFTER_TIMEOUT_MS + 5;
    leader.step(
        now,
        Input::ClientPropose {
            proposal: ProposalId(1),
            data: b"a".to_vec(),
        },
    );
    let noop = leader.log()[0].clone();
    let entry = normal(noop.checksum, 2, 1, b"a");
    let effects = leader.take_effects();
    assert_eq!(
        vec![
            Effect::Persist(PersistOp::Append {
                entries: vec![entry.clone()]
            }),
            sync(3),
        ],
        effects[..2].to_vec()
    );
    // The noop went out when the leader was elected; only the new entry follows it.
    assert_eq!(
        vec![
            send(N2, append(1, (1, 1), vec![entry.clone()], 0)),
            send(N3, append(1, (1, 1), vec![entry.clone()], 0)),
        ],
        effects[2..].to_vec()
    );
}

#[test]
fn follower_acknowledges_entries_only_after_they_are_durable() {
    // Why: an ack counts toward commit; acking an entry that a crash can still lose would let a
    // "committed" entry vanish from a majority.
    let mut follower = fresh(N2, 3);
    let first = noop(0, 1, 1);
    let second = normal(first.checksum, 2, 1, b"x");
    follower.step(
        10,
        msg(
            N1,
            append(1, (0, 0), vec![first.clone(), second.clone()], 0),
        ),
    );
    assert_eq!(
        vec![
            hard_state(1, None),
            Effect::Persist(PersistOp::Append {
                entries: vec![first.clone(), second.clone()]
            }),
            sync(1),
        ],
        follower.take_effects()
    );
    follower.step(12, persisted(1));
    assert_eq!(vec![send(N1, append_ok(1, 2, 2))], follower.take_effects());
    // The leader's commit then reaches the follower, which applies in order.
    follower.step(20, msg(N1, append(1, (2, 1), Vec::new(), 2)));
    assert_eq!(
        vec![
            send(N1, append_ok(1, 2, 2)),
            Effect::Apply {
                entries: vec![first, second]
            },
        ],
        follower.take_effects()
    );
    assert_eq!(LogIndex(2), follower.status().commit_index);
}

#[test]
fn follower_rejects_a_gap_with_a_hint_to_its_log_end() {
    // Why: the prev index/term check (§5.3) is what keeps logs matching; the hint lets the
    // leader back up in one round trip.
    let mut follower = fresh(N2, 3);
    follower.step(10, msg(N1, append(1, (5, 1), Vec::new(), 0)));
    assert_eq!(
        vec![
            hard_state(1, None),
            send(
                N1,
                Message::AppendResponse {
                    term: Term(1),
                    success: false,
                    match_or_hint: LogIndex(1),
                    last_log_index: LogIndex(0),
                    read_round: 0,
                    forgot: false,
                }
            ),
            sync(1),
        ],
        follower.take_effects()
    );
}

#[test]
fn follower_truncates_a_conflicting_uncommitted_suffix() {
    // Why: entries of a deposed leader that never committed must give way to the new leader's;
    // the disk must see the truncation before the new entries.
    let recovered = RecoveredState {
        rejoining: false,
        hard_state: HardState {
            commit_mark: LogIndex(0),
            log_end_mark: LogIndex(0),
            forgotten_through: LogIndex(0),
            term: Term(2),
            voted_for: None,
        },
        entries: chain(&[1, 2, 2]),
    };
    let mut follower = node_with(N2, 3, recovered);
    follower.step(0, Input::Tick);
    let kept = follower.log()[0].clone();
    let replacement = normal(kept.checksum, 2, 3, b"new");
    follower.step(10, msg(N1, append(3, (1, 1), vec![replacement.clone()], 1)));
    assert_eq!(
        vec![
            hard_state(3, None),
            Effect::Persist(PersistOp::TruncateFrom { from: LogIndex(2) }),
            Effect::Persist(PersistOp::Append {
                entries: vec![replacement.clone()]
            }),
            sync(1),
            Effect::Apply {
                entries: vec![kept.clone()]
            },
        ],
        follower.take_effects()
    );
    assert_eq!(vec![kept, replacement], follower.log().to_vec());
    assert_eq!(LogIndex(1), follower.status().durable_index);
}

#[test]
#[should_panic(expected = "truncating committed entry")]
fn follower_refuses_to_truncate_a_committed_entry() {
    // Why: a committed entry is forever (§5.4); a leader asking to overwrite one is a safety
    // bug somewhere, and the node must stop rather than diverge.
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
    let mut follower = node_with(N2, 3, recovered);
    follower.step(0, Input::Tick);
    let first = follower.log()[0].clone();
    // Learn commit 2 from a leader of term 2 ...
    follower.step(10, msg(N1, append(2, (2, 2), Vec::new(), 2)));
    // ... then a (broken) leader of term 3 sends a different entry at index 2.
    let other = normal(first.checksum, 2, 3, b"evil");
    follower.step(20, msg(N3, append(3, (1, 1), vec![other], 2)));
}

#[test]
fn leader_commits_on_a_durable_majority_and_replies() {
    // Why: commit needs the entry durable on a majority, the leader counting its own log only
    // up to its durable index.
    let mut leader = leader_of(3);
    let now = AFTER_TIMEOUT_MS + 5;
    leader.step(
        now,
        Input::ClientPropose {
            proposal: ProposalId(1),
            data: b"a".to_vec(),
        },
    );
    leader.take_effects();
    // A follower holds both entries durably, but the leader's own write of entry 2 is not
    // durable yet: 1 of 3 is not a majority for index 2, index 1 commits.
    leader.step(now + 1, msg(N2, append_ok(1, 2, 2)));
    let effects = leader.take_effects();
    assert_eq!(LogIndex(1), leader.status().commit_index);
    assert!(replies(&effects).is_empty());
    leader.step(now + 2, persisted(3));
    let effects = leader.take_effects();
    assert_eq!(LogIndex(2), leader.status().commit_index);
    assert_eq!(
        vec![(
            ProposalId(1),
            ProposeOutcome::Committed {
                index: LogIndex(2),
                term: Term(1)
            }
        )],
        replies(&effects)
    );
}

#[test]
fn figure_8_an_older_term_entry_is_not_committed_by_counting() {
    // Why: Raft §5.4.2 Figure 8. S1 led term 2 and wrote index 2 (term 2) on S1 and S2 only; S5
    // led term 3 and wrote its own index 2 (term 3) locally. S1 returns as leader of term 4 and
    // gets index 2 onto S3: a majority (S1, S2, S3) now holds it, yet it must NOT be committed,
    // because S5 (last term 3) could still win an election and overwrite it. It commits only
    // with the term-4 entry after it.
    let recovered = RecoveredState {
        rejoining: false,
        hard_state: HardState {
            commit_mark: LogIndex(0),
            log_end_mark: LogIndex(0),
            forgotten_through: LogIndex(0),
            term: Term(3),
            voted_for: None,
        },
        entries: chain(&[1, 2]),
    };
    let mut s1 = Node::new(Config::default(), N1, members(5), recovered, 3).expect("node");
    let now = AFTER_TIMEOUT_MS;
    s1.step(0, Input::Tick);
    s1.step(now, Input::Tick); // pre-vote for term 4
    s1.step(now, msg(N2, granted(4, true)));
    s1.step(now, msg(N3, granted(4, true)));
    s1.step(now, persisted(1));
    s1.step(now, msg(N2, granted(4, false)));
    s1.step(now, msg(N3, granted(4, false)));
    assert_eq!(Role::Leader, s1.status().role);
    assert_eq!(Term(4), s1.status().term);
    s1.take_effects();
    // S2 and S3 hold index 2 (term 2) durably: a majority with S1 (durable through index 2).
    s1.step(now + 1, msg(N2, append_ok(4, 2, 2)));
    s1.step(now + 1, msg(NodeId(3), append_ok(4, 2, 2)));
    assert_eq!(
        LogIndex(0),
        s1.status().commit_index,
        "Figure 8: old-term entry committed by count"
    );
    assert!(s1
        .take_effects()
        .iter()
        .all(|e| !matches!(e, Effect::Apply { .. })));
    // The term-4 noop (index 3) reaches the same majority: now 1..=3 commit together.
    s1.step(now + 2, persisted(2));
    s1.step(now + 2, msg(N2, append_ok(4, 3, 3)));
    assert_eq!(LogIndex(0), s1.status().commit_index);
    s1.step(now + 2, msg(NodeId(3), append_ok(4, 3, 3)));
    assert_eq!(LogIndex(3), s1.status().commit_index);
    let applied: Vec<LogIndex> = s1
        .take_effects()
        .into_iter()
        .flat_map(|effect| match effect {
            Effect::Apply { entries } => entries.into_iter().map(|e| e.index).collect(),
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(vec![LogIndex(1), LogIndex(2), LogIndex(3)], applied);
}

#[test]
fn non_leader_refuses_proposals_with_a_hint() {
    // Why: a follower must never append a client's entry; it points the client to its leader.
    let mut follower = fresh(N2, 3);
    follower.step(10, msg(N1, append(1, (0, 0), Vec::new(), 0)));
    follower.take_effects();
    follower.step(
        11,
        Input::ClientPropose {
            proposal: ProposalId(4),
            data: vec![],
        },
    );
    assert_eq!(
        vec![Effect::Reply {
            proposal: ProposalId(4),
            outcome: ProposeOutcome::NotLeader {
                leader_hint: Some(N1)
            },
        }],
        follower.take_effects()
    );
}

#[test]
fn proposal_not_committed_in_time_is_answered_timeout() {
    // Why: DLedger answers WAIT_QUORUM_ACK_TIMEOUT after maxWaitAckTimeMs so clients do not hang.
    let mut leader = leader_of(3);
    let now = AFTER_TIMEOUT_MS + 5;
    leader.step(
        now,
        Input::ClientPropose {
            proposal: ProposalId(1),
            data: vec![],
        },
    );
    leader.take_effects();
    // Followers keep answering (no step-down) but never acknowledge entry 2.
    leader.step(now + 2000, msg(N2, append_ok(1, 1, 1)));
    leader.step(now + 2499, Input::Tick);
    assert!(replies(&leader.take_effects()).is_empty());
    assert!(leader.next_deadline_ms() <= now + 2500);
    leader.step(now + 2500, Input::Tick);
    assert_eq!(
        vec![(ProposalId(1), ProposeOutcome::Timeout)],
        replies(&leader.take_effects())
    );
}

#[test]
fn leader_without_a_majority_steps_down_after_the_election_timeout() {
    // Why: check quorum: a leader cut off from its majority must stop acting as leader once
    // the others may have elected someone else (DLedger: leak × heartbeat).
    let mut leader = leader_of(3);
    let elected = AFTER_TIMEOUT_MS;
    leader.step(elected + 5999, Input::Tick);
    assert_eq!(Role::Leader, leader.status().role);
    assert_eq!(elected + 6000, leader.next_deadline_ms());
    leader.step(elected + 6000, Input::Tick);
    assert_eq!(Role::Follower, leader.status().role);
    assert_eq!(None, leader.status().leader);
}

#[test]
fn leader_heartbeats_and_resends_unacknowledged_entries() {
    // Why: heartbeats keep followers from campaigning; a lost push must be resent after
    // append_resend_ms or the follower would never catch up.
    let mut leader = leader_of(3);
    let elected = AFTER_TIMEOUT_MS;
    let noop = leader.log()[0].clone();
    leader.step(elected + 1000, Input::Tick);
    assert_eq!(
        vec![
            send(N2, append(1, (0, 0), vec![noop.clone()], 0)),
            send(N3, append(1, (0, 0), vec![noop.clone()], 0)),
        ],
        leader.take_effects()
    );
    leader.step(elected + 2000, Input::Tick);
    // Heartbeats are anchored at the follower's match index (0 here); the resend timer was
    // re-armed at +1000, so the noop goes out a third time too.
    assert_eq!(
        vec![
            send(N2, append(1, (0, 0), Vec::new(), 0)),
            send(N3, append(1, (0, 0), Vec::new(), 0)),
            send(N2, append(1, (0, 0), vec![noop.clone()], 0)),
            send(N3, append(1, (0, 0), vec![noop.clone()], 0)),
        ],
        leader.take_effects()
    );
}
