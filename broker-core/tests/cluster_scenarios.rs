//! Scripted cluster stories on the in-process harness: the happy path, leader crash,
//! partitions, and leadership transfer. Every event is checked by the harness's checker.

mod harness;

use broker_core::raft::{ReadOutcome, Role};
use broker_core::types::NodeId;
use harness::{fast_config, Cluster};

#[test]
fn a_fresh_cluster_elects_one_leader_and_commits() {
    // Why: the baseline liveness claim: with no faults a leader appears within one election
    // timeout plus jitter and commits a client's proposal.
    let mut cluster = Cluster::new(1, 3, fast_config());
    let committed_at = cluster.await_commit(0, 2000).expect("commit within 2 s");
    assert!(committed_at < 1000, "first commit at {committed_at} ms");
    let leaders = cluster
        .statuses()
        .into_iter()
        .filter(|status| status.role == Role::Leader)
        .count();
    assert_eq!(1, leaders);
}

#[test]
fn leader_crash_fails_over_and_keeps_acknowledged_entries() {
    // Why: the failover story of DESIGN.md: kill the leader, a new one is elected within the
    // election timeout bound, and nothing acknowledged before the crash is lost.
    let mut cluster = Cluster::new(2, 3, fast_config());
    cluster.await_commit(0, 2000).expect("initial commit");
    let old = cluster.leader().expect("a leader");
    let acknowledged = cluster.checker.committed_count();
    cluster.crash(old);
    let crashed_at = cluster.now_ms();
    let committed_at = cluster
        .await_commit(crashed_at, 3000)
        .expect("the survivors commit within 3 s");
    let new = cluster.leader().expect("a new leader");
    assert_ne!(old, new);
    assert!(cluster.checker.committed_count() > acknowledged);
    assert!(
        committed_at - crashed_at < 1500,
        "failover took {} ms",
        committed_at - crashed_at
    );
}

#[test]
fn isolated_leader_steps_down_and_majority_moves_on() {
    // Why: check quorum: a leader cut off from everyone must stop leading after the election
    // timeout, while the majority side elects a new leader and commits.
    let mut cluster = Cluster::new(3, 5, fast_config());
    cluster.await_commit(0, 2000).expect("initial commit");
    let old = cluster.leader().expect("a leader");
    cluster.partition(&[old]);
    let cut_at = cluster.now_ms();
    cluster
        .await_commit(cut_at, 3000)
        .expect("majority commits");
    cluster.run_until(cut_at + 1000);
    let status = cluster.node(old).expect("old leader is up").status();
    assert_ne!(Role::Leader, status.role, "isolated leader still leads");
    cluster.heal_all();
    let healed_at = cluster.now_ms();
    cluster
        .await_commit(healed_at, 3000)
        .expect("commit after heal");
}

#[test]
fn leadership_transfer_hands_over_to_the_target() {
    // Why: DLedger's preferred leader: a transfer to a caught-up follower makes it leader
    // quickly (no pre-vote, stickiness bypassed), without losing committed entries.
    let mut cluster = Cluster::new(4, 3, fast_config());
    cluster.await_commit(0, 2000).expect("initial commit");
    let old = cluster.leader().expect("a leader");
    let target = cluster
        .ids
        .iter()
        .copied()
        .find(|id| *id != old)
        .expect("a follower");
    let start = cluster.now_ms();
    cluster.transfer_leadership(old, target);
    cluster.run_until(start + 200);
    assert_eq!(
        Some(target),
        cluster.leader(),
        "transfer did not complete in 200 ms"
    );
    cluster
        .await_commit(start, 1000)
        .expect("the new leader commits");
}

#[test]
fn minority_partition_cannot_commit() {
    // Why: a proposal to a leader that lost its majority must never be acknowledged.
    let mut cluster = Cluster::new(5, 5, fast_config());
    cluster.await_commit(0, 2000).expect("initial commit");
    let leader = cluster.leader().expect("a leader");
    let minority: Vec<NodeId> = std::iter::once(leader)
        .chain(
            cluster
                .ids
                .iter()
                .copied()
                .filter(|id| *id != leader)
                .take(1),
        )
        .collect();
    cluster.partition(&minority);
    let cut_at = cluster.now_ms();
    let proposal = cluster.propose(leader);
    cluster.run_until(cut_at + 2000);
    let outcome = cluster
        .replies
        .iter()
        .find(|(_, id, _)| *id == proposal)
        .map(|(_, _, outcome)| outcome.clone());
    assert!(
        matches!(
            outcome,
            Some(broker_core::raft::ProposeOutcome::Timeout)
                | Some(broker_core::raft::ProposeOutcome::LeadershipLost)
        ),
        "minority leader answered {outcome:?}"
    );
}

#[test]
fn a_cut_off_leader_serves_no_read_index_read_while_the_majority_moves_on() {
    // Why: the stale read ReadIndex exists to prevent (Raft §6.4): an old leader cut off from
    // its majority, which has elected a new leader and committed more, must not answer a read
    // from its state; the new leader answers at an index covering the new commits.
    let mut cluster = Cluster::new(6, 5, fast_config());
    cluster.await_commit(0, 2000).expect("initial commit");
    let old = cluster.leader().expect("a leader");
    cluster.partition(&[old]);
    let cut_at = cluster.now_ms();
    let stale_read = cluster.read_index(old);
    cluster
        .await_commit(cut_at, 3000)
        .expect("the majority commits");
    let new = cluster.leader().expect("a new leader");
    assert_ne!(old, new);
    let new_commit = cluster.node(new).expect("up").status().commit_index;
    let fresh_read = cluster.read_index(new);
    cluster.run_until(cut_at + 2000);
    let answer = |read| {
        cluster
            .read_replies
            .iter()
            .find(|(_, _, id, _)| *id == read)
            .map(|(_, _, _, outcome)| outcome.clone())
    };
    assert_eq!(
        Some(ReadOutcome::NotLeader { leader_hint: None }),
        answer(stale_read),
        "the cut-off leader refuses once it steps down, never serves"
    );
    match answer(fresh_read) {
        Some(ReadOutcome::Ready { index }) => assert!(index >= new_commit),
        other => panic!("the new leader answered {other:?}"),
    }
}
