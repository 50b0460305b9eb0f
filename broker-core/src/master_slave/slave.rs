//! The slave's side: takes the master's pushes, persists them, dispatches what is durable,
//! reports its durable index, refuses sends.

use super::MasterSlaveBroker;

/// Most pushes a slave keeps that arrived ahead of a gap in its log.
const EARLY_PUSHES_MAX: usize = 256;
use crate::proto::HaMessage;
use crate::store::{Entry, PersistOp};
use crate::types::LogIndex;

impl MasterSlaveBroker {
    pub(super) fn slave_tick(&mut self) {
        if self.now_ms >= self.next_report_ms {
            self.report();
        }
    }

    /// Reports the durable index (capped while looking for agreement) to the master.
    fn report(&mut self) {
        let index = self
            .report_cap
            .map_or(self.durable_index, |cap| cap.min(self.durable_index));
        let checksum = self
            .checksum_at(index)
            .expect("invariant: the report index is within the log");
        let master = self.master;
        self.send(master, HaMessage::Report { index, checksum });
        self.next_report_ms = self.now_ms + self.config.slave_report_interval_ms;
    }

    pub(super) fn slave_on_push(
        &mut self,
        prev_index: LogIndex,
        prev_checksum: u32,
        entries: Vec<Entry>,
        master_commit: LogIndex,
    ) {
        self.master_commit = self.master_commit.max(master_commit);
        if prev_index > self.last_index() {
            // Early (datagrams reorder) or after a lost one: keep it for when the gap fills;
            // the periodic report makes the master resend what never arrives.
            if self.early_pushes.len() < EARLY_PUSHES_MAX {
                self.early_pushes
                    .insert(prev_index, (prev_checksum, entries));
            }
            return;
        }
        if self.checksum_at(prev_index) != Some(prev_checksum) {
            // We hold a different entry there: our logs agree at most up to some index below.
            // Report half as far (the master verifies or shows us its entry there).
            let cap = LogIndex(prev_index.0 / 2);
            self.report_cap = Some(self.report_cap.map_or(cap, |c| c.min(cap)));
            self.early_pushes.clear();
            self.report();
            return;
        }
        self.accept_push(prev_checksum, prev_index, entries);
        // Pushes that arrived early and now follow our log.
        while let Some((prev_index, (prev_checksum, entries))) = self.early_pushes.pop_first() {
            if prev_index > self.last_index() {
                self.early_pushes
                    .insert(prev_index, (prev_checksum, entries));
                break;
            }
            if self.checksum_at(prev_index) == Some(prev_checksum) {
                self.accept_push(prev_checksum, prev_index, entries);
            }
        }
    }

    /// Takes a push whose `prev_index` entry we hold with the master's checksum: keeps the
    /// entries we already have, cuts ours from the first that differs, appends the rest.
    fn accept_push(&mut self, prev_checksum: u32, prev_index: LogIndex, entries: Vec<Entry>) {
        let end = LogIndex(prev_index.0 + entries.len() as u64);
        let mut previous_checksum = prev_checksum;
        let mut appended = Vec::new();
        for entry in entries {
            if !entry.verifies_after(previous_checksum) {
                break; // corrupt in transit: keep what verified, the next push retries
            }
            previous_checksum = entry.checksum;
            match self.checksum_at(entry.index) {
                Some(ours) if ours == entry.checksum && appended.is_empty() => {}
                Some(_) => {
                    if appended.is_empty() {
                        self.slave_truncate_from(entry.index);
                    }
                    appended.push(entry);
                }
                None => appended.push(entry),
            }
        }
        if !appended.is_empty() {
            self.log.extend(appended.iter().cloned());
            self.persist(PersistOp::Append { entries: appended });
            self.sync();
        }
        // While looking for agreement, everything up to `end` is now known to be the master's.
        if let Some(cap) = self.report_cap {
            let cap = cap.max(end);
            self.report_cap = (self.last_index() > cap).then_some(cap);
        }
    }

    /// Cuts every entry from `from` on: the master does not have them.
    fn slave_truncate_from(&mut self, from: LogIndex) {
        let keep = from.prev();
        self.log
            .truncate(usize::try_from(keep.0).expect("invariant: log indexes fit in usize"));
        self.persist(PersistOp::TruncateFrom { from });
        self.queues.truncate_from(from);
        self.durable_index = self.durable_index.min(keep);
        self.commit_index = self.commit_index.min(keep);
        self.applied_index = self.applied_index.min(keep);
        // Syncs in flight covered the old entries: they make at most `keep` durable now.
        for (_, index) in self.syncs_in_flight.iter_mut() {
            *index = (*index).min(keep);
        }
    }

    /// Dispatches what became durable and reports it.
    pub(super) fn slave_on_durable(&mut self) {
        let durable = self.durable_index;
        while self.applied_index < durable {
            let index = self.applied_index.next();
            let entry = self
                .entry(index)
                .expect("invariant: durable entries are in the log")
                .clone();
            self.queues.dispatch(&entry);
            self.applied_index = index;
        }
        self.commit_index = durable;
        self.report();
    }
}
