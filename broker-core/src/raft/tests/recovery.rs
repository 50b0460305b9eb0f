//! Recovery from what survived on disk.

use super::*;
use crate::proto::VoteRejectReason;
use crate::raft::RecoveryError;

#[test]
fn recovery_keeps_a_valid_log_and_hard_state() {
    // Why: a restarted node must come back with exactly its durable log and vote, and with
    // commit and applied at 0 (they are relearned), or it could vote twice or forget entries.
    let recovered = RecoveredState {
        rejoining: false,
        hard_state: HardState {
            commit_mark: LogIndex(0),
            log_end_mark: LogIndex(0),
            forgotten_through: LogIndex(0),
            term: Term(3),
            voted_for: Some(N2),
        },
        entries: chain(&[1, 1, 3]),
    };
    let mut node = node_with(N1, 3, recovered.clone());
    assert_eq!(Vec::<Effect>::new(), node.take_effects());
    assert_eq!(recovered.entries, node.log().to_vec());
    let status = node.status();
    assert_eq!(
        (
            Term(3),
            Some(N2),
            LogIndex(3),
            Term(3),
            LogIndex(3),
            LogIndex(0),
            LogIndex(0)
        ),
        (
            status.term,
            status.voted_for,
            status.last_index,
            status.last_term,
            status.durable_index,
            status.commit_index,
            status.applied_index
        )
    );
}

#[test]
fn recovery_cuts_a_torn_tail_and_asks_the_disk_to_drop_it() {
    // Why: a crash mid-write can leave a partly written last entry; its chained checksum fails,
    // and everything from there on must be dropped, on disk too, before new appends.
    let mut entries = chain(&[1, 1, 1, 1]);
    entries[2].data = b"torn".to_vec();
    let recovered = RecoveredState {
        rejoining: false,
        hard_state: HardState {
            commit_mark: LogIndex(0),
            log_end_mark: LogIndex(0),
            forgotten_through: LogIndex(0),
            term: Term(1),
            voted_for: None,
        },
        entries: entries.clone(),
    };
    let mut node = node_with(N1, 3, recovered);
    assert_eq!(
        vec![
            Effect::Persist(PersistOp::TruncateFrom { from: LogIndex(3) }),
            sync(1)
        ],
        node.take_effects()
    );
    assert_eq!(entries[..2].to_vec(), node.log().to_vec());
}

#[test]
fn recovery_cuts_at_an_index_gap() {
    // Why: entries must be consecutive from index 1; a gap means the rest is not this log.
    let mut entries = chain(&[1, 1, 1]);
    entries.remove(1);
    let recovered = RecoveredState {
        rejoining: false,
        hard_state: HardState {
            commit_mark: LogIndex(0),
            log_end_mark: LogIndex(0),
            forgotten_through: LogIndex(0),
            term: Term(1),
            voted_for: None,
        },
        entries: entries.clone(),
    };
    let node = node_with(N1, 3, recovered);
    assert_eq!(entries[..1].to_vec(), node.log().to_vec());
}

#[test]
fn recovery_refuses_an_entry_newer_than_the_hard_state() {
    // Why: the node writes a term's hard state before any entry of that term, in one ordered
    // stream of which a crash drops only a suffix; an entry ahead of the hard state means a
    // foreign or corrupt disk, and guessing the term could allow a second vote in it.
    let recovered = RecoveredState {
        rejoining: false,
        hard_state: HardState {
            commit_mark: LogIndex(0),
            log_end_mark: LogIndex(0),
            forgotten_through: LogIndex(0),
            term: Term(1),
            voted_for: None,
        },
        entries: chain(&[1, 2]),
    };
    let result = Node::new(Config::default(), N1, members(3), recovered, 1);
    assert_eq!(
        Some(RecoveryError::EntryTermAboveHardState {
            index: LogIndex(2),
            entry_term: Term(2),
            hard_state_term: Term(1),
        }),
        result.err()
    );
}

#[test]
fn recovery_refuses_a_node_outside_the_members() {
    // Why: a misconfigured adapter must get an error value, not a node that counts wrong.
    let result = Node::new(
        Config::default(),
        NodeId(9),
        members(3),
        RecoveredState::default(),
        1,
    );
    assert!(matches!(result, Err(RecoveryError::NotAMember { .. })));
}

#[test]
fn restarted_leader_relearns_commit_from_the_new_leader() {
    // Why: commit restarts at 0 after recovery; the node must not apply anything until a
    // leader of its term tells it what is committed.
    let recovered = RecoveredState {
        rejoining: false,
        hard_state: HardState {
            commit_mark: LogIndex(0),
            log_end_mark: LogIndex(0),
            forgotten_through: LogIndex(0),
            term: Term(2),
            voted_for: Some(N1),
        },
        entries: chain(&[1, 2]),
    };
    let mut node = node_with(N1, 3, recovered);
    node.step(0, Input::Tick);
    assert_eq!(Vec::<Effect>::new(), node.take_effects());
    let heartbeat = Message::AppendRequest {
        term: Term(2),
        leader: N2,
        prev_log_index: LogIndex(2),
        prev_log_term: Term(2),
        entries: Vec::new(),
        leader_commit: LogIndex(1),
        read_round: 0,
    };
    node.step(5, msg(N2, heartbeat));
    let log = node.log().to_vec();
    assert_eq!(
        vec![
            send(N2, append_ok(2, 2, 2)),
            Effect::Apply {
                entries: log[..1].to_vec()
            },
        ],
        node.take_effects()
    );
}

// ---- issue 15: disk marks ----

fn marked() -> Config {
    Config {
        disk_marks: true,
        ..Config::default()
    }
}

fn disk(term: u64, commit_mark: u64, entries: Vec<Entry>, rejoining: bool) -> RecoveredState {
    RecoveredState {
        rejoining,
        hard_state: HardState {
            commit_mark: LogIndex(commit_mark),
            log_end_mark: LogIndex(0),
            forgotten_through: LogIndex(0),
            term: Term(term),
            voted_for: None,
        },
        entries,
    }
}

fn vote_refused(node: &mut Node, term: u64, last: (u64, u64)) -> bool {
    node.step(
        AFTER_TIMEOUT_MS,
        msg(N2, vote_request(term, N2, last, false)),
    );
    node.take_effects().iter().any(|effect| {
        matches!(
            effect,
            Effect::Send {
                msg: Message::VoteResponse {
                    granted: false,
                    reject_reason: Some(VoteRejectReason::CatchingUp),
                    ..
                },
                ..
            }
        )
    })
}

#[test]
fn disk_marks_refuse_a_damaged_committed_entry() {
    // Why: a bit flip at or below the commit mark destroyed a committed entry: starting would
    // let this replica count toward quorums without it; the operator must see a typed error.
    let mut entries = chain(&[1, 1, 1, 1]);
    entries[1].data = b"flipped".to_vec();
    let result = Node::new(marked(), N1, members(3), disk(1, 3, entries, true), 1);
    assert_eq!(
        Some(RecoveryError::Disk(
            crate::store::DiskDamage::CommittedEntryDamaged {
                index: LogIndex(2),
                commit_mark: LogIndex(3),
            }
        )),
        result.err()
    );
    // A log cut short below the mark (a truncated file) is refused too.
    let result = Node::new(
        marked(),
        N1,
        members(3),
        disk(1, 3, chain(&[1, 1]), true),
        1,
    );
    assert_eq!(
        Some(RecoveryError::Disk(
            crate::store::DiskDamage::CommittedEntriesMissing {
                last_index: LogIndex(2),
                commit_mark: LogIndex(3),
            }
        )),
        result.err()
    );
}

#[test]
fn disk_marks_cut_a_bad_middle_entry_and_refuse_votes_until_caught_up() {
    // Why: an entry with intact ones after it was synced, so maybe acknowledged; the node cuts
    // there but must not vote (its vote could elect a leader without a committed entry) until
    // a leader's commit covers what it held.
    let mut entries = chain(&[1, 1, 1, 1]);
    entries[2].data = b"flipped".to_vec();
    let mut node = Node::new(
        marked(),
        N1,
        members(3),
        disk(1, 1, entries.clone(), true),
        7,
    )
    .expect("starts");
    assert_eq!(
        vec![
            Effect::Persist(PersistOp::TruncateFrom { from: LogIndex(3) }),
            // The hard state remembers that this node is catching up, through what it held.
            Effect::Persist(PersistOp::HardState(HardState {
                commit_mark: LogIndex(1),
                log_end_mark: LogIndex(0),
                forgotten_through: LogIndex(4),
                term: Term(1),
                voted_for: None,
            })),
            sync(1)
        ],
        node.take_effects()
    );
    assert_eq!(entries[..2].to_vec(), node.log().to_vec());
    node.step(0, Input::Tick);
    // No campaign after a timeout, and a vote request is refused.
    node.step(AFTER_TIMEOUT_MS, Input::Tick);
    assert_eq!(Role::Follower, node.status().role);
    assert!(vote_refused(&mut node, 2, (10, 1)));
    // A leader of term 2 sends the rest plus its own entry and commits through it.
    let good = chain(&[1, 1, 1, 1]);
    let mut rest = good[2..].to_vec();
    rest.push(noop(good[3].checksum, 5, 2));
    node.step(
        AFTER_TIMEOUT_MS + 1,
        msg(
            N2,
            Message::AppendRequest {
                term: Term(2),
                leader: N2,
                prev_log_index: LogIndex(2),
                prev_log_term: Term(1),
                entries: rest,
                leader_commit: LogIndex(5),
                read_round: 0,
            },
        ),
    );
    assert_eq!(None, node.forgotten);
    assert_eq!(LogIndex(5), node.status().commit_index);
}

#[test]
fn disk_marks_treat_a_bad_last_entry_as_a_torn_write() {
    // Why: power lost mid-append tears only the last entry, never acknowledged: cut it and
    // carry on voting (else every torn tail would cost a vote).
    let mut entries = chain(&[1, 1, 1]);
    entries[2].data = b"torn".to_vec();
    let node = Node::new(marked(), N1, members(3), disk(1, 1, entries, true), 7).expect("starts");
    assert_eq!(None, node.forgotten);
    assert_eq!(LogIndex(2), node.status().last_index);
}

#[test]
fn disk_marks_a_wiped_rejoining_node_neither_votes_nor_campaigns() {
    // Why: the classic bug: a replica whose disk was replaced forgot its vote and its
    // acknowledgements; voting at once can elect a second leader in a term and lose committed
    // entries. A brand-new node (not rejoining) votes normally.
    let mut wiped = Node::new(
        marked(),
        N1,
        members(3),
        RecoveredState {
            rejoining: true,
            ..RecoveredState::default()
        },
        7,
    )
    .expect("starts");
    wiped.step(0, Input::Tick);
    wiped.step(AFTER_TIMEOUT_MS, Input::Tick);
    assert_eq!(Role::Follower, wiped.status().role);
    assert!(vote_refused(&mut wiped, 1, (0, 0)));
    let mut new =
        Node::new(marked(), N1, members(3), RecoveredState::default(), 7).expect("starts");
    new.step(0, Input::Tick);
    assert!(!vote_refused(&mut new, 1, (0, 0)));
    // The unsafe switch: the wiped node votes at once.
    let unsafe_config = Config {
        unsafe_vote_after_disk_loss: true,
        ..marked()
    };
    let mut reckless = Node::new(
        unsafe_config,
        N1,
        members(3),
        RecoveredState {
            rejoining: true,
            ..RecoveredState::default()
        },
        7,
    )
    .expect("starts");
    reckless.step(0, Input::Tick);
    assert!(!vote_refused(&mut reckless, 1, (0, 0)));
}

#[test]
fn disk_marks_lost_hard_state_rebuilds_the_term_from_the_log() {
    // Why: a log whose hard state is gone would be refused (entry newer than the hard state);
    // with disk marks the node takes its last entry's term, writes it back, and abstains.
    let recovered = disk(0, 0, chain(&[1, 2]), true);
    let mut node = Node::new(marked(), N1, members(3), recovered, 7).expect("starts");
    assert_eq!(Term(2), node.status().term);
    assert_eq!(
        Some(crate::store::Forgot::HardState),
        node.forgotten.map(|forgotten| forgotten.what)
    );
    assert_eq!(
        vec![
            Effect::Persist(PersistOp::HardState(HardState {
                commit_mark: LogIndex(0),
                log_end_mark: LogIndex(2),
                forgotten_through: LogIndex(2),
                term: Term(2),
                voted_for: None,
            })),
            sync(1)
        ],
        node.take_effects()
    );
}

/// The hard state `node` last asked to persist.
fn last_hard_state(effects: &[Effect]) -> HardState {
    effects
        .iter()
        .rev()
        .find_map(|effect| match effect {
            Effect::Persist(PersistOp::HardState(hard_state)) => Some(hard_state.clone()),
            _ => None,
        })
        .expect("the node wrote its hard state")
}

#[test]
fn disk_marks_a_node_restarted_before_it_caught_up_is_still_catching_up() {
    // Why (swarm_disk seeds 880, 1652, not settled): a node that lost its hard state
    // acknowledged entries while catching up, then lost the end of its log and restarted
    // before it caught up. Its rebuilt hard state said nothing about what the disk held, so it
    // came back as an ordinary follower: it voted, and its answers did not say `forgot`, so the
    // leader kept counting the lost acknowledgements, took its rejections as stale and never
    // sent what it lost.
    let first = Node::new(
        marked(),
        N1,
        members(3),
        disk(0, 0, chain(&[1, 2, 2, 2]), true),
        7,
    )
    .expect("starts")
    .take_effects();
    let rebuilt = last_hard_state(&first);
    assert_eq!(LogIndex(4), rebuilt.log_end_mark);
    assert_eq!(LogIndex(4), rebuilt.forgotten_through);
    // The end of the log is lost; the node restarts.
    let cut = RecoveredState {
        rejoining: true,
        hard_state: rebuilt.clone(),
        entries: chain(&[1, 2]),
    };
    let mut node = Node::new(marked(), N1, members(3), cut, 7).expect("starts");
    assert_eq!(
        Some(LogIndex(4)),
        node.forgotten.map(|forgotten| forgotten.through)
    );
    node.step(0, Input::Tick);
    assert!(vote_refused(&mut node, 3, (10, 2)));
    // A leader probing beyond its log is told where the log ends, and that it forgot.
    node.step(
        AFTER_TIMEOUT_MS + 1,
        msg(
            N2,
            Message::AppendRequest {
                term: Term(3),
                leader: N2,
                prev_log_index: LogIndex(4),
                prev_log_term: Term(2),
                entries: Vec::new(),
                leader_commit: LogIndex(4),
                read_round: 0,
            },
        ),
    );
    let answers: Vec<Message> = node
        .take_effects()
        .into_iter()
        .filter_map(|effect| match effect {
            Effect::Send { to, msg } if to == N2 => Some(msg),
            _ => None,
        })
        .collect();
    assert!(
        answers.iter().any(|answer| matches!(
            answer,
            Message::AppendResponse {
                success: false,
                last_log_index: LogIndex(2),
                forgot: true,
                ..
            }
        )),
        "answers: {answers:?}"
    );
    // A plain restart with the whole log still there keeps it catching up too.
    let intact = RecoveredState {
        rejoining: true,
        hard_state: rebuilt,
        entries: chain(&[1, 2, 2, 2]),
    };
    let mut node = Node::new(marked(), N1, members(3), intact, 7).expect("starts");
    node.step(0, Input::Tick);
    assert!(vote_refused(&mut node, 3, (10, 2)));
}
