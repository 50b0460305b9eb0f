//! Impossible reads of a register-like part (a cas-register, one key of the kv map), found in
//! O(n log n) without the search: each is a witness of a NOT (a few operations that cannot be
//! linearized together) with the rule it breaks.
//!
//! A *producer* of a value v is an operation that may leave the state at v when it takes effect:
//! a write of v or a cas to v that did not fail (register); a put of v, or an append of a suffix
//! of v (kv). A read R that returned v is impossible when
//! - no producer of v was called before R returned and v is not the initial value ("ghost"); or
//! - every producer of v called before R returned (and the initial state, when v is the initial
//!   value) has a known outcome and returned before some known writer Y was called, and Y
//!   returned before R was called ("stale"). The last operation to change the state before R
//!   produced v, so it precedes Y, and Y takes effect after it and before R. (Y cannot be a
//!   producer of v itself: it was called before R returned, so it would be one of those that
//!   returned before it was called.)
//!
//! Each rule only looks at operations that must (or could) precede the read, so a linearizable
//! history never has one. Repeated values are fine; with unique values most wrong reads are
//! caught here, and the rest is decided by `register_unique` or the search.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use super::model::{Op, Witness, NEVER_RETURNED_US};
use super::models::kv::{KvInput, KvOutput};
use super::models::register::{RegisterInput, RegisterOutput};

/// What the rules need to know of a model.
pub trait Reads {
    type Input;
    type Output;
    type Value: Clone + Eq + Debug;
    /// Producers are indexed by key; `keys_for` lists the keys whose producers may produce a
    /// value.
    type Key: Ord + Clone;

    /// The value a read with a known outcome returned.
    fn read_value(&self, op: &Op<Self::Input, Self::Output>) -> Option<Self::Value>;
    fn is_initial(&self, value: &Self::Value) -> bool;
    /// The key of an operation that may change the state (whatever its outcome, unless the
    /// outcome says it did not).
    fn producer_key(&self, op: &Op<Self::Input, Self::Output>) -> Option<Self::Key>;
    fn keys_for(&self, value: &Self::Value) -> Vec<Self::Key>;
    /// True when the operation's outcome says it changed the state (or wrote it anew).
    fn known_writer(&self, op: &Op<Self::Input, Self::Output>) -> bool;
    /// "read", "get".
    fn read_name(&self) -> &'static str;
    fn describe_value(&self, value: &Self::Value) -> String;
    /// A writer in a rule, e.g. "write 3", "put(\"v1\")".
    fn describe_writer(&self, op: &Op<Self::Input, Self::Output>) -> String;
}

/// The first impossible read (in part order), if any.
pub fn impossible_read<R: Reads>(reads: &R, ops: &[Op<R::Input, R::Output>]) -> Option<Witness> {
    let producers = Producers::new(reads, ops);
    let known = KnownWrites::new(reads, ops);
    ops.iter().enumerate().find_map(|(read, op)| {
        let value = reads.read_value(op)?;
        check_read(reads, ops, &producers, &known, read, &value)
    })
}

/// Per key, the producers by call time.
struct Producers<K> {
    by_key: BTreeMap<K, Vec<(u64, u64, usize)>>,
}

impl<K: Ord + Clone> Producers<K> {
    fn new<R: Reads<Key = K>>(reads: &R, ops: &[Op<R::Input, R::Output>]) -> Producers<K> {
        let mut by_key: BTreeMap<K, Vec<(u64, u64, usize)>> = BTreeMap::new();
        for (position, op) in ops.iter().enumerate() {
            if let Some(key) = reads.producer_key(op) {
                by_key
                    .entry(key)
                    .or_default()
                    .push((op.call_us, op.return_us, position));
            }
        }
        for list in by_key.values_mut() {
            list.sort_unstable();
        }
        Producers { by_key }
    }

    /// The producers under `key` called by `at_us` (a call at the instant another operation
    /// returns is concurrent with it).
    fn called_by(&self, key: &K, at_us: u64) -> &[(u64, u64, usize)] {
        self.by_key.get(key).map_or(&[], |list| {
            let count = list.partition_point(|&(call_us, _, _)| call_us <= at_us);
            &list[..count]
        })
    }
}

/// Known writers by call time, with the earliest return of every suffix (so "the known writer
/// called after t that returned first" is one binary search).
struct KnownWrites {
    /// (call_us, position), sorted.
    calls: Vec<(u64, usize)>,
    /// Per suffix of `calls`: (return_us, position) of its earliest return.
    earliest: Vec<Option<(u64, usize)>>,
}

impl KnownWrites {
    fn new<R: Reads>(reads: &R, ops: &[Op<R::Input, R::Output>]) -> KnownWrites {
        let mut calls: Vec<(u64, usize)> = ops
            .iter()
            .enumerate()
            .filter(|(_, op)| reads.known_writer(op))
            .map(|(position, op)| (op.call_us, position))
            .collect();
        calls.sort_unstable();
        let mut earliest = vec![None; calls.len() + 1];
        for rank in (0..calls.len()).rev() {
            let position = calls[rank].1;
            let entry = (ops[position].return_us, position);
            earliest[rank] =
                Some(earliest[rank + 1].map_or(entry, |best: (u64, usize)| best.min(entry)));
        }
        KnownWrites { calls, earliest }
    }

    /// The known writer called after `after_us` (any, when `None`) that returned first.
    fn first_after(&self, after_us: Option<u64>) -> Option<(u64, usize)> {
        let rank = after_us.map_or(0, |after_us| {
            self.calls
                .partition_point(|&(call_us, _)| call_us <= after_us)
        });
        self.earliest[rank]
    }
}

fn check_read<R: Reads>(
    reads: &R,
    ops: &[Op<R::Input, R::Output>],
    producers: &Producers<R::Key>,
    known: &KnownWrites,
    read: usize,
    value: &R::Value,
) -> Option<Witness> {
    let op = &ops[read];
    let mut candidates: Vec<(u64, u64, usize)> = reads
        .keys_for(value)
        .iter()
        .flat_map(|key| producers.called_by(key, op.return_us).iter().copied())
        .collect();
    candidates.sort_unstable();
    candidates.dedup();
    let initial = reads.is_initial(value);
    let shown = reads.describe_value(value);
    let name = reads.read_name();
    if candidates.is_empty() && !initial {
        return Some(Witness {
            ops: vec![op.index],
            culprit: op.index,
            rule: format!(
                "{name} #{} returned {shown}, but no operation that could write {shown} was \
                 invoked before the {name} completed",
                op.index
            ),
        });
    }
    let latest = candidates
        .iter()
        .max_by_key(|&&(_, return_us, _)| return_us)
        .copied();
    if latest.is_some_and(|(_, return_us, _)| return_us == NEVER_RETURNED_US) {
        return None;
    }
    let (return_us, overwriter) = known.first_after(latest.map(|(_, return_us, _)| return_us))?;
    if return_us >= op.call_us {
        return None;
    }
    let overwriting = format!(
        "{} (#{})",
        reads.describe_writer(&ops[overwriter]),
        ops[overwriter].index
    );
    let mut witness_ops: Vec<usize> = candidates
        .iter()
        .map(|&(_, _, position)| ops[position].index)
        .collect();
    witness_ops.extend([ops[overwriter].index, op.index]);
    witness_ops.sort_unstable();
    let rule = match latest {
        None => format!(
            "{name} #{} returned {shown}, but {overwriting} completed before the {name} was \
             invoked, and nothing writes {shown}",
            op.index
        ),
        Some((_, _, last)) => {
            let earlier =
                match (candidates.len(), initial) {
                    (1, false) => format!(
                        "{} (#{})",
                        reads.describe_writer(&ops[last]),
                        ops[last].index
                    ),
                    (count, initial) => format!(
                    "{}every write of {shown} that could precede it ({count} ops, the last #{})",
                    if initial { "the initial value and " } else { "" },
                    ops[last].index
                ),
                };
            format!(
                "{name} #{} returned {shown}, but {earlier} was overwritten by {overwriting}, \
                 which completed before the {name} was invoked",
                op.index
            )
        }
    };
    Some(Witness {
        ops: witness_ops,
        culprit: op.index,
        rule,
    })
}

/// The register's reads: a producer of v is a write of v or a cas to v that did not fail.
#[derive(Clone, Copy, Debug, Default)]
pub struct RegisterReads;

impl Reads for RegisterReads {
    type Input = RegisterInput;
    type Output = RegisterOutput;
    type Value = Option<i64>;
    type Key = i64;

    fn read_value(&self, op: &Op<RegisterInput, RegisterOutput>) -> Option<Option<i64>> {
        match (&op.input, &op.output) {
            (RegisterInput::Read, Some(RegisterOutput::Read { value })) => Some(*value),
            _ => None,
        }
    }

    fn is_initial(&self, value: &Option<i64>) -> bool {
        value.is_none()
    }

    fn producer_key(&self, op: &Op<RegisterInput, RegisterOutput>) -> Option<i64> {
        match (&op.input, &op.output) {
            (RegisterInput::Write { value }, _) => Some(*value),
            (RegisterInput::Cas { to, .. }, None | Some(RegisterOutput::Cas { ok: true })) => {
                Some(*to)
            }
            _ => None,
        }
    }

    fn keys_for(&self, value: &Option<i64>) -> Vec<i64> {
        value.iter().copied().collect()
    }

    fn known_writer(&self, op: &Op<RegisterInput, RegisterOutput>) -> bool {
        matches!(
            (&op.input, &op.output),
            (RegisterInput::Write { .. }, Some(RegisterOutput::Written))
                | (
                    RegisterInput::Cas { .. },
                    Some(RegisterOutput::Cas { ok: true })
                )
        )
    }

    fn read_name(&self) -> &'static str {
        "read"
    }

    fn describe_value(&self, value: &Option<i64>) -> String {
        value.map_or_else(|| "nil".to_string(), |value| value.to_string())
    }

    fn describe_writer(&self, op: &Op<RegisterInput, RegisterOutput>) -> String {
        match &op.input {
            RegisterInput::Write { value } | RegisterInput::Cas { to: value, .. } => {
                format!("write {value}")
            }
            RegisterInput::Read => "read".to_string(),
        }
    }
}

/// Keys of kv producers: a put by its value, an append by what it appends.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KvKey {
    Put(String),
    Append(String),
}

/// The kv map's reads (one key per part): a producer of v is a put of v or an append of a
/// suffix of v. Holds the lengths of the appended strings, to look suffixes up.
#[derive(Clone, Debug, Default)]
pub struct KvReads {
    append_lengths: BTreeSet<usize>,
}

impl KvReads {
    pub fn new(ops: &[Op<KvInput, KvOutput>]) -> KvReads {
        KvReads {
            append_lengths: ops
                .iter()
                .filter_map(|op| match &op.input {
                    KvInput::Append { value, .. } => Some(value.len()),
                    _ => None,
                })
                .collect(),
        }
    }
}

impl Reads for KvReads {
    type Input = KvInput;
    type Output = KvOutput;
    type Value = String;
    type Key = KvKey;

    fn read_value(&self, op: &Op<KvInput, KvOutput>) -> Option<String> {
        match (&op.input, &op.output) {
            (KvInput::Get { .. }, Some(KvOutput::Got { value })) => Some(value.clone()),
            _ => None,
        }
    }

    fn is_initial(&self, value: &String) -> bool {
        value.is_empty()
    }

    fn producer_key(&self, op: &Op<KvInput, KvOutput>) -> Option<KvKey> {
        match &op.input {
            KvInput::Put { value, .. } => Some(KvKey::Put(value.clone())),
            KvInput::Append { value, .. } => Some(KvKey::Append(value.clone())),
            KvInput::Get { .. } => None,
        }
    }

    fn keys_for(&self, value: &String) -> Vec<KvKey> {
        let suffixes = self
            .append_lengths
            .iter()
            .filter(|&&length| {
                length <= value.len() && value.is_char_boundary(value.len() - length)
            })
            .map(|&length| KvKey::Append(value[value.len() - length..].to_string()));
        std::iter::once(KvKey::Put(value.clone()))
            .chain(suffixes)
            .collect()
    }

    fn known_writer(&self, op: &Op<KvInput, KvOutput>) -> bool {
        matches!(
            (&op.input, &op.output),
            (
                KvInput::Put { .. } | KvInput::Append { .. },
                Some(KvOutput::Done)
            )
        )
    }

    fn read_name(&self) -> &'static str {
        "get"
    }

    fn describe_value(&self, value: &String) -> String {
        format!("{value:?}")
    }

    fn describe_writer(&self, op: &Op<KvInput, KvOutput>) -> String {
        match &op.input {
            KvInput::Put { value, .. } => format!("put({value:?})"),
            KvInput::Append { value, .. } => format!("append({value:?})"),
            KvInput::Get { .. } => "get".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type RegisterOp = Op<RegisterInput, RegisterOutput>;

    fn impossible(ops: &[RegisterOp]) -> Option<Witness> {
        impossible_read(&RegisterReads, ops)
    }

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
        let witness = impossible(&ops).expect("stale read");
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
        assert_eq!(impossible(&concurrent), None);
        let rewritten = [
            write(0, 0, 10, 3),
            write(1, 11, 20, 4),
            write(2, 12, 40, 3),
            read(3, 21, 30, Some(3)),
        ];
        assert_eq!(impossible(&rewritten), None);
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
        assert_eq!(impossible(&late), None);
    }

    #[test]
    fn ghost_and_nil_reads() {
        // Why: a value nobody wrote, or nil after a completed write, is impossible at once.
        let ghost = [write(0, 0, 10, 3), read(1, 5, 6, Some(9))];
        assert_eq!(impossible(&ghost).map(|witness| witness.ops), Some(vec![1]));
        let nil = [write(0, 0, 10, 3), read(1, 11, 12, None)];
        assert_eq!(
            impossible(&nil).map(|witness| witness.ops),
            Some(vec![0, 1])
        );
        let early_nil = [write(0, 0, 10, 3), read(1, 10, 12, None)];
        assert_eq!(impossible(&early_nil), None);
    }

    fn kv(
        index: usize,
        call_us: u64,
        return_us: u64,
        input: KvInput,
        output: KvOutput,
    ) -> Op<KvInput, KvOutput> {
        Op {
            index,
            client: u32::try_from(index).expect("small"),
            call_us,
            return_us,
            input,
            output: Some(output),
        }
    }

    fn put(index: usize, call_us: u64, return_us: u64, value: &str) -> Op<KvInput, KvOutput> {
        let input = KvInput::Put {
            key: "x".to_string(),
            value: value.to_string(),
        };
        kv(index, call_us, return_us, input, KvOutput::Done)
    }

    fn append(index: usize, call_us: u64, return_us: u64, value: &str) -> Op<KvInput, KvOutput> {
        let input = KvInput::Append {
            key: "x".to_string(),
            value: value.to_string(),
        };
        kv(index, call_us, return_us, input, KvOutput::Done)
    }

    fn get(index: usize, call_us: u64, return_us: u64, value: &str) -> Op<KvInput, KvOutput> {
        let input = KvInput::Get {
            key: "x".to_string(),
        };
        let output = KvOutput::Got {
            value: value.to_string(),
        };
        kv(index, call_us, return_us, input, output)
    }

    fn kv_witness(ops: &[Op<KvInput, KvOutput>]) -> Option<Witness> {
        impossible_read(&KvReads::new(ops), ops)
    }

    #[test]
    fn kv_stale_get_names_the_overwrite() {
        // Why: issue 18 asks for kv witnesses like the register's: a get saw a value that a
        // completed put replaced before the get began.
        let ops = [put(0, 0, 10, "a"), put(1, 11, 20, "b"), get(2, 21, 30, "a")];
        let witness = kv_witness(&ops).expect("stale get");
        assert_eq!(witness.ops, vec![0, 1, 2]);
        assert_eq!(
            witness.rule,
            "get #2 returned \"a\", but put(\"a\") (#0) was overwritten by put(\"b\") (#1), \
             which completed before the get was invoked"
        );
    }

    #[test]
    fn kv_appends_produce_their_suffixes() {
        // Why: an append produces every value ending with what it appends: "ab" is possible
        // when an append("b") overlaps the get, stale when the only one was overwritten before
        // the get began; "" after a put is impossible unless a put("") could come between.
        let possible = [
            put(0, 0, 10, "a"),
            put(1, 11, 20, "c"),
            put(2, 21, 22, "a"),
            append(3, 23, 40, "b"),
            get(4, 30, 41, "ab"),
        ];
        assert_eq!(kv_witness(&possible), None);
        let stale = [
            put(0, 0, 10, "a"),
            append(1, 11, 12, "b"),
            put(2, 13, 20, "c"),
            get(3, 30, 41, "ab"),
        ];
        assert_eq!(
            kv_witness(&stale).map(|witness| witness.ops),
            Some(vec![1, 2, 3])
        );
        let emptied = [put(0, 0, 10, "a"), get(1, 11, 12, "")];
        let witness = kv_witness(&emptied).expect("nothing writes \"\"");
        assert!(
            witness.rule.contains("nothing writes \"\""),
            "{}",
            witness.rule
        );
        let rewritten = [put(0, 0, 10, "a"), put(1, 5, 20, ""), get(2, 21, 22, "")];
        assert_eq!(kv_witness(&rewritten), None);
        let ghost = [put(0, 0, 10, "a"), get(1, 11, 12, "zz")];
        assert_eq!(kv_witness(&ghost).map(|witness| witness.ops), Some(vec![1]));
    }
}
