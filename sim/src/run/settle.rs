//! After the heal: polls until every group has one leader and every replica has applied the
//! leader's whole log, or the settle bound passes.

use crate::world::World;
use broker_core::raft::{self, Role};
use broker_core::{LogIndex, NodeId, Term};
use std::time::Duration;

/// How often the settle check looks at the groups.
const SETTLE_POLL_MS: u64 = 50;

/// Per group: µs from the heal (`heal_at_us`) to convergence, or None when it did not converge
/// within `settle_max_us`.
pub async fn settle(world: &World, heal_at_us: u64, settle_max_us: u64) -> Vec<Option<u64>> {
    let spec = &world.spec;
    let mut settled: Vec<Option<u64>> = vec![None; spec.groups as usize];
    // Per group: (leader, term, commit index) seen at the previous poll.
    let mut previous: Vec<Option<(NodeId, Term, LogIndex)>> = vec![None; spec.groups as usize];
    let poll = Duration::from_millis(SETTLE_POLL_MS);
    loop {
        let now = world.now_us();
        for group in 0..spec.groups {
            // A replica that refused its damaged disk is out of service: left out.
            let statuses: Vec<Option<raft::Status>> = world
                .member_statuses(group)
                .into_iter()
                .zip(world.refused_members(group))
                .filter(|(_, refused)| !refused)
                .map(|(status, _)| status)
                .collect();
            let slot = group as usize;
            if settled[slot].is_none()
                && (group_converged(&statuses) || caught_up_with(&statuses, previous[slot]))
            {
                settled[slot] = Some(now - heal_at_us);
            }
            previous[slot] =
                sole_leader(&statuses).map(|leader| (leader.id, leader.term, leader.commit_index));
        }
        if settled.iter().all(Option::is_some) || now >= heal_at_us + settle_max_us {
            return settled;
        }
        madsim::time::sleep(poll).await;
    }
}

/// The group's leader, if exactly one replica leads.
fn sole_leader(statuses: &[Option<raft::Status>]) -> Option<raft::Status> {
    let leaders: Vec<&raft::Status> = statuses
        .iter()
        .flatten()
        .filter(|status| status.role == Role::Leader)
        .collect();
    match leaders.as_slice() {
        [leader] => Some((*leader).clone()),
        _ => None,
    }
}

/// A group whose log never stops growing (reads through the log, `RaftLogRead`, keep
/// appending) is settled when the same sole leader still leads and every replica, following
/// it, has applied at least what that leader had committed one poll earlier.
fn caught_up_with(
    statuses: &[Option<raft::Status>],
    previous: Option<(NodeId, Term, LogIndex)>,
) -> bool {
    let (Some((leader_id, term, commit)), Some(leader)) = (previous, sole_leader(statuses)) else {
        return false;
    };
    leader.id == leader_id
        && leader.term == term
        && statuses.iter().all(|status| {
            status.as_ref().is_some_and(|s| {
                s.term == term && s.applied_index >= commit && s.leader == Some(leader_id)
            })
        })
}

fn group_converged(statuses: &[Option<raft::Status>]) -> bool {
    let Some(leader) = sole_leader(statuses) else {
        return false;
    };
    leader.commit_index == leader.last_index
        && statuses.iter().all(|status| {
            status.as_ref().is_some_and(|s| {
                s.term == leader.term
                    && s.applied_index == leader.last_index
                    && s.leader == Some(leader.id)
            })
        })
}
