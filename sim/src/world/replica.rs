//! The adapter between madsim and one broker replica: receive or sleep until the next timer,
//! `step`, carry out the effects. Kept thin: all decisions are the core's.

use super::alarm::Alarm;
use super::nameserver::Registration;
use super::wire::{client_addr, replica_addr, Wire};
use super::{AdminCommand, World};
use broker_core::broker::{BrokerEffect, BrokerInput, ReplicaNode};
use broker_core::{NodeId, SyncId};
use futures::channel::mpsc::{self, TryRecvError};
use futures::{FutureExt, StreamExt};
use std::collections::VecDeque;
use std::sync::Arc;

/// What wakes a replica up.
pub enum Event {
    Wire(Wire),
    /// The oldest pending fsync completed.
    Synced,
    Admin(AdminCommand),
    Tick,
}

/// An fsync the disk will complete: (completion time, sync id, last write it covers).
type PendingSync = (u64, SyncId, Option<u64>);

/// Runs one incarnation of replica `node` until the node is killed. Its fsyncs complete in
/// this task too (the disk serialises them, so they complete in the order they were asked
/// for), so a killed node's pending fsyncs die with it and a paused one's wait.
pub async fn run_replica(world: Arc<World>, node: NodeId) {
    let (events_tx, mut events) = mpsc::unbounded::<Event>();
    // Binds the replica's address: datagrams come in as events.
    let Some(mut broker) = world.start_replica(node, events_tx) else {
        return; // recovery failed: recorded as a finding; the replica stays down
    };
    // With name servers: register now, periodically, and on every role change.
    let registration = Registration::start(&world, node, &broker.status());
    let mut alarm = Alarm::new();
    let mut syncs: VecDeque<PendingSync> = VecDeque::new();
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
        let now_us = world.now_us();
        let sync_due = |syncs: &VecDeque<PendingSync>, now_us: u64| {
            syncs.front().is_some_and(|(at_us, _, _)| *at_us <= now_us)
        };
        // A due timer fires even when messages keep arriving. A core whose deadline did not
        // move after a Tick would spin: then time must pass before the next one.
        let event = if !started || (wait_us == 0 && !just_ticked) {
            started = true;
            Event::Tick
        } else if sync_due(&syncs, now_us) {
            Event::Synced
        } else {
            let wait_us = if just_ticked {
                wait_us.max(1_000)
            } else {
                wait_us
            };
            // An event already queued needs no timer.
            match events.try_recv() {
                Ok(event) => event,
                Err(TryRecvError::Closed) => return,
                Err(TryRecvError::Empty) => {
                    let tick_at_us = now_us + wait_us;
                    let wake_at_us = syncs
                        .front()
                        .map_or(tick_at_us, |(at_us, _, _)| tick_at_us.min(*at_us));
                    tracing::trace!(%node, now_ms, wait_us, "wait");
                    futures::select_biased! {
                        event = events.next() => match event {
                            Some(event) => event,
                            None => return,
                        },
                        () = alarm.until(wake_at_us).fuse() => {
                            if sync_due(&syncs, world.now_us()) {
                                Event::Synced
                            } else {
                                Event::Tick
                            }
                        },
                    }
                }
            }
        };
        just_ticked = matches!(event, Event::Tick);
        let input = match event {
            Event::Tick | Event::Admin(AdminCommand::Wake) => BrokerInput::Tick,
            Event::Synced => {
                let (_, sync_id, upto) = syncs
                    .pop_front()
                    .expect("invariant: Synced is taken only when an fsync is due");
                if let Some(upto) = upto {
                    world.complete_sync(node, upto);
                }
                BrokerInput::Persisted { sync_id }
            }
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
        if input != BrokerInput::Tick
            && now_ms >= broker.next_deadline_ms()
            && step_and_carry_out(
                &world,
                node,
                broker.as_mut(),
                now_ms,
                BrokerInput::Tick,
                &mut syncs,
            )
        {
            return; // a trigger crashed the node
        }
        if step_and_carry_out(&world, node, broker.as_mut(), now_ms, input, &mut syncs) {
            return; // a trigger crashed the node
        }
        if let Some(registration) = &registration {
            registration.on_status(&broker.status());
        }
    }
}

/// Steps the replica and carries out its effects: datagrams out, disk writes recorded, fsyncs
/// scheduled (their completion comes back as an event); then an armed trigger whose event this
/// step was fires (`triggers`). True when the trigger crashed the node.
fn step_and_carry_out(
    world: &Arc<World>,
    node: NodeId,
    broker: &mut dyn ReplicaNode,
    now_ms: u64,
    input: BrokerInput,
    syncs: &mut VecDeque<PendingSync>,
) -> bool {
    let pull_request_id = super::triggers::pull_request_id(&input);
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
    for (sync_id, upto, complete_at_us) in world.after_step(node, &*broker, &effects) {
        assert!(
            syncs
                .back()
                .is_none_or(|(at_us, _, _)| *at_us <= complete_at_us),
            "invariant: the disk completes fsyncs in the order they were asked for"
        );
        syncs.push_back((complete_at_us, sync_id, upto));
    }
    let fired = world.check_triggers(node, pull_request_id, &*broker, &effects);
    let from = replica_addr(node);
    for effect in effects {
        match effect {
            BrokerEffect::Send { to, msg } => {
                world.send(from, replica_addr(to), Wire::Peer { from: node, msg });
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
                world.send(from, client_addr(client), wire);
            }
            BrokerEffect::Persist(_) | BrokerEffect::Sync { .. } => {}
        }
    }
    fired.is_some_and(|fired| world.fire_trigger(fired))
}
