//! The master's side: appends sends, pushes to slaves, acknowledges per the replication and
//! flush modes, expires sends that waited too long.

use super::{FlushMode, MasterSlaveBroker, PendingSend, ReplicationMode, MASTER_SLAVE_TERM};
use crate::broker::{ClientId, ClientResponse, QueueKey, StoredMessage};
use crate::proto::HaMessage;
use crate::store::{Entry, EntryKind, PersistOp};
use crate::types::{LogIndex, NodeId};

impl MasterSlaveBroker {
    pub(super) fn master_tick(&mut self) {
        let now_ms = self.now_ms;
        let expired: Vec<LogIndex> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline_ms <= now_ms)
            .map(|(index, _)| *index)
            .collect();
        for index in expired {
            let pending = self
                .pending
                .remove(&index)
                .expect("invariant: collected from the map just now");
            // FLUSH_SLAVE_TIMEOUT / FLUSH_DISK_TIMEOUT: the entry is written; it may survive.
            self.respond(pending.client, pending.request_id, ClientResponse::Timeout);
        }
        if self.config.flush == FlushMode::Async && now_ms >= self.next_flush_ms {
            let flushed_or_flushing = self
                .syncs_in_flight
                .back()
                .map_or(self.durable_index, |(_, index)| *index);
            if flushed_or_flushing < self.last_index() {
                self.sync();
            }
            self.next_flush_ms = now_ms + self.config.flush_interval_ms;
        }
    }

    pub(super) fn master_on_send(
        &mut self,
        client: ClientId,
        request_id: u64,
        queue: QueueKey,
        msg_id: String,
    ) {
        if self.pending.len() >= self.config.pending_sends_max as usize {
            self.respond(client, request_id, ClientResponse::Busy);
            return;
        }
        let index = self.last_index().next();
        let previous = self
            .checksum_at(index.prev())
            .expect("invariant: the log is dense");
        let data = StoredMessage { queue, msg_id }.encode();
        let entry = Entry::new(previous, index, MASTER_SLAVE_TERM, EntryKind::Normal, data);
        self.log.push(entry.clone());
        let (_, queue_offset) = self
            .queues
            .dispatch(&entry)
            .expect("invariant: a send is a Normal entry");
        self.persist(PersistOp::Append {
            entries: vec![entry],
        });
        if self.config.flush == FlushMode::Sync {
            self.sync();
        }
        let deadline_ms = self.now_ms + self.config.sync_wait_ms;
        self.pending.insert(
            index,
            PendingSend {
                client,
                request_id,
                queue_offset,
                deadline_ms,
            },
        );
        for slave in self.slaves.clone() {
            if self.progress[&slave].next == index {
                self.push_from(slave, index);
            }
        }
        self.master_advance_commit();
    }

    /// A slave's report: count it for SYNC_MASTER if it verifies, and push what it lacks.
    pub(super) fn master_on_report(&mut self, from: NodeId, index: LogIndex, checksum: u32) {
        let Some(progress) = self.progress.get(&from).copied() else {
            return; // not one of our slaves
        };
        if self.checksum_at(index) == Some(checksum) {
            // Two reports of the same durable index: nothing we pushed since got through.
            let stalled = index == progress.acked;
            let entry = self
                .progress
                .get_mut(&from)
                .expect("invariant: looked up above");
            entry.acked = entry.acked.max(index);
            // Trust pushes in flight, unless the slave made no progress since its last report
            // (a push was lost or refused): then resend from what it has.
            let from_index = if stalled || progress.next <= index {
                index.next()
            } else {
                progress.next
            };
            if from_index <= self.last_index() {
                self.push_from(from, from_index);
            } else {
                self.progress
                    .get_mut(&from)
                    .expect("invariant: looked up above")
                    .next = from_index;
            }
            self.master_advance_commit();
        } else {
            // The slave has entries we do not (we lost them) or different ones: show it where
            // our log is; it refuses when it does not hold that entry and reports lower.
            // Until a report verifies, we do not know where the slave's log goes on.
            let prev = index.min(self.last_index());
            self.push_from(from, prev.next());
            self.progress
                .get_mut(&from)
                .expect("invariant: looked up above")
                .next = LogIndex(0);
        }
    }

    /// Pushes up to a batch of entries from `from` (which may be just past the last entry: an
    /// empty push that shows the slave our entry at `from - 1`).
    fn push_from(&mut self, slave: NodeId, from: LogIndex) {
        let prev_index = from.prev();
        let prev_checksum = self
            .checksum_at(prev_index)
            .expect("invariant: pushes start within the log or right after it");
        let start = usize::try_from(prev_index.0).expect("invariant: log indexes fit in usize");
        let end = start
            .saturating_add(self.config.push_batch_entries_max as usize)
            .min(self.log.len());
        let entries = self.log[start..end].to_vec();
        self.progress
            .get_mut(&slave)
            .expect("invariant: pushes go to known slaves")
            .next = LogIndex(prev_index.0 + entries.len() as u64 + 1);
        let master_commit = self.commit_index;
        self.send(
            slave,
            HaMessage::Push {
                prev_index,
                prev_checksum,
                entries,
                master_commit,
            },
        );
    }

    /// Raises the commit index to what the modes allow; answers the sends it covers.
    pub(super) fn master_advance_commit(&mut self) {
        let local = match self.config.flush {
            FlushMode::Async => self.last_index(),
            FlushMode::Sync => self.durable_index,
        };
        let target = match self.config.replication {
            ReplicationMode::Async => local,
            ReplicationMode::Sync => {
                let best_slave = self
                    .progress
                    .values()
                    .map(|p| p.acked)
                    .max()
                    .unwrap_or(LogIndex(0));
                local.min(best_slave)
            }
        };
        if target <= self.commit_index {
            return;
        }
        self.commit_index = target;
        self.applied_index = target;
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() > target {
                break;
            }
            let log_index = *entry.key();
            let pending = entry.remove();
            self.respond(
                pending.client,
                pending.request_id,
                ClientResponse::SendOk {
                    queue_offset: pending.queue_offset,
                    log_index,
                },
            );
        }
    }
}
