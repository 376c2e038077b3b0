//! The network edge: the listener, HTTP routing, the WebSocket upgrade and
//! SSE streams, the Origin policy, connection caps, and the task that runs
//! one connection.

pub mod admission;
mod conn;
pub mod http;
pub mod listener;
pub mod origin;
mod socket;
mod stream;
pub mod tls;

use crate::ingest::publish::Publisher;
use crate::shard::Node;
use admission::Admission;
use origin::OriginPolicy;
use std::sync::Arc;
use stream::Stream;

/// The client's address as logged (`unknown` once the socket has no peer).
fn peer_of(stream: &glommio::net::TcpStream) -> String {
    stream
        .peer_addr()
        .map_or_else(|_| "unknown".to_owned(), |a| a.to_string())
}

/// What the network edge needs beyond the shard: the node context, the
/// connection caps and the way to the aggregator for `POST /v1/publish`.
pub struct Gateway {
    /// The node context every shard shares.
    pub node: Arc<Node>,
    /// Open connections per IP and per tenant, across shards.
    pub admission: Arc<Admission>,
    /// The way to the aggregator for `POST /v1/publish` (one batch per
    /// request, so a request is published whole or not at all).
    pub publisher: Publisher,
    /// Which browser pages may open streams and read REST answers.
    pub origins: OriginPolicy,
    /// The TLS handshake every accepted connection goes through first, when
    /// `server.tls_cert` is set.
    pub tls: Option<futures_rustls::TlsAcceptor>,
}
