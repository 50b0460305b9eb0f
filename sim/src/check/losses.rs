//! What follows from a lost acknowledged send, and acknowledged sends no consumer received,
//! from the history and the oracles' violations alone. A master–slave master that lost its
//! unflushed tail reuses those queue offsets for later sends: the offset conflicts and the
//! consumer skips that follow are consequences of the loss, counted and explained with it.

use super::oracles::{SafetyViolation, Sighting};
use crate::history::{OpInput, OpOutcome, Operation};
use std::collections::BTreeSet;

/// How a violation (or an unconsumed send) follows from a lost acknowledged send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossConsequence {
    /// The lost message's queue offset went to a later send, seen by its acknowledgement or by
    /// a consumer that pulled it.
    OffsetReused,
    /// A consumer had read past the lost offsets before the master restarted shorter, and its
    /// next pulls start beyond the offsets the master gave to new sends.
    ConsumerSkip,
}

/// The acknowledged sends the oracles found lost, by history index, by (queue, offset) and by
/// body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LostSends {
    ops: BTreeSet<usize>,
    offsets: BTreeSet<(String, u64)>,
    bodies: BTreeSet<String>,
}

impl LostSends {
    pub fn of(violations: &[SafetyViolation]) -> LostSends {
        let mut lost = LostSends::default();
        for violation in violations {
            if let SafetyViolation::LostAcknowledgedSend {
                op,
                queue,
                offset,
                body,
                ..
            } = violation
            {
                lost.ops.insert(*op);
                lost.offsets.insert((queue.clone(), *offset));
                lost.bodies.insert(body.clone());
            }
        }
        lost
    }

    /// How `violation` follows from these losses, or None when it does not.
    pub fn consequence(&self, violation: &SafetyViolation) -> Option<LossConsequence> {
        let acked_lost =
            |sighting: &Sighting| matches!(sighting, Sighting::Ack { op } if self.ops.contains(op));
        match violation {
            SafetyViolation::OffsetConflict {
                queue,
                offset,
                first,
                first_body,
                second,
                second_body,
            } => {
                let explained = acked_lost(first)
                    || acked_lost(second)
                    || self.offsets.contains(&(queue.clone(), *offset))
                    || self.bodies.contains(first_body)
                    || self.bodies.contains(second_body);
                explained.then_some(LossConsequence::OffsetReused)
            }
            SafetyViolation::ConsumptionSkip {
                queue,
                after_offset,
                next_offset,
                ..
            } => {
                let skipped = (queue.clone(), after_offset + 1)..(queue.clone(), *next_offset);
                (after_offset + 1 < *next_offset && self.offsets.range(skipped).next().is_some())
                    .then_some(LossConsequence::ConsumerSkip)
            }
            _ => None,
        }
    }
}

/// An acknowledged send (not itself found lost) whose body no pull returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unconsumed {
    /// The send's history index.
    pub op: usize,
    pub queue: String,
    pub body: String,
    pub offset: u64,
    /// `ConsumerSkip` when it was acknowledged at the offset of a lost send: a consumer
    /// already past that offset skipped it.
    pub consequence: Option<LossConsequence>,
}

/// Every acknowledged send, not already found lost, whose body no pull of its queue returned.
pub fn unconsumed(history: &[Operation], lost: &LostSends) -> Vec<Unconsumed> {
    let pulled: BTreeSet<(&str, &str)> = history
        .iter()
        .filter_map(|op| match (&op.input, &op.outcome) {
            (OpInput::Pull { queue, .. }, OpOutcome::Pulled { bodies }) => Some(
                bodies
                    .iter()
                    .map(move |body| (queue.as_str(), body.as_str())),
            ),
            _ => None,
        })
        .flatten()
        .collect();
    history
        .iter()
        .enumerate()
        .filter(|(index, _)| !lost.ops.contains(index))
        .filter_map(|(index, op)| match (&op.input, &op.outcome) {
            (OpInput::Send { queue, body }, OpOutcome::Sent { offset })
                if !pulled.contains(&(queue.as_str(), body.as_str())) =>
            {
                let reused = lost.offsets.contains(&(queue.clone(), *offset));
                Some(Unconsumed {
                    op: index,
                    queue: queue.clone(),
                    body: body.clone(),
                    offset: *offset,
                    consequence: reused.then_some(LossConsequence::ConsumerSkip),
                })
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Send #1 (m1) acknowledged at offset 2 of g0/a/0, where m2 was found instead.
    fn m1_lost_at_offset_2() -> LostSends {
        LostSends::of(&[SafetyViolation::LostAcknowledgedSend {
            op: 1,
            queue: "g0/a/0".into(),
            offset: 2,
            body: "m1".into(),
            found: Some("m2".into()),
        }])
    }

    fn op(input: OpInput, outcome: OpOutcome) -> Operation {
        Operation {
            client: 0,
            input,
            invoke_us: 0,
            complete_us: 1,
            outcome,
        }
    }

    fn send(body: &str, offset: u64) -> Operation {
        let input = OpInput::Send {
            queue: "g0/a/0".into(),
            body: body.into(),
        };
        op(input, OpOutcome::Sent { offset })
    }

    // Why: the promise that consumers receive every acknowledged message is checked per seed:
    // an acknowledged send no pull returned is reported, unless it was found lost (then it is
    // counted with the loss), and one acknowledged at a lost send's reused offset is the loss's
    // consumer skip.
    #[test]
    fn an_acknowledged_send_no_pull_returned_is_reported() {
        let pull = op(
            OpInput::Pull {
                queue: "g0/a/0".into(),
                offset: 0,
                max: 32,
            },
            OpOutcome::Pulled {
                bodies: vec!["m0".into()],
            },
        );
        let history = vec![send("m0", 0), send("m1", 1), send("m2", 2), pull];
        let none = LostSends::of(&[]);
        let found: Vec<(usize, Option<LossConsequence>)> = unconsumed(&history, &none)
            .iter()
            .map(|u| (u.op, u.consequence))
            .collect();
        assert_eq!(found, vec![(1, None), (2, None)]);

        let lost = m1_lost_at_offset_2();
        let found: Vec<(usize, Option<LossConsequence>)> = unconsumed(&history, &lost)
            .iter()
            .map(|u| (u.op, u.consequence))
            .collect();
        assert_eq!(found, vec![(2, Some(LossConsequence::ConsumerSkip))]);
    }

    // Why: an offset conflict at a lost send's offset is the loss's reuse, not a fresh bug,
    // and a conflict elsewhere stays unexplained.
    #[test]
    fn a_conflict_at_a_lost_offset_is_its_reuse() {
        let lost = m1_lost_at_offset_2();
        let conflict = |offset| SafetyViolation::OffsetConflict {
            queue: "g0/a/0".into(),
            offset,
            first: Sighting::Pull { op: 5 },
            first_body: "x".into(),
            second: Sighting::FinalLog,
            second_body: "y".into(),
        };
        assert_eq!(
            lost.consequence(&conflict(2)),
            Some(LossConsequence::OffsetReused)
        );
        assert_eq!(lost.consequence(&conflict(3)), None);
    }
}
