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
