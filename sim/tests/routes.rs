//! Name servers and multi-master topics in the world (issue 6): a routing client keeps
//! writing to a dead master until its periodic route poll, fetches at once on NOT_LEADER,
//! a topic spread over two groups stays writable while one group fails over, and the new
//! scenario fields fail validation with the file, line, column and field.

mod common;

use broker_core::raft::Role;
use broker_core::{NodeId, Term};
use common::{assert_clean, leader_at, run_text};
use sim::history::{OpInput, OpOutcome, Operation};
use sim::run::outcome::SeedOutcome;
use sim::run::seeds::run_one;
use sim::run::RunSpec;
use sim::run::SeedRun;
use sim::scenario::{Scenario, ScenarioError};
use sim::workload::{message_of_body, route_poll_phase_us};
use sim::world::nameserver::{RefreshReason, RouteFetch};
use sim::world::observe::ObservedKind;
use std::sync::Arc;

/// One simulated second, in µs.
const S: u64 = 1_000_000;
/// The fault time: the first leader is elected by ~8 s.
const T: u64 = 10 * S;

/// One producer at 20 sends/s on `queues` queues of `groups` groups of 3, `extra_cluster`
/// added to the cluster and `extra_workload` to the workload.
fn scenario(
    groups: u32,
    queues: u32,
    extra_cluster: &str,
    extra_workload: &str,
    duration: &str,
    faults: &str,
) -> String {
    format!(
        r#"Scenario(
    name: "t", seeds: (first: 1, count: 1), duration: "{duration}",
    cluster: (groups: {groups}, replicas: 3{extra_cluster}),
    workload: (producers: 1, send_rate: 20, topics: [(name: "a", queues: {queues})]{extra_workload}),
    faults: [{faults}],
)"#
    )
}

/// The first leader elected at or after `from_us` in a term above `above`: (at, node).
fn elected_after(run: &SeedRun, from_us: u64, above: Term) -> (u64, NodeId) {
    run.observations
        .iter()
        .filter(|o| o.at_us >= from_us)
        .find_map(|o| match o.kind {
            ObservedKind::Role {
                role: Role::Leader,
                term,
            } if term > above => Some((o.at_us, o.node)),
            _ => None,
        })
        .expect("a new leader is elected")
}

/// Sends invoked at or after `from_us`.
fn sends_from(run: &SeedRun, from_us: u64) -> Vec<&Operation> {
    run.history
        .iter()
        .filter(|op| op.invoke_us >= from_us && matches!(op.input, OpInput::Send { .. }))
        .collect()
}

/// The first acknowledged send invoked at or after `from_us`.
fn first_ack_from(run: &SeedRun, from_us: u64) -> &Operation {
    sends_from(run, from_us)
        .into_iter()
        .filter(|op| matches!(op.outcome, OpOutcome::Sent { .. }))
        .min_by_key(|op| op.complete_us)
        .expect("some send after the fault is acknowledged")
}

fn fetches(run: &SeedRun, from_us: u64, to_us: u64) -> Vec<&RouteFetch> {
    run.route_fetches
        .iter()
        .filter(|f| (from_us..to_us).contains(&f.asked_us))
        .collect()
}

/// Name servers, routes polled every `refresh`, one producer, the leader crashed at 10 s.
fn routed_crash(refresh: &str, seed: u64) -> (SeedOutcome, SeedRun) {
    run_text(
        &scenario(
            1,
            2,
            ", name_servers: 2",
            &format!(r#", route_refresh: "{refresh}""#),
            "40s",
            r#"(at: "10s", fault: Crash(Leader(group: 0)))"#,
        ),
        seed,
    )
}

// (a) With name servers a client learns a new master only from its periodic poll: it keeps
// sending to the dead leader (every send times out, no fetch happens on a timeout) until the
// first poll after the new leader registered, and its first acknowledgement comes right after
// that poll: the election plus up to one refresh period.
#[test]
fn a_routing_client_writes_to_the_dead_master_until_its_poll() {
    let period_us = 20 * S;
    for seed in 1..=3 {
        let (outcome, run) = routed_crash("20s", seed);
        assert_clean(&outcome);
        let (old, old_term) = leader_at(&run, 0..3, T).expect("a leader at 10 s");
        let (elected_us, new_leader) = elected_after(&run, T, old_term);
        let ack = first_ack_from(&run, T);
        // The poll that brought the new master: periodic, answered after the election.
        let poll = run
            .route_fetches
            .iter()
            .find(|f| f.asked_us >= elected_us && f.masters == [Some(new_leader)])
            .expect("a fetch names the new leader");
        assert_eq!(
            poll.reason,
            RefreshReason::Periodic,
            "seed {seed}: {poll:?}"
        );
        // Periodic polls fire at the client's phase plus whole periods.
        let phase_us = route_poll_phase_us(seed, broker_core::broker::ClientId(0), period_us);
        let start = run
            .route_fetches
            .iter()
            .find(|f| f.reason == RefreshReason::Start)
            .expect("a fetch at start");
        assert_eq!(
            (poll.asked_us - start.asked_us - phase_us) % period_us,
            0,
            "seed {seed}: poll at {} µs, start {} µs, phase {phase_us} µs",
            poll.asked_us,
            start.asked_us
        );
        assert!(poll.asked_us < elected_us + period_us, "seed {seed}");
        let answered_us = poll.answered_us.expect("the poll was answered");
        assert!(
            (answered_us..answered_us + 100_000).contains(&ack.complete_us),
            "seed {seed}: ack at {} µs, poll answered at {answered_us} µs",
            ack.complete_us
        );
        // Until then: only periodic fetches, and every send went unanswered (to the dead one).
        for fetch in fetches(&run, T, poll.asked_us) {
            assert_eq!(fetch.reason, RefreshReason::Periodic, "seed {seed}");
        }
        let stale: Vec<&Operation> = sends_from(&run, T)
            .into_iter()
            .filter(|op| op.invoke_us < poll.asked_us)
            .collect();
        assert!(stale.len() > 10, "seed {seed}");
        assert!(
            stale.iter().all(|op| op.outcome == OpOutcome::Unknown),
            "seed {seed}"
        );
        assert_ne!(old, new_leader);
        // The failover's client stage is that acknowledgement.
        let client_us = outcome.failovers[0]
            .client_us
            .expect("client stage reached");
        assert_eq!(client_us, ack.complete_us - T);
        assert!(ack.complete_us >= elected_us);
    }
}

// (a') The same crash without name servers: the client follows NOT_LEADER hints and is back
// within a second of the election, far sooner than a routing client with a 20 s poll.
#[test]
fn without_name_servers_the_client_follows_hints() {
    let (outcome, run) = run_text(
        &scenario(
            1,
            2,
            "",
            "",
            "30s",
            r#"(at: "10s", fault: Crash(Leader(group: 0)))"#,
        ),
        1,
    );
    assert_clean(&outcome);
    assert!(run.route_fetches.is_empty());
    let (_, old_term) = leader_at(&run, 0..3, T).expect("a leader at 10 s");
    let (elected_us, _) = elected_after(&run, T, old_term);
    let ack = first_ack_from(&run, T);
    assert!(
        ack.complete_us < elected_us + S,
        "ack {} µs, elected {elected_us} µs",
        ack.complete_us
    );
}

// (b) A NOT_LEADER answer makes a routing client fetch routes at once, not at its next poll:
// after leadership moves, the old leader refuses, the client fetches (reason Refused by the
// old leader) and its next send is acknowledged by the new one within a second, while its
// poll period is 60 s.
#[test]
fn not_leader_triggers_an_immediate_route_fetch() {
    for seed in 1..=3 {
        let (outcome, run) = run_text(
            &scenario(
                1,
                2,
                ", name_servers: 1",
                r#", route_refresh: "60s""#,
                "20s",
                r#"(at: "10s", fault: TransferLeader(group: 0, to: Follower(group: 0)))"#,
            ),
            seed,
        );
        assert_clean(&outcome);
        let (old, old_term) = leader_at(&run, 0..3, T).expect("a leader at 10 s");
        let (elected_us, new_leader) = elected_after(&run, T, old_term);
        let refused = run
            .route_fetches
            .iter()
            .find(|f| f.asked_us >= T && matches!(f.reason, RefreshReason::Refused { .. }))
            .unwrap_or_else(|| {
                panic!(
                    "seed {seed}: no fetch on a refusal: {:?}",
                    run.route_fetches
                )
            });
        assert_eq!(
            refused.reason,
            RefreshReason::Refused { group: 0, by: old },
            "seed {seed}"
        );
        assert!(refused.asked_us < elected_us + S, "seed {seed}");
        // No periodic poll helped: the only periodic ones are 60 s apart, none in the window.
        let ack = sends_from(&run, elected_us)
            .into_iter()
            .find(|op| matches!(op.outcome, OpOutcome::Sent { .. }))
            .expect("a send after the transfer is acknowledged");
        assert!(
            ack.complete_us < elected_us + S,
            "seed {seed}: ack {} µs, elected {elected_us} µs",
            ack.complete_us
        );
        assert!(fetches(&run, T, ack.complete_us)
            .iter()
            .all(|f| f.reason != RefreshReason::Periodic));
        let named = fetches(&run, T, ack.complete_us)
            .iter()
            .any(|f| f.masters == [Some(new_leader)]);
        assert!(
            named,
            "seed {seed}: a fetch before the ack named the new leader"
        );
    }
}

/// Two groups, one topic of 4 queues (2 per group), `producers` producers at 50/s.
fn two_groups(seed: u64) -> (SeedOutcome, SeedRun) {
    run_text(
        r#"Scenario(
    name: "t", seeds: (first: 1, count: 1), duration: "30s",
    cluster: (groups: 2, replicas: 3),
    workload: (producers: 2, send_rate: 50, topics: [(name: "a", queues: 4)]),
    faults: [(at: "10s", fault: Crash(Leader(group: 0)))],
)"#,
        seed,
    )
}

// (c) With two groups, group 0's leader crash leaves the topic writable through group 1: the
// longest stretch with no acknowledged send to the topic is tens of ms, against group 0's
// client stage of seconds. A message whose attempt on group 0 timed out is retried on a group 1
// queue, as its own operation with its own body, and is acknowledged there.
#[test]
fn two_groups_keep_the_topic_writable() {
    for seed in 1..=2 {
        let (outcome, run) = two_groups(seed);
        assert_clean(&outcome);
        assert_eq!(outcome.failovers.len(), 1);
        let failover = &outcome.failovers[0];
        assert_eq!(failover.group, 0);
        let client_us = failover.client_us.expect("group 0 comes back");
        let elect_us = failover.elect_us.expect("group 0 elects");
        assert!(client_us >= elect_us);
        let topic = failover
            .topic
            .as_ref()
            .expect("topic figures with 2 groups");
        assert!(
            topic.unavailable_us * 20 < client_us,
            "seed {seed}: topic {} µs, group 0 client {client_us} µs",
            topic.unavailable_us
        );
        assert!(topic.unavailable_us < 200_000, "seed {seed}: {topic:?}");
        assert_eq!(topic.messages_unacknowledged, 0, "seed {seed}: {topic:?}");
        assert!(topic.messages_retried > 10, "seed {seed}: {topic:?}");
        // Every retry is on a group 1 queue, after an unacknowledged group 0 attempt of the same
        // message, and bodies stay unique.
        let queue_group = |op: &Operation| match &op.input {
            OpInput::Send { queue, .. } => queue[1..2].to_string(),
            OpInput::Pull { .. } => unreachable!("sends only"),
        };
        let sends: Vec<&Operation> = run
            .history
            .iter()
            .filter(|op| matches!(op.input, OpInput::Send { .. }))
            .collect();
        let body = |op: &Operation| match &op.input {
            OpInput::Send { body, .. } => body.clone(),
            OpInput::Pull { .. } => unreachable!("sends only"),
        };
        let mut bodies: Vec<String> = sends.iter().map(|op| body(op)).collect();
        bodies.sort();
        let total = bodies.len();
        bodies.dedup();
        assert_eq!(bodies.len(), total, "bodies are unique");
        let retries: Vec<&&Operation> =
            sends.iter().filter(|op| body(op).ends_with("#1")).collect();
        assert!(!retries.is_empty());
        for retry in retries {
            let message = body(retry);
            let first = sends
                .iter()
                .find(|op| body(op) == message_of_body(&message))
                .expect("the first attempt is recorded");
            assert_eq!(queue_group(first), "0", "{message}");
            assert!(!matches!(first.outcome, OpOutcome::Sent { .. }));
            assert_eq!(queue_group(retry), "1", "{message}");
            assert!(retry.invoke_us >= first.complete_us);
        }
    }
}

// Name servers change nothing about determinism: a seed run twice is identical.
#[test]
fn a_routed_seed_run_twice_is_identical() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/route_refresh_slow.ron");
    let scenario = Scenario::load(&path).expect("route_refresh_slow is valid");
    let spec = Arc::new(RunSpec::from_scenario(&scenario));
    let first = run_one(spec.clone(), 3, None);
    assert_eq!(first, run_one(spec, 3, None));
}

/// Parses a scenario whose cluster and workload get `cluster` and `workload` appended, and
/// `expect` as its expectations; returns the error.
fn invalid(cluster: &str, workload: &str, expect: &str) -> ScenarioError {
    let text = format!(
        "Scenario(\n    name: \"t\",\n    seeds: (first: 1, count: 1),\n    duration: \"10s\",\n    cluster: (groups: 1{cluster}),\n    workload: (producers: 1, send_rate: 1, topics: [(name: \"a\", queues: 1)]{workload}),\n    expect: ({expect}),\n)\n"
    );
    Scenario::parse(&text, "test.ron").expect_err("an invalid scenario")
}

fn assert_error(error: &ScenarioError, place: &str, field: &str, text: &str) {
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("test.ron:{place}: {field}: ")),
        "got {message}"
    );
    assert!(message.contains(text), "{message}");
    assert_eq!(error.field(), Some(field));
    assert_eq!(error.exit_code(), 2);
}

// (d) The new fields: out of range, a broken relation, a wrong type and an unknown name each
// fail with the file, line, column and field.
#[test]
fn new_fields_fail_validation_with_their_place() {
    let error = invalid(", name_servers: 9", "", "");
    assert_error(
        &error,
        "5:40",
        "cluster.name_servers",
        "9 is out of range (allowed 0..=8)",
    );
    let error = invalid(
        r#", register_interval: "30s", broker_expiry: "30s""#,
        "",
        "",
    );
    assert_error(
        &error,
        "5:67",
        "cluster.broker_expiry",
        "must be longer than register_interval",
    );
    let error = invalid(", register_interval: \"0ms\"", "", "");
    assert_error(&error, "5:45", "cluster.register_interval", "out of range");
    let error = invalid("", r#", route_refresh: "0s""#, "");
    assert_error(&error, "6:93", "workload.route_refresh", "out of range");
    let error = invalid(", name_servers: \"two\"", "", "");
    assert_error(&error, "5:40", "cluster.name_servers", "");
    let error = invalid(", name_server: 1", "", "");
    assert_error(&error, "5:26", "cluster.name_server", "unknown field");
    let error = invalid("", "", r#"topic_unavailable_p99_max: "soon""#);
    assert_error(&error, "7:41", "expect.topic_unavailable_p99_max", "");
}

// `--set` reaches the new fields, and its errors name the key.
#[test]
fn overrides_set_the_new_fields() {
    let text = scenario(1, 1, "", "", "10s", "");
    let scenario = Scenario::parse(&text, "test.ron").expect("valid");
    let routed = scenario
        .with_override("name_servers", "2")
        .and_then(|s| s.with_override("workload.route_refresh", "5s"))
        .expect("valid overrides");
    assert_eq!(routed.cluster.name_servers, 2);
    assert_eq!(routed.workload.route_refresh.as_ms(), 5_000);
    let error = scenario
        .with_override("broker_expiry", "1s")
        .expect_err("expiry below the register interval");
    assert!(
        error.to_string().contains("cluster.broker_expiry"),
        "{error}"
    );
}
