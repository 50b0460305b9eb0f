//! Generated histories with known verdicts, for tests and benchmarks.
//!
//! Each client runs operations one after another; every operation gets a call time, a return
//! time and a linearization point between them. Operations are applied to the sequential model in
//! linearization-point order, which decides their outputs: the history is linearizable by
//! construction. Optionally a share of outcomes is made `Unknown` (an unknown send still applies,
//! or not, possibly after the client gave up), and one response is changed so that no
//! linearization exists ("planted" violation).

use std::collections::{BTreeMap, BTreeSet};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::model::{Op, NEVER_RETURNED_US};
use super::models::kv::{KvInput, KvOutput};
use super::models::register::{RegisterInput, RegisterOutput};
use super::settle::FinalLogs;
use crate::history::{OpInput, OpOutcome, Operation};

/// Which response to change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plant {
    /// A read returns a value nobody wrote.
    Ghost,
    /// A read misses a value that was acknowledged before the read was called (falls back to
    /// `Ghost` when the history has no such read).
    Stale,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenOptions {
    pub ops: usize,
    pub clients: u32,
    /// Queues (log) or keys (kv); the register has one part.
    pub parts: u32,
    /// Share of operations whose outcome is `Unknown`, in parts per million.
    pub unknown_ppm: u32,
    pub plant: Option<Plant>,
    pub seed: u64,
}

impl Default for GenOptions {
    fn default() -> GenOptions {
        GenOptions {
            ops: 1_000,
            clients: 8,
            parts: 1,
            unknown_ppm: 0,
            plant: None,
            seed: 1,
        }
    }
}

/// A generated log history.
#[derive(Clone, Debug)]
pub struct GeneratedLog {
    pub history: Vec<Operation>,
    pub final_logs: FinalLogs,
    /// Index of the operation whose response was changed.
    pub planted: Option<usize>,
}

/// A generated register or kv history.
#[derive(Clone, Debug)]
pub struct GeneratedOps<I, O> {
    pub ops: Vec<Op<I, O>>,
    pub planted: Option<usize>,
}

/// One operation's timing before its input is chosen.
#[derive(Clone, Copy, Debug)]
struct Slot {
    client: u32,
    call_us: u64,
    return_us: u64,
    /// Linearization point; for an unknown operation possibly after `return_us`.
    point_us: u64,
    unknown: bool,
}

const DURATION_US_MAX: u64 = 200;
const GAP_US_MAX: u64 = 30;
const PULL_MAX: u32 = 8;

/// Timings for `options.ops` operations, in linearization-point order.
fn slots(options: &GenOptions, rng: &mut ChaCha8Rng) -> Vec<Slot> {
    let clients = options.clients.max(1);
    let mut next_call: Vec<u64> = (0..clients).map(|_| rng.gen_range(0..50)).collect();
    let mut slots = Vec::with_capacity(options.ops);
    for _ in 0..options.ops {
        // The client whose next call comes first (ties: lowest number).
        let client = (0..clients)
            .min_by_key(|&client| (next_call[client as usize], client))
            .expect("at least one client");
        let call_us = next_call[client as usize];
        let duration = rng.gen_range(1..=DURATION_US_MAX);
        let return_us = call_us + duration;
        let unknown = rng.gen_range(0..1_000_000) < options.unknown_ppm;
        let point_us = if unknown {
            call_us + rng.gen_range(0..=3 * duration)
        } else {
            call_us + rng.gen_range(0..=duration)
        };
        slots.push(Slot {
            client,
            call_us,
            return_us,
            point_us,
            unknown,
        });
        next_call[client as usize] = return_us + rng.gen_range(1..=GAP_US_MAX);
    }
    slots.sort_by_key(|slot| (slot.point_us, slot.call_us, slot.client));
    slots
}

/// A linearizable log history over `options.parts` queues, plus the final logs.
pub fn log_history(options: &GenOptions) -> GeneratedLog {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let queues: Vec<String> = (0..options.parts.max(1))
        .map(|queue| format!("q{queue}"))
        .collect();
    let mut logs: Vec<Vec<String>> = vec![Vec::new(); queues.len()];
    // Per client and queue: the offset to pull from next.
    let mut cursors: BTreeMap<(u32, usize), u64> = BTreeMap::new();
    let mut sent = 0u64;
    let mut history = Vec::with_capacity(options.ops);
    for slot in slots(options, &mut rng) {
        let queue = rng.gen_range(0..queues.len());
        let log = &mut logs[queue];
        let (input, outcome) = if rng.gen_bool(0.5) {
            sent += 1;
            let body = format!("c{}-{sent}", slot.client);
            let applied = !slot.unknown || rng.gen_bool(0.5);
            let offset = log.len() as u64;
            if applied {
                log.push(body.clone());
            }
            let outcome = if slot.unknown {
                OpOutcome::Unknown
            } else {
                OpOutcome::Sent { offset }
            };
            (
                OpInput::Send {
                    queue: queues[queue].clone(),
                    body,
                },
                outcome,
            )
        } else {
            let cursor = cursors.entry((slot.client, queue)).or_insert(0);
            let offset = if rng.gen_bool(0.1) {
                rng.gen_range(0..=log.len() as u64)
            } else {
                *cursor
            };
            let max = rng.gen_range(1..=PULL_MAX);
            let end = (offset + u64::from(max)).min(log.len() as u64).max(offset);
            let bodies: Vec<String> = log[offset as usize..end as usize].to_vec();
            *cursor = end;
            let outcome = if slot.unknown {
                OpOutcome::Unknown
            } else {
                OpOutcome::Pulled { bodies }
            };
            (
                OpInput::Pull {
                    queue: queues[queue].clone(),
                    offset,
                    max,
                },
                outcome,
            )
        };
        history.push(Operation {
            client: slot.client,
            input,
            invoke_us: slot.call_us,
            complete_us: slot.return_us,
            outcome,
        });
    }
    // Recorded in completion order, as the runner does.
    history.sort_by_key(|operation| (operation.complete_us, operation.client));
    let planted = options
        .plant
        .map(|plant| plant_log(&mut history, plant, &mut rng));
    let final_logs = queues.into_iter().zip(logs).collect();
    GeneratedLog {
        history,
        final_logs,
        planted,
    }
}

fn plant_log(history: &mut [Operation], plant: Plant, rng: &mut ChaCha8Rng) -> usize {
    if plant == Plant::Stale {
        // Acknowledgement time of each acknowledged body.
        let acked: BTreeMap<&str, u64> = history
            .iter()
            .filter_map(|operation| match (&operation.input, &operation.outcome) {
                (OpInput::Send { body, .. }, OpOutcome::Sent { .. }) => {
                    Some((body.as_str(), operation.complete_us))
                }
                _ => None,
            })
            .collect();
        let candidates: Vec<usize> = history
            .iter()
            .enumerate()
            .filter(|(_, operation)| match &operation.outcome {
                OpOutcome::Pulled { bodies } => bodies.last().is_some_and(|body| {
                    acked
                        .get(body.as_str())
                        .is_some_and(|&acked_us| acked_us < operation.invoke_us)
                }),
                _ => false,
            })
            .map(|(index, _)| index)
            .collect();
        if !candidates.is_empty() {
            let index = candidates[rng.gen_range(0..candidates.len())];
            if let OpOutcome::Pulled { bodies } = &mut history[index].outcome {
                bodies.pop();
            }
            return index;
        }
    }
    let candidates: Vec<usize> = history
        .iter()
        .enumerate()
        .filter(|(_, operation)| matches!(operation.outcome, OpOutcome::Pulled { .. }))
        .map(|(index, _)| index)
        .collect();
    assert!(!candidates.is_empty(), "a planted history needs a pull");
    let index = candidates[rng.gen_range(0..candidates.len())];
    if let OpOutcome::Pulled { bodies } = &mut history[index].outcome {
        match bodies.last_mut() {
            Some(last) => *last = "ghost".to_string(),
            None => bodies.push("ghost".to_string()),
        }
    }
    index
}

/// A linearizable cas-register history (one part). Written values are unique and positive.
pub fn register_history(options: &GenOptions) -> GeneratedOps<RegisterInput, RegisterOutput> {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let mut value: Option<i64> = None;
    let mut written: i64 = 0;
    let mut ops = Vec::with_capacity(options.ops);
    // For stale reads: (value, op that wrote it, op that overwrote it), by position in `ops`.
    let mut writer_of: BTreeMap<i64, usize> = BTreeMap::new();
    let mut overwrites: Vec<(i64, usize, usize)> = Vec::new();
    for slot in slots(options, &mut rng) {
        let choice = rng.gen_range(0..10);
        let (input, output) = if choice < 4 {
            (RegisterInput::Read, RegisterOutput::Read { value })
        } else {
            written += 1;
            let applied = !slot.unknown || rng.gen_bool(0.5);
            let (input, takes, output) = if choice < 7 {
                let input = RegisterInput::Write { value: written };
                (input, true, RegisterOutput::Written)
            } else {
                let from = match value {
                    Some(current) if rng.gen_bool(0.6) => current,
                    _ => rng.gen_range(0..=written),
                };
                let holds = value == Some(from);
                let input = RegisterInput::Cas { from, to: written };
                (input, holds, RegisterOutput::Cas { ok: holds })
            };
            if applied && takes {
                if let Some(old) = value {
                    if let Some(&writer) = writer_of.get(&old) {
                        if !slot.unknown {
                            overwrites.push((old, writer, ops.len()));
                        }
                    }
                }
                value = Some(written);
                if !slot.unknown {
                    writer_of.insert(written, ops.len());
                }
            }
            (input, output)
        };
        ops.push(slot_op(&slot, ops.len(), input, output));
    }
    let planted = options.plant.map(|plant| {
        let stale = (plant == Plant::Stale)
            .then(|| stale_register_read(&ops, &overwrites, &mut rng))
            .flatten();
        let (position, value) = stale.unwrap_or_else(|| {
            let reads: Vec<usize> = (0..ops.len())
                .filter(|&position| {
                    matches!(ops[position].output, Some(RegisterOutput::Read { .. }))
                })
                .collect();
            assert!(!reads.is_empty(), "a planted history needs a read");
            (reads[rng.gen_range(0..reads.len())], -1)
        });
        ops[position].output = Some(RegisterOutput::Read { value: Some(value) });
        position
    });
    GeneratedOps { ops, planted }
}

/// A read that could only have seen a value overwritten before it was called: the value's writer
/// returned before the overwriter was called, which returned before the read was called.
fn stale_register_read(
    ops: &[Op<RegisterInput, RegisterOutput>],
    overwrites: &[(i64, usize, usize)],
    rng: &mut ChaCha8Rng,
) -> Option<(usize, i64)> {
    let mut candidates = Vec::new();
    for &(value, writer, overwriter) in overwrites {
        if ops[writer].return_us >= ops[overwriter].call_us {
            continue;
        }
        let after = ops[overwriter].return_us;
        let read = ops.iter().position(|op| {
            op.call_us > after && matches!(op.output, Some(RegisterOutput::Read { .. }))
        });
        if let Some(read) = read {
            candidates.push((read, value));
        }
        if candidates.len() >= 64 {
            break;
        }
    }
    (!candidates.is_empty()).then(|| candidates[rng.gen_range(0..candidates.len())])
}

/// A linearizable kv history over `options.parts` keys (get, put, append; unique values).
pub fn kv_history(options: &GenOptions) -> GeneratedOps<KvInput, KvOutput> {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let keys: Vec<String> = (0..options.parts.max(1))
        .map(|key| format!("k{key}"))
        .collect();
    let mut values: Vec<String> = vec![String::new(); keys.len()];
    let mut written = 0u64;
    let mut ops = Vec::with_capacity(options.ops);
    for slot in slots(options, &mut rng) {
        let key_index = rng.gen_range(0..keys.len());
        let key = keys[key_index].clone();
        let choice = rng.gen_range(0..10);
        let (input, output) = if choice < 4 {
            let output = KvOutput::Got {
                value: values[key_index].clone(),
            };
            (KvInput::Get { key }, output)
        } else {
            written += 1;
            let applied = !slot.unknown || rng.gen_bool(0.5);
            let input = if choice < 7 {
                let value = format!("v{written}");
                if applied {
                    values[key_index] = value.clone();
                }
                KvInput::Put { key, value }
            } else {
                let value = format!("a{written};");
                if applied {
                    values[key_index].push_str(&value);
                }
                KvInput::Append { key, value }
            };
            (input, KvOutput::Done)
        };
        ops.push(slot_op(&slot, ops.len(), input, output));
    }
    let planted = options.plant.map(|_| {
        let gets: Vec<usize> = (0..ops.len())
            .filter(|&position| matches!(ops[position].output, Some(KvOutput::Got { .. })))
            .collect();
        assert!(!gets.is_empty(), "a planted history needs a get");
        let position = gets[rng.gen_range(0..gets.len())];
        ops[position].output = Some(KvOutput::Got {
            value: "ghost".to_string(),
        });
        position
    });
    GeneratedOps { ops, planted }
}

/// A linearizable kv history over `options.parts` keys whose values repeat: puts of one of
/// `values` letters, appends of one letter (so a value is a short run of letters), gets; unknown
/// operations take effect (or not, half each), possibly after the client gave up.
/// `Plant::Ghost` makes a get return "ghost"; `Plant::Stale` makes a get return a value the key
/// held before but that was overwritten before the get was called (see `plant_stale_kv`; falls
/// back to a ghost).
pub fn kv_history_values(options: &GenOptions, values: usize) -> GeneratedOps<KvInput, KvOutput> {
    const LETTERS: [&str; 8] = ["a", "b", "c", "d", "e", "f", "g", "h"];
    let letters = &LETTERS[..values.clamp(1, LETTERS.len())];
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let keys: Vec<String> = (0..options.parts.max(1))
        .map(|key| format!("k{key}"))
        .collect();
    let mut state: Vec<String> = vec![String::new(); keys.len()];
    let mut ops = Vec::with_capacity(options.ops);
    for slot in slots(options, &mut rng) {
        let key_index = rng.gen_range(0..keys.len());
        let key = keys[key_index].clone();
        let letter = letters[rng.gen_range(0..letters.len())].to_string();
        let applied = !slot.unknown || rng.gen_bool(0.5);
        let (input, output) = match rng.gen_range(0..10) {
            0..=3 => {
                let value = state[key_index].clone();
                (KvInput::Get { key }, KvOutput::Got { value })
            }
            4..=7 => {
                if applied {
                    state[key_index] = letter.clone();
                }
                (KvInput::Put { key, value: letter }, KvOutput::Done)
            }
            _ => {
                if applied {
                    state[key_index].push_str(&letter);
                }
                (KvInput::Append { key, value: letter }, KvOutput::Done)
            }
        };
        ops.push(slot_op(&slot, ops.len(), input, output));
    }
    ops.sort_by_key(|op| (op.call_us, op.client));
    for (index, op) in ops.iter_mut().enumerate() {
        op.index = index;
    }
    let planted = options.plant.map(|plant| {
        let stale = (plant == Plant::Stale)
            .then(|| plant_stale_kv(&ops, &mut rng))
            .flatten();
        let (position, value) = stale.unwrap_or_else(|| {
            let gets: Vec<usize> = (0..ops.len())
                .filter(|&position| matches!(ops[position].output, Some(KvOutput::Got { .. })))
                .collect();
            assert!(!gets.is_empty(), "a planted history needs a get");
            (gets[rng.gen_range(0..gets.len())], "ghost".to_string())
        });
        ops[position].output = Some(KvOutput::Got { value });
        position
    });
    GeneratedOps { ops, planted }
}

/// A get and a value of its key it cannot have seen, whatever the linearization: every
/// operation that might produce the value (a put of it, an append of a suffix of it) and might
/// precede the get returned before some known put or append of the key was called, which
/// returned before the get was called. The value is one some get of the key saw earlier.
fn plant_stale_kv(ops: &[Op<KvInput, KvOutput>], rng: &mut ChaCha8Rng) -> Option<(usize, String)> {
    let gets: Vec<usize> = (0..ops.len())
        .filter(|&position| matches!(ops[position].output, Some(KvOutput::Got { .. })))
        .collect();
    if gets.is_empty() {
        return None;
    }
    let start = rng.gen_range(0..gets.len());
    for &get in gets.iter().cycle().skip(start).take(STALE_TRIES_MAX) {
        let (key, call_us, return_us) =
            (ops[get].input.key(), ops[get].call_us, ops[get].return_us);
        let same_key = |op: &&Op<KvInput, KvOutput>| op.input.key() == key;
        let seen: BTreeSet<&str> = ops
            .iter()
            .filter(same_key)
            .filter(|op| op.return_us < call_us)
            .filter_map(|op| match &op.output {
                Some(KvOutput::Got { value }) if !value.is_empty() => Some(value.as_str()),
                _ => None,
            })
            .collect();
        for value in seen {
            let producers: Vec<&Op<KvInput, KvOutput>> = ops
                .iter()
                .filter(same_key)
                .filter(|op| op.call_us <= return_us)
                .filter(|op| match &op.input {
                    KvInput::Put { value: put, .. } => put == value,
                    KvInput::Append {
                        value: appended, ..
                    } => value.ends_with(appended.as_str()),
                    KvInput::Get { .. } => false,
                })
                .collect();
            if producers.is_empty() || producers.iter().any(|op| op.output.is_none()) {
                continue;
            }
            let latest_us = producers.iter().map(|op| op.return_us).max().unwrap_or(0);
            let overwritten = ops.iter().filter(same_key).any(|op| {
                matches!(op.output, Some(KvOutput::Done))
                    && op.call_us > latest_us
                    && op.return_us < call_us
            });
            if overwritten {
                return Some((get, value.to_string()));
            }
        }
    }
    None
}

/// A linearizable cas-register history whose written values repeat: every write and cas target
/// is drawn from `0..values` (Jepsen's etcd test uses 0–4). Unknown operations take effect (or
/// not, half each) possibly after the client gave up. `Plant::Ghost` makes a read return -1;
/// `Plant::Stale` makes a read return a value that was overwritten before it was called (see
/// `plant_stale_repeated`; falls back to a ghost).
pub fn register_history_values(
    options: &GenOptions,
    values: i64,
) -> GeneratedOps<RegisterInput, RegisterOutput> {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let values = values.max(1);
    let mut value: Option<i64> = None;
    let mut ops = Vec::with_capacity(options.ops);
    for slot in slots(options, &mut rng) {
        let choice = rng.gen_range(0..10);
        let applied = !slot.unknown || rng.gen_bool(0.5);
        let (input, output) = if choice < 4 {
            (RegisterInput::Read, RegisterOutput::Read { value })
        } else if choice < 7 {
            let written = rng.gen_range(0..values);
            if applied {
                value = Some(written);
            }
            (
                RegisterInput::Write { value: written },
                RegisterOutput::Written,
            )
        } else {
            let from = match value {
                Some(current) if rng.gen_bool(0.5) => current,
                _ => rng.gen_range(0..values),
            };
            let to = rng.gen_range(0..values);
            let holds = value == Some(from);
            if applied && holds {
                value = Some(to);
            }
            (
                RegisterInput::Cas { from, to },
                RegisterOutput::Cas { ok: holds },
            )
        };
        ops.push(slot_op(&slot, ops.len(), input, output));
    }
    // Back in call order, as a recorded history would be.
    ops.sort_by_key(|op| (op.call_us, op.client));
    for (index, op) in ops.iter_mut().enumerate() {
        op.index = index;
    }
    let planted = options.plant.map(|plant| {
        let stale = (plant == Plant::Stale)
            .then(|| plant_stale_repeated(&ops, values, &mut rng))
            .flatten();
        let (position, planted_value) = stale.unwrap_or_else(|| {
            let reads: Vec<usize> = (0..ops.len())
                .filter(|&position| {
                    matches!(ops[position].output, Some(RegisterOutput::Read { .. }))
                })
                .collect();
            assert!(!reads.is_empty(), "a planted history needs a read");
            (reads[rng.gen_range(0..reads.len())], -1)
        });
        ops[position].output = Some(RegisterOutput::Read {
            value: Some(planted_value),
        });
        position
    });
    GeneratedOps { ops, planted }
}

/// Reads tried when planting a stale read into a repeated-value history.
const STALE_TRIES_MAX: usize = 400;

/// The value a register op writes when it takes effect and its outcome is known to be that it
/// wrote (an `ok` write or an `ok` cas).
fn known_written(op: &Op<RegisterInput, RegisterOutput>) -> Option<i64> {
    match (&op.input, &op.output) {
        (RegisterInput::Write { value }, Some(RegisterOutput::Written)) => Some(*value),
        (RegisterInput::Cas { to, .. }, Some(RegisterOutput::Cas { ok: true })) => Some(*to),
        _ => None,
    }
}

/// Could `op` write `value` (whatever its outcome)?
fn may_write(op: &Op<RegisterInput, RegisterOutput>, value: i64) -> bool {
    match (&op.input, &op.output) {
        (RegisterInput::Write { value: written }, _) => *written == value,
        (RegisterInput::Cas { to, .. }, None | Some(RegisterOutput::Cas { ok: true })) => {
            *to == value
        }
        _ => false,
    }
}

/// A read and a value it cannot have seen, whatever the linearization: every operation that
/// might write the value and might precede the read (called before the read returned) returned
/// before some known write of another value was called, which returned before the read was
/// called. After that write's point nothing can write the value again before the read.
fn plant_stale_repeated(
    ops: &[Op<RegisterInput, RegisterOutput>],
    values: i64,
    rng: &mut ChaCha8Rng,
) -> Option<(usize, i64)> {
    let reads: Vec<usize> = (0..ops.len())
        .filter(|&position| matches!(ops[position].output, Some(RegisterOutput::Read { .. })))
        .collect();
    if reads.is_empty() {
        return None;
    }
    let start = rng.gen_range(0..reads.len());
    for &read in reads.iter().cycle().skip(start).take(STALE_TRIES_MAX) {
        let (call_us, return_us) = (ops[read].call_us, ops[read].return_us);
        for value in 0..values {
            let writers: Vec<&Op<RegisterInput, RegisterOutput>> = ops
                .iter()
                .filter(|op| op.call_us <= return_us && may_write(op, value))
                .collect();
            if writers.is_empty() || writers.iter().any(|op| op.output.is_none()) {
                continue;
            }
            let latest_us = writers.iter().map(|op| op.return_us).max().unwrap_or(0);
            let overwritten = ops.iter().any(|op| {
                known_written(op).is_some_and(|written| written != value)
                    && op.call_us > latest_us
                    && op.return_us < call_us
            });
            if overwritten {
                return Some((read, value));
            }
        }
    }
    None
}

/// The operation a slot becomes: an unknown slot never returns and has no output.
fn slot_op<I, O>(slot: &Slot, index: usize, input: I, output: O) -> Op<I, O> {
    Op {
        index,
        client: slot.client,
        call_us: slot.call_us,
        return_us: if slot.unknown {
            NEVER_RETURNED_US
        } else {
            slot.return_us
        },
        input,
        output: (!slot.unknown).then_some(output),
    }
}
