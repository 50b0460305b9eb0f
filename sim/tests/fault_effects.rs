//! What each fault kind and target does to a whole simulated run (issue 8, point 5): every
//! test runs a short scenario and asserts an effect visible in the run's observations,
//! history, failover faults or final logs, and, where the effect could also happen without
//! the fault, compares with the same seed run without it. `faults.rs` covers the datagram,
//! disk and swarm-schedule level; this file the world level.

mod common;

use broker_core::raft::Role;
use broker_core::{NodeId, Term};
use common::{assert_clean, leader_at, run_text};
use sim::history::OpOutcome;
use sim::run::outcome::SeedOutcome;
use sim::run::SeedRun;
use sim::world::observe::{Observation, ObservedKind};
use std::collections::BTreeSet;

/// One simulated second, in µs.
const S: u64 = 1_000_000;
/// The fault time most tests use: the first leader is elected by ~8 s.
const T: u64 = 10 * S;

/// A scenario: `groups` × `replicas`, one producer at 20 sends/s on `queues` queues (queue q
/// lives in group q % groups, so `queues: 1` leaves every group but 0 idle).
fn scenario(groups: u32, replicas: u32, queues: u32, duration: &str, faults: &str) -> String {
    format!(
        r#"Scenario(
    name: "t", seeds: (first: 1, count: 1), duration: "{duration}",
    cluster: (groups: {groups}, replicas: {replicas}),
    workload: (producers: 1, send_rate: 20, topics: [(name: "a", queues: {queues})]),
    faults: [{faults}],
)"#
    )
}

/// One group of 3, load on it, `duration`, `faults`.
fn run3(duration: &str, faults: &str, seed: u64) -> (SeedOutcome, SeedRun) {
    run_text(&scenario(1, 3, 2, duration, faults), seed)
}

fn in_window(o: &Observation, from_us: u64, to_us: u64) -> bool {
    (from_us..to_us).contains(&o.at_us)
}

/// Role observations (at, node, role, term) in `[from, to)` for nodes in `nodes`.
fn roles(
    run: &SeedRun,
    nodes: std::ops::Range<u32>,
    from_us: u64,
    to_us: u64,
) -> Vec<(u64, NodeId, Role, Term)> {
    run.observations
        .iter()
        .filter(|o| in_window(o, from_us, to_us) && nodes.contains(&o.node.0))
        .filter_map(|o| match o.kind {
            ObservedKind::Role { role, term } => Some((o.at_us, o.node, role, term)),
            _ => None,
        })
        .collect()
}

/// Leaders elected (Role Leader observations) in `[from, to)` in `nodes`.
fn elected(
    run: &SeedRun,
    nodes: std::ops::Range<u32>,
    from_us: u64,
    to_us: u64,
) -> Vec<(u64, NodeId, Term)> {
    roles(run, nodes, from_us, to_us)
        .into_iter()
        .filter(|(_, _, role, _)| *role == Role::Leader)
        .map(|(at, node, _, term)| (at, node, term))
        .collect()
}

/// Nodes seen asking for (pre-)votes in `[from, to)`.
fn campaigners(run: &SeedRun, nodes: std::ops::Range<u32>, from_us: u64, to_us: u64) -> Vec<u64> {
    roles(run, nodes, from_us, to_us)
        .into_iter()
        .filter(|(_, _, role, _)| matches!(role, Role::PreCandidate | Role::Candidate))
        .map(|(at, ..)| at)
        .collect()
}

/// (at, node) of observations of `kind` in `[from, to)`.
fn events(run: &SeedRun, kind: &ObservedKind, from_us: u64, to_us: u64) -> Vec<(u64, NodeId)> {
    run.observations
        .iter()
        .filter(|o| in_window(o, from_us, to_us) && o.kind == *kind)
        .map(|o| (o.at_us, o.node))
        .collect()
}

/// Restarted observations (at, node): a restarted node starts at the fault's time (it binds
/// its address in the world's post at once; madsim's network used to take 1 ms).
fn restarted(run: &SeedRun) -> Vec<(u64, NodeId)> {
    events(run, &ObservedKind::Restarted, 0, u64::MAX)
}

/// LeaderCommit observations (at, node) in `[from, to)`.
fn commits(run: &SeedRun, from_us: u64, to_us: u64) -> Vec<(u64, NodeId)> {
    run.observations
        .iter()
        .filter(|o| in_window(o, from_us, to_us))
        .filter(|o| matches!(o.kind, ObservedKind::LeaderCommit { .. }))
        .map(|o| (o.at_us, o.node))
        .collect()
}

/// Sends invoked in `[from, to)`: (acknowledged latencies in µs, count not acknowledged).
fn sends(run: &SeedRun, from_us: u64, to_us: u64) -> (Vec<u64>, usize) {
    let mut acked = Vec::new();
    let mut other = 0;
    for op in &run.history {
        if !(from_us..to_us).contains(&op.invoke_us) {
            continue;
        }
        match op.outcome {
            OpOutcome::Sent { .. } => acked.push(op.complete_us - op.invoke_us),
            OpOutcome::Pulled { .. } => {}
            OpOutcome::Fail | OpOutcome::Unknown => other += 1,
        }
    }
    acked.sort_unstable();
    (acked, other)
}

/// A compact dump of the observations from `from_us` on, for failure messages.
fn dump(run: &SeedRun, from_us: u64) -> String {
    run.observations
        .iter()
        .filter(|o| o.at_us >= from_us && !matches!(o.kind, ObservedKind::LeaderCommit { .. }))
        .map(|o| format!("{:.3}s n{} {:?}", o.at_us as f64 / 1e6, o.node.0, o.kind))
        .collect::<Vec<_>>()
        .join("\n")
}

// Crash(Leader) kills the leader at the fault time and a new leader takes over in a higher
// term; Restart(AllCrashed) brings it back, and it rejoins as a follower of the new term.
#[test]
fn crash_leader_then_restart_all_crashed() {
    let (outcome, run) = run3(
        "22s",
        r#"(at: "10s", fault: Crash(Leader(group: 0))),
           (at: "18s", fault: Restart(AllCrashed))"#,
        1,
    );
    assert_clean(&outcome);
    let (old, old_term) = leader_at(&run, 0..3, T).expect("a leader at 10 s");
    assert_eq!(
        events(&run, &ObservedKind::Crashed, 0, u64::MAX),
        [(T, old)]
    );
    assert_eq!(run.failover_faults.len(), 1);
    assert_eq!(run.failover_faults[0].old_leader, old);
    let new = elected(&run, 0..3, T, 18 * S);
    let &(_, new_leader, new_term) = new.last().unwrap_or_else(|| panic!("{}", dump(&run, T)));
    assert!(new_leader != old && new_term > old_term);
    assert_eq!(restarted(&run), [(18 * S, old)]);
    let after: Vec<_> = roles(&run, old.0..old.0 + 1, 18 * S, 22 * S);
    assert!(
        after
            .iter()
            .any(|(_, _, role, term)| *role == Role::Follower && *term >= new_term),
        "{}",
        dump(&run, 18 * S)
    );
    assert!(after.iter().all(|(_, _, role, _)| *role != Role::Leader));
}

// Crash(Follower) kills one node that is not the leader: the leader stays, commits go on.
#[test]
fn crash_follower_keeps_the_leader() {
    let (outcome, run) = run3("20s", r#"(at: "10s", fault: Crash(Follower(group: 0)))"#, 2);
    assert_clean(&outcome);
    let (leader, _) = leader_at(&run, 0..3, T).expect("a leader at 10 s");
    let crashed = events(&run, &ObservedKind::Crashed, 0, u64::MAX);
    assert_eq!(crashed.len(), 1);
    assert_eq!(crashed[0].0, T);
    assert_ne!(crashed[0].1, leader);
    assert!(run.failover_faults.is_empty());
    assert!(
        elected(&run, 0..3, T, 20 * S).is_empty(),
        "{}",
        dump(&run, T)
    );
    assert!(commits(&run, 12 * S, 20 * S)
        .iter()
        .all(|(_, n)| *n == leader));
    assert!(commits(&run, 12 * S, 20 * S).len() > 20);
}

// CrashLosingUnsynced and CrashTornTail on the loaded leader: the node goes down at the
// fault, comes back through recovery without a recovery failure, and ends with the same
// applied log as the others (nothing acknowledged is lost: no findings).
#[test]
fn power_loss_crashes_recover_in_the_world() {
    for kind in ["CrashLosingUnsynced", "CrashTornTail"] {
        for seed in 1..=3 {
            let (outcome, run) = run3(
                "20s",
                &format!(
                    r#"(at: "10s", fault: {kind}(Leader(group: 0))),
                       (at: "15s", fault: Restart(AllCrashed))"#
                ),
                seed,
            );
            assert_clean(&outcome);
            let (old, _) = leader_at(&run, 0..3, T).expect("a leader at 10 s");
            assert_eq!(
                events(&run, &ObservedKind::Crashed, 0, u64::MAX),
                [(T, old)]
            );
            assert_eq!(restarted(&run), [(15 * S, old)]);
            assert!(run.recovery_failures.is_empty(), "{kind} seed {seed}");
            assert!(run.settle_us[0].is_some());
            let logs = &run.final_logs;
            assert!(
                logs.iter().all(|log| log == &logs[0]),
                "{kind} seed {seed}: the restarted node caught up"
            );
        }
    }
}

// Pause(Leader, for) freezes the leader: Paused at the fault, Resumed `for` later; it commits
// nothing meanwhile, another node is elected in a higher term, and once resumed the old
// leader follows that term.
#[test]
fn pause_leader_is_replaced_and_resumes_as_follower() {
    let (outcome, run) = run3(
        "22s",
        r#"(at: "10s", fault: Pause(target: Leader(group: 0), for: "9s"))"#,
        3,
    );
    assert_clean(&outcome);
    let (old, old_term) = leader_at(&run, 0..3, T).expect("a leader at 10 s");
    assert_eq!(events(&run, &ObservedKind::Paused, 0, u64::MAX), [(T, old)]);
    assert_eq!(
        events(&run, &ObservedKind::Resumed, 0, u64::MAX),
        [(19 * S, old)]
    );
    assert!(commits(&run, T + 1, 19 * S).iter().all(|(_, n)| *n != old));
    let new = elected(&run, 0..3, T, 19 * S);
    assert!(
        new.iter().any(|(_, n, term)| *n != old && *term > old_term),
        "{}",
        dump(&run, T)
    );
    assert_eq!(run.failover_faults.len(), 1);
    let back = roles(&run, old.0..old.0 + 1, 19 * S, 21 * S);
    assert!(
        back.iter()
            .any(|(_, _, role, term)| *role == Role::Follower && *term > old_term),
        "{}",
        dump(&run, 19 * S)
    );
}

// Isolate(Leader) cuts the leader off: a failover fault is recorded, the isolated leader
// steps down by check-quorum max_heartbeat_leak × heartbeat (6 s) after it last heard from a
// follower, and a new leader is elected among the others.
#[test]
fn isolated_leader_steps_down_and_is_replaced() {
    let (outcome, run) = run3("22s", r#"(at: "10s", fault: Isolate(Leader(group: 0)))"#, 4);
    assert_clean(&outcome);
    let (old, old_term) = leader_at(&run, 0..3, T).expect("a leader at 10 s");
    assert_eq!(run.failover_faults.len(), 1);
    assert_eq!(run.failover_faults[0].old_leader, old);
    assert_eq!(run.failover_faults[0].t0_us, T);
    let stepped: Vec<_> = roles(&run, old.0..old.0 + 1, T, 22 * S);
    let first = stepped
        .first()
        .unwrap_or_else(|| panic!("{}", dump(&run, T)));
    assert_eq!((first.2, first.3), (Role::Follower, old_term));
    assert!(
        (T + 5 * S..=T + 7 * S).contains(&first.0),
        "stepped down at {} µs",
        first.0
    );
    let new = elected(&run, 0..3, T, 20 * S);
    assert!(
        new.iter().any(|(_, n, term)| *n != old && *term > old_term),
        "{}",
        dump(&run, T)
    );
    // Without the fault, the leader keeps its term to the end.
    let (_, clean) = run3("22s", "", 4);
    assert!(elected(&clean, 0..3, T, 22 * S).is_empty());
}

// A 2 s isolation is shorter than the 6 s election timeout: the old leader leads its term
// again after the heal, no replica replaces it, and the fault is recorded as a healed cut,
// not as a failover whose stages would be some later election's. The same isolation held for
// 10 s is a failover.
#[test]
fn short_isolation_heals_before_failover_and_is_not_counted_as_one() {
    let faults = r#"(at: "10s", fault: Isolate(Leader(group: 0))), (at: "12s", fault: Heal)"#;
    let (outcome, run) = run3("30s", faults, 4);
    assert_clean(&outcome);
    let (old, old_term) = leader_at(&run, 0..3, T).expect("a leader at 10 s");
    assert_eq!(run.failover_faults.len(), 1);
    assert_eq!(run.failover_faults[0].healed_us, Some(12 * S));
    assert!(
        elected(&run, 0..3, T, 30 * S).is_empty(),
        "{}",
        dump(&run, T)
    );
    assert_eq!(leader_at(&run, 0..3, 30 * S), Some((old, old_term)));
    assert!(outcome.failovers.is_empty());
    assert_eq!(outcome.cuts_healed.len(), 1);
    assert_eq!(outcome.cuts_healed[0].elect_us, None);

    let faults = r#"(at: "10s", fault: Isolate(Leader(group: 0))), (at: "20s", fault: Heal)"#;
    let (outcome, run) = run3("30s", faults, 4);
    assert_clean(&outcome);
    assert_eq!(run.failover_faults[0].healed_us, None);
    assert!(outcome.cuts_healed.is_empty());
    assert_eq!(outcome.failovers.len(), 1);
    assert!(outcome.failovers[0].elect_us.is_some());
}

/// The first seed (from 1) whose group-0 leader at 10 s is (or is not) node 0.
fn seed_with_node0_leading(leading: bool) -> u64 {
    (1..40)
        .find(|seed| {
            let (_, run) = run3("12s", "", *seed);
            leader_at(&run, 0..3, T).map(|(n, _)| n == NodeId(0)) == Some(leading)
        })
        .expect("some seed among 40 has each leader")
}

// Partition([[0], [1, 2]]) with node 0 leading: a failover, 1 or 2 elected in a higher term,
// and after Heal node 0 learns the new term (before the end-of-phase heal).
#[test]
fn partition_cuts_off_leading_node0_and_heal_ends_it() {
    let seed = seed_with_node0_leading(true);
    let (outcome, run) = run3(
        "24s",
        r#"(at: "10s", fault: Partition([[0], [1, 2]])), (at: "18s", fault: Heal)"#,
        seed,
    );
    assert_clean(&outcome);
    let (_, old_term) = leader_at(&run, 0..3, T).expect("a leader at 10 s");
    assert_eq!(run.failover_faults.len(), 1);
    assert_eq!(run.failover_faults[0].old_leader, NodeId(0));
    let new = elected(&run, 0..3, T, 18 * S);
    let &(_, new_leader, new_term) = new.last().unwrap_or_else(|| panic!("{}", dump(&run, T)));
    assert!(new_leader != NodeId(0) && new_term > old_term);
    let rejoined = roles(&run, 0..1, 18 * S, 24 * S);
    assert!(
        rejoined
            .iter()
            .any(|(at, _, role, term)| *role == Role::Follower
                && *term == new_term
                && *at < 21 * S),
        "{}",
        dump(&run, T)
    );
}

// Partition([[0], [1, 2]]) with node 0 following: no failover, the leader keeps its term,
// node 0 campaigns in vain (pre-votes: its term does not rise) and follows again after Heal.
#[test]
fn partition_cuts_off_following_node0_and_heal_ends_it() {
    let seed = seed_with_node0_leading(false);
    let (outcome, run) = run3(
        "24s",
        r#"(at: "10s", fault: Partition([[0], [1, 2]])), (at: "18s", fault: Heal)"#,
        seed,
    );
    assert_clean(&outcome);
    let (leader, term) = leader_at(&run, 0..3, T).expect("a leader at 10 s");
    assert!(run.failover_faults.is_empty());
    assert!(
        elected(&run, 0..3, T, 24 * S).is_empty(),
        "{}",
        dump(&run, T)
    );
    assert_eq!(leader_at(&run, 0..3, 24 * S), Some((leader, term)));
    assert!(
        !campaigners(&run, 0..1, T, 18 * S).is_empty(),
        "{}",
        dump(&run, T)
    );
    let node0 = roles(&run, 0..1, T, 24 * S);
    assert!(node0.iter().all(|(.., t)| *t == term), "{}", dump(&run, T));
    assert!(
        node0
            .iter()
            .any(|(at, _, role, _)| *role == Role::Follower && (18 * S..21 * S).contains(at)),
        "{}",
        dump(&run, T)
    );
    // Without the partition node 0 never campaigns.
    let (_, clean) = run3("24s", "", seed);
    assert!(campaigners(&clean, 0..1, T, 24 * S).is_empty());
}

// Bridge on 5 replicas: two halves sharing one node. A majority always reaches the leader
// (unless it is the bridge, nobody loses it), so commits and acknowledged sends go on, no
// two leaders in a term (no findings), and in some seeds the far half campaigns in vain,
// which it never does without the fault.
#[test]
fn bridge_keeps_one_leader_and_commits() {
    let mut campaigned = 0;
    for seed in 1..=4 {
        let text = scenario(1, 5, 2, "22s", r#"(at: "10s", fault: Bridge(group: 0))"#);
        let (outcome, run) = run_text(&text, seed);
        assert_clean(&outcome);
        assert!(run.failover_faults.is_empty(), "seed {seed}");
        assert!(commits(&run, 12 * S, 22 * S).len() > 20, "seed {seed}");
        let (acked, _) = sends(&run, 12 * S, 20 * S);
        assert!(acked.len() > 100, "seed {seed}: {} acked", acked.len());
        if !campaigners(&run, 0..5, T, 22 * S).is_empty() {
            campaigned += 1;
        }
        let (_, clean) = run_text(&scenario(1, 5, 2, "22s", ""), seed);
        assert!(campaigners(&clean, 0..5, T, 22 * S).is_empty());
    }
    assert!(campaigned > 0, "the bridge cut someone off the leader");
}

// MajoritiesRing on 5 replicas: every node sees a different majority. The leader keeps its
// two ring neighbours (no failover, commits and sends go on); the two nodes not next to it
// lose it and campaign, and cannot win (no findings, leader unchanged).
#[test]
fn majorities_ring_keeps_one_leader_and_commits() {
    for seed in 1..=3 {
        let text = scenario(
            1,
            5,
            2,
            "22s",
            r#"(at: "10s", fault: MajoritiesRing(group: 0))"#,
        );
        let (outcome, run) = run_text(&text, seed);
        assert_clean(&outcome);
        let leader = leader_at(&run, 0..5, T).expect("a leader at 10 s");
        assert!(run.failover_faults.is_empty(), "seed {seed}");
        assert_eq!(
            leader_at(&run, 0..5, 20 * S),
            Some(leader),
            "{}",
            dump(&run, T)
        );
        assert!(commits(&run, 12 * S, 20 * S).len() > 20, "seed {seed}");
        let (acked, _) = sends(&run, 12 * S, 20 * S);
        assert!(acked.len() > 100, "seed {seed}: {} acked", acked.len());
        let cut_off: BTreeSet<NodeId> = roles(&run, 0..5, T, 20 * S)
            .into_iter()
            .filter(|(_, _, role, _)| *role == Role::PreCandidate)
            .map(|(_, n, ..)| n)
            .collect();
        assert_eq!(cut_off.len(), 2, "seed {seed}: {}", dump(&run, T));
        assert!(!cut_off.contains(&leader.0));
    }
}

/// µs from the crash at 10 s to the first (pre-)vote in group 0.
fn detect_us(run: &SeedRun) -> u64 {
    let first = campaigners(run, 0..3, T, u64::MAX);
    first.first().expect("someone campaigns after the crash") - T
}

const ALL_FAST: &str = r#"(at: "9s", fault: ClockDrift(target: Node(0), ppm: 500000)),
    (at: "9s", fault: ClockDrift(target: Node(1), ppm: 500000)),
    (at: "9s", fault: ClockDrift(target: Node(2), ppm: 500000)),"#;

// ClockDrift: clocks running 50 % fast time out in 2/3 of the true time, so the followers
// notice a crashed leader sooner than the same seed without drift (6.3–7 s local = 4.2–4.7 s).
#[test]
fn fast_clocks_detect_a_crashed_leader_sooner() {
    for seed in 1..=2 {
        let crash = r#"(at: "10s", fault: Crash(Leader(group: 0)))"#;
        let (outcome, drifted) = run3("20s", &format!("{ALL_FAST} {crash}"), seed);
        assert_clean(&outcome);
        let (_, plain) = run3("20s", crash, seed);
        assert!(detect_us(&drifted) < 5 * S, "{}", detect_us(&drifted));
        assert!(detect_us(&plain) > 6 * S, "{}", detect_us(&plain));
    }
}

// ClockResync puts drifted clocks back on true time: detection takes as long as without drift.
#[test]
fn resync_undoes_drift() {
    let resync = r#"(at: "9500ms", fault: ClockResync(Node(0))),
        (at: "9500ms", fault: ClockResync(Node(1))),
        (at: "9500ms", fault: ClockResync(Node(2))),
        (at: "10s", fault: Crash(Leader(group: 0)))"#;
    let (outcome, run) = run3("20s", &format!("{ALL_FAST} {resync}"), 1);
    assert_clean(&outcome);
    assert!(detect_us(&run) > 6 * S, "{}", detect_us(&run));
    let crash_only = r#"(at: "10s", fault: Crash(Leader(group: 0)))"#;
    let (_, drifted) = run3("20s", &format!("{ALL_FAST} {crash_only}"), 1);
    assert!(detect_us(&drifted) < 5 * S, "{}", detect_us(&drifted));
}

/// Two groups of 3; only group 0 gets sends, so group 1 (nodes 3–5) only sees heartbeats.
fn run_idle_group(faults: &str, seed: u64) -> (SeedOutcome, SeedRun) {
    run_text(&scenario(2, 3, 1, "22s", faults), seed)
}

// ClockJump backwards on an idle leader: its core clock stands still until local time
// catches up, so it sends no heartbeats and its followers elect a new leader once their
// timeout (6 s + jitter after the last heartbeat, sent at most 2 s before the jump) runs out;
// without the jump group 1 keeps its leader.
#[test]
fn backward_jump_on_an_idle_leader_starts_an_election() {
    let (outcome, run) = run_idle_group(
        r#"(at: "10s", fault: ClockJump(target: Leader(group: 1), by: "-20s"))"#,
        1,
    );
    assert_clean(&outcome);
    let (old, old_term) = leader_at(&run, 3..6, T).expect("group 1 has a leader");
    let new = elected(&run, 3..6, T, 20 * S);
    assert!(
        new.iter()
            .any(|(at, n, term)| *n != old && *term > old_term && *at >= T + 4 * S),
        "{}",
        dump(&run, T)
    );
    assert!(
        elected(&run, 0..3, T, 20 * S).is_empty(),
        "group 0 unaffected"
    );
    let (_, clean) = run_idle_group("", 1);
    assert!(elected(&clean, 3..6, T, 22 * S).is_empty());
}

/// When group 1's leader steps down (Role Follower in its term) in `[10 s, 14 s)`, if it does.
fn idle_leader_steps_down(run: &SeedRun) -> Option<u64> {
    let (old, term) = leader_at(run, 3..6, T).expect("group 1 has a leader");
    roles(run, old.0..old.0 + 1, T, 14 * S)
        .into_iter()
        .find(|(_, _, role, t)| *role == Role::Follower && *t == term)
        .map(|(at, ..)| at)
}

// ClockJump steps from the current reading, ClockOffset sets the offset from true time:
// two +3 s jumps add up to +6 s and the idle leader, whose last ack is then more than
// max_heartbeat_leak × heartbeat old on its clock, steps down at its next heartbeat; two
// +3 s offsets leave it 3 s ahead, and it keeps leading, as without any fault.
#[test]
fn jumps_add_up_and_offsets_do_not() {
    let jumps = r#"(at: "10s", fault: ClockJump(target: Leader(group: 1), by: "+3s")),
        (at: "10s", fault: ClockJump(target: Leader(group: 1), by: "+3s"))"#;
    let (outcome, jumped) = run_idle_group(jumps, 1);
    assert_clean(&outcome);
    let at = idle_leader_steps_down(&jumped).unwrap_or_else(|| panic!("{}", dump(&jumped, T)));
    assert!(at <= T + 2 * S + 50_000, "at its next heartbeat: {at}");
    let offsets = jumps
        .replace("ClockJump", "ClockOffset")
        .replace("by:", "offset:");
    let (_, offset) = run_idle_group(&offsets, 1);
    assert_eq!(
        idle_leader_steps_down(&offset),
        None,
        "{}",
        dump(&offset, T)
    );
    let (_, clean) = run_idle_group("", 1);
    assert_eq!(idle_leader_steps_down(&clean), None);
}

// ClockStrobe: the clock swings +8 s / back every 3 s; the first swing puts the idle leader's
// clock 8 s ahead and it steps down at its next heartbeat (check quorum), which it never does
// without the strobe.
#[test]
fn clock_strobe_on_an_idle_leader_makes_it_step_down() {
    let (outcome, run) = run_idle_group(
        r#"(at: "10s", fault: ClockStrobe(target: Leader(group: 1), delta: "8s", period: "3s", for: "6s"))"#,
        1,
    );
    assert_clean(&outcome);
    let at = idle_leader_steps_down(&run).unwrap_or_else(|| panic!("{}", dump(&run, T)));
    assert!(at <= T + 2 * S + 50_000, "{at}");
    assert!(run.settle_us.iter().all(Option::is_some));
    let (_, clean) = run_idle_group("", 1);
    assert_eq!(idle_leader_steps_down(&clean), None);
}

// ClockJump forwards on an idle follower should fire its election timer at once (the doc of
// Fault::ClockJump: "a forward jump makes every timer that falls inside the jump fire at
// once"), so it asks for pre-votes right after the jump; without the jump it never does.
// It does not: the adapter (world/replica.rs) sleeps until the deadline it computed before
// the jump, the next heartbeat wakes it first, and the core handles that message with the
// jumped clock, which re-arms the election timer before any Tick sees it overdue.
#[test]

fn forward_jump_on_a_follower_fires_its_election_timer() {
    let (_, run) = run_idle_group(
        r#"(at: "10s", fault: ClockJump(target: Follower(group: 1), by: "+10s"))"#,
        1,
    );
    let campaigns = campaigners(&run, 3..6, T, T + 2 * S + 50_000);
    assert!(!campaigns.is_empty(), "{}", dump(&run, T));
    let (_, clean) = run_idle_group("", 1);
    assert!(campaigners(&clean, 3..6, T, 22 * S).is_empty());
}

// Latency(min, max) on the whole network: a send takes 4 one-way hops (client, leader,
// follower, back), so acknowledged sends take at least 4 × 100 ms, against a few ms without.
#[test]
fn whole_network_latency_slows_sends() {
    let (outcome, run) = run3(
        "20s",
        r#"(at: "10s", fault: Latency(min: "100ms", max: "150ms"))"#,
        1,
    );
    assert_clean(&outcome);
    // Sends still in flight at the end of the fault phase (20 s) finish on the healed network.
    let (acked, _) = sends(&run, 11 * S, 19 * S);
    assert!(acked.len() > 50);
    assert!(acked[0] >= 400_000, "fastest {} µs", acked[0]);
    let (before, _) = sends(&run, 8 * S, T - S);
    assert!(before[before.len() / 2] < 100_000);
    let (_, clean) = run3("20s", "", 1);
    let (fast, _) = sends(&clean, 11 * S, 20 * S);
    assert!(fast[fast.len() / 2] < 100_000);
}

// Loss(ppm) on the whole network: 10 % of messages dropped. Sends still get acknowledged, but
// some time out or fail and are retried; without loss every send is acknowledged.
#[test]
fn whole_network_loss_fails_some_sends() {
    let (outcome, run) = run3("20s", r#"(at: "10s", fault: Loss(ppm: 100000))"#, 1);
    assert_clean(&outcome);
    let (acked, failed) = sends(&run, T, 20 * S);
    assert!(acked.len() > 100, "{} acked", acked.len());
    assert!(failed > 0);
    let (_, clean) = run3("20s", "", 1);
    let (clean_acked, clean_failed) = sends(&clean, T, 20 * S);
    assert_eq!(clean_failed, 0);
    assert!(acked.len() < clean_acked.len());
}

// TransferLeader(group, to): the named node becomes leader in a higher term within a second,
// and clients only see failures in a short window around it.
#[test]
fn transfer_leader_moves_leadership_to_the_target() {
    for seed in 1..=3 {
        let (_, clean) = run3("20s", "", seed);
        let (old, old_term) = leader_at(&clean, 0..3, T).expect("a leader at 10 s");
        let to = (old.0 + 1) % 3;
        let (outcome, run) = run3(
            "20s",
            &format!(r#"(at: "10s", fault: TransferLeader(group: 0, to: Node({to})))"#),
            seed,
        );
        assert_clean(&outcome);
        assert_eq!(leader_at(&run, 0..3, T), Some((old, old_term)));
        let new = elected(&run, 0..3, T, 20 * S);
        assert_eq!(new.len(), 1, "seed {seed}: {}", dump(&run, T));
        let (at, node, term) = new[0];
        assert_eq!(node, NodeId(to));
        assert!(term > old_term && at < T + S, "seed {seed}: {at}");
        let (acked, failed) = sends(&run, T + 3 * S, 20 * S);
        assert_eq!(failed, 0, "seed {seed}");
        assert!(acked.len() > 100);
        assert!(run.failover_faults.is_empty());
        // Follower target: the seeded pick, never the leader itself.
        let (_, run) = run3(
            "20s",
            r#"(at: "10s", fault: TransferLeader(group: 0, to: Follower(group: 0)))"#,
            seed,
        );
        let new = elected(&run, 0..3, T, 20 * S);
        assert!(new.len() == 1 && new[0].1 != old, "seed {seed}: {new:?}");
    }
}

fn crashed_at_10s(run: &SeedRun) -> BTreeSet<NodeId> {
    events(run, &ObservedKind::Crashed, T, T + 1)
        .into_iter()
        .map(|(_, n)| n)
        .collect()
}

// Crash(Minority) on 5 replicas crashes 2 nodes, the leader among them; the 3 others elect a
// new leader. The same seed picks the same nodes again.
#[test]
fn minority_target_is_two_of_five_with_the_leader() {
    let text = scenario(
        1,
        5,
        2,
        "20s",
        r#"(at: "10s", fault: Crash(Minority(group: 0)))"#,
    );
    let (outcome, run1) = run_text(&text, 1);
    assert_clean(&outcome);
    let (leader, term) = leader_at(&run1, 0..5, T).expect("a leader");
    let crashed = crashed_at_10s(&run1);
    assert_eq!(crashed.len(), 2);
    assert!(crashed.contains(&leader));
    assert!(elected(&run1, 0..5, T, 20 * S)
        .iter()
        .any(|(_, n, t)| !crashed.contains(n) && *t > term));
    let (_, again) = run_text(&text, 1);
    assert_eq!(crashed_at_10s(&again), crashed);
}

// Crash(Majority) on 5 replicas crashes 3 nodes, the leader among them: no commits at all
// until Restart(AllCrashed) brings all three back, then commits resume.
#[test]
fn majority_target_is_three_of_five_and_stops_commits() {
    let text = scenario(
        1,
        5,
        2,
        "25s",
        r#"(at: "10s", fault: Crash(Majority(group: 0))), (at: "17s", fault: Restart(AllCrashed))"#,
    );
    let (outcome, run1) = run_text(&text, 1);
    assert_clean(&outcome);
    let (leader, _) = leader_at(&run1, 0..5, T).expect("a leader");
    let crashed = crashed_at_10s(&run1);
    assert_eq!(crashed.len(), 3);
    assert!(crashed.contains(&leader));
    assert!(commits(&run1, T + 1, 17 * S).is_empty());
    let back: BTreeSet<NodeId> = restarted(&run1)
        .into_iter()
        .filter(|(at, _)| *at == 17 * S)
        .map(|(_, n)| n)
        .collect();
    assert_eq!(back, crashed);
    assert!(!commits(&run1, 17 * S, 25 * S).is_empty());
    let (_, again) = run_text(&text, 1);
    assert_eq!(crashed_at_10s(&again), crashed);
}

// Crash(Random) crashes exactly one node of the whole cluster (both groups), chosen by the
// seed: the same seed the same node, and different seeds reach different nodes.
#[test]
fn random_target_is_one_seeded_node_of_the_cluster() {
    let text = scenario(2, 3, 2, "12s", r#"(at: "10s", fault: Crash(Random))"#);
    let mut picked = BTreeSet::new();
    for seed in 1..=8 {
        let (_, run1) = run_text(&text, seed);
        let crashed = crashed_at_10s(&run1);
        assert_eq!(crashed.len(), 1, "seed {seed}");
        let (_, again) = run_text(&text, seed);
        assert_eq!(crashed_at_10s(&again), crashed, "seed {seed}");
        picked.extend(crashed);
    }
    assert!(picked.len() >= 3, "{picked:?}");
    assert!(
        picked.iter().any(|n| n.0 >= 3),
        "group 1 can be hit: {picked:?}"
    );
}

// Reads through the log (`RaftLogRead`) append an entry per pull, and consumers keep pulling
// through the heal phase, so the log never stops growing: a group must still count as settled
// once every replica has applied what the leader had committed a poll earlier (before, 9 of 50
// leader_crash seeds with RaftLogRead were reported not settled).
#[test]
fn a_log_kept_growing_by_log_reads_still_settles() {
    let faults =
        r#"(at: "10s", fault: Crash(Leader(group: 0))), (at: "14s", fault: Restart(AllCrashed))"#;
    let text = scenario(1, 3, 2, "24s", faults)
        .replace(
            "cluster: (groups: 1, replicas: 3)",
            "cluster: (groups: 1, replicas: 3, read_mode: RaftLogRead)",
        )
        .replace("queues: 2)])", "queues: 2)], consumers: 1)");
    assert!(text.contains("RaftLogRead") && text.contains("consumers: 1"));
    for seed in 1..=4 {
        let (outcome, run) = run_text(&text, seed);
        assert!(
            run.settle_us.iter().all(Option::is_some),
            "seed {seed}: {:?}",
            run.settle_us
        );
        assert_clean(&outcome);
    }
}
