//! Cluster: Raft paper Figure 8 (R=5), played under Raft fidelity and under DLedger fidelity.
//!
//! (a) S1 leads term A and writes index x to S1 and S2 only (partitioned with S2).
//! (b) S1 crashes; S3–S5 elect one of them ("S5", term B > A), which writes its own entry at x
//!     (Raft: its no-op; DLedger: a client's entry) and crashes before sending it anywhere.
//! (c) S1 restarts; S1 or S2 ("W") is elected in term C > B and replicates its term-A entry at
//!     x to S3 and S4: a majority holds it.
//! (d) W crashes and S5 restarts; of the possible interleavings the test takes the one where
//!     S5 collects the votes of S2, S3 and S4 (they cannot reach each other, only S5). Then
//!     every fault heals.
//!
//! Traps: DLedger's commit rule (quorum watermark, no check of the entry's term) and its missing
//! election no-op: in (c) W commits x by count with no entry of its own term; in (d) S5's last
//! term B beats every other log's last term A, so S5 is elected and overwrites x everywhere:
//! a committed entry is lost, which the followers record as `SafetyViolation`s. Under Raft
//! fidelity x commits in (c) only together with W's term-C no-op, S5 cannot be elected, and
//! nothing committed is ever lost.

mod harness;

use broker_core::raft::{Config, Role, SafetyViolation};
use broker_core::store::Entry;
use broker_core::types::{LogIndex, NodeId, Term};
use harness::{fast_config, fast_dledger_config, Cluster};

/// Steps of this many ms while waiting for something.
const POLL_MS: u64 = 10;

/// Runs until a leader among `among` exists, for at most `bound_ms`.
fn await_leader(cluster: &mut Cluster, among: &[NodeId], bound_ms: u64) -> NodeId {
    let give_up = cluster.now_ms() + bound_ms;
    loop {
        let leader = cluster
            .statuses()
            .into_iter()
            .filter(|status| status.role == Role::Leader && among.contains(&status.id))
            .max_by_key(|status| status.term)
            .map(|status| status.id);
        if let Some(leader) = leader {
            return leader;
        }
        assert!(
            cluster.now_ms() < give_up,
            "no leader among {among:?} within {bound_ms} ms: {:#?}",
            cluster.statuses()
        );
        let next = cluster.now_ms() + POLL_MS;
        cluster.run_until(next);
    }
}

fn entry_at(cluster: &Cluster, node: NodeId, index: LogIndex) -> Option<Entry> {
    let position = usize::try_from(index.0 - 1).expect("index fits usize");
    cluster
        .node(node)
        .and_then(|node| node.log().get(position).cloned())
}

fn term_of(cluster: &Cluster, node: NodeId) -> Term {
    cluster.node(node).expect("node is up").status().term
}

/// What the schedule saw.
struct Played {
    cluster: Cluster,
    x: LogIndex,
    /// S1's term-A entry at x.
    term_a_entry: Entry,
    /// S5's term-B entry at x.
    term_b_entry: Entry,
    s5: NodeId,
    /// S5 led at the end of (d).
    s5_led: bool,
    /// When W's commit index first reached x: whether W held an entry of its own term at or
    /// below its commit index.
    w_had_own_term_entry_committed: bool,
}

fn play(config: Config, seed: u64) -> Played {
    let mut cluster = Cluster::new(seed, 5, config);
    cluster.checker.record_violations = true;
    let ids = cluster.ids.clone();

    // (a) S1 leads and everyone holds what it committed; then S1 writes x to S2 only.
    cluster.await_commit(0, 3000).expect("a first commit");
    let s1 = cluster.leader().expect("a leader");
    let settle = cluster.now_ms() + 500;
    cluster.run_until(settle);
    assert_eq!(Some(s1), cluster.leader(), "S1 still leads");
    let s2 = *ids.iter().find(|id| **id != s1).expect("a follower");
    let rest: Vec<NodeId> = ids
        .iter()
        .copied()
        .filter(|id| *id != s1 && *id != s2)
        .collect();
    cluster.partition(&[s1, s2]);
    let x = cluster
        .node(s1)
        .expect("S1 is up")
        .status()
        .last_index
        .next();
    cluster.propose(s1);
    let until = cluster.now_ms() + 50;
    cluster.run_until(until);
    let term_a_entry = entry_at(&cluster, s1, x).expect("S1 wrote x");
    assert_eq!(Some(&term_a_entry), entry_at(&cluster, s2, x).as_ref());
    assert_eq!(
        Some(term_a_entry.checksum),
        cluster.disk(s2).checksum_at(x),
        "x is durable on S2"
    );
    assert!(
        cluster.checker.committed_at(x).is_none(),
        "x is not committed"
    );

    // (b) S1 crashes; the others elect S5, whose appends go nowhere; it writes x and crashes.
    cluster.crash(s1);
    for id in &rest {
        cluster.drop_appends_from(*id);
    }
    let s5 = await_leader(&mut cluster, &rest, 3000);
    if entry_at(&cluster, s5, x).is_none() {
        cluster.propose(s5); // DLedger: no no-op, a client's entry takes x
    }
    let until = cluster.now_ms() + 20;
    cluster.run_until(until);
    let term_b_entry = entry_at(&cluster, s5, x).expect("S5 wrote x");
    assert!(term_b_entry.term > term_a_entry.term);
    assert_eq!(Some(term_b_entry.checksum), cluster.disk(s5).checksum_at(x));
    for id in rest.iter().filter(|id| **id != s5) {
        assert!(entry_at(&cluster, *id, x).is_none(), "{id} holds x");
    }
    cluster.crash(s5);

    // (c) S1 returns; S1 or S2 leads a newer term and brings x (term A) to S3 and S4.
    cluster.heal_network();
    cluster.restart(s1);
    let w = await_leader(&mut cluster, &[s1, s2], 3000);
    assert!(term_of(&cluster, w) > term_b_entry.term);
    let give_up = cluster.now_ms() + 3000;
    let w_had_own_term_entry_committed = loop {
        let node = cluster.node(w).expect("W is up");
        let status = node.status();
        assert_eq!(Role::Leader, status.role, "W lost leadership");
        if status.commit_index >= x {
            break node.log()[..status.commit_index.0 as usize]
                .iter()
                .any(|entry| entry.term == status.term);
        }
        assert!(cluster.now_ms() < give_up, "W never committed x");
        let next = cluster.now_ms() + 1;
        cluster.run_until(next);
    };
    let until = cluster.now_ms() + 300;
    cluster.run_until(until);
    assert_eq!(Some(&term_a_entry), cluster.checker.committed_at(x));

    // (d) W crashes and S5 returns. Of the interleavings that follow, take the one where S5
    // collects the votes of the other three: they cannot reach each other.
    cluster.crash(w);
    let others: Vec<NodeId> = ids
        .iter()
        .copied()
        .filter(|id| *id != w && *id != s5)
        .collect();
    for from in &others {
        for to in &others {
            if from != to {
                cluster.block_one_way(*from, *to);
            }
        }
    }
    cluster.restart(s5);
    let until = cluster.now_ms() + 3000;
    cluster.run_until(until);
    let s5_led = cluster.leader() == Some(s5);
    cluster.heal_all();
    let until = cluster.now_ms() + 2000;
    cluster.run_until(until);
    Played {
        cluster,
        x,
        term_a_entry,
        term_b_entry,
        s5,
        s5_led,
        w_had_own_term_entry_committed,
    }
}

/// Seeds played per fidelity (the schedule is cheap: about a millisecond each).
const SEEDS: std::ops::RangeInclusive<u64> = 1..=20;

#[test]
fn figure_8_under_dledger_fidelity_commits_by_count_and_loses_the_entry() {
    // Why: the Figure 8 hazard is real in DLedger (up to 0.3.1.2): an entry of an older term
    // committed by counting replicas is overwritten by a later leader. The simulator must be
    // able to show that loss; the nodes report it as values instead of panicking.
    for seed in SEEDS {
        let played = play(fast_dledger_config(), seed);
        let cluster = &played.cluster;
        assert!(
            !played.w_had_own_term_entry_committed,
            "seed {seed}: W committed x by count, with no entry of its term"
        );
        assert!(
            played.s5_led,
            "seed {seed}: S5, whose last term is newest, was elected"
        );
        for id in &cluster.ids {
            assert_eq!(
                Some(&played.term_b_entry),
                entry_at(cluster, *id, played.x).as_ref(),
                "seed {seed}: {id} holds S5's entry at x in the end"
            );
        }
        let lost: Vec<NodeId> = cluster
            .node_violations
            .iter()
            .filter_map(|(_, node, violation)| match violation {
                SafetyViolation::CommittedEntryTruncated { from, .. } if *from == played.x => {
                    Some(*node)
                }
                SafetyViolation::CommittedEntryTruncated { .. } => None,
            })
            .collect();
        assert!(
            lost.len() >= 3,
            "seed {seed}: S2, S3 and S4 truncated committed x: {:?}",
            cluster.node_violations
        );
        for property in ["Leader Completeness", "State Machine Safety"] {
            assert!(
                cluster
                    .checker
                    .violations
                    .iter()
                    .any(|v| v.starts_with(property)),
                "seed {seed}: {property}: {:?}",
                cluster.checker.violations
            );
        }
        if seed == *SEEDS.start() {
            println!(
                "DLedger Figure 8, seed {seed}: committed {} (term {}) lost to {} (term {}); \
                 recorded by {lost:?}; checker: {:?}",
                played.x,
                played.term_a_entry.term,
                played.s5,
                played.term_b_entry.term,
                cluster.checker.violations
            );
        }
    }
}

#[test]
fn figure_8_under_raft_fidelity_never_commits_by_count_and_loses_nothing() {
    // Why: Raft §5.4.2: the same schedule commits x only together with an entry of W's term,
    // which S5 lacks, so S5 cannot be elected and x stays committed everywhere.
    for seed in SEEDS {
        let played = play(fast_config(), seed);
        let cluster = &played.cluster;
        assert!(
            played.w_had_own_term_entry_committed,
            "seed {seed}: x committed only with an entry of W's term"
        );
        assert!(cluster.node_violations.is_empty(), "seed {seed}");
        assert!(
            cluster.checker.violations.is_empty(),
            "seed {seed}: {:?}",
            cluster.checker.violations
        );
        assert!(
            !played.s5_led,
            "seed {seed}: S5 cannot be elected: a majority has W's term-C entry"
        );
        for id in &cluster.ids {
            assert_eq!(
                Some(&played.term_a_entry),
                entry_at(cluster, *id, played.x).as_ref(),
                "seed {seed}: {id} still holds the committed entry at x"
            );
        }
    }
}
