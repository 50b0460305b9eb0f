//! Where the network dropped replica-to-replica datagrams, per addressee, as merged spans of
//! time: the evidence the unexplained-election oracle (`run::elections`) needs to tell an
//! election caused by lost heartbeats from one with no cause. Spans closer than the merge gap
//! are joined, so the record stays small however many datagrams a partition drops.

use broker_core::NodeId;

/// Per replica, the spans (first drop, last drop) in µs, in time order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerDrops {
    merge_gap_us: u64,
    spans: Vec<Vec<(u64, u64)>>,
}

impl PeerDrops {
    pub fn new(replicas: u32, merge_gap_us: u64) -> PeerDrops {
        PeerDrops {
            merge_gap_us,
            spans: vec![Vec::new(); replicas as usize],
        }
    }

    /// A datagram to `node` was dropped at `at_us` (times never go back).
    pub fn note(&mut self, node: NodeId, at_us: u64) {
        let spans = &mut self.spans[node.0 as usize];
        match spans.last_mut() {
            Some((_, last)) if at_us <= *last + self.merge_gap_us => {
                assert!(at_us >= *last, "invariant: drops are noted in time order");
                *last = at_us;
            }
            _ => spans.push((at_us, at_us)),
        }
    }

    /// Whether a datagram to `node` was dropped within `from_us..=to_us`.
    pub fn any_within(&self, node: NodeId, from_us: u64, to_us: u64) -> bool {
        let spans = &self.spans[node.0 as usize];
        // The first span that ends at or after `from_us`; it overlaps when it starts by `to_us`.
        let first = spans.partition_point(|(_, last)| *last < from_us);
        spans.get(first).is_some_and(|(start, _)| *start <= to_us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Why: the oracle's evidence must neither lose a drop (a false unexplained election) nor
    // invent one (a hidden timer bug).
    #[test]
    fn drops_merge_within_the_gap_and_are_found_by_overlap() {
        let mut drops = PeerDrops::new(2, 100);
        drops.note(NodeId(1), 1_000);
        drops.note(NodeId(1), 1_050);
        drops.note(NodeId(1), 1_150);
        drops.note(NodeId(1), 5_000);
        assert_eq!(drops.spans[1], vec![(1_000, 1_150), (5_000, 5_000)]);
        assert!(drops.any_within(NodeId(1), 1_100, 1_200));
        assert!(drops.any_within(NodeId(1), 0, 1_000));
        assert!(!drops.any_within(NodeId(1), 1_151, 4_999));
        assert!(drops.any_within(NodeId(1), 4_000, 9_000));
        assert!(!drops.any_within(NodeId(1), 5_001, 9_000));
        assert!(!drops.any_within(NodeId(0), 0, 9_000));
    }
}
