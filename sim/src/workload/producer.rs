//! Producers: open-loop sends at a fixed rate (`schedule.rs`), each message a task that runs
//! its `MessageSend` machine (`send.rs`) over the client's connection. Kept thin: all
//! decisions are the machines'.

use super::connection::connect;
use super::schedule::SendSchedule;
use super::send::MessageSend;
use super::WorkloadSpec;
use crate::world::World;
use broker_core::broker::ClientId;
use std::sync::Arc;
use std::time::Duration;

/// Runs producer `client` for the whole fault phase.
pub async fn run_producer(world: Arc<World>, workload: Arc<WorkloadSpec>, client: ClientId) {
    let mut schedule = SendSchedule::new(
        client,
        workload.producers,
        workload.send_rate_per_s,
        workload.queues.len(),
        workload.warmup_us,
        workload.duration_us,
    );
    let connection = connect(world.clone(), workload, client).await;
    let mut in_flight = Vec::new();
    while let Some(send) = schedule.next(world.workload_stopped()) {
        madsim::time::sleep(Duration::from_micros(
            send.at_us.saturating_sub(world.now_us()),
        ))
        .await;
        let connection = connection.clone();
        in_flight.push(madsim::task::spawn(async move {
            let mut message = MessageSend::new(send.slot, send.msg_id);
            connection
                .drive(&mut message, World::workload_stopped)
                .await;
        }));
    }
    // A node whose main task returns exits, and its other tasks die with it: wait for every
    // send to be recorded first.
    for send in in_flight {
        send.await.expect("invariant: a send task does not panic");
    }
}
