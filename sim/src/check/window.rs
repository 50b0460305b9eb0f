//! The shortest failing window of a part that the checker can find, to show a person why a part
//! is not linearizable.
//!
//! The search reports the longest linearization it built and the state it reached. From that
//! state, the operations not yet linearized are cut at the earliest point where they still cannot
//! be linearized (binary search on how many, in call order). The cut is sound: operations called
//! before the last kept return are kept with their outcome made unknown ("relaxed"), the rest are
//! dropped, so if the whole part were linearizable from that state the window would be too. The
//! window is a witness given the prefix the search found, which the table says.

use super::model::{Model, Op};
use super::wgl::{search, Budget, SearchOutcome, Verdict};

/// A failing window: positions in the part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window<S> {
    /// Operations linearized before the window, in linearization order.
    pub prefix: Vec<usize>,
    /// The state after `prefix`, from which the window fails.
    pub start_state: S,
    /// The window's operations with their outcomes, in call order.
    pub ops: Vec<usize>,
    /// Operations concurrent with the window kept with an unknown outcome.
    pub relaxed: Vec<usize>,
    /// The operation whose return the search could not get past, when it is in the window.
    pub culprit: Option<usize>,
}

/// Finds a short failing window of `ops` after a search that returned `NotLinearizable`.
/// `model` must be the one that searched (its states may be handles into its own tables).
pub fn shortest_window<M: Model>(
    model: &mut M,
    ops: &[Op<M::Input, M::Output>],
    outcome: &SearchOutcome<M::State>,
    steps_max: u64,
) -> Window<M::State> {
    let mut in_prefix = vec![false; ops.len()];
    for &position in &outcome.longest {
        in_prefix[position] = true;
    }
    let mut remaining: Vec<usize> = (0..ops.len())
        .filter(|&position| {
            let op = &ops[position];
            !in_prefix[position] && (op.output.is_some() || !model.unknown_is_noop(&op.input))
        })
        .collect();
    remaining.sort_by_key(|&position| (ops[position].call_us, position));

    let budget = Budget {
        steps_max,
        deadline: None,
    };
    let mut fails = |kept: usize| -> bool {
        let (window, _) = cut(ops, &remaining, kept);
        let result = search(model, outcome.longest_state.clone(), &window, &budget);
        result.verdict == Verdict::NotLinearizable
    };
    let kept = if remaining.is_empty() || !fails(remaining.len()) {
        remaining.len()
    } else {
        // fails(high) holds throughout; find the smallest such count by bisection.
        let (mut low, mut high) = (0, remaining.len());
        while high - low > 1 {
            let middle = low + (high - low) / 2;
            if fails(middle) {
                high = middle;
            } else {
                low = middle;
            }
        }
        high
    };
    let (_, relaxed) = cut(ops, &remaining, kept);
    let window_ops: Vec<usize> = remaining[..kept].to_vec();
    let culprit = outcome
        .stuck_at
        .filter(|position| window_ops.contains(position));
    Window {
        prefix: outcome.longest.clone(),
        start_state: outcome.longest_state.clone(),
        ops: window_ops,
        relaxed,
        culprit,
    }
}

/// The first `kept` of `remaining` as they are, plus later ones called before the last kept
/// return with their outcome made unknown. Returns the operations and the relaxed positions.
fn cut<I: Clone, O: Clone>(
    ops: &[Op<I, O>],
    remaining: &[usize],
    kept: usize,
) -> (Vec<Op<I, O>>, Vec<usize>) {
    let last_known_return = remaining[..kept]
        .iter()
        .filter(|&&position| ops[position].output.is_some())
        .map(|&position| ops[position].return_us)
        .max()
        .unwrap_or(0);
    let mut window: Vec<Op<I, O>> = remaining[..kept]
        .iter()
        .map(|&position| ops[position].clone())
        .collect();
    let mut relaxed = Vec::new();
    for &position in &remaining[kept..] {
        let op = &ops[position];
        if op.call_us <= last_known_return {
            relaxed.push(position);
            window.push(Op {
                output: None,
                return_us: super::model::NEVER_RETURNED_US,
                ..op.clone()
            });
        }
    }
    (window, relaxed)
}
