//! The property test: thousands of seeded random schedules (3 and 5 nodes) with message loss,
//! duplication, reordering, partitions, crashes that lose unsynced writes (sometimes tearing the
//! last entry), restarts and leadership transfers. The harness checks Election Safety, Log
//! Matching, Leader Completeness, State Machine Safety, one vote per term, consecutive applies
//! and durable commits after every event; at the end faults stop and the cluster must elect a
//! leader that commits a new proposal within `LIVENESS_BOUND_MS`.
//!
//! Deterministic per seed. Replay one: `RAFT_SEED=123 RAFT_NODES=5 cargo test -p broker-core
//! --test cluster_random -- --nocapture replay`. More schedules: `RAFT_SCHEDULES=20000`.

mod harness;

use broker_core::types::NodeId;
use harness::{fast_config, Cluster, Network};
use rand::Rng;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Simulated duration of the fault phase of one schedule.
const FAULT_PHASE_MS: u64 = 10_000;
/// After faults stop, a proposal must commit within this (simulated) time. With heartbeat
/// 100 ms it is about 9 election rounds (timeout base 300 ms + vote interval up to 150 ms).
const LIVENESS_BOUND_MS: u64 = 4000;
/// Schedules per cluster size in the default test run (two sizes: 2 × 2500 = 5000).
const SCHEDULES_DEFAULT: u64 = 2500;

#[derive(Debug, Default)]
struct Totals {
    schedules: u64,
    events: u64,
    checks: u64,
    crashes: u64,
    leaders: u64,
    commits: u64,
    worst_recovery_ms: u64,
}

/// Runs one random schedule; returns (events, checks, crashes, terms with a leader, commits,
/// ms from heal to the first new commit).
fn run_schedule(seed: u64, size: u32) -> (harness::Stats, u64, usize, usize, u64) {
    run_schedule_with(seed, size, fast_config())
}

fn run_schedule_with(
    seed: u64,
    size: u32,
    config: broker_core::raft::Config,
) -> (harness::Stats, u64, usize, usize, u64) {
    let (cluster, recovery_ms) = run_cluster(seed, size, config, false);
    (
        cluster.stats.clone(),
        cluster.checker.checks,
        cluster.checker.leader_count(),
        cluster.checker.committed_count(),
        recovery_ms,
    )
}

/// Runs one random schedule; returns the cluster and the ms from heal to the first new
/// commit. With `record_violations` the checker records broken properties instead of
/// panicking (DLedger fidelity).
fn run_cluster(
    seed: u64,
    size: u32,
    config: broker_core::raft::Config,
    record_violations: bool,
) -> (Cluster, u64) {
    let mut cluster = Cluster::new(seed, size, config);
    cluster.checker.record_violations = record_violations;
    cluster.network = Network {
        drop_ppm: cluster.rng().gen_range(0..150_000),
        duplicate_ppm: cluster.rng().gen_range(0..50_000),
        delay_ms_min: 1,
        delay_ms_max: cluster.rng().gen_range(2..40),
        fsync_ms_max: cluster.rng().gen_range(1..60),
        ..Network::default()
    };
    let ids = cluster.ids.clone();
    let mut now = 0;
    while now < FAULT_PHASE_MS {
        now += cluster.rng().gen_range(1..20);
        cluster.run_until(now);
        random_action(&mut cluster, &ids);
    }
    cluster.heal_all();
    let healed_at = cluster.now_ms();
    let committed_at = cluster
        .await_commit(healed_at, LIVENESS_BOUND_MS)
        .unwrap_or_else(|| {
            panic!(
                "liveness: no commit within {LIVENESS_BOUND_MS} ms after healing at {healed_at}: \
                 {:#?}",
                cluster.statuses()
            )
        });
    (cluster, committed_at - healed_at)
}

/// One random client or fault action; with actions every ~15 ms, faults come about every
/// 100 ms on average, proposals every ~25 ms.
fn random_action(cluster: &mut Cluster, ids: &[NodeId]) {
    let pick = |cluster: &mut Cluster| ids[cluster.rng().gen_range(0..ids.len())];
    match cluster.rng().gen_range(0..1000) {
        0..=599 => {
            let target = match cluster.leader() {
                Some(leader) if cluster.rng().gen_bool(0.8) => leader,
                _ => pick(cluster),
            };
            cluster.propose(target);
        }
        600..=614 => {
            let victim = pick(cluster);
            cluster.crash(victim);
        }
        615..=624 => {
            let victim = cluster.leader().unwrap_or_else(|| pick(cluster));
            cluster.crash(victim);
        }
        625..=659 => {
            let node = pick(cluster);
            cluster.restart(node);
        }
        660..=679 => {
            let side: Vec<NodeId> = ids
                .iter()
                .copied()
                .filter(|_| cluster.rng().gen_bool(0.4))
                .collect();
            cluster.heal_network();
            cluster.partition(&side);
        }
        680..=689 => {
            let (from, to) = (pick(cluster), pick(cluster));
            cluster.block_one_way(from, to);
        }
        690..=714 => cluster.heal_network(),
        715..=729 => {
            if let Some(leader) = cluster.leader() {
                let target = pick(cluster);
                cluster.transfer_leadership(leader, target);
            }
        }
        730..=744 => {
            let drop_ppm = cluster.rng().gen_range(0..200_000);
            cluster.network.drop_ppm = drop_ppm;
        }
        _ => {}
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|value| {
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {value:?}"))
    })
}

fn run_many(size: u32, first_seed: u64) -> Totals {
    let count = env_u64("RAFT_SCHEDULES").unwrap_or(SCHEDULES_DEFAULT);
    let mut totals = Totals::default();
    for seed in first_seed..first_seed + count {
        let outcome = catch_unwind(AssertUnwindSafe(|| run_schedule(seed, size)));
        let (stats, checks, leaders, commits, recovery_ms) = outcome.unwrap_or_else(|_| {
            panic!(
                "schedule failed: seed {seed}, {size} nodes. REPRODUCE WITH: RAFT_SEED={seed} \
                 RAFT_NODES={size} cargo test -p broker-core --test cluster_random -- \
                 --nocapture replay"
            )
        });
        totals.schedules += 1;
        totals.events += stats.events;
        totals.crashes += stats.crashes;
        totals.checks += checks;
        totals.leaders += leaders as u64;
        totals.commits += commits as u64;
        totals.worst_recovery_ms = totals.worst_recovery_ms.max(recovery_ms);
    }
    println!("{size} nodes: {totals:?}");
    totals
}

#[test]
fn random_schedules_3_nodes() {
    // Why: Raft's safety properties must hold under every interleaving of loss, reordering,
    // duplication, partitions and crashes; liveness must return once faults stop.
    let totals = run_many(3, 1_000_000);
    assert!(
        totals.leaders >= totals.schedules,
        "schedules without elections: {totals:?}"
    );
    assert!(
        totals.commits > totals.schedules,
        "schedules without commits: {totals:?}"
    );
}

#[test]
fn random_schedules_5_nodes() {
    // Why: as above with 5 nodes, where a majority of 3 admits more overlapping minorities.
    let totals = run_many(5, 2_000_000);
    assert!(
        totals.leaders >= totals.schedules,
        "schedules without elections: {totals:?}"
    );
    assert!(
        totals.commits > totals.schedules,
        "schedules without commits: {totals:?}"
    );
}

#[test]
fn random_schedules_without_pre_vote() {
    // Why: pre-vote is a config switch; without it candidates bump terms directly and only
    // leader stickiness protects the leader. Safety must not depend on pre-vote.
    let config = broker_core::raft::Config {
        pre_vote: false,
        ..fast_config()
    };
    for seed in 3_000_000..3_000_500 {
        let size = if seed % 2 == 0 { 3 } else { 5 };
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            run_schedule_with(seed, size, config.clone())
        }));
        assert!(
            outcome.is_ok(),
            "schedule without pre-vote failed: seed {seed}, {size} nodes"
        );
    }
}

#[test]
fn random_schedules_with_dledger_fidelity() {
    // Why: DLedger fidelity breaks Raft safety on purpose (Figure 8 commits by count), so its
    // violations are counted, not asserted; what must hold is that no node panics (every
    // break it makes is recorded as a value), and liveness once faults stop.
    let count = env_u64("RAFT_DLEDGER_SCHEDULES").unwrap_or(500);
    let (mut schedules, mut with_violations, mut node_violations) = (0u64, 0u64, 0usize);
    for seed in 4_000_000..4_000_000 + count {
        let size = if seed % 2 == 0 { 3 } else { 5 };
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            run_cluster(seed, size, harness::fast_dledger_config(), true)
        }));
        let (cluster, _) = outcome.unwrap_or_else(|_| {
            panic!("DLedger-fidelity schedule failed: seed {seed}, {size} nodes")
        });
        schedules += 1;
        node_violations += cluster.node_violations.len();
        if !cluster.checker.violations.is_empty() || !cluster.node_violations.is_empty() {
            with_violations += 1;
        }
    }
    println!(
        "DLedger fidelity: {schedules} schedules, {with_violations} with Raft safety violations, \
         {node_violations} recorded by nodes"
    );
}

#[test]
fn schedules_are_deterministic_per_seed() {
    // Why: a failing seed is only useful if it replays bit for bit.
    let first = run_schedule(42, 5);
    let second = run_schedule(42, 5);
    assert_eq!(format!("{first:?}"), format!("{second:?}"));
}

#[test]
fn replay() {
    // Why: replays one seed (RAFT_SEED, RAFT_NODES) when investigating a failure; without the
    // variables it replays seed 1 with 3 nodes, which must pass.
    let seed = env_u64("RAFT_SEED").unwrap_or(1);
    let size = env_u64("RAFT_NODES").unwrap_or(3) as u32;
    let (stats, checks, leaders, commits, recovery_ms) = run_schedule(seed, size);
    println!("seed {seed}: {stats:?} checks {checks} leaders {leaders} commits {commits} recovery {recovery_ms} ms");
}
