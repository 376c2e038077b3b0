//! `POST /v1/publish`: systems that raise alerts, session changes,
//! notifications or metric events inject them here. The whole body is
//! validated before anything is published, and goes to the aggregator as
//! one batch, so a request is published entirely or not at all.

use super::request::{read_before, Request};
use super::response::{json_error, response, unauthorized};
use super::{authenticate, Gateway};
use crate::auth::Role;
use crate::clock;
use crate::model::event::{self, EventRules};
use glommio::net::TcpStream;
use std::time::{Duration, Instant};

/// Largest request body accepted.
pub const MAX_PUBLISH_BYTES: usize = 1 << 20;
/// Roles that may publish.
pub const PUBLISH_ROLES: [Role; 2] = [Role::ADMIN, Role::SERVICE];

/// Serves one publish request whose head is `req` (and whose body starts
/// with `leftover`); returns the HTTP response.
pub(super) async fn serve(
    gateway: &Gateway,
    stream: &mut TcpStream,
    req: &Request,
    leftover: Vec<u8>,
) -> Vec<u8> {
    let claims = match authenticate(gateway, req) {
        Ok(c) => c,
        Err(e) => return unauthorized(&e),
    };
    if !claims.has_any_role(&PUBLISH_ROLES) {
        return json_error(403, "forbidden", "needs the ADMIN or SERVICE role");
    }
    let Some(length) = req
        .header("content-length")
        .and_then(|v| v.trim().parse::<usize>().ok())
    else {
        return json_error(411, "length_required", "Content-Length is required");
    };
    if length > MAX_PUBLISH_BYTES {
        return json_error(413, "too_large", "body over 1 MiB");
    }
    let timeout = gateway.node.config.server.handshake_timeout();
    let Some(body) = read_body(stream, leftover, length, timeout).await else {
        return json_error(408, "timeout", "request body not received in time");
    };
    let node = &gateway.node;
    let rules = EventRules {
        now_us: clock::now_us(),
        max_future_us: crate::feed::largest_window_us(&node.config),
    };
    match event::parse_batch(&body, &node.catalogue, rules) {
        Err((index, e)) => {
            let body = serde_json::json!({
                "error": e.code, "index": index, "reason": e.reason,
            });
            response(400, "application/json", &body.to_string())
        }
        Ok(events) => {
            let accepted = events.len();
            match gateway.publisher.send(events) {
                Ok(()) => response(
                    202,
                    "application/json",
                    &serde_json::json!({ "accepted": accepted }).to_string(),
                ),
                Err(_) => json_error(503, "unavailable", "the aggregator has stopped"),
            }
        }
    }
}

/// Reads `length` body bytes within `timeout`; `None` on timeout or disconnect.
async fn read_body(
    stream: &mut TcpStream,
    mut body: Vec<u8>,
    length: usize,
    timeout: Duration,
) -> Option<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let mut chunk = vec![0u8; 16 * 1024];
    while body.len() < length {
        match read_before(stream, &mut chunk, deadline).await {
            Some(Ok(n)) if n > 0 => body.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    }
    // Bytes past the announced length are not ours: the connection closes after the reply.
    body.truncate(length);
    Some(body)
}
