//! Failover latency, as DESIGN.md defines it. For each fault that took a group's leader out of
//! its majority, with `t0` the moment it fired:
//! - detect: a surviving replica of the group starts an election (pre-vote or vote);
//! - elect: a replica becomes leader with a term greater than the old leader's;
//! - commit: a leader of such a term commits its first entry of that term;
//! - client: the first send to that group invoked at or after `t0` is acknowledged.
//!
//! Master–slave groups have no election: a master crash is still a failover fault (the group
//! lost its only writer), but detect / elect / commit are never reached (no replica campaigns,
//! and the restarted master keeps the constant term), and client measures how long until sends
//! succeed again, i.e. the master's downtime plus the clients' back-off.
//!
//! A fault whose cut healed before any replica replaced the old leader (`healed_us`: the old
//! leader leads its term again with a majority) is not a failover: its election stages are not
//! looked for after the heal, and `verdict` reports it apart from the failovers.
//!
//! `stale_leader_window`: how long the old leader still believed it led after the new leader was
//! elected; `stale_leader_commits`: commit advances the old leader made in that window.
//!
//! Topic level (`TopicAvailability`), for a topic whose queues are spread over more than one
//! group (RocketMQ's multi-master: a producer whose send to one group failed retries on another
//! group's queue). Its window runs from `t0` until the failed group's `client` stage ended (or,
//! when it never did, the last send completion of the run):
//! - `unavailable`: the longest stretch of that window in which no send to the topic, on any
//!   group, was acknowledged (from `t0` to the first acknowledgement, between two, or from the
//!   last to the window's end): what an application writing to the topic saw;
//! - messages first sent in the window (a message's attempts share its id, `p3-17`,
//!   `p3-17#1`: `workload::message_of_body`): how many, how many needed more than one attempt,
//!   how many no attempt got acknowledged, and the slowest acknowledged one, from its first
//!   attempt's invocation to the acknowledgement.
//!
//! With one group the topic figures would repeat the `client` stage; they are left out.

mod detect;

pub use detect::{failover_faults, FailoverFault};

use crate::history::{OpInput, OpOutcome, Operation};
use crate::ids::message_of_body;
use crate::world::observe::{Observation, ObservedKind};
use broker_core::raft::Role;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverTimeline {
    pub fault_index: usize,
    pub group: u32,
    pub t0_us: u64,
    pub detect_us: Option<u64>,
    pub elect_us: Option<u64>,
    pub commit_us: Option<u64>,
    pub client_us: Option<u64>,
    pub stale_leader_window_us: Option<u64>,
    pub stale_leader_commits: u32,
    /// Topic level, when the group's topics span more than one group (see the module doc).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<TopicAvailability>,
}

/// What a topic spread over several groups looked like to its writers during one group's
/// failover (see the module doc for the window).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicAvailability {
    /// The longest stretch of the window with no acknowledged send to the topic.
    pub unavailable_us: u64,
    /// Messages whose first attempt was invoked in the window.
    pub messages: u32,
    /// Of those, acknowledged after more than one attempt.
    pub messages_retried: u32,
    /// Of those, acknowledged by no attempt.
    pub messages_unacknowledged: u32,
    /// The slowest acknowledged of those, first invocation to acknowledgement.
    pub message_wait_max_us: Option<u64>,
}

/// The stages, in order, with their names as reports print them.
pub const STAGES: [&str; 5] = ["detect", "elect", "commit", "client", "stale_leader_window"];

impl FailoverTimeline {
    pub fn stage_us(&self, stage: &str) -> Option<u64> {
        match stage {
            "detect" => self.detect_us,
            "elect" => self.elect_us,
            "commit" => self.commit_us,
            "client" => self.client_us,
            "stale_leader_window" => self.stale_leader_window_us,
            _ => panic!("invariant: stage names come from STAGES, got {stage}"),
        }
    }
}

/// Per failover fault of one seed, the stage latencies.
pub fn failover_timelines(
    faults: &[FailoverFault],
    observations: &[Observation],
    history: &[Operation],
    replicas_per_group: u32,
    group_of_queue: impl Fn(&str) -> Option<u32>,
) -> Vec<FailoverTimeline> {
    faults
        .iter()
        .map(|fault| {
            let in_group = |o: &&Observation| o.node.0 / replicas_per_group == fault.group;
            let after: Vec<&Observation> = observations
                .iter()
                .filter(|o| o.at_us >= fault.t0_us)
                .filter(|o| fault.healed_us.is_none_or(|healed| o.at_us < healed))
                .filter(in_group)
                .collect();
            let since = |at: u64| at - fault.t0_us;
            let detect = after
                .iter()
                .find(|o| {
                    o.node != fault.old_leader
                        && matches!(
                            o.kind,
                            ObservedKind::Role {
                                role: Role::PreCandidate | Role::Candidate,
                                ..
                            }
                        )
                })
                .map(|o| o.at_us);
            let elect = after
                .iter()
                .find(|o| {
                    matches!(o.kind, ObservedKind::Role { role: Role::Leader, term } if term > fault.old_term)
                })
                .map(|o| o.at_us);
            let commit = after
                .iter()
                .find(|o| {
                    matches!(o.kind, ObservedKind::LeaderCommit { term, .. } if term > fault.old_term)
                })
                .map(|o| o.at_us);
            let client = history
                .iter()
                .filter(|op| op.invoke_us >= fault.t0_us)
                .filter(|op| matches!(op.outcome, OpOutcome::Sent { .. }))
                .filter(|op| match &op.input {
                    OpInput::Send { queue, .. } => group_of_queue(queue) == Some(fault.group),
                    OpInput::Pull { .. } => false,
                })
                .map(|op| op.complete_us)
                .min();
            // The old leader stops believing when it changes role or goes down.
            let old_leader_stops = after
                .iter()
                .find(|o| {
                    o.node == fault.old_leader
                        && match o.kind {
                            ObservedKind::Role { role, .. } => role != Role::Leader,
                            ObservedKind::Crashed => true,
                            _ => false,
                        }
                })
                .map(|o| o.at_us);
            let stale_window = elect.map(|e| old_leader_stops.map_or(0, |s| s.saturating_sub(e)));
            let window_end = client.unwrap_or_else(|| {
                history
                    .iter()
                    .filter(|op| matches!(op.input, OpInput::Send { .. }))
                    .map(|op| op.complete_us)
                    .max()
                    .unwrap_or(fault.t0_us)
            });
            let topic = topic_availability(
                fault.group,
                fault.t0_us,
                window_end.max(fault.t0_us),
                history,
                &group_of_queue,
            );
            let stale_commits = match (elect, old_leader_stops) {
                (Some(e), stops) => after
                    .iter()
                    .filter(|o| o.node == fault.old_leader && o.at_us >= e)
                    .filter(|o| stops.is_none_or(|s| o.at_us < s))
                    .filter(|o| matches!(o.kind, ObservedKind::LeaderCommit { term, .. } if term == fault.old_term))
                    .count() as u32,
                (None, _) => 0,
            };
            FailoverTimeline {
                fault_index: fault.fault_index,
                group: fault.group,
                t0_us: fault.t0_us,
                detect_us: detect.map(since),
                elect_us: elect.map(since),
                commit_us: commit.map(since),
                client_us: client.map(since),
                stale_leader_window_us: stale_window,
                stale_leader_commits: stale_commits,
                topic,
            }
        })
        .collect()
}

/// The topic of a history queue name: `g0/orders/1` → `orders`.
fn topic_of(queue: &str) -> Option<&str> {
    queue.split('/').nth(1)
}

/// One message's attempts, as the window needs them.
#[derive(Default)]
struct MessageAttempts {
    first_invoke_us: u64,
    attempts: u32,
    acknowledged_us: Option<u64>,
}

/// The topic-level figures for a failover of `group` over `[t0_us, end_us]`; None when the
/// group's topics are not spread over more than one group.
fn topic_availability(
    group: u32,
    t0_us: u64,
    end_us: u64,
    history: &[Operation],
    group_of_queue: &impl Fn(&str) -> Option<u32>,
) -> Option<TopicAvailability> {
    let sends: Vec<(&Operation, &str, &str)> = history
        .iter()
        .filter_map(|op| match &op.input {
            OpInput::Send { queue, body } => Some((op, queue.as_str(), body.as_str())),
            OpInput::Pull { .. } => None,
        })
        .collect();
    let topics: BTreeSet<&str> = sends
        .iter()
        .filter(|(_, queue, _)| group_of_queue(queue) == Some(group))
        .filter_map(|(_, queue, _)| topic_of(queue))
        .collect();
    let topic_sends: Vec<&(&Operation, &str, &str)> = sends
        .iter()
        .filter(|(_, queue, _)| topic_of(queue).is_some_and(|topic| topics.contains(topic)))
        .collect();
    let groups: BTreeSet<u32> = topic_sends
        .iter()
        .filter_map(|(_, queue, _)| group_of_queue(queue))
        .collect();
    if groups.len() < 2 {
        return None;
    }
    let mut acks: Vec<u64> = topic_sends
        .iter()
        .filter(|(op, ..)| matches!(op.outcome, OpOutcome::Sent { .. }))
        .map(|(op, ..)| op.complete_us)
        .filter(|at_us| (t0_us..=end_us).contains(at_us))
        .collect();
    acks.sort_unstable();
    let mut previous_us = t0_us;
    let mut unavailable_us = 0;
    for at_us in acks.iter().copied().chain(std::iter::once(end_us)) {
        unavailable_us = unavailable_us.max(at_us - previous_us);
        previous_us = at_us;
    }
    let mut messages: BTreeMap<&str, MessageAttempts> = BTreeMap::new();
    for (op, _, body) in &topic_sends {
        let message = messages.entry(message_of_body(body)).or_default();
        if message.attempts == 0 || op.invoke_us < message.first_invoke_us {
            message.first_invoke_us = op.invoke_us;
        }
        message.attempts += 1;
        if matches!(op.outcome, OpOutcome::Sent { .. }) {
            message.acknowledged_us = Some(op.complete_us);
        }
    }
    let in_window: Vec<&MessageAttempts> = messages
        .values()
        .filter(|m| (t0_us..end_us).contains(&m.first_invoke_us))
        .collect();
    Some(TopicAvailability {
        unavailable_us,
        messages: in_window.len() as u32,
        messages_retried: in_window
            .iter()
            .filter(|m| m.attempts > 1 && m.acknowledged_us.is_some())
            .count() as u32,
        messages_unacknowledged: in_window
            .iter()
            .filter(|m| m.acknowledged_us.is_none())
            .count() as u32,
        message_wait_max_us: in_window
            .iter()
            .filter_map(|m| m.acknowledged_us.map(|at_us| at_us - m.first_invoke_us))
            .max(),
    })
}

/// p50/p90/p99/max of one stage across seeds (nearest-rank), plus how often it was not reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Percentiles {
    pub samples: u32,
    pub not_reached: u32,
    pub p50_us: Option<u64>,
    pub p90_us: Option<u64>,
    pub p99_us: Option<u64>,
    pub max_us: Option<u64>,
}

pub fn percentiles(values: &[Option<u64>]) -> Percentiles {
    let mut reached: Vec<u64> = values.iter().flatten().copied().collect();
    reached.sort_unstable();
    let rank = |p: u64| -> Option<u64> {
        if reached.is_empty() {
            return None;
        }
        let n = reached.len() as u64;
        let index = (p * n).div_ceil(100).max(1) - 1;
        Some(reached[index as usize])
    };
    Percentiles {
        samples: values.len() as u32,
        not_reached: (values.len() - reached.len()) as u32,
        p50_us: rank(50),
        p90_us: rank(90),
        p99_us: rank(99),
        max_us: reached.last().copied(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Nearest-rank percentiles: p99 of 1..=100 is 99, max 100; misses are counted apart.
    #[test]
    fn nearest_rank_percentiles() {
        let mut values: Vec<Option<u64>> = (1..=100).map(Some).collect();
        values.push(None);
        let p = percentiles(&values);
        assert_eq!(
            (p.p50_us, p.p90_us, p.p99_us, p.max_us),
            (Some(50), Some(90), Some(99), Some(100))
        );
        assert_eq!((p.samples, p.not_reached), (101, 1));
        assert_eq!(percentiles(&[None]).p99_us, None);
    }
}
