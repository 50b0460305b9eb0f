//! Recovery from what survived on disk.

use super::*;
use crate::raft::RecoveryError;

#[test]
fn recovery_keeps_a_valid_log_and_hard_state() {
    // Why: a restarted node must come back with exactly its durable log and vote, and with
    // commit and applied at 0 (they are relearned), or it could vote twice or forget entries.
    let recovered = RecoveredState {
        hard_state: HardState {
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
        hard_state: HardState {
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
        hard_state: HardState {
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
        hard_state: HardState {
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
        hard_state: HardState {
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
