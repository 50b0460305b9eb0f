//! `--set key=value`: change one setting of a loaded scenario (for `sim sweep`). Keys are
//! dotted paths into the cluster config (`raft.heartbeat_interval`, optionally written
//! `cluster.raft.heartbeat_interval`) plus a few workload and run settings.

use super::duration::{parse_millis, MillisRange};
use super::error::ScenarioError;
use super::schema::{Fidelity, ReadMode, Replication, Scenario};
use super::validate;

type Setter = fn(&mut Scenario, &str) -> Result<(), String>;

/// Every key `with_override` accepts, with what its value looks like.
pub const OVERRIDE_KEYS: &[(&str, &str)] = &[
    ("groups", "integer"),
    ("replicas", "3 or 5"),
    (
        "replication",
        "DLedger | SyncMasterSlave | AsyncMasterSlave",
    ),
    (
        "name_servers",
        "integer (0: clients follow leader hints, no routing)",
    ),
    (
        "fidelity",
        "Raft | DLedger (DLedger also sets raft.pre_vote=false)",
    ),
    ("read_mode", "ReadIndex | RaftLogRead | UnsafeRead"),
    ("register_interval", "duration"),
    ("broker_expiry", "duration"),
    ("raft.heartbeat_interval", "duration, e.g. 100ms"),
    ("raft.max_heartbeat_leak", "integer"),
    ("raft.vote_interval", "duration range, e.g. 300ms..1s"),
    ("raft.max_wait_ack", "duration"),
    ("raft.pre_vote", "true | false"),
    ("network.latency", "duration range, e.g. 1ms..5ms"),
    ("network.loss_ppm", "integer"),
    ("disk.fsync", "duration"),
    ("workload.producers", "integer"),
    ("workload.send_rate", "integer (per producer per second)"),
    ("workload.consumers", "integer"),
    ("workload.send_timeout", "duration"),
    ("workload.route_refresh", "duration"),
    ("duration", "duration"),
    ("settle_max", "duration"),
];

fn setter(key: &str) -> Option<Setter> {
    let setter: Setter = match key {
        "groups" => |s, v| set_u32(&mut s.cluster.groups, v),
        "replicas" => |s, v| set_u32(&mut s.cluster.replicas, v),
        "replication" => |s, v| {
            s.cluster.replication = match v {
                "DLedger" => Replication::DLedger,
                "SyncMasterSlave" => Replication::SyncMasterSlave,
                "AsyncMasterSlave" => Replication::AsyncMasterSlave,
                _ => return Err(format!("{v:?} is not a replication mode")),
            };
            Ok(())
        },
        "name_servers" => |s, v| set_u32(&mut s.cluster.name_servers, v),
        "fidelity" => |s, v| {
            s.cluster.fidelity = match v {
                "Raft" => Fidelity::Raft,
                "DLedger" => Fidelity::DLedger,
                _ => return Err(format!("{v:?} is not a fidelity (Raft or DLedger)")),
            };
            // DLedger has no pre-vote (validation requires it off): one --set is enough.
            if s.cluster.fidelity == Fidelity::DLedger {
                s.cluster.raft.pre_vote = false;
            }
            Ok(())
        },
        "read_mode" => |s, v| {
            s.cluster.read_mode = match v {
                "ReadIndex" => ReadMode::ReadIndex,
                "RaftLogRead" => ReadMode::RaftLogRead,
                "UnsafeRead" => ReadMode::UnsafeRead,
                _ => return Err(format!("{v:?} is not a read mode")),
            };
            Ok(())
        },
        "register_interval" => |s, v| set_millis(&mut s.cluster.register_interval, v),
        "broker_expiry" => |s, v| set_millis(&mut s.cluster.broker_expiry, v),
        "raft.heartbeat_interval" => |s, v| set_millis(&mut s.cluster.raft.heartbeat_interval, v),
        "raft.max_heartbeat_leak" => |s, v| set_u32(&mut s.cluster.raft.max_heartbeat_leak, v),
        "raft.vote_interval" => |s, v| set_range(&mut s.cluster.raft.vote_interval, v),
        "raft.max_wait_ack" => |s, v| set_millis(&mut s.cluster.raft.max_wait_ack, v),
        "raft.pre_vote" => |s, v| {
            s.cluster.raft.pre_vote = v
                .parse()
                .map_err(|_| format!("{v:?} is not true or false"))?;
            Ok(())
        },
        "network.latency" => |s, v| set_range(&mut s.cluster.network.latency, v),
        "network.loss_ppm" => |s, v| set_u32(&mut s.cluster.network.loss_ppm, v),
        "disk.fsync" => |s, v| set_millis(&mut s.cluster.disk.fsync, v),
        "workload.producers" => |s, v| set_u32(&mut s.workload.producers, v),
        "workload.send_rate" => |s, v| set_u32(&mut s.workload.send_rate, v),
        "workload.consumers" => |s, v| set_u32(&mut s.workload.consumers, v),
        "workload.send_timeout" => |s, v| set_millis(&mut s.workload.send_timeout, v),
        "workload.route_refresh" => |s, v| set_millis(&mut s.workload.route_refresh, v),
        "duration" => |s, v| set_millis(&mut s.duration, v),
        "settle_max" => |s, v| set_millis(&mut s.settle_max, v),
        _ => return None,
    };
    Some(setter)
}

fn unquoted(value: &str) -> &str {
    let value = value.trim();
    value
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(value)
}

fn set_u32(field: &mut u32, value: &str) -> Result<(), String> {
    *field = value
        .parse()
        .map_err(|_| format!("{value:?} is not a non-negative integer"))?;
    Ok(())
}

fn set_millis(field: &mut super::duration::Millis, value: &str) -> Result<(), String> {
    *field = parse_millis(value)?;
    Ok(())
}

fn set_range(field: &mut MillisRange, value: &str) -> Result<(), String> {
    *field = MillisRange::parse_cli(value)?;
    Ok(())
}

impl Scenario {
    /// A copy of this scenario with one setting changed, validated again. The change is
    /// recorded in `overrides` (reports must show it: `source_hash` still names the file).
    pub fn with_override(&self, key: &str, value: &str) -> Result<Scenario, ScenarioError> {
        let error = |message: String| ScenarioError::Override {
            key: key.to_string(),
            value: value.to_string(),
            message,
        };
        let short_key = key.strip_prefix("cluster.").unwrap_or(key);
        let set = setter(short_key).ok_or_else(|| {
            let known: Vec<&str> = OVERRIDE_KEYS.iter().map(|(known, _)| *known).collect();
            error(format!("unknown key (known: {})", known.join(", ")))
        })?;
        let mut scenario = self.clone();
        set(&mut scenario, unquoted(value)).map_err(&error)?;
        validate::validate(&scenario)
            .map_err(|violation| error(format!("{}: {}", violation.path, violation.message)))?;
        scenario
            .overrides
            .push((key.to_string(), value.to_string()));
        Ok(scenario)
    }
}
