//! Consumers: one consumer group whose members divide the queues among them; each queue is a
//! task that runs its `QueueConsumer` machine (`pull.rs`) over the client's connection. Offset
//! commits and queries are not in the history (the log model has no operation for them); they
//! only decide where a consumer starts. Consumers go on pulling after the producers stop,
//! through the heal phase, until the supervisor sees every queue drained to its leader's
//! applied end or `settle_max` passes (`World::consumers_stopped`); each pull reports the
//! offset it reached (`World::record_consumer_offset`).
//!
//! Pulls go to the replica the consumer believes leads the group and follow leader hints, as
//! sends do: in DLedger mode only the leader serves pulls (from its applied, committed log;
//! with `read_mode: UnsafeRead` any replica does, and consumers pull from each in turn);
//! in master–slave mode any replica serves them from what it holds, so a consumer that times
//! out on a dead master moves on to a slave. With name servers, a consumer pulls from the
//! master its route names and fetches routes as a producer does.

use super::connection::connect;
use super::pull::{assigned_queues, QueueConsumer};
use super::WorkloadSpec;
use crate::world::World;
use broker_core::broker::ClientId;
use broker_core::broker::ReadMode;
use std::sync::Arc;
use std::time::Duration;

/// Runs consumer number `index` (of `workload.consumers`) as client `client` until the
/// consumers stop; returns only when every per-queue loop finished.
pub async fn run_consumer(
    world: Arc<World>,
    workload: Arc<WorkloadSpec>,
    client: ClientId,
    index: u32,
) {
    let connection = connect(world.clone(), workload.clone(), client).await;
    madsim::time::sleep(Duration::from_micros(
        workload.warmup_us.saturating_sub(world.now_us()),
    ))
    .await;
    // UNSAFE_READ: any replica answers, so consumers read from every replica in turn.
    let unsafe_read = world.spec.read_mode == ReadMode::UnsafeRead;
    let loops: Vec<_> = assigned_queues(&workload.queues, workload.consumers, index)
        .into_iter()
        .map(|queue| {
            let connection = connection.clone();
            madsim::task::spawn(async move {
                let mut consumer = QueueConsumer::new(queue, unsafe_read);
                connection
                    .drive(&mut consumer, World::consumers_stopped)
                    .await;
            })
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
