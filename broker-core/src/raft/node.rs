//! The Raft node. (Being written: see issue 3.)
use super::{Config, Effect, Input, Status};
use crate::store::RecoveredState;
use crate::types::NodeId;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RecoveryError {
    #[error("invalid config: {0}")]
    Config(#[from] super::ConfigError),
    #[error("node {id} is not among the members {members:?}")]
    NotAMember { id: NodeId, members: Vec<NodeId> },
}

pub struct Node {
    _private: (),
}

impl Node {
    /// Builds a node from what survived on its disk. `members` lists every replica, itself
    /// included. `rng_seed` seeds the ChaCha stream that draws election jitter.
    pub fn new(
        _config: Config,
        _id: NodeId,
        _members: Vec<NodeId>,
        _recovered: RecoveredState,
        _rng_seed: u64,
    ) -> Result<Node, RecoveryError> {
        todo!()
    }
    pub fn step(&mut self, _now_ms: u64, _input: Input) {
        todo!()
    }
    pub fn take_effects(&mut self) -> Vec<Effect> {
        todo!()
    }
    /// The local time at which the node next needs a `Tick`.
    pub fn next_deadline_ms(&self) -> u64 {
        todo!()
    }
    pub fn status(&self) -> Status {
        todo!()
    }
    /// The whole in-memory log (durable or not), for observers and checks.
    pub fn log(&self) -> &[crate::store::Entry] {
        todo!()
    }
}
