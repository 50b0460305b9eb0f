//! The storage fault atlas (TigerBeetle's VOPR): which replicas a swarm's disk faults may
//! damage. By default a minority of each group, fixed per seed (drawn from a stream of the run
//! seed and the group alone), so a majority always keeps an intact copy of every entry and
//! nothing committed may be lost; `Atlas::Unbounded` lets them hit any replica.

use super::plan::Atlas;
use crate::world::{mix_seed, WorldSpec};
use broker_core::NodeId;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The atlas's own stream tag ("ATLAS").
const ATLAS_STREAM: u64 = 0x4154_4C41_5300;

/// The replicas of `group` the disk faults may damage in this seed.
pub fn damageable(spec: &WorldSpec, seed: u64, group: u32, atlas: Atlas) -> Vec<NodeId> {
    let mut members = spec.members(group);
    if atlas == Atlas::Unbounded {
        return members;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(mix_seed(seed, ATLAS_STREAM, u64::from(group)));
    members.shuffle(&mut rng);
    members.truncate((members.len() - 1) / 2);
    members.sort();
    members
}
