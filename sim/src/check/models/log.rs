//! The per-queue message log: a send appends its body and returns the queue offset it got; a
//! pull at offset k with a limit of `max` returns exactly the entries k..k+min(max, len−k) at its
//! linearization point (pulls read the leader's committed log, so nothing less is linearizable).
//!
//! Bodies are interned to numbers once per history, and what pulls returned is kept in one table
//! shared by the model (`LogTables`), so an operation is a few words and owns no allocation. A
//! state is a length and a handle into a trie of every log the search has built: equal logs get
//! the same handle, so states are two words, compare exactly (no hash collisions) and memoise
//! well. Reading entry k of a state walks the trie with Myers' jump pointers in O(log length).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::check::hashing::{hash_of, FxMap};
use crate::check::model::{Model, Op, Part, NEVER_RETURNED_US};
use crate::check::settle::Settlement;
use crate::history::{OpInput, OpOutcome, Operation};

/// A send or a pull, bodies as interned numbers (see `Bodies`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogInput {
    Send { body: u32 },
    Pull { offset: u64, max: u32 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogOutput {
    Sent {
        offset: u64,
    },
    /// The bodies a pull returned: `count` numbers from position `first` of the model's table of
    /// pulled bodies (`LogTables::pulled`).
    Pulled {
        first: u32,
        count: u32,
    },
}

/// The distinct bodies of a history, each stored once in one string, numbered in order of first
/// appearance.
#[derive(Clone, Debug, Default)]
pub struct Bodies {
    text: String,
    /// End of each body in `text`.
    ends: Vec<usize>,
}

impl Bodies {
    /// Numbers `bodies` in order (no deduplication: for tests and hand-built tables).
    pub fn from_distinct<'b>(bodies: impl IntoIterator<Item = &'b str>) -> Bodies {
        let mut table = Bodies::default();
        for body in bodies {
            table.push(body);
        }
        table
    }

    pub fn get(&self, body: u32) -> Option<&str> {
        let end = *self.ends.get(body as usize)?;
        let start = match body {
            0 => 0,
            _ => self.ends[body as usize - 1],
        };
        Some(&self.text[start..end])
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn push(&mut self, body: &str) -> u32 {
        self.text.push_str(body);
        self.ends.push(self.text.len());
        u32::try_from(self.ends.len() - 1).expect("fewer than 2^32 bodies")
    }
}

/// What the model reads but never changes: the body texts (for reports) and the bodies every
/// pull returned.
#[derive(Clone, Debug, Default)]
pub struct LogTables {
    pub bodies: Bodies,
    /// The bodies of every pull, one after another (see `LogOutput::Pulled`).
    pub pulled: Vec<u32>,
    /// Sends the broker refused (`fail`: definitely not applied), by (queue, body): the history
    /// index of the first one. The parts leave them out; a pull that returns such a body is
    /// explained with it.
    pub refused: BTreeMap<(String, u32), usize>,
}

impl LogTables {
    /// The bodies a pull returned.
    pub fn pulled(&self, first: u32, count: u32) -> &[u32] {
        &self.pulled[first as usize..first as usize + count as usize]
    }
}

/// A log: its length and its node in the model's trie.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LogState {
    pub length: u64,
    node: u32,
}

#[derive(Clone, Copy, Debug)]
struct TrieNode {
    parent: u32,
    jump: u32,
    depth: u64,
    body: u32,
}

const ROOT: u32 = 0;

/// The log model. Cloning gives an empty trie (each part searches with its own).
#[derive(Debug)]
pub struct LogModel {
    tables: Arc<LogTables>,
    nodes: Vec<TrieNode>,
    children: FxMap<(u32, u32), u32>,
}

impl Clone for LogModel {
    fn clone(&self) -> LogModel {
        LogModel::new(Arc::clone(&self.tables))
    }
}

impl LogModel {
    /// A model whose body numbers index `tables.bodies` and whose pulls index `tables.pulled`.
    pub fn new(tables: Arc<LogTables>) -> LogModel {
        LogModel {
            tables,
            nodes: vec![TrieNode {
                parent: ROOT,
                jump: ROOT,
                depth: 0,
                body: u32::MAX,
            }],
            children: FxMap::default(),
        }
    }

    /// The body texts and pulled bodies the model reads.
    pub fn tables(&self) -> &LogTables {
        &self.tables
    }

    /// The text of an interned body.
    pub fn body(&self, body: u32) -> &str {
        self.tables.bodies.get(body).unwrap_or("?")
    }

    fn append(&mut self, state: LogState, body: u32) -> LogState {
        let child = match self.children.get(&(state.node, body)) {
            Some(&child) => child,
            None => {
                let parent = self.nodes[state.node as usize];
                let jump_node = self.nodes[parent.jump as usize];
                let jump_jump_node = self.nodes[jump_node.jump as usize];
                // Myers' skew-binary jump pointers: equal-sized jumps merge into one twice as long.
                let jump =
                    if parent.depth - jump_node.depth == jump_node.depth - jump_jump_node.depth {
                        jump_node.jump
                    } else {
                        state.node
                    };
                let child = u32::try_from(self.nodes.len()).expect("fewer than 2^32 trie nodes");
                self.nodes.push(TrieNode {
                    parent: state.node,
                    jump,
                    depth: parent.depth + 1,
                    body,
                });
                self.children.insert((state.node, body), child);
                child
            }
        };
        LogState {
            length: state.length + 1,
            node: child,
        }
    }

    /// The node at `depth` on the path from the root to `node` (depth ≤ depth of `node`).
    fn ancestor(&self, mut node: u32, depth: u64) -> u32 {
        while self.nodes[node as usize].depth > depth {
            let current = self.nodes[node as usize];
            node = if self.nodes[current.jump as usize].depth >= depth {
                current.jump
            } else {
                current.parent
            };
        }
        node
    }

    /// The entries of `state`, oldest first (for reports and tests).
    pub fn entries(&self, state: &LogState) -> Vec<u32> {
        let mut entries = Vec::new();
        let mut node = state.node;
        while node != ROOT {
            entries.push(self.nodes[node as usize].body);
            node = self.nodes[node as usize].parent;
        }
        entries.reverse();
        entries
    }

    fn pull_matches(&self, state: &LogState, offset: u64, max: u32, bodies: &[u32]) -> bool {
        let available = state.length.saturating_sub(offset);
        let expected = available.min(u64::from(max));
        if bodies.len() as u64 != expected {
            return false;
        }
        let mut node = self.ancestor(state.node, offset + expected);
        for &body in bodies.iter().rev() {
            let current = self.nodes[node as usize];
            if current.body != body {
                return false;
            }
            node = current.parent;
        }
        true
    }
}

impl Model for LogModel {
    type State = LogState;
    type Input = LogInput;
    type Output = LogOutput;

    fn init(&mut self) -> LogState {
        LogState {
            length: 0,
            node: ROOT,
        }
    }

    fn step(
        &mut self,
        state: &LogState,
        input: &LogInput,
        output: Option<&LogOutput>,
        next: &mut Vec<LogState>,
    ) {
        match (input, output) {
            (LogInput::Send { body }, None) => next.push(self.append(*state, *body)),
            (LogInput::Send { body }, Some(LogOutput::Sent { offset })) => {
                if *offset == state.length {
                    next.push(self.append(*state, *body));
                }
            }
            (LogInput::Pull { .. }, None) => next.push(*state),
            (LogInput::Pull { offset, max }, Some(LogOutput::Pulled { first, count })) => {
                let bodies = self.tables.pulled(*first, *count);
                if self.pull_matches(state, *offset, *max, bodies) {
                    next.push(*state);
                }
            }
            // A malformed record (a send answered with bodies, a pull with an offset).
            (LogInput::Send { .. }, Some(LogOutput::Pulled { .. }))
            | (LogInput::Pull { .. }, Some(LogOutput::Sent { .. })) => {}
        }
    }

    fn unknown_is_noop(&self, input: &LogInput) -> bool {
        matches!(input, LogInput::Pull { .. })
    }

    fn describe_op(&self, input: &LogInput, output: Option<&LogOutput>) -> String {
        let call = match input {
            LogInput::Send { body } => format!("send({})", self.body(*body)),
            LogInput::Pull { offset, max } => format!("pull(@{offset}, max {max})"),
        };
        let result = match output {
            None => "?".to_string(),
            Some(LogOutput::Sent { offset }) => format!("@{offset}"),
            Some(LogOutput::Pulled { first, count }) => {
                let names: Vec<&str> = (self.tables.pulled(*first, *count).iter())
                    .map(|&body| self.body(body))
                    .collect();
                format!("[{}]", names.join(", "))
            }
        };
        format!("{call} -> {result}")
    }

    fn describe_state(&self, state: &LogState) -> String {
        let entries = self.entries(state);
        let shown: Vec<&str> = entries
            .iter()
            .rev()
            .take(8)
            .rev()
            .map(|&body| self.body(body))
            .collect();
        let elided = if entries.len() > shown.len() {
            "…, "
        } else {
            ""
        };
        format!("log of {} [{elided}{}]", state.length, shown.join(", "))
    }
}

/// Converts a recorded history into per-queue parts (queue name order) and the model to check
/// them with. `Fail` outcomes are dropped (definitely not applied); `Unknown` ones keep no output
/// and never return.
pub fn log_parts(history: &[Operation]) -> (LogModel, Vec<Part<LogInput, LogOutput>>) {
    log_parts_settled(history, &[])
}

/// As `log_parts`, with `settlements` (ascending history indices) applied on the way.
///
/// Three passes, each allocation sized once: the queue of every operation (and each part's
/// count); the bodies of sends, interned, with the body acknowledged at each queue offset; the
/// parts themselves. A pulled body is first compared with the body acknowledged at its offset
/// (nearly always the same text), so most pulled bodies cost no hash lookup.
pub fn log_parts_settled(
    history: &[Operation],
    settlements: &[(usize, Settlement)],
) -> (LogModel, Vec<Part<LogInput, LogOutput>>) {
    let mut queues = Queues::default();
    let queue_of: Vec<u32> = history
        .iter()
        .map(|operation| queues.index_of(queue_name(operation)))
        .collect();
    let mut counts = vec![0usize; queues.names.len()];
    let mut sends = vec![0usize; queues.names.len()];
    for (operation, &queue) in history.iter().zip(&queue_of) {
        counts[queue as usize] += 1;
        if matches!(operation.input, OpInput::Send { .. }) {
            sends[queue as usize] += 1;
        }
    }

    let mut interner = Interner::with_capacity(sends.iter().sum());
    let mut send_body = vec![NO_BODY; history.len()];
    // Per queue, the body acknowledged (or settled) at each offset; a log is never longer than
    // the sends to its queue, so larger offsets are left out.
    let mut at_offset: Vec<Vec<u32>> = sends.iter().map(|&count| vec![NO_BODY; count]).collect();
    let mut settled = settlements.iter().peekable();
    for (index, operation) in history.iter().enumerate() {
        let OpInput::Send { body, .. } = &operation.input else {
            continue;
        };
        let id = interner.intern(body);
        send_body[index] = id;
        let settlement = settled
            .next_if(|(settled, _)| *settled == index)
            .map(|(_, settlement)| *settlement);
        let offset = match (settlement, &operation.outcome) {
            (Some(Settlement::Landed { offset, .. }), _) => offset,
            (None, OpOutcome::Sent { offset }) => *offset,
            _ => continue,
        };
        let offsets = &mut at_offset[queue_of[index] as usize];
        if let Some(slot) = usize::try_from(offset)
            .ok()
            .and_then(|offset| offsets.get_mut(offset))
        {
            if *slot == NO_BODY {
                *slot = id;
            }
        }
    }

    let mut parts: Vec<Part<LogInput, LogOutput>> = queues
        .names
        .iter()
        .zip(&counts)
        .map(|(name, &count)| Part {
            name: name.to_string(),
            ops: Vec::with_capacity(count),
        })
        .collect();
    let mut pulled: Vec<u32> = Vec::new();
    let mut refused: BTreeMap<(String, u32), usize> = BTreeMap::new();
    let mut settled = settlements.iter().peekable();
    for (index, operation) in history.iter().enumerate() {
        let queue = queue_of[index] as usize;
        let input = match &operation.input {
            OpInput::Send { .. } => LogInput::Send {
                body: send_body[index],
            },
            OpInput::Pull { offset, max, .. } => LogInput::Pull {
                offset: *offset,
                max: *max,
            },
        };
        let settlement = settled
            .next_if(|(settled, _)| *settled == index)
            .map(|(_, settlement)| *settlement);
        let complete_us = operation.complete_us;
        let (output, return_us) = match (settlement, &operation.outcome) {
            (None, OpOutcome::Fail) => {
                if let LogInput::Send { body } = input {
                    refused
                        .entry((queues.names[queue].to_string(), body))
                        .or_insert(index);
                }
                continue;
            }
            (Some(Settlement::NeverHappened), _) => continue,
            (
                Some(Settlement::Landed {
                    offset,
                    complete_us,
                }),
                _,
            ) => (Some(LogOutput::Sent { offset }), complete_us),
            (None, OpOutcome::Unknown) => (None, NEVER_RETURNED_US),
            (None, OpOutcome::Sent { offset }) => {
                (Some(LogOutput::Sent { offset: *offset }), complete_us)
            }
            (None, OpOutcome::Pulled { bodies }) => {
                let first = u32::try_from(pulled.len()).expect("fewer than 2^32 pulled bodies");
                let start = match input {
                    LogInput::Pull { offset, .. } => offset,
                    LogInput::Send { .. } => unreachable!("only a pull returns bodies"),
                };
                for (shift, body) in bodies.iter().enumerate() {
                    let acknowledged = usize::try_from(start)
                        .ok()
                        .and_then(|start| at_offset[queue].get(start.checked_add(shift)?))
                        .copied()
                        .filter(|&id| id != NO_BODY && interner.bodies.get(id) == Some(body));
                    pulled.push(acknowledged.unwrap_or_else(|| interner.intern(body)));
                }
                let count = u32::try_from(bodies.len()).expect("fewer than 2^32 bodies per pull");
                (Some(LogOutput::Pulled { first, count }), complete_us)
            }
        };
        parts[queue].ops.push(Op {
            index,
            client: operation.client,
            call_us: operation.invoke_us,
            return_us,
            input,
            output,
        });
    }
    parts.retain(|part| !part.ops.is_empty());
    parts.sort_by(|first, second| first.name.cmp(&second.name));
    let tables = LogTables {
        bodies: interner.bodies,
        pulled,
        refused,
    };
    (LogModel::new(Arc::new(tables)), parts)
}

const NO_BODY: u32 = u32::MAX;

fn queue_name(operation: &Operation) -> &str {
    match &operation.input {
        OpInput::Send { queue, .. } | OpInput::Pull { queue, .. } => queue,
    }
}

/// Queue names numbered in order of first appearance; the last one looked up is tried first.
#[derive(Default)]
struct Queues<'h> {
    names: Vec<&'h str>,
    numbers: FxMap<&'h str, u32>,
    last: Option<u32>,
}

impl<'h> Queues<'h> {
    fn index_of(&mut self, name: &'h str) -> u32 {
        if let Some(last) = self.last.filter(|&last| self.names[last as usize] == name) {
            return last;
        }
        let names = &mut self.names;
        let number = *self.numbers.entry(name).or_insert_with(|| {
            names.push(name);
            u32::try_from(names.len() - 1).expect("fewer than 2^32 queues")
        });
        self.last = Some(number);
        number
    }
}

/// Interns bodies into a `Bodies` table: open addressing over slots holding a hash tag (high 32
/// bits) and the body number plus one (low 32 bits, 0: empty). A tag match is confirmed by
/// comparing the text, so equal numbers mean equal bodies exactly.
struct Interner {
    bodies: Bodies,
    slots: Vec<u64>,
}

impl Interner {
    fn with_capacity(bodies_expected: usize) -> Interner {
        Interner {
            bodies: Bodies {
                text: String::new(),
                ends: Vec::with_capacity(bodies_expected),
            },
            slots: vec![0; (bodies_expected.max(8) * 2).next_power_of_two()],
        }
    }

    fn intern(&mut self, body: &str) -> u32 {
        let hash = hash_of(body);
        let tag = hash >> 32;
        let mask = self.slots.len() - 1;
        let mut slot = hash as usize & mask;
        loop {
            let entry = self.slots[slot];
            if entry == 0 {
                break;
            }
            let id = (entry & u64::from(u32::MAX)) as u32 - 1;
            if entry >> 32 == tag && self.bodies.get(id) == Some(body) {
                return id;
            }
            slot = (slot + 1) & mask;
        }
        let id = self.bodies.push(body);
        assert!(id < u32::MAX - 1, "invariant: body numbers fit a slot");
        self.slots[slot] = (tag << 32) | u64::from(id + 1);
        if self.bodies.len() * 2 > self.slots.len() {
            self.grow();
        }
        id
    }

    fn grow(&mut self) {
        let mut slots = vec![0u64; self.slots.len() * 2];
        let mask = slots.len() - 1;
        for entry in self.slots.iter().copied().filter(|&entry| entry != 0) {
            let id = (entry & u64::from(u32::MAX)) as u32 - 1;
            let hash = hash_of(self.bodies.get(id).expect("interned bodies are stored"));
            let mut slot = hash as usize & mask;
            while slots[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            slots[slot] = entry;
        }
        self.slots = slots;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pulls_read_exactly_the_committed_entries() {
        // Why: the jump-pointer walk must find entry k in long logs; a wrong ancestor would
        // accept pulls that read the wrong entries.
        let bodies: Vec<String> = (0..1000).map(|body| format!("b{body}")).collect();
        let bodies = Bodies::from_distinct(bodies.iter().map(String::as_str));
        let mut model = LogModel::new(Arc::new(LogTables {
            bodies,
            pulled: Vec::new(),
            refused: BTreeMap::new(),
        }));
        let mut state = model.init();
        for body in 0..1000 {
            state = model.append(state, body);
        }
        assert_eq!(model.entries(&state).len(), 1000);
        for offset in [0u64, 1, 63, 64, 500, 997, 999, 1000, 1200] {
            let expected: Vec<u32> = (offset..1000).take(3).map(|body| body as u32).collect();
            assert!(
                model.pull_matches(&state, offset, 3, &expected),
                "offset {offset}"
            );
            if let Some((last, rest)) = expected.split_last() {
                let mut shifted = rest.to_vec();
                shifted.push(last + 1);
                assert!(
                    !model.pull_matches(&state, offset, 3, &shifted),
                    "offset {offset}"
                );
                assert!(
                    !model.pull_matches(&state, offset, 3, rest),
                    "short at {offset}"
                );
            }
        }
    }

    #[test]
    fn equal_logs_are_equal_states() {
        // Why: memoisation relies on two paths to the same log giving the same state.
        let mut model = LogModel::new(Arc::new(LogTables {
            bodies: Bodies::from_distinct(["a", "b"]),
            pulled: Vec::new(),
            refused: BTreeMap::new(),
        }));
        let empty = model.init();
        let first = model.append(empty, 0);
        let first = model.append(first, 1);
        let second = model.append(empty, 0);
        let second = model.append(second, 1);
        assert_eq!(first, second);
        assert_ne!(first, model.append(empty, 1));
    }

    #[test]
    fn equal_bodies_get_equal_numbers() {
        // Why: the search compares body numbers; the interner (and the shortcut through the body
        // acknowledged at an offset) must give equal texts one number and different texts two,
        // also after its table grew.
        let send = |queue: &str, body: String, offset: u64| Operation {
            client: 0,
            input: OpInput::Send {
                queue: queue.to_string(),
                body,
            },
            invoke_us: offset * 10,
            complete_us: offset * 10 + 5,
            outcome: OpOutcome::Sent { offset },
        };
        let mut history: Vec<Operation> = (0..100)
            .map(|offset| send("q", format!("b{offset}"), offset))
            .collect();
        // The same body twice (a duplicate), and a pull that reads an acknowledged body, a body
        // at the wrong offset and one nobody sent.
        history.push(send("q", "b7".to_string(), 100));
        history.push(Operation {
            client: 1,
            input: OpInput::Pull {
                queue: "q".to_string(),
                offset: 3,
                max: 3,
            },
            invoke_us: 2000,
            complete_us: 2001,
            outcome: OpOutcome::Pulled {
                bodies: vec!["b3".to_string(), "b9".to_string(), "ghost".to_string()],
            },
        });
        let (model, parts) = log_parts(&history);
        let ops = &parts[0].ops;
        let body_of = |position: usize| match ops[position].input {
            LogInput::Send { body } => body,
            LogInput::Pull { .. } => panic!("a send"),
        };
        assert_eq!(body_of(7), body_of(100));
        assert_ne!(body_of(7), body_of(8));
        let Some(LogOutput::Pulled { first, count }) = ops[101].output else {
            panic!("a pull with bodies");
        };
        let pulled = model.tables.pulled(first, count);
        assert_eq!(pulled[..2], [body_of(3), body_of(9)]);
        assert_eq!(model.body(pulled[2]), "ghost");
        assert_eq!(model.tables.bodies.len(), 101);
    }
}
