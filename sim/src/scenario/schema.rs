//! The scenario file's types, field for field as users write them. Optional fields carry
//! their defaults here (DLedger's for Raft timing); limits and relations live in
//! `validate.rs`.

use super::duration::{deserialize_some_millis, Millis, MillisRange};
use super::fault::TimedFault;
use super::swarm_config::{SwarmRanges, TriggerSetting};
use crate::ids::FindingKind;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One scenario: a cluster, a workload, a timeline of faults, and what must hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Scenario", deny_unknown_fields)]
pub struct Scenario {
    /// Short identifier, used in report file names.
    pub name: String,
    pub seeds: Seeds,
    /// Simulated length of the fault phase.
    pub duration: Millis,
    pub cluster: Cluster,
    pub workload: Workload,
    /// Fixed timeline, sorted by `at`; faults at the same time fire in file order.
    #[serde(default)]
    pub faults: Vec<TimedFault>,
    #[serde(default)]
    pub expect: Expect,
    /// Heal-and-settle bound: after `duration` every fault is undone and each group must have
    /// one leader, all replicas caught up and every acknowledged message readable within this.
    #[serde(default = "default_settle_max")]
    pub settle_max: Millis,
    /// The same story under different settings, run side by side by `sim run`: each variant
    /// applies its `set` overrides (as `--set KEY=VALUE` does) and may bring its own `expect`;
    /// the run prints every variant's tables and one comparison. `sim run --variant NAME`
    /// runs one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<Variant>,
    /// Swarm configuration per seed (`swarm_config`): ranges each seed draws its replica count,
    /// Raft timing, network, fault rate, fault kinds and workload from (written without `Some`).
    #[serde(
        default,
        deserialize_with = "deserialize_some_swarm",
        skip_serializing_if = "Option::is_none"
    )]
    pub swarm: Option<SwarmRanges>,
    /// Faults fired on events, not times (`world::triggers`): `[(on: CrashAfterVoteGrant,
    /// chance_ppm: 100000, down: "300ms")]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<TriggerSetting>,

    /// The file this came from, as given to `parse` (for messages and reports).
    #[serde(skip)]
    pub file_name: String,
    /// FNV-1a 64 of the file's bytes: identifies the scenario in reports and replay commands.
    #[serde(skip)]
    pub source_hash: SourceHash,
    /// `--set key=value` overrides applied after loading, in order.
    #[serde(skip)]
    pub overrides: Vec<(String, String)>,
    /// The variant this scenario was made from (`variant_scenarios`), if any.
    #[serde(skip)]
    pub variant: Option<String>,
}

pub(crate) fn default_settle_max() -> Millis {
    Millis::from_secs(30)
}

/// Seeds `first .. first + count`, one simulation each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seeds {
    pub first: u64,
    pub count: u64,
}

impl Seeds {
    pub fn iter(&self) -> impl Iterator<Item = u64> {
        // Validation checks that first + count does not overflow.
        self.first..self.first.saturating_add(self.count)
    }
}

impl Scenario {
    /// The scenario each variant describes (its overrides applied, its `expect` if it has one,
    /// named `<scenario>-<variant>`), or the scenario itself when it has no variants.
    pub fn variant_scenarios(&self) -> Result<Vec<Scenario>, super::ScenarioError> {
        if self.variants.is_empty() {
            return Ok(vec![self.clone()]);
        }
        let base = Scenario {
            variants: Vec::new(),
            ..self.clone()
        };
        self.variants
            .iter()
            .map(|variant| {
                let mut scenario = base.clone();
                for item in &variant.set {
                    let (key, value) = item.split_once('=').unwrap_or((item.as_str(), ""));
                    scenario = scenario.with_override(key, value)?;
                }
                scenario.name = format!("{}-{}", self.name, variant.name);
                // `--variant NAME` replays it; its overrides need not be spelled out again.
                scenario.overrides = self.overrides.clone();
                scenario.variant = Some(variant.name.clone());
                if let Some(expect) = &variant.expect {
                    scenario.expect = expect.clone();
                }
                Ok(scenario)
            })
            .collect()
    }
}

fn deserialize_some_swarm<'de, D>(deserializer: D) -> Result<Option<SwarmRanges>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    SwarmRanges::deserialize(deserializer).map(Some)
}

fn deserialize_some_expect<'de, D>(deserializer: D) -> Result<Option<Expect>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Expect::deserialize(deserializer).map(Some)
}

/// One variant of a scenario (`variants`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// Appended to the scenario's name in reports: `<scenario>-<name>`.
    pub name: String,
    /// Overrides, `KEY=VALUE` as for `--set` (e.g. `"fidelity=DLedger"`).
    #[serde(default)]
    pub set: Vec<String>,
    /// Replaces the scenario's `expect` for this variant (written without `Some`).
    #[serde(default, deserialize_with = "deserialize_some_expect")]
    pub expect: Option<Expect>,
}

/// The brokers. Nodes are numbered across groups: replica `r` of group `g` is node
/// `g × replicas + r`, so with 2 groups of 3, group 1 is nodes 3, 4, 5.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// Broker groups (each a replicated CommitLog).
    #[serde(default = "default_groups")]
    pub groups: u32,
    /// Replicas per group: 3 or 5.
    #[serde(default = "default_replicas")]
    pub replicas: u32,
    #[serde(default)]
    pub replication: Replication,
    #[serde(default)]
    pub raft: RaftSettings,
    #[serde(default)]
    pub network: NetworkSettings,
    #[serde(default)]
    pub disk: DiskSettings,
    /// Name servers (RocketMQ NameServer), each its own simulated host. 0 (the default):
    /// no routing, clients find leaders by themselves and follow NOT_LEADER hints. 1 or more:
    /// brokers register with every name server and clients send where the routes they fetch
    /// say, as RocketMQ clients do.
    #[serde(default)]
    pub name_servers: u32,
    /// A broker registers its group, role and address with every name server this often, and
    /// at once when its role changes (RocketMQ `registerNameServerPeriod`, 30 s).
    #[serde(default = "default_register_interval")]
    pub register_interval: Millis,
    /// A name server drops a broker it has not heard from for this long (RocketMQ's
    /// `BROKER_CHANNEL_EXPIRED_TIME`, 120 s).
    #[serde(default = "default_broker_expiry")]
    pub broker_expiry: Millis,
    /// Which consensus behaviour the DLedger replicas follow: the Raft paper's (default) or
    /// DLedger's own (`broker_core::raft::Fidelity`: commit by quorum watermark, no no-op on
    /// election, DLedger's vote checks, heartbeat-round step-down). DLedger fidelity has no
    /// pre-vote: it needs `raft: (pre_vote: false)`.
    #[serde(default, skip_serializing_if = "Fidelity::is_raft")]
    pub fidelity: Fidelity,
    /// How DLedger replicas answer pulls (`broker_core::broker::ReadMode`): `ReadIndex`
    /// (default, Raft §6.4), `RaftLogRead` (DLedger RAFT_LOG_READ) or `UnsafeRead` (DLedger
    /// UNSAFE_READ: any replica answers from what it applied; consumers then pull from every
    /// replica in turn).
    #[serde(default, skip_serializing_if = "ReadMode::is_read_index")]
    pub read_mode: ReadMode,
    /// Test-only: run a deliberately broken broker, to show the checks catch it.
    #[doc(hidden)]
    #[serde(default, skip_serializing_if = "Broken::is_off")]
    pub broken: Broken,
}

/// The consensus behaviour of DLedger replicas (`cluster.fidelity`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fidelity {
    /// The Raft paper's rules.
    #[default]
    Raft,
    /// DLedger's own rules, each a switch in `broker_core::raft::Fidelity`.
    DLedger,
}

impl Fidelity {
    pub fn is_raft(&self) -> bool {
        *self == Fidelity::Raft
    }

    pub fn to_core(self) -> broker_core::raft::Fidelity {
        match self {
            Fidelity::Raft => broker_core::raft::Fidelity::RAFT,
            Fidelity::DLedger => broker_core::raft::Fidelity::DLEDGER,
        }
    }
}

impl fmt::Display for Fidelity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// How DLedger replicas answer pulls (`cluster.read_mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadMode {
    #[default]
    ReadIndex,
    RaftLogRead,
    UnsafeRead,
}

impl ReadMode {
    pub fn is_read_index(&self) -> bool {
        *self == ReadMode::ReadIndex
    }

    pub fn to_core(self) -> broker_core::broker::ReadMode {
        match self {
            ReadMode::ReadIndex => broker_core::broker::ReadMode::ReadIndex,
            ReadMode::RaftLogRead => broker_core::broker::ReadMode::RaftLogRead,
            ReadMode::UnsafeRead => broker_core::broker::ReadMode::UnsafeRead,
        }
    }
}

/// A deliberately broken broker (test-only; `cluster.broken`).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Broken {
    /// The real broker.
    #[default]
    Off,
    /// SEND_OK as soon as the leader appends, before the send commits.
    AckBeforeCommit,
    /// SEND_OK with a queue offset a few past the one the send is stored at.
    AckWrongOffset,
    /// A replica that lost its hard state or disk votes at once (issue 15's classic bug:
    /// broker-core `unsafe_vote_after_disk_loss`).
    VoteAfterDiskLoss,
    /// Every replica's clock but replica 0's silently skips ahead by an election timeout every few seconds (a
    /// broken timer source, no fault recorded): the unexplained-election oracle must see it.
    ClockSkipsAhead,
}

impl Broken {
    pub fn is_off(&self) -> bool {
        *self == Broken::Off
    }
}

fn default_register_interval() -> Millis {
    Millis::from_secs(30)
}

fn default_broker_expiry() -> Millis {
    Millis::from_secs(120)
}

fn default_groups() -> u32 {
    1
}

fn default_replicas() -> u32 {
    3
}

impl Cluster {
    /// Broker nodes in the whole cluster: `groups × replicas`.
    pub fn node_count(&self) -> u32 {
        self.groups.saturating_mul(self.replicas)
    }

    /// broker-core's Raft config: the timings of `raft` and the rules of `fidelity`.
    pub fn core_raft_config(&self) -> broker_core::raft::Config {
        broker_core::raft::Config {
            fidelity: self.fidelity.to_core(),
            ..self.raft.to_core_config()
        }
    }

    /// The group node `node` belongs to.
    pub fn group_of(&self, node: u32) -> u32 {
        node / self.replicas.max(1)
    }

    /// The nodes of `group`, in replica order.
    pub fn nodes_of(&self, group: u32) -> std::ops::Range<u32> {
        let first = group.saturating_mul(self.replicas);
        first..first.saturating_add(self.replicas)
    }
}

/// How a group replicates its CommitLog.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Replication {
    /// Raft log with automatic failover.
    #[default]
    DLedger,
    /// Master acknowledges after a slave has the entry; no automatic promotion.
    SyncMasterSlave,
    /// Master acknowledges after its local write; no automatic promotion.
    AsyncMasterSlave,
}

impl fmt::Display for Replication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Raft timing. Defaults are DLedger's (`DLedgerConfig`), taken from broker-core's
/// `raft::Config::default()` so there is one source of truth.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RaftSettings {
    /// Leader heartbeat period (DLedger 2 s).
    pub heartbeat_interval: Millis,
    /// Missed heartbeats before an election (DLedger 3).
    pub max_heartbeat_leak: u32,
    /// Random wait before an election attempt, (min, max) (DLedger 300 ms – 1 s).
    pub vote_interval: MillisRange,
    /// A send not committed within this is answered with a timeout (DLedger 2.5 s).
    pub max_wait_ack: Millis,
    /// Ask for pre-votes before raising the term.
    pub pre_vote: bool,
}

impl Default for RaftSettings {
    fn default() -> Self {
        let core = broker_core::raft::Config::default();
        RaftSettings {
            heartbeat_interval: Millis(core.heartbeat_interval_ms),
            max_heartbeat_leak: core.max_heartbeat_leak,
            vote_interval: MillisRange::new(core.vote_interval_ms_min, core.vote_interval_ms_max),
            max_wait_ack: Millis(core.max_wait_ack_ms),
            pre_vote: core.pre_vote,
        }
    }
}

impl RaftSettings {
    /// broker-core's config with these timings; every other field keeps its default.
    pub fn to_core_config(&self) -> broker_core::raft::Config {
        broker_core::raft::Config {
            heartbeat_interval_ms: self.heartbeat_interval.as_ms(),
            max_heartbeat_leak: self.max_heartbeat_leak,
            vote_interval_ms_min: self.vote_interval.min.as_ms(),
            vote_interval_ms_max: self.vote_interval.max.as_ms(),
            max_wait_ack_ms: self.max_wait_ack.as_ms(),
            pre_vote: self.pre_vote,
            ..broker_core::raft::Config::default()
        }
    }
}

/// Message delivery between all nodes (brokers and clients).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkSettings {
    /// One-way delay, drawn uniformly per message from (min, max). Default 1–5 ms.
    pub latency: MillisRange,
    /// Messages dropped, in parts per million. Default 0.
    pub loss_ppm: u32,
}

impl Default for NetworkSettings {
    fn default() -> Self {
        NetworkSettings {
            latency: MillisRange::new(1, 5),
            loss_ppm: 0,
        }
    }
}

/// Simulated durable storage of every broker node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiskSettings {
    /// Time an fsync takes. Default 2 ms.
    pub fsync: Millis,
}

impl Default for DiskSettings {
    fn default() -> Self {
        DiskSettings { fsync: Millis(2) }
    }
}

/// Clients.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Producer clients, each its own node.
    pub producers: u32,
    /// Sends per producer per second.
    pub send_rate: u32,
    pub topics: Vec<Topic>,
    /// Consumer clients (pull loops). Default 0.
    #[serde(default)]
    pub consumers: u32,
    /// A send not answered within this is recorded as Unknown and retried. Default 3 s.
    #[serde(default = "default_send_timeout")]
    pub send_timeout: Millis,
    /// With name servers: how often a client fetches routes (RocketMQ `pollNameServerInterval`,
    /// 30 s). A client also fetches at start and after a definite refusal (NOT_LEADER), never
    /// after a timeout. Unused without name servers.
    #[serde(default = "default_route_refresh")]
    pub route_refresh: Millis,
    /// When the clients start. Default: once the first leader is likely elected (election
    /// timeout + vote jitter + 1 s), and no later than the first fault. `sim shrink` writes
    /// it, so moving or removing the first fault does not move the workload.
    #[serde(
        default,
        deserialize_with = "deserialize_some_millis",
        skip_serializing_if = "Option::is_none"
    )]
    pub start: Option<Millis>,
}

fn default_send_timeout() -> Millis {
    Millis::from_secs(3)
}

fn default_route_refresh() -> Millis {
    Millis::from_secs(30)
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topic {
    pub name: String,
    /// Queues of this topic (spread across groups).
    pub queues: u32,
}

/// What must hold for a seed to pass. Every bound is optional except the safety ones,
/// which default to the strict answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Expect {
    /// Every queue's history is linearizable against the log model. Default true.
    pub linearizable: bool,
    /// Most acknowledged sends that may be lost per seed. Default 0.
    pub lost_acked: u64,
    /// Most replicas per seed that may refuse to start from a damaged disk (issue 15: a disk
    /// that lost committed entries is refused with a typed recovery error). Default 0.
    pub recovery_failed: u64,
    /// Most seeds whose groups may not settle (issue 15: beyond the storage fault atlas, a
    /// group that lost a majority's copies may be unable to recover). Default 0.
    pub not_settled_max: u64,
    /// Finding kinds this scenario's story must produce (a scenario that plants or unlocks a
    /// bug, such as `lost_vote_double_leader`): they are the expected outcome, not failures,
    /// and at least `must_find_pct_min` percent of the seeds (and at least one) must show one
    /// of them. Empty by default.
    pub must_find: Vec<FindingKind>,
    /// Smallest share of seeds, in percent, that must show a `must_find` kind. Default 1;
    /// ignored when `must_find` is empty.
    pub must_find_pct_min: u64,
    /// Bounds across seeds on the failover stages of DESIGN.md (p99 over seeds).
    #[serde(
        deserialize_with = "deserialize_some_millis",
        skip_serializing_if = "Option::is_none"
    )]
    pub failover_detect_p99_max: Option<Millis>,
    #[serde(
        deserialize_with = "deserialize_some_millis",
        skip_serializing_if = "Option::is_none"
    )]
    pub failover_elect_p99_max: Option<Millis>,
    #[serde(
        deserialize_with = "deserialize_some_millis",
        skip_serializing_if = "Option::is_none"
    )]
    pub failover_commit_p99_max: Option<Millis>,
    #[serde(
        deserialize_with = "deserialize_some_millis",
        skip_serializing_if = "Option::is_none"
    )]
    pub failover_client_p99_max: Option<Millis>,
    /// Bound on the topic-level unavailability (p99 over failovers): the longest stretch
    /// with no acknowledged send to a topic spread over several groups (`metrics` doc).
    /// Not reported with one group: then the bound fails.
    #[serde(
        deserialize_with = "deserialize_some_millis",
        skip_serializing_if = "Option::is_none"
    )]
    pub topic_unavailable_p99_max: Option<Millis>,
}

impl Default for Expect {
    fn default() -> Self {
        Expect {
            linearizable: true,
            lost_acked: 0,
            recovery_failed: 0,
            not_settled_max: 0,
            must_find: Vec::new(),
            must_find_pct_min: 1,
            failover_detect_p99_max: None,
            failover_elect_p99_max: None,
            failover_commit_p99_max: None,
            failover_client_p99_max: None,
            topic_unavailable_p99_max: None,
        }
    }
}

/// FNV-1a 64 of a scenario file's bytes. Displayed as 16 hex digits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SourceHash(pub u64);

impl SourceHash {
    pub fn of(bytes: &[u8]) -> SourceHash {
        const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let hash = bytes.iter().fold(OFFSET_BASIS, |hash, &byte| {
            (hash ^ u64::from(byte)).wrapping_mul(PRIME)
        });
        SourceHash(hash)
    }
}

impl fmt::Display for SourceHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl Serialize for SourceHash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}
