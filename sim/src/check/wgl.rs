//! The Wing–Gong / Lowe linearizability search over one part, with Porcupine's improvements:
//! a doubly-linked list of call and return events ("lift" an operation when it is linearized,
//! "unlift" on backtrack), and a memo of (linearized set, model state) so that no configuration
//! is explored twice.
//!
//! Differences from Porcupine:
//! - An operation with an unknown outcome has no return event: it never forces a backtrack, and
//!   the search succeeds as soon as every operation with a known outcome is linearized (the
//!   unknown ones left over "never happened", or happened after everything else).
//! - The memo key stores only the window of the linearized bitset that is neither all ones nor
//!   all zeros, plus a Zobrist hash of the whole set, so a memo entry costs a few words even on
//!   a part of a million operations.
//! - Candidates with a known outcome are tried before those with an unknown one, so an unknown
//!   operation is linearized only when nothing else can go next (same candidates, other order).
//! - A step budget (deterministic) and an optional deadline (not deterministic) end the search
//!   with `Verdict::Unknown` instead of hanging.

use std::time::Instant;

use super::hashing::{hash_of, mix64, FxMap};
use super::model::{Model, Op};

/// The outcome of a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    Linearizable,
    /// The search gave up (step budget or deadline).
    Unknown,
    NotLinearizable,
}

impl Verdict {
    /// Combines the verdicts of independent parts: any failure fails the whole, then any unknown.
    pub fn combine(self, other: Verdict) -> Verdict {
        self.max(other)
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            Verdict::Linearizable => "linearizable",
            Verdict::Unknown => "unknown",
            Verdict::NotLinearizable => "NOT linearizable",
        };
        formatter.write_str(text)
    }
}

/// Limits of one search.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Model steps tried before giving up. Deterministic: the same history gives the same verdict.
    pub steps_max: u64,
    /// Wall-clock deadline; when hit the verdict depends on machine speed.
    pub deadline: Option<Instant>,
}

/// What one search found.
#[derive(Clone, Debug)]
pub struct SearchOutcome<S> {
    pub verdict: Verdict,
    /// Model steps tried.
    pub steps: u64,
    /// The longest sequence of operations (positions in the part) the search could linearize.
    pub longest: Vec<usize>,
    /// The model state after `longest`.
    pub longest_state: S,
    /// The operation whose return ended the longest linearization: it could not be linearized
    /// before it returned. `None` when the search succeeded or gave up.
    pub stuck_at: Option<usize>,
}

const NIL: u32 = u32::MAX;
const HEAD: u32 = 0;
const DEADLINE_CHECK_STEPS: u64 = 1024;

struct Frame<S> {
    node: u32,
    previous_state: S,
    /// Other states the same step could lead to, tried on backtrack (nondeterministic models).
    pending: Vec<S>,
}

/// Event list: node 0 is the head sentinel; each operation has a call node and, when its
/// outcome is known, a return node.
struct Events {
    next: Vec<u32>,
    prev: Vec<u32>,
    /// Operation position of each node.
    op: Vec<u32>,
    is_call: Vec<bool>,
    /// Return node of each operation, `NIL` for unknown outcomes.
    return_node: Vec<u32>,
}

impl Events {
    fn build<I, O>(ops: &[Op<I, O>], skip: &[bool]) -> Events {
        // (time, kind: 0 = call, 1 = return, op): calls before returns at equal times, so
        // touching intervals count as concurrent, as in Porcupine.
        let mut order: Vec<(u64, u8, u32)> = Vec::with_capacity(ops.len() * 2);
        for (position, op) in ops.iter().enumerate() {
            if skip[position] {
                continue;
            }
            let position = u32::try_from(position).expect("a part holds fewer than 2^32 ops");
            order.push((op.call_us, 0, position));
            if op.output.is_some() {
                order.push((op.return_us.max(op.call_us), 1, position));
            }
        }
        order.sort_unstable();
        let count = order.len() + 1;
        let mut events = Events {
            next: Vec::with_capacity(count),
            prev: Vec::with_capacity(count),
            op: Vec::with_capacity(count),
            is_call: Vec::with_capacity(count),
            return_node: vec![NIL; ops.len()],
        };
        events.next.push(if order.is_empty() { NIL } else { 1 });
        events.prev.push(NIL);
        events.op.push(NIL);
        events.is_call.push(false);
        for (rank, &(_, kind, position)) in order.iter().enumerate() {
            let node = u32::try_from(rank + 1).expect("fewer than 2^32 events");
            events.prev.push(node - 1);
            events.next.push(if rank + 1 == order.len() {
                NIL
            } else {
                node + 1
            });
            events.op.push(position);
            events.is_call.push(kind == 0);
            if kind == 1 {
                events.return_node[position as usize] = node;
            }
        }
        events
    }

    fn unlink(&mut self, node: u32) {
        let (prev, next) = (self.prev[node as usize], self.next[node as usize]);
        self.next[prev as usize] = next;
        if next != NIL {
            self.prev[next as usize] = prev;
        }
    }

    fn relink(&mut self, node: u32) {
        let (prev, next) = (self.prev[node as usize], self.next[node as usize]);
        self.next[prev as usize] = node;
        if next != NIL {
            self.prev[next as usize] = node;
        }
    }

    fn lift(&mut self, call: u32) {
        self.unlink(call);
        let return_node = self.return_node[self.op[call as usize] as usize];
        if return_node != NIL {
            self.unlink(return_node);
        }
    }

    fn unlift(&mut self, call: u32) {
        let return_node = self.return_node[self.op[call as usize] as usize];
        if return_node != NIL {
            self.relink(return_node);
        }
        self.relink(call);
    }
}

/// The set of linearized operations: a bitset, its Zobrist hash, and the bounds of the words
/// that are neither full nor empty.
struct Linearized {
    words: Vec<u64>,
    zobrist: u64,
    /// First word that is not all ones.
    low: usize,
    /// One past the last word that is not zero.
    high: usize,
}

impl Linearized {
    fn new(count: usize) -> Linearized {
        Linearized {
            words: vec![0; count.div_ceil(64).max(1)],
            zobrist: 0,
            low: 0,
            high: 0,
        }
    }

    fn key(position: usize) -> u64 {
        mix64(position as u64 ^ 0x6c69_6e65_6172_697a)
    }

    fn set(&mut self, position: usize) {
        let word = position / 64;
        self.words[word] |= 1 << (position % 64);
        self.zobrist ^= Self::key(position);
        self.high = self.high.max(word + 1);
        while self.low < self.words.len() && self.words[self.low] == u64::MAX {
            self.low += 1;
        }
    }

    fn clear(&mut self, position: usize) {
        let word = position / 64;
        self.words[word] &= !(1 << (position % 64));
        self.zobrist ^= Self::key(position);
        self.low = self.low.min(word);
        while self.high > 0 && self.words[self.high - 1] == 0 {
            self.high -= 1;
        }
    }

    fn window(&self) -> &[u64] {
        if self.high > self.low {
            &self.words[self.low..self.high]
        } else {
            &[]
        }
    }
}

struct MemoEntry<S> {
    next: u32,
    low: u32,
    words_start: usize,
    words_count: u32,
    state: S,
}

/// Configurations already explored: (linearized set, state).
struct Memo<S> {
    heads: FxMap<u64, u32>,
    entries: Vec<MemoEntry<S>>,
    words: Vec<u64>,
}

impl<S: Eq + std::hash::Hash> Memo<S> {
    fn new() -> Memo<S> {
        Memo {
            heads: FxMap::default(),
            entries: Vec::new(),
            words: Vec::new(),
        }
    }

    /// Records the configuration; false when it was already there.
    fn insert(&mut self, linearized: &Linearized, state: S) -> bool {
        let key = linearized.zobrist ^ hash_of(&state).rotate_left(17);
        let window = linearized.window();
        let head = self.heads.get(&key).copied().unwrap_or(NIL);
        let mut cursor = head;
        while cursor != NIL {
            let entry = &self.entries[cursor as usize];
            let stored =
                &self.words[entry.words_start..entry.words_start + entry.words_count as usize];
            if entry.low as usize == linearized.low && stored == window && entry.state == state {
                return false;
            }
            cursor = entry.next;
        }
        let words_start = self.words.len();
        self.words.extend_from_slice(window);
        let index = u32::try_from(self.entries.len()).expect("fewer than 2^32 memo entries");
        self.entries.push(MemoEntry {
            next: head,
            low: u32::try_from(linearized.low).expect("fewer than 2^32 bitset words"),
            words_start,
            words_count: u32::try_from(window.len()).expect("window fits"),
            state,
        });
        self.heads.insert(key, index);
        true
    }
}

/// The longest partial linearization seen, kept incrementally: `agree` is how long a prefix of
/// it the current stack still shares, so each stack push is copied at most once.
struct Longest<S> {
    ops: Vec<u32>,
    agree: usize,
    state: Option<S>,
    stuck_at: Option<usize>,
}

/// Searches for a linearization of `ops`, starting from `init`.
pub fn search<M: Model>(
    model: &mut M,
    init: M::State,
    ops: &[Op<M::Input, M::Output>],
    budget: &Budget,
) -> SearchOutcome<M::State> {
    let skip: Vec<bool> = ops
        .iter()
        .map(|op| op.output.is_none() && model.unknown_is_noop(&op.input))
        .collect();
    let mut events = Events::build(ops, &skip);
    let mut remaining_known = ops
        .iter()
        .zip(&skip)
        .filter(|(op, skipped)| op.output.is_some() && !**skipped)
        .count();
    let mut linearized = Linearized::new(ops.len());
    let mut memo: Memo<M::State> = Memo::new();
    let mut stack: Vec<Frame<M::State>> = Vec::new();
    let mut longest: Longest<M::State> = Longest {
        ops: Vec::new(),
        agree: 0,
        state: None,
        stuck_at: None,
    };
    let mut state = init;
    let mut steps: u64 = 0;
    let mut next_states: Vec<M::State> = Vec::new();
    let mut node = events.next[HEAD as usize];
    // Each configuration scans its candidates twice: those with a known outcome, then (only if
    // all of those failed) those with an unknown one.
    let mut unknown_pass = false;

    loop {
        if remaining_known == 0 {
            let order = stack
                .iter()
                .map(|frame| events.op[frame.node as usize] as usize);
            return SearchOutcome {
                verdict: Verdict::Linearizable,
                steps,
                longest: order.collect(),
                longest_state: state,
                stuck_at: None,
            };
        }
        if node == NIL || !events.is_call[node as usize] {
            if !unknown_pass {
                // Every operation with a known outcome that could go next failed: now try those
                // with unknown outcomes, which are linearized only when needed.
                unknown_pass = true;
                node = events.next[HEAD as usize];
                continue;
            }
            // Every candidate before this return (or the end) failed: backtrack.
            let stuck = (node != NIL).then(|| events.op[node as usize] as usize);
            record_longest(&mut longest, &stack, &events, &state, stuck);
            let Some(frame) = stack.pop() else {
                return failed(longest, state, steps);
            };
            longest.agree = longest.agree.min(stack.len());
            let op = events.op[frame.node as usize] as usize;
            events.unlift(frame.node);
            linearized.clear(op);
            if ops[op].output.is_some() {
                remaining_known += 1;
            }
            state = frame.previous_state;
            unknown_pass = ops[op].output.is_none();
            let mut pending = frame.pending;
            node = if try_push(
                frame.node,
                &mut pending,
                ops,
                &mut Search {
                    events: &mut events,
                    linearized: &mut linearized,
                    memo: &mut memo,
                    stack: &mut stack,
                    state: &mut state,
                    remaining_known: &mut remaining_known,
                    longest: &mut longest,
                },
            ) {
                unknown_pass = false;
                events.next[HEAD as usize]
            } else {
                events.next[frame.node as usize]
            };
            continue;
        }
        let position = events.op[node as usize] as usize;
        if ops[position].output.is_none() != unknown_pass {
            node = events.next[node as usize];
            continue;
        }
        steps += 1;
        if steps > budget.steps_max
            || (steps % DEADLINE_CHECK_STEPS == 0
                && budget
                    .deadline
                    .is_some_and(|deadline| Instant::now() >= deadline))
        {
            return SearchOutcome {
                verdict: Verdict::Unknown,
                steps,
                longest: longest.ops.iter().map(|&op| op as usize).collect(),
                longest_state: longest.state.unwrap_or(state),
                stuck_at: None,
            };
        }
        let op = &ops[position];
        next_states.clear();
        model.step(&state, &op.input, op.output.as_ref(), &mut next_states);
        next_states.reverse();
        let pushed = try_push(
            node,
            &mut next_states,
            ops,
            &mut Search {
                events: &mut events,
                linearized: &mut linearized,
                memo: &mut memo,
                stack: &mut stack,
                state: &mut state,
                remaining_known: &mut remaining_known,
                longest: &mut longest,
            },
        );
        node = if pushed {
            unknown_pass = false;
            events.next[HEAD as usize]
        } else {
            events.next[node as usize]
        };
    }
}

struct Search<'a, S> {
    events: &'a mut Events,
    linearized: &'a mut Linearized,
    memo: &'a mut Memo<S>,
    stack: &'a mut Vec<Frame<S>>,
    state: &'a mut S,
    remaining_known: &'a mut usize,
    longest: &'a mut Longest<S>,
}

/// Linearizes the operation of `node` into the first state of `candidates` (popped from the
/// back) whose configuration is new; the rest stay pending on its frame. False when none is new.
fn try_push<S: Clone + Eq + std::hash::Hash, I, O>(
    node: u32,
    candidates: &mut Vec<S>,
    ops: &[Op<I, O>],
    search: &mut Search<'_, S>,
) -> bool {
    let op = search.events.op[node as usize] as usize;
    while let Some(candidate) = candidates.pop() {
        search.linearized.set(op);
        if search.memo.insert(search.linearized, candidate.clone()) {
            let pending = if candidates.is_empty() {
                Vec::new()
            } else {
                std::mem::take(candidates)
            };
            let previous_state = std::mem::replace(search.state, candidate);
            let depth = search.stack.len();
            let longest = &mut *search.longest;
            if longest.agree == depth
                && longest
                    .ops
                    .get(depth)
                    .is_some_and(|&stored| stored as usize == op)
            {
                longest.agree += 1;
            }
            search.stack.push(Frame {
                node,
                previous_state,
                pending,
            });
            search.events.lift(node);
            if ops[op].output.is_some() {
                *search.remaining_known -= 1;
            }
            return true;
        }
        search.linearized.clear(op);
    }
    false
}

fn record_longest<S: Clone>(
    longest: &mut Longest<S>,
    stack: &[Frame<S>],
    events: &Events,
    state: &S,
    stuck: Option<usize>,
) {
    if stack.len() <= longest.ops.len() && longest.state.is_some() {
        return;
    }
    longest.ops.truncate(longest.agree);
    longest.ops.extend(
        stack[longest.agree..]
            .iter()
            .map(|frame| events.op[frame.node as usize]),
    );
    longest.agree = stack.len();
    longest.state = Some(state.clone());
    longest.stuck_at = stuck;
}

fn failed<S>(longest: Longest<S>, state: S, steps: u64) -> SearchOutcome<S> {
    SearchOutcome {
        verdict: Verdict::NotLinearizable,
        steps,
        longest: longest.ops.iter().map(|&op| op as usize).collect(),
        longest_state: longest.state.unwrap_or(state),
        stuck_at: longest.stuck_at,
    }
}
