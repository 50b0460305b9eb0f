//! Disk faults beyond a crash (issue 15): bit flips, a log cut short, a wiped disk, a lost hard
//! state, a misdirected write. They act on a replica's durable disk only (`Disk`); the core sees
//! them when it recovers (`broker_core::store::recover`). Random choices (which entry, which
//! bits) come from the nemesis stream passed in.

use super::disk::Disk;
use broker_core::store::HardState;
use rand::Rng;

/// Which stored entry `Corrupt` damages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spot {
    /// The last stored entry.
    Tail,
    /// One drawn uniformly from the stored log.
    Random,
    /// The entry at this log index (nothing when the log is shorter).
    Entry(u64),
}

/// One disk fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Damage {
    /// Flip `bits` bits of one entry's data and checksum.
    Corrupt { at: Spot, bits: u32 },
    /// Drop the last `entries` stored entries.
    Truncate { entries: u32 },
    /// Log and hard state gone.
    Wipe,
    /// Hard state gone, log kept.
    LoseHardState,
    /// One stored entry overwritten with a copy of another.
    Misdirected,
}

/// What a damage did, for the trace and the findings' explanations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Damaged {
    /// Entry `index` had bits flipped.
    Corrupted {
        index: u64,
    },
    /// The log now ends at `last_index` (it held `from` entries).
    Truncated {
        from: u64,
        last_index: u64,
    },
    Wiped {
        entries: u64,
    },
    HardStateLost,
    /// The copy of entry `source` landed at `index`.
    Misdirected {
        source: u64,
        index: u64,
    },
    /// Nothing to damage (an empty log, an index past its end).
    Nothing,
}

impl Damaged {
    /// The fault and what it did, as findings name it (None when it damaged nothing).
    pub fn describe(&self) -> Option<String> {
        match self {
            Damaged::Corrupted { index } => {
                Some(format!("Corrupt (bits flipped in entry i{index})"))
            }
            Damaged::Truncated { from, last_index } => Some(format!(
                "Truncate (the log cut from {from} entries to i{last_index})"
            )),
            Damaged::Wiped { entries } => Some(format!(
                "WipeDisk ({entries} entries and the hard state gone)"
            )),
            Damaged::HardStateLost => Some("LoseHardState (term and vote gone)".to_string()),
            Damaged::Misdirected { source, index } => Some(format!(
                "MisdirectedWrite (entry i{index} overwritten by a copy of i{source})"
            )),
            Damaged::Nothing => None,
        }
    }
}

/// Damages `disk`'s durable state (the node is down: nothing is pending).
pub fn damage(disk: &mut Disk, damage: Damage, rng: &mut impl Rng) -> Damaged {
    let state = disk.durable_mut();
    let len = state.entries.len() as u64;
    match damage {
        Damage::Corrupt { at, bits } => {
            let index = match at {
                Spot::Tail => len,
                Spot::Random if len > 0 => rng.gen_range(1..=len),
                Spot::Random => 0,
                Spot::Entry(index) => index,
            };
            if index == 0 || index > len {
                return Damaged::Nothing;
            }
            let position = usize::try_from(index - 1).expect("invariant: log indexes fit in usize");
            let entry = &mut state.entries[position];
            // Bits over the data and the 32 checksum bits; an even number of flips on one bit
            // would cancel, so each flip takes a distinct bit where there are enough.
            let total_bits = entry.data.len() as u64 * 8 + 32;
            let mut flipped = std::collections::BTreeSet::new();
            while flipped.len() < bits.max(1) as usize && (flipped.len() as u64) < total_bits {
                flipped.insert(rng.gen_range(0..total_bits));
            }
            for bit in flipped {
                if bit < 32 {
                    entry.checksum ^= 1 << bit;
                } else {
                    let bit = bit - 32;
                    let byte = usize::try_from(bit / 8).expect("invariant: small");
                    entry.data[byte] ^= 1 << (bit % 8);
                }
            }
            Damaged::Corrupted { index }
        }
        Damage::Truncate { entries } => {
            let keep = len.saturating_sub(u64::from(entries));
            state
                .entries
                .truncate(usize::try_from(keep).expect("invariant: log lengths fit in usize"));
            Damaged::Truncated {
                from: len,
                last_index: keep,
            }
        }
        Damage::Wipe => {
            state.entries.clear();
            state.hard_state = HardState::default();
            disk.lose_hard_state();
            Damaged::Wiped { entries: len }
        }
        Damage::LoseHardState => {
            state.hard_state = HardState::default();
            disk.lose_hard_state();
            Damaged::HardStateLost
        }
        Damage::Misdirected => {
            if len < 2 {
                return Damaged::Nothing;
            }
            let source = rng.gen_range(1..=len);
            let mut index = rng.gen_range(1..len);
            if index >= source {
                index += 1;
            }
            let copy = state.entries[usize::try_from(source - 1).expect("small")].clone();
            state.entries[usize::try_from(index - 1).expect("small")] = copy;
            Damaged::Misdirected { source, index }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use broker_core::store::{cut_at_first_bad_entry, Entry, EntryKind, HardState, PersistOp};
    use broker_core::{LogIndex, NodeId, Term};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn disk_with(count: u64) -> Disk {
        let mut disk = Disk::new(1_000);
        disk.write(PersistOp::HardState(HardState {
            term: Term(1),
            voted_for: Some(NodeId(0)),
            commit_mark: LogIndex(0),
            log_end_mark: LogIndex(0),
            forgotten_through: LogIndex(0),
        }));
        let mut previous = 0;
        for index in 1..=count {
            let entry = Entry::new(
                previous,
                LogIndex(index),
                Term(1),
                EntryKind::Normal,
                vec![7; 4],
            );
            previous = entry.checksum;
            disk.write(PersistOp::Append {
                entries: vec![entry],
            });
        }
        disk.start_sync(0);
        disk.complete_sync(u64::MAX - 1);
        disk
    }

    // Each damage is found where it was done: the chain breaks at the corrupted or misdirected
    // entry; truncation, wipe and lost hard state change exactly what they say.
    #[test]
    fn damages_land_where_they_say() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for bits in [1, 3, 64] {
            let mut disk = disk_with(5);
            let done = damage(
                &mut disk,
                Damage::Corrupt {
                    at: Spot::Entry(3),
                    bits,
                },
                &mut rng,
            );
            assert_eq!(Damaged::Corrupted { index: 3 }, done);
            let (kept, cut) = cut_at_first_bad_entry(disk.recover().entries);
            assert_eq!((2, Some(LogIndex(3))), (kept.len(), cut));
        }
        let mut disk = disk_with(5);
        assert_eq!(
            Damaged::Nothing,
            damage(
                &mut disk,
                Damage::Corrupt {
                    at: Spot::Entry(9),
                    bits: 1
                },
                &mut rng
            )
        );
        assert_eq!(
            Damaged::Corrupted { index: 5 },
            damage(
                &mut disk,
                Damage::Corrupt {
                    at: Spot::Tail,
                    bits: 2
                },
                &mut rng
            )
        );
        let mut disk = disk_with(5);
        let done = damage(&mut disk, Damage::Misdirected, &mut rng);
        let Damaged::Misdirected { source, index } = done else {
            panic!("expected a misdirected write, got {done:?}");
        };
        assert_ne!(source, index);
        let (_, cut) = cut_at_first_bad_entry(disk.recover().entries);
        // The copy carries its own index: the chain breaks exactly where it landed.
        assert_eq!(Some(LogIndex(index)), cut);
        let mut disk = disk_with(5);
        damage(&mut disk, Damage::Truncate { entries: 2 }, &mut rng);
        assert_eq!(3, disk.recover().entries.len());
        damage(&mut disk, Damage::LoseHardState, &mut rng);
        assert_eq!(HardState::default(), disk.recover().hard_state);
        assert_eq!(3, disk.recover().entries.len());
        damage(&mut disk, Damage::Wipe, &mut rng);
        assert!(disk.recover().entries.is_empty());
    }
}
