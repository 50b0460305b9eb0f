//! Deciding one queue's log history from the history alone, in O(n log n), without a search.
//!
//! Bodies are unique, so what the history observes pins the log: an acknowledged send fixes the
//! offset of its body, and a pull that returned a body fixes where that body's send landed (late
//! or not, even when the send's outcome was `unknown`). Contradictions among these facts (one
//! body at two offsets, two bodies at one offset, a pulled body that nobody sent or that the
//! broker refused) are violations by themselves.
//!
//! When the facts give a body for every offset 0..N, the log is known and the question becomes
//! one of order between operations (LiMo's view of queues, PLDI 2025): the send at offset k
//! precedes the one at k+1; a pull that returned entries through offset k follows the send at k;
//! a pull at offset o that returned n < max entries saw a log of exactly o+n entries, so it
//! precedes the send at offset o+n (and one that returned nothing saw at most o). Unknown sends
//! nobody observed never happened (they could only land after offset N−1, where nothing reads
//! them). Every operation must take effect inside its interval (an unknown send: any time after
//! its call). These constraints form a chain of sends with pulls hanging off it, so giving every
//! operation the earliest time its predecessors allow (one pass in offset order) decides the
//! history: it is linearizable iff no operation's earliest time falls after its return. When one
//! does, the chain of causes of that time is the witness: an operation invoked after another
//! returned that the rules put before it.
//!
//! When an offset stays unobserved (an unknown send landed there and nothing read it) or a body
//! was sent twice, the history is ambiguous here: the caller pins the observed unknown sends
//! (`Ambiguous::settlements`) and leaves the rest to the search.

use crate::check::hashing::FxMap;
use crate::check::model::{Op, Part, NEVER_RETURNED_US};
use crate::check::models::log::{LogInput, LogModel, LogOutput};
use crate::check::settle::Settlement;

/// What the decision found for one part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Steps: constraints evaluated (deterministic, as the search's steps are).
    Linearizable {
        steps: u64,
    },
    NotLinearizable {
        steps: u64,
        witness: Witness,
    },
    Ambiguous(Ambiguous),
}

/// Why a part could not be decided here, and what the history does pin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ambiguous {
    pub why: Ambiguity,
    /// Unknown sends whose landing offset a pull observed, by history index (ascending), each
    /// bounded by the earliest return of an operation that observed it.
    pub settlements: Vec<(usize, Settlement)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ambiguity {
    /// No operation observed the body at `offset`, though later offsets are known: an unknown
    /// send may have landed there; `unobserved_unknown_sends` could have.
    Gap {
        offset: u64,
        unobserved_unknown_sends: usize,
    },
    /// Two sends carry the same body: a pulled body does not say which one landed.
    BodySentTwice { op: usize },
}

impl std::fmt::Display for Ambiguity {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ambiguity::Gap {
                offset,
                unobserved_unknown_sends,
            } => write!(
                formatter,
                "no operation observed the entry at offset {offset}; any of \
                 {unobserved_unknown_sends} unobserved unknown sends may have landed there"
            ),
            Ambiguity::BodySentTwice { op } => {
                write!(formatter, "the body of send #{op} was sent twice")
            }
        }
    }
}

/// Operations that cannot be linearized together, and the rule they break.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Witness {
    pub rule: LogRule,
    /// Positions in the part, in the order the rule's explanation walks them.
    pub ops: Vec<usize>,
    /// The operation that could not take effect before it returned (or the second sighting).
    pub culprit: usize,
}

/// A broken rule of the log model; operation fields are positions in the part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogRule {
    /// One body seen at two offsets.
    BodyAtTwoOffsets {
        body: u32,
        first: usize,
        first_offset: u64,
        second: usize,
        second_offset: u64,
    },
    /// Two bodies seen at one offset.
    TwoBodiesAtOffset {
        offset: u64,
        first: usize,
        first_body: u32,
        second: usize,
        second_body: u32,
    },
    /// A pull returned a body whose send the broker refused (history index of that send).
    ReadOfRefusedSend {
        pull: usize,
        offset: u64,
        body: u32,
        send_index: usize,
    },
    /// A pull returned a body no client sent to this queue.
    ReadOfUnsentBody { pull: usize, offset: u64, body: u32 },
    /// A pull returned more entries than it asked for.
    PullOverMax { pull: usize, count: u64, max: u32 },
    /// `chain[0]` must take effect before `chain[last]` (each link by a rule of the model), but
    /// it was invoked after `chain[last]` returned.
    Order { chain: Vec<Node> },
}

/// A vertex of the order constraints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    /// The send that landed at this offset (part position).
    Send { offset: u64, op: usize },
    /// A pull (part position).
    Pull { op: usize },
}

impl Node {
    fn op(self) -> usize {
        match self {
            Node::Send { op, .. } | Node::Pull { op } => op,
        }
    }
}

type LogOp = Op<LogInput, LogOutput>;

/// Decides `part` (one queue) of a history checked with `model`.
pub fn decide(model: &LogModel, part: &Part<LogInput, LogOutput>) -> Decision {
    let facts = match Facts::gather(model, part) {
        Ok(facts) => facts,
        Err(Gathered::Violation(witness)) => {
            return Decision::NotLinearizable {
                steps: part.ops.len() as u64,
                witness: *witness,
            }
        }
        Err(Gathered::BodySentTwice { op }) => {
            return Decision::Ambiguous(Ambiguous {
                why: Ambiguity::BodySentTwice {
                    op: part.ops[op].index,
                },
                settlements: Vec::new(),
            })
        }
    };
    if let Some(offset) = facts.first_gap() {
        return Decision::Ambiguous(Ambiguous {
            why: Ambiguity::Gap {
                offset,
                unobserved_unknown_sends: facts.unobserved_unknown_sends(&part.ops),
            },
            settlements: facts.settlements(&part.ops),
        });
    }
    let chain = Chain::build(part, &facts);
    let steps = (chain.send_at.len() + chain.pulls.len() + part.ops.len()) as u64;
    match chain.earliest_times(&part.ops) {
        None => Decision::Linearizable { steps },
        Some(nodes) => Decision::NotLinearizable {
            steps,
            witness: witness_of_order(nodes),
        },
    }
}

/// Where each observed body is, and which send carries it.
struct Facts {
    /// Offset → (body, the first operation that showed it there).
    at_offset: std::collections::BTreeMap<u64, (u32, usize)>,
    /// Body → (offset, the first operation that showed it there).
    offset_of: FxMap<u32, (u64, usize)>,
    /// Body → the send (part position) that carries it.
    send_of: FxMap<u32, usize>,
}

enum Gathered {
    Violation(Box<Witness>),
    BodySentTwice { op: usize },
}

impl Facts {
    fn gather(model: &LogModel, part: &Part<LogInput, LogOutput>) -> Result<Facts, Gathered> {
        let mut facts = Facts {
            at_offset: std::collections::BTreeMap::new(),
            offset_of: FxMap::default(),
            send_of: FxMap::default(),
        };
        for (position, op) in part.ops.iter().enumerate() {
            if let LogInput::Send { body } = op.input {
                if facts.send_of.insert(body, position).is_some() {
                    return Err(Gathered::BodySentTwice { op: position });
                }
            }
        }
        for (position, op) in part.ops.iter().enumerate() {
            match (op.input, op.output) {
                (LogInput::Send { body }, Some(LogOutput::Sent { offset })) => {
                    facts.observe(offset, body, position)?;
                }
                (LogInput::Pull { offset, max }, Some(LogOutput::Pulled { first, count })) => {
                    if count > max {
                        return Err(violation(
                            LogRule::PullOverMax {
                                pull: position,
                                count: u64::from(count),
                                max,
                            },
                            vec![position],
                            position,
                        ));
                    }
                    let bodies = model.tables().pulled(first, count);
                    for (shift, &body) in bodies.iter().enumerate() {
                        let at = offset.saturating_add(shift as u64);
                        facts.check_sent(model, &part.name, position, at, body)?;
                        facts.observe(at, body, position)?;
                    }
                }
                _ => {}
            }
        }
        Ok(facts)
    }

    fn check_sent(
        &self,
        model: &LogModel,
        queue: &str,
        pull: usize,
        offset: u64,
        body: u32,
    ) -> Result<(), Gathered> {
        if self.send_of.contains_key(&body) {
            return Ok(());
        }
        let rule = match model.tables().refused.get(&(queue.to_string(), body)) {
            Some(&send_index) => LogRule::ReadOfRefusedSend {
                pull,
                offset,
                body,
                send_index,
            },
            None => LogRule::ReadOfUnsentBody { pull, offset, body },
        };
        Err(violation(rule, vec![pull], pull))
    }

    fn observe(&mut self, offset: u64, body: u32, position: usize) -> Result<(), Gathered> {
        let stored = *self.offset_of.entry(body).or_insert((offset, position));
        conflict(stored, offset, position, |first_offset, first| {
            LogRule::BodyAtTwoOffsets {
                body,
                first,
                first_offset,
                second: position,
                second_offset: offset,
            }
        })?;
        let stored = *self.at_offset.entry(offset).or_insert((body, position));
        conflict(stored, body, position, |first_body, first| {
            LogRule::TwoBodiesAtOffset {
                offset,
                first,
                first_body,
                second: position,
                second_body: body,
            }
        })
    }

    /// The first offset below the highest known one with no known body.
    fn first_gap(&self) -> Option<u64> {
        (0u64..)
            .zip(self.at_offset.keys())
            .find(|(expected, offset)| **offset != *expected)
            .map(|(expected, _)| expected)
    }

    fn unobserved_unknown_sends(&self, ops: &[LogOp]) -> usize {
        ops.iter()
            .filter(|op| op.output.is_none())
            .filter(|op| match op.input {
                LogInput::Send { body } => !self.offset_of.contains_key(&body),
                LogInput::Pull { .. } => false,
            })
            .count()
    }

    /// Unknown sends a pull observed, pinned at that offset and bounded by the earliest return
    /// of an operation that saw the log past it (as settling does with final logs).
    fn settlements(&self, ops: &[LogOp]) -> Vec<(usize, Settlement)> {
        // (entries the operation saw, its return), by entries seen.
        let mut observers: Vec<(u64, u64)> = ops
            .iter()
            .filter_map(|op| match op.output {
                Some(LogOutput::Sent { offset }) => Some((offset, op.return_us)),
                Some(LogOutput::Pulled { count, .. }) if count > 0 => match op.input {
                    LogInput::Pull { offset, .. } => {
                        Some((offset.saturating_add(u64::from(count)), op.return_us))
                    }
                    LogInput::Send { .. } => None,
                },
                _ => None,
            })
            .collect();
        observers.sort_unstable();
        // Suffix minimum of returns: the earliest return among observers that saw ≥ r entries.
        let mut earliest = vec![NEVER_RETURNED_US; observers.len() + 1];
        for rank in (0..observers.len()).rev() {
            earliest[rank] = earliest[rank + 1].min(observers[rank].1);
        }
        let mut settlements: Vec<(usize, Settlement)> = ops
            .iter()
            .filter(|op| op.output.is_none())
            .filter_map(|op| {
                let LogInput::Send { body } = op.input else {
                    return None;
                };
                let &(offset, _) = self.offset_of.get(&body)?;
                let rank = observers.partition_point(|&(seen, _)| seen <= offset);
                let complete_us = earliest[rank].max(op.call_us);
                Some((
                    op.index,
                    Settlement::Landed {
                        offset,
                        complete_us,
                    },
                ))
            })
            .collect();
        settlements.sort_by_key(|(index, _)| *index);
        settlements
    }
}

/// `stored` is the first sighting (value, position) of what the operation at `position` sees
/// as `value`: when they differ, the violation `rule(first value, first position)` with both
/// operations as its witness.
fn conflict<V: Copy + PartialEq>(
    stored: (V, usize),
    value: V,
    position: usize,
    rule: impl FnOnce(V, usize) -> LogRule,
) -> Result<(), Gathered> {
    let (first_value, first) = stored;
    if first_value == value {
        return Ok(());
    }
    Err(violation(
        rule(first_value, first),
        vec![first, position],
        position,
    ))
}

fn violation(rule: LogRule, ops: Vec<usize>, culprit: usize) -> Gathered {
    Gathered::Violation(Box::new(Witness { rule, ops, culprit }))
}

/// A pull's constraints on the log length when it read: it follows the send at `after` and
/// precedes the send at `before`.
#[derive(Clone, Copy, Debug)]
struct PullBounds {
    op: usize,
    after: Option<u64>,
    before: Option<u64>,
}

/// The known log as a chain of sends, and the pulls hanging off it.
struct Chain {
    /// Part position of the send at each offset 0..N.
    send_at: Vec<usize>,
    /// Pulls with at least one bound inside the chain, sorted by `after` (None first).
    pulls: Vec<PullBounds>,
}

impl Chain {
    fn build(part: &Part<LogInput, LogOutput>, facts: &Facts) -> Chain {
        let send_at: Vec<usize> = facts
            .at_offset
            .values()
            .map(|(body, _)| {
                *facts
                    .send_of
                    .get(body)
                    .expect("invariant: every observed body was checked to have a send")
            })
            .collect();
        let length = send_at.len() as u64;
        let mut pulls: Vec<PullBounds> = part
            .ops
            .iter()
            .enumerate()
            .filter_map(|(position, op)| {
                let (LogInput::Pull { offset, max }, Some(LogOutput::Pulled { count, .. })) =
                    (op.input, op.output)
                else {
                    return None;
                };
                let end = offset.saturating_add(u64::from(count));
                let after = (count > 0).then(|| end - 1);
                let before = (count < max && end < length).then_some(end);
                (after.is_some() || before.is_some()).then_some(PullBounds {
                    op: position,
                    after,
                    before,
                })
            })
            .collect();
        pulls.sort_by_key(|pull| (pull.after, pull.op));
        Chain { send_at, pulls }
    }

    /// Gives every operation the earliest time its predecessors and its call allow; returns
    /// the chain of causes of the first operation whose earliest time is after its return.
    fn earliest_times(&self, ops: &[LogOp]) -> Option<Vec<Node>> {
        let length = self.send_at.len();
        let mut send_time: Vec<(u64, Option<Node>)> = Vec::with_capacity(length);
        let mut pull_time: FxMap<usize, (u64, Option<Node>)> = FxMap::default();
        // Pulls that precede the send at each offset, sorted by that offset.
        let mut before: Vec<(u64, usize)> = self
            .pulls
            .iter()
            .filter_map(|pull| pull.before.map(|offset| (offset, pull.op)))
            .collect();
        before.sort_unstable();
        let (mut next_before, mut next_after) = (0, 0);
        // Pulls with no lower bound take effect at their call.
        while let Some(pull) = self
            .pulls
            .get(next_after)
            .filter(|pull| pull.after.is_none())
        {
            pull_time.insert(pull.op, (ops[pull.op].call_us, None));
            next_after += 1;
        }
        for (offset, &send) in self.send_at.iter().enumerate() {
            let offset = offset as u64;
            let mut time = (ops[send].call_us, None);
            if let Some(&(previous, _)) = send_time.last() {
                if previous > time.0 {
                    time = (
                        previous,
                        Some(Node::Send {
                            offset: offset - 1,
                            op: self.send_at[offset as usize - 1],
                        }),
                    );
                }
            }
            while let Some(&(_, pull)) = before.get(next_before).filter(|(at, _)| *at == offset) {
                let (pulled_at, _) = pull_time
                    .get(&pull)
                    .copied()
                    .expect("invariant: a pull is timed before the send it precedes");
                if pulled_at > time.0 {
                    time = (pulled_at, Some(Node::Pull { op: pull }));
                }
                next_before += 1;
            }
            send_time.push(time);
            let here = Node::Send { offset, op: send };
            if time.0 > ops[send].return_us {
                return Some(self.causes(here, &send_time, &pull_time));
            }
            while let Some(pull) = self
                .pulls
                .get(next_after)
                .filter(|pull| pull.after == Some(offset))
            {
                let call_us = ops[pull.op].call_us;
                let timed = if time.0 > call_us {
                    (time.0, Some(here))
                } else {
                    (call_us, None)
                };
                pull_time.insert(pull.op, timed);
                if timed.0 > ops[pull.op].return_us {
                    return Some(self.causes(Node::Pull { op: pull.op }, &send_time, &pull_time));
                }
                next_after += 1;
            }
        }
        None
    }

    /// The chain of causes ending at `last`, first cause first.
    fn causes(
        &self,
        last: Node,
        send_time: &[(u64, Option<Node>)],
        pull_time: &FxMap<usize, (u64, Option<Node>)>,
    ) -> Vec<Node> {
        let mut chain = vec![last];
        let mut node = last;
        loop {
            let cause = match node {
                Node::Send { offset, .. } => send_time[offset as usize].1,
                Node::Pull { op } => pull_time.get(&op).and_then(|(_, cause)| *cause),
            };
            let Some(cause) = cause else {
                break;
            };
            chain.push(cause);
            node = cause;
        }
        chain.reverse();
        chain
    }
}

/// The witness of an order violation: the chain's two ends, every pull on it and the sends
/// next to them (the sends in between only carry the order of offsets).
fn witness_of_order(chain: Vec<Node>) -> Witness {
    let last = chain.len() - 1;
    let mut ops: Vec<usize> = chain
        .iter()
        .enumerate()
        .filter(|&(place, node)| {
            let near_pull = |other: Option<&Node>| matches!(other, Some(Node::Pull { .. }));
            place == 0
                || place == last
                || matches!(node, Node::Pull { .. })
                || near_pull(place.checked_sub(1).and_then(|before| chain.get(before)))
                || near_pull(chain.get(place + 1))
        })
        .map(|(_, node)| node.op())
        .collect();
    ops.dedup();
    let culprit = chain[last].op();
    Witness {
        rule: LogRule::Order { chain },
        ops,
        culprit,
    }
}
