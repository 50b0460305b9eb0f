//! The kind of a finding, as a type every layer can name: reports and tables show its text,
//! and a scenario's `expect.must_find` lists the kinds its story must produce.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cmp::Ordering;
use std::fmt;

/// The kind of a finding. Its text (`lost_acked`, `duplicate`...) is what reports, baselines
/// and tables show; kinds order by that text, so maps keyed by kind keep the files' order,
/// and debug-print as it (quoted), as the findings table's `first:` line always showed them.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum FindingKind {
    Panic,
    RaftInvariant,
    RecoveryFailed,
    NotLinearizable,
    NotSettled,
    /// An acknowledged send missing from the final log (`SafetyViolation::LostAcknowledgedSend`).
    LostAcked,
    OffsetConflict,
    Duplicate,
    ConsumptionSkip,
    ConsumptionBackwards,
    ReadOfUnacknowledged,
    FailedSendApplied,
    UnsentEntry,
    ReplicaDivergence,
    /// An offset conflict that follows from a lost acknowledged send: the lost message's queue
    /// offset was given to a later send (a master–slave master that lost its unflushed tail
    /// reuses those offsets), seen by its acknowledgement or by a consumer that pulled it.
    LostAckedOffsetReused,
    /// A consumption skip over offsets where acknowledged sends were lost: the consumer had
    /// read past them before the master restarted shorter.
    LostAckedConsumerSkip,
    /// An acknowledged send that no consumer received by the end of the run (the consumers
    /// read on until every queue was drained, within the settle bound).
    AckedNotConsumed,
    /// Sends acknowledged at another queue offset than the one they were stored at (one
    /// finding per group: its broker answers SEND_OK with the wrong offset).
    AckedWrongOffset,
    /// A group that did not settle left some acknowledged sends undecided (`Finding::LossUnknown`).
    LossUnknown,
    /// New terms no cause explains (`Finding::UnexplainedElection`).
    UnexplainedElection,
}

impl FindingKind {
    pub const ALL: [FindingKind; 20] = [
        FindingKind::Panic,
        FindingKind::RaftInvariant,
        FindingKind::RecoveryFailed,
        FindingKind::NotLinearizable,
        FindingKind::NotSettled,
        FindingKind::LostAcked,
        FindingKind::OffsetConflict,
        FindingKind::Duplicate,
        FindingKind::ConsumptionSkip,
        FindingKind::ConsumptionBackwards,
        FindingKind::ReadOfUnacknowledged,
        FindingKind::FailedSendApplied,
        FindingKind::UnsentEntry,
        FindingKind::ReplicaDivergence,
        FindingKind::LostAckedOffsetReused,
        FindingKind::LostAckedConsumerSkip,
        FindingKind::AckedNotConsumed,
        FindingKind::AckedWrongOffset,
        FindingKind::LossUnknown,
        FindingKind::UnexplainedElection,
    ];

    /// The kind's text in reports, baselines and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Panic => "panic",
            FindingKind::RaftInvariant => "raft_invariant",
            FindingKind::RecoveryFailed => "recovery_failed",
            FindingKind::NotLinearizable => "not_linearizable",
            FindingKind::NotSettled => "not_settled",
            FindingKind::LostAcked => "lost_acked",
            FindingKind::OffsetConflict => "offset_conflict",
            FindingKind::Duplicate => "duplicate",
            FindingKind::ConsumptionSkip => "consumption_skip",
            FindingKind::ConsumptionBackwards => "consumption_backwards",
            FindingKind::ReadOfUnacknowledged => "read_of_unacknowledged",
            FindingKind::FailedSendApplied => "failed_send_applied",
            FindingKind::UnsentEntry => "unsent_entry",
            FindingKind::ReplicaDivergence => "replica_divergence",
            FindingKind::LostAckedOffsetReused => "lost_acked_offset_reused",
            FindingKind::LostAckedConsumerSkip => "lost_acked_consumer_skip",
            FindingKind::AckedNotConsumed => "acked_not_consumed",
            FindingKind::AckedWrongOffset => "acked_wrong_offset",
            FindingKind::LossUnknown => "loss_unknown",
            FindingKind::UnexplainedElection => "unexplained_election",
        }
    }

    /// Kinds about progress, not data: a group that did not settle, what that left
    /// undecided, and elections nothing explains.
    pub fn is_liveness(self) -> bool {
        matches!(
            self,
            FindingKind::NotSettled | FindingKind::LossUnknown | FindingKind::UnexplainedElection
        )
    }

    /// Kinds that only follow from a lost acknowledged send: counted and explained with the
    /// loss, not apart.
    pub fn is_consequence_of_loss(self) -> bool {
        matches!(
            self,
            FindingKind::LostAckedOffsetReused | FindingKind::LostAckedConsumerSkip
        )
    }
}

impl fmt::Debug for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A finding kind's text that names no kind.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a finding kind")]
pub struct UnknownFindingKind(pub String);

impl std::str::FromStr for FindingKind {
    type Err = UnknownFindingKind;
    fn from_str(text: &str) -> Result<FindingKind, UnknownFindingKind> {
        FindingKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| UnknownFindingKind(text.to_string()))
    }
}

impl Ord for FindingKind {
    fn cmp(&self, other: &FindingKind) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for FindingKind {
    fn partial_cmp(&self, other: &FindingKind) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Serialize for FindingKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FindingKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<FindingKind, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
