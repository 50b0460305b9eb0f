//! Network faults madsim does not have, applied in our own send path
//! (`world::replica::send_datagram`): per-link extra latency and loss, and duplication.
//!
//! The settings live in a thread-local: each seed runs its simulation on its own OS thread, and
//! the supervisor calls [`reset`] when a run starts. Random choices come from madsim's seeded
//! RNG, and only while a setting is active, so runs without these faults draw nothing extra
//! and keep their traces.

use madsim::rand::Rng;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// One direction of one link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkFault {
    /// Extra one-way delay range in µs, on top of the network's.
    pub latency_us: Option<(u64, u64)>,
    pub loss_ppm: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetFaults {
    /// Share of replica-to-replica datagrams delivered twice.
    pub duplicate_ppm: u32,
    /// Per directed link (source IP, destination IP).
    pub links: BTreeMap<(IpAddr, IpAddr), LinkFault>,
}

thread_local! {
    static NET_FAULTS: RefCell<NetFaults> = RefCell::new(NetFaults::default());
}

/// What to do with one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// 0 (dropped), 1, or 2 (duplicated).
    pub copies: u8,
    /// Extra delay before the send, in µs.
    pub delay_us: u64,
}

const PPM_ONE: u32 = 1_000_000;

/// No faults: the state at the start of every run and after the heal.
pub fn reset() {
    NET_FAULTS.with(|faults| *faults.borrow_mut() = NetFaults::default());
}

/// A copy of the current settings (for tests and the settle check).
pub fn current() -> NetFaults {
    NET_FAULTS.with(|faults| faults.borrow().clone())
}

pub fn set_duplicate_ppm(ppm: u32) {
    NET_FAULTS.with(|faults| faults.borrow_mut().duplicate_ppm = ppm);
}

pub fn set_link_latency(from: IpAddr, to: IpAddr, min_us: u64, max_us: u64) {
    NET_FAULTS.with(|faults| {
        faults
            .borrow_mut()
            .links
            .entry((from, to))
            .or_default()
            .latency_us = Some((min_us, max_us.max(min_us)));
    });
}

pub fn set_link_loss(from: IpAddr, to: IpAddr, ppm: u32) {
    NET_FAULTS.with(|faults| {
        faults
            .borrow_mut()
            .links
            .entry((from, to))
            .or_default()
            .loss_ppm = ppm;
    });
}

/// `Heal`: every per-link setting goes; duplication stays.
pub fn clear_links() {
    NET_FAULTS.with(|faults| faults.borrow_mut().links.clear());
}

/// Decides one datagram's fate. `peer` is replica-to-replica traffic (the only kind that may
/// be duplicated).
pub fn plan(from: IpAddr, to: IpAddr, peer: bool) -> Delivery {
    NET_FAULTS.with(|faults| {
        let faults = faults.borrow();
        let mut delivery = Delivery {
            copies: 1,
            delay_us: 0,
        };
        if let Some(link) = faults.links.get(&(from, to)) {
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
            && faults.duplicate_ppm > 0
            && madsim::rand::thread_rng().gen_range(0..PPM_ONE) < faults.duplicate_ppm
        {
            delivery.copies = 2;
        }
        delivery
    })
}
