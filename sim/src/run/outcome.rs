//! What a report keeps of one seed: its `SeedOutcome`, the `Finding`s it showed (each of a
//! typed `FindingKind`), its operation counts and its check summary. Holds no wall-clock data.

use crate::check::oracles::SafetyViolation;
use crate::check::Verdict;
pub use crate::ids::{FindingKind, UnknownFindingKind};
use crate::metrics::FailoverTimeline;
use crate::world::observe::{InvariantViolation, LostWrites};
use broker_core::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Something wrong that a seed showed. Safety findings first, then liveness.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Finding {
    /// A node panicked (an assertion in the core or the adapter): the run stopped there.
    Panic { message: String },
    /// A Raft invariant across nodes broke (see `world::observe`): the first break of its
    /// kind in the seed, and how many more of the same kind followed (one defect breaks the
    /// same invariant at every later step; they are one finding, not hundreds).
    RaftInvariant {
        at_us: u64,
        violation: InvariantViolation,
        #[serde(default)]
        repeats: u32,
    },
    /// A restarting replica could not rebuild itself from its disk.
    RecoveryFailed {
        at_us: u64,
        node: NodeId,
        error: String,
    },
    /// A safety oracle over the history and the final logs (`check::oracles`,
    /// `check::losses`): lost acknowledged send, offset conflict, duplicate, consumption skip
    /// or regression, read of an unacknowledged send, failed send applied, unsent entry,
    /// replica divergence, acknowledged send never consumed, and the consequences of a loss.
    Safety { kind: FindingKind, detail: String },
    /// A queue's history is not linearizable against the log model; `window` is the shortest
    /// failing window the checker found, as text.
    NotLinearizable { queue: String, window: String },
    /// Liveness: the group had no single caught-up leader within `settle_max` of healing.
    NotSettled { group: u32 },
    /// The group did not settle, so whether some acknowledged sends were kept is unknown: they
    /// may be committed but not yet applied (past the log its replicas had applied), or
    /// unconsumed because the consumers could not drain it. One per such group; never counted
    /// as data loss.
    LossUnknown { group: u32, detail: String },
    /// Liveness: the group entered new terms that no fault, perturbation, dropped datagram or
    /// election under way explains (`run::elections`): its timers misbehave. One per group.
    UnexplainedElection {
        group: u32,
        /// How many of the group's new terms were unexplained.
        count: u32,
        /// The first: when, which replica, which term.
        first_at_us: u64,
        node: NodeId,
        term: u64,
        /// How far back a cause was looked for.
        window_us: u64,
    },
}

impl Finding {
    pub fn is_safety(&self) -> bool {
        !self.kind().is_liveness()
    }

    pub fn kind(&self) -> FindingKind {
        match self {
            Finding::Panic { .. } => FindingKind::Panic,
            Finding::RaftInvariant { .. } => FindingKind::RaftInvariant,
            Finding::RecoveryFailed { .. } => FindingKind::RecoveryFailed,
            Finding::Safety { kind, .. } => *kind,
            Finding::NotLinearizable { .. } => FindingKind::NotLinearizable,
            Finding::NotSettled { .. } => FindingKind::NotSettled,
            Finding::LossUnknown { .. } => FindingKind::LossUnknown,
            Finding::UnexplainedElection { .. } => FindingKind::UnexplainedElection,
        }
    }
}

impl FindingKind {
    /// The kind of a safety oracle's violation taken on its own (not as a loss's consequence).
    pub fn of_violation(violation: &SafetyViolation) -> FindingKind {
        match violation {
            SafetyViolation::AckedAtOtherOffset { .. } => FindingKind::AckedWrongOffset,
            SafetyViolation::LostAcknowledgedSend { .. } => FindingKind::LostAcked,
            SafetyViolation::OffsetConflict { .. } => FindingKind::OffsetConflict,
            SafetyViolation::Duplicate { .. } => FindingKind::Duplicate,
            SafetyViolation::ConsumptionSkip { .. } => FindingKind::ConsumptionSkip,
            SafetyViolation::ConsumptionBackwards { .. } => FindingKind::ConsumptionBackwards,
            SafetyViolation::ReadOfUnacknowledged { .. } => FindingKind::ReadOfUnacknowledged,
            SafetyViolation::FailedSendApplied { .. } => FindingKind::FailedSendApplied,
            SafetyViolation::UnsentEntryInLog { .. } => FindingKind::UnsentEntry,
            SafetyViolation::ReplicaDivergence { .. } => FindingKind::ReplicaDivergence,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpCounts {
    /// Sends only: acknowledged, definitely failed, unknown.
    pub sent_ok: u32,
    pub failed: u32,
    pub unknown: u32,
    /// Pulls that returned messages (or nothing), failed, or got no answer.
    #[serde(default)]
    pub pulls_ok: u32,
    #[serde(default)]
    pub pulls_failed: u32,
    #[serde(default)]
    pub pulls_unknown: u32,
    /// Distinct message bodies consumers received.
    #[serde(default)]
    pub delivered: u32,
}

/// A disk fault that damaged a replica's disk (`world::damage`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskFault {
    pub at_us: u64,
    pub node: NodeId,
    /// The fault's kind and what it did, e.g. "Corrupt (bits flipped in entry i370)".
    pub damage: String,
}

impl fmt::Display for DiskFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} on {} at {:.3} s",
            self.damage,
            self.node,
            self.at_us as f64 / 1e6
        )
    }
}

/// The disk faults on `node` at or before `at_us`, as one clause ("explained by ...").
pub fn explain_by_disk_faults<'a>(
    faults: impl IntoIterator<Item = &'a DiskFault>,
    node: Option<NodeId>,
    at_us: u64,
) -> Option<String> {
    let named: Vec<String> = faults
        .into_iter()
        .filter(|fault| node.is_none_or(|node| fault.node == node) && fault.at_us <= at_us)
        .map(|fault| fault.to_string())
        .collect();
    (!named.is_empty()).then(|| format!("explained by the disk faults: {}", named.join("; ")))
}

/// Everything a report keeps of one seed. Holds no wall-clock data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedOutcome {
    pub seed: u64,
    pub trace_hash: String,
    pub end_us: u64,
    pub ops: OpCounts,
    pub failovers: Vec<FailoverTimeline>,
    /// Faults that cut a leader off from its majority but healed before any replica replaced
    /// it (`FailoverFault::healed_us`): not failovers; their client stage is the cut's cost.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cuts_healed: Vec<FailoverTimeline>,
    pub settle_us: Vec<Option<u64>>,
    pub check: CheckSummary,
    /// Leaders elected during the seed (each replica becoming leader in a term counts once;
    /// the first election too), and the highest term any replica reached.
    #[serde(default)]
    pub elections: u32,
    #[serde(default)]
    pub highest_term: u64,
    pub findings: Vec<Finding>,
    /// Master–slave: masters that restarted with fewer entries than they had acknowledged:
    /// the explanation of this seed's lost acknowledged sends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost_writes: Vec<LostWrites>,
    /// issue 15: the disk faults that damaged something, in time order: what explains a
    /// refused recovery or an acknowledged send lost from a damaged disk.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disk_faults: Vec<DiskFault>,
    /// The faults a `Random` swarm drew for this seed (`nemesis::swarm`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub swarm: Vec<super::spec::SwarmDrawReport>,
    /// How often each event trigger fired (`world::triggers`), by trigger.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub triggers: BTreeMap<String, u32>,
    /// Raft event coverage (`world::coverage::EVENTS`): how often each event happened.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub events: BTreeMap<String, u32>,
    /// The configuration this seed drew from the scenario's `swarm` ranges, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<crate::scenario::swarm_config::SwarmConfig>,
    /// A self-contained HTML timeline of the first non-linearizable queue, if any.
    #[serde(skip)]
    pub html: Option<String>,
}

/// The linearizability verdict of one seed, with deterministic figures only.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSummary {
    /// The checker's verdict over every queue; None when the seed panicked before its check.
    /// Written "linearizable", "not_linearizable", "unknown" (the step budget ran out) or "".
    #[serde(with = "verdict_text")]
    pub verdict: Option<Verdict>,
    pub queues: u32,
    pub ops: u64,
    pub steps: u64,
    /// Unknown sends resolved by the final logs: landed / never happened / left unknown.
    pub settled_landed: u32,
    pub settled_never_happened: u32,
    pub left_unknown: u32,
}

impl CheckSummary {
    /// The verdict's text in reports and tables.
    pub fn verdict_name(&self) -> &'static str {
        verdict_text::name(self.verdict)
    }
}

/// `CheckSummary::verdict` as the text reports have always held.
mod verdict_text {
    use crate::check::Verdict;
    use serde::{Deserialize, Deserializer, Serializer};

    const NAMES: [(Option<Verdict>, &str); 4] = [
        (Some(Verdict::Linearizable), "linearizable"),
        (Some(Verdict::NotLinearizable), "not_linearizable"),
        (Some(Verdict::Unknown), "unknown"),
        (None, ""),
    ];

    pub fn name(verdict: Option<Verdict>) -> &'static str {
        NAMES
            .iter()
            .find(|(v, _)| *v == verdict)
            .map(|(_, name)| *name)
            .expect("invariant: NAMES lists every verdict and None")
    }

    pub fn serialize<S: Serializer>(
        verdict: &Option<Verdict>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(name(*verdict))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Verdict>, D::Error> {
        let text = String::deserialize(deserializer)?;
        NAMES
            .iter()
            .find(|(_, name)| *name == text)
            .map(|(verdict, _)| *verdict)
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a check verdict")))
    }
}

impl SeedOutcome {
    pub fn panicked(seed: u64, message: String) -> SeedOutcome {
        SeedOutcome {
            seed,
            trace_hash: String::from("-"),
            end_us: 0,
            ops: OpCounts::default(),
            failovers: Vec::new(),
            cuts_healed: Vec::new(),
            settle_us: Vec::new(),
            check: CheckSummary::default(),
            elections: 0,
            highest_term: 0,
            findings: vec![Finding::Panic { message }],
            lost_writes: Vec::new(),
            disk_faults: Vec::new(),
            swarm: Vec::new(),
            triggers: BTreeMap::new(),
            events: BTreeMap::new(),
            config: None,
            html: None,
        }
    }

    /// The worst client-stage failover of this seed.
    pub fn worst_client_us(&self) -> Option<u64> {
        self.failovers.iter().filter_map(|f| f.client_us).max()
    }

    /// How many of this seed's findings are of `kind`.
    pub fn count(&self, kind: FindingKind) -> usize {
        self.findings.iter().filter(|f| f.kind() == kind).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Why: reports and baselines key findings by their text and a BTreeMap keyed by kind must
    // keep the files' order, so kinds must order exactly as their texts do and read back.
    #[test]
    fn kinds_order_and_read_back_as_their_text() {
        let mut by_kind = FindingKind::ALL.to_vec();
        by_kind.sort();
        let mut by_text: Vec<&str> = FindingKind::ALL.iter().map(|k| k.as_str()).collect();
        by_text.sort_unstable();
        let sorted_kinds: Vec<&str> = by_kind.iter().map(|k| k.as_str()).collect();
        assert_eq!(sorted_kinds, by_text);
        for kind in FindingKind::ALL {
            assert_eq!(kind.as_str().parse::<FindingKind>(), Ok(kind));
        }
        assert!("lost".parse::<FindingKind>().is_err());
        let ron_text = ron::to_string(&FindingKind::LostAcked).expect("serialises");
        assert_eq!(ron_text, "\"lost_acked\"");
    }

    // Why: a panicked seed has no verdict and its report has always said "" for it.
    #[test]
    fn verdicts_serialise_as_their_old_text() {
        let summary = |verdict| CheckSummary {
            verdict,
            ..CheckSummary::default()
        };
        let json = |s: &CheckSummary| serde_json::to_string(s).expect("serialises");
        assert!(json(&summary(None)).contains("\"verdict\":\"\""));
        let not = summary(Some(Verdict::NotLinearizable));
        assert!(json(&not).contains("\"verdict\":\"not_linearizable\""));
        let back: CheckSummary = serde_json::from_str(&json(&not)).expect("reads back");
        assert_eq!(back, not);
    }
}
