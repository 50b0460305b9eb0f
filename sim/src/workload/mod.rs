//! Clients: producers that send at a fixed rate, find the leader, time out, and record every
//! operation in the history; consumers that pull every queue and commit their offsets.
//!
//! Sans-IO, as broker-core is: the decisions are pure machines that take events and the time
//! and return commands — `client` (what a client believes: leader guesses, suspects, avoided
//! groups, routes), `send` (one message's attempts), `pull` (one consumer's queue), `routes`
//! (route refresh timing), `schedule` (a producer's sends). The async shells carry the
//! commands out: `connection` (endpoint, waiting requests, route refresher, `drive`),
//! `producer` and `consumer` (the tasks).

pub mod client;
mod connection;
pub mod consumer;
pub mod producer;
pub mod pull;
pub mod routes;
pub mod schedule;
pub mod send;
#[cfg(test)]
mod tests;

pub use crate::ids::{attempt_body, message_of_body};
pub use consumer::run_consumer;
pub use producer::run_producer;
pub use routes::route_poll_phase_us;
pub use send::SEND_ATTEMPTS_MAX;

use broker_core::broker::QueueKey;
use serde::{Deserialize, Serialize};

/// How long a producer avoids a replica that did not answer in time.
pub const SUSPECT_US_DEFAULT: u64 = 10_000_000;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadSpec {
    /// Clients start sending then (a leader is elected first).
    pub warmup_us: u64,
    /// Producers send nothing from then on (the end of the fault phase).
    pub duration_us: u64,
    pub producers: u32,
    /// Sends per second, per producer.
    pub send_rate_per_s: u32,
    /// Every queue of every topic, with the group that hosts it (queue `q` on group
    /// `q mod groups`, as RocketMQ spreads a topic's queues over broker groups).
    pub queues: Vec<(u32, QueueKey)>,
    /// A send with no answer by then is recorded as Unknown.
    pub send_timeout_us: u64,
    /// Wait before retrying after a definite refusal with no usable leader hint.
    pub retry_backoff_us: u64,
    /// How long a replica that timed out is avoided (RocketMQ's latency fault tolerance).
    pub suspect_us: u64,
    /// With more than one group: how long messages avoid a group after a send to it timed
    /// out (RocketMQ's `sendLatencyFaultEnable`; it avoids a broker for 30 s to 10 min by the
    /// latency it saw, which would keep a recovered group idle for the rest of most runs).
    #[serde(default)]
    pub group_avoid_us: u64,
    /// Consumer clients, all in one consumer group; their client ids follow the producers'.
    #[serde(default)]
    pub consumers: u32,
    /// A consumer whose pull returned nothing pulls that queue again after this.
    #[serde(default)]
    pub consumer_poll_us: u64,
    /// With name servers: a client fetches routes this often (plus at start and on refusals).
    #[serde(default)]
    pub route_refresh_us: u64,
}
