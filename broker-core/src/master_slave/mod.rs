//! Classic RocketMQ master–slave replication as a pure state machine: one master (the group's
//! first member, RocketMQ brokerId 0) takes every send; slaves copy its CommitLog and are never
//! promoted. It exists to show, next to DLedger mode, what automatic failover buys.
//!
//! ```text
//! client --Send--> master: append (Persist), dispatch to its ConsumeQueue, Push to slaves
//!   ASYNC_MASTER: SEND_OK after the local write (SYNC_FLUSH: after the local fsync)
//!   SYNC_MASTER:  SEND_OK once a slave Reports the entry durable, Timeout after sync_wait_ms
//! slave:  Push -> Persist + Sync -> Persisted -> dispatch, Report { index, checksum }
//!         Send -> NotLeader { hint: master }; Pull -> served from its own durable log
//! ```
//!
//! # The HA protocol
//! The slave reports `(index, checksum)` of its durable log. A report the master can verify
//! (its own entry at `index` has that checksum) proves, through the chained checksum, that the
//! slave's whole prefix up to `index` equals the master's: the master counts it as acknowledged
//! (SYNC_MASTER) and pushes from `index + 1`. A push whose `prev_checksum` the slave does not
//! hold is refused: the slave halves the index it reports until the master verifies one, then
//! takes the master's entries from there, cutting its own entries where they conflict.
//!
//! # A master that restarts with less than it acknowledged
//! With ASYNC_FLUSH the master acknowledges writes that are only in the page cache; a power loss
//! (`CrashLosingUnsynced`) drops them, and the master restarts from the shorter durable log and
//! keeps appending from there: new sends reuse the lost entries' log indexes and queue offsets.
//! Its slaves may still hold the lost entries. The master is authoritative: a slave cuts every
//! entry that conflicts with the master's log, so those acknowledged sends are gone from the
//! group (the simulator reports them as lost acknowledged sends). RocketMQ 4.x's HAClient does
//! no better: `dispatchReadRequest` refuses a transfer whose master offset is not the slave's
//! max physical offset ("master pushed offset not equal the max phy offset in slave") and
//! reconnects, so replication stalls until the master's CommitLog grows past the slave's, after
//! which the slave appends at byte offsets that no longer line up with the master's messages;
//! RocketMQ 5's AutoSwitchHAClient truncates the slave to the master's epoch instead. We model
//! the truncating behaviour, with the divergence found through the chained checksum rather than
//! epochs.
//!
//! `status()`: the master is `Role::Leader` and every slave `Role::Follower`, all in the
//! constant term `MASTER_SLAVE_TERM` (there are no elections); `commit_index` is what clients
//! may rely on: on the master what it acknowledged or would acknowledge (ASYNC: written, or
//! flushed with SYNC_FLUSH; SYNC: durable on a slave), on a slave its durable index.

mod config;
mod master;
mod slave;
#[cfg(test)]
mod tests;

pub use config::{Config, ConfigError, FlushMode, ReplicationMode};

use crate::broker::{BrokerEffect, BrokerInput, ClientId, ConsumeQueues, QueueKey, ReplicaNode};
use crate::proto::{HaMessage, PeerMessage};
use crate::raft::{Role, Status};
use crate::store::{Entry, PersistOp, RecoveredState};
use crate::types::{LogIndex, NodeId, SyncId, Term};
use std::collections::{BTreeMap, VecDeque};
use thiserror::Error;

/// The term every master–slave entry and status carries: there are no elections.
pub const MASTER_SLAVE_TERM: Term = Term(1);

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum MasterSlaveError {
    #[error("invalid config: {0}")]
    Config(#[from] ConfigError),
    #[error("node {id} is not among the members {members:?}")]
    NotAMember { id: NodeId, members: Vec<NodeId> },
}

/// What the master knows of one slave in this incarnation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct SlaveProgress {
    /// Highest index the slave reported durable with a checksum that matched ours.
    acked: LogIndex,
    /// The index the next push to it starts at; 0 = unknown until its next verified report.
    next: LogIndex,
}

/// A send the master appended and has not answered yet.
#[derive(Clone, Debug, PartialEq, Eq)]
struct PendingSend {
    client: ClientId,
    request_id: u64,
    queue_offset: u64,
    deadline_ms: u64,
}

/// One replica of a master–slave broker group.
pub struct MasterSlaveBroker {
    config: Config,
    id: NodeId,
    master: NodeId,
    slaves: Vec<NodeId>,
    /// The CommitLog in memory: entry `i` at position `i - 1`.
    log: Vec<Entry>,
    queues: ConsumeQueues,
    durable_index: LogIndex,
    commit_index: LogIndex,
    /// Entries dispatched to the ConsumeQueues and visible to pulls.
    applied_index: LogIndex,
    next_sync: u64,
    /// Syncs asked for and not yet reported, with the last index each covers.
    syncs_in_flight: VecDeque<(SyncId, LogIndex)>,
    now_ms: u64,
    started: bool,
    /// Master: per slave.
    progress: BTreeMap<NodeId, SlaveProgress>,
    /// Master: sends waiting for commit, by log index.
    pending: BTreeMap<LogIndex, PendingSend>,
    /// Master, ASYNC_FLUSH: when the background flush next runs.
    next_flush_ms: u64,
    /// Slave: when the next periodic report is due.
    next_report_ms: u64,
    /// Slave: never report above this (set while looking for agreement with the master).
    report_cap: Option<LogIndex>,
    /// Slave: pushes that arrived ahead of a gap, by `prev_index` (with its checksum).
    early_pushes: BTreeMap<LogIndex, (u32, Vec<Entry>)>,
    /// Slave: the master's commit index as last pushed.
    master_commit: LogIndex,
    effects: Vec<BrokerEffect>,
}

impl MasterSlaveBroker {
    /// Builds a replica from what its disk holds. The master is the lowest member id. A torn
    /// tail (entries whose chained checksum does not verify) is cut, with a `TruncateFrom` and
    /// a `Sync` waiting in `take_effects`.
    pub fn new(
        config: Config,
        id: NodeId,
        mut members: Vec<NodeId>,
        recovered: RecoveredState,
    ) -> Result<MasterSlaveBroker, MasterSlaveError> {
        config.validate()?;
        members.sort();
        members.dedup();
        if !members.contains(&id) {
            return Err(MasterSlaveError::NotAMember { id, members });
        }
        let master = members[0];
        let slaves = members[1..].to_vec();
        let mut log = recovered.entries;
        let cut_at = verified_prefix_len(&log);
        let torn = cut_at < log.len();
        log.truncate(cut_at);
        let last = LogIndex(log.len() as u64);
        let mut queues = ConsumeQueues::default();
        for entry in &log {
            queues.dispatch(entry);
        }
        let mut broker = MasterSlaveBroker {
            progress: slaves
                .iter()
                .map(|s| (*s, SlaveProgress::default()))
                .collect(),
            config,
            id,
            master,
            slaves,
            log,
            queues,
            // What a restarting node reads from its disk is durable.
            durable_index: last,
            commit_index: last,
            applied_index: last,
            next_sync: 0,
            syncs_in_flight: VecDeque::new(),
            now_ms: 0,
            started: false,
            pending: BTreeMap::new(),
            next_flush_ms: 0,
            next_report_ms: 0,
            report_cap: None,
            early_pushes: BTreeMap::new(),
            master_commit: LogIndex(0),
            effects: Vec::new(),
        };
        if torn {
            broker.persist(PersistOp::TruncateFrom { from: last.next() });
            broker.sync();
        }
        Ok(broker)
    }

    pub fn is_master(&self) -> bool {
        self.id == self.master
    }

    pub fn master(&self) -> NodeId {
        self.master
    }

    pub fn queue(&self, key: &QueueKey) -> Option<&crate::broker::ConsumeQueue> {
        self.queues.get(key)
    }

    /// The consumer offset `group` committed for `queue` on this replica (master only).
    pub fn committed_offset(&self, group: &str, queue: &QueueKey) -> Option<u64> {
        self.queues.committed_offset(group, queue)
    }

    pub fn step(&mut self, now_ms: u64, input: BrokerInput) {
        assert!(
            now_ms >= self.now_ms,
            "invariant: local time goes backwards ({now_ms} < {})",
            self.now_ms
        );
        self.now_ms = now_ms;
        if !self.started {
            self.started = true;
            self.next_flush_ms = now_ms + self.config.flush_interval_ms;
            self.next_report_ms = now_ms;
        }
        let master = self.is_master();
        match input {
            BrokerInput::Tick if master => self.master_tick(),
            BrokerInput::Tick => self.slave_tick(),
            BrokerInput::Persisted { sync_id } => {
                self.on_persisted(sync_id);
                if master {
                    self.master_advance_commit();
                } else {
                    self.slave_on_durable();
                }
            }
            BrokerInput::Peer {
                from,
                msg: PeerMessage::Ha(HaMessage::Report { index, checksum }),
            } if master => self.master_on_report(from, index, checksum),
            BrokerInput::Peer {
                from,
                msg:
                    PeerMessage::Ha(HaMessage::Push {
                        prev_index,
                        prev_checksum,
                        entries,
                        master_commit,
                    }),
            } if !master && from == self.master => {
                self.slave_on_push(prev_index, prev_checksum, entries, master_commit)
            }
            // Raft traffic (a misconfigured peer), a push to the master, a report to a slave,
            // or a push from a node that is not our master: dropped.
            BrokerInput::Peer { .. } => {}
            // There is no leadership to hand over: the master is fixed.
            BrokerInput::TransferLeadership { .. } => {}
            BrokerInput::Client {
                client,
                request_id,
                request,
            } => self.on_client(client, request_id, request),
        }
        self.check_invariants();
    }

    pub fn take_effects(&mut self) -> Vec<BrokerEffect> {
        std::mem::take(&mut self.effects)
    }

    pub fn next_deadline_ms(&self) -> u64 {
        if !self.is_master() {
            return self.next_report_ms;
        }
        let flush = match self.config.flush {
            FlushMode::Async => self.next_flush_ms,
            FlushMode::Sync => u64::MAX,
        };
        let expiry = self
            .pending
            .values()
            .map(|p| p.deadline_ms)
            .min()
            .unwrap_or(u64::MAX);
        flush.min(expiry)
    }

    pub fn status(&self) -> Status {
        Status {
            id: self.id,
            role: if self.is_master() {
                Role::Leader
            } else {
                Role::Follower
            },
            term: MASTER_SLAVE_TERM,
            voted_for: None,
            leader: Some(self.master),
            last_index: self.last_index(),
            last_term: self.log.last().map_or(Term(0), |e| e.term),
            durable_index: self.durable_index,
            commit_index: self.commit_index,
            applied_index: self.applied_index,
        }
    }

    pub fn log(&self) -> &[Entry] {
        &self.log
    }

    fn on_client(
        &mut self,
        client: ClientId,
        request_id: u64,
        request: crate::broker::ClientRequest,
    ) {
        use crate::broker::{ClientRequest, ClientResponse};
        match request {
            ClientRequest::Send { queue, msg_id } if self.is_master() => {
                self.master_on_send(client, request_id, queue, msg_id)
            }
            ClientRequest::Send { .. } => self.respond(
                client,
                request_id,
                ClientResponse::NotLeader {
                    leader_hint: Some(self.master),
                },
            ),
            ClientRequest::Pull { queue, offset, max } => {
                // A master serves what it acknowledged; a slave what it has durably (RocketMQ
                // consumers read from a slave when the master is down or behind).
                let response = self.queues.pull(&queue, offset, max, self.applied_index);
                self.respond(client, request_id, response);
            }
            // Consumer offsets live on the master only (its consumerOffset table, in memory
            // here: a restarted master has forgotten them and consumers start over, which is
            // at-least-once delivery). Slaves send consumers to the master.
            ClientRequest::CommitOffset {
                group,
                queue,
                offset,
            } if self.is_master() => {
                self.queues.commit_offset(group, queue, offset);
                self.respond(client, request_id, ClientResponse::OffsetCommitted);
            }
            ClientRequest::QueryOffset { group, queue } if self.is_master() => {
                let offset = self.queues.committed_offset(&group, &queue);
                self.respond(client, request_id, ClientResponse::Offset { offset });
            }
            ClientRequest::CommitOffset { .. } | ClientRequest::QueryOffset { .. } => self.respond(
                client,
                request_id,
                ClientResponse::NotLeader {
                    leader_hint: Some(self.master),
                },
            ),
        }
    }

    // --- shared helpers ---

    fn last_index(&self) -> LogIndex {
        LogIndex(self.log.len() as u64)
    }

    fn entry(&self, index: LogIndex) -> Option<&Entry> {
        if index.0 == 0 {
            return None;
        }
        self.log.get(usize::try_from(index.0 - 1).ok()?)
    }

    /// The checksum of the entry at `index`; 0 at index 0 (the chain's seed).
    fn checksum_at(&self, index: LogIndex) -> Option<u32> {
        if index.0 == 0 {
            return Some(0);
        }
        self.entry(index).map(|e| e.checksum)
    }

    fn persist(&mut self, op: PersistOp) {
        self.effects.push(BrokerEffect::Persist(op));
    }

    /// Asks for an fsync covering every write so far.
    fn sync(&mut self) {
        let sync_id = SyncId(self.next_sync);
        self.next_sync += 1;
        self.syncs_in_flight.push_back((sync_id, self.last_index()));
        self.effects.push(BrokerEffect::Sync { sync_id });
    }

    fn on_persisted(&mut self, sync_id: SyncId) {
        assert!(
            sync_id.0 < self.next_sync,
            "invariant: Persisted only for a sync this incarnation asked for ({sync_id:?})"
        );
        while let Some((id, index)) = self.syncs_in_flight.front().copied() {
            if id > sync_id {
                break;
            }
            self.syncs_in_flight.pop_front();
            self.durable_index = self.durable_index.max(index.min(self.last_index()));
        }
    }

    fn respond(
        &mut self,
        client: ClientId,
        request_id: u64,
        response: crate::broker::ClientResponse,
    ) {
        self.effects.push(BrokerEffect::Respond {
            client,
            request_id,
            response,
        });
    }

    fn send(&mut self, to: NodeId, msg: HaMessage) {
        self.effects.push(BrokerEffect::Send {
            to,
            msg: PeerMessage::Ha(msg),
        });
    }

    /// Checked after every step (assertions stay on in release).
    fn check_invariants(&self) {
        let last = self.last_index();
        assert!(
            self.durable_index <= last,
            "invariant: durable {} <= last {last}",
            self.durable_index
        );
        assert!(
            self.commit_index <= last,
            "invariant: commit {} <= last {last}",
            self.commit_index
        );
        assert!(
            self.applied_index <= self.commit_index,
            "invariant: applied {} <= commit {}",
            self.applied_index,
            self.commit_index
        );
        if let Some(entry) = self.log.last() {
            assert_eq!(entry.index, last, "invariant: log indexes are dense from 1");
            let previous = self.checksum_at(last.prev()).expect("invariant: dense log");
            assert!(
                entry.verifies_after(previous),
                "invariant: the last entry's chained checksum verifies"
            );
        }
        for (index, pending) in &self.pending {
            assert!(
                *index > self.commit_index,
                "invariant: a pending send {index} is not committed yet (commit {}, client {:?})",
                self.commit_index,
                pending.client
            );
        }
    }
}

/// How many leading entries have dense indexes from 1 and a chained checksum that verifies.
fn verified_prefix_len(entries: &[Entry]) -> usize {
    let mut previous_checksum = 0u32;
    for (position, entry) in entries.iter().enumerate() {
        if entry.index != LogIndex(position as u64 + 1) || !entry.verifies_after(previous_checksum)
        {
            return position;
        }
        previous_checksum = entry.checksum;
    }
    entries.len()
}

impl ReplicaNode for MasterSlaveBroker {
    fn step(&mut self, now_ms: u64, input: BrokerInput) {
        MasterSlaveBroker::step(self, now_ms, input);
    }
    fn take_effects(&mut self) -> Vec<BrokerEffect> {
        MasterSlaveBroker::take_effects(self)
    }
    fn next_deadline_ms(&self) -> u64 {
        MasterSlaveBroker::next_deadline_ms(self)
    }
    fn status(&self) -> Status {
        MasterSlaveBroker::status(self)
    }
    fn log(&self) -> &[Entry] {
        MasterSlaveBroker::log(self)
    }
}
