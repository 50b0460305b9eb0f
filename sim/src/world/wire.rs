//! What travels between simulated nodes: madsim datagrams carrying these values unserialised.

use broker_core::broker::{ClientId, ClientRequest, ClientResponse};
use broker_core::proto::PeerMessage;
use broker_core::NodeId;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The datagram tag every node sends and receives on.
pub const TAG: u64 = 1;
const PORT: u16 = 9876;

#[derive(Clone, Debug)]
pub enum Wire {
    Peer {
        from: NodeId,
        msg: PeerMessage,
    },
    Request {
        client: ClientId,
        request_id: u64,
        request: ClientRequest,
    },
    Response {
        request_id: u64,
        response: ClientResponse,
    },
    /// Broker to name server (RocketMQ REGISTER_BROKER): replica `node` of `group` serves as
    /// `broker_id` (0: the master, DLedger's leader; `replica index + 1`: a slave).
    Register {
        group: u32,
        broker_id: u64,
        node: NodeId,
    },
    /// Client to name server (GET_ROUTEINFO_BY_TOPIC).
    RouteRequest {
        client: ClientId,
        request_id: u64,
    },
    /// Name server to client: per group, broker id to replica, brokers heard from lately only.
    Route {
        request_id: u64,
        brokers: Vec<BTreeMap<u64, NodeId>>,
    },
}

/// Replica `n` (numbered across groups: node `g × replicas + r`) lives at 10.0.0.(n+1).
pub fn replica_addr(node: NodeId) -> SocketAddr {
    let n = u8::try_from(node.0 + 1).expect("invariant: validated scenarios have < 255 replicas");
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)), PORT)
}

/// The replica at `addr` (`replica_addr`'s inverse); None for clients and name servers.
pub fn replica_of(addr: SocketAddr) -> Option<NodeId> {
    match addr.ip() {
        IpAddr::V4(ip) => match ip.octets() {
            [10, 0, 0, last] if last > 0 => Some(NodeId(u32::from(last) - 1)),
            _ => None,
        },
        IpAddr::V6(_) => None,
    }
}

/// Name server `i` lives at 10.0.2.(i+1).
pub fn name_server_addr(index: u32) -> SocketAddr {
    let i =
        u8::try_from(index + 1).expect("invariant: validated scenarios have < 255 name servers");
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 2, i)), PORT)
}

/// Whether `addr` is a client's (`client_addr`).
pub fn is_client(addr: SocketAddr) -> bool {
    matches!(addr.ip(), IpAddr::V4(ip) if matches!(ip.octets(), [10, 0, 1, last] if last > 0))
}

/// Client `c` lives at 10.0.1.(c+1).
pub fn client_addr(client: ClientId) -> SocketAddr {
    let c = u8::try_from(client.0 + 1).expect("invariant: validated scenarios have < 255 clients");
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 1, c)), PORT)
}
