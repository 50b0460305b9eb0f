//! Messages between clients and brokers (RocketMQ's request codes, reduced to what we test).

use crate::types::{LogIndex, NodeId};
use serde::{Deserialize, Serialize};

/// A (topic, queue id) pair: the unit of ordering and of the ConsumeQueue.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QueueKey {
    pub topic: String,
    pub queue_id: u32,
}

/// A client's request to a broker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientRequest {
    /// SEND_MESSAGE: append one message. `msg_id` is unique per run (the checker relies on it).
    Send { queue: QueueKey, msg_id: String },
    /// PULL_MESSAGE: up to `max` committed messages of `queue` from `offset`.
    Pull {
        queue: QueueKey,
        offset: u64,
        max: u32,
    },
    /// UPDATE_CONSUMER_OFFSET: consumer `group` has processed `queue` up to (not including)
    /// `offset`. DLedger mode: a log entry, answered `OffsetCommitted` after commit;
    /// master–slave: kept on the master (RocketMQ's consumerOffset table), answered at once.
    CommitOffset {
        group: String,
        queue: QueueKey,
        offset: u64,
    },
    /// QUERY_CONSUMER_OFFSET: the offset `group` last committed for `queue`.
    QueryOffset { group: String, queue: QueueKey },
}

/// A broker's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientResponse {
    /// SEND_OK: committed; `queue_offset` is the message's position in its ConsumeQueue.
    SendOk {
        queue_offset: u64,
        log_index: LogIndex,
    },
    /// PULL: committed messages `offset..offset+n` of the queue, as msg ids.
    Pulled { offset: u64, msg_ids: Vec<String> },
    /// A consumer offset commit is committed (DLedger) or recorded (master).
    OffsetCommitted,
    /// The committed consumer offset of a group for a queue (None: never committed).
    Offset { offset: Option<u64> },
    /// Definitely not done here: this broker is not the leader (it may name the one it believes is).
    NotLeader { leader_hint: Option<NodeId> },
    /// Definitely not done: overloaded or handing leadership over; retry later.
    Busy,
    /// Appended but not committed in time (DLedger WAIT_QUORUM_ACK_TIMEOUT): outcome unknown.
    Timeout,
    /// Appended, then leadership was lost before commit: outcome unknown.
    LeadershipLost,
}

impl ClientResponse {
    /// True when the request was definitely not applied.
    pub fn is_definite_failure(&self) -> bool {
        matches!(
            self,
            ClientResponse::NotLeader { .. } | ClientResponse::Busy
        )
    }
}

/// What a Normal log entry carries for the broker: one message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    pub queue: QueueKey,
    pub msg_id: String,
}

/// What a Normal entry's bytes hold: postcard of this tagged enum, so a message never decodes
/// as an offset commit nor the other way round, and readers that look for messages skip commits.
#[derive(Serialize, Deserialize)]
enum Payload {
    Message(StoredMessage),
    OffsetCommit(StoredOffsetCommit),
}

impl Payload {
    fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("invariant: a Payload always serialises")
    }

    fn decode(data: &[u8]) -> Option<Payload> {
        postcard::from_bytes(data).ok()
    }
}

impl StoredMessage {
    pub fn encode(&self) -> Vec<u8> {
        Payload::Message(self.clone()).encode()
    }

    pub fn decode(data: &[u8]) -> Option<StoredMessage> {
        match Payload::decode(data)? {
            Payload::Message(message) => Some(message),
            Payload::OffsetCommit(_) => None,
        }
    }
}

/// What a Normal log entry carries for a consumer offset commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredOffsetCommit {
    pub group: String,
    pub queue: QueueKey,
    pub offset: u64,
}

impl StoredOffsetCommit {
    pub fn encode(&self) -> Vec<u8> {
        Payload::OffsetCommit(self.clone()).encode()
    }

    pub fn decode(data: &[u8]) -> Option<StoredOffsetCommit> {
        match Payload::decode(data)? {
            Payload::OffsetCommit(commit) => Some(commit),
            Payload::Message(_) => None,
        }
    }
}
