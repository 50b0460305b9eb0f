//! A cas-register (Jepsen's etcd test): read, write, compare-and-set. `None` is the unset value
//! (Jepsen's `nil`).

use serde::{Deserialize, Serialize};

use crate::check::model::{Decided, Model, Op, Witness};
use crate::check::read_witness::{impossible_read, RegisterReads};
use crate::check::register_unique::decide_unique;

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegisterInput {
    Read,
    Write { value: i64 },
    Cas { from: i64, to: i64 },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegisterOutput {
    Read {
        value: Option<i64>,
    },
    Written,
    /// `ok: false`: the register did not hold `from` (Jepsen's `:fail :cas`).
    Cas {
        ok: bool,
    },
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegisterModel;

impl Model for RegisterModel {
    type State = Option<i64>;
    type Input = RegisterInput;
    type Output = RegisterOutput;

    fn init(&mut self) -> Option<i64> {
        None
    }

    fn step(
        &mut self,
        state: &Option<i64>,
        input: &RegisterInput,
        output: Option<&RegisterOutput>,
        next: &mut Vec<Option<i64>>,
    ) {
        match (input, output) {
            (RegisterInput::Read, None) => next.push(*state),
            (RegisterInput::Read, Some(RegisterOutput::Read { value })) => {
                if value == state {
                    next.push(*state);
                }
            }
            (RegisterInput::Write { value }, None | Some(RegisterOutput::Written)) => {
                next.push(Some(*value));
            }
            (RegisterInput::Cas { from, to }, None) => {
                next.push(if *state == Some(*from) {
                    Some(*to)
                } else {
                    *state
                });
            }
            (RegisterInput::Cas { from, to }, Some(RegisterOutput::Cas { ok })) => {
                let holds = *state == Some(*from);
                if holds == *ok {
                    next.push(if holds { Some(*to) } else { *state });
                }
            }
            // A malformed record: an output of the wrong kind is never legal.
            (_, Some(_)) => {}
        }
    }

    fn unknown_is_noop(&self, input: &RegisterInput) -> bool {
        matches!(input, RegisterInput::Read)
    }

    fn is_observation(&self, input: &RegisterInput, output: &RegisterOutput) -> bool {
        matches!(
            (input, output),
            (RegisterInput::Read, _)
                | (RegisterInput::Cas { .. }, RegisterOutput::Cas { ok: false })
        )
    }

    fn refute(&self, ops: &[Op<RegisterInput, RegisterOutput>]) -> Option<Witness> {
        impossible_read(&RegisterReads, ops)
    }

    fn decide(&self, ops: &[Op<RegisterInput, RegisterOutput>]) -> Decided {
        decide_unique(ops)
    }

    fn describe_op(&self, input: &RegisterInput, output: Option<&RegisterOutput>) -> String {
        let result = match output {
            None => "?".to_string(),
            Some(RegisterOutput::Read { value }) => describe_value(*value),
            Some(RegisterOutput::Written) => "ok".to_string(),
            Some(RegisterOutput::Cas { ok }) => (if *ok { "ok" } else { "fail" }).to_string(),
        };
        match input {
            RegisterInput::Read => format!("read() -> {result}"),
            RegisterInput::Write { value } => format!("write({value}) -> {result}"),
            RegisterInput::Cas { from, to } => format!("cas({from}, {to}) -> {result}"),
        }
    }

    fn describe_state(&self, state: &Option<i64>) -> String {
        describe_value(*state)
    }
}

fn describe_value(value: Option<i64>) -> String {
    value.map_or_else(|| "nil".to_string(), |value| value.to_string())
}
