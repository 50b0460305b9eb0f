//! The record of every client operation in a run: what was asked, when, and what came back.
//! Times are simulated microseconds since the start of the run.
//!
//! # File format: JSON lines
//!
//! A history file holds one `Operation` per line; the runner writes them in invocation order
//! (ties by client). An operation's index in reports is its 0-based position among the
//! operations. Blank lines are skipped. Fields:
//!
//! - `client` (integer): the client that issued the operation. A producer sends at a fixed
//!   rate, so one client may have several operations in flight.
//! - `input`: `{"send":{"queue":"g0/orders/1","body":"c3-17"}}` or
//!   `{"pull":{"queue":"g0/orders/1","offset":4,"max":32}}`. Bodies are unique per run.
//! - `invoke_us`, `complete_us` (integers): simulated microseconds when the client sent the
//!   request and when it knew the outcome (for `unknown`: when it gave up waiting).
//! - `outcome`: `{"sent":{"offset":4}}` (acknowledged at that queue offset),
//!   `{"pulled":{"bodies":["c3-17","c1-9"]}}` (entries from the requested offset on), `"fail"`
//!   (definitely not applied) or `"unknown"` (may or may not have been applied, at any time after
//!   `invoke_us`).
//!
//! ```text
//! {"client":3,"input":{"send":{"queue":"q0","body":"c3-17"}},"invoke_us":1200,"complete_us":1450,"outcome":{"sent":{"offset":4}}}
//! {"client":1,"input":{"pull":{"queue":"q0","offset":4,"max":32}},"invoke_us":1300,"complete_us":1500,"outcome":{"pulled":{"bodies":["c3-17"]}}}
//! {"client":2,"input":{"send":{"queue":"q0","body":"c2-5"}},"invoke_us":1320,"complete_us":3320,"outcome":"unknown"}
//! ```

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::ids::QueueId;

/// What a client asked for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpInput {
    /// Append `body` (unique per run) to the log of queue `queue` (e.g. "g0/orders/1").
    Send { queue: String, body: String },
    /// Read up to `max` entries of `queue` starting at `offset`.
    Pull {
        queue: String,
        offset: u64,
        max: u32,
    },
}

impl OpInput {
    /// A send of `body` to `queue` (named by its text form, `g0/orders/1`).
    pub fn send(queue: &QueueId, body: impl Into<String>) -> OpInput {
        OpInput::Send {
            queue: queue.to_string(),
            body: body.into(),
        }
    }

    /// A pull of up to `max` entries of `queue` from `offset`.
    pub fn pull(queue: &QueueId, offset: u64, max: u32) -> OpInput {
        OpInput::Pull {
            queue: queue.to_string(),
            offset,
            max,
        }
    }
}

/// What came back.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Operation {
    pub client: u32,
    pub input: OpInput,
    pub invoke_us: u64,
    /// When the outcome was known (for `Unknown`: when the client gave up waiting).
    pub complete_us: u64,
    pub outcome: OpOutcome,
}

/// Why a history file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("line {line}: {source}")]
    Parse {
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot encode an operation: {0}")]
    Encode(#[source] serde_json::Error),
    #[error("history i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Writes `ops` as JSON lines, one operation per line.
pub fn write_jsonl<W: Write>(ops: &[Operation], mut writer: W) -> Result<(), HistoryError> {
    for op in ops {
        serde_json::to_writer(&mut writer, op).map_err(HistoryError::Encode)?;
        writer.write_all(b"\n")?;
    }
    writer.flush()?;
    Ok(())
}

/// Reads JSON lines written by `write_jsonl`; errors name the line (1-based).
pub fn read_jsonl<R: BufRead>(reader: R) -> Result<Vec<Operation>, HistoryError> {
    read_jsonl_of(reader)
}

/// Reads JSON lines of any record type; errors name the line (1-based). Blank lines are skipped.
pub fn read_jsonl_of<T: serde::de::DeserializeOwned, R: BufRead>(
    reader: R,
) -> Result<Vec<T>, HistoryError> {
    let mut records = Vec::new();
    for (number, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str(&line).map_err(|source| HistoryError::Parse {
            line: number + 1,
            source,
        })?;
        records.push(record);
    }
    Ok(records)
}
