//! `GET /v1/ws`: the WebSocket upgrade (RFC 6455 headers), the token, the
//! connection caps, then the connection itself.

use super::authenticate;
use super::request::Request;
use super::response::{json_error, unauthorized};
use crate::auth::Claims;
use crate::config::{Compression, ServerConfig};
use crate::frame::deflate::DeflateUse;
use crate::frame::extension::{self, Accepted};
use crate::net::admission::Slot;
use crate::net::conn::{self, Opening};
use crate::net::Gateway;
use crate::net::Stream;
use crate::shard::ShardHandle;
use std::time::Instant;

/// Checks the upgrade headers and returns the `Sec-WebSocket-Accept` value.
pub fn check_upgrade(req: &Request) -> Result<String, Vec<u8>> {
    if req.method != "GET" {
        return Err(json_error(405, "method_not_allowed", "use GET"));
    }
    if !req.header_has_token("upgrade", "websocket")
        || !req.header_has_token("connection", "upgrade")
    {
        return Err(json_error(
            426,
            "upgrade_required",
            "expected a WebSocket upgrade",
        ));
    }
    if req.header("sec-websocket-version") != Some("13") {
        return Err(json_error(
            426,
            "upgrade_required",
            "Sec-WebSocket-Version must be 13",
        ));
    }
    let key = req
        .header("sec-websocket-key")
        .filter(|k| !k.is_empty())
        .ok_or_else(|| json_error(400, "bad_request", "missing Sec-WebSocket-Key"))?;
    Ok(tungstenite::handshake::derive_accept_key(key.as_bytes()))
}

/// The permessage-deflate offer this request's `Sec-WebSocket-Extensions`
/// makes that the server accepts, unless `server.compression` is off.
pub(super) fn deflate_offer(req: &Request, cfg: &ServerConfig) -> Option<Accepted> {
    if cfg.compression == Compression::Off {
        return None;
    }
    extension::negotiate(req.header_values("sec-websocket-extensions"))
}

/// How a connection that accepted `offer` compresses, under `cfg`.
pub(super) fn deflate_use(offer: Option<&Accepted>, cfg: &ServerConfig) -> Option<DeflateUse> {
    offer.map(|a| DeflateUse {
        window_bits: a.window_bits,
        min_bytes: cfg.compression_min_bytes,
    })
}

/// The `101 Switching Protocols` response, naming the accepted extension.
pub fn switching_protocols(accept: &str, deflate: Option<&Accepted>) -> Vec<u8> {
    let extensions = deflate.map_or(String::new(), |a| {
        format!("Sec-WebSocket-Extensions: {}\r\n", a.response)
    });
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n{extensions}\r\n"
    )
    .into_bytes()
}

/// An upgrade that passed every check, holding its connection slot.
pub(super) struct Upgrade {
    accept: String,
    claims: Claims,
    deflate: Option<Accepted>,
    /// Given back when the connection ends.
    _slot: Slot,
}

/// Checks the upgrade headers, the token and the connection caps; the
/// refusal to send (400, 401, 426, 429) when one fails.
pub(super) fn check(gateway: &Gateway, stream: &Stream, req: &Request) -> Result<Upgrade, Vec<u8>> {
    let label = crate::net::peer_of(stream.tcp());
    let refused = |reason: &str| tracing::info!(event = "upgrade_refused", peer = label, reason);
    let accept = check_upgrade(req).inspect_err(|_| refused("not a WebSocket upgrade"))?;
    let (claims, slot) = admit(gateway, stream, req)?;
    Ok(Upgrade {
        accept,
        claims,
        deflate: deflate_offer(req, &gateway.node.config.server),
        _slot: slot,
    })
}

/// The token, then the connection caps, of a request for a connection (a
/// WebSocket upgrade or an SSE stream): its claims and the slot it holds,
/// or the refusal to send (400, 401, 429). Each refusal is logged.
pub(super) fn admit(
    gateway: &Gateway,
    stream: &Stream,
    req: &Request,
) -> Result<(Claims, Slot), Vec<u8>> {
    let label = crate::net::peer_of(stream.tcp());
    let refused = |reason: &str| tracing::info!(event = "upgrade_refused", peer = label, reason);
    let claims = authenticate(gateway, req).map_err(|e| {
        refused(e.reason());
        unauthorized(&e)
    })?;
    let Some(ip) = stream.tcp().peer_addr().ok().map(|p| p.ip()) else {
        refused("peer address unavailable");
        return Err(json_error(400, "bad_request", "peer address unavailable"));
    };
    let slot = gateway
        .admission
        .admit(ip, &claims.tenant)
        .map_err(|refusal| {
            refused(refusal.as_str());
            json_error(429, "too_many_connections", refusal.as_str())
        })?;
    Ok((claims, slot))
}

impl Upgrade {
    /// Answers 101 and serves the connection until it closes; the handshake
    /// time counts from `accepted`.
    pub(super) async fn run(
        self,
        shard: ShardHandle,
        mut stream: Stream,
        leftover: Vec<u8>,
        accepted: Instant,
    ) {
        let reply = switching_protocols(&self.accept, self.deflate.as_ref());
        if stream.send(&reply).await.is_ok() {
            shard.record_handshake(accepted.elapsed());
            let deflate = deflate_use(self.deflate.as_ref(), &shard.node().config.server);
            conn::run(
                shard,
                stream,
                self.claims,
                leftover,
                Opening::WebSocket(deflate),
            )
            .await;
        }
    }
}
