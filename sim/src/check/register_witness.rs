//! Impossible reads of a cas-register, found in O(n log n) without the search: each is a witness
//! of a NOT (a few operations that cannot be linearized together) with the rule it breaks.
//!
//! A read R that returned v is impossible when
//! - v is nil and a known write (an `ok` write or cas) returned before R was called (nothing
//!   writes nil back); or
//! - no operation that could write v (a write of v, a cas to v that did not fail) was called
//!   before R returned ("ghost"); or
//! - every such operation has a known outcome and returned before some known write of another
//!   value Y was called, and Y returned before R was called ("stale"): Y takes effect after every
//!   write of v that could precede R, and before R.
//!
//! Each rule only looks at operations that must (or could) precede the read, so a linearizable
//! history never has one. Repeated values are fine; with unique values most wrong reads are
//! caught here, and the search is only needed for what this cannot see (e.g. cas chains).

use std::collections::BTreeMap;

use super::model::{Op, Witness, NEVER_RETURNED_US};
use super::models::register::{RegisterInput, RegisterOutput};

type RegisterOp = Op<RegisterInput, RegisterOutput>;

/// The first impossible read (in part order), if any.
pub fn impossible_read(ops: &[RegisterOp]) -> Option<Witness> {
    let writers = Writers::new(ops);
    let known = KnownWrites::new(ops);
    let first_known = first_known_write(ops);
    ops.iter()
        .enumerate()
        .find_map(|(read, op)| match &op.output {
            Some(RegisterOutput::Read { value: None }) => nil_read(ops, first_known, read),
            Some(RegisterOutput::Read { value: Some(value) }) => {
                value_read(ops, &writers, &known, read, *value)
            }
            _ => None,
        })
}

/// The value an operation wrote, when its outcome says it did.
fn known_written(op: &RegisterOp) -> Option<i64> {
    match (&op.input, &op.output) {
        (RegisterInput::Write { value }, Some(RegisterOutput::Written)) => Some(*value),
        (RegisterInput::Cas { to, .. }, Some(RegisterOutput::Cas { ok: true })) => Some(*to),
        _ => None,
    }
}

/// The value an operation may write (whatever its outcome, unless it says it did not).
fn may_write(op: &RegisterOp) -> Option<i64> {
    match (&op.input, &op.output) {
        (RegisterInput::Write { value }, _) => Some(*value),
        (RegisterInput::Cas { to, .. }, None | Some(RegisterOutput::Cas { ok: true })) => Some(*to),
        _ => None,
    }
}

/// Per value, the operations that may write it, by call time, with the running maximum of
/// their return times (`NEVER_RETURNED_US` for unknown outcomes).
struct Writers {
    by_value: BTreeMap<i64, Vec<(u64, u64, usize)>>,
}

impl Writers {
    fn new(ops: &[RegisterOp]) -> Writers {
        let mut by_value: BTreeMap<i64, Vec<(u64, u64, usize)>> = BTreeMap::new();
        for (position, op) in ops.iter().enumerate() {
            if let Some(value) = may_write(op) {
                by_value
                    .entry(value)
                    .or_default()
                    .push((op.call_us, op.return_us, position));
            }
        }
        for list in by_value.values_mut() {
            list.sort_unstable();
        }
        Writers { by_value }
    }

    /// The writers of `value` called by `at_us` (a call at the instant another operation returns
    /// is concurrent with it).
    fn called_by(&self, value: i64, at_us: u64) -> &[(u64, u64, usize)] {
        self.by_value.get(&value).map_or(&[], |list| {
            let count = list.partition_point(|&(call_us, _, _)| call_us <= at_us);
            &list[..count]
        })
    }
}

/// Known writes by call time, with, for every suffix, the earliest return and the earliest
/// return of a different value (so "a known write of a value other than v called after t" is
/// one binary search).
struct KnownWrites {
    /// (call_us, position), sorted.
    calls: Vec<(u64, usize)>,
    /// Per suffix: best (return_us, value, position) and best with a value other than best's.
    best: Vec<[Option<(u64, i64, usize)>; 2]>,
}

impl KnownWrites {
    fn new(ops: &[RegisterOp]) -> KnownWrites {
        let mut calls: Vec<(u64, usize)> = ops
            .iter()
            .enumerate()
            .filter(|(_, op)| known_written(op).is_some())
            .map(|(position, op)| (op.call_us, position))
            .collect();
        calls.sort_unstable();
        let mut best = vec![[None, None]; calls.len() + 1];
        for rank in (0..calls.len()).rev() {
            let position = calls[rank].1;
            let value = known_written(&ops[position]).expect("filtered to known writes");
            let entry = (ops[position].return_us, value, position);
            best[rank] = insert_best(best[rank + 1], entry);
        }
        KnownWrites { calls, best }
    }

    /// The known write of a value other than `value` called after `after_us` that returns
    /// first, if any.
    fn first_other(&self, after_us: u64, value: Option<i64>) -> Option<(u64, i64, usize)> {
        let rank = self
            .calls
            .partition_point(|&(call_us, _)| call_us <= after_us);
        let [first, second] = self.best[rank];
        match first {
            Some((_, written, _)) if Some(written) == value => second,
            other => other,
        }
    }
}

fn insert_best(
    [first, second]: [Option<(u64, i64, usize)>; 2],
    entry: (u64, i64, usize),
) -> [Option<(u64, i64, usize)>; 2] {
    let Some(top) = first else {
        return [Some(entry), None];
    };
    if entry.0 <= top.0 {
        // The new best; the old best stays as runner-up unless it has the same value.
        let runner = if top.1 != entry.1 { Some(top) } else { second };
        return [Some(entry), runner];
    }
    let runner = match second {
        _ if entry.1 == top.1 => second,
        Some(runner) if runner.0 <= entry.0 => Some(runner),
        _ => Some(entry),
    };
    [first, runner]
}

/// The known write that returned first: (return_us, value, position).
fn first_known_write(ops: &[RegisterOp]) -> Option<(u64, i64, usize)> {
    ops.iter()
        .enumerate()
        .filter_map(|(position, op)| known_written(op).map(|value| (op.return_us, value, position)))
        .min()
}

fn nil_read(
    ops: &[RegisterOp],
    first_known: Option<(u64, i64, usize)>,
    read: usize,
) -> Option<Witness> {
    let (return_us, value, writer) = first_known?;
    (return_us < ops[read].call_us).then(|| Witness {
        ops: vec![ops[writer].index, ops[read].index],
        culprit: ops[read].index,
        rule: format!(
            "read #{} returned nil, but write {value} (#{}) completed before the read was \
             invoked, and nothing writes nil",
            ops[read].index, ops[writer].index
        ),
    })
}

fn value_read(
    ops: &[RegisterOp],
    writers: &Writers,
    known: &KnownWrites,
    read: usize,
    value: i64,
) -> Option<Witness> {
    let op = &ops[read];
    let candidates = writers.called_by(value, op.return_us);
    if candidates.is_empty() {
        return Some(Witness {
            ops: vec![op.index],
            culprit: op.index,
            rule: format!(
                "read #{} returned {value}, but no operation that could write {value} was \
                 invoked before the read completed",
                op.index
            ),
        });
    }
    let &(_, latest_us, latest) = candidates
        .iter()
        .max_by_key(|&&(_, return_us, _)| return_us)?;
    if latest_us == NEVER_RETURNED_US {
        return None;
    }
    let (return_us, other, overwriter) = known.first_other(latest_us, Some(value))?;
    if return_us >= op.call_us {
        return None;
    }
    let mut witness_ops: Vec<usize> = candidates
        .iter()
        .map(|&(_, _, position)| ops[position].index)
        .collect();
    witness_ops.extend([ops[overwriter].index, op.index]);
    witness_ops.sort_unstable();
    let earlier = if candidates.len() == 1 {
        format!("write {value} (#{})", ops[latest].index)
    } else {
        format!(
            "every write of {value} that could precede it ({} ops, the last #{})",
            candidates.len(),
            ops[latest].index
        )
    };
    Some(Witness {
        ops: witness_ops,
        culprit: op.index,
        rule: format!(
            "read #{} returned {value}, but {earlier} was overwritten by write {other} (#{}), \
             which completed before the read was invoked",
            op.index, ops[overwriter].index
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(
        index: usize,
        call_us: u64,
        return_us: u64,
        input: RegisterInput,
        output: RegisterOutput,
    ) -> RegisterOp {
        Op {
            index,
            client: index as u32,
            call_us,
            return_us,
            input,
            output: Some(output),
        }
    }

    fn write(index: usize, call_us: u64, return_us: u64, value: i64) -> RegisterOp {
        op(
            index,
            call_us,
            return_us,
            RegisterInput::Write { value },
            RegisterOutput::Written,
        )
    }

    fn read(index: usize, call_us: u64, return_us: u64, value: Option<i64>) -> RegisterOp {
        op(
            index,
            call_us,
            return_us,
            RegisterInput::Read,
            RegisterOutput::Read { value },
        )
    }

    #[test]
    fn a_stale_read_names_the_overwrite() {
        // Why: the example of a witness in words: a read saw a value overwritten before it.
        let ops = [
            write(0, 0, 10, 3),
            write(1, 11, 20, 4),
            read(2, 21, 30, Some(3)),
        ];
        let witness = impossible_read(&ops).expect("stale read");
        assert_eq!(witness.ops, vec![0, 1, 2]);
        assert_eq!(
            witness.rule,
            "read #2 returned 3, but write 3 (#0) was overwritten by write 4 (#1), which \
             completed before the read was invoked"
        );
    }

    #[test]
    fn overlap_or_a_rewrite_of_the_value_is_not_a_witness() {
        // Why: the rules must stay sound: a concurrent overwrite or a later write of the same
        // value (repeated values) makes the read possible.
        let concurrent = [
            write(0, 0, 10, 3),
            write(1, 10, 20, 4),
            read(2, 21, 30, Some(3)),
        ];
        assert_eq!(impossible_read(&concurrent), None);
        let rewritten = [
            write(0, 0, 10, 3),
            write(1, 11, 20, 4),
            write(2, 12, 40, 3),
            read(3, 21, 30, Some(3)),
        ];
        assert_eq!(impossible_read(&rewritten), None);
        let unknown = Op {
            output: None,
            return_us: NEVER_RETURNED_US,
            ..write(2, 12, 13, 3)
        };
        let late = [
            write(0, 0, 10, 3),
            write(1, 11, 20, 4),
            unknown,
            read(3, 21, 30, Some(3)),
        ];
        assert_eq!(impossible_read(&late), None);
    }

    #[test]
    fn ghost_and_nil_reads() {
        // Why: a value nobody wrote, or nil after a completed write, is impossible at once.
        let ghost = [write(0, 0, 10, 3), read(1, 5, 6, Some(9))];
        assert_eq!(
            impossible_read(&ghost).map(|witness| witness.ops),
            Some(vec![1])
        );
        let nil = [write(0, 0, 10, 3), read(1, 11, 12, None)];
        assert_eq!(
            impossible_read(&nil).map(|witness| witness.ops),
            Some(vec![0, 1])
        );
        let early_nil = [write(0, 0, 10, 3), read(1, 10, 12, None)];
        assert_eq!(impossible_read(&early_nil), None);
    }
}
