//! Name servers (RocketMQ's NameServer) and the brokers' registrations with them.
//!
//! A name server is its own simulated host. Per broker group it holds which replica serves as
//! which broker id (0: the master, i.e. DLedger's leader; `replica index + 1`: a slave), as
//! RocketMQ's `RouteInfoManager` does:
//! - a registration of (group, id, replica) first removes the replica's entries under any other
//!   id ("switch slave to master"), then sets id → replica: the latest registration of an id
//!   wins, so a new leader's registration replaces the old one's;
//! - a replica not heard from for `broker_expiry` is dropped. RocketMQ scans for them every
//!   few seconds; here every message the name server handles sweeps first, which drops them
//!   by the time anyone could see the difference;
//! - a route request is answered with every group's entries.
//!
//! State is in memory only. Name servers are not fault targets (faults name broker nodes);
//! network-wide faults (latency, loss) reach their messages too.
//!
//! Brokers register at start, every `register_interval`, and at once when their role changes
//! between leader and not leader (RocketMQ: `registerBrokerAll` at startup, on a schedule, and
//! in `changeToMaster`/`changeToSlave`; DLedger's candidates are slaves). Registrations are
//! datagrams from the replica's own address, so a crashed, paused or isolated replica's
//! registrations stop.

use super::wire::{client_addr, name_server_addr, replica_addr, Wire};
use super::World;
use broker_core::raft::{Role, Status};
use broker_core::NodeId;
use futures::channel::mpsc;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// RocketMQ's `MixAll.MASTER_ID`: the broker id of a group's master.
pub const MASTER_BROKER_ID: u64 = 0;

/// The broker id a replica registers with: 0 while it leads, `replica index + 1` otherwise.
pub fn broker_id(is_leader: bool, replica_index: u32) -> u64 {
    if is_leader {
        MASTER_BROKER_ID
    } else {
        u64::from(replica_index) + 1
    }
}

/// One name server's routing table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteTable {
    /// Per group: broker id → replica.
    brokers: Vec<BTreeMap<u64, NodeId>>,
    /// Per replica: when it last registered (µs).
    last_heard_us: BTreeMap<NodeId, u64>,
}

impl RouteTable {
    pub fn new(groups: u32) -> RouteTable {
        RouteTable {
            brokers: vec![BTreeMap::new(); groups as usize],
            last_heard_us: BTreeMap::new(),
        }
    }

    /// A broker's registration: its other ids go, then `broker_id` → `node`.
    pub fn register(&mut self, now_us: u64, group: u32, broker_id: u64, node: NodeId) {
        let Some(table) = self.brokers.get_mut(group as usize) else {
            return; // no such group: a name server ignores what it cannot file
        };
        table.retain(|id, replica| !(*replica == node && *id != broker_id));
        table.insert(broker_id, node);
        self.last_heard_us.insert(node, now_us);
    }

    /// Drops every replica not heard from for `expiry_us` or longer.
    pub fn expire(&mut self, now_us: u64, expiry_us: u64) {
        let expired: Vec<NodeId> = self
            .last_heard_us
            .iter()
            .filter(|(_, heard_us)| now_us.saturating_sub(**heard_us) >= expiry_us)
            .map(|(node, _)| *node)
            .collect();
        for node in expired {
            self.last_heard_us.remove(&node);
            for table in &mut self.brokers {
                table.retain(|_, replica| *replica != node);
            }
        }
    }

    /// What a route request is answered with.
    pub fn route(&self) -> Vec<BTreeMap<u64, NodeId>> {
        self.brokers.clone()
    }
}

/// Per group, the master a route names (broker id 0), if any.
pub fn masters_of(brokers: &[BTreeMap<u64, NodeId>]) -> Vec<Option<NodeId>> {
    brokers
        .iter()
        .map(|table| table.get(&MASTER_BROKER_ID).copied())
        .collect()
}

/// Runs name server `index` for the whole run (it is never killed).
pub async fn run_name_server(world: Arc<World>, index: u32) {
    let (tx, mut messages) = mpsc::unbounded::<Wire>();
    let address = name_server_addr(index);
    world.bind(address, super::network::wire_inbox(tx));
    let mut table = RouteTable::new(world.spec.groups);
    while let Some(wire) = messages.next().await {
        let now_us = world.now_us();
        table.expire(now_us, world.spec.broker_expiry.as_us());
        match wire {
            Wire::Register {
                group,
                broker_id,
                node,
            } => {
                tracing::debug!(name_server = index, group, broker_id, %node, "register");
                table.register(now_us, group, broker_id, node);
            }
            Wire::RouteRequest { client, request_id } => {
                let brokers = table.route();
                tracing::debug!(name_server = index, client = client.0, ?brokers, "route");
                world.send(
                    address,
                    client_addr(client),
                    Wire::Route {
                        request_id,
                        brokers,
                    },
                );
            }
            // Nothing else is addressed to a name server.
            Wire::Peer { .. }
            | Wire::Request { .. }
            | Wire::Response { .. }
            | Wire::Route { .. } => {}
        }
    }
}

/// A running replica's registrations with the name servers.
pub struct Registration {
    world: Arc<World>,
    node: NodeId,
    /// The role the replica last registered with: leader (broker id 0) or not.
    registered_leader: Arc<AtomicBool>,
}

impl Registration {
    /// Registers the starting replica and schedules its periodic registrations; None when the
    /// world has no name servers (nothing is sent or scheduled then).
    pub fn start(world: &Arc<World>, node: NodeId, status: &Status) -> Option<Registration> {
        if world.spec.name_servers == 0 {
            return None;
        }
        let registration = Registration {
            world: world.clone(),
            node,
            registered_leader: Arc::new(AtomicBool::new(status.role == Role::Leader)),
        };
        registration.send();
        let periodic = Registration {
            world: world.clone(),
            node,
            registered_leader: registration.registered_leader.clone(),
        };
        madsim::task::spawn(async move {
            let interval = Duration::from_micros(periodic.world.spec.register_interval.as_us());
            loop {
                madsim::time::sleep(interval).await;
                periodic.send();
            }
        });
        Some(registration)
    }

    /// After a step: registers at once when the replica became leader or stopped leading.
    pub fn on_status(&self, status: &Status) {
        let is_leader = status.role == Role::Leader;
        if self.registered_leader.swap(is_leader, Ordering::Relaxed) != is_leader {
            self.send();
        }
    }

    /// One registration datagram to every name server.
    fn send(&self) {
        let spec = &self.world.spec;
        let is_leader = self.registered_leader.load(Ordering::Relaxed);
        let group = spec.group_of(self.node);
        let replica_index = self.node.0 - group * spec.replicas;
        for index in 0..spec.name_servers {
            self.world.send(
                replica_addr(self.node),
                name_server_addr(index),
                Wire::Register {
                    group,
                    broker_id: broker_id(is_leader, replica_index),
                    node: self.node,
                },
            );
        }
    }
}

/// Why a client fetched routes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefreshReason {
    /// When the client started.
    Start,
    /// Its poll timer (`route_refresh`).
    Periodic,
    /// It had to send to a group its route names no master for.
    NoMaster { group: u32 },
    /// A broker answered NOT_LEADER (definitely not done: it is not the group's master).
    Refused { group: u32, by: NodeId },
}

/// One route fetch of one client, as the run records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteFetch {
    pub client: u32,
    pub reason: RefreshReason,
    pub name_server: u32,
    pub asked_us: u64,
    /// When the answer came (None: none within the request timeout).
    pub answered_us: Option<u64>,
    /// Per group, the master the answer named (empty without an answer).
    pub masters: Vec<Option<NodeId>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    // RocketMQ's "switch slave to master": a replica registering as master loses its slave
    // entry, and a new master's registration replaces the old master's.
    #[test]
    fn latest_registration_of_an_id_wins() {
        let mut table = RouteTable::new(1);
        table.register(0, 0, broker_id(true, 0), NodeId(0));
        table.register(0, 0, broker_id(false, 1), NodeId(1));
        assert_eq!(masters_of(&table.route()), [Some(NodeId(0))]);
        table.register(5, 0, broker_id(true, 1), NodeId(1));
        let route = table.route();
        assert_eq!(masters_of(&route), [Some(NodeId(1))]);
        assert_eq!(route[0].len(), 1, "node 1's slave entry is gone: {route:?}");
        // The old master, stepping down, registers as a slave: the master entry is not its own.
        table.register(6, 0, broker_id(false, 0), NodeId(0));
        assert_eq!(masters_of(&table.route()), [Some(NodeId(1))]);
    }

    // A replica unheard for the expiry is dropped with all its entries; one heard since stays.
    #[test]
    fn unheard_brokers_expire() {
        let mut table = RouteTable::new(2);
        table.register(0, 0, 0, NodeId(0));
        table.register(50, 1, 0, NodeId(3));
        table.expire(119, 120);
        assert_eq!(
            masters_of(&table.route()),
            [Some(NodeId(0)), Some(NodeId(3))]
        );
        table.expire(120, 120);
        assert_eq!(masters_of(&table.route()), [None, Some(NodeId(3))]);
    }
}
