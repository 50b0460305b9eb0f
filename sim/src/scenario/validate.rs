//! Limits and relations a parsed scenario must satisfy. Each check names the field it is
//! about with the same path the source map records, so the error can point at it.

use super::duration::{Millis, MillisRange};
use super::fault::{Fault, FaultKind, Target, TimedFault};
use super::schema::{Cluster, Replication, Scenario, Workload};
use super::swarm_config::CountRange;
use std::collections::BTreeSet;

/// Replicas per group the runner supports.
pub const REPLICAS_ALLOWED: [u32; 2] = [3, 5];
pub const GROUPS_MAX: u32 = 16;
/// Name servers: each a simulated host in 10.0.2.0/24.
pub const NAME_SERVERS_MAX: u32 = 8;
pub const SEEDS_COUNT_MAX: u64 = 1_000_000;
/// Longest fault phase, and longest settle bound.
pub const RUN_DURATION_MS_MAX: u64 = 24 * 3600 * 1000;
/// Longest Raft timing, fsync, send timeout or pause.
pub const TIMING_MS_MAX: u64 = 10 * 60 * 1000;
pub const MAX_HEARTBEAT_LEAK_MAX: u32 = 100;
pub const LATENCY_MS_MAX: u64 = 60 * 1000;
pub const PPM_MAX: u32 = 1_000_000;
/// A clock may run at most this much fast or slow (local clocks must keep advancing).
pub const CLOCK_DRIFT_PPM_MAX: u32 = 500_000;
pub const CLOCK_OFFSET_MS_MAX: u64 = 3600 * 1000;
pub const PRODUCERS_MAX: u32 = 1000;
pub const CONSUMERS_MAX: u32 = 1000;
/// Producers and consumers together: each client is a simulated host with its own address in
/// one /24 (10.0.1.1 ..= 10.0.1.254).
pub const CLIENTS_MAX: u32 = 254;
pub const SEND_RATE_PER_SECOND_MAX: u32 = 100_000;
pub const TOPICS_MAX: usize = 64;
pub const QUEUES_PER_TOPIC_MAX: u32 = 1024;
pub const FAULTS_MAX: usize = 10_000;
/// The shortest gap a `Random` swarm may draw between two faults.
pub const SWARM_EVERY_MS_MIN: u64 = 100;
/// The shortest heartbeat a swarm may draw.
pub const SWARM_HEARTBEAT_MS_MIN: u64 = 10;
/// The most loss a swarm may draw (more and nothing is ever elected).
pub const SWARM_LOSS_PPM_MAX: u32 = 300_000;
/// Most bits one `Corrupt` flips.
pub const CORRUPT_BITS_MAX: u32 = 4096;
/// Most entries one `Truncate` drops.
pub const TRUNCATE_ENTRIES_MAX: u32 = 1_000_000;
/// Scenario and topic names: used in report file names.
pub const NAME_BYTES_MAX: usize = 64;

/// One broken rule: the field's path and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub path: String,
    pub message: String,
}

type Check = Result<(), Violation>;

fn violation(path: impl Into<String>, message: impl Into<String>) -> Violation {
    Violation {
        path: path.into(),
        message: message.into(),
    }
}

fn ensure(condition: bool, path: &str, message: impl FnOnce() -> String) -> Check {
    if condition {
        Ok(())
    } else {
        Err(violation(path, message()))
    }
}

fn count_in(path: &str, value: u64, min: u64, max: u64) -> Check {
    ensure(min <= value && value <= max, path, || {
        format!("{value} is out of range (allowed {min}..={max})")
    })
}

fn millis_in(path: &str, value: Millis, min_ms: u64, max_ms: u64) -> Check {
    ensure(min_ms <= value.0 && value.0 <= max_ms, path, || {
        format!(
            "{value} is out of range (allowed {}..={})",
            Millis(min_ms),
            Millis(max_ms)
        )
    })
}

fn range_in(path: &str, range: MillisRange, max_ms: u64) -> Check {
    ensure(range.min <= range.max, path, || {
        format!("min {} is above max {}", range.min, range.max)
    })?;
    millis_in(&format!("{path}.1"), range.max, 0, max_ms)
}

fn name_ok(path: &str, name: &str) -> Check {
    ensure(
        !name.is_empty() && name.len() <= NAME_BYTES_MAX,
        path,
        || format!("name must be 1..={NAME_BYTES_MAX} bytes long"),
    )?;
    ensure(
        name.bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.')),
        path,
        || format!("{name:?} may only use letters, digits, '_', '-' and '.'"),
    )
}

/// Checks everything; returns the first violation in file order (roughly).
pub fn validate(scenario: &Scenario) -> Check {
    name_ok("name", &scenario.name)?;
    count_in("seeds.count", scenario.seeds.count, 1, SEEDS_COUNT_MAX)?;
    ensure(
        scenario
            .seeds
            .first
            .checked_add(scenario.seeds.count)
            .is_some(),
        "seeds.first",
        || "first + count overflows u64".to_string(),
    )?;
    millis_in("duration", scenario.duration, 1, RUN_DURATION_MS_MAX)?;
    validate_cluster(&scenario.cluster)?;
    validate_workload(&scenario.workload)?;
    if let Some(start) = scenario.workload.start {
        millis_in("workload.start", start, 0, scenario.duration.0)?;
    }
    validate_faults(scenario)?;
    millis_in("settle_max", scenario.settle_max, 1, RUN_DURATION_MS_MAX)?;
    validate_swarm(scenario)?;
    if !scenario.expect.must_find.is_empty() {
        count_in(
            "expect.must_find_pct_min",
            scenario.expect.must_find_pct_min,
            1,
            100,
        )?;
    }
    for (index, trigger) in scenario.triggers.iter().enumerate() {
        count_in(
            &format!("triggers[{index}].chance_ppm"),
            trigger.chance_ppm.into(),
            1,
            PPM_MAX.into(),
        )?;
        millis_in(
            &format!("triggers[{index}].down"),
            trigger.down,
            1,
            TIMING_MS_MAX,
        )?;
    }
    validate_variants(scenario)
}

fn count_range_in(path: &str, range: CountRange, min: u32, max: u32) -> Check {
    ensure(range.0 <= range.1, path, || {
        format!("min {} is above max {}", range.0, range.1)
    })?;
    count_in(&format!("{path}.0"), range.0.into(), min.into(), max.into())?;
    count_in(&format!("{path}.1"), range.1.into(), min.into(), max.into())
}

/// The `swarm` ranges: every draw from them is a valid scenario.
fn validate_swarm(scenario: &Scenario) -> Check {
    let Some(swarm) = &scenario.swarm else {
        return Ok(());
    };
    ensure(!swarm.replicas.is_empty(), "swarm.replicas", || {
        "needs at least one replica count".to_string()
    })?;
    for (index, replicas) in swarm.replicas.iter().enumerate() {
        ensure(
            REPLICAS_ALLOWED.contains(replicas),
            &format!("swarm.replicas[{index}]"),
            || format!("{replicas} replicas are not supported (allowed: 3 or 5)"),
        )?;
    }
    range_in(
        "swarm.heartbeat_interval",
        swarm.heartbeat_interval,
        TIMING_MS_MAX,
    )?;
    millis_in(
        "swarm.heartbeat_interval.0",
        swarm.heartbeat_interval.min,
        SWARM_HEARTBEAT_MS_MIN,
        TIMING_MS_MAX,
    )?;
    range_in("swarm.latency_max", swarm.latency_max, LATENCY_MS_MAX)?;
    ensure(
        swarm.latency_max.max < swarm.heartbeat_interval.min,
        "swarm.latency_max.1",
        || {
            format!(
                "{} is not below the shortest heartbeat {}: heartbeats would arrive late",
                swarm.latency_max.max, swarm.heartbeat_interval.min
            )
        },
    )?;
    count_range_in("swarm.loss_ppm", swarm.loss_ppm, 0, SWARM_LOSS_PPM_MAX)?;
    range_in("swarm.every", swarm.every, TIMING_MS_MAX)?;
    millis_in(
        "swarm.every.0",
        swarm.every.min,
        SWARM_EVERY_MS_MIN,
        TIMING_MS_MAX,
    )?;
    range_in("swarm.for", swarm.length, TIMING_MS_MAX)?;
    millis_in("swarm.for.0", swarm.length.min, 1, TIMING_MS_MAX)?;
    count_range_in("swarm.producers", swarm.producers, 1, PRODUCERS_MAX)?;
    ensure(
        swarm
            .producers
            .1
            .saturating_add(scenario.workload.consumers)
            <= CLIENTS_MAX,
        "swarm.producers.1",
        || format!("producers + consumers must be at most {CLIENTS_MAX}"),
    )?;
    count_range_in(
        "swarm.send_rate",
        swarm.send_rate,
        1,
        SEND_RATE_PER_SECOND_MAX,
    )?;
    ensure(
        scenario
            .faults
            .iter()
            .any(|timed| matches!(timed.fault, Fault::Random { .. })),
        "swarm",
        || "a swarm configuration needs a Random fault entry to draw fault kinds for".to_string(),
    )
}

/// Each variant has a distinct name and overrides that apply (as `--set` would) to a valid
/// scenario.
fn validate_variants(scenario: &Scenario) -> Check {
    let mut names = BTreeSet::new();
    let base = Scenario {
        variants: Vec::new(),
        ..scenario.clone()
    };
    for variant in &scenario.variants {
        name_ok("variants.name", &variant.name)?;
        ensure(names.insert(variant.name.as_str()), "variants.name", || {
            format!("{:?} names two variants", variant.name)
        })?;
        let mut varied = base.clone();
        for item in &variant.set {
            let (key, value) = item.split_once('=').ok_or_else(|| {
                violation(
                    "variants.set",
                    format!("{item:?} in variant {:?} is not KEY=VALUE", variant.name),
                )
            })?;
            varied = varied.with_override(key, value).map_err(|error| {
                violation(
                    "variants.set",
                    format!("variant {:?}: {error}", variant.name),
                )
            })?;
        }
    }
    Ok(())
}

fn validate_cluster(cluster: &Cluster) -> Check {
    count_in(
        "cluster.groups",
        cluster.groups.into(),
        1,
        GROUPS_MAX.into(),
    )?;
    ensure(
        REPLICAS_ALLOWED.contains(&cluster.replicas),
        "cluster.replicas",
        || {
            format!(
                "{} replicas are not supported (allowed: 3 or 5)",
                cluster.replicas
            )
        },
    )?;
    let raft = &cluster.raft;
    millis_in(
        "cluster.raft.heartbeat_interval",
        raft.heartbeat_interval,
        1,
        TIMING_MS_MAX,
    )?;
    count_in(
        "cluster.raft.max_heartbeat_leak",
        raft.max_heartbeat_leak.into(),
        1,
        MAX_HEARTBEAT_LEAK_MAX.into(),
    )?;
    range_in(
        "cluster.raft.vote_interval",
        raft.vote_interval,
        TIMING_MS_MAX,
    )?;
    millis_in(
        "cluster.raft.max_wait_ack",
        raft.max_wait_ack,
        1,
        TIMING_MS_MAX,
    )?;
    let dledger_replication = cluster.replication == Replication::DLedger;
    ensure(
        dledger_replication || cluster.fidelity.is_raft(),
        "cluster.fidelity",
        || {
            format!(
                "{} replication has no Raft log to follow DLedger's rules",
                cluster.replication
            )
        },
    )?;
    ensure(
        dledger_replication || cluster.read_mode.is_read_index(),
        "cluster.read_mode",
        || {
            format!(
                "{} replication has no read modes (slaves serve pulls)",
                cluster.replication
            )
        },
    )?;
    ensure(
        cluster.fidelity.is_raft() || !raft.pre_vote,
        "cluster.raft.pre_vote",
        || {
            "DLedger fidelity has no pre-vote (its REJECT_ALREADY_HAS_LEADER plays that part): \
             set `raft: (pre_vote: false)`"
                .to_string()
        },
    )?;
    // Backstop: whatever else broker-core requires of its config.
    cluster
        .core_raft_config()
        .validate()
        .map_err(|error| violation("cluster.raft", error.to_string()))?;
    range_in(
        "cluster.network.latency",
        cluster.network.latency,
        LATENCY_MS_MAX,
    )?;
    count_in(
        "cluster.network.loss_ppm",
        cluster.network.loss_ppm.into(),
        0,
        PPM_MAX.into(),
    )?;
    millis_in("cluster.disk.fsync", cluster.disk.fsync, 0, TIMING_MS_MAX)?;
    validate_routing(cluster)
}

fn validate_routing(cluster: &Cluster) -> Check {
    count_in(
        "cluster.name_servers",
        cluster.name_servers.into(),
        0,
        NAME_SERVERS_MAX.into(),
    )?;
    millis_in(
        "cluster.register_interval",
        cluster.register_interval,
        1,
        TIMING_MS_MAX,
    )?;
    millis_in(
        "cluster.broker_expiry",
        cluster.broker_expiry,
        1,
        RUN_DURATION_MS_MAX,
    )?;
    ensure(
        cluster.broker_expiry > cluster.register_interval,
        "cluster.broker_expiry",
        || {
            format!(
                "{} must be longer than register_interval ({}): a name server would drop \
                 live brokers between their registrations",
                cluster.broker_expiry, cluster.register_interval
            )
        },
    )
}

fn validate_workload(workload: &Workload) -> Check {
    count_in(
        "workload.producers",
        workload.producers.into(),
        1,
        PRODUCERS_MAX.into(),
    )?;
    count_in(
        "workload.send_rate",
        workload.send_rate.into(),
        1,
        SEND_RATE_PER_SECOND_MAX.into(),
    )?;
    ensure(
        !workload.topics.is_empty() && workload.topics.len() <= TOPICS_MAX,
        "workload.topics",
        || format!("needs 1..={TOPICS_MAX} topics"),
    )?;
    let mut names = BTreeSet::new();
    for (index, topic) in workload.topics.iter().enumerate() {
        let path = format!("workload.topics[{index}]");
        name_ok(&format!("{path}.name"), &topic.name)?;
        ensure(
            names.insert(topic.name.as_str()),
            &format!("{path}.name"),
            || format!("topic {:?} is listed twice", topic.name),
        )?;
        count_in(
            &format!("{path}.queues"),
            topic.queues.into(),
            1,
            QUEUES_PER_TOPIC_MAX.into(),
        )?;
    }
    count_in(
        "workload.consumers",
        workload.consumers.into(),
        0,
        CONSUMERS_MAX.into(),
    )?;
    ensure(
        workload.producers.saturating_add(workload.consumers) <= CLIENTS_MAX,
        "workload.consumers",
        || {
            format!(
                "producers + consumers must be at most {CLIENTS_MAX} (one simulated host each), got {}",
                u64::from(workload.producers) + u64::from(workload.consumers)
            )
        },
    )?;
    millis_in(
        "workload.send_timeout",
        workload.send_timeout,
        1,
        TIMING_MS_MAX,
    )?;
    millis_in(
        "workload.route_refresh",
        workload.route_refresh,
        1,
        RUN_DURATION_MS_MAX,
    )
}

fn validate_faults(scenario: &Scenario) -> Check {
    ensure(scenario.faults.len() <= FAULTS_MAX, "faults", || {
        format!(
            "{} faults is more than the {FAULTS_MAX} allowed",
            scenario.faults.len()
        )
    })?;
    let mut previous_at = Millis::ZERO;
    for (index, timed) in scenario.faults.iter().enumerate() {
        let path = format!("faults[{index}]");
        validate_time(&path, timed, previous_at, scenario.duration)?;
        previous_at = timed.at;
        validate_fault(&format!("{path}.fault"), &timed.fault, &scenario.cluster)?;
    }
    Ok(())
}

fn validate_time(path: &str, timed: &TimedFault, previous_at: Millis, duration: Millis) -> Check {
    let at_path = format!("{path}.at");
    ensure(timed.at >= previous_at, &at_path, || {
        format!(
            "{} is before the previous fault's {previous_at}: faults must be in time order",
            timed.at
        )
    })?;
    ensure(timed.at < duration, &at_path, || {
        format!(
            "{} is not within the scenario's duration of {duration}",
            timed.at
        )
    })
}

fn validate_fault(path: &str, fault: &Fault, cluster: &Cluster) -> Check {
    for (field, target) in fault.targets() {
        validate_target(&format!("{path}.{field}"), target, fault, cluster)?;
    }
    match fault {
        Fault::Pause { length, .. } => millis_in(&format!("{path}.for"), *length, 1, TIMING_MS_MAX),
        Fault::Partition(sides) => validate_partition(&format!("{path}.0"), sides, cluster),
        Fault::OneWay { from, to } => not_self_link(path, *from, *to),
        Fault::LinkLatency { from, to, min, max } => {
            not_self_link(path, *from, *to)?;
            range_in(
                &format!("{path}.min"),
                MillisRange {
                    min: *min,
                    max: *max,
                },
                LATENCY_MS_MAX,
            )
        }
        Fault::LinkLoss { from, to, ppm } => {
            not_self_link(path, *from, *to)?;
            count_in(&format!("{path}.ppm"), (*ppm).into(), 0, PPM_MAX.into())
        }
        Fault::Duplicate { ppm } => {
            count_in(&format!("{path}.ppm"), (*ppm).into(), 0, PPM_MAX.into())
        }
        Fault::ClockJump { by, .. } => millis_in(
            &format!("{path}.by"),
            by.magnitude(),
            0,
            CLOCK_OFFSET_MS_MAX,
        ),
        Fault::ClockStrobe {
            delta,
            period,
            length,
            ..
        } => {
            millis_in(&format!("{path}.delta"), *delta, 1, CLOCK_OFFSET_MS_MAX)?;
            millis_in(&format!("{path}.period"), *period, 1, TIMING_MS_MAX)?;
            millis_in(
                &format!("{path}.for"),
                *length,
                period.0,
                RUN_DURATION_MS_MAX,
            )
        }
        Fault::Random {
            kinds,
            every,
            length,
            ..
        } => validate_random(path, kinds, *every, *length, cluster),
        Fault::Corrupt { at, bits, .. } => {
            count_in(
                &format!("{path}.bits"),
                (*bits).into(),
                1,
                CORRUPT_BITS_MAX.into(),
            )?;
            match at {
                crate::scenario::CorruptAt::Entry(index) => {
                    ensure(*index >= 1, &format!("{path}.at"), || {
                        "log indexes start at 1".to_string()
                    })
                }
                crate::scenario::CorruptAt::Tail | crate::scenario::CorruptAt::Random => Ok(()),
            }
        }
        Fault::Truncate { entries, .. } => count_in(
            &format!("{path}.entries"),
            (*entries).into(),
            1,
            TRUNCATE_ENTRIES_MAX.into(),
        ),
        Fault::Bridge { group } | Fault::DeposeLeader { group } => {
            group_ok(&format!("{path}.group"), *group, cluster)
        }
        Fault::MajoritiesRing { group } => {
            group_ok(&format!("{path}.group"), *group, cluster)?;
            ensure(cluster.replicas == 5, path, || {
                format!(
                    "MajoritiesRing needs 5 replicas; the cluster has {}",
                    cluster.replicas
                )
            })
        }
        Fault::Latency { min, max } => range_in(
            path,
            MillisRange {
                min: *min,
                max: *max,
            },
            LATENCY_MS_MAX,
        ),
        Fault::Loss { ppm } => count_in(&format!("{path}.ppm"), (*ppm).into(), 0, PPM_MAX.into()),
        Fault::ClockOffset { offset, .. } => millis_in(
            &format!("{path}.offset"),
            offset.magnitude(),
            0,
            CLOCK_OFFSET_MS_MAX,
        ),
        Fault::ClockDrift { ppm, .. } => ensure(
            ppm.unsigned_abs() <= CLOCK_DRIFT_PPM_MAX,
            &format!("{path}.ppm"),
            || format!("{ppm} is out of range (allowed ±{CLOCK_DRIFT_PPM_MAX})"),
        ),
        Fault::SlowDisk { fsync, .. } => {
            millis_in(&format!("{path}.fsync"), *fsync, 0, TIMING_MS_MAX)
        }
        Fault::TransferLeader { group, to } => {
            group_ok(&format!("{path}.group"), *group, cluster)?;
            transfer_target_ok(&format!("{path}.to"), *group, *to, cluster)
        }
        Fault::Crash(_)
        | Fault::CrashLosingUnsynced(_)
        | Fault::CrashTornTail(_)
        | Fault::WipeDisk(_)
        | Fault::LoseHardState(_)
        | Fault::MisdirectedWrite(_)
        | Fault::ClockResync(_)
        | Fault::Restart(_)
        | Fault::Isolate(_)
        | Fault::Heal => Ok(()),
    }
}

fn not_self_link(path: &str, from: Target, to: Target) -> Check {
    ensure(
        !matches!((from, to), (Target::Node(a), Target::Node(b)) if a == b),
        &format!("{path}.to"),
        || "a node's link to itself cannot be cut, slowed or lossy".to_string(),
    )
}

fn validate_random(
    path: &str,
    kinds: &[FaultKind],
    every: MillisRange,
    length: MillisRange,
    cluster: &Cluster,
) -> Check {
    let kinds_path = format!("{path}.kinds");
    ensure(!kinds.is_empty(), &kinds_path, || {
        "a swarm needs at least one fault kind".to_string()
    })?;
    let mut seen = BTreeSet::new();
    for (index, kind) in kinds.iter().enumerate() {
        let kind_path = format!("{kinds_path}[{index}]");
        ensure(seen.insert(*kind), &kind_path, || {
            format!("{kind:?} is listed twice")
        })?;
        ensure(
            *kind != FaultKind::MajoritiesRing || cluster.replicas == 5,
            &kind_path,
            || {
                format!(
                    "MajoritiesRing needs 5 replicas; the cluster has {}",
                    cluster.replicas
                )
            },
        )?;
    }
    range_in(&format!("{path}.every"), every, TIMING_MS_MAX)?;
    millis_in(
        &format!("{path}.every.0"),
        every.min,
        SWARM_EVERY_MS_MIN,
        TIMING_MS_MAX,
    )?;
    range_in(&format!("{path}.for"), length, TIMING_MS_MAX)?;
    millis_in(&format!("{path}.for.0"), length.min, 1, TIMING_MS_MAX)
}

fn group_ok(path: &str, group: u32, cluster: &Cluster) -> Check {
    ensure(group < cluster.groups, path, || {
        format!(
            "group {group} is out of range: the cluster has {} group(s), 0..={}",
            cluster.groups,
            cluster.groups.saturating_sub(1)
        )
    })
}

fn node_ok(path: &str, node: u32, cluster: &Cluster) -> Check {
    let count = cluster.node_count();
    ensure(node < count, path, || {
        format!(
            "node {node} is out of range: the cluster has {count} nodes, 0..={} \
             (replica r of group g is node g × {} + r)",
            count.saturating_sub(1),
            cluster.replicas
        )
    })
}

fn validate_target(path: &str, target: Target, fault: &Fault, cluster: &Cluster) -> Check {
    let is_restart = matches!(fault, Fault::Restart(_));
    match target {
        Target::Node(node) => node_ok(path, node, cluster),
        Target::AllCrashed => ensure(is_restart, path, || {
            format!(
                "AllCrashed is only a target for Restart, not {}",
                fault.kind_name()
            )
        }),
        Target::Random => Ok(()),
        Target::Group { group } => {
            ensure(!is_restart, path, || {
                "restart Node(n), Random or AllCrashed, not a whole group (some of it may be up)"
                    .to_string()
            })?;
            group_ok(&format!("{path}.group"), group, cluster)
        }
        Target::Leader { group }
        | Target::Follower { group }
        | Target::Minority { group }
        | Target::Majority { group } => {
            ensure(!is_restart, path, || {
                format!("a crashed node has no role to name: restart Node(n), Random or AllCrashed, not {target}")
            })?;
            group_ok(&format!("{path}.group"), group, cluster)
        }
    }
}

fn transfer_target_ok(path: &str, group: u32, to: Target, cluster: &Cluster) -> Check {
    match to {
        Target::Node(node) => ensure(cluster.nodes_of(group).contains(&node), path, || {
            format!(
                "node {node} is not in group {group} (nodes {:?})",
                cluster.nodes_of(group)
            )
        }),
        Target::Follower { group: to_group } => ensure(to_group == group, path, || {
            format!("leadership of group {group} can only move within group {group}")
        }),
        _ => Err(violation(
            path,
            format!("transfer to Node(n) or Follower(group: {group}), not {to}"),
        )),
    }
}

fn validate_partition(path: &str, sides: &[Vec<u32>], cluster: &Cluster) -> Check {
    ensure(sides.len() >= 2, path, || {
        format!("a partition needs at least 2 sides, got {}", sides.len())
    })?;
    let mut seen = BTreeSet::new();
    for (side_index, side) in sides.iter().enumerate() {
        let side_path = format!("{path}[{side_index}]");
        ensure(!side.is_empty(), &side_path, || {
            "a side cannot be empty".to_string()
        })?;
        for (node_index, &node) in side.iter().enumerate() {
            let node_path = format!("{side_path}[{node_index}]");
            node_ok(&node_path, node, cluster)?;
            ensure(seen.insert(node), &node_path, || {
                format!("node {node} is on more than one side")
            })?;
        }
    }
    Ok(())
}
