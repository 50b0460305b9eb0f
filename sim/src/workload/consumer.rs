//! Consumers: one consumer group whose members divide the queues among them. For each of its
//! queues a consumer asks the broker for the group's committed offset, then pulls up to
//! `PULL_MAX` messages at a time from there, records every pull in the history, and commits
//! its offset every `COMMIT_EVERY_PULLS` pulls. Offset commits and queries are not in the
//! history (the log model has no operation for them); they only decide where a consumer
//! starts. A pull that returns nothing is retried after `consumer_poll_us`. Consumers go on
//! pulling after the producers stop, through the heal phase, until the supervisor sees every
//! queue drained to its leader's applied end or `settle_max` passes (`stopped`); each pull
//! reports the offset it reached (`World::record_consumer_offset`).
//!
//! Pulls go to the replica the consumer believes leads the group and follow leader hints, as
//! sends do: in DLedger mode only the leader serves pulls (from its applied, committed log;
//! with `read_mode: UnsafeRead` any replica does, and consumers pull from each in turn);
//! in master–slave mode any replica serves them from what it holds, so a consumer that times
//! out on a dead master moves on to a slave.
//!
//! With name servers, a consumer pulls from the master its route names and fetches routes as
//! a producer does (on NOT_LEADER, not on a timeout); while the route names no master for the
//! group it waits `retry_backoff_us` and looks again, recording nothing.

use super::history_queue_name;
use super::producer::{connect, Producer};
use super::WorkloadSpec;
use crate::history::{OpInput, OpOutcome, Operation};
use crate::world::nameserver::RefreshReason;
use crate::world::World;
use broker_core::broker::ReadMode;
use broker_core::broker::{ClientId, ClientRequest, ClientResponse, QueueKey};
use broker_core::NodeId;
use std::sync::Arc;
use std::time::Duration;

/// The one consumer group every consumer belongs to.
pub const CONSUMER_GROUP: &str = "hasim-consumers";
/// Messages asked for per pull (RocketMQ's default `pullBatchSize`).
pub const PULL_MAX: u32 = 32;
/// A consumer commits its offset after this many pulls.
pub const COMMIT_EVERY_PULLS: u32 = 4;

/// Runs consumer number `index` (of `workload.consumers`) as client `client` until the
/// workload stops (plus one send timeout); returns only when every per-queue loop finished.
pub async fn run_consumer(
    world: Arc<World>,
    workload: Arc<WorkloadSpec>,
    client: ClientId,
    index: u32,
) {
    let consumers = workload.consumers.max(1);
    let connection = connect(world.clone(), workload.clone(), client).await;
    madsim::time::sleep(Duration::from_micros(
        workload.warmup_us.saturating_sub(world.now_us()),
    ))
    .await;
    let loops: Vec<_> = workload
        .queues
        .iter()
        .enumerate()
        .filter(|(position, _)| *position as u32 % consumers == index)
        .map(|(_, (group, queue))| {
            let connection = connection.clone();
            let (group, queue) = (*group, queue.clone());
            madsim::task::spawn(async move { consume_queue(connection, group, queue).await })
        })
        .collect();
    // A node whose main task returns exits, and its other tasks die with it: wait for every
    // loop (and so every pull) to be recorded first.
    for pull_loop in loops {
        pull_loop
            .await
            .expect("invariant: a consumer task does not panic");
    }
}

/// Consumers keep pulling through the heal phase until the supervisor sees every queue drained
/// (or the settle bound passes): every acknowledged message can be consumed.
fn stopped(world: &World) -> bool {
    world.consumers_stopped()
}

async fn consume_queue(client: Arc<Producer>, group: u32, queue: QueueKey) {
    let world = client.world.clone();
    let Some(mut offset) = query_offset(&client, group, &queue).await else {
        return;
    };
    let mut committed = offset;
    let mut pulls = 0u32;
    let unsafe_read = world.spec.read_mode == ReadMode::UnsafeRead;
    while !stopped(&world) {
        // UNSAFE_READ: any replica answers, so consumers read from every replica in turn.
        let target = if unsafe_read {
            Some(client.replica(group, pulls % world.spec.replicas))
        } else {
            client.target(group)
        };
        let Some(target) = target else {
            // With name servers: no master in the route yet; a fetch is asked for.
            madsim::time::sleep(Duration::from_micros(client.workload.retry_backoff_us)).await;
            continue;
        };
        let (operation, got) = pull(&client, group, target, &queue, offset).await;
        let outcome = operation.outcome.clone();
        world.record_operation(operation);
        offset += got;
        world.record_consumer_offset(history_queue_name(group, &queue), offset);
        pulls += 1;
        if pulls.is_multiple_of(COMMIT_EVERY_PULLS)
            && offset > committed
            && !stopped(&world)
            && commit_offset(&client, group, &queue, offset).await
        {
            committed = offset;
        }
        let wait_us = match outcome {
            OpOutcome::Pulled { .. } if got > 0 => 0,
            OpOutcome::Pulled { .. } => client.workload.consumer_poll_us,
            _ => client.workload.retry_backoff_us,
        };
        if wait_us > 0 {
            madsim::time::sleep(Duration::from_micros(wait_us)).await;
        }
    }
}

/// Follows a refusal's leader hint, as a producer does; otherwise tries the next replica.
/// With name servers: fetches the route instead.
fn follow(client: &Producer, group: u32, target: NodeId, leader_hint: Option<NodeId>) {
    if client.routes_by_name_server() {
        client.request_refresh(RefreshReason::Refused { group, by: target });
        return;
    }
    match leader_hint.filter(|hint| !client.is_suspect(*hint) && *hint != target) {
        Some(hint) => client.believe_leader(group, hint),
        None => client.rotate(group, target),
    }
}

/// The group's committed offset for the queue (0 if none), retried until the workload stops
/// (None then).
async fn query_offset(client: &Producer, group: u32, queue: &QueueKey) -> Option<u64> {
    while !stopped(&client.world) {
        let Some(target) = client.target(group) else {
            madsim::time::sleep(Duration::from_micros(client.workload.retry_backoff_us)).await;
            continue;
        };
        let request = ClientRequest::QueryOffset {
            group: CONSUMER_GROUP.to_string(),
            queue: queue.clone(),
        };
        match client
            .request(target, request, client.workload.send_timeout_us)
            .await
        {
            Some(ClientResponse::Offset { offset }) => {
                client.believe_leader(group, target);
                return Some(offset.unwrap_or(0));
            }
            Some(ClientResponse::NotLeader { leader_hint }) => {
                follow(client, group, target, leader_hint)
            }
            Some(_) => {}
            None => {
                client.suspect(target);
                client.rotate(group, target);
            }
        }
        madsim::time::sleep(Duration::from_micros(client.workload.retry_backoff_us)).await;
    }
    None
}

/// Commits the offset once (not retried: the next commit carries a later offset); true when
/// the broker confirmed it.
async fn commit_offset(client: &Producer, group: u32, queue: &QueueKey, offset: u64) -> bool {
    let Some(target) = client.target(group) else {
        return false;
    };
    let request = ClientRequest::CommitOffset {
        group: CONSUMER_GROUP.to_string(),
        queue: queue.clone(),
        offset,
    };
    match client
        .request(target, request, client.workload.send_timeout_us)
        .await
    {
        Some(ClientResponse::OffsetCommitted) => true,
        Some(ClientResponse::NotLeader { leader_hint }) => {
            follow(client, group, target, leader_hint);
            false
        }
        _ => false,
    }
}

/// One pull, recorded as one operation; also returns how many messages it brought.
async fn pull(
    client: &Producer,
    group: u32,
    target: NodeId,
    queue: &QueueKey,
    offset: u64,
) -> (Operation, u64) {
    let invoke_us = client.world.now_us();
    let request = ClientRequest::Pull {
        queue: queue.clone(),
        offset,
        max: PULL_MAX,
    };
    let response = client
        .request(target, request, client.workload.send_timeout_us)
        .await;
    let (outcome, got) = match response {
        Some(ClientResponse::Pulled { msg_ids, .. }) => {
            client.believe_leader(group, target);
            let got = msg_ids.len() as u64;
            (OpOutcome::Pulled { bodies: msg_ids }, got)
        }
        Some(ClientResponse::NotLeader { leader_hint }) => {
            follow(client, group, target, leader_hint);
            (OpOutcome::Fail, 0)
        }
        Some(_) => (OpOutcome::Fail, 0),
        None => {
            client.suspect(target);
            client.rotate(group, target);
            (OpOutcome::Unknown, 0)
        }
    };
    let operation = Operation {
        client: client.id.0,
        input: OpInput::Pull {
            queue: history_queue_name(group, queue),
            offset,
            max: PULL_MAX,
        },
        invoke_us,
        complete_us: client.world.now_us(),
        outcome,
    };
    (operation, got)
}
