//! The record of every client operation in a run: what was asked, when, and what came back.
//! Times are simulated microseconds since the start of the run.

use serde::{Deserialize, Serialize};

/// What a client asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpInput {
    /// Append `body` (unique per run) to the log of queue `queue` (e.g. "g0/orders/1").
    Send { queue: String, body: String },
    /// Read up to `max` entries of `queue` starting at `offset`.
    Pull { queue: String, offset: u64, max: u32 },
}

/// What came back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpOutcome {
    /// A send was acknowledged at this queue offset.
    Sent { offset: u64 },
    /// A pull returned these bodies, starting at the requested offset.
    Pulled { bodies: Vec<String> },
    /// Definitely not applied (e.g. refused by a follower).
    Fail,
    /// No answer in time: may or may not have been applied.
    Unknown,
}

/// One client operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    pub client: u32,
    pub input: OpInput,
    pub invoke_us: u64,
    /// When the outcome was known (for `Unknown`: when the client gave up waiting).
    pub complete_us: u64,
    pub outcome: OpOutcome,
}
