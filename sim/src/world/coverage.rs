//! Raft event coverage (issue 14): how often a seed reached the events deep consensus bugs
//! need, seen from outside the core (each replica's status, log and effects after every step):
//! - `leader_behind`: a leader elected whose log is behind another replica's (by last term,
//!   then last index, as each last reported it);
//! - `follower_truncated_uncommitted`: a follower cut an uncommitted tail (its last index fell);
//! - `old_term_entry_on_majority_uncommitted`: a leader whose first uncommitted entry is of an
//!   older term while a majority's logs reach it;
//! - `commit_over_old_terms`: a leader's commit advanced onto an entry of its term over
//!   entries of older terms (Raft §5.4.2's rule at work);
//! - `old_term_commit`: a leader's commit advanced onto an entry of an older term (DLedger's
//!   commit by count; never under Raft's rules);
//! - `voter_crashed_after_grant`: a replica granted a vote and crashed before its next step
//!   (the `CrashAfterVoteGrant` trigger);
//! - `deposed_leader_acked`: a leader answered SEND_OK while a newer term had a leader.
//!
//! Only comparisons of indices and terms: nothing indexes a log by a position it may not have
//! (a DLedger replica may truncate below its applied index).

use broker_core::broker::{BrokerEffect, ClientResponse};
use broker_core::raft::{Role, Status};
use broker_core::store::Entry;
use broker_core::NodeId;
use std::collections::BTreeMap;

pub const LEADER_BEHIND: &str = "leader_behind";
pub const FOLLOWER_TRUNCATED_UNCOMMITTED: &str = "follower_truncated_uncommitted";
pub const OLD_TERM_ENTRY_ON_MAJORITY_UNCOMMITTED: &str = "old_term_entry_on_majority_uncommitted";
pub const COMMIT_OVER_OLD_TERMS: &str = "commit_over_old_terms";
pub const OLD_TERM_COMMIT: &str = "old_term_commit";
pub const VOTER_CRASHED_AFTER_GRANT: &str = "voter_crashed_after_grant";
pub const DEPOSED_LEADER_ACKED: &str = "deposed_leader_acked";

/// Every event, in the order the summary prints them.
pub const EVENTS: [&str; 7] = [
    LEADER_BEHIND,
    FOLLOWER_TRUNCATED_UNCOMMITTED,
    OLD_TERM_ENTRY_ON_MAJORITY_UNCOMMITTED,
    COMMIT_OVER_OLD_TERMS,
    OLD_TERM_COMMIT,
    VOTER_CRASHED_AFTER_GRANT,
    DEPOSED_LEADER_ACKED,
];

#[derive(Clone, Copy, Debug)]
struct Seen {
    role: Role,
    term: u64,
    last_index: u64,
    last_term: u64,
    commit: u64,
}

/// One seed's coverage.
#[derive(Debug, Default)]
pub struct Coverage {
    replicas: u32,
    last: BTreeMap<NodeId, Seen>,
    /// Per group: the highest term some replica led.
    led: BTreeMap<u32, u64>,
    /// (leader, term) already counted for the majority event.
    held_on_majority: BTreeMap<(NodeId, u64), ()>,
    pub counts: BTreeMap<&'static str, u32>,
}

impl Coverage {
    pub fn new(replicas: u32) -> Coverage {
        Coverage {
            replicas: replicas.max(1),
            ..Coverage::default()
        }
    }

    pub fn count(&mut self, event: &'static str) {
        *self.counts.entry(event).or_insert(0) += 1;
    }

    fn group(&self, node: NodeId) -> u32 {
        node.0 / self.replicas
    }

    /// After `node` stepped: its status, log and effects.
    pub fn after_step(
        &mut self,
        node: NodeId,
        status: &Status,
        log: &[Entry],
        effects: &[BrokerEffect],
    ) {
        let now = Seen {
            role: status.role,
            term: status.term.0,
            last_index: status.last_index.0,
            last_term: status.last_term.0,
            commit: status.commit_index.0,
        };
        let before = self.last.insert(node, now);
        let group = self.group(node);
        let peers: Vec<Seen> = self
            .last
            .iter()
            .filter(|(other, _)| **other != node && self.group(**other) == group)
            .map(|(_, seen)| *seen)
            .collect();
        let became_leader = now.role == Role::Leader
            && before.is_none_or(|b| b.role != Role::Leader || b.term != now.term);
        if became_leader {
            let led = self.led.entry(group).or_insert(0);
            *led = (*led).max(now.term);
            // The log it won with: before this step (a Raft leader appends its no-op at once).
            let won_with = before.map_or((now.last_term, now.last_index), |b| {
                (b.last_term, b.last_index)
            });
            if peers
                .iter()
                .any(|peer| (peer.last_term, peer.last_index) > won_with)
            {
                self.count(LEADER_BEHIND);
            }
        }
        if let Some(before) = before {
            if now.role != Role::Leader
                && now.last_index < before.last_index
                && before.last_index > now.commit
            {
                self.count(FOLLOWER_TRUNCATED_UNCOMMITTED);
            }
            if now.role == Role::Leader && before.role == Role::Leader && now.commit > before.commit
            {
                match entry_term(log, now.commit) {
                    Some(term) if term < now.term => self.count(OLD_TERM_COMMIT),
                    Some(_) if entry_term(log, before.commit + 1).is_some_and(|t| t < now.term) => {
                        self.count(COMMIT_OVER_OLD_TERMS)
                    }
                    _ => {}
                }
            }
        }
        if now.role == Role::Leader {
            let next = now.commit + 1;
            if entry_term(log, next).is_some_and(|term| term < now.term)
                && !self.held_on_majority.contains_key(&(node, now.term))
            {
                let reaching = 1 + peers
                    .iter()
                    .filter(|peer| peer.term == now.term && peer.last_index >= next)
                    .count();
                if reaching as u32 > self.replicas / 2 {
                    self.held_on_majority.insert((node, now.term), ());
                    self.count(OLD_TERM_ENTRY_ON_MAJORITY_UNCOMMITTED);
                }
            }
            let newer_leader = self.led.get(&group).is_some_and(|led| *led > now.term);
            if newer_leader
                && effects.iter().any(|effect| {
                    matches!(
                        effect,
                        BrokerEffect::Respond {
                            response: ClientResponse::SendOk { .. },
                            ..
                        }
                    )
                })
            {
                self.count(DEPOSED_LEADER_ACKED);
            }
        }
    }
}

/// The term of the entry at `index` in `log`, if it holds it (logs are contiguous by index from
/// their first entry).
pub fn entry_term(log: &[Entry], index: u64) -> Option<u64> {
    let first = log.first()?.index.0;
    let position = usize::try_from(index.checked_sub(first)?).ok()?;
    log.get(position)
        .filter(|entry| entry.index.0 == index)
        .map(|entry| entry.term.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Why: the observer once indexed past a DLedger replica's log after it truncated below its
    // applied index; lookups by index must answer None, never panic.
    #[test]
    fn entry_term_guards_every_index() {
        assert_eq!(entry_term(&[], 1), None);
        assert_eq!(entry_term(&[], 0), None);
    }
}
