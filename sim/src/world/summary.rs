//! One-line descriptions of inputs and effects for the replay trace (entries' bytes elided).

use broker_core::broker::{BrokerEffect, BrokerInput, ClientRequest};
use broker_core::proto::{HaMessage, Message, PeerMessage};
use broker_core::store::PersistOp;

pub fn message(msg: &Message) -> String {
    match msg {
        Message::VoteRequest {
            term,
            candidate,
            last_log_index,
            last_log_term,
            pre_vote,
            leadership_transfer,
        } => format!(
            "{}Vote {term} from {candidate} last {last_log_index}/{last_log_term}{}",
            if *pre_vote { "Pre" } else { "" },
            if *leadership_transfer {
                " transfer"
            } else {
                ""
            }
        ),
        Message::VoteResponse {
            term,
            pre_vote,
            granted,
            reject_reason,
        } => format!(
            "{}VoteResp {term} granted={granted} {reject_reason:?}",
            if *pre_vote { "Pre" } else { "" }
        ),
        Message::AppendRequest {
            term,
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit,
            ..
        } => format!(
            "Append {term} prev {prev_log_index}/{prev_log_term} entries {} commit {leader_commit}",
            entries.len()
        ),
        Message::AppendResponse {
            term,
            success,
            match_or_hint,
            last_log_index,
            ..
        } => format!(
            "AppendResp {term} ok={success} match/hint {match_or_hint} last {last_log_index}"
        ),
        Message::TimeoutNow { term } => format!("TimeoutNow {term}"),
    }
}

pub fn peer(msg: &PeerMessage) -> String {
    match msg {
        PeerMessage::Raft(msg) => message(msg),
        PeerMessage::Ha(HaMessage::Report { index, checksum }) => {
            format!("HaReport {index} crc {checksum:08x}")
        }
        PeerMessage::Ha(HaMessage::Push {
            prev_index,
            entries,
            master_commit,
            ..
        }) => format!(
            "HaPush prev {prev_index} entries {} commit {master_commit}",
            entries.len()
        ),
    }
}

pub fn input(input: &BrokerInput) -> String {
    match input {
        BrokerInput::Tick => "tick".to_string(),
        BrokerInput::Peer { from, msg } => format!("recv {from}: {}", peer(msg)),
        BrokerInput::Persisted { sync_id } => format!("persisted sync {}", sync_id.0),
        BrokerInput::TransferLeadership { to } => format!("transfer leadership to {to}"),
        BrokerInput::Client {
            client,
            request_id,
            request,
        } => match request {
            ClientRequest::Send { queue, msg_id } => format!(
                "client c{} req {request_id}: send {msg_id} to {}/{}",
                client.0, queue.topic, queue.queue_id
            ),
            ClientRequest::Pull { queue, offset, max } => format!(
                "client c{} req {request_id}: pull {}/{} from {offset} max {max}",
                client.0, queue.topic, queue.queue_id
            ),
            ClientRequest::CommitOffset {
                group,
                queue,
                offset,
            } => format!(
                "client c{} req {request_id}: commit offset {offset} of {}/{} for {group}",
                client.0, queue.topic, queue.queue_id
            ),
            ClientRequest::QueryOffset { group, queue } => format!(
                "client c{} req {request_id}: query offset of {}/{} for {group}",
                client.0, queue.topic, queue.queue_id
            ),
        },
    }
}

pub fn effect(effect: &BrokerEffect) -> String {
    match effect {
        BrokerEffect::Send { to, msg } => format!("send {to}: {}", peer(msg)),
        BrokerEffect::Persist(PersistOp::HardState(h)) => {
            format!("persist hard state {} vote {:?}", h.term, h.voted_for)
        }
        BrokerEffect::Persist(PersistOp::TruncateFrom { from }) => {
            format!("persist truncate from {from}")
        }
        BrokerEffect::Persist(PersistOp::Append { entries }) => format!(
            "persist append {}..={}",
            entries.first().map_or(0, |e| e.index.0),
            entries.last().map_or(0, |e| e.index.0)
        ),
        BrokerEffect::Sync { sync_id } => format!("sync {}", sync_id.0),
        BrokerEffect::Respond {
            client,
            request_id,
            response,
        } => format!("respond c{} req {request_id}: {response:?}", client.0),
    }
}
