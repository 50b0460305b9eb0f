//! Faults that fire on events, not times (issue 14): a fixed time almost never lands inside a
//! 2 ms fsync window, an event does. After every step the adapter shows the world what the
//! replica was fed and what it did; an armed trigger whose event that was fires with its
//! chance (drawn from the trigger's own ChaCha stream of the seed, in the deterministic order
//! of steps) and the replica is crashed, power-lost or paused before its next step.
//!
//! Events, all seen from outside the core (inputs, effects, status, log):
//! - a replica granted a vote (`VoteResponse { granted: true }` sent): crash it;
//! - a follower acknowledged an append (`AppendResponse { success: true }` sent): power-lose
//!   it (unsynced writes dropped);
//! - a leader answered SEND_OK: power-lose it;
//! - a leader's commit index advanced onto an entry of an older term than its own (DLedger's
//!   commit by count, Raft's Figure 8): crash it;
//! - a leader took a pull it did not answer in the same step (a read is pending): pause it.
//!
//! At most one triggered fault is outstanding at a time (the node comes back, or resumes,
//! after `down_us`), and none fires once the workload has stopped.

use broker_core::broker::{BrokerEffect, BrokerInput, ClientRequest, ClientResponse};

/// The request id of `input` when it is a pull (what `PauseWithPendingRead` waits on).
pub fn pull_request_id(input: &BrokerInput) -> Option<u64> {
    match input {
        BrokerInput::Client {
            request: ClientRequest::Pull { .. },
            request_id,
            ..
        } => Some(*request_id),
        _ => None,
    }
}
use super::coverage::entry_term;
use broker_core::proto::{Message, PeerMessage};
use broker_core::raft::{Role, Status};
use broker_core::store::Entry;
use broker_core::NodeId;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// The triggers' own stream tag ("TRIGGR").
const TRIGGER_STREAM: u64 = 0x5452_4947_4752;

/// An event a trigger waits for, and what it does then.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TriggerKind {
    /// Crash a replica right after it grants a vote.
    CrashAfterVoteGrant,
    /// Power-lose a follower right after it acknowledges an append.
    PowerLoseAfterAppendAck,
    /// Power-lose the leader right after it answers SEND_OK.
    PowerLoseAfterSendOk,
    /// Crash the leader right after it commits an entry of an older term.
    CrashAfterOldTermCommit,
    /// Pause the leader while a pull waits for its answer.
    PauseWithPendingRead,
}

impl TriggerKind {
    pub const ALL: [TriggerKind; 5] = [
        TriggerKind::CrashAfterVoteGrant,
        TriggerKind::PowerLoseAfterAppendAck,
        TriggerKind::PowerLoseAfterSendOk,
        TriggerKind::CrashAfterOldTermCommit,
        TriggerKind::PauseWithPendingRead,
    ];
}

/// One armed trigger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TriggerSpec {
    pub kind: TriggerKind,
    /// Chance that an occurrence of the event fires it, parts per million.
    pub chance_ppm: u32,
    /// The node stays down (or paused) this long.
    pub down_us: u64,
}

/// What a fired trigger does to the node that stepped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerAction {
    /// A process crash (page cache kept).
    Crash,
    /// A power loss: every unsynced write dropped.
    PowerLoss,
    Pause,
}

/// A trigger that fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fired {
    pub kind: TriggerKind,
    pub action: TriggerAction,
    pub node: NodeId,
    pub down_us: u64,
}

/// The armed triggers of one seed and what they did.
#[derive(Debug)]
pub struct Triggers {
    specs: Vec<TriggerSpec>,
    rng: ChaCha8Rng,
    /// Per replica: the commit index after its previous step.
    commits: BTreeMap<NodeId, u64>,
    /// No trigger fires before this (the previous one's fault is still on).
    busy_until_us: u64,
    /// How often each kind fired.
    pub fired: BTreeMap<TriggerKind, u32>,
}

impl Triggers {
    pub fn new(specs: Vec<TriggerSpec>, seed: u64) -> Triggers {
        Triggers {
            specs,
            rng: ChaCha8Rng::seed_from_u64(super::mix_seed(seed, TRIGGER_STREAM, 0)),
            commits: BTreeMap::new(),
            busy_until_us: 0,
            fired: BTreeMap::new(),
        }
    }

    pub fn is_armed(&self) -> bool {
        !self.specs.is_empty()
    }

    /// After `node` stepped (on a pull with `pull_request_id`, if it was one) and produced `effects` (its status and log now as
    /// given): the trigger that fires, if any.
    pub fn after_step(
        &mut self,
        now_us: u64,
        node: NodeId,
        pull_request_id: Option<u64>,
        effects: &[BrokerEffect],
        status: &Status,
        log: &[Entry],
    ) -> Option<Fired> {
        let previous_commit = self.commits.insert(node, status.commit_index.0);
        if self.specs.is_empty() || now_us < self.busy_until_us {
            return None;
        }
        let leader = status.role == Role::Leader;
        let seen = |kind: TriggerKind| -> bool {
            match kind {
                TriggerKind::CrashAfterVoteGrant => effects.iter().any(|effect| {
                    matches!(
                        effect,
                        BrokerEffect::Send {
                            msg: PeerMessage::Raft(Message::VoteResponse {
                                granted: true,
                                pre_vote: false,
                                ..
                            }),
                            ..
                        }
                    )
                }),
                TriggerKind::PowerLoseAfterAppendAck => effects.iter().any(|effect| {
                    matches!(
                        effect,
                        BrokerEffect::Send {
                            msg: PeerMessage::Raft(Message::AppendResponse { success: true, .. }),
                            ..
                        }
                    )
                }),
                TriggerKind::PowerLoseAfterSendOk => {
                    leader
                        && effects.iter().any(|effect| {
                            matches!(
                                effect,
                                BrokerEffect::Respond {
                                    response: ClientResponse::SendOk { .. },
                                    ..
                                }
                            )
                        })
                }
                TriggerKind::CrashAfterOldTermCommit => {
                    leader
                        && previous_commit.is_some_and(|before| before < status.commit_index.0)
                        && entry_term(log, status.commit_index.0)
                            .is_some_and(|term| term < status.term.0)
                }
                TriggerKind::PauseWithPendingRead => pull_request_id.is_some_and(|request_id| {
                    leader
                        && !effects.iter().any(|effect| {
                            matches!(effect, BrokerEffect::Respond { request_id: id, .. } if *id == request_id)
                        })
                }),
            }
        };
        let spec = self.specs.iter().copied().find(|spec| seen(spec.kind))?;
        if !self.rng.gen_bool(f64::from(spec.chance_ppm) / 1e6) {
            return None;
        }
        self.busy_until_us = now_us + spec.down_us;
        *self.fired.entry(spec.kind).or_insert(0) += 1;
        let action = match spec.kind {
            TriggerKind::CrashAfterVoteGrant | TriggerKind::CrashAfterOldTermCommit => {
                TriggerAction::Crash
            }
            TriggerKind::PowerLoseAfterAppendAck | TriggerKind::PowerLoseAfterSendOk => {
                TriggerAction::PowerLoss
            }
            TriggerKind::PauseWithPendingRead => TriggerAction::Pause,
        };
        Some(Fired {
            kind: spec.kind,
            action,
            node,
            down_us: spec.down_us,
        })
    }
}
