//! Random small histories of every model, for the differential test against the reference
//! checker (`reference`): a handful of operations on a coarse time grid (so that intervals often
//! touch or nest), repeated values, `Fail` and `Unknown` outcomes, and calls of one client that
//! overlap (a producer with several sends in flight). Each history starts from a linearization
//! (outputs computed at linearization points), then about half of them get one output or one
//! time changed, so both verdicts are common.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::models::kv::{KvInput, KvOutput};
use super::models::register::{RegisterInput, RegisterOutput};
use super::records::{Record, RecordOutcome};
use crate::history::{OpInput, OpOutcome, Operation};

/// Shape of the small histories.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SmallOptions {
    /// Operations per history: 1..=ops_max.
    pub ops_max: usize,
    pub clients: u32,
    /// Register values (and kv values) are drawn from 0..values.
    pub values: i64,
    pub unknown_ppm: u32,
    pub fail_ppm: u32,
    /// Share of histories with one output or time changed after generation.
    pub mutate_ppm: u32,
}

impl Default for SmallOptions {
    fn default() -> SmallOptions {
        SmallOptions {
            ops_max: 8,
            clients: 3,
            values: 3,
            unknown_ppm: 150_000,
            fail_ppm: 80_000,
            mutate_ppm: 500_000,
        }
    }
}

const TIME_US_MAX: u64 = 16;
const DURATION_US_MAX: u64 = 8;
/// How long after its call an unknown operation may still take effect.
const LATE_US_MAX: u64 = 24;

/// How an operation ends, before its output is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Ok,
    Fail,
    Unknown { applied: bool },
}

#[derive(Clone, Copy, Debug)]
struct SmallSlot {
    client: u32,
    call_us: u64,
    return_us: u64,
    point_us: u64,
    end: End,
}

impl SmallSlot {
    fn applied(&self) -> bool {
        matches!(self.end, End::Ok | End::Unknown { applied: true })
    }
}

fn ppm(rng: &mut ChaCha8Rng, share_ppm: u32) -> bool {
    rng.gen_range(0..1_000_000) < share_ppm
}

/// Random timings, in linearization-point order (ties broken by position, so the order is
/// fixed by the seed).
fn small_slots(options: &SmallOptions, rng: &mut ChaCha8Rng) -> Vec<(usize, SmallSlot)> {
    let count = rng.gen_range(1..=options.ops_max.max(1));
    let mut slots: Vec<(usize, SmallSlot)> = (0..count)
        .map(|position| {
            let call_us = rng.gen_range(0..=TIME_US_MAX);
            let return_us = call_us + rng.gen_range(0..=DURATION_US_MAX);
            let end = if ppm(rng, options.unknown_ppm) {
                End::Unknown {
                    applied: rng.gen_bool(0.5),
                }
            } else if ppm(rng, options.fail_ppm) {
                End::Fail
            } else {
                End::Ok
            };
            let point_us = match end {
                End::Unknown { .. } => call_us + rng.gen_range(0..=LATE_US_MAX),
                End::Ok | End::Fail => rng.gen_range(call_us..=return_us),
            };
            let slot = SmallSlot {
                client: rng.gen_range(0..options.clients.max(1)),
                call_us,
                return_us,
                point_us,
                end,
            };
            (position, slot)
        })
        .collect();
    slots.sort_by_key(|(position, slot)| (slot.point_us, *position));
    slots
}

fn outcome_of<O>(end: End, output: O) -> RecordOutcome<O> {
    match end {
        End::Ok => RecordOutcome::Ok(output),
        End::Fail => RecordOutcome::Fail,
        End::Unknown { .. } => RecordOutcome::Unknown,
    }
}

fn record<I, O>(slot: &SmallSlot, input: I, output: O) -> Record<I, O> {
    Record {
        client: slot.client,
        input,
        invoke_us: slot.call_us,
        complete_us: slot.return_us,
        outcome: outcome_of(slot.end, output),
    }
}

/// Puts records back in position order (they were built in linearization-point order).
fn by_position<T>(mut built: Vec<(usize, T)>) -> Vec<T> {
    built.sort_by_key(|(position, _)| *position);
    built.into_iter().map(|(_, item)| item).collect()
}

/// Moves one operation's interval: a changed time can break (or keep) linearizability.
fn shift_time<I, O>(records: &mut [Record<I, O>], rng: &mut ChaCha8Rng) {
    let position = rng.gen_range(0..records.len());
    let record = &mut records[position];
    let duration = record.complete_us - record.invoke_us;
    record.invoke_us = rng.gen_range(0..=TIME_US_MAX);
    record.complete_us = record.invoke_us + duration;
}

/// A small cas-register history with values 0..options.values.
pub fn small_register(
    seed: u64,
    options: &SmallOptions,
) -> Vec<Record<RegisterInput, RegisterOutput>> {
    register_records(seed, options, false)
}

/// A small cas-register history whose written values are unique (1, 2, …; a cas expects a value
/// written so far, or 0, which nothing writes), as `register_unique` decides.
pub fn small_register_unique(
    seed: u64,
    options: &SmallOptions,
) -> Vec<Record<RegisterInput, RegisterOutput>> {
    register_records(seed, options, true)
}

fn register_records(
    seed: u64,
    options: &SmallOptions,
    unique: bool,
) -> Vec<Record<RegisterInput, RegisterOutput>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut values = options.values.max(1);
    let mut written = 0;
    // The next value to write: fresh when unique, else drawn from 0..values.
    let draw = |rng: &mut ChaCha8Rng, written: &mut i64| {
        if unique {
            *written += 1;
            *written
        } else {
            rng.gen_range(0..values)
        }
    };
    let mut state: Option<i64> = None;
    let mut built = Vec::new();
    for (position, slot) in small_slots(options, &mut rng) {
        let (input, output) = match rng.gen_range(0..3) {
            0 => (RegisterInput::Read, RegisterOutput::Read { value: state }),
            1 => {
                let value = draw(&mut rng, &mut written);
                if slot.applied() {
                    state = Some(value);
                }
                (RegisterInput::Write { value }, RegisterOutput::Written)
            }
            _ => {
                let from = match state {
                    Some(held) if unique && rng.gen_bool(0.5) => held,
                    _ if unique => rng.gen_range(0..=written),
                    _ => rng.gen_range(0..values),
                };
                let to = draw(&mut rng, &mut written);
                let holds = state == Some(from);
                if slot.applied() && holds {
                    state = Some(to);
                }
                (
                    RegisterInput::Cas { from, to },
                    RegisterOutput::Cas { ok: holds },
                )
            }
        };
        built.push((position, record(&slot, input, output)));
    }
    if unique {
        // Values a read may be changed to: every value written, and one nobody wrote.
        values = written + 2;
    }
    let mut records = by_position(built);
    mutate_one(
        &mut records,
        &mut rng,
        options,
        |output| {
            matches!(
                output,
                RegisterOutput::Read { .. } | RegisterOutput::Cas { .. }
            )
        },
        |output, rng| match output {
            RegisterOutput::Read { value } => {
                let drawn = rng.gen_range(-1..values);
                *value = (drawn >= 0).then_some(drawn);
            }
            RegisterOutput::Cas { ok } => *ok = !*ok,
            RegisterOutput::Written => {}
        },
    );
    records
}

/// A small kv history over keys "x" and "y", values from a few letters (repeated).
pub fn small_kv(seed: u64, options: &SmallOptions) -> Vec<Record<KvInput, KvOutput>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let letters = ["a", "b", "c", "d"];
    let letter_count = usize::try_from(options.values.clamp(1, 4)).expect("1..=4 fits");
    let mut state = [String::new(), String::new()];
    let mut built = Vec::new();
    for (position, slot) in small_slots(options, &mut rng) {
        let key_index = rng.gen_range(0..2);
        let key = ["x", "y"][key_index].to_string();
        let value = letters[rng.gen_range(0..letter_count)].to_string();
        let (input, output) = match rng.gen_range(0..3) {
            0 => {
                let value = state[key_index].clone();
                (KvInput::Get { key }, KvOutput::Got { value })
            }
            1 => {
                if slot.applied() {
                    state[key_index] = value.clone();
                }
                (KvInput::Put { key, value }, KvOutput::Done)
            }
            _ => {
                if slot.applied() {
                    state[key_index].push_str(&value);
                }
                (KvInput::Append { key, value }, KvOutput::Done)
            }
        };
        built.push((position, record(&slot, input, output)));
    }
    let mut records = by_position(built);
    mutate_one(
        &mut records,
        &mut rng,
        options,
        |output| matches!(output, KvOutput::Got { .. }),
        |output, rng| {
            if let KvOutput::Got { value } = output {
                let drawn = letters[rng.gen_range(0..letter_count)];
                if rng.gen_bool(0.5) || value.is_empty() {
                    value.push_str(drawn);
                } else {
                    value.pop();
                }
            }
        },
    );
    records
}

/// With chance `options.mutate_ppm`, breaks the history: three times in ten by shifting one
/// operation in time, else by `mutate` on the output of one operation whose output `observed`
/// accepts (none when there is no such operation).
fn mutate_one<I, O>(
    records: &mut [Record<I, O>],
    rng: &mut ChaCha8Rng,
    options: &SmallOptions,
    observed: impl Fn(&O) -> bool,
    mutate: impl FnOnce(&mut O, &mut ChaCha8Rng),
) {
    if !ppm(rng, options.mutate_ppm) {
        return;
    }
    if rng.gen_bool(0.3) {
        shift_time(records, rng);
        return;
    }
    let candidates: Vec<usize> = (0..records.len())
        .filter(|&position| {
            matches!(&records[position].outcome, RecordOutcome::Ok(output) if observed(output))
        })
        .collect();
    let position = candidates
        .get(rng.gen_range(0..candidates.len().max(1)))
        .copied();
    if let Some(RecordOutcome::Ok(output)) = position.map(|position| &mut records[position].outcome)
    {
        mutate(output, rng);
    }
}

/// A small log history over one or two queues; bodies are unique. Sends of one client may be in
/// flight together (clients are drawn per operation, not serialised).
pub fn small_log(seed: u64, options: &SmallOptions) -> Vec<Operation> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let queue_count = rng.gen_range(1..=2);
    let mut logs: Vec<Vec<String>> = vec![Vec::new(); queue_count];
    let mut built = Vec::new();
    for (position, slot) in small_slots(options, &mut rng) {
        let queue_index = rng.gen_range(0..queue_count);
        let queue = format!("q{queue_index}");
        let log = &mut logs[queue_index];
        let (input, outcome) = if rng.gen_bool(0.5) {
            let body = format!("b{position}");
            let offset = log.len() as u64;
            if slot.applied() {
                log.push(body.clone());
            }
            (OpInput::Send { queue, body }, OpOutcome::Sent { offset })
        } else {
            let offset = rng.gen_range(0..=2u64);
            let max = rng.gen_range(1..=3u32);
            let start = usize::try_from(offset).expect("small").min(log.len());
            let end = (start + max as usize).min(log.len());
            let bodies = log[start..end].to_vec();
            let input = OpInput::Pull { queue, offset, max };
            (input, OpOutcome::Pulled { bodies })
        };
        let outcome = match slot.end {
            End::Ok => outcome,
            End::Fail => OpOutcome::Fail,
            End::Unknown { .. } => OpOutcome::Unknown,
        };
        let operation = Operation {
            client: slot.client,
            input,
            invoke_us: slot.call_us,
            complete_us: slot.return_us,
            outcome,
        };
        built.push((position, operation));
    }
    let mut history = by_position(built);
    if ppm(&mut rng, options.mutate_ppm) {
        let position = rng.gen_range(0..history.len());
        let operation = &mut history[position];
        match &mut operation.outcome {
            OpOutcome::Sent { offset } => {
                *offset = if *offset > 0 && rng.gen_bool(0.5) {
                    *offset - 1
                } else {
                    *offset + 1
                };
            }
            OpOutcome::Pulled { bodies } => {
                if bodies.is_empty() || rng.gen_bool(0.5) {
                    bodies.push(format!("b{}", rng.gen_range(0..options.ops_max)));
                } else {
                    bodies.pop();
                }
            }
            OpOutcome::Fail | OpOutcome::Unknown => {
                let duration = operation.complete_us - operation.invoke_us;
                operation.invoke_us = rng.gen_range(0..=TIME_US_MAX);
                operation.complete_us = operation.invoke_us + duration;
            }
        }
    }
    history
}
