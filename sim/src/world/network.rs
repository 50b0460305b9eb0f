//! The world's network, in one place: the datagram send path, the receive tasks, and the
//! network faults (which links are cut, per-link extra latency and loss, duplication).
//!
//! Cuts (isolated nodes, clogged directed links) and whole-network latency and loss go through
//! madsim's `NetSim`; what it lacks (per-link latency and loss, duplication) is applied here,
//! in the send path of the world's own nodes ([`LinkFaults::plan`]). Random choices come from
//! madsim's seeded RNG, and only while a setting is active, so runs without these faults draw
//! nothing extra and keep their traces. The state lives in the `World` (one per seed).

use super::wire::{Wire, TAG};
use futures::channel::mpsc;
use madsim::net::Endpoint;
use madsim::rand::Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// One direction of one link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkFault {
    /// Extra one-way delay range in µs, on top of the network's.
    pub latency_us: Option<(u64, u64)>,
    pub loss_ppm: u32,
}

/// The faults madsim does not have: per-link latency and loss, and duplication.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkFaults {
    /// Share of replica-to-replica datagrams delivered twice.
    pub duplicate_ppm: u32,
    /// Per directed link (source IP, destination IP).
    pub links: BTreeMap<(IpAddr, IpAddr), LinkFault>,
}

/// What to do with one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// 0 (dropped), 1, or 2 (duplicated).
    pub copies: u8,
    /// Extra delay before the send, in µs.
    pub delay_us: u64,
}

impl Delivery {
    /// One copy, no extra delay: a datagram no fault applies to.
    pub const PLAIN: Delivery = Delivery {
        copies: 1,
        delay_us: 0,
    };
}

const PPM_ONE: u32 = 1_000_000;

impl LinkFaults {
    pub fn set_duplicate_ppm(&mut self, ppm: u32) {
        self.duplicate_ppm = ppm;
    }

    pub fn set_link_latency(&mut self, from: IpAddr, to: IpAddr, min_us: u64, max_us: u64) {
        self.links.entry((from, to)).or_default().latency_us = Some((min_us, max_us.max(min_us)));
    }

    pub fn set_link_loss(&mut self, from: IpAddr, to: IpAddr, ppm: u32) {
        self.links.entry((from, to)).or_default().loss_ppm = ppm;
    }

    /// `Heal`: every per-link setting goes; duplication stays.
    pub fn clear_links(&mut self) {
        self.links.clear();
    }

    /// Decides one datagram's fate. `peer` is replica-to-replica traffic (the only kind that
    /// may be duplicated).
    pub fn plan(&self, from: IpAddr, to: IpAddr, peer: bool) -> Delivery {
        let mut delivery = Delivery::PLAIN;
        if let Some(link) = self.links.get(&(from, to)) {
            if link.loss_ppm > 0 && madsim::rand::thread_rng().gen_range(0..PPM_ONE) < link.loss_ppm
            {
                delivery.copies = 0;
                return delivery;
            }
            if let Some((min_us, max_us)) = link.latency_us {
                delivery.delay_us = madsim::rand::thread_rng().gen_range(min_us..=max_us);
            }
        }
        if peer
            && self.duplicate_ppm > 0
            && madsim::rand::thread_rng().gen_range(0..PPM_ONE) < self.duplicate_ppm
        {
            delivery.copies = 2;
        }
        delivery
    }
}

/// Every network fault in force: the cuts (by replica number) and the link faults.
#[derive(Clone, Debug, Default)]
pub struct NetworkState {
    /// Replicas cut from everyone (`NetSim::clog_node`).
    pub isolated: BTreeSet<u32>,
    /// Directed links (from, to) between replicas that drop every message.
    pub clogged_links: BTreeSet<(u32, u32)>,
    pub link_faults: LinkFaults,
}

impl NetworkState {
    /// Messages from replica `a` reach replica `b` (no cut; link loss does not count).
    pub fn link_works(&self, a: u32, b: u32) -> bool {
        a == b
            || (!self.isolated.contains(&a)
                && !self.isolated.contains(&b)
                && !self.clogged_links.contains(&(a, b)))
    }
}

/// Receive tasks per endpoint. madsim makes every receive sleep (at least 1 ms of simulated
/// time per message and task), so one task caps a node at ~1000 messages per second.
pub const RECEIVE_TASKS: usize = 8;

/// Receives datagrams on `RECEIVE_TASKS` tasks and forwards them to the node's event queue.
pub fn spawn_receivers<E: Send + 'static>(
    endpoint: Arc<Endpoint>,
    tx: mpsc::UnboundedSender<E>,
    wrap: fn(Wire) -> E,
) {
    for _ in 0..RECEIVE_TASKS {
        let endpoint = endpoint.clone();
        let tx = tx.clone();
        madsim::task::spawn(async move {
            while let Ok((payload, _from)) = endpoint.recv_from_raw(TAG).await {
                let wire = *payload
                    .downcast::<Wire>()
                    .expect("invariant: every datagram in the world is a Wire");
                if tx.unbounded_send(wrap(wire)).is_err() {
                    break;
                }
            }
        });
    }
}

/// Sends one datagram without waiting and without link faults (a client's: the per-link
/// faults and duplication apply between replicas only).
pub fn send_datagram(endpoint: &Arc<Endpoint>, to: SocketAddr, wire: Wire) {
    send_planned(endpoint, to, wire, Delivery::PLAIN);
}

/// Sends one datagram as `delivery` says, without waiting: madsim makes each send sleep at
/// least 1 ms of simulated time, which must not stall the node's loop. Delivery is best effort
/// anyway. Each copy is its own send, so it gets its own madsim latency.
pub fn send_planned(endpoint: &Arc<Endpoint>, to: SocketAddr, wire: Wire, delivery: Delivery) {
    for _ in 0..delivery.copies {
        let endpoint = endpoint.clone();
        let wire = wire.clone();
        madsim::task::spawn(async move {
            if delivery.delay_us > 0 {
                madsim::time::sleep(Duration::from_micros(delivery.delay_us)).await;
            }
            let _ = endpoint.send_to_raw(to, TAG, Box::new(wire)).await;
        });
    }
}
