//! HTTP/1.1 on the shard's port: read one bounded request head, then route it
//! to the WebSocket upgrade, `/healthz`, `/v1/channels` or `/v1/status`.

use crate::admission::Slot;
use crate::auth::{self, AuthError, Claims, Role};
use crate::channel::ChannelKind;
use crate::conn;
use crate::shard::ShardHandle;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use std::time::{Duration, Instant};

/// A parsed request head.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// The query string after `?`, if any.
    pub query: Option<String>,
    /// Header names (lower-cased) and values.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.header(name)
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }
}

/// Why a request head could not be read; each maps to an HTTP status.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// Not a valid HTTP/1.x request.
    #[error("malformed request")]
    Malformed,
    /// Head larger than `max_header_bytes`.
    #[error("request head too large")]
    TooLarge,
}

const MAX_HEADERS: usize = 64;

/// Parses a request head from `buf`: `Ok(None)` until it is complete,
/// then the request and the number of bytes it used.
pub fn parse_head(buf: &[u8], max_bytes: usize) -> Result<Option<(Request, usize)>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let status = req.parse(buf).map_err(|_| HeadError::Malformed)?;
    let httparse::Status::Complete(used) = status else {
        return if buf.len() > max_bytes {
            Err(HeadError::TooLarge)
        } else {
            Ok(None)
        };
    };
    if used > max_bytes {
        return Err(HeadError::TooLarge);
    }
    let target = req.path.unwrap_or("/");
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (target.to_owned(), None),
    };
    let headers = req
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    Ok(Some((
        Request {
            method: req.method.unwrap_or("").to_owned(),
            path,
            query,
            headers,
        },
        used,
    )))
}

/// A complete HTTP response that closes the connection.
pub fn response(status: u16, content_type: &str, body: &str) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let extra = if status == 426 {
        "Sec-WebSocket-Version: 13\r\n"
    } else {
        ""
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Connection: close\r\nCache-Control: no-store\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A JSON error response `{"error":..,"reason":..}`.
pub fn json_error(status: u16, error: &str, reason: &str) -> Vec<u8> {
    let body = serde_json::json!({ "error": error, "reason": reason }).to_string();
    response(status, "application/json", &body)
}

/// The `401` response for a refused token.
pub fn unauthorized(err: &AuthError) -> Vec<u8> {
    response(401, "application/json", &err.json_body())
}

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

/// The `101 Switching Protocols` response.
pub fn switching_protocols(accept: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    )
    .into_bytes()
}

/// Verifies the request's token (header or `access_token`).
pub fn authenticate(shard: &ShardHandle, req: &Request) -> Result<Claims, AuthError> {
    let token = auth::token_from_request(req.header("authorization"), req.query.as_deref())?;
    shard.shared().verifier.verify_now(&token)
}

/// Takes a connection slot for the client's IP and tenant, or the 429 reply.
fn admit(shard: &ShardHandle, stream: &TcpStream, claims: &Claims) -> Result<Slot, Vec<u8>> {
    let ip = stream
        .peer_addr()
        .map_err(|_| json_error(400, "bad_request", "peer address unavailable"))?
        .ip();
    shard
        .shared()
        .admission
        .admit(ip, &claims.tenant)
        .map_err(|refusal| json_error(429, "too_many_connections", refusal.as_str()))
}

/// One read that gives up at `deadline` (`None`).
pub async fn read_before(
    stream: &mut TcpStream,
    chunk: &mut [u8],
    deadline: Instant,
) -> Option<std::io::Result<usize>> {
    let left = deadline.saturating_duration_since(Instant::now());
    futures_lite::future::or(async { Some(stream.read(chunk).await) }, async {
        glommio::timer::sleep(left).await;
        None
    })
    .await
}

/// Reads a request head within the size and time limits. Returns the request
/// and any bytes the client sent after it, or the error response to send.
async fn read_head(
    stream: &mut TcpStream,
    max_bytes: usize,
    timeout: Duration,
) -> Result<(Request, Vec<u8>), Option<Vec<u8>>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let deadline = Instant::now() + timeout;
    loop {
        let n = match read_before(stream, &mut chunk, deadline).await {
            None => {
                return Err(Some(json_error(
                    408,
                    "timeout",
                    "request head not received in time",
                )))
            }
            Some(Ok(0)) | Some(Err(_)) => return Err(None),
            Some(Ok(n)) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        match parse_head(&buf, max_bytes) {
            Ok(Some((req, used))) => return Ok((req, buf.split_off(used))),
            Ok(None) => {}
            Err(HeadError::TooLarge) => {
                return Err(Some(json_error(
                    431,
                    "header_too_large",
                    "request head too large",
                )))
            }
            Err(HeadError::Malformed) => {
                return Err(Some(json_error(
                    400,
                    "bad_request",
                    "malformed HTTP request",
                )))
            }
        }
    }
}

/// Serves one accepted TCP connection: one HTTP request, or an upgrade that
/// hands the stream to [`conn::run`].
pub async fn serve(shard: ShardHandle, mut stream: TcpStream) {
    let cfg = &shard.shared().config.server;
    let (max_bytes, timeout) = (cfg.max_header_bytes, cfg.handshake_timeout());
    let (req, leftover) = match read_head(&mut stream, max_bytes, timeout).await {
        Ok(r) => r,
        Err(reply) => {
            if let Some(reply) = reply {
                let _ = stream.write_all(&reply).await;
            }
            return;
        }
    };
    let draining = shard.shared().is_draining();
    let reply = match (req.method.as_str(), req.path.as_str()) {
        (_, "/v1/ws") if draining => json_error(503, "draining", "node is shutting down"),
        (_, "/v1/ws") => match check_upgrade(&req) {
            Err(reply) => reply,
            Ok(accept) => match authenticate(&shard, &req) {
                Err(e) => unauthorized(&e),
                Ok(claims) => match admit(&shard, &stream, &claims) {
                    Err(reply) => reply,
                    Ok(_slot) => {
                        if stream
                            .write_all(&switching_protocols(&accept))
                            .await
                            .is_ok()
                        {
                            conn::run(shard, stream, claims, leftover).await;
                        }
                        return;
                    }
                },
            },
        },
        ("POST", "/v1/publish") => crate::publish::serve(&shard, &mut stream, &req, leftover).await,
        (_, "/v1/echo") if cfg.echo_route => match check_upgrade(&req) {
            Err(reply) => reply,
            Ok(accept) => {
                if stream
                    .write_all(&switching_protocols(&accept))
                    .await
                    .is_ok()
                {
                    crate::echo::run(stream, leftover, cfg.max_message_bytes, cfg.max_fragments)
                        .await;
                }
                return;
            }
        },
        ("GET", "/healthz") if draining => response(503, "text/plain", "draining"),
        // A stale feed keeps 200: every node shares the feed, so a 503 would
        // take the whole fleet out of rotation for what clients are told anyway.
        ("GET", "/healthz") => match shard.shared().feed_stale_since(crate::feed::now_us()) {
            Some(_) => response(200, "text/plain", "degraded: feed_stale"),
            None => response(200, "text/plain", "ok"),
        },
        ("GET", "/v1/channels") => match authenticate(&shard, &req) {
            Err(e) => unauthorized(&e),
            Ok(_) => response(200, "application/json", &channels_json(&shard)),
        },
        ("GET", "/v1/status") => match authenticate(&shard, &req) {
            Err(e) => unauthorized(&e),
            Ok(c) if !c.has_role(&Role::ADMIN) => {
                json_error(403, "forbidden", "needs the ADMIN role")
            }
            Ok(_) => response(200, "application/json", &shard.shared().status_json()),
        },
        (_, "/healthz" | "/v1/channels" | "/v1/status") => {
            json_error(405, "method_not_allowed", "use GET")
        }
        (_, "/v1/publish") => json_error(405, "method_not_allowed", "use POST"),
        _ => json_error(404, "not_found", "no such endpoint"),
    };
    let _ = stream.write_all(&reply).await;
    let _ = stream.close().await;
}

/// The catalogue as `/v1/channels` serves it.
fn channels_json(shard: &ShardHandle) -> String {
    let shared = shard.shared();
    let channels: Vec<_> = shared
        .catalogue
        .iter()
        .map(|(_, c)| {
            let mut entry = serde_json::json!({
                "name": c.name, "kind": c.kind.as_str(), "roles": c.roles,
            });
            match c.kind {
                ChannelKind::Prices => entry["symbols"] = shared.universe.symbols().into(),
                ChannelKind::Metrics => {
                    entry["metrics"] = c.metrics.clone().into();
                    entry["windows_ms"] = shared.config.channels.windows_ms.clone().into();
                }
                ChannelKind::Reliable { .. } => {}
            }
            entry
        })
        .collect();
    serde_json::json!({ "channels": channels }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPGRADE: &str = "GET /v1/ws?access_token=abc HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

    #[test]
    fn parses_a_split_head_and_checks_the_upgrade() {
        let bytes = UPGRADE.as_bytes();
        assert_eq!(parse_head(&bytes[..20], 8192), Ok(None));
        let (req, used) = parse_head(bytes, 8192).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(req.path, "/v1/ws");
        assert_eq!(req.query.as_deref(), Some("access_token=abc"));
        assert_eq!(check_upgrade(&req).unwrap(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn refuses_oversized_and_malformed_heads() {
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(600));
        assert_eq!(parse_head(big.as_bytes(), 512), Err(HeadError::TooLarge));
        assert_eq!(
            parse_head(b"\x01\x02 nonsense\r\n\r\n", 512),
            Err(HeadError::Malformed)
        );
        let (mut req, _) = parse_head(UPGRADE.as_bytes(), 8192).unwrap().unwrap();
        req.headers.retain(|(n, _)| n != "sec-websocket-version");
        let reply = String::from_utf8(check_upgrade(&req).unwrap_err()).unwrap();
        assert!(reply.starts_with("HTTP/1.1 426"), "{reply}");
    }
}
