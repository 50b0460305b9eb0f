//! Failover detection from the world's leader snapshots (`World::snapshot_leaders`, taken
//! just before and just after every fault, and after the final heal): a failover fault is one
//! after which a group's leader, which could exchange messages with a majority of its group
//! just before, no longer can (down, paused, isolated, partitioned, one-way cut), whatever the
//! fault's kind.

use crate::world::observe::{LeaderMark, LeaderSnapshot};
use broker_core::{NodeId, Term};
use serde::{Deserialize, Serialize};

/// A fault that took a group's leader out of its majority: failover is measured from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverFault {
    pub fault_index: usize,
    pub group: u32,
    pub t0_us: u64,
    pub old_leader: NodeId,
    pub old_term: Term,
    /// When the old leader, still leading its term, could again exchange messages with a
    /// majority before any replica replaced it: the cut healed first (µs). Stages after this
    /// are not this fault's failover, and such a fault is reported apart, not as a failover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healed_us: Option<u64>,
}

/// Every failover fault of one seed, in the order the faults fired. Master–slave groups never
/// replace their master: its outage always counts as a failover (no `healed_us`).
pub fn failover_faults(snapshots: &[LeaderSnapshot], master_slave: bool) -> Vec<FailoverFault> {
    let mut faults: Vec<FailoverFault> = Vec::new();
    let mut before: Option<&LeaderSnapshot> = None;
    for snapshot in snapshots {
        match snapshot.mark {
            LeaderMark::BeforeFault { .. } => before = Some(snapshot),
            LeaderMark::AfterFault { fault_index } => {
                let previous = before
                    .take()
                    .filter(|b| b.mark == LeaderMark::BeforeFault { fault_index })
                    .expect("invariant: the nemesis snapshots before and after each fault");
                faults.extend(cut_off_leaders(previous, snapshot, fault_index));
                if !master_slave {
                    close_healed(&mut faults, snapshot);
                }
            }
            LeaderMark::Healed => {
                if !master_slave {
                    close_healed(&mut faults, snapshot);
                }
            }
        }
    }
    faults
}

/// The groups whose leader reached a majority before fault `fault_index` and not after it.
fn cut_off_leaders(
    before: &LeaderSnapshot,
    after: &LeaderSnapshot,
    fault_index: usize,
) -> Vec<FailoverFault> {
    before
        .leaders
        .iter()
        .enumerate()
        .filter_map(|(group, leader)| {
            let (leader, term) = (*leader)?;
            let cut_off = before.reaches_majority[leader.0 as usize]
                && !after.reaches_majority[leader.0 as usize];
            cut_off.then_some(FailoverFault {
                fault_index,
                group: group as u32,
                t0_us: after.at_us,
                old_leader: leader,
                old_term: term,
                healed_us: None,
            })
        })
        .collect()
}

/// Marks the open failover faults (from before `now`) whose old leader leads its group again,
/// in its term, with a majority: no replica replaced it, the cut healed before any failover.
fn close_healed(faults: &mut [FailoverFault], now: &LeaderSnapshot) {
    for fault in faults
        .iter_mut()
        .filter(|f| f.healed_us.is_none() && f.t0_us < now.at_us)
    {
        let still_leads =
            now.leaders[fault.group as usize] == Some((fault.old_leader, fault.old_term));
        if still_leads && now.reaches_majority[fault.old_leader.0 as usize] {
            fault.healed_us = Some(now.at_us);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(
        at_us: u64,
        mark: LeaderMark,
        leader: Option<u32>,
        reach: [bool; 3],
    ) -> LeaderSnapshot {
        LeaderSnapshot {
            at_us,
            mark,
            leaders: vec![leader.map(|n| (NodeId(n), Term(2)))],
            reaches_majority: reach.to_vec(),
        }
    }

    // A leader cut off by fault 0 is a failover fault from that moment; when it leads its
    // term with a majority again at a later snapshot, the fault healed then. Master-slave
    // outages never heal.
    #[test]
    fn cut_off_leader_is_a_failover_until_it_leads_again() {
        let snapshots = [
            snapshot(
                10,
                LeaderMark::BeforeFault { fault_index: 0 },
                Some(0),
                [true; 3],
            ),
            snapshot(
                10,
                LeaderMark::AfterFault { fault_index: 0 },
                Some(0),
                [false, true, true],
            ),
            snapshot(
                20,
                LeaderMark::BeforeFault { fault_index: 1 },
                None,
                [true; 3],
            ),
            snapshot(
                20,
                LeaderMark::AfterFault { fault_index: 1 },
                None,
                [true; 3],
            ),
            snapshot(30, LeaderMark::Healed, Some(0), [true; 3]),
        ];
        let faults = failover_faults(&snapshots, false);
        assert_eq!(faults.len(), 1, "{faults:?}");
        assert_eq!((faults[0].fault_index, faults[0].t0_us), (0, 10));
        assert_eq!(faults[0].old_leader, NodeId(0));
        assert_eq!(faults[0].healed_us, Some(30));
        assert_eq!(failover_faults(&snapshots, true)[0].healed_us, None);
    }
}
