//! The adapter between madsim and one broker replica: receive or sleep until the next timer,
//! `step`, carry out the effects. Kept thin: all decisions are the core's.

use super::nameserver::Registration;
pub use super::network::{send_datagram, spawn_receivers, RECEIVE_TASKS};
use super::wire::{client_addr, replica_addr, Wire};
use super::{AdminCommand, World};
use broker_core::broker::{BrokerEffect, BrokerInput, ReplicaNode};
use broker_core::{NodeId, SyncId};
use futures::channel::mpsc;
use futures::StreamExt;
use madsim::net::Endpoint;
use std::sync::Arc;
use std::time::Duration;

/// What wakes a replica up.
pub enum Event {
    Wire(Wire),
    Persisted(SyncId),
    Admin(AdminCommand),
    Tick,
}

/// Runs one incarnation of replica `node` until the node is killed.
pub async fn run_replica(world: Arc<World>, node: NodeId) {
    let endpoint = Arc::new(
        Endpoint::bind(replica_addr(node))
            .await
            .expect("invariant: a killed node's port is free again on restart"),
    );
    let (events_tx, mut events) = mpsc::unbounded::<Event>();
    spawn_receivers(endpoint.clone(), events_tx.clone(), Event::Wire);

    let Some(mut broker) = world.start_replica(node, events_tx.clone()) else {
        return; // recovery failed: recorded as a finding; the replica stays down
    };
    // With name servers: register now, periodically, and on every role change.
    let registration = Registration::start(&world, &endpoint, node, &broker.status());
    // The core learns the time it starts at from its first step, a Tick right away; that
    // step also carries out what recovery asked for (cutting a torn tail).
    let mut last_local_ms = 0u64;
    let mut just_ticked = false;
    let mut started = false;
    loop {
        let (now_ms, wait_us) = {
            let now_ms = world.local_ms(node).max(last_local_ms);
            let deadline_ms = broker.next_deadline_ms();
            let local_wait_us = deadline_ms.saturating_sub(now_ms) * 1_000;
            (now_ms, world.global_delay_us(node, local_wait_us))
        };
        last_local_ms = now_ms;
        // A due timer fires even when messages keep arriving. A core whose deadline did not
        // move after a Tick would spin: then time must pass before the next one.
        let event = if !started || (wait_us == 0 && !just_ticked) {
            started = true;
            Event::Tick
        } else {
            let wait_us = if just_ticked {
                wait_us.max(1_000)
            } else {
                wait_us
            };
            tracing::trace!(%node, now_ms, wait_us, "wait");
            match madsim::time::timeout(Duration::from_micros(wait_us), events.next()).await {
                Ok(Some(event)) => event,
                Ok(None) => return,
                Err(_elapsed) => Event::Tick,
            }
        };
        just_ticked = matches!(event, Event::Tick);
        let input = match event {
            Event::Tick | Event::Admin(AdminCommand::Wake) => BrokerInput::Tick,
            Event::Persisted(sync_id) => BrokerInput::Persisted { sync_id },
            Event::Admin(AdminCommand::TransferLeadership { to }) => {
                BrokerInput::TransferLeadership { to }
            }
            Event::Wire(Wire::Peer { from, msg }) => BrokerInput::Peer { from, msg },
            Event::Wire(Wire::Request {
                client,
                request_id,
                request,
            }) => BrokerInput::Client {
                client,
                request_id,
                request,
            },
            // Addressed to clients and name servers, not replicas.
            Event::Wire(
                Wire::Response { .. }
                | Wire::Register { .. }
                | Wire::RouteRequest { .. }
                | Wire::Route { .. },
            ) => continue,
        };
        let now_ms = world.local_ms(node).max(last_local_ms);
        last_local_ms = now_ms;
        // Timers due by now fire before the event is handled: a message must not be stepped
        // with a clock that has already passed a deadline (after a clock jump, for instance,
        // it would re-arm the overdue timer unseen).
        if input != BrokerInput::Tick && now_ms >= broker.next_deadline_ms() {
            step_and_carry_out(
                &world,
                node,
                &endpoint,
                &events_tx,
                broker.as_mut(),
                now_ms,
                BrokerInput::Tick,
            );
        }
        step_and_carry_out(
            &world,
            node,
            &endpoint,
            &events_tx,
            broker.as_mut(),
            now_ms,
            input,
        );
        if let Some(registration) = &registration {
            registration.on_status(&broker.status());
        }
    }
}

/// Steps the replica and carries out its effects: datagrams out, disk writes recorded, fsyncs
/// scheduled (their completion comes back as an event).
fn step_and_carry_out(
    world: &Arc<World>,
    node: NodeId,
    endpoint: &Arc<Endpoint>,
    events_tx: &mpsc::UnboundedSender<Event>,
    broker: &mut dyn ReplicaNode,
    now_ms: u64,
    input: BrokerInput,
) {
    if tracing::enabled!(tracing::Level::DEBUG) {
        tracing::debug!(%node, local_ms = now_ms, "step {}", super::summary::input(&input));
    }
    broker.step(now_ms, input);
    let effects = broker.take_effects();
    let broken = broker.take_safety_violations();
    if !broken.is_empty() {
        world.record_node_violations(node, broken);
    }
    if tracing::enabled!(tracing::Level::DEBUG) {
        for effect in &effects {
            tracing::debug!(%node, "  {}", super::summary::effect(effect));
        }
    }
    let syncs = world.after_step(node, &*broker, &effects);
    for effect in effects {
        match effect {
            BrokerEffect::Send { to, msg } => {
                world.send(endpoint, replica_addr(to), Wire::Peer { from: node, msg });
            }
            BrokerEffect::Respond {
                client,
                request_id,
                response,
            } => {
                let wire = Wire::Response {
                    request_id,
                    response,
                };
                world.send(endpoint, client_addr(client), wire);
            }
            BrokerEffect::Persist(_) | BrokerEffect::Sync { .. } => {}
        }
    }
    for (sync_id, upto, complete_at_us) in syncs {
        let world = world.clone();
        let tx = events_tx.clone();
        madsim::task::spawn(async move {
            let wait = complete_at_us.saturating_sub(world.now_us());
            madsim::time::sleep(Duration::from_micros(wait)).await;
            if let Some(upto) = upto {
                world.complete_sync(node, upto);
            }
            let _ = tx.unbounded_send(Event::Persisted(sync_id));
        });
    }
}
