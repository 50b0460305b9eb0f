//! Log histories as `sim check-history` meets them: no final logs, unknown sends that landed
//! late (seconds after the client gave up) or never, consumers that read every queue to its
//! end, and optionally one planted anomaly of a named kind. Built from a real linearization:
//! every operation takes effect at one point (inside its interval; an unknown send possibly long
//! after it), applied to the sequential log in point order, which decides every output.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::history::{OpInput, OpOutcome, Operation};

/// One anomaly a broker may show, planted into an otherwise linearizable history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogAnomaly {
    /// A pull returns fewer entries than sends acknowledged before it was invoked guarantee.
    ShortPull,
    /// A pull returns a message whose send was invoked only after the pull completed.
    FutureRead,
    /// A later pull sees a shorter log than an earlier one, where an unknown send filled the gap.
    ShorterLaterPull,
    /// One body at two offsets.
    BodyAtTwoOffsets,
    /// Two acknowledged sends whose offsets contradict their real-time order.
    AckOrder,
    /// A pull returns a send the broker refused.
    RefusedRead,
}

impl LogAnomaly {
    pub const ALL: [LogAnomaly; 6] = [
        LogAnomaly::ShortPull,
        LogAnomaly::FutureRead,
        LogAnomaly::ShorterLaterPull,
        LogAnomaly::BodyAtTwoOffsets,
        LogAnomaly::AckOrder,
        LogAnomaly::RefusedRead,
    ];
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LateLogOptions {
    pub ops: usize,
    pub clients: u32,
    pub queues: u32,
    /// Share of sends whose outcome is unknown, in parts per million.
    pub unknown_ppm: u32,
    /// An unknown send lands up to this long after its call (or, with one chance in two, never).
    pub late_us_max: u64,
    /// Append one pull per queue at the end that reads it whole (the consumers drained it).
    pub drain: bool,
    pub anomaly: Option<LogAnomaly>,
    pub seed: u64,
}

impl Default for LateLogOptions {
    fn default() -> LateLogOptions {
        LateLogOptions {
            ops: 2_000,
            clients: 8,
            queues: 1,
            unknown_ppm: 100_000,
            late_us_max: 8_000_000,
            drain: true,
            anomaly: None,
            seed: 1,
        }
    }
}

/// A generated history and the index of the operation the anomaly changed or added.
#[derive(Clone, Debug)]
pub struct LateLog {
    pub history: Vec<Operation>,
    pub planted: Option<usize>,
    /// The other operation an anomaly changed (the first send of a swapped pair).
    pub partner: Option<usize>,
}

const OP_US_MAX: u64 = 2_000;
const GAP_US_MAX: u64 = 500;
/// How long a client waits for a send's answer before it gives up (outcome unknown).
const GIVE_UP_US: u64 = 3_000_000;
const PULL_MAX: u32 = 16;

/// One operation before its output is known.
struct Planned {
    client: u32,
    queue: usize,
    call_us: u64,
    complete_us: u64,
    /// When it takes effect; `None`: never (an unknown send that was lost).
    point_us: Option<u64>,
    send: bool,
    unknown: bool,
}

/// A linearizable history with late-landing unknown sends (and the planted anomaly, if any).
pub fn late_log_history(options: &LateLogOptions) -> LateLog {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let planned = plan(options, &mut rng);
    let mut history = apply(options, &planned, &mut rng);
    let mut partner = None;
    let planted = options.anomaly.and_then(|anomaly| {
        plant(
            &mut history,
            anomaly,
            options.clients,
            &mut partner,
            &mut rng,
        )
    });
    LateLog {
        history,
        planted,
        partner,
    }
}

fn plan(options: &LateLogOptions, rng: &mut ChaCha8Rng) -> Vec<Planned> {
    let clients = options.clients.max(1);
    let queues = options.queues.max(1) as usize;
    let mut next_call: Vec<u64> = (0..clients).map(|_| rng.gen_range(0..100)).collect();
    let mut planned = Vec::with_capacity(options.ops + queues);
    for _ in 0..options.ops {
        let client = (0..clients)
            .min_by_key(|&client| (next_call[client as usize], client))
            .expect("invariant: at least one client");
        let call_us = next_call[client as usize];
        let send = rng.gen_bool(0.5);
        let unknown = send && rng.gen_range(0..1_000_000) < options.unknown_ppm;
        let (complete_us, point_us) = if unknown {
            let lands = rng.gen_bool(0.5);
            let point = call_us + rng.gen_range(0..=options.late_us_max.max(1));
            (call_us + GIVE_UP_US, lands.then_some(point))
        } else {
            let complete = call_us + rng.gen_range(1..=OP_US_MAX);
            (complete, Some(rng.gen_range(call_us..=complete)))
        };
        planned.push(Planned {
            client,
            queue: rng.gen_range(0..queues),
            call_us,
            complete_us,
            point_us,
            send,
            unknown,
        });
        next_call[client as usize] = complete_us + rng.gen_range(1..=GAP_US_MAX);
    }
    if options.drain {
        let end = planned
            .iter()
            .map(|op| op.complete_us.max(op.point_us.unwrap_or(0)))
            .max()
            .unwrap_or(0);
        for queue in 0..queues {
            let call_us = end + 1 + queue as u64;
            planned.push(Planned {
                client: 0,
                queue,
                call_us,
                complete_us: call_us + 1,
                point_us: Some(call_us),
                send: false,
                unknown: false,
            });
        }
    }
    planned
}

/// Applies the planned operations in point order; recorded in call order.
fn apply(options: &LateLogOptions, planned: &[Planned], rng: &mut ChaCha8Rng) -> Vec<Operation> {
    let queues = options.queues.max(1) as usize;
    let drains = if options.drain { queues } else { 0 };
    let mut logs: Vec<Vec<String>> = vec![Vec::new(); queues];
    let mut cursors: std::collections::BTreeMap<(u32, usize), u64> = Default::default();
    let mut order: Vec<usize> = (0..planned.len()).collect();
    order.sort_by_key(|&op| (planned[op].point_us.unwrap_or(u64::MAX), op));
    let mut history: Vec<(u64, usize, Operation)> = Vec::with_capacity(planned.len());
    for op in order {
        let step = &planned[op];
        let queue_name = format!("q{}", step.queue);
        let log = &mut logs[step.queue];
        let (input, outcome) = if step.send {
            let body = format!("c{}-{op}", step.client);
            if step.point_us.is_some() {
                log.push(body.clone());
            }
            let outcome = if step.unknown {
                OpOutcome::Unknown
            } else {
                OpOutcome::Sent {
                    offset: log.len() as u64 - 1,
                }
            };
            (
                OpInput::Send {
                    queue: queue_name,
                    body,
                },
                outcome,
            )
        } else {
            let drain = op >= planned.len() - drains;
            let cursor = cursors.entry((step.client, step.queue)).or_insert(0);
            let (offset, max) = if drain {
                (0, u32::try_from(log.len().max(1)).expect("logs fit u32"))
            } else if rng.gen_bool(0.1) {
                (rng.gen_range(0..=log.len() as u64), PULL_MAX)
            } else {
                (*cursor, rng.gen_range(1..=PULL_MAX))
            };
            let end = (offset + u64::from(max)).min(log.len() as u64).max(offset);
            *cursor = end;
            (
                OpInput::Pull {
                    queue: queue_name,
                    offset,
                    max,
                },
                OpOutcome::Pulled {
                    bodies: log[offset as usize..end as usize].to_vec(),
                },
            )
        };
        let operation = Operation {
            client: step.client,
            input,
            invoke_us: step.call_us,
            complete_us: step.complete_us,
            outcome,
        };
        history.push((step.call_us, op, operation));
    }
    history.sort_by_key(|(call_us, op, _)| (*call_us, *op));
    history
        .into_iter()
        .map(|(_, _, operation)| operation)
        .collect()
}

/// Plants `anomaly`; returns the index of the changed (or added) operation, or `None` when the
/// history has no place for it.
fn plant(
    history: &mut Vec<Operation>,
    anomaly: LogAnomaly,
    clients: u32,
    partner: &mut Option<usize>,
    rng: &mut ChaCha8Rng,
) -> Option<usize> {
    let sends = acked_sends(history);
    let pick = |candidates: Vec<usize>, rng: &mut ChaCha8Rng| {
        (!candidates.is_empty()).then(|| candidates[rng.gen_range(0..candidates.len())])
    };
    match anomaly {
        LogAnomaly::ShortPull => {
            // A pull at o that returned entries past an offset j whose send was acknowledged
            // before the pull was invoked: cut it to end just before j.
            let candidates = pulls(history, |pull, queue, offset, bodies| {
                bodies.len() > 1
                    && sends.iter().any(|(send, send_queue, at)| {
                        let (send, at) = (*send, *at);
                        send_queue == queue
                            && at > offset
                            && at < offset + bodies.len() as u64
                            && history[send].complete_us < history[pull].invoke_us
                    })
            });
            let index = pick(candidates, rng)?;
            let (queue, offset) = pull_at(&history[index]);
            let cut = sends
                .iter()
                .filter(|(send, send_queue, at)| {
                    *send_queue == queue
                        && *at > offset
                        && history[*send].complete_us < history[index].invoke_us
                })
                .map(|(_, _, at)| *at)
                .min()?;
            if let OpOutcome::Pulled { bodies } = &mut history[index].outcome {
                bodies.truncate((cut - offset) as usize);
            }
            Some(index)
        }
        LogAnomaly::FutureRead => {
            // A pull answered with one entry whose send was invoked after the pull completed.
            let candidates: Vec<(usize, usize)> = history
                .iter()
                .enumerate()
                .filter(|(_, op)| matches!(op.outcome, OpOutcome::Pulled { .. }))
                .filter_map(|(pull, op)| {
                    let (queue, _) = pull_at(op);
                    sends
                        .iter()
                        .find(|(send, send_queue, _)| {
                            *send_queue == queue && history[*send].invoke_us > op.complete_us
                        })
                        .map(|(send, _, _)| (pull, *send))
                })
                .collect();
            let &(pull, send) = candidates.get(rng.gen_range(0..candidates.len().max(1)))?;
            let (body, at) = match (&history[send].input, &history[send].outcome) {
                (OpInput::Send { body, .. }, OpOutcome::Sent { offset }) => (body.clone(), *offset),
                _ => return None,
            };
            if let OpInput::Pull { offset, max, .. } = &mut history[pull].input {
                *offset = at;
                *max = 1;
            }
            history[pull].outcome = OpOutcome::Pulled { bodies: vec![body] };
            Some(pull)
        }
        LogAnomaly::ShorterLaterPull => {
            // A pull that read an unknown send's entry at k; a new pull after it sees k entries.
            let unknown: Vec<(String, String)> = history
                .iter()
                .filter_map(|op| match (&op.input, &op.outcome) {
                    (OpInput::Send { queue, body }, OpOutcome::Unknown) => {
                        Some((queue.clone(), body.clone()))
                    }
                    _ => None,
                })
                .collect();
            let mut found: Vec<(usize, String, u64)> = Vec::new();
            for (pull, op) in history.iter().enumerate() {
                if let (OpInput::Pull { queue, offset, .. }, OpOutcome::Pulled { bodies }) =
                    (&op.input, &op.outcome)
                {
                    for (shift, body) in bodies.iter().enumerate() {
                        if unknown.iter().any(|(q, b)| q == queue && b == body) {
                            found.push((pull, queue.clone(), offset + shift as u64));
                        }
                    }
                }
            }
            // Only unknown sends may fill the gap: no send acknowledged at `at` or later has
            // returned by then.
            found.retain(|(earlier, queue, at)| {
                sends.iter().all(|(send, send_queue, offset)| {
                    send_queue != queue
                        || offset < at
                        || history[*send].complete_us > history[*earlier].complete_us
                })
            });
            let (earlier, queue, at) = found.get(rng.gen_range(0..found.len().max(1))).cloned()?;
            let invoke_us = history[earlier].complete_us + 1;
            history.push(Operation {
                client: clients,
                input: OpInput::Pull {
                    queue,
                    offset: at,
                    max: PULL_MAX,
                },
                invoke_us,
                complete_us: invoke_us + 10,
                outcome: OpOutcome::Pulled { bodies: Vec::new() },
            });
            Some(history.len() - 1)
        }
        LogAnomaly::BodyAtTwoOffsets => {
            let candidates = pulls(history, |_, _, _, bodies| bodies.len() >= 2);
            let index = pick(candidates, rng)?;
            if let OpOutcome::Pulled { bodies } = &mut history[index].outcome {
                bodies[1] = bodies[0].clone();
            }
            Some(index)
        }
        LogAnomaly::AckOrder => {
            // Acknowledged sends a (offset i) and b (offset j > i), a returned before b was
            // invoked: swap their bodies and offsets.
            let mut candidates = Vec::new();
            for (rank, (a, queue, i)) in sends.iter().enumerate() {
                // No pull may have read offset i before b was invoked (that would be the
                // reason instead).
                let read_before = |b: usize| {
                    history.iter().any(|op| match (&op.input, &op.outcome) {
                        (
                            OpInput::Pull {
                                queue: q, offset, ..
                            },
                            OpOutcome::Pulled { bodies },
                        ) => {
                            q == queue
                                && offset + bodies.len() as u64 > *i
                                && op.complete_us < history[b].invoke_us
                        }
                        _ => false,
                    })
                };
                if let Some((b, _, _)) = sends[rank + 1..].iter().find(|(b, other, j)| {
                    other == queue
                        && j > i
                        && history[*b].invoke_us > history[*a].complete_us
                        && !read_before(*b)
                }) {
                    candidates.push((*a, *b));
                }
                if candidates.len() >= 64 {
                    break;
                }
            }
            let &(a, b) = candidates.get(rng.gen_range(0..candidates.len().max(1)))?;
            let (input_a, outcome_a) = (history[a].input.clone(), history[a].outcome.clone());
            history[a].input = history[b].input.clone();
            history[a].outcome = history[b].outcome.clone();
            history[b].input = input_a;
            history[b].outcome = outcome_a;
            *partner = Some(a);
            Some(b)
        }
        LogAnomaly::RefusedRead => {
            let pulled: std::collections::BTreeSet<(String, String)> = history
                .iter()
                .filter_map(|op| match (&op.input, &op.outcome) {
                    (OpInput::Pull { queue, .. }, OpOutcome::Pulled { bodies }) => {
                        Some(bodies.iter().map(|body| (queue.clone(), body.clone())))
                    }
                    _ => None,
                })
                .flatten()
                .collect();
            let candidates: Vec<usize> = sends
                .iter()
                .map(|(send, _, _)| *send)
                .filter(|&send| match &history[send].input {
                    OpInput::Send { queue, body } => {
                        pulled.contains(&(queue.clone(), body.clone()))
                    }
                    OpInput::Pull { .. } => false,
                })
                .collect();
            let index = pick(candidates, rng)?;
            history[index].outcome = OpOutcome::Fail;
            Some(index)
        }
    }
}

/// Acknowledged sends: (history index, queue, offset), in history order.
fn acked_sends(history: &[Operation]) -> Vec<(usize, String, u64)> {
    history
        .iter()
        .enumerate()
        .filter_map(|(index, op)| match (&op.input, &op.outcome) {
            (OpInput::Send { queue, .. }, OpOutcome::Sent { offset }) => {
                Some((index, queue.clone(), *offset))
            }
            _ => None,
        })
        .collect()
}

/// Pulls with an answer for which `keep(index, queue, offset, bodies)` holds.
fn pulls(history: &[Operation], keep: impl Fn(usize, &str, u64, &[String]) -> bool) -> Vec<usize> {
    history
        .iter()
        .enumerate()
        .filter(|(index, op)| match (&op.input, &op.outcome) {
            (OpInput::Pull { queue, offset, .. }, OpOutcome::Pulled { bodies }) => {
                keep(*index, queue, *offset, bodies)
            }
            _ => false,
        })
        .map(|(index, _)| index)
        .collect()
}

fn pull_at(op: &Operation) -> (String, u64) {
    match &op.input {
        OpInput::Pull { queue, offset, .. } => (queue.clone(), *offset),
        OpInput::Send { queue, .. } => (queue.clone(), 0),
    }
}
