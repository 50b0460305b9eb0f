//! Swarm configuration per seed (TigerBeetle's VOPR draws a whole configuration per seed): a
//! scenario's `swarm: (...)` gives ranges instead of values for the replica count, the Raft
//! timing, the network, the fault rate and duration, the fault kinds of its `Random` entries
//! and the workload. Each seed draws its own configuration from its own ChaCha stream of the
//! seed alone (`mix_seed(seed, SWARM_CONFIG_STREAM, 0)`), so nothing else moves it; the draw is
//! applied to the scenario before the world starts, stored in the seed's report (`config`) and
//! printed by `replay`.
//!
//! Relations kept valid by construction: the vote jitter is drawn from `[heartbeat / 4,
//! heartbeat]`, so an election timeout (heartbeat × leak + jitter) always exceeds the heartbeat
//! period; latency ranges stay below the shortest heartbeat (validated); fault gaps never go
//! under the swarm's floor (`SWARM_EVERY_MS_MIN`).

use super::duration::{Millis, MillisRange};
use super::fault::{Fault, FaultKind};
use super::schema::Scenario;
use crate::world::mix_seed;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The swarm configuration's own stream tag ("SWCONF").
const SWARM_CONFIG_STREAM: u64 = 0x5357_434F_4E46;

/// An event a trigger fires on (`world::triggers::TriggerKind`, in the scenario's words).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TriggerName {
    /// Crash a replica right after it grants a vote.
    CrashAfterVoteGrant,
    /// Power-lose a follower right after it acknowledges an append.
    PowerLoseAfterAppendAck,
    /// Power-lose the leader right after it answers SEND_OK.
    PowerLoseAfterSendOk,
    /// Crash the leader right after it commits an entry of an older term.
    CrashAfterOldTermCommit,
    /// Pause the leader while a pull waits for its answer.
    PauseWithPendingRead,
}

/// A fault fired on an event (`triggers: [...]`): on each occurrence with `chance_ppm`, the
/// node stays down (or paused) `down`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerSetting {
    pub on: TriggerName,
    pub chance_ppm: u32,
    pub down: Millis,
}

/// An inclusive range of counts, written `(min, max)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountRange(pub u32, pub u32);

/// What a scenario's `swarm` field gives: ranges a seed draws its configuration from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwarmRanges {
    /// Replica counts to choose from (each 3 or 5). Default both.
    #[serde(default = "default_replicas")]
    pub replicas: Vec<u32>,
    /// Leader heartbeat period; the vote jitter follows it (`[heartbeat / 4, heartbeat]`).
    pub heartbeat_interval: MillisRange,
    /// Largest one-way network delay; the smallest is the scenario's. Must stay below the
    /// shortest heartbeat.
    #[serde(default = "default_latency_max")]
    pub latency_max: MillisRange,
    /// Messages dropped, parts per million. Default none.
    #[serde(default = "default_loss")]
    pub loss_ppm: CountRange,
    /// Gaps between drawn faults: the seed draws its own (min, max) inside this.
    pub every: MillisRange,
    /// Lengths of drawn faults (a crash's restart delay, a cut's duration): the seed draws its
    /// own (min, max) inside this.
    #[serde(rename = "for")]
    pub length: MillisRange,
    /// Producer clients.
    pub producers: CountRange,
    /// Sends per producer per second.
    pub send_rate: CountRange,
    /// Event triggers a seed may arm (each with p = ½). Default none.
    #[serde(default)]
    pub triggers: Vec<TriggerName>,
    /// Chance an armed trigger fires on each occurrence of its event, ppm.
    #[serde(default = "default_trigger_chance")]
    pub trigger_chance_ppm: CountRange,
}

fn default_trigger_chance() -> CountRange {
    CountRange(20_000, 200_000)
}

fn default_replicas() -> Vec<u32> {
    vec![3, 5]
}

fn default_latency_max() -> MillisRange {
    MillisRange::new(5, 5)
}

fn default_loss() -> CountRange {
    CountRange(0, 0)
}

/// One seed's drawn configuration, as the report stores it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwarmConfig {
    pub replicas: u32,
    pub heartbeat_ms: u64,
    pub vote_interval_ms: (u64, u64),
    pub latency_ms: (u64, u64),
    pub loss_ppm: u32,
    /// The fault kinds enabled this seed (each of the `Random` entries' kinds with p = ½, at
    /// least one).
    pub kinds: Vec<FaultKind>,
    pub every_ms: (u64, u64),
    pub for_ms: (u64, u64),
    pub producers: u32,
    pub send_rate: u32,
    /// The event triggers armed this seed.
    #[serde(default)]
    pub triggers: Vec<TriggerSetting>,
}

impl fmt::Display for SwarmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "r{} hb{} lat{}-{} loss{} every{}-{} for{}-{} p{}x{} kinds{} trig{}",
            self.replicas,
            self.heartbeat_ms,
            self.latency_ms.0,
            self.latency_ms.1,
            self.loss_ppm,
            self.every_ms.0,
            self.every_ms.1,
            self.for_ms.0,
            self.for_ms.1,
            self.producers,
            self.send_rate,
            self.kinds.len(),
            self.triggers.len()
        )
    }
}

impl SwarmConfig {
    /// Every field on its own line, for `replay`.
    pub fn describe(&self) -> String {
        let kinds: Vec<String> = self.kinds.iter().map(|k| format!("{k:?}")).collect();
        let triggers: Vec<String> = self
            .triggers
            .iter()
            .map(|t| format!("{:?} ({} ppm, down {})", t.on, t.chance_ppm, t.down))
            .collect();
        format!(
            "replicas {}, heartbeat {} ms, vote jitter {}..{} ms, latency {}..{} ms, loss {} ppm\n\
             faults every {}..{} ms for {}..{} ms, kinds: {}\n\
             {} producers at {} sends/s\n\
             triggers: {}",
            self.replicas,
            self.heartbeat_ms,
            self.vote_interval_ms.0,
            self.vote_interval_ms.1,
            self.latency_ms.0,
            self.latency_ms.1,
            self.loss_ppm,
            self.every_ms.0,
            self.every_ms.1,
            self.for_ms.0,
            self.for_ms.1,
            kinds.join(", "),
            self.producers,
            self.send_rate,
            triggers.join(", ")
        )
    }
}

/// A sorted pair from `range` (both ends drawn).
fn pair(rng: &mut ChaCha8Rng, range: MillisRange) -> (u64, u64) {
    let a = rng.gen_range(range.min.0..=range.max.0);
    let b = rng.gen_range(range.min.0..=range.max.0);
    (a.min(b), a.max(b))
}

fn count(rng: &mut ChaCha8Rng, range: CountRange) -> u32 {
    rng.gen_range(range.0..=range.1)
}

/// The kinds of every `Random` entry of `scenario`, in first-seen order.
fn candidate_kinds(scenario: &Scenario) -> Vec<FaultKind> {
    let mut kinds = Vec::new();
    for timed in &scenario.faults {
        if let Fault::Random { kinds: some, .. } = &timed.fault {
            for kind in some {
                if !kinds.contains(kind) {
                    kinds.push(*kind);
                }
            }
        }
    }
    kinds
}

/// Draws seed `seed`'s configuration from `ranges` (validated) for `scenario`.
pub fn draw(scenario: &Scenario, ranges: &SwarmRanges, seed: u64) -> SwarmConfig {
    let mut rng = ChaCha8Rng::seed_from_u64(mix_seed(seed, SWARM_CONFIG_STREAM, 0));
    let replicas = ranges.replicas[rng.gen_range(0..ranges.replicas.len())];
    let heartbeat_ms =
        rng.gen_range(ranges.heartbeat_interval.min.0..=ranges.heartbeat_interval.max.0);
    let drawn_vote_interval_ms = pair(
        &mut rng,
        MillisRange::new((heartbeat_ms / 4).max(1), heartbeat_ms.max(1)),
    );
    // Raft's liveness rests on the spread of the vote waits: with none (a draw of 57..57 ms),
    // candidates that collide once retry in lock-step forever (10 of 10,000 hunt seeds never
    // elected a leader). The spread is kept at least half the top, as the Raft paper's
    // 150-300 ms; the draw itself is unchanged, so the seed's other draws stay.
    let vote_interval_ms = (
        drawn_vote_interval_ms
            .0
            .min(drawn_vote_interval_ms.1 / 2)
            .max(1),
        drawn_vote_interval_ms.1,
    );
    let latency_min = scenario.cluster.network.latency.min.0;
    let latency_max = rng
        .gen_range(ranges.latency_max.min.0..=ranges.latency_max.max.0)
        .max(latency_min);
    let loss_ppm = count(&mut rng, ranges.loss_ppm);
    let candidates = candidate_kinds(scenario);
    let mut kinds: Vec<FaultKind> = candidates
        .iter()
        .copied()
        .filter(|_| rng.gen_bool(0.5))
        .filter(|kind| *kind != FaultKind::MajoritiesRing || replicas == 5)
        .collect();
    if kinds.is_empty() {
        let usable: Vec<FaultKind> = candidates
            .iter()
            .copied()
            .filter(|kind| *kind != FaultKind::MajoritiesRing || replicas == 5)
            .collect();
        if !usable.is_empty() {
            kinds.push(usable[rng.gen_range(0..usable.len())]);
        }
    }
    let every_ms = pair(&mut rng, ranges.every);
    let for_ms = pair(&mut rng, ranges.length);
    let producers = count(&mut rng, ranges.producers);
    let send_rate = count(&mut rng, ranges.send_rate);
    // Down long enough for the others to elect (four heartbeats), at least the shortest fault.
    let down = Millis(for_ms.0.max(heartbeat_ms * 4));
    let mut triggers = Vec::new();
    for on in &ranges.triggers {
        if rng.gen_bool(0.5) {
            triggers.push(TriggerSetting {
                on: *on,
                chance_ppm: count(&mut rng, ranges.trigger_chance_ppm),
                down,
            });
        }
    }
    SwarmConfig {
        replicas,
        heartbeat_ms,
        vote_interval_ms,
        latency_ms: (latency_min, latency_max),
        loss_ppm,
        kinds,
        every_ms,
        for_ms,
        producers,
        send_rate,
        triggers,
    }
}

/// `scenario` with `config` applied (its `swarm` field cleared: the result is one seed's
/// fixed scenario).
pub fn apply(scenario: &Scenario, config: &SwarmConfig) -> Scenario {
    let mut out = scenario.clone();
    out.swarm = None;
    out.cluster.replicas = config.replicas;
    out.cluster.raft.heartbeat_interval = Millis(config.heartbeat_ms);
    out.cluster.raft.vote_interval =
        MillisRange::new(config.vote_interval_ms.0, config.vote_interval_ms.1);
    out.cluster.network.latency = MillisRange::new(config.latency_ms.0, config.latency_ms.1);
    out.cluster.network.loss_ppm = config.loss_ppm;
    out.workload.producers = config.producers;
    out.workload.send_rate = config.send_rate;
    out.triggers.extend(config.triggers.iter().copied());
    for timed in &mut out.faults {
        if let Fault::Random {
            kinds,
            every,
            length,
            ..
        } = &mut timed.fault
        {
            kinds.retain(|kind| config.kinds.contains(kind));
            if kinds.is_empty() {
                kinds.extend(config.kinds.iter().copied());
            }
            *every = MillisRange::new(config.every_ms.0, config.every_ms.1);
            *length = MillisRange::new(config.for_ms.0, config.for_ms.1);
        }
    }
    out
}

/// One seed's scenario and its draw, or the scenario itself (and None) without `swarm`.
pub fn for_seed(scenario: &Scenario, seed: u64) -> (Scenario, Option<SwarmConfig>) {
    match &scenario.swarm {
        None => (scenario.clone(), None),
        Some(ranges) => {
            let config = draw(scenario, ranges, seed);
            (apply(scenario, &config), Some(config))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hunt() -> Scenario {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/swarm_hunt.ron");
        Scenario::load(std::path::Path::new(path)).expect("swarm_hunt is valid")
    }

    // Why: a seed's configuration must come from the seed alone, stay inside its ranges and
    // make a valid scenario, or a hunt's finding would not replay.
    #[test]
    fn draws_are_deterministic_within_ranges_and_valid() {
        let scenario = hunt();
        let ranges = scenario.swarm.clone().expect("swarm_hunt has a swarm");
        let mut replica_counts = std::collections::BTreeSet::new();
        for seed in 1..=300 {
            let config = draw(&scenario, &ranges, seed);
            assert_eq!(config, draw(&scenario, &ranges, seed), "seed {seed}");
            replica_counts.insert(config.replicas);
            assert!(ranges.replicas.contains(&config.replicas));
            let hb = ranges.heartbeat_interval;
            assert!((hb.min.0..=hb.max.0).contains(&config.heartbeat_ms));
            let (vote_min, vote_max) = config.vote_interval_ms;
            assert!(vote_min <= vote_max && vote_max <= config.heartbeat_ms);
            // The vote waits keep a spread (no lock-step retries): seed 1668 drew 57..57.
            assert!(
                vote_min <= vote_max / 2,
                "seed {seed}: {vote_min}..{vote_max}"
            );
            assert!(config.latency_ms.1 < config.heartbeat_ms);
            assert!(!config.kinds.is_empty(), "seed {seed}: no fault kind");
            assert!(config.replicas == 5 || !config.kinds.contains(&FaultKind::MajoritiesRing));
            assert!(
                config.every_ms.0 >= ranges.every.min.0 && config.every_ms.1 <= ranges.every.max.0
            );
            assert!((ranges.producers.0..=ranges.producers.1).contains(&config.producers));
            let applied = apply(&scenario, &config);
            super::super::validate::validate(&applied)
                .unwrap_or_else(|v| panic!("seed {seed}: {v:?}"));
            assert_eq!(applied.cluster.replicas, config.replicas);
        }
        assert_eq!(replica_counts.len(), 2, "both replica counts are drawn");
        assert_ne!(draw(&scenario, &ranges, 1), draw(&scenario, &ranges, 2));
    }

    // Why: bad ranges must be refused at load with the field's path, not drawn into a broken run.
    #[test]
    fn bad_ranges_name_their_field() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scenarios/swarm_hunt.ron"
        ))
        .expect("readable");
        for (from, to, field) in [
            (
                "replicas: [3, 5],",
                "replicas: [3, 4],",
                "swarm.replicas[1]",
            ),
            (
                "latency_max: (\"2ms\", \"15ms\")",
                "latency_max: (\"2ms\", \"30ms\")",
                "swarm.latency_max.1",
            ),
            (
                "every: (\"100ms\", \"1500ms\")",
                "every: (\"10ms\", \"1500ms\")",
                "swarm.every.0",
            ),
            ("producers: (1, 4)", "producers: (4, 1)", "swarm.producers"),
        ] {
            assert!(text.contains(from), "{from}");
            let edited = text.replacen(from, to, 1);
            let error = Scenario::parse(&edited, "hunt.ron").expect_err("invalid ranges");
            assert_eq!(error.field(), Some(field), "{error}");
            let line = error.location().expect("located").line;
            let expected = edited
                .lines()
                .position(|l| l.contains(to))
                .expect("the edit is on one line") as u32
                + 1;
            assert_eq!(line, expected, "{error}");
            assert!(error.to_string().starts_with("hunt.ron:"), "{error}");
        }
    }
}
