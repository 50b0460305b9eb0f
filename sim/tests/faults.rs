//! Each fault kind's effect on the world, not only that it parses: datagrams through our send
//! path (duplication, per-link loss and latency), clocks, disks, torn-tail recovery, the swarm
//! schedule, and one short whole-world run per network cut.

use broker_core::broker::{Broker, ClientResponse};
use broker_core::proto::{Message, PeerMessage};
use broker_core::store::{Entry, EntryKind, HardState, PersistOp};
use broker_core::{raft, LogIndex, NodeId, Term};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sim::nemesis::swarm;
use sim::run::run_seed;
use sim::run::RunSpec;
use sim::scenario::Scenario;
use sim::world::disk::Disk;
use sim::world::network::{BaseNetwork, LinkFaults, NetworkState};
use sim::world::wire::Wire;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

fn addr(n: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)), 9876)
}

fn peer_wire() -> Wire {
    Wire::Peer {
        from: NodeId(0),
        msg: PeerMessage::Raft(Message::VoteResponse {
            term: Term(1),
            pre_vote: false,
            granted: true,
            reject_reason: None,
        }),
    }
}

fn response_wire() -> Wire {
    Wire::Response {
        request_id: 1,
        response: ClientResponse::Busy,
    }
}

/// Routes `count` datagrams from 10.0.0.1 to 10.0.0.2 through the world's send path with the
/// link faults `setup` sets, over a 1–10 ms network; returns each copy's delay in ms.
fn deliver(count: usize, wire: fn() -> Wire, setup: fn(&mut LinkFaults)) -> Vec<u64> {
    let mut network = NetworkState::new(BaseNetwork {
        latency_us_min: 1_000,
        latency_us_max: 10_000,
        loss_ppm: 0,
    });
    setup(&mut network.link_faults);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    (0..count)
        .flat_map(|_| {
            let peer = matches!(wire(), Wire::Peer { .. });
            network.route(addr(1), addr(2), peer, &mut rng)
        })
        .map(|delay_us| delay_us / 1_000)
        .collect()
}

/// No link fault.
fn none(_faults: &mut LinkFaults) {}

// Duplicate(ppm: 1e6) delivers every replica-to-replica message twice, and never a client's.
#[test]
fn duplicate_delivers_peer_messages_twice() {
    fn all(faults: &mut LinkFaults) {
        faults.set_duplicate_ppm(1_000_000);
    }
    assert_eq!(deliver(50, peer_wire, all).len(), 100);
    assert_eq!(deliver(50, response_wire, all).len(), 50);
    assert_eq!(deliver(50, peer_wire, none).len(), 50);
}

// LinkLoss drops on its own direction only; Heal (clear_links) ends it.
#[test]
fn link_loss_drops_one_direction() {
    fn lossy(faults: &mut LinkFaults) {
        faults.set_link_loss(addr(1).ip(), addr(2).ip(), 500_000);
    }
    fn reverse(faults: &mut LinkFaults) {
        faults.set_link_loss(addr(2).ip(), addr(1).ip(), 1_000_000);
    }
    fn healed(faults: &mut LinkFaults) {
        lossy(faults);
        faults.clear_links();
    }
    let half = deliver(400, peer_wire, lossy).len();
    assert!(
        (120..280).contains(&half),
        "about half lost, got {half} of 400"
    );
    assert_eq!(deliver(100, peer_wire, reverse).len(), 100);
    assert_eq!(deliver(100, peer_wire, healed).len(), 100);
}

// LinkLatency adds its delay on top of the network's (1–10 ms here).
#[test]
fn link_latency_delays_the_link() {
    fn slow(faults: &mut LinkFaults) {
        faults.set_link_latency(addr(1).ip(), addr(2).ip(), 500_000, 600_000);
    }
    let arrivals = deliver(20, peer_wire, slow);
    assert_eq!(arrivals.len(), 20);
    assert!(
        arrivals.iter().all(|ms| (500..=620).contains(ms)),
        "{arrivals:?}"
    );
    let fast = deliver(20, peer_wire, none);
    assert!(fast.iter().all(|ms| *ms < 100), "{fast:?}");
}

fn entry(index: u64, previous: u32) -> Entry {
    Entry::new(
        previous,
        LogIndex(index),
        Term(1),
        EntryKind::Normal,
        vec![index as u8],
    )
}

// CrashTornTail corrupts the last surviving unsynced entry; the broker's recovery detects it
// with the chained checksum and cuts the log there.
#[test]
fn torn_tail_is_cut_by_recovery() {
    let mut disk = Disk::new(1_000);
    disk.write(PersistOp::HardState(HardState {
        term: Term(1),
        voted_for: Some(NodeId(0)),
        commit_mark: LogIndex(0),
        log_end_mark: LogIndex(0),
        forgotten_through: LogIndex(0),
    }));
    let mut previous = 0;
    for index in 1..=5 {
        let e = entry(index, previous);
        previous = e.checksum;
        disk.write(PersistOp::Append { entries: vec![e] });
        if index == 2 {
            // The hard state and entries 1..=2 are synced.
            let (upto, _) = disk.start_sync(0);
            disk.complete_sync(upto.expect("two writes pending"));
        }
    }
    assert_eq!(disk.crash_torn(2), Some(4));
    let recovered = disk.recover();
    assert_eq!(recovered.entries.len(), 4);
    let broker = Broker::new(
        raft::Config::default(),
        NodeId(0),
        vec![NodeId(0), NodeId(1), NodeId(2)],
        recovered,
        1,
    )
    .expect("recovery cuts a torn tail instead of failing");
    assert_eq!(
        broker.raft().log().len(),
        3,
        "entry 4 is corrupt: cut there"
    );
}

// SlowDisk: fsyncs take the new latency; syncs asked for meanwhile join the queued one, so
// the backlog stays bounded and drains once the disk is fast again.
#[test]
fn slow_disk_slows_fsync_and_the_backlog_stays_bounded() {
    let mut disk = Disk::new(2_000);
    disk.fsync_latency_us = 1_500_000;
    let completions: Vec<u64> = (0..100).map(|i| disk.start_sync(i * 1_000).1).collect();
    assert_eq!(completions[0], 1_500_000);
    assert!(
        completions.iter().all(|at| *at <= 3_000_000),
        "bounded backlog"
    );
    disk.fsync_latency_us = 2_000;
    assert_eq!(disk.start_sync(3_000_000).1, 3_002_000);
}

fn load(text: &str) -> Scenario {
    Scenario::parse(text, "test.ron").expect("valid test scenario")
}

const SWARM: &str = r#"Scenario(
    name: "t", seeds: (first: 1, count: 1), duration: "60s",
    cluster: (replicas: 5),
    workload: (producers: 1, send_rate: 10, topics: [(name: "a", queues: 1)]),
    faults: [(at: "5s", fault: Random(kinds: [Crash, Partition, ClockJump, SlowDisk, Duplicate],
                                      every: ("1s", "5s"), for: ("1s", "3s")))],
)"#;

// The swarm schedule depends on the run seed alone: not on the workload.
#[test]
fn swarm_schedule_is_seeded_and_ignores_the_workload() {
    let spec = RunSpec::from_scenario(&load(SWARM));
    let busier = RunSpec::from_scenario(&load(&SWARM.replace(
        "producers: 1, send_rate: 10",
        "producers: 8, send_rate: 500",
    )));
    let one = swarm::Timeline::new(&spec.world, &spec.faults, 42).drawn;
    assert!(one.len() >= 10, "a draw every 1–5 s over 55 s");
    assert_eq!(
        one,
        swarm::Timeline::new(&busier.world, &busier.faults, 42).drawn
    );
    assert_ne!(
        one,
        swarm::Timeline::new(&spec.world, &spec.faults, 43).drawn
    );
    for drawn in &one {
        let (at_us, for_us) = (drawn.at.as_us(), drawn.length.as_us());
        assert!((5_000_000..60_000_000).contains(&at_us));
        assert!((1_000_000..=3_000_000).contains(&for_us));
        let nodes = [NodeId(1)];
        let undo = swarm::undo(&spec.world, &drawn.fault, &nodes);
        assert!(!undo.is_empty(), "{:?} is undone", drawn.fault);
    }
}

// Bad swarm fields are reported with the field path.
#[test]
fn swarm_validation_names_the_field() {
    let error = Scenario::parse(&SWARM.replace("[Crash,", "[Crash, Crash,"), "t.ron")
        .expect_err("a kind listed twice");
    let text = error.to_string();
    assert!(text.contains("faults[0].fault.kinds[1]"), "{text}");
    assert!(text.contains("listed twice"), "{text}");
    let three = SWARM
        .replace("replicas: 5", "replicas: 3")
        .replace("[Crash,", "[MajoritiesRing,");
    let error = Scenario::parse(&three, "t.ron").expect_err("a ring needs 5 replicas");
    assert!(error.to_string().contains("needs 5 replicas"), "{error}");
}

/// A short run of one group of 3 with `faults`, returning the run.
fn short_run(faults: &str, seed: u64) -> sim::run::SeedRun {
    let text = format!(
        r#"Scenario(
    name: "t", seeds: (first: 1, count: 1), duration: "20s", cluster: (),
    workload: (producers: 2, send_rate: 20, topics: [(name: "a", queues: 2)]),
    faults: [{faults}],
)"#
    );
    run_seed(Arc::new(RunSpec::from_scenario(&load(&text))), seed)
}

// OneWay into the leader: it can still send (no election while its heartbeats arrive) but
// hears nothing, so it cannot commit: the nemesis counts it as a failover, and the group
// settles after the heal.
#[test]
fn one_way_into_the_leader_is_a_failover_and_heals() {
    let run = short_run(
        r#"(at: "12s", fault: OneWay(from: Node(0), to: Leader(group: 0))),
           (at: "12s", fault: OneWay(from: Node(1), to: Leader(group: 0))),
           (at: "12s", fault: OneWay(from: Node(2), to: Leader(group: 0)))"#,
        3,
    );
    assert_eq!(
        run.failover_faults.len(),
        1,
        "one failover: once the leader hears no majority"
    );
    assert!(
        run.settle_us.iter().all(Option::is_some),
        "settled after heal"
    );
}
