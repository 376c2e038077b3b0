//! HTTP/1.1 on the shard's port: read one bounded request head, then route
//! it to the WebSocket upgrade, the SSE stream, `/v1/publish`, `/healthz`,
//! `/v1/channels`, `/v1/status`, or the page and SDK at `/` and `/client.js`.
//! Every reply closes the connection. A browser page outside the Origin
//! policy gets 403 for a stream, and REST answers without CORS headers.

mod assets;
mod counts;
mod echo;
mod metrics;
mod publish;
mod request;
mod response;
mod sse;
mod status;
mod upgrade;

pub use metrics::listen as listen_metrics;
pub use request::{parse_head, HeadError, Request};
pub use upgrade::check_upgrade;

use super::{origin, Gateway};
use crate::auth::{self, AuthError, Claims};
use crate::net::Stream;
use crate::shard::ShardHandle;
use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use origin::OriginPolicy;
use response::{json_error, with_headers};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Verifies the request's token (header or a configured query parameter).
fn authenticate(gateway: &Gateway, req: &Request) -> Result<Claims, AuthError> {
    let token = auth::token_from_request(
        req.header("authorization"),
        req.query.as_deref(),
        &gateway.node.config.auth.query_params,
    )?;
    gateway.node.verifier.verify_now(&token)
}

/// Serves one accepted TCP connection: one HTTP request, or an upgrade that
/// hands the stream to the connection task.
pub async fn serve(shard: ShardHandle, gateway: Arc<Gateway>, tcp: TcpStream) {
    let accepted = Instant::now();
    let cfg = &gateway.node.config.server;
    let Some(mut stream) = secure(&gateway, tcp, cfg.handshake_timeout()).await else {
        return;
    };
    let head = request::read_head(&mut stream, cfg.max_header_bytes, cfg.handshake_timeout());
    let (req, leftover) = match head.await {
        Ok(r) => r,
        Err(reply) => {
            if let Some(reply) = reply {
                let _ = stream.send(&reply).await;
            }
            return;
        }
    };
    let draining = gateway.node.is_draining();
    let origin = req.header("origin");
    let cors = cors_headers(&gateway.origins, origin);
    let admitted = gateway.origins.admits(origin, req.header("host"));
    let reply = match (req.method.as_str(), req.path.as_str()) {
        ("OPTIONS", "/healthz" | "/v1/channels" | "/v1/status" | "/v1/publish" | "/v1/sse") => {
            preflight(&cors)
        }
        (_, "/v1/ws" | "/v1/sse") if !admitted => {
            json_error(403, "forbidden", "origin_not_allowed")
        }
        (_, "/v1/ws" | "/v1/sse") if draining => {
            let peer = super::peer_of(stream.tcp());
            tracing::info!(event = "upgrade_refused", peer, reason = "draining");
            json_error(503, "draining", "node is shutting down")
        }
        (_, "/v1/ws") => match upgrade::check(&gateway, &stream, &req) {
            Err(reply) => reply,
            Ok(upgrade) => return upgrade.run(shard, stream, leftover, accepted).await,
        },
        ("GET", "/v1/sse") => return sse::serve(shard, &gateway, stream, &req, &cors).await,
        ("GET", "/") => assets::terminal(),
        ("GET", "/client.js") => assets::client_js(),
        (_, "/v1/sse" | "/" | "/client.js") => json_error(405, "method_not_allowed", "use GET"),
        ("POST", "/v1/publish") => publish::serve(&gateway, &mut stream, &req, leftover).await,
        (_, "/v1/echo") if cfg.echo_route => match check_upgrade(&req) {
            Err(reply) => reply,
            Ok(accept) => return echo::serve(stream, &accept, &req, leftover, cfg).await,
        },
        ("GET", "/healthz") => status::healthz(&gateway.node),
        ("GET", "/v1/channels") => status::channels(&gateway, &req),
        ("GET", "/v1/status") => status::status(&gateway, &req),
        // With metrics.listen, /metrics lives on its own address only.
        (_, "/metrics") if gateway.node.config.metrics.listen.is_some() => {
            json_error(404, "not_found", "metrics are served on metrics.listen")
        }
        ("GET", "/metrics") => metrics::serve(&gateway.node, &req),
        (_, "/healthz" | "/v1/channels" | "/v1/status" | "/metrics") => {
            json_error(405, "method_not_allowed", "use GET")
        }
        (_, "/v1/publish") => json_error(405, "method_not_allowed", "use POST"),
        _ => json_error(404, "not_found", "no such endpoint"),
    };
    let _ = stream.send(&with_headers(reply, &cors)).await;
    let _ = stream.close().await;
}

/// The accepted connection as the client speaks it: through the TLS handshake
/// (bounded by `timeout`) when TLS is on; `None` when the handshake failed,
/// which is logged and leaves nothing to answer.
async fn secure(gateway: &Gateway, tcp: TcpStream, timeout: Duration) -> Option<Stream> {
    let Some(acceptor) = &gateway.tls else {
        return Some(Stream::Plain(tcp));
    };
    let peer = super::peer_of(&tcp);
    let handshake = glommio::timer::timeout(timeout, async { Ok(acceptor.accept(tcp).await) });
    match handshake.await {
        Ok(Ok(tls)) => Some(Stream::Tls(Box::new(tls))),
        Ok(Err(e)) => {
            tracing::info!(
                event = "upgrade_refused",
                peer,
                reason = "tls_handshake",
                "{e}"
            );
            None
        }
        Err(_) => {
            tracing::info!(
                event = "upgrade_refused",
                peer,
                reason = "tls_handshake_timeout"
            );
            None
        }
    }
}

/// The CORS headers of a reply to `origin`: only for a listed origin.
fn cors_headers(policy: &OriginPolicy, origin: Option<&str>) -> String {
    match origin {
        Some(origin) if policy.lists(origin) => {
            format!("Access-Control-Allow-Origin: {origin}\r\nVary: Origin\r\n")
        }
        _ => String::new(),
    }
}

/// The answer to a CORS preflight: what a listed origin may send (the
/// `cors` headers are added to it like to any reply), 403 for any other.
fn preflight(cors: &str) -> Vec<u8> {
    if cors.is_empty() {
        return json_error(403, "forbidden", "origin_not_allowed");
    }
    b"HTTP/1.1 204 No Content\r\nAccess-Control-Allow-Methods: GET, POST, OPTIONS\r\n\
      Access-Control-Allow-Headers: Authorization, Content-Type, Last-Event-ID\r\n\
      Access-Control-Max-Age: 600\r\nConnection: close\r\n\r\n"
        .to_vec()
}
