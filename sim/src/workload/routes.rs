//! With name servers: when a client fetches routes and whom it asks, as a pure machine. A fetch
//! at start, then one per period (fixed rate, from the client's own phase) and one per burst
//! of requests from sends and pulls (the shell drains the requests made during a fetch: one
//! fetch answers them all). A request with no answer within `ROUTE_REQUEST_TIMEOUT_US` is
//! given up, and the next name server is asked next time.

use super::client::ClientState;
use crate::world::mix_seed;
use crate::world::nameserver::{masters_of, RefreshReason, RouteFetch};
use broker_core::broker::ClientId;
use broker_core::NodeId;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// A route request with no answer by then is given up, and the next name server is asked
/// next time (RocketMQ's `getTopicRouteInfoFromNameServer` waits 3 s).
pub const ROUTE_REQUEST_TIMEOUT_US: u64 = 3_000_000;

/// Where in its `period_us` a client's route poll timer fires: its own phase, drawn from the
/// run seed and the client (clients start at different times), so the first periodic fetch
/// comes this long after the client starts.
pub fn route_poll_phase_us(seed: u64, client: ClientId, period_us: u64) -> u64 {
    let mut rng = ChaCha8Rng::seed_from_u64(mix_seed(seed, 0x524F_5554_4553, u64::from(client.0)));
    rng.gen_range(0..period_us.max(1))
}

/// One route request to send: to name server `name_server`, answered by `deadline_us` or
/// given up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteAsk {
    pub name_server: u32,
    pub deadline_us: u64,
}

/// One client's route refresh timing and name server choice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteRefresh {
    client: ClientId,
    name_servers: u32,
    period_us: u64,
    next_periodic_us: u64,
    /// The name server to ask next.
    name_server: u32,
    /// The fetch in flight: why, whom, since when.
    asking: Option<(RefreshReason, u32, u64)>,
}

impl RouteRefresh {
    /// Client `client` starting at `started_us`, polling every `route_refresh_us` from its
    /// `phase_us` (`route_poll_phase_us`), asking name server `client mod name_servers` first.
    pub fn new(
        client: ClientId,
        name_servers: u32,
        route_refresh_us: u64,
        started_us: u64,
        phase_us: u64,
    ) -> RouteRefresh {
        RouteRefresh {
            client,
            name_servers: name_servers.max(1),
            period_us: route_refresh_us.max(1),
            next_periodic_us: started_us + phase_us,
            name_server: client.0 % name_servers.max(1),
            asking: None,
        }
    }

    /// A fetch for `reason` begins.
    pub fn ask(&mut self, reason: RefreshReason, now_us: u64) -> RouteAsk {
        assert!(
            self.asking.is_none(),
            "invariant: one route fetch at a time"
        );
        self.asking = Some((reason, self.name_server, now_us));
        RouteAsk {
            name_server: self.name_server,
            deadline_us: now_us + ROUTE_REQUEST_TIMEOUT_US,
        }
    }

    /// The answer came: the client's route is the masters it names. Returns the fetch's record.
    pub fn answered(
        &mut self,
        brokers: &[BTreeMap<u64, NodeId>],
        now_us: u64,
        client: &mut ClientState,
    ) -> RouteFetch {
        let (reason, name_server, asked_us) = self.take_asking();
        let masters = masters_of(brokers);
        client.set_route(masters.clone());
        RouteFetch {
            client: self.client.0,
            reason,
            name_server,
            asked_us,
            answered_us: Some(now_us),
            masters,
        }
    }

    /// No answer in time: the next name server is asked next time. Returns the fetch's record.
    pub fn unanswered(&mut self) -> RouteFetch {
        let (reason, name_server, asked_us) = self.take_asking();
        self.name_server = (name_server + 1) % self.name_servers;
        RouteFetch {
            client: self.client.0,
            reason,
            name_server,
            asked_us,
            answered_us: None,
            masters: Vec::new(),
        }
    }

    fn take_asking(&mut self) -> (RefreshReason, u32, u64) {
        self.asking
            .take()
            .expect("invariant: a fetch ends only after it began")
    }

    /// How long until the next periodic fetch is due (0: it is).
    pub fn wait_us(&self, now_us: u64) -> u64 {
        self.next_periodic_us.saturating_sub(now_us)
    }

    /// The periodic timer fired: the next one is a whole period later (periods missed during
    /// a long fetch are skipped).
    pub fn timer_fired(&mut self, now_us: u64) -> RefreshReason {
        while self.next_periodic_us <= now_us {
            self.next_periodic_us += self.period_us;
        }
        RefreshReason::Periodic
    }
}
