//! A kv map of strings (Porcupine's kv model): get, put, append; an absent key reads as "".
//! Partitioned per key, so each part is one string register.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::check::model::{Model, Op, Part, Witness};
use crate::check::read_witness::{impossible_read, KvReads};

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KvInput {
    Get { key: String },
    Put { key: String, value: String },
    Append { key: String, value: String },
}

impl KvInput {
    pub fn key(&self) -> &str {
        match self {
            KvInput::Get { key } | KvInput::Put { key, .. } | KvInput::Append { key, .. } => key,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KvOutput {
    Got { value: String },
    Done,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KvModel;

impl Model for KvModel {
    /// The value of the part's key.
    type State = String;
    type Input = KvInput;
    type Output = KvOutput;

    fn init(&mut self) -> String {
        String::new()
    }

    fn step(
        &mut self,
        state: &String,
        input: &KvInput,
        output: Option<&KvOutput>,
        next: &mut Vec<String>,
    ) {
        match (input, output) {
            (KvInput::Get { .. }, None) => next.push(state.clone()),
            (KvInput::Get { .. }, Some(KvOutput::Got { value })) => {
                if value == state {
                    next.push(state.clone());
                }
            }
            (KvInput::Put { value, .. }, None | Some(KvOutput::Done)) => next.push(value.clone()),
            (KvInput::Append { value, .. }, None | Some(KvOutput::Done)) => {
                next.push(format!("{state}{value}"));
            }
            // A malformed record: an output of the wrong kind is never legal.
            (_, Some(_)) => {}
        }
    }

    fn partition(&self, ops: Vec<Op<KvInput, KvOutput>>) -> Vec<Part<KvInput, KvOutput>> {
        let mut parts: BTreeMap<String, Vec<Op<KvInput, KvOutput>>> = BTreeMap::new();
        for op in ops {
            parts
                .entry(op.input.key().to_string())
                .or_default()
                .push(op);
        }
        parts
            .into_iter()
            .map(|(name, ops)| Part { name, ops })
            .collect()
    }

    fn unknown_is_noop(&self, input: &KvInput) -> bool {
        matches!(input, KvInput::Get { .. })
    }

    fn refute(&self, ops: &[Op<KvInput, KvOutput>]) -> Option<Witness> {
        impossible_read(&KvReads::new(ops), ops)
    }

    fn describe_op(&self, input: &KvInput, output: Option<&KvOutput>) -> String {
        let result = match output {
            None => "?".to_string(),
            Some(KvOutput::Got { value }) => format!("{value:?}"),
            Some(KvOutput::Done) => "ok".to_string(),
        };
        match input {
            KvInput::Get { key } => format!("get({key}) -> {result}"),
            KvInput::Put { key, value } => format!("put({key}, {value:?}) -> {result}"),
            KvInput::Append { key, value } => format!("append({key}, {value:?}) -> {result}"),
        }
    }

    fn describe_state(&self, state: &String) -> String {
        format!("{state:?}")
    }
}
