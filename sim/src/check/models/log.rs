//! The per-queue message log: a send appends its body and returns the queue offset it got; a
//! pull at offset k with a limit of `max` returns exactly the entries k..k+min(max, len−k) at its
//! linearization point (pulls read the leader's committed log, so nothing less is linearizable).
//!
//! Bodies are interned to numbers once per history. A state is a length and a handle into a trie
//! of every log the search has built: equal logs get the same handle, so states are two words,
//! compare exactly (no hash collisions) and memoise well. Reading entry k of a state walks the
//! trie with Myers' jump pointers in O(log length).

use std::sync::Arc;

use crate::check::hashing::FxMap;
use crate::check::model::{Model, Op, Part, NEVER_RETURNED_US};
use crate::check::settle::Settlement;
use crate::history::{OpInput, OpOutcome, Operation};

/// A send or a pull, bodies as interned numbers (see `LogModel::body`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LogInput {
    Send { body: u32 },
    Pull { offset: u64, max: u32 },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LogOutput {
    Sent { offset: u64 },
    Pulled { bodies: Vec<u32> },
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
    bodies: Arc<Vec<String>>,
    nodes: Vec<TrieNode>,
    children: FxMap<(u32, u32), u32>,
}

impl Clone for LogModel {
    fn clone(&self) -> LogModel {
        LogModel::new(Arc::clone(&self.bodies))
    }
}

impl LogModel {
    /// A model whose body numbers index `bodies`.
    pub fn new(bodies: Arc<Vec<String>>) -> LogModel {
        LogModel {
            bodies,
            nodes: vec![TrieNode {
                parent: ROOT,
                jump: ROOT,
                depth: 0,
                body: u32::MAX,
            }],
            children: FxMap::default(),
        }
    }

    /// The text of an interned body.
    pub fn body(&self, body: u32) -> &str {
        self.bodies
            .get(body as usize)
            .map(String::as_str)
            .unwrap_or("?")
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
            (LogInput::Pull { offset, max }, Some(LogOutput::Pulled { bodies })) => {
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
            Some(LogOutput::Pulled { bodies }) => {
                let names: Vec<&str> = bodies.iter().map(|&body| self.body(body)).collect();
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
pub fn log_parts_settled<'h>(
    history: &'h [Operation],
    settlements: &[(usize, Settlement)],
) -> (LogModel, Vec<Part<LogInput, LogOutput>>) {
    let mut interned: FxMap<&'h str, u32> = FxMap::default();
    interned.reserve(history.len());
    let mut bodies: Vec<String> = Vec::with_capacity(history.len());
    let mut intern = |body: &'h str, bodies: &mut Vec<String>| -> u32 {
        *interned.entry(body).or_insert_with(|| {
            bodies.push(body.to_string());
            u32::try_from(bodies.len() - 1).expect("fewer than 2^32 bodies")
        })
    };
    // Count first so that every part's operations are allocated once.
    let mut part_of: FxMap<&'h str, usize> = FxMap::default();
    let mut counts: Vec<usize> = Vec::new();
    for operation in history {
        let queue = match &operation.input {
            OpInput::Send { queue, .. } | OpInput::Pull { queue, .. } => queue.as_str(),
        };
        let part = *part_of.entry(queue).or_insert_with(|| {
            counts.push(0);
            counts.len() - 1
        });
        counts[part] += 1;
    }
    let mut names: Vec<&str> = vec![""; counts.len()];
    for (name, &part) in &part_of {
        names[part] = name;
    }
    let mut parts: Vec<Part<LogInput, LogOutput>> = names
        .iter()
        .zip(&counts)
        .map(|(name, &count)| Part {
            name: name.to_string(),
            ops: Vec::with_capacity(count),
        })
        .collect();
    let mut settlements = settlements.iter().peekable();
    for (index, operation) in history.iter().enumerate() {
        let (queue, input) = match &operation.input {
            OpInput::Send { queue, body } => (
                queue.as_str(),
                LogInput::Send {
                    body: intern(body, &mut bodies),
                },
            ),
            OpInput::Pull { queue, offset, max } => (
                queue.as_str(),
                LogInput::Pull {
                    offset: *offset,
                    max: *max,
                },
            ),
        };
        let settlement = settlements
            .next_if(|(settled, _)| *settled == index)
            .map(|(_, settlement)| *settlement);
        let complete_us = operation.complete_us;
        let (output, return_us) = match (settlement, &operation.outcome) {
            (Some(Settlement::NeverHappened), _) | (None, OpOutcome::Fail) => continue,
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
            (None, OpOutcome::Pulled { bodies: pulled }) => {
                let ids = pulled
                    .iter()
                    .map(|body| intern(body, &mut bodies))
                    .collect();
                (Some(LogOutput::Pulled { bodies: ids }), complete_us)
            }
        };
        let part = part_of[queue];
        parts[part].ops.push(Op {
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
    (LogModel::new(Arc::new(bodies)), parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pulls_read_exactly_the_committed_entries() {
        // Why: the jump-pointer walk must find entry k in long logs; a wrong ancestor would
        // accept pulls that read the wrong entries.
        let bodies: Vec<String> = (0..1000).map(|body| format!("b{body}")).collect();
        let mut model = LogModel::new(Arc::new(bodies));
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
        let mut model = LogModel::new(Arc::new(vec!["a".to_string(), "b".to_string()]));
        let empty = model.init();
        let first = model.append(empty, 0);
        let first = model.append(first, 1);
        let second = model.append(empty, 0);
        let second = model.append(second, 1);
        assert_eq!(first, second);
        assert_ne!(first, model.append(empty, 1));
    }
}
