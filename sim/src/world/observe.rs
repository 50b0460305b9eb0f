//! Watches every replica after every step: role changes, commits, applied entries, and the Raft
//! invariants that span nodes (checked as events happen, so a violation names the moment):
//! - Election Safety (Raft §5.2): at most one leader per term in a group.
//! - Log Matching (§5.3): two logs with an entry of the same index and term agree on it and on
//!   everything before it (compared through the chained checksum).
//! - Leader Completeness (§5.4): a new leader's log holds every entry committed so far.
//! - State Machine Safety (§5.4.3): no two replicas apply different entries at one index.
//! - Committed entries are never lost: the cluster's committed prefix only grows.
//!
//! Master–slave groups (`Observer::new_master_slave`) have no terms or elections: Election
//! Safety, Log Matching (every entry has term 1, so a restarted master's new entry at a reused
//! index would "match" the old one's term) and Leader Completeness are Raft properties and are
//! not checked. State Machine Safety stays, except across a master that restarted with fewer
//! entries than the group had committed: that loss is recorded as `LostWrites` (the report's
//! explanation of lost acknowledged sends) and the committed prefix restarts from what the
//! master kept. The end-of-run oracles (lost acknowledged sends, offset conflicts, replica
//! divergence) apply to every mode.

use broker_core::broker::StoredMessage;
use broker_core::raft::{Role, Status};
use broker_core::store::{Entry, EntryKind, PersistOp};
use broker_core::{LogIndex, NodeId, Term};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

/// Something a replica did that the metrics and the report use.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ObservedKind {
    Role {
        role: Role,
        term: Term,
    },
    /// A leader's commit index advanced, to `index`, in its term `term`.
    LeaderCommit {
        term: Term,
        index: LogIndex,
    },
    Crashed,
    Restarted,
    Paused,
    Resumed,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Observation {
    pub at_us: u64,
    pub node: NodeId,
    pub kind: ObservedKind,
}

/// When the nemesis had the world snapshot its leaders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaderMark {
    /// Just before fault `fault_index` (counting every fault played, undos included) fired.
    BeforeFault { fault_index: usize },
    /// Just after it fired.
    AfterFault { fault_index: usize },
    /// After the heal at the end of the fault phase.
    Healed,
}

/// Who led each group, and which replicas could exchange messages with a majority of their
/// group, at one marked moment (not part of the trace hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderSnapshot {
    pub at_us: u64,
    pub mark: LeaderMark,
    /// Per group: the up replica that believes it leads, in the highest term.
    pub leaders: Vec<Option<(NodeId, Term)>>,
    /// Per replica: up, not paused, and in touch both ways with a majority of its group.
    pub reaches_majority: Vec<bool>,
}

/// A broken cross-node Raft invariant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvariantViolation {
    /// Raft §5.2: two leaders in one term.
    ElectionSafety {
        group: u32,
        term: Term,
        first: NodeId,
        second: NodeId,
    },
    /// Raft §5.3: same index and term, different entry or prefix.
    LogMatching {
        index: LogIndex,
        term: Term,
        a: NodeId,
        b: NodeId,
    },
    /// Raft §5.4: a leader elected without an entry committed before its term.
    LeaderCompleteness {
        leader: NodeId,
        term: Term,
        missing_index: LogIndex,
    },
    /// Raft §5.4.3: two replicas applied different entries at one index.
    StateMachineSafety { index: LogIndex, node: NodeId },
    /// A replica in DLedger fidelity broke a Raft safety property and recorded it (it does not
    /// assert, so the run goes on and shows what the break costs).
    ReportedByNode {
        node: NodeId,
        violation: broker_core::raft::SafetyViolation,
    },
}

/// A master–slave master restarted with fewer entries than its group had committed (it
/// acknowledged writes that never reached its disk, ASYNC_FLUSH + power loss): entries
/// `recovered_index + 1 ..= committed_index` are gone from it, and it will reuse those indexes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostWrites {
    pub at_us: u64,
    pub group: u32,
    pub master: NodeId,
    pub recovered_index: LogIndex,
    pub committed_index: LogIndex,
}

/// An entry a replica applied, as the final checks need it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedEntry {
    pub index: LogIndex,
    pub term: Term,
    pub checksum: u32,
    pub message: Option<StoredMessage>,
}

/// What the observer knows of one replica.
#[derive(Clone, Debug)]
pub struct NodeView {
    pub group: u32,
    pub status: Option<Status>,
    /// (term, checksum) of every entry in the replica's in-memory log.
    pub log: Vec<(Term, u32)>,
    /// Entries applied by the current incarnation, from index 1.
    pub applied: Vec<AppliedEntry>,
    pub up: bool,
}

#[derive(Debug)]
pub struct Observer {
    pub views: Vec<NodeView>,
    pub events: Vec<Observation>,
    pub violations: Vec<(u64, InvariantViolation)>,
    leaders: BTreeMap<(u32, Term), NodeId>,
    /// Per group: (term, checksum) of each entry some replica applied.
    committed: Vec<Vec<(Term, u32)>>,
    /// Per group, per committed entry: the highest term any leader of the group had reached
    /// when the entry was first seen applied. The entry was committed in that term or an
    /// earlier one, so every leader of a later term must hold it (Leader Completeness is about
    /// entries committed in terms before the leader's own, Raft §5.4).
    committed_by_term: Vec<Vec<Term>>,
    trace: Fnv64,
    /// Master–slave mode: no Raft-only checks; masters' lost writes recorded instead.
    master_slave: bool,
    pub lost_writes: Vec<LostWrites>,
}

impl Observer {
    pub fn new(groups: u32, replicas: u32) -> Observer {
        let views = (0..groups * replicas)
            .map(|n| NodeView {
                group: n / replicas,
                status: None,
                log: Vec::new(),
                applied: Vec::new(),
                up: true,
            })
            .collect();
        Observer {
            views,
            events: Vec::new(),
            violations: Vec::new(),
            leaders: BTreeMap::new(),
            committed: vec![Vec::new(); groups as usize],
            committed_by_term: vec![Vec::new(); groups as usize],
            trace: Fnv64::new(),
            master_slave: false,
            lost_writes: Vec::new(),
        }
    }

    /// An observer for master–slave groups (see the module doc for what it checks).
    pub fn new_master_slave(groups: u32, replicas: u32) -> Observer {
        Observer {
            master_slave: true,
            ..Observer::new(groups, replicas)
        }
    }

    /// Master–slave: the master of a group is its first replica (RocketMQ brokerId 0).
    fn is_group_master(&self, node: NodeId) -> bool {
        let group = self.views[node.0 as usize].group;
        self.views.iter().position(|view| view.group == group) == Some(node.0 as usize)
    }

    pub fn record(&mut self, at_us: u64, node: NodeId, kind: ObservedKind) {
        let observation = Observation { at_us, node, kind };
        observation.hash(&mut self.trace);
        self.events.push(observation);
    }

    pub fn trace_hash(&self) -> u64 {
        self.trace.finish()
    }

    /// Mixes something else (e.g. a client operation) into the trace hash.
    pub fn trace_extra(&mut self, value: &impl Hash) {
        value.hash(&mut self.trace);
    }

    /// A replica (re)started with this in-memory log.
    pub fn on_start(&mut self, at_us: u64, node: NodeId, log: &[Entry], restarted: bool) {
        let view = &mut self.views[node.0 as usize];
        view.log = log.iter().map(|e| (e.term, e.checksum)).collect();
        view.applied.clear();
        view.status = None;
        view.up = true;
        let group = view.group;
        if restarted {
            self.record(at_us, node, ObservedKind::Restarted);
        }
        let committed = self.committed[group as usize].len();
        if self.master_slave && self.is_group_master(node) && log.len() < committed {
            self.lost_writes.push(LostWrites {
                at_us,
                group,
                master: node,
                recovered_index: LogIndex(log.len() as u64),
                committed_index: LogIndex(committed as u64),
            });
            self.committed[group as usize].truncate(log.len());
            self.committed_by_term[group as usize].truncate(log.len());
        }
    }

    pub fn on_down(&mut self, at_us: u64, node: NodeId) {
        let view = &mut self.views[node.0 as usize];
        view.up = false;
        view.status = None;
        self.record(at_us, node, ObservedKind::Crashed);
    }

    /// A write the replica asked for: mirror its in-memory log and check Log Matching.
    pub fn on_persist(&mut self, at_us: u64, node: NodeId, op: &PersistOp) {
        match op {
            PersistOp::HardState(_) => {}
            PersistOp::TruncateFrom { from } => {
                let keep = from.0.saturating_sub(1) as usize;
                let view = &mut self.views[node.0 as usize];
                view.log.truncate(keep);
                // Only a master–slave slave cuts applied entries (its master lost them).
                view.applied.truncate(keep);
            }
            PersistOp::Append { entries } => {
                for entry in entries {
                    self.check_log_matching(at_us, node, entry);
                    let view = &mut self.views[node.0 as usize];
                    assert_eq!(
                        entry.index.0,
                        view.log.len() as u64 + 1,
                        "invariant: a replica appends right after its last entry"
                    );
                    view.log.push((entry.term, entry.checksum));
                }
            }
        }
    }

    fn check_log_matching(&mut self, at_us: u64, node: NodeId, entry: &Entry) {
        if self.master_slave {
            return;
        }
        let group = self.views[node.0 as usize].group;
        let position = (entry.index.0 - 1) as usize;
        let conflict = self.views.iter().enumerate().find(|(other, view)| {
            *other != node.0 as usize
                && view.group == group
                && view.log.get(position).is_some_and(|(term, checksum)| {
                    *term == entry.term && *checksum != entry.checksum
                })
        });
        if let Some((other, _)) = conflict {
            self.violations.push((
                at_us,
                InvariantViolation::LogMatching {
                    index: entry.index,
                    term: entry.term,
                    a: node,
                    b: NodeId(other as u32),
                },
            ));
        }
    }

    /// After a step: role and commit changes, newly applied entries.
    pub fn on_status(&mut self, at_us: u64, status: Status, log: &[Entry]) {
        let node = status.id;
        let index = node.0 as usize;
        let group = self.views[index].group;
        let previous = self.views[index].status.take();
        let role_changed = previous
            .as_ref()
            .is_none_or(|p| p.role != status.role || p.term != status.term);
        if role_changed {
            self.record(
                at_us,
                node,
                ObservedKind::Role {
                    role: status.role,
                    term: status.term,
                },
            );
            if status.role == Role::Leader {
                self.on_new_leader(at_us, group, &status);
            }
        }
        let commit_advanced = previous
            .as_ref()
            .is_none_or(|p| p.commit_index < status.commit_index);
        if status.role == Role::Leader && commit_advanced && status.commit_index.0 > 0 {
            self.record(
                at_us,
                node,
                ObservedKind::LeaderCommit {
                    term: status.term,
                    index: status.commit_index,
                },
            );
        }
        self.publish_applied(at_us, node, group, status.applied_index, log);
        self.views[index].status = Some(status);
    }

    /// The highest term any leader of `group` has been seen in (term 0 before the first).
    fn highest_leader_term(&self, group: u32) -> Term {
        self.leaders
            .range((group, Term(0))..=(group, Term(u64::MAX)))
            .next_back()
            .map_or(Term(0), |((_, term), _)| *term)
    }

    fn on_new_leader(&mut self, at_us: u64, group: u32, status: &Status) {
        if self.master_slave {
            return; // one fixed master, no terms: Election Safety and Leader Completeness are Raft's
        }
        match self.leaders.get(&(group, status.term)) {
            Some(first) if *first != status.id => self.violations.push((
                at_us,
                InvariantViolation::ElectionSafety {
                    group,
                    term: status.term,
                    first: *first,
                    second: status.id,
                },
            )),
            _ => {
                self.leaders.insert((group, status.term), status.id);
            }
        }
        // The entries surely committed in a term before this leader's: those first applied
        // while no leader of this term or later had been seen (a leader of an older term
        // can take office late, after a pause, and need not hold what later terms committed).
        let committed = &self.committed[group as usize];
        let required = self.committed_by_term[group as usize]
            .partition_point(|by_term| *by_term < status.term);
        if required > 0 {
            let view = &self.views[status.id.0 as usize];
            if view.log.get(required - 1) != Some(&committed[required - 1]) {
                self.violations.push((
                    at_us,
                    InvariantViolation::LeaderCompleteness {
                        leader: status.id,
                        term: status.term,
                        missing_index: LogIndex(required as u64),
                    },
                ));
            }
        }
    }

    fn publish_applied(
        &mut self,
        at_us: u64,
        node: NodeId,
        group: u32,
        applied: LogIndex,
        log: &[Entry],
    ) {
        let view_applied = self.views[node.0 as usize].applied.len() as u64;
        for i in view_applied..applied.0 {
            // A DLedger replica may truncate below its applied index (its commit by count let
            // it apply an entry a newer leader overwrote): what it no longer holds cannot be
            // published; the replica records the truncation itself (`ReportedByNode`).
            let Some(entry) = log.get(i as usize) else {
                break;
            };
            let committed = &mut self.committed[group as usize];
            match committed.get(i as usize) {
                Some(known) if *known != (entry.term, entry.checksum) => {
                    self.violations.push((
                        at_us,
                        InvariantViolation::StateMachineSafety {
                            index: entry.index,
                            node,
                        },
                    ));
                }
                Some(_) => {}
                None => {
                    committed.push((entry.term, entry.checksum));
                    let by_term = self.highest_leader_term(group);
                    self.committed_by_term[group as usize].push(by_term);
                }
            }
            let message = match entry.kind {
                EntryKind::Normal => StoredMessage::decode(&entry.data),
                EntryKind::Noop => None,
            };
            self.views[node.0 as usize].applied.push(AppliedEntry {
                index: entry.index,
                term: entry.term,
                checksum: entry.checksum,
                message,
            });
        }
    }
}

/// FNV-1a, 64 bit: a stable hash for traces (std's hasher is randomly keyed).
#[derive(Clone, Debug)]
pub struct Fnv64(u64);

impl Fnv64 {
    pub fn new() -> Fnv64 {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
    pub fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// The trace hash takes values by `Hash` (no formatting on the hot path); fixed-width integers
/// are written little-endian, so the hash is the same on every machine.
impl Hasher for Fnv64 {
    fn write(&mut self, bytes: &[u8]) {
        Fnv64::write(self, bytes);
    }
    fn write_u64(&mut self, value: u64) {
        Fnv64::write(self, &value.to_le_bytes());
    }
    fn write_u32(&mut self, value: u32) {
        Fnv64::write(self, &value.to_le_bytes());
    }
    fn write_usize(&mut self, value: usize) {
        Fnv64::write(self, &(value as u64).to_le_bytes());
    }
    fn write_isize(&mut self, value: isize) {
        Fnv64::write(self, &(value as i64).to_le_bytes());
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use broker_core::raft::Role;

    fn entries(terms: &[u64]) -> Vec<Entry> {
        terms
            .iter()
            .enumerate()
            .map(|(i, term)| Entry {
                index: LogIndex(i as u64 + 1),
                term: Term(*term),
                kind: EntryKind::Noop,
                data: Vec::new(),
                checksum: 100 + i as u32,
            })
            .collect()
    }

    fn status(node: u32, role: Role, term: u64, log: &[Entry], commit: u64) -> Status {
        Status {
            id: NodeId(node),
            role,
            term: Term(term),
            voted_for: None,
            leader: None,
            last_index: LogIndex(log.len() as u64),
            last_term: log.last().map_or(Term(0), |e| e.term),
            durable_index: LogIndex(log.len() as u64),
            commit_index: LogIndex(commit),
            applied_index: LogIndex(commit),
        }
    }

    fn completeness_breaks(observer: &Observer) -> usize {
        observer
            .violations
            .iter()
            .filter(|(_, v)| matches!(v, InvariantViolation::LeaderCompleteness { .. }))
            .count()
    }

    // Why (10,000-seed hunt, seed 7099): a leader of an older term may take office late (its
    // votes were granted before a pause); it need not hold what a later term committed, and
    // flagging it was a false alarm. A leader of a later term must hold it.
    #[test]
    fn leader_completeness_asks_only_for_entries_committed_before_the_leaders_term() {
        let mut observer = Observer::new(1, 3);
        let long = entries(&[1, 3, 3]);
        let short = entries(&[1]);
        observer.on_start(0, NodeId(0), &[], false);
        observer.on_start(0, NodeId(1), &[], false);
        observer.on_start(0, NodeId(2), &[], false);
        // n0 leads term 3 and commits (applies) entries 1..=3.
        observer.on_status(10, status(0, Role::Leader, 3, &long, 3), &long);
        // n1, holding only entry 1, takes office late in term 2: no break.
        observer.on_status(20, status(1, Role::Leader, 2, &short, 1), &short);
        assert_eq!(
            completeness_breaks(&observer),
            0,
            "{:?}",
            observer.violations
        );
        // n2, with the same short log, leads term 4: entry 3 was committed in term 3.
        observer.on_status(30, status(2, Role::Leader, 4, &short, 1), &short);
        assert_eq!(
            completeness_breaks(&observer),
            1,
            "{:?}",
            observer.violations
        );
    }
}
