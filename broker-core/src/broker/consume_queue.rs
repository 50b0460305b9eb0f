use super::protocol::{ClientResponse, QueueKey, StoredMessage, StoredOffsetCommit};
use crate::store::{Entry, EntryKind};
use crate::types::LogIndex;

/// RocketMQ's ConsumeQueue for one (topic, queue): committed messages in queue-offset order.
/// Offsets are assigned when a committed entry is dispatched, so they are dense from 0.
#[derive(Clone, Debug, Default)]
pub struct ConsumeQueue {
    /// Position `offset` holds the message at that queue offset.
    messages: Vec<(LogIndex, String)>,
}

impl ConsumeQueue {
    /// Dispatches a committed message; returns its queue offset.
    pub fn dispatch(&mut self, index: LogIndex, msg_id: String) -> u64 {
        if let Some((last_index, _)) = self.messages.last() {
            assert!(
                *last_index < index,
                "invariant: dispatch in log order ({last_index} then {index})"
            );
        }
        self.messages.push((index, msg_id));
        self.len() - 1
    }

    pub fn len(&self) -> u64 {
        self.messages.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The queue offset of the message stored at log index `index`, if it is in this queue.
    pub fn offset_of(&self, index: LogIndex) -> Option<u64> {
        self.messages
            .binary_search_by_key(&index, |(i, _)| *i)
            .ok()
            .map(|position| position as u64)
    }

    /// Up to `max` msg ids from `offset`.
    pub fn read(&self, offset: u64, max: u32) -> Vec<String> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.messages.len());
        let end = start.saturating_add(max as usize).min(self.messages.len());
        self.messages[start..end]
            .iter()
            .map(|(_, id)| id.clone())
            .collect()
    }
}

impl ConsumeQueue {
    /// Drops every message stored at log index `from` or later (a master–slave slave cutting a
    /// suffix its master no longer has). DLedger mode never calls this: it dispatches only
    /// committed entries, which are never truncated.
    pub fn truncate_from(&mut self, from: LogIndex) {
        let keep = self.messages.partition_point(|(index, _)| *index < from);
        self.messages.truncate(keep);
    }

    /// Up to `max` msg ids from `offset`, stopping before the first message stored above
    /// `up_to` (a reader that may see only entries up to a commit index).
    pub fn read_up_to(&self, offset: u64, max: u32, up_to: LogIndex) -> Vec<String> {
        let visible = self.messages.partition_point(|(index, _)| *index <= up_to);
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(visible);
        let end = start.saturating_add(max as usize).min(visible);
        self.messages[start..end]
            .iter()
            .map(|(_, id)| id.clone())
            .collect()
    }
}

/// Every ConsumeQueue of one replica: dispatches CommitLog entries to their (topic, queue).
/// Shared by DLedger mode (dispatch after commit) and master–slave mode (dispatch after the
/// local write on a master, after the durable write on a slave).
#[derive(Clone, Debug, Default)]
pub struct ConsumeQueues {
    queues: std::collections::BTreeMap<QueueKey, ConsumeQueue>,
    /// Committed consumer offsets, by (consumer group, queue).
    offsets: std::collections::BTreeMap<(String, QueueKey), u64>,
}

impl ConsumeQueues {
    /// Dispatches one entry; returns the message's queue and queue offset (None for a Noop or
    /// a consumer offset commit, which updates the offset table instead).
    pub fn dispatch(&mut self, entry: &Entry) -> Option<(QueueKey, u64)> {
        if entry.kind != EntryKind::Normal {
            return None;
        }
        let Some(message) = StoredMessage::decode(&entry.data) else {
            let commit = StoredOffsetCommit::decode(&entry.data)
                .expect("invariant: every Normal entry is a StoredMessage or a StoredOffsetCommit");
            self.commit_offset(commit.group, commit.queue, commit.offset);
            return None;
        };
        let offset = self
            .queues
            .entry(message.queue.clone())
            .or_default()
            .dispatch(entry.index, message.msg_id);
        Some((message.queue, offset))
    }

    /// Records a consumer group's offset for a queue (the last commit wins, as in RocketMQ).
    pub fn commit_offset(&mut self, group: String, queue: QueueKey, offset: u64) {
        self.offsets.insert((group, queue), offset);
    }

    /// The offset `group` last committed for `queue`.
    pub fn committed_offset(&self, group: &str, queue: &QueueKey) -> Option<u64> {
        self.offsets
            .get(&(group.to_string(), queue.clone()))
            .copied()
    }

    pub fn get(&self, key: &QueueKey) -> Option<&ConsumeQueue> {
        self.queues.get(key)
    }

    /// Drops every message stored at log index `from` or later, in every queue.
    pub fn truncate_from(&mut self, from: LogIndex) {
        for queue in self.queues.values_mut() {
            queue.truncate_from(from);
        }
    }

    /// A pull: up to `max` msg ids of `queue` from `offset`, none stored above `up_to`.
    pub fn pull(&self, queue: &QueueKey, offset: u64, max: u32, up_to: LogIndex) -> ClientResponse {
        let msg_ids = self
            .queues
            .get(queue)
            .map(|q| q.read_up_to(offset, max, up_to))
            .unwrap_or_default();
        ClientResponse::Pulled { offset, msg_ids }
    }
}
