//! broker-core: a RocketMQ-style broker whose commit log is replicated the way DLedger does it,
//! written as a pure state machine. Time, messages and randomness come in through
//! `step(now_ms, input)`; messages to send, writes to persist and replies come out of
//! `take_effects()`. No async, no sockets, no clocks, no global RNG.

pub mod broker;
pub mod master_slave;
pub mod proto;
pub mod raft;
pub mod store;
pub mod types;

pub use types::{LogIndex, NodeId, ProposalId, ReadId, SyncId, Term};
