//! Client proposals and reads through the log (append on the leader, answer on commit or
//! timeout) and leadership transfer (DLedger's preferred leader: stop taking proposals, catch
//! the target up, send `TimeoutNow`).

use super::node::{Node, PendingProposal, Transfer, Waiter};
use super::{ProposeOutcome, ReadOutcome, Role};
use crate::proto::Message;
use crate::store::{EntryKind, PersistOp};
use crate::types::{LogIndex, NodeId, ProposalId, ReadId};

impl Node {
    pub(super) fn propose(&mut self, proposal: ProposalId, data: Vec<u8>) {
        if self.role != Role::Leader {
            let leader_hint = self.leader;
            self.reply(proposal, ProposeOutcome::NotLeader { leader_hint });
            return;
        }
        let pending_max = self.config.pending_proposals_max as usize;
        let state = self.leader_state();
        if state.transfer.is_some() || state.pending.len() >= pending_max {
            self.reply(proposal, ProposeOutcome::Busy);
            return;
        }
        self.append_for(Waiter::Proposal(proposal), EntryKind::Normal, data);
    }

    /// A read through the log (DLedger `RAFT_LOG_READ`, `DLedgerServer.dealRaftLogRead`): append
    /// a no-op; the read is answered `Ready` at its index once applied.
    pub(super) fn log_read(&mut self, read: ReadId) {
        if self.role != Role::Leader {
            let leader_hint = self.leader;
            self.reply_read(read, ReadOutcome::NotLeader { leader_hint });
            return;
        }
        let pending_max = self.config.pending_proposals_max as usize;
        let state = self.leader_state();
        if state.transfer.is_some() || state.pending.len() >= pending_max {
            self.reply_read(read, ReadOutcome::Busy);
            return;
        }
        self.append_for(Waiter::LogRead(read), EntryKind::Noop, Vec::new());
    }

    /// Appends an entry of the current term that `waiter` waits for (answered on commit or
    /// after `max_wait_ack_ms`).
    fn append_for(&mut self, waiter: Waiter, kind: EntryKind, data: Vec<u8>) -> LogIndex {
        let entry = self.log.append_new(self.hard_state.term, kind, data);
        let index = entry.index;
        self.persist(PersistOp::Append {
            entries: vec![entry],
        });
        let deadline_ms = self.now_ms + self.config.max_wait_ack_ms;
        let previous = self
            .leader_state
            .as_mut()
            .expect("invariant: role Leader has leader state")
            .pending
            .insert(
                index,
                PendingProposal {
                    waiter,
                    deadline_ms,
                },
            );
        assert!(previous.is_none(), "invariant: one proposal per log index");
        index
    }

    /// Answers every pending proposal (`Committed`) and log read (`Ready`) at or below the
    /// commit index.
    pub(super) fn reply_committed(&mut self) {
        let Some(state) = self.leader_state.as_mut() else {
            return;
        };
        let still_pending = state.pending.split_off(&self.commit_index.next());
        let committed = std::mem::replace(&mut state.pending, still_pending);
        for (index, pending) in committed {
            let term = self
                .log
                .term_at(index)
                .expect("invariant: a committed index is inside the log");
            match pending.waiter {
                Waiter::Proposal(proposal) => {
                    self.reply(proposal, ProposeOutcome::Committed { index, term });
                }
                Waiter::LogRead(read) => self.reply_read(read, ReadOutcome::Ready { index }),
            }
        }
    }

    /// Proposals (and log reads) not committed within `max_wait_ack_ms` are answered `Timeout`
    /// (they stay in the log and may still commit). Deadlines grow with the index, so the expired ones are a
    /// prefix of the pending map.
    pub(super) fn expire_proposals(&mut self) {
        let now_ms = self.now_ms;
        let mut expired = Vec::new();
        if let Some(state) = self.leader_state.as_mut() {
            while let Some(entry) = state.pending.first_entry() {
                if entry.get().deadline_ms > now_ms {
                    break;
                }
                expired.push(entry.remove().waiter);
            }
        }
        for waiter in expired {
            match waiter {
                Waiter::Proposal(proposal) => self.reply(proposal, ProposeOutcome::Timeout),
                Waiter::LogRead(read) => self.reply_read(read, ReadOutcome::Timeout),
            }
        }
    }

    /// Starts handing leadership to `to`. Ignored unless this node leads, `to` is another member,
    /// and no transfer is under way.
    pub(super) fn transfer_leadership(&mut self, to: NodeId) {
        if self.role != Role::Leader || to == self.id || !self.members.contains(&to) {
            return;
        }
        let deadline_ms = self.now_ms + self.config.transfer_timeout_ms;
        let state = self
            .leader_state
            .as_mut()
            .expect("invariant: role Leader has leader state");
        if state.transfer.is_some() {
            return;
        }
        state.transfer = Some(Transfer {
            to,
            deadline_ms,
            timeout_now_sent: false,
        });
    }

    /// Once the target holds our whole log durably, tell it to start an election now.
    pub(super) fn maybe_send_timeout_now(&mut self) {
        let last_index = self.log.last_index();
        let term = self.hard_state.term;
        let Some(state) = self.leader_state.as_mut() else {
            return;
        };
        let Some(transfer) = state.transfer.as_mut() else {
            return;
        };
        let caught_up = state
            .progress
            .get(&transfer.to)
            .is_some_and(|progress| progress.match_index == last_index);
        if transfer.timeout_now_sent || !caught_up {
            return;
        }
        transfer.timeout_now_sent = true;
        let to = transfer.to;
        self.send(to, Message::TimeoutNow { term });
    }

    /// A transfer that has not completed within `transfer_timeout_ms` is abandoned: proposals
    /// are accepted again.
    pub(super) fn expire_transfer(&mut self) {
        let now_ms = self.now_ms;
        if let Some(state) = self.leader_state.as_mut() {
            if state
                .transfer
                .as_ref()
                .is_some_and(|t| t.deadline_ms <= now_ms)
            {
                state.transfer = None;
            }
        }
    }
}
