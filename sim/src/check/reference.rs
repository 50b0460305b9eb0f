//! A brute-force reference checker for small histories, independent of the WGL search
//! (`wgl.rs`): it tries every order of the operations that respects real time, with its own
//! tiny specification of each model, so that the search can be tested against it.
//!
//! The rules, stated once:
//! - an operation with a known outcome takes effect exactly once, at one point between its call
//!   and its return; its output must be what the model gives at that point;
//! - an unknown operation (timed out, Jepsen's `:info`) takes effect at one point after its
//!   call, at any time (even after the client gave up), or never; any output is accepted;
//! - a failed operation never takes effect and constrains nothing;
//! - operation `a` must precede `b` when `a` returned strictly before `b` was called (touching
//!   intervals are concurrent).
//!
//! The enumeration is depth-first over (set of operations taken, state) and remembers the pairs
//! that failed, so a history of `REFERENCE_OPS_MAX` operations is a few hundred thousand steps at
//! worst. Nothing here is clever; it is meant to be obviously right.

use std::collections::{BTreeMap, BTreeSet};

use super::models::kv::{KvInput, KvOutput};
use super::models::register::{RegisterInput, RegisterOutput};
use super::records::{Record, RecordOutcome};
use crate::history::{OpInput, OpOutcome, Operation};

/// Most operations (failed ones excluded) a reference check accepts.
pub const REFERENCE_OPS_MAX: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("the reference checker takes at most {max} operations, found {found}")]
    TooLong { found: usize, max: usize },
}

/// When an operation may take effect.
#[derive(Clone, Copy, Debug)]
struct Interval {
    call_us: u64,
    /// `None`: unknown outcome, may take effect at any time after its call, or never.
    return_us: Option<u64>,
}

/// True when some order of `intervals` (each unknown one may be left out) respecting real time
/// makes every `apply(state, op)` legal. `apply` gives the state after operation `op`, or `None`
/// when the operation cannot take effect in `state` with its recorded output.
fn linearizable<S: Ord + Clone>(
    intervals: &[Interval],
    init: S,
    apply: &dyn Fn(&S, usize) -> Option<S>,
) -> Result<bool, ReferenceError> {
    if intervals.len() > REFERENCE_OPS_MAX {
        return Err(ReferenceError::TooLong {
            found: intervals.len(),
            max: REFERENCE_OPS_MAX,
        });
    }
    let mut failed = BTreeSet::new();
    Ok(extend(intervals, 0, &init, apply, &mut failed))
}

/// Depth-first: can the configuration (`taken`, `state`) be completed?
fn extend<S: Ord + Clone>(
    intervals: &[Interval],
    taken: u32,
    state: &S,
    apply: &dyn Fn(&S, usize) -> Option<S>,
    failed: &mut BTreeSet<(u32, S)>,
) -> bool {
    let known_left =
        (0..intervals.len()).any(|op| taken & (1 << op) == 0 && intervals[op].return_us.is_some());
    if !known_left {
        return true;
    }
    if failed.contains(&(taken, state.clone())) {
        return false;
    }
    for op in 0..intervals.len() {
        if taken & (1 << op) != 0 || !may_go_next(intervals, taken, op) {
            continue;
        }
        if let Some(next) = apply(state, op) {
            if extend(intervals, taken | (1 << op), &next, apply, failed) {
                return true;
            }
        }
    }
    failed.insert((taken, state.clone()));
    false
}

/// `op` may take effect now unless an operation not yet taken returned before `op` was called.
fn may_go_next(intervals: &[Interval], taken: u32, op: usize) -> bool {
    (0..intervals.len()).all(|other| {
        taken & (1 << other) != 0
            || intervals[other]
                .return_us
                .is_none_or(|returned| returned >= intervals[op].call_us)
    })
}

/// The operations that may take effect (failed ones dropped), with their intervals.
fn effective<I, O>(records: &[Record<I, O>]) -> (Vec<Interval>, Vec<(&I, Option<&O>)>) {
    records
        .iter()
        .filter_map(|record| match &record.outcome {
            RecordOutcome::Fail => None,
            RecordOutcome::Unknown => Some((
                Interval {
                    call_us: record.invoke_us,
                    return_us: None,
                },
                (&record.input, None),
            )),
            RecordOutcome::Ok(output) => Some((
                Interval {
                    call_us: record.invoke_us,
                    return_us: Some(record.complete_us),
                },
                (&record.input, Some(output)),
            )),
        })
        .unzip()
}

/// Is a cas-register history linearizable? The register starts unset (`None`).
pub fn register_linearizable(
    records: &[Record<RegisterInput, RegisterOutput>],
) -> Result<bool, ReferenceError> {
    let (intervals, ops) = effective(records);
    let apply = |state: &Option<i64>, op: usize| register_apply(*state, ops[op].0, ops[op].1);
    linearizable(&intervals, None, &apply)
}

/// The register's specification: the state after the operation, `None` when illegal.
fn register_apply(
    state: Option<i64>,
    input: &RegisterInput,
    output: Option<&RegisterOutput>,
) -> Option<Option<i64>> {
    match (input, output) {
        (RegisterInput::Read, None) => Some(state),
        (RegisterInput::Read, Some(RegisterOutput::Read { value })) => {
            (*value == state).then_some(state)
        }
        (RegisterInput::Write { value }, None | Some(RegisterOutput::Written)) => {
            Some(Some(*value))
        }
        (RegisterInput::Cas { from, to }, None) => Some(if state == Some(*from) {
            Some(*to)
        } else {
            state
        }),
        (RegisterInput::Cas { from, to }, Some(RegisterOutput::Cas { ok: true })) => {
            (state == Some(*from)).then_some(Some(*to))
        }
        (RegisterInput::Cas { from, .. }, Some(RegisterOutput::Cas { ok: false })) => {
            (state != Some(*from)).then_some(state)
        }
        _ => None,
    }
}

/// Is a kv history linearizable? The whole map is the state (no split per key); an absent key
/// reads as "".
pub fn kv_linearizable(records: &[Record<KvInput, KvOutput>]) -> Result<bool, ReferenceError> {
    let (intervals, ops) = effective(records);
    let apply = |state: &BTreeMap<String, String>, op: usize| kv_apply(state, ops[op].0, ops[op].1);
    linearizable(&intervals, BTreeMap::new(), &apply)
}

fn kv_apply(
    state: &BTreeMap<String, String>,
    input: &KvInput,
    output: Option<&KvOutput>,
) -> Option<BTreeMap<String, String>> {
    let current = state.get(input.key()).map_or("", String::as_str);
    let mut next = state.clone();
    match (input, output) {
        (KvInput::Get { .. }, None) => {}
        (KvInput::Get { .. }, Some(KvOutput::Got { value })) => {
            if value != current {
                return None;
            }
        }
        (KvInput::Put { key, value }, None | Some(KvOutput::Done)) => {
            next.insert(key.clone(), value.clone());
        }
        (KvInput::Append { key, value }, None | Some(KvOutput::Done)) => {
            next.insert(key.clone(), format!("{current}{value}"));
        }
        _ => return None,
    }
    Some(next)
}

/// Is a log history linearizable? The state is every queue's log of bodies. A send acknowledged
/// at offset k lands when its queue holds k entries; a pull at offset k with limit `max` returns
/// exactly the entries k..min(k + max, length).
pub fn log_linearizable(history: &[Operation]) -> Result<bool, ReferenceError> {
    let (intervals, ops): (Vec<Interval>, Vec<&Operation>) = history
        .iter()
        .filter(|operation| operation.outcome != OpOutcome::Fail)
        .map(|operation| {
            let return_us =
                (operation.outcome != OpOutcome::Unknown).then_some(operation.complete_us);
            let interval = Interval {
                call_us: operation.invoke_us,
                return_us,
            };
            (interval, operation)
        })
        .unzip();
    let apply = |state: &BTreeMap<String, Vec<String>>, op: usize| log_apply(state, ops[op]);
    linearizable(&intervals, BTreeMap::new(), &apply)
}

fn log_apply(
    state: &BTreeMap<String, Vec<String>>,
    operation: &Operation,
) -> Option<BTreeMap<String, Vec<String>>> {
    let empty = Vec::new();
    match (&operation.input, &operation.outcome) {
        (OpInput::Send { queue, body }, outcome) => {
            let log = state.get(queue).unwrap_or(&empty);
            let legal = match outcome {
                OpOutcome::Sent { offset } => *offset == log.len() as u64,
                OpOutcome::Unknown => true,
                OpOutcome::Pulled { .. } | OpOutcome::Fail => false,
            };
            if !legal {
                return None;
            }
            let mut next = state.clone();
            next.entry(queue.clone()).or_default().push(body.clone());
            Some(next)
        }
        (OpInput::Pull { queue, offset, max }, outcome) => {
            let log = state.get(queue).unwrap_or(&empty);
            let legal = match outcome {
                OpOutcome::Pulled { bodies } => {
                    let start = usize::try_from(*offset).map_or(log.len(), |o| o.min(log.len()));
                    let end = start.saturating_add(*max as usize).min(log.len());
                    bodies.as_slice() == &log[start..end]
                }
                OpOutcome::Unknown => true,
                OpOutcome::Sent { .. } | OpOutcome::Fail => false,
            };
            legal.then(|| state.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(
        invoke_us: u64,
        complete_us: u64,
        input: RegisterInput,
        outcome: RecordOutcome<RegisterOutput>,
    ) -> Record<RegisterInput, RegisterOutput> {
        Record {
            client: 0,
            input,
            invoke_us,
            complete_us,
            outcome,
        }
    }

    fn read(value: Option<i64>) -> RecordOutcome<RegisterOutput> {
        RecordOutcome::Ok(RegisterOutput::Read { value })
    }

    #[test]
    fn real_time_order_binds_and_overlap_frees() {
        // Why: the reference is the oracle for the search; its two core rules must hold.
        let write = record(
            0,
            10,
            RegisterInput::Write { value: 1 },
            RecordOutcome::Ok(RegisterOutput::Written),
        );
        let overlapping = [
            write.clone(),
            record(10, 12, RegisterInput::Read, read(None)),
        ];
        assert_eq!(register_linearizable(&overlapping), Ok(true));
        let after = [write, record(11, 12, RegisterInput::Read, read(None))];
        assert_eq!(register_linearizable(&after), Ok(false));
    }

    #[test]
    fn unknown_takes_effect_late_or_never_and_fail_never() {
        // Why: the three outcome kinds are where checkers most often differ.
        let write = |outcome| record(0, 5, RegisterInput::Write { value: 7 }, outcome);
        let seen = |outcome| {
            [
                write(outcome),
                record(100, 101, RegisterInput::Read, read(Some(7))),
            ]
        };
        assert_eq!(
            register_linearizable(&seen(RecordOutcome::Unknown)),
            Ok(true)
        );
        assert_eq!(register_linearizable(&seen(RecordOutcome::Fail)), Ok(false));
        let unseen = [
            write(RecordOutcome::Unknown),
            record(100, 101, RegisterInput::Read, read(None)),
        ];
        assert_eq!(register_linearizable(&unseen), Ok(true));
    }

    #[test]
    fn a_write_of_the_current_value_still_overwrites_later() {
        // Why: the false NOT of issue 18 came from treating such a write as a read.
        // The second write(1) spans write(2), so it may land after it: the read of 1 is fine.
        let ok = RecordOutcome::Ok(RegisterOutput::Written);
        let history = [
            record(0, 1, RegisterInput::Write { value: 1 }, ok.clone()),
            record(2, 20, RegisterInput::Write { value: 1 }, ok.clone()),
            record(3, 4, RegisterInput::Write { value: 2 }, ok),
            record(21, 22, RegisterInput::Read, read(Some(1))),
        ];
        assert_eq!(register_linearizable(&history), Ok(true));
    }

    #[test]
    fn too_long_is_an_error() {
        // Why: the enumeration is exponential; a long history must be refused, not hang.
        let history: Vec<_> = (0..=REFERENCE_OPS_MAX as u64)
            .map(|time| record(time, time, RegisterInput::Read, read(None)))
            .collect();
        assert!(matches!(
            register_linearizable(&history),
            Err(ReferenceError::TooLong { .. })
        ));
    }
}
