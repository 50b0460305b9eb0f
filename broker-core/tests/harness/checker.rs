//! Cross-node Raft properties, checked by the harness after every event. Each check names the
//! property of the Raft paper (Figure 3) it guards. A broken property panics, or, with
//! `record_violations` (clusters with DLedger fidelity, which break some on purpose), is
//! recorded in `violations`.

use broker_core::proto::Message;
use broker_core::raft::{Effect, ProposeOutcome, Role, Status};
use broker_core::store::{Entry, PersistOp};
use broker_core::types::{LogIndex, NodeId, ProposalId, Term};
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct Checker {
    /// Election Safety (§5.2): the one leader of each term.
    leaders: BTreeMap<Term, NodeId>,
    /// Log Matching (§5.3): every entry ever written anywhere, by (index, term). The checksum is
    /// chained, so equal checksums mean equal prefixes.
    written: BTreeMap<(LogIndex, Term), u32>,
    /// State Machine Safety (§5.4.3): the entry applied at each index, by anyone, with the
    /// term in which it was committed (the lowest term of a leader that applied it: the leader
    /// that commits an entry applies it in the same step).
    committed: BTreeMap<LogIndex, (Entry, Term)>,
    /// One vote per term, across restarts: (voter, term) -> the candidate it granted.
    votes: BTreeMap<(NodeId, Term), NodeId>,
    /// Proposals' data, to check what a `Committed` reply points at.
    proposals: BTreeMap<ProposalId, Vec<u8>>,
    pub checks: u64,
    /// Record broken properties in `violations` instead of panicking.
    pub record_violations: bool,
    pub violations: Vec<String>,
}

impl Checker {
    pub fn proposed(&mut self, proposal: ProposalId, data: Vec<u8>) {
        self.proposals.insert(proposal, data);
    }

    pub fn committed_last(&self) -> Option<&Entry> {
        self.committed.values().next_back().map(|(entry, _)| entry)
    }

    pub fn committed_count(&self) -> usize {
        self.committed.len()
    }

    /// The entry first applied at `index` by any node, if any.
    pub fn committed_at(&self, index: LogIndex) -> Option<&Entry> {
        self.committed.get(&index).map(|(entry, _)| entry)
    }

    /// A property does not hold: panic, or record it (once: checks repeat after every event).
    pub fn fail(&mut self, violation: String) {
        assert!(self.record_violations, "{violation}");
        if !self.violations.contains(&violation) {
            self.violations.push(violation);
        }
    }

    /// Fails with `violation()` unless `holds`.
    fn expect(&mut self, holds: bool, violation: impl FnOnce() -> String) {
        if !holds {
            self.fail(violation());
        }
    }

    pub fn leader_count(&self) -> usize {
        self.leaders.len()
    }

    /// Election Safety: at most one leader per term.
    pub fn saw_status(&mut self, status: &Status) {
        self.checks += 1;
        if status.role != Role::Leader {
            return;
        }
        let leader = *self.leaders.entry(status.term).or_insert(status.id);
        self.expect(leader == status.id, || {
            format!(
                "Election Safety (§5.2): two leaders in term {}",
                status.term
            )
        });
    }

    /// Leader Completeness (§5.4): a leader of term T holds every entry committed in a term
    /// before T. Commit terms grow with the index, and the chain makes one checksum comparison
    /// (at the last such index) enough.
    pub fn check_leader_log(&mut self, status: &Status, log: &[Entry]) {
        let Some((entry, _)) = self
            .committed
            .values()
            .rev()
            .find(|(_, commit_term)| *commit_term < status.term)
        else {
            return;
        };
        self.checks += 1;
        let position = usize::try_from(entry.index.0 - 1).expect("index fits usize");
        let held = log.get(position).map(|held| held.checksum);
        let violation = format!(
            "Leader Completeness (§5.4): leader {} of {} lacks committed entry {}",
            status.id, status.term, entry.index
        );
        self.expect(held == Some(entry.checksum), || violation);
    }

    /// Everything a node asked for in one step.
    pub fn saw_effects(&mut self, from: &Status, effects: &[Effect]) {
        for effect in effects {
            match effect {
                Effect::Persist(PersistOp::Append { entries }) => self.saw_written(entries),
                Effect::Send { to, msg } => self.saw_message(from.id, *to, msg),
                Effect::Apply { entries } => self.saw_applied(from, entries),
                Effect::Reply { proposal, outcome } => self.saw_reply(*proposal, outcome),
                Effect::Persist(_) | Effect::Sync { .. } | Effect::ReadReply { .. } => {}
            }
        }
    }

    fn saw_written(&mut self, entries: &[Entry]) {
        for entry in entries {
            self.checks += 1;
            let known = *self
                .written
                .entry((entry.index, entry.term))
                .or_insert(entry.checksum);
            self.expect(known == entry.checksum, || {
                format!(
                    "Log Matching (§5.3): two different entries at index {} term {}",
                    entry.index, entry.term
                )
            });
        }
    }

    fn saw_message(&mut self, voter: NodeId, candidate: NodeId, msg: &Message) {
        let Message::VoteResponse {
            term,
            pre_vote: false,
            granted: true,
            ..
        } = msg
        else {
            return;
        };
        self.checks += 1;
        let granted = *self.votes.entry((voter, *term)).or_insert(candidate);
        self.expect(granted == candidate, || {
            format!(
                "one vote per term: {voter} granted {term} to {granted} and then to {candidate}"
            )
        });
    }

    /// State Machine Safety: no two nodes apply different entries at one index.
    fn saw_applied(&mut self, applier: &Status, entries: &[Entry]) {
        let leader_term = (applier.role == Role::Leader).then_some(applier.term);
        for entry in entries {
            self.checks += 1;
            let Some((known, commit_term)) = self.committed.get_mut(&entry.index) else {
                let commit_term = leader_term.unwrap_or_else(|| {
                    panic!(
                        "{} applied {} before any leader did",
                        applier.id, entry.index
                    )
                });
                self.committed
                    .insert(entry.index, (entry.clone(), commit_term));
                continue;
            };
            let (same, known_term) = (known == entry, known.term);
            if let (true, Some(term)) = (same, leader_term) {
                *commit_term = (*commit_term).min(term);
            }
            self.expect(same, || {
                format!(
                    "State Machine Safety (§5.4.3): {} applied a different entry at {} (term {} \
                     where term {known_term} was applied first)",
                    applier.id, entry.index, entry.term
                )
            });
        }
    }

    /// An acknowledged proposal points at the committed entry holding its data.
    fn saw_reply(&mut self, proposal: ProposalId, outcome: &ProposeOutcome) {
        let ProposeOutcome::Committed { index, term } = outcome else {
            return;
        };
        self.checks += 1;
        let (entry, _) = self
            .committed
            .get(index)
            .unwrap_or_else(|| panic!("acknowledged {proposal:?} at {index} before it applied"));
        let same = entry.term == *term && Some(&entry.data) == self.proposals.get(&proposal);
        self.expect(same, || {
            format!(
                "acknowledged {proposal:?} at {index} term {term}, but the entry first applied \
                 there is another"
            )
        });
    }
}
