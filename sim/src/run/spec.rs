//! The one translation from a validated scenario to what a run needs: the world
//! (`WorldSpec`), the clients (`WorkloadSpec`) and the fault plan (`FaultPlan`), in simulated
//! time. Nothing below the run layer sees a scenario type; the drawn swarm faults go back to
//! the scenario's own form (`report_swarm`) only for the report file.

use crate::ids::SimTime;
use crate::nemesis::{self, swarm::SwarmDraw, FaultPlan, Planned};
use crate::scenario::{self, Fault, FaultKind, Millis, Scenario, SignedMillis, Target};
use crate::workload::{WorkloadSpec, SUSPECT_US_DEFAULT};
use crate::world::damage::{Damage, Spot};
use crate::world::{self, WorldSpec};
use broker_core::broker::QueueKey;
use broker_core::master_slave::ReplicationMode;
use broker_core::NodeId;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A valid scenario that asks for something this build does not simulate.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {what}")]
pub struct UnsupportedScenario {
    pub file: String,
    pub what: String,
}

/// Everything one seed's run needs.
#[derive(Clone, Debug)]
pub struct RunSpec {
    pub world: Arc<WorldSpec>,
    pub workload: Arc<WorkloadSpec>,
    pub faults: FaultPlan,
    /// The end of the fault phase: faults fire and clients send until then.
    pub duration: SimTime,
    /// After healing, the cluster must converge within this.
    pub settle_max: SimTime,
    /// With a `swarm` configuration: the scenario each seed draws its own configuration for
    /// (`for_seed`); the fields above are then the undrawn scenario's.
    pub swarm_base: Option<Arc<Scenario>>,
}

impl RunSpec {
    /// Refuses what a valid scenario may ask for but this build does not simulate.
    /// Every replication mode is simulated now; kept as the place for future refusals.
    pub fn check_supported(scenario: &Scenario) -> Result<(), UnsupportedScenario> {
        match scenario.cluster.replication {
            scenario::Replication::DLedger
            | scenario::Replication::SyncMasterSlave
            | scenario::Replication::AsyncMasterSlave => Ok(()),
        }
    }

    /// The run a (validated, supported: `check_supported`) scenario describes.
    pub fn from_scenario(scenario: &Scenario) -> RunSpec {
        let cluster = &scenario.cluster;
        let mut raft = cluster.core_raft_config();
        // issue 15: the simulator runs the core with disk marks (commit marks, refusals,
        // no vote before catching up after disk loss).
        raft.disk_marks = true;
        raft.unsafe_vote_after_disk_loss = cluster.broken == scenario::Broken::VoteAfterDiskLoss;
        let duration = time(scenario.duration);
        let warmup = time(workload_start(scenario));
        let world = WorldSpec {
            replication: match cluster.replication {
                scenario::Replication::DLedger => world::Replication::DLedger,
                scenario::Replication::SyncMasterSlave => {
                    world::Replication::MasterSlave(ReplicationMode::Sync)
                }
                scenario::Replication::AsyncMasterSlave => {
                    world::Replication::MasterSlave(ReplicationMode::Async)
                }
            },
            groups: cluster.groups,
            replicas: cluster.replicas,
            raft,
            latency_min: time(cluster.network.latency.min),
            latency_max: time(cluster.network.latency.max),
            loss_ppm: cluster.network.loss_ppm,
            fsync: time(cluster.disk.fsync),
            name_servers: cluster.name_servers,
            register_interval: time(cluster.register_interval),
            broker_expiry: time(cluster.broker_expiry),
            read_mode: cluster.read_mode.to_core(),
            broken: match cluster.broken {
                scenario::Broken::Off => world::Broken::Off,
                scenario::Broken::AckBeforeCommit => world::Broken::AckBeforeCommit,
                scenario::Broken::AckWrongOffset => world::Broken::AckWrongOffset,
                scenario::Broken::ClockSkipsAhead => world::Broken::ClockSkipsAhead,
                // Wired through the core's config above.
                scenario::Broken::VoteAfterDiskLoss => world::Broken::Off,
            },
            triggers: scenario.triggers.iter().map(trigger_spec).collect(),
        };
        RunSpec {
            workload: Arc::new(workload_spec(scenario, warmup, duration)),
            faults: FaultPlan {
                entries: scenario
                    .faults
                    .iter()
                    .map(|timed| (time(timed.at), planned(&timed.fault)))
                    .collect(),
                end: duration,
            },
            world: Arc::new(world),
            duration,
            settle_max: time(scenario.settle_max),
            swarm_base: scenario.swarm.as_ref().map(|_| Arc::new(scenario.clone())),
        }
    }

    /// The run seed `seed` makes: with a `swarm` configuration, the scenario with that seed's
    /// draw applied (and the draw); otherwise this run itself.
    pub fn for_seed(
        self: &Arc<RunSpec>,
        seed: u64,
    ) -> (Arc<RunSpec>, Option<scenario::swarm_config::SwarmConfig>) {
        match &self.swarm_base {
            None => (self.clone(), None),
            Some(base) => {
                let (drawn, config) = scenario::swarm_config::for_seed(base, seed);
                (Arc::new(RunSpec::from_scenario(&drawn)), config)
            }
        }
    }
}

fn trigger_spec(setting: &scenario::swarm_config::TriggerSetting) -> world::triggers::TriggerSpec {
    use scenario::swarm_config::TriggerName as N;
    use world::triggers::TriggerKind as K;
    world::triggers::TriggerSpec {
        kind: match setting.on {
            N::CrashAfterVoteGrant => K::CrashAfterVoteGrant,
            N::PowerLoseAfterAppendAck => K::PowerLoseAfterAppendAck,
            N::PowerLoseAfterSendOk => K::PowerLoseAfterSendOk,
            N::CrashAfterOldTermCommit => K::CrashAfterOldTermCommit,
            N::PauseWithPendingRead => K::PauseWithPendingRead,
        },
        chance_ppm: setting.chance_ppm,
        down_us: time(setting.down).as_us(),
    }
}

fn workload_spec(scenario: &Scenario, warmup: SimTime, duration: SimTime) -> WorkloadSpec {
    let groups = scenario.cluster.groups;
    let workload = &scenario.workload;
    let queues = workload
        .topics
        .iter()
        .flat_map(|topic| {
            (0..topic.queues).map(move |queue_id| {
                (
                    queue_id % groups,
                    QueueKey {
                        topic: topic.name.clone(),
                        queue_id,
                    },
                )
            })
        })
        .collect();
    let send_timeout_us = time(workload.send_timeout).as_us();
    let suspect_us = suspect_window_us(scenario, send_timeout_us);
    WorkloadSpec {
        warmup_us: warmup.as_us(),
        duration_us: duration.as_us(),
        producers: workload.producers,
        send_rate_per_s: workload.send_rate,
        queues,
        send_timeout_us,
        retry_backoff_us: 50_000,
        suspect_us,
        // Half that: a group comes back into rotation while its replica that timed out is
        // still avoided, so a client without name servers asks another replica of the group
        // (and learns the new leader from its hint), not the dead one again.
        group_avoid_us: suspect_us / 2,
        consumers: workload.consumers,
        consumer_poll_us: 100_000,
        route_refresh_us: time(workload.route_refresh).as_us(),
    }
}

/// How long a client avoids a replica that timed out. RocketMQ's latency fault tolerance keeps
/// such a broker out of rotation for seconds; shorter than an election, and followers' stale
/// leader hints send clients back to a dead leader before the election ends. So: two election
/// timeouts (the base plus the vote jitter's top), at least one send timeout, at most
/// `SUSPECT_US_DEFAULT`. Under DLedger's 2 s heartbeats that is the default (10 s); under a
/// hunt's compressed timing (20–200 ms heartbeats) it is a second or two, so a single lost pull
/// does not keep a consumer away from the new leader past the end of the run.
fn suspect_window_us(scenario: &Scenario, send_timeout_us: u64) -> u64 {
    let raft = scenario.cluster.core_raft_config();
    let election_us = (raft.election_timeout_ms_base() + raft.vote_interval_ms_max) * 1_000;
    (2 * election_us)
        .min(SUSPECT_US_DEFAULT)
        .max(send_timeout_us)
}

fn time(millis: Millis) -> SimTime {
    SimTime::from_ms(millis.as_ms())
}

fn signed_us(millis: SignedMillis) -> i64 {
    millis.as_ms() * 1_000
}

fn target(target: Target) -> nemesis::Target {
    match target {
        Target::Node(node) => nemesis::Target::Node(NodeId(node)),
        Target::Leader { group } => nemesis::Target::Leader { group },
        Target::Follower { group } => nemesis::Target::Follower { group },
        Target::Minority { group } => nemesis::Target::Minority { group },
        Target::Majority { group } => nemesis::Target::Majority { group },
        Target::Group { group } => nemesis::Target::Group { group },
        Target::Random => nemesis::Target::Random,
        Target::AllCrashed => nemesis::Target::AllCrashed,
    }
}

fn planned(fault: &Fault) -> Planned {
    use nemesis::Fault as F;
    Planned::Fault(match fault {
        Fault::Crash(t) => F::Crash(target(*t)),
        Fault::CrashLosingUnsynced(t) => F::CrashLosingUnsynced(target(*t)),
        Fault::CrashTornTail(t) => F::CrashTornTail(target(*t)),
        Fault::Restart(t) => F::Restart(target(*t)),
        Fault::Pause { target: t, length } => F::Pause {
            target: target(*t),
            length: time(*length),
        },
        Fault::Isolate(t) => F::Isolate(target(*t)),
        Fault::Partition(sides) => F::Partition(
            sides
                .iter()
                .map(|side| side.iter().map(|n| NodeId(*n)).collect())
                .collect(),
        ),
        Fault::OneWay { from, to } => F::OneWay {
            from: target(*from),
            to: target(*to),
        },
        Fault::Bridge { group } => F::Bridge { group: *group },
        Fault::DeposeLeader { group } => F::DeposeLeader { group: *group },
        Fault::MajoritiesRing { group } => F::MajoritiesRing { group: *group },
        Fault::Heal => F::Heal,
        Fault::Latency { min, max } => F::Latency {
            min: time(*min),
            max: time(*max),
        },
        Fault::Loss { ppm } => F::Loss { ppm: *ppm },
        Fault::LinkLatency { from, to, min, max } => F::LinkLatency {
            from: target(*from),
            to: target(*to),
            min: time(*min),
            max: time(*max),
        },
        Fault::LinkLoss { from, to, ppm } => F::LinkLoss {
            from: target(*from),
            to: target(*to),
            ppm: *ppm,
        },
        Fault::Duplicate { ppm } => F::Duplicate { ppm: *ppm },
        Fault::ClockOffset { target: t, offset } => F::ClockOffset {
            target: target(*t),
            offset_us: signed_us(*offset),
        },
        Fault::ClockDrift { target: t, ppm } => F::ClockDrift {
            target: target(*t),
            ppm: *ppm,
        },
        Fault::ClockJump { target: t, by } => F::ClockJump {
            target: target(*t),
            by_us: signed_us(*by),
        },
        Fault::ClockStrobe {
            target: t,
            delta,
            period,
            length,
        } => F::ClockStrobe {
            target: target(*t),
            delta: time(*delta),
            period: time(*period),
            length: time(*length),
        },
        Fault::ClockResync(t) => F::ClockResync(target(*t)),
        Fault::SlowDisk { target: t, fsync } => F::SlowDisk {
            target: target(*t),
            fsync: time(*fsync),
        },
        Fault::TransferLeader { group, to } => F::TransferLeader {
            group: *group,
            to: target(*to),
        },
        Fault::Corrupt {
            target: t,
            at,
            bits,
        } => F::Damage {
            target: target(*t),
            damage: Damage::Corrupt {
                at: match at {
                    scenario::CorruptAt::Tail => Spot::Tail,
                    scenario::CorruptAt::Random => Spot::Random,
                    scenario::CorruptAt::Entry(index) => Spot::Entry(*index),
                },
                bits: *bits,
            },
        },
        Fault::Truncate { target: t, entries } => F::Damage {
            target: target(*t),
            damage: Damage::Truncate { entries: *entries },
        },
        Fault::WipeDisk(t) => F::Damage {
            target: target(*t),
            damage: Damage::Wipe,
        },
        Fault::LoseHardState(t) => F::Damage {
            target: target(*t),
            damage: Damage::LoseHardState,
        },
        Fault::MisdirectedWrite(t) => F::Damage {
            target: target(*t),
            damage: Damage::Misdirected,
        },
        Fault::Random {
            kinds,
            every,
            length,
            atlas,
            heal,
        } => {
            return Planned::Swarm(nemesis::Swarm {
                kinds: kinds.iter().map(|kind| fault_kind(*kind)).collect(),
                every_ms_min: every.min.as_ms(),
                every_ms_max: every.max.as_ms(),
                length_ms_min: length.min.as_ms(),
                length_ms_max: length.max.as_ms(),
                atlas: match atlas {
                    scenario::Atlas::Minority => nemesis::plan::Atlas::Minority,
                    scenario::Atlas::Unbounded => nemesis::plan::Atlas::Unbounded,
                },
                heal_after_last_cut: *heal == scenario::CutHeal::AfterLastCut,
            })
        }
    })
}

fn fault_kind(kind: FaultKind) -> nemesis::FaultKind {
    use nemesis::FaultKind as K;
    match kind {
        FaultKind::Crash => K::Crash,
        FaultKind::CrashLosingUnsynced => K::CrashLosingUnsynced,
        FaultKind::CrashTornTail => K::CrashTornTail,
        FaultKind::Pause => K::Pause,
        FaultKind::Isolate => K::Isolate,
        FaultKind::Partition => K::Partition,
        FaultKind::OneWay => K::OneWay,
        FaultKind::Bridge => K::Bridge,
        FaultKind::MajoritiesRing => K::MajoritiesRing,
        FaultKind::DeposeLeader => K::DeposeLeader,
        FaultKind::PowerLoss => K::PowerLoss,
        FaultKind::Latency => K::Latency,
        FaultKind::Loss => K::Loss,
        FaultKind::LinkLatency => K::LinkLatency,
        FaultKind::LinkLoss => K::LinkLoss,
        FaultKind::Duplicate => K::Duplicate,
        FaultKind::ClockOffset => K::ClockOffset,
        FaultKind::ClockDrift => K::ClockDrift,
        FaultKind::ClockJump => K::ClockJump,
        FaultKind::ClockStrobe => K::ClockStrobe,
        FaultKind::SlowDisk => K::SlowDisk,
        FaultKind::TransferLeader => K::TransferLeader,
        FaultKind::Corrupt => K::Corrupt,
        FaultKind::Truncate => K::Truncate,
        FaultKind::WipeDisk => K::WipeDisk,
        FaultKind::LoseHardState => K::LoseHardState,
        FaultKind::MisdirectedWrite => K::MisdirectedWrite,
    }
}

/// A fault a swarm drew, as the report writes it: in the scenario's own form, so a drawn fault
/// can be pasted into a scenario's timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwarmDrawReport {
    pub at_us: u64,
    pub fault: Fault,
    pub for_us: u64,
}

/// The drawn faults in the report's form.
pub fn report_swarm(draws: &[SwarmDraw]) -> Vec<SwarmDrawReport> {
    draws
        .iter()
        .map(|draw| SwarmDrawReport {
            at_us: draw.at.as_us(),
            fault: scenario_fault(&draw.fault),
            for_us: draw.length.as_us(),
        })
        .collect()
}

/// When the clients start: `workload.start`, else once the first leader is likely elected,
/// and no later than the first fault.
pub fn workload_start(scenario: &Scenario) -> Millis {
    if let Some(start) = scenario.workload.start {
        return start;
    }
    let raft = scenario.cluster.core_raft_config();
    let first_fault = scenario
        .faults
        .first()
        .map_or(scenario.duration, |fault| fault.at);
    Millis((raft.election_timeout_ms_base() + raft.vote_interval_ms_max + 1_000).min(first_fault.0))
}

/// A played fault in the scenario's vocabulary, at its time (faults fire on whole ms).
pub fn scenario_timed_fault(at: SimTime, fault: &nemesis::Fault) -> crate::scenario::TimedFault {
    crate::scenario::TimedFault {
        at: millis(at),
        fault: scenario_fault(fault),
    }
}

fn millis(time: SimTime) -> Millis {
    Millis(time.as_ms())
}

fn signed_millis(us: i64) -> SignedMillis {
    SignedMillis(us / 1_000)
}

fn scenario_target(target: nemesis::Target) -> Target {
    use nemesis::Target as T;
    match target {
        T::Node(node) => Target::Node(node.0),
        T::Leader { group } => Target::Leader { group },
        T::Follower { group } => Target::Follower { group },
        T::Minority { group } => Target::Minority { group },
        T::Majority { group } => Target::Majority { group },
        T::Group { group } => Target::Group { group },
        T::Random => Target::Random,
        T::AllCrashed => Target::AllCrashed,
    }
}

/// A planned fault back in the scenario's form (the inverse of `planned`).
fn scenario_fault(fault: &nemesis::Fault) -> Fault {
    use nemesis::Fault as F;
    let t = |target: &nemesis::Target| scenario_target(*target);
    match fault {
        F::Crash(target) => Fault::Crash(t(target)),
        F::CrashLosingUnsynced(target) => Fault::CrashLosingUnsynced(t(target)),
        F::CrashTornTail(target) => Fault::CrashTornTail(t(target)),
        F::Restart(target) => Fault::Restart(t(target)),
        F::Pause { target, length } => Fault::Pause {
            target: t(target),
            length: millis(*length),
        },
        F::Isolate(target) => Fault::Isolate(t(target)),
        F::Partition(sides) => Fault::Partition(
            sides
                .iter()
                .map(|side| side.iter().map(|node| node.0).collect())
                .collect(),
        ),
        F::OneWay { from, to } => Fault::OneWay {
            from: t(from),
            to: t(to),
        },
        F::Bridge { group } => Fault::Bridge { group: *group },
        F::DeposeLeader { group } => Fault::DeposeLeader { group: *group },
        F::MajoritiesRing { group } => Fault::MajoritiesRing { group: *group },
        F::Heal => Fault::Heal,
        F::Latency { min, max } => Fault::Latency {
            min: millis(*min),
            max: millis(*max),
        },
        F::Loss { ppm } => Fault::Loss { ppm: *ppm },
        F::LinkLatency { from, to, min, max } => Fault::LinkLatency {
            from: t(from),
            to: t(to),
            min: millis(*min),
            max: millis(*max),
        },
        F::LinkLoss { from, to, ppm } => Fault::LinkLoss {
            from: t(from),
            to: t(to),
            ppm: *ppm,
        },
        F::Duplicate { ppm } => Fault::Duplicate { ppm: *ppm },
        F::ClockOffset { target, offset_us } => Fault::ClockOffset {
            target: t(target),
            offset: signed_millis(*offset_us),
        },
        F::ClockDrift { target, ppm } => Fault::ClockDrift {
            target: t(target),
            ppm: *ppm,
        },
        F::ClockJump { target, by_us } => Fault::ClockJump {
            target: t(target),
            by: signed_millis(*by_us),
        },
        F::ClockStrobe {
            target,
            delta,
            period,
            length,
        } => Fault::ClockStrobe {
            target: t(target),
            delta: millis(*delta),
            period: millis(*period),
            length: millis(*length),
        },
        F::ClockResync(target) => Fault::ClockResync(t(target)),
        F::SlowDisk { target, fsync } => Fault::SlowDisk {
            target: t(target),
            fsync: millis(*fsync),
        },
        F::TransferLeader { group, to } => Fault::TransferLeader {
            group: *group,
            to: t(to),
        },
        F::Damage { target, damage } => {
            let target = t(target);
            match *damage {
                Damage::Corrupt { at, bits } => Fault::Corrupt {
                    target,
                    at: match at {
                        Spot::Tail => scenario::CorruptAt::Tail,
                        Spot::Random => scenario::CorruptAt::Random,
                        Spot::Entry(index) => scenario::CorruptAt::Entry(index),
                    },
                    bits,
                },
                Damage::Truncate { entries } => Fault::Truncate { target, entries },
                Damage::Wipe => Fault::WipeDisk(target),
                Damage::LoseHardState => Fault::LoseHardState(target),
                Damage::Misdirected => Fault::MisdirectedWrite(target),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every fault of every stock scenario survives the trip to the plan and back: the
    /// report's form of a drawn fault is the scenario's.
    #[test]
    fn faults_round_trip_through_the_plan() {
        let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios");
        let mut faults = 0;
        for entry in std::fs::read_dir(folder).expect("the scenarios folder") {
            let path = entry.expect("a directory entry").path();
            let scenario = Scenario::load(&path).expect("stock scenarios are valid");
            for timed in &scenario.faults {
                if let Planned::Fault(planned) = planned(&timed.fault) {
                    assert_eq!(scenario_fault(&planned), timed.fault, "{}", path.display());
                    faults += 1;
                }
            }
        }
        assert!(
            faults > 20,
            "only {faults} fixed faults in the stock scenarios"
        );
    }

    /// Times are converted once, exactly; the warmup ends before the first fault.
    #[test]
    fn times_are_converted_once() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/leader_crash.ron");
        let scenario = Scenario::load(std::path::Path::new(path)).expect("a valid scenario");
        let spec = RunSpec::from_scenario(&scenario);
        assert_eq!(spec.duration.as_ms(), scenario.duration.as_ms());
        assert_eq!(spec.faults.end, spec.duration);
        let (first_at, _) = spec.faults.entries[0];
        assert_eq!(first_at.as_ms(), scenario.faults[0].at.as_ms());
        assert!(spec.workload.warmup_us <= first_at.as_us());
        assert_eq!(
            spec.workload.send_timeout_us,
            scenario.workload.send_timeout.as_ms() * 1_000
        );
    }
}
