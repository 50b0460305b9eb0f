//! The world's network, in one place: the send path (cuts, loss, latency, per-link faults,
//! duplication: [`NetworkState::route`]), and the post ([`Post`]): one queue per world of
//! every datagram in flight, drained by one task (`World::run_post`) that hands each straight
//! to its addressee's inbox at its arrival time.
//!
//! madsim stays the runtime (time, tasks, RNG, node kill and restart) but not the network:
//! its datagram path spawns a task per send and per receive, each sleeping at least 1 ms, and
//! was most of a seed's cost. Semantics kept from it: a cut is checked when a datagram is sent
//! (one already in flight arrives); a datagram goes to the incarnation of its addressee that
//! was bound when it was sent (a node killed meanwhile never gets it, even once restarted);
//! an unbound address (a node that is down) drops it. Random choices come from madsim's
//! seeded RNG, drawn in the sender's step, so a run's draws depend on its seed alone.

use super::wire::Wire;
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

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
    /// may be duplicated). Draws only while a fault applies to the link.
    pub fn plan(&self, from: IpAddr, to: IpAddr, peer: bool, rng: &mut impl Rng) -> Delivery {
        let mut delivery = Delivery::PLAIN;
        if let Some(link) = self.links.get(&(from, to)) {
            if link.loss_ppm > 0 && rng.gen_range(0..PPM_ONE) < link.loss_ppm {
                delivery.copies = 0;
                return delivery;
            }
            if let Some((min_us, max_us)) = link.latency_us {
                delivery.delay_us = rng.gen_range(min_us..=max_us);
            }
        }
        if peer && self.duplicate_ppm > 0 && rng.gen_range(0..PPM_ONE) < self.duplicate_ppm {
            delivery.copies = 2;
        }
        delivery
    }
}

/// The network a scenario gives every datagram: one-way latency drawn uniformly from
/// `latency_us_min..=latency_us_max`, and a share lost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BaseNetwork {
    pub latency_us_min: u64,
    pub latency_us_max: u64,
    pub loss_ppm: u32,
}

impl BaseNetwork {
    /// The network a world's spec starts with.
    pub fn of(spec: &super::WorldSpec) -> BaseNetwork {
        BaseNetwork {
            latency_us_min: spec.latency_min.as_us(),
            latency_us_max: spec.latency_max.as_us().max(spec.latency_min.as_us()),
            loss_ppm: spec.loss_ppm,
        }
    }
}

/// The network in force: its latency and loss, the cuts (by replica number) and the link
/// faults.
#[derive(Clone, Debug, Default)]
pub struct NetworkState {
    pub base: BaseNetwork,
    /// Replicas cut from everyone (`NetSim::clog_node`).
    pub isolated: BTreeSet<u32>,
    /// Directed links (from, to) between replicas that drop every message.
    pub clogged_links: BTreeSet<(u32, u32)>,
    /// Replicas that no client reaches, nor they it (`DeposeLeader`); name servers do.
    pub cut_from_clients: BTreeSet<u32>,
    pub link_faults: LinkFaults,
}

impl NetworkState {
    /// No cut and no link fault.
    pub fn new(base: BaseNetwork) -> NetworkState {
        NetworkState {
            base,
            ..NetworkState::default()
        }
    }

    /// Messages from replica `a` reach replica `b` (no cut; link loss does not count).
    pub fn link_works(&self, a: u32, b: u32) -> bool {
        a == b
            || (!self.isolated.contains(&a)
                && !self.isolated.contains(&b)
                && !self.clogged_links.contains(&(a, b)))
    }

    /// Whether a datagram from `from` to `to` gets through the cuts: an isolated replica
    /// sends and receives nothing (clients and name servers included); a clogged link drops
    /// what goes from one replica to the other.
    pub fn passes_cuts(&self, from: SocketAddr, to: SocketAddr) -> bool {
        let (a, b) = (
            super::wire::replica_of(from).map(|n| n.0),
            super::wire::replica_of(to).map(|n| n.0),
        );
        let isolated = |n: Option<u32>| n.is_some_and(|n| self.isolated.contains(&n));
        if isolated(a) || isolated(b) {
            return false;
        }
        let cut_from_clients = |replica: u32, other: SocketAddr| {
            self.cut_from_clients.contains(&replica) && super::wire::is_client(other)
        };
        match (a, b) {
            (Some(a), Some(b)) => !self.clogged_links.contains(&(a, b)),
            (Some(a), None) => !cut_from_clients(a, to),
            (None, Some(b)) => !cut_from_clients(b, from),
            (None, None) => true,
        }
    }

    /// One datagram's copies as delays from now in µs (empty: it is dropped): the cuts, then
    /// the base loss and the link faults, then each copy's own base latency.
    pub fn route(
        &self,
        from: SocketAddr,
        to: SocketAddr,
        peer: bool,
        rng: &mut impl Rng,
    ) -> Vec<u64> {
        if !self.passes_cuts(from, to) {
            return Vec::new();
        }
        let base = &self.base;
        if base.loss_ppm > 0 && rng.gen_range(0..PPM_ONE) < base.loss_ppm {
            return Vec::new();
        }
        let delivery = self.link_faults.plan(from.ip(), to.ip(), peer, rng);
        (0..delivery.copies)
            .map(|_| delivery.delay_us + rng.gen_range(base.latency_us_min..=base.latency_us_max))
            .collect()
    }
}

/// Where a bound address's datagrams go: false once its reader is gone.
pub type Inbox = Arc<dyn Fn(Wire) -> bool + Send + Sync>;

/// An inbox that forwards datagrams to a channel.
pub fn wire_inbox(tx: futures::channel::mpsc::UnboundedSender<Wire>) -> Inbox {
    Arc::new(move |wire| tx.unbounded_send(wire).is_ok())
}

struct Mailbox {
    /// Bumped by every bind of the address, so a letter reaches only the incarnation it was
    /// sent to.
    incarnation: u64,
    inbox: Inbox,
}

struct Parcel {
    to: SocketAddr,
    incarnation: u64,
    wire: Wire,
}

/// Counters of the post, for the run summary and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PostStats {
    pub posted: u64,
    pub delivered: u64,
    /// Posted to an address nobody was bound at, or whose incarnation was gone on arrival.
    pub undeliverable: u64,
}

/// Everything due later, in (due time, posting order) order, and who is bound where.
#[derive(Default)]
pub struct Post {
    queue: BTreeMap<(u64, u64), Parcel>,
    posted: u64,
    mailboxes: BTreeMap<SocketAddr, Mailbox>,
    next_incarnation: u64,
    /// When the post's task wakes next (None: it waits for the first parcel).
    armed_us: Option<u64>,
    stats: PostStats,
}

impl Post {
    /// `addr` receives from now on into `inbox`; letters posted to an earlier binding of it
    /// are not delivered.
    pub fn bind(&mut self, addr: SocketAddr, inbox: Inbox) {
        self.next_incarnation += 1;
        let mailbox = Mailbox {
            incarnation: self.next_incarnation,
            inbox,
        };
        self.mailboxes.insert(addr, mailbox);
    }

    /// `addr`'s node went down: nothing more reaches it, in flight or not.
    pub fn unbind(&mut self, addr: SocketAddr) {
        self.mailboxes.remove(&addr);
    }

    /// Posts `wire` to arrive at `to` at `due_us`; returns whether the post's task must wake
    /// earlier than it planned to. Posting to an unbound address drops the datagram.
    pub fn post_datagram(&mut self, to: SocketAddr, wire: Wire, due_us: u64) -> bool {
        let Some(mailbox) = self.mailboxes.get(&to) else {
            self.stats.undeliverable += 1;
            return false;
        };
        let parcel = Parcel {
            to,
            incarnation: mailbox.incarnation,
            wire,
        };
        self.push(due_us, parcel)
    }

    fn push(&mut self, due_us: u64, parcel: Parcel) -> bool {
        self.queue.insert((due_us, self.posted), parcel);
        self.posted += 1;
        self.stats.posted += 1;
        let wake = self.armed_us.is_none_or(|armed_us| due_us < armed_us);
        if wake {
            self.armed_us = Some(due_us);
        }
        wake
    }

    /// Moves every datagram due by `now_us` into `due`, oldest first, with the inbox it goes
    /// to (those whose addressee's incarnation is gone are dropped); returns when the next
    /// one is due.
    pub fn take_due(&mut self, now_us: u64, due: &mut Vec<(Inbox, Wire)>) -> Option<u64> {
        while let Some(entry) = self.queue.first_entry() {
            if entry.key().0 > now_us {
                break;
            }
            let parcel = entry.remove();
            let inbox = self
                .mailboxes
                .get(&parcel.to)
                .filter(|mailbox| mailbox.incarnation == parcel.incarnation)
                .map(|mailbox| mailbox.inbox.clone());
            let Some(inbox) = inbox else {
                self.stats.undeliverable += 1;
                continue;
            };
            self.stats.delivered += 1;
            due.push((inbox, parcel.wire));
        }
        self.armed_us = self.queue.first_key_value().map(|((due_us, _), _)| *due_us);
        self.armed_us
    }

    pub fn stats(&self) -> PostStats {
        self.stats
    }

    /// Drops everything queued and every binding (the end of a seed: inboxes hold tasks).
    pub fn clear(&mut self) {
        self.queue.clear();
        self.mailboxes.clear();
        self.armed_us = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::wire::{client_addr, replica_addr};
    use broker_core::broker::{ClientId, ClientResponse};
    use broker_core::NodeId;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use std::sync::Mutex;

    fn response(request_id: u64) -> Wire {
        Wire::Response {
            request_id,
            response: ClientResponse::Busy,
        }
    }

    fn request_id(wire: &Wire) -> u64 {
        match wire {
            Wire::Response { request_id, .. } => *request_id,
            other => panic!("not a response: {other:?}"),
        }
    }

    /// An inbox that collects the request ids it receives.
    fn collecting() -> (Inbox, Arc<Mutex<Vec<u64>>>) {
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        let inbox: Inbox = Arc::new(move |wire| {
            sink.lock().expect("test lock").push(request_id(&wire));
            true
        });
        (inbox, got)
    }

    fn deliver(post: &mut Post, now_us: u64) -> Option<u64> {
        let mut due = Vec::new();
        let next = post.take_due(now_us, &mut due);
        for (inbox, wire) in due {
            inbox(wire);
        }
        next
    }

    // Datagrams arrive in due-time order, ties in posting order, none before its time; the
    // post asks to be woken only for a parcel earlier than the one it waits for.
    #[test]
    fn delivers_in_due_order_and_wakes_only_for_earlier_parcels() {
        let mut post = Post::default();
        let to = client_addr(ClientId(0));
        let (inbox, got) = collecting();
        post.bind(to, inbox);
        assert!(
            post.post_datagram(to, response(1), 5_000),
            "first parcel arms"
        );
        assert!(
            !post.post_datagram(to, response(2), 7_000),
            "later: no wake"
        );
        assert!(
            !post.post_datagram(to, response(3), 5_000),
            "same time: no wake"
        );
        assert!(post.post_datagram(to, response(4), 2_000), "earlier: wake");
        assert_eq!(deliver(&mut post, 1_999), Some(2_000));
        assert!(got.lock().expect("test lock").is_empty());
        assert_eq!(deliver(&mut post, 5_000), Some(7_000));
        assert_eq!(*got.lock().expect("test lock"), vec![4, 1, 3]);
        assert_eq!(deliver(&mut post, 9_000), None);
        assert_eq!(*got.lock().expect("test lock"), vec![4, 1, 3, 2]);
        let stats = post.stats();
        assert_eq!(
            (stats.posted, stats.delivered, stats.undeliverable),
            (4, 4, 0)
        );
    }

    // A datagram reaches the incarnation bound when it was sent: one in flight to a node
    // that is killed (unbound) or restarted (bound again) is lost, as on a real network.
    #[test]
    fn a_datagram_reaches_only_the_incarnation_it_was_sent_to() {
        let mut post = Post::default();
        let to = replica_addr(NodeId(1));
        assert!(
            !post.post_datagram(to, response(1), 1_000),
            "nobody bound: dropped"
        );
        let (old, got_old) = collecting();
        post.bind(to, old);
        post.post_datagram(to, response(2), 1_000);
        post.unbind(to);
        post.post_datagram(to, response(3), 1_000);
        let (new, got_new) = collecting();
        post.bind(to, new);
        post.post_datagram(to, response(4), 1_000);
        deliver(&mut post, 1_000);
        assert!(got_old.lock().expect("test lock").is_empty());
        assert_eq!(*got_new.lock().expect("test lock"), vec![4]);
        assert_eq!(post.stats().undeliverable, 3);
    }

    // An isolated replica sends and receives nothing, clients included; a clogged link cuts
    // one direction between two replicas only; base loss drops its share.
    #[test]
    fn cuts_and_loss_decide_what_is_routed() {
        let base = BaseNetwork {
            latency_us_min: 1_000,
            latency_us_max: 5_000,
            loss_ppm: 0,
        };
        let mut network = NetworkState::new(base);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (r0, r1, c0) = (
            replica_addr(NodeId(0)),
            replica_addr(NodeId(1)),
            client_addr(ClientId(0)),
        );
        let delays = network.route(r0, r1, true, &mut rng);
        assert_eq!(delays.len(), 1);
        assert!((1_000..=5_000).contains(&delays[0]), "{delays:?}");
        network.clogged_links.insert((0, 1));
        assert!(network.route(r0, r1, true, &mut rng).is_empty());
        assert_eq!(network.route(r1, r0, true, &mut rng).len(), 1);
        assert_eq!(network.route(c0, r0, false, &mut rng).len(), 1);
        network.isolated.insert(0);
        assert!(network.route(c0, r0, false, &mut rng).is_empty());
        assert!(network.route(r0, c0, false, &mut rng).is_empty());
        network = NetworkState::new(BaseNetwork {
            loss_ppm: 500_000,
            ..base
        });
        let arrived: usize = (0..1_000)
            .map(|_| network.route(c0, r1, false, &mut rng).len())
            .sum();
        assert!((400..600).contains(&arrived), "about half lost: {arrived}");
    }
}
