//! Parsing and validation, from text to typed scenario or to an error naming the field.

use super::*;

const VALID: &str = r#"// A valid scenario used as the base for edits below.
Scenario(
    name: "unit",
    seeds: (first: 1, count: 2),
    duration: "60s",
    cluster: (groups: 2, replicas: 3),
    workload: (producers: 1, send_rate: 10, topics: [(name: "t", queues: 2)]),
    faults: [
        (at: "10s", fault: Crash(Leader(group: 0))),
        (at: "20s", fault: Pause(target: Node(4), for: "10s")),
        (at: "30s", fault: Restart(AllCrashed)),
    ],
)
"#;

fn parse(source: &str) -> Result<Scenario, ScenarioError> {
    Scenario::parse(source, "unit.ron")
}

/// Parses `VALID` with `from` replaced by `to`; the edit must apply.
fn parse_edited(from: &str, to: &str) -> Result<Scenario, ScenarioError> {
    assert!(VALID.contains(from), "the edit {from:?} does not apply");
    parse(&VALID.replacen(from, to, 1))
}

fn invalid(from: &str, to: &str) -> (String, u32, String) {
    match parse_edited(from, to) {
        Err(error @ ScenarioError::Invalid { .. }) => {
            let line = error.location().expect("in the file").line;
            let field = error.field().expect("has a field").to_string();
            (field, line, error.to_string())
        }
        other => panic!("expected a validation error for {to:?}, got {other:?}"),
    }
}

// Defaults fill every optional field with DLedger's values and the documented ones.
#[test]
fn defaults() {
    let scenario = parse(VALID).expect("valid");
    assert_eq!(scenario.cluster.replication, Replication::DLedger);
    let raft = &scenario.cluster.raft;
    assert_eq!(raft.heartbeat_interval, Millis(2000));
    assert_eq!(raft.max_heartbeat_leak, 3);
    assert_eq!(raft.vote_interval, MillisRange::new(300, 1000));
    assert_eq!(raft.max_wait_ack, Millis(2500));
    assert!(raft.pre_vote);
    assert_eq!(scenario.cluster.network.latency, MillisRange::new(1, 5));
    assert_eq!(scenario.cluster.network.loss_ppm, 0);
    assert_eq!(scenario.cluster.disk.fsync, Millis(2));
    assert_eq!(scenario.workload.send_timeout, Millis(3000));
    assert_eq!(scenario.workload.route_refresh, Millis(30_000));
    assert_eq!(scenario.workload.consumers, 0);
    assert_eq!(scenario.expect, Expect::default());
    assert!(scenario.expect.linearizable);
    assert_eq!(scenario.settle_max, Millis(30_000));
    assert_eq!(scenario.node_count(), 6);
    assert_eq!(scenario.cluster.nodes_of(1), 3..6);
    assert_eq!(scenario.cluster.group_of(4), 1);
    assert_eq!(
        scenario.faults[1].fault,
        Fault::Pause {
            target: Target::Node(4),
            length: Millis(10_000)
        }
    );
    assert_eq!(scenario.file_name, "unit.ron");
    assert_eq!(scenario.source_hash, SourceHash::of(VALID.as_bytes()));
}

// Every fault and target of the vocabulary parses in the shape the docs show.
#[test]
fn full_vocabulary_parses() {
    let faults = r#"faults: [
        (at: "1s", fault: Crash(Node(0))),
        (at: "1s", fault: CrashLosingUnsynced(Minority(group: 0))),
        (at: "2s", fault: Restart(Random)),
        (at: "2s", fault: Isolate(Majority(group: 1))),
        (at: "3s", fault: Partition([[0, 1], [2, 3, 4, 5]])),
        (at: "3s", fault: OneWay(from: Leader(group: 0), to: Follower(group: 0))),
        (at: "4s", fault: Bridge(group: 1)),
        (at: "4s", fault: Heal),
        (at: "5s", fault: Latency(min: "5ms", max: "50ms")),
        (at: "5s", fault: Loss(ppm: 10000)),
        (at: "6s", fault: ClockOffset(target: Node(1), offset: "-300ms")),
        (at: "6s", fault: ClockDrift(target: Node(2), ppm: -200)),
        (at: "7s", fault: SlowDisk(target: Leader(group: 0), fsync: "200ms")),
        (at: "7s", fault: TransferLeader(group: 1, to: Node(5))),
    ],"#;
    let start = VALID.find("faults: [").expect("faults");
    let end = VALID[start..].find("],").expect("end of faults") + start + 2;
    let source = format!("{}{}{}", &VALID[..start], faults, &VALID[end..]);
    let scenario = parse(&source).expect("the whole vocabulary is valid");
    assert_eq!(scenario.faults.len(), 14);
    assert_eq!(
        scenario.faults[10].fault,
        Fault::ClockOffset {
            target: Target::Node(1),
            offset: SignedMillis(-300)
        }
    );
    assert_eq!(
        scenario.faults[4].fault,
        Fault::Partition(vec![vec![0, 1], vec![2, 3, 4, 5]])
    );
}

#[test]
fn replicas_must_be_3_or_5() {
    let (field, line, message) = invalid("replicas: 3", "replicas: 4");
    assert_eq!((field.as_str(), line), ("cluster.replicas", 6));
    assert!(
        message.starts_with("unit.ron:6:36: cluster.replicas: 4 replicas"),
        "{message}"
    );
    parse_edited("replicas: 3", "replicas: 5").expect("5 replicas are fine");
}

#[test]
fn node_out_of_range_names_the_target() {
    let (field, line, message) = invalid("Node(4)", "Node(6)");
    assert_eq!((field.as_str(), line), ("faults[1].fault.target", 10));
    assert!(message.contains("node 6 is out of range"), "{message}");
}

#[test]
fn group_out_of_range_names_the_group() {
    let (field, line, _) = invalid("Leader(group: 0)", "Leader(group: 2)");
    assert_eq!((field.as_str(), line), ("faults[0].fault.0.group", 9));
}

#[test]
fn fault_times_in_order_and_within_duration() {
    let (field, line, message) = invalid("(at: \"20s\"", "(at: \"5s\"");
    assert_eq!((field.as_str(), line), ("faults[1].at", 10));
    assert!(message.contains("in time order"), "{message}");
    let (field, _, _) = invalid("(at: \"30s\"", "(at: \"60s\"");
    assert_eq!(field, "faults[2].at");
    parse_edited("(at: \"20s\"", "(at: \"10s\"").expect("equal times keep file order");
}

#[test]
fn ranges_min_not_above_max() {
    let (field, line, message) = invalid(
        "replicas: 3)",
        "replicas: 3,\n        raft: (vote_interval: (\"1s\", \"300ms\")))",
    );
    assert_eq!((field.as_str(), line), ("cluster.raft.vote_interval", 7));
    assert!(message.contains("min 1s is above max 300ms"), "{message}");
    let (field, _, _) = invalid(
        "replicas: 3)",
        "replicas: 3, network: (latency: (\"5ms\", \"1ms\")))",
    );
    assert_eq!(field, "cluster.network.latency");
}

#[test]
fn limits() {
    let cases = [
        ("count: 2", "count: 0", "seeds.count"),
        ("groups: 2", "groups: 0", "cluster.groups"),
        ("send_rate: 10", "send_rate: 0", "workload.send_rate"),
        ("producers: 1", "producers: 0", "workload.producers"),
        ("queues: 2", "queues: 0", "workload.topics[0].queues"),
        ("name: \"unit\"", "name: \"a b\"", "name"),
        ("duration: \"60s\"", "duration: \"0s\"", "duration"),
        ("for: \"10s\"", "for: \"0ms\"", "faults[1].fault.for"),
        (
            "Restart(AllCrashed)",
            "Crash(AllCrashed)",
            "faults[2].fault.0",
        ),
        (
            "Restart(AllCrashed)",
            "Restart(Leader(group: 0))",
            "faults[2].fault.0",
        ),
        (
            "Restart(AllCrashed)",
            "Restart(Group(group: 0))",
            "faults[2].fault.0",
        ),
        (
            "Restart(AllCrashed)",
            "DeposeLeader(group: 9)",
            "faults[2].fault.group",
        ),
        (
            "Restart(AllCrashed)",
            "Partition([[0, 1], [1, 2]])",
            "faults[2].fault.0[1][0]",
        ),
        (
            "Restart(AllCrashed)",
            "Partition([[0, 1]])",
            "faults[2].fault.0",
        ),
        (
            "Restart(AllCrashed)",
            "Partition([[0], []])",
            "faults[2].fault.0[1]",
        ),
        (
            "Restart(AllCrashed)",
            "ClockDrift(target: Node(0), ppm: 600000)",
            "faults[2].fault.ppm",
        ),
        (
            "Restart(AllCrashed)",
            "ClockOffset(target: Node(0), offset: \"-2h\")",
            "faults[2].fault.offset",
        ),
        (
            "Restart(AllCrashed)",
            "Loss(ppm: 1000001)",
            "faults[2].fault.ppm",
        ),
        (
            "Restart(AllCrashed)",
            "MajoritiesRing(group: 0)",
            "faults[2].fault",
        ),
        (
            "Restart(AllCrashed)",
            "OneWay(from: Node(1), to: Node(1))",
            "faults[2].fault.to",
        ),
        (
            "Restart(AllCrashed)",
            "TransferLeader(group: 0, to: Node(4))",
            "faults[2].fault.to",
        ),
        (
            "topics: [(name: \"t\", queues: 2)]",
            "topics: [(name: \"t\", queues: 2), (name: \"t\", queues: 1)]",
            "workload.topics[1].name",
        ),
        (
            "topics: [(name: \"t\", queues: 2)]",
            "topics: []",
            "workload.topics",
        ),
    ];
    for (from, to, expected_field) in cases {
        let (field, _, message) = invalid(from, to);
        assert_eq!(field, expected_field, "{to}: {message}");
    }
}

// A field left to its default has no position: the error points at its nearest ancestor.
#[test]
fn default_field_points_at_parent() {
    let (field, line, _) = invalid(
        "replicas: 3)",
        "replicas: 3, raft: (max_wait_ack: \"0ms\"))",
    );
    assert_eq!((field.as_str(), line), ("cluster.raft.max_wait_ack", 6));
    let source = VALID
        .replace(
            "(groups: 2, replicas: 3)",
            "(groups: 2, replicas: 3, raft: (vote_interval: (\"1s\", \"2s\")))",
        )
        .replace("duration: \"60s\"", "duration: \"60s\", settle_max: \"0s\"");
    let error = parse(&source).expect_err("settle_max 0 is invalid");
    assert_eq!(error.field(), Some("settle_max"));
}

#[test]
fn schema_errors_name_field_and_line() {
    let cases = [
        (
            "for: \"10s\"",
            "for: \"10x\"",
            "faults[1].fault.for",
            10,
            "\"10x\" is not a duration",
        ),
        (
            "replicas: 3",
            "replica: 3",
            "cluster.replica",
            6,
            "unknown field \"replica\"",
        ),
        (
            "Crash(Leader",
            "Crash(Leeder",
            "faults[0].fault.0",
            9,
            "unknown variant \"Leeder\"",
        ),
        (
            "Crash(",
            "Crush(",
            "faults[0].fault",
            9,
            "unknown variant \"Crush\"",
        ),
        (
            "send_rate: 10",
            "send_rate: -1",
            "workload.send_rate",
            7,
            "",
        ),
        (
            "send_rate: 10",
            "send_rate: \"fast\"",
            "workload.send_rate",
            7,
            "",
        ),
        (
            "duration: \"60s\"",
            "duration: 60",
            "duration",
            5,
            "expected a duration string",
        ),
        (
            "(name: \"t\", queues: 2)",
            "(name: \"t\")",
            "workload.topics[0].queues",
            7,
            "missing",
        ),
        ("Scenario(", "Scenery(", "", 2, "expected Scenario"),
    ];
    for (from, to, expected_field, expected_line, expected_text) in cases {
        let error = parse_edited(from, to).expect_err(to);
        let message = error.to_string();
        assert!(
            matches!(error, ScenarioError::Schema { .. }),
            "{to}: {error:?}"
        );
        assert_eq!(error.field(), Some(expected_field), "{to}: {message}");
        assert_eq!(
            error.location().map(|l| l.line),
            Some(expected_line),
            "{to}: {message}"
        );
        assert!(message.contains(expected_text), "{to}: {message}");
        assert_eq!(error.exit_code(), 2);
    }
}

#[test]
fn syntax_errors_point_where_ron_stopped() {
    let error = parse_edited("duration: \"60s\",", "duration: \"60s\"").expect_err("no comma");
    assert!(matches!(error, ScenarioError::Syntax { .. }), "{error:?}");
    assert_eq!(error.location().map(|l| (l.line, l.column)), Some((5, 20)));
    let error = parse(&VALID.replace("faults: [", "faults: ((")).expect_err("bad bracket");
    assert!(matches!(
        error,
        ScenarioError::Syntax { .. } | ScenarioError::Schema { .. }
    ));
    let error = parse("").expect_err("empty");
    assert_eq!(error.location().map(|l| (l.line, l.column)), Some((1, 1)));
}

#[test]
fn round_trips_through_ron() {
    let scenario = parse(VALID).expect("valid");
    let text = ron::ser::to_string_pretty(&scenario, ron::ser::PrettyConfig::default())
        .expect("serialises");
    let again = parse(&text).expect("the serialised form parses");
    assert_eq!(again.cluster, scenario.cluster);
    assert_eq!(again.faults, scenario.faults);
    assert_eq!(again.expect, scenario.expect);
}

#[test]
fn source_hash_is_fnv1a() {
    assert_eq!(SourceHash::of(b"").to_string(), "cbf29ce484222325");
    assert_eq!(SourceHash::of(b"a").to_string(), "af63dc4c8601ec8c");
}

#[test]
fn overrides() {
    let scenario = parse(VALID).expect("valid");
    let fast = scenario
        .with_override("raft.heartbeat_interval", "100ms")
        .expect("a known key");
    assert_eq!(fast.cluster.raft.heartbeat_interval, Millis(100));
    assert_eq!(
        fast.overrides,
        vec![("raft.heartbeat_interval".to_string(), "100ms".to_string())]
    );
    let jitter = scenario
        .with_override("cluster.raft.vote_interval", "150ms..300ms")
        .expect("a range");
    assert_eq!(
        jitter.cluster.raft.vote_interval,
        MillisRange::new(150, 300)
    );
    let mode = scenario
        .with_override("replication", "AsyncMasterSlave")
        .expect("a mode");
    assert_eq!(mode.cluster.replication, Replication::AsyncMasterSlave);

    let error = scenario
        .with_override("raft.heartbeat", "1s")
        .expect_err("unknown key");
    assert!(
        error
            .to_string()
            .starts_with("--set raft.heartbeat=1s: unknown key"),
        "{error}"
    );
    assert_eq!(error.exit_code(), 2);
    let error = scenario
        .with_override("replicas", "4")
        .expect_err("invalid");
    assert!(error.to_string().contains("cluster.replicas"), "{error}");
    let error = scenario
        .with_override("disk.fsync", "2x")
        .expect_err("bad duration");
    assert!(error.to_string().contains("is not a duration"), "{error}");
}

// ron's recursion limit turns absurd nesting into an error, not a stack overflow.
#[test]
fn deep_nesting_is_an_error() {
    let source = VALID.replace("faults: [", &format!("faults: {}", "[".repeat(100_000)));
    let error = parse(&source).expect_err("too deep");
    assert!(error.location().is_some(), "{error}");
}
