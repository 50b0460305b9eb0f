//! JSON lines of any model's operations, for `sim check-history --model register|kv`: the same
//! shape as the log history (`crate::history`), with the model's own input and output:
//!
//! ```text
//! {"client":0,"input":{"write":{"value":3}},"invoke_us":10,"complete_us":25,"outcome":{"ok":"written"}}
//! {"client":1,"input":"read","invoke_us":12,"complete_us":30,"outcome":{"ok":{"read":{"value":3}}}}
//! {"client":2,"input":{"cas":{"from":3,"to":4}},"invoke_us":14,"complete_us":90,"outcome":"unknown"}
//! {"client":0,"input":{"put":{"key":"x","value":"a"}},"invoke_us":1,"complete_us":2,"outcome":{"ok":"done"}}
//! ```

use serde::{Deserialize, Serialize};

use super::model::{Op, NEVER_RETURNED_US};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordOutcome<O> {
    Ok(O),
    /// Definitely not applied.
    Fail,
    /// May or may not have been applied.
    Unknown,
}

/// One operation of a register or kv history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record<I, O> {
    pub client: u32,
    pub input: I,
    pub invoke_us: u64,
    pub complete_us: u64,
    pub outcome: RecordOutcome<O>,
}

/// The checker's view: failed operations dropped, unknown ones without output and return.
pub fn records_to_ops<I: Clone, O: Clone>(records: &[Record<I, O>]) -> Vec<Op<I, O>> {
    records
        .iter()
        .enumerate()
        .filter_map(|(index, record)| {
            let (output, return_us) = match &record.outcome {
                RecordOutcome::Fail => return None,
                RecordOutcome::Unknown => (None, NEVER_RETURNED_US),
                RecordOutcome::Ok(output) => (Some(output.clone()), record.complete_us),
            };
            Some(Op {
                index,
                client: record.client,
                call_us: record.invoke_us,
                return_us,
                input: record.input.clone(),
                output,
            })
        })
        .collect()
}

/// Records from checker operations (unknown outputs become `Unknown`), e.g. to save generated
/// histories.
pub fn ops_to_records<I: Clone, O: Clone>(ops: &[Op<I, O>]) -> Vec<Record<I, O>> {
    ops.iter()
        .map(|op| Record {
            client: op.client,
            input: op.input.clone(),
            invoke_us: op.call_us,
            complete_us: op.return_us,
            outcome: op
                .output
                .clone()
                .map_or(RecordOutcome::Unknown, RecordOutcome::Ok),
        })
        .collect()
}
