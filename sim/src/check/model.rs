//! What the linearizability search checks against: a sequential specification (`Model`) and
//! the operations of one part of a history (`Op`, `Part`).

use std::fmt::Debug;
use std::hash::Hash;

/// Return time of an operation that never returned: it may take effect at any point after its
/// call, or never (Porcupine gives such operations an infinite return time).
pub const NEVER_RETURNED_US: u64 = u64::MAX;

/// One operation as the checker sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op<I, O> {
    /// Position of the operation in the source history, for reports.
    pub index: usize,
    pub client: u32,
    pub call_us: u64,
    /// `NEVER_RETURNED_US` when the operation never returned.
    pub return_us: u64,
    pub input: I,
    /// `None`: the outcome is unknown, any output is accepted; the operation may take effect at
    /// any time after its call, or never.
    pub output: Option<O>,
}

/// The operations that touch one independent piece of state (one queue, one key): by
/// P-compositionality a history is linearizable iff every part is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part<I, O> {
    pub name: String,
    pub ops: Vec<Op<I, O>>,
}

/// Why a part cannot be linearized, found without the search: the operations (history indices)
/// that cannot be linearized together and the rule they break, in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Witness {
    pub ops: Vec<usize>,
    /// The operation whose output breaks the rule (one of `ops`).
    pub culprit: usize,
    pub rule: String,
}

/// What a polynomial-time decision of a part found (`Model::decide`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decided {
    /// A linearization exists (the decision found one and replayed it).
    Linearizable,
    /// No linearization exists; the witness says which operations and which rule.
    Not(Witness),
    /// Left to the search: why the part is ambiguous for the rules (`None`: the model has no
    /// polynomial method for a part like this one, e.g. a register whose values repeat).
    Open(Option<String>),
}

/// A sequential specification.
///
/// `step` takes `&mut self` so that a model may intern what it sees (the log model keeps its
/// entries in an arena and its states are small handles into it); the checker gives every part
/// its own clone of the model, so a model must start clean on `clone`.
pub trait Model: Clone + Send {
    type State: Clone + Eq + Hash + Debug + Send;
    type Input: Clone + Debug + Send + Sync;
    type Output: Clone + Debug + Send + Sync;

    fn init(&mut self) -> Self::State;

    /// Pushes onto `next` every state the model may be in after `input` takes effect in `state`
    /// and returns `output` (`None`: an unknown output, any is accepted). Pushes nothing when the
    /// step is illegal. Deterministic models push at most one state.
    fn step(
        &mut self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
        next: &mut Vec<Self::State>,
    );

    /// Splits operations into independent parts (per queue, per key). Default: one part.
    fn partition(
        &self,
        ops: Vec<Op<Self::Input, Self::Output>>,
    ) -> Vec<Part<Self::Input, Self::Output>> {
        vec![Part {
            name: "all".to_string(),
            ops,
        }]
    }

    /// True when an operation with an unknown outcome can never change the state (a read): the
    /// search then leaves it out, as it constrains nothing.
    fn unknown_is_noop(&self, _input: &Self::Input) -> bool {
        false
    }

    /// True when the operation, with this known output, leaves every state in which it is legal
    /// unchanged (a read, a failed cas): the search then linearizes it as soon as it is legal and
    /// never branches on it. An operation that merely leaves *this* state unchanged (a write of
    /// the value already there) does not qualify: later it would change the state. Default: the
    /// operations whose unknown outcome is a no-op (so every outcome is).
    fn is_observation(&self, input: &Self::Input, _output: &Self::Output) -> bool {
        self.unknown_is_noop(input)
    }

    /// A polynomial-time refutation of a part: a small set of operations that cannot be
    /// linearized together whatever the others do (`None`: none found; it proves nothing). Must
    /// be sound: a linearizable part never has one. Default: none.
    fn refute(&self, _ops: &[Op<Self::Input, Self::Output>]) -> Option<Witness> {
        None
    }

    /// A polynomial-time decision of a part, exact where it answers (`Linearizable` only when a
    /// linearization exists, `Not` only when none does); `Open` leaves the part to the search.
    /// Runs after `refute` found nothing. Default: `Open(None)`.
    fn decide(&self, _ops: &[Op<Self::Input, Self::Output>]) -> Decided {
        Decided::Open(None)
    }

    /// One line for tables and the HTML timeline, e.g. `send(b17) -> 4`.
    fn describe_op(&self, input: &Self::Input, output: Option<&Self::Output>) -> String;

    fn describe_state(&self, state: &Self::State) -> String {
        format!("{state:?}")
    }
}
