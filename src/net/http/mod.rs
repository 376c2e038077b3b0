//! HTTP/1.1 on the shard's port: read one bounded request head, then route
//! it to the WebSocket upgrade, `/v1/publish`, `/healthz`, `/v1/channels` or
//! `/v1/status`. Every reply closes the connection.

mod echo;
mod metrics;
mod publish;
mod request;
mod response;
mod status;
mod upgrade;

pub use metrics::listen as listen_metrics;
pub use request::{parse_head, HeadError, Request};
pub use upgrade::check_upgrade;

use super::Gateway;
use crate::auth::{self, AuthError, Claims};
use crate::shard::ShardHandle;
use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use response::json_error;
use std::sync::Arc;
use std::time::Instant;

/// Verifies the request's token (header or `access_token`).
fn authenticate(gateway: &Gateway, req: &Request) -> Result<Claims, AuthError> {
    let token = auth::token_from_request(req.header("authorization"), req.query.as_deref())?;
    gateway.node.verifier.verify_now(&token)
}

/// Serves one accepted TCP connection: one HTTP request, or an upgrade that
/// hands the stream to the connection task.
pub async fn serve(shard: ShardHandle, gateway: Arc<Gateway>, mut stream: TcpStream) {
    let accepted = Instant::now();
    let cfg = &gateway.node.config.server;
    let head = request::read_head(&mut stream, cfg.max_header_bytes, cfg.handshake_timeout());
    let (req, leftover) = match head.await {
        Ok(r) => r,
        Err(reply) => {
            if let Some(reply) = reply {
                let _ = stream.write_all(&reply).await;
            }
            return;
        }
    };
    let draining = gateway.node.is_draining();
    let reply = match (req.method.as_str(), req.path.as_str()) {
        (_, "/v1/ws") if draining => {
            let peer = super::peer_of(&stream);
            tracing::info!(event = "upgrade_refused", peer, reason = "draining");
            json_error(503, "draining", "node is shutting down")
        }
        (_, "/v1/ws") => match upgrade::check(&gateway, &stream, &req) {
            Err(reply) => reply,
            Ok(upgrade) => return upgrade.run(shard, stream, leftover, accepted).await,
        },
        ("POST", "/v1/publish") => publish::serve(&gateway, &mut stream, &req, leftover).await,
        (_, "/v1/echo") if cfg.echo_route => match check_upgrade(&req) {
            Err(reply) => reply,
            Ok(accept) => return echo::serve(stream, &accept, leftover, cfg).await,
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
    let _ = stream.write_all(&reply).await;
    let _ = stream.close().await;
}
