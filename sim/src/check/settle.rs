//! Settling before the search: what the final committed logs tell about sends whose outcome was
//! `Unknown`. A send whose (unique) body is in its queue's final log landed at that offset; one
//! whose body is not there never happened. Unsettled unknown sends are what make the search
//! blow up (each may take effect at any point, or never), so this turns an exponential search into
//! a nearly linear one.
//!
//! A settled send keeps no completion time of its own: the client gave up waiting, and the send
//! may have taken effect later. Its completion is bounded instead by what observed it: an
//! acknowledged send at a higher offset, or a pull that returned entries up to or past its offset
//! (either one must come after it in any linearization).

use std::collections::BTreeMap;

use super::hashing::FxMap;
use crate::history::{OpInput, OpOutcome, Operation};

/// What settling did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SettleSummary {
    /// Unknown sends found in the final log, now `Sent` at that offset.
    pub landed: usize,
    /// Unknown sends absent from the final log, now `Fail` (never happened).
    pub never_happened: usize,
    /// Unknown sends left alone: no final log for their queue, or a body that is there twice.
    pub left_unknown: usize,
}

/// The final committed log of each queue, oldest entry first.
pub type FinalLogs = BTreeMap<String, Vec<String>>;

/// Returns the history with unknown sends settled against `final_logs`. Operations keep their
/// positions (a send that never happened becomes `Fail`, which the checker drops), so indices in
/// reports still point into the original history.
pub fn settle(history: &[Operation], final_logs: &FinalLogs) -> (Vec<Operation>, SettleSummary) {
    let (settlements, summary) = settlements(history, final_logs);
    let mut settled = history.to_vec();
    for (index, settlement) in settlements {
        settlement.apply(&mut settled[index]);
    }
    (settled, summary)
}

/// How one unknown send was settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// Landed at `offset`, observed by `complete_us` at the latest.
    Landed {
        offset: u64,
        complete_us: u64,
    },
    NeverHappened,
}

impl Settlement {
    pub fn apply(self, operation: &mut Operation) {
        match self {
            Settlement::Landed {
                offset,
                complete_us,
            } => {
                operation.outcome = OpOutcome::Sent { offset };
                operation.complete_us = complete_us;
            }
            Settlement::NeverHappened => operation.outcome = OpOutcome::Fail,
        }
    }
}

/// The settlement of each unknown send that can be settled, by history index (ascending).
///
/// Only the queues that have unknown sends are looked at, and only for the bodies of those
/// sends: a final log is scanned once against them instead of indexing every entry.
pub fn settlements(
    history: &[Operation],
    final_logs: &FinalLogs,
) -> (Vec<(usize, Settlement)>, SettleSummary) {
    let mut summary = SettleSummary::default();
    let unknown_sends: Vec<(usize, &str, &str)> = history
        .iter()
        .enumerate()
        .filter_map(
            |(index, operation)| match (&operation.input, &operation.outcome) {
                (OpInput::Send { queue, body }, OpOutcome::Unknown) => {
                    Some((index, queue.as_str(), body.as_str()))
                }
                _ => None,
            },
        )
        .collect();
    if unknown_sends.is_empty() {
        return (Vec::new(), summary);
    }
    // Per queue with a final log: where each unknown body is in it (None: absent).
    let mut places: FxMap<&str, FxMap<&str, Option<Place>>> = FxMap::default();
    for &(_, queue, body) in &unknown_sends {
        if final_logs.contains_key(queue) {
            places.entry(queue).or_default().insert(body, None);
        }
    }
    for (queue, bodies) in &mut places {
        for (offset, body) in final_logs[*queue].iter().enumerate() {
            if let Some(place) = bodies.get_mut(body.as_str()) {
                *place = Some(match place {
                    None => Place::Once(offset as u64),
                    Some(_) => Place::Twice,
                });
            }
        }
    }
    let bounds = observer_bounds(history, final_logs, &places);
    let mut settlements = Vec::new();
    for (index, queue, body) in unknown_sends {
        let (Some(queue_places), Some(queue_bounds)) = (places.get(queue), bounds.get(queue))
        else {
            summary.left_unknown += 1;
            continue;
        };
        match queue_places.get(body).copied().flatten() {
            None => {
                settlements.push((index, Settlement::NeverHappened));
                summary.never_happened += 1;
            }
            Some(Place::Twice) => summary.left_unknown += 1,
            Some(Place::Once(offset)) => {
                let complete_us = queue_bounds[offset as usize + 1].max(history[index].invoke_us);
                settlements.push((
                    index,
                    Settlement::Landed {
                        offset,
                        complete_us,
                    },
                ));
                summary.landed += 1;
            }
        }
    }
    (settlements, summary)
}

#[derive(Clone, Copy)]
enum Place {
    Once(u64),
    Twice,
}

/// Per queue, `bounds[k]`: the earliest completion of an operation that observed at least k
/// entries (an acknowledged send at offset ≥ k, which found k entries before it, or a pull whose
/// entries reach offset k−1 or beyond), `u64::MAX` when none; a send settled at offset o
/// completes by `bounds[o + 1]`. Only for the queues in `queues`.
fn observer_bounds<'a, V>(
    history: &[Operation],
    final_logs: &FinalLogs,
    queues: &FxMap<&'a str, V>,
) -> FxMap<&'a str, Vec<u64>> {
    let mut bounds: FxMap<&str, Vec<u64>> = queues
        .keys()
        .map(|&queue| (queue, vec![u64::MAX; final_logs[queue].len() + 2]))
        .collect();
    for operation in history {
        let (queue, reach) = match (&operation.input, &operation.outcome) {
            (OpInput::Send { queue, .. }, OpOutcome::Sent { offset }) => (queue, *offset),
            (OpInput::Pull { queue, offset, .. }, OpOutcome::Pulled { bodies })
                if !bodies.is_empty() =>
            {
                (queue, offset + bodies.len() as u64)
            }
            _ => continue,
        };
        let Some(by_reach) = bounds.get_mut(queue.as_str()) else {
            continue;
        };
        let reach = (reach as usize).min(by_reach.len() - 1);
        by_reach[reach] = by_reach[reach].min(operation.complete_us);
    }
    // Suffix minimum: an observer that saw r entries saw every shorter prefix too.
    for by_reach in bounds.values_mut() {
        for reach in (0..by_reach.len() - 1).rev() {
            by_reach[reach] = by_reach[reach].min(by_reach[reach + 1]);
        }
    }
    bounds
}
