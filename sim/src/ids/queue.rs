//! A queue of a broker group, typed: the group, the topic and the queue id. Its text form
//! `g0/orders/1` is the queue's name in history files and reports.

use broker_core::broker::QueueKey;
use std::fmt;
use std::str::FromStr;

/// One queue of one broker group.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueueId {
    pub group: u32,
    pub queue: QueueKey,
}

impl QueueId {
    pub fn new(group: u32, queue: QueueKey) -> QueueId {
        QueueId { group, queue }
    }

    pub fn topic(&self) -> &str {
        &self.queue.topic
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "g{}/{}/{}",
            self.group, self.queue.topic, self.queue.queue_id
        )
    }
}

/// A queue name that is not `g<group>/<topic>/<queue id>`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("queue name {name:?} is not g<group>/<topic>/<queue id>")]
pub struct QueueIdError {
    pub name: String,
}

impl FromStr for QueueId {
    type Err = QueueIdError;
    fn from_str(name: &str) -> Result<QueueId, QueueIdError> {
        let error = || QueueIdError {
            name: name.to_string(),
        };
        let rest = name.strip_prefix('g').ok_or_else(error)?;
        let (group, rest) = rest.split_once('/').ok_or_else(error)?;
        let (topic, queue_id) = rest.rsplit_once('/').ok_or_else(error)?;
        if topic.is_empty() {
            return Err(error());
        }
        Ok(QueueId {
            group: group.parse().map_err(|_| error())?,
            queue: QueueKey {
                topic: topic.to_string(),
                queue_id: queue_id.parse().map_err(|_| error())?,
            },
        })
    }
}

/// The body of a message's attempt in the history: the message id for the first attempt
/// (`p3-17`), `p3-17#1`, `p3-17#2` for the next ones. Bodies stay unique per run.
pub fn attempt_body(msg_id: &str, attempt: u32) -> String {
    if attempt == 0 {
        msg_id.to_string()
    } else {
        format!("{msg_id}#{attempt}")
    }
}

/// The message an attempt's body belongs to: `p3-17#1` → `p3-17`.
pub fn message_of_body(body: &str) -> &str {
    body.split_once('#').map_or(body, |(message, _)| message)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text form round-trips, and anything else is refused with the name in the error.
    #[test]
    fn text_form_round_trips() {
        let id = QueueId::new(
            2,
            QueueKey {
                topic: "orders".to_string(),
                queue_id: 7,
            },
        );
        assert_eq!(id.to_string(), "g2/orders/7");
        assert_eq!("g2/orders/7".parse::<QueueId>(), Ok(id));
        for bad in [
            "q0",
            "g/orders/1",
            "gx/orders/1",
            "g0/orders",
            "g0//1",
            "g0/orders/x",
        ] {
            let error = bad.parse::<QueueId>().expect_err("not a queue name");
            assert_eq!(error.name, bad);
        }
    }

    #[test]
    fn attempt_bodies_name_their_message() {
        assert_eq!(attempt_body("p3-17", 0), "p3-17");
        assert_eq!(attempt_body("p3-17", 2), "p3-17#2");
        assert_eq!(message_of_body("p3-17#2"), "p3-17");
        assert_eq!(message_of_body("p3-17"), "p3-17");
    }
}
