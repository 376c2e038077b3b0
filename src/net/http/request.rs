//! Reading a request: one bounded head (size and time limits), parsed with
//! `httparse`, and reads that give up at a deadline.

use super::response::json_error;
use crate::net::Stream;
use futures_lite::AsyncReadExt;
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

    /// Every value of header `name` (lower-case), in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn header_has_token(&self, name: &str, token: &str) -> bool {
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

/// One read that gives up at `deadline` (`None`).
pub(super) async fn read_before(
    stream: &mut Stream,
    chunk: &mut [u8],
    deadline: Instant,
) -> Option<std::io::Result<usize>> {
    let left = deadline.saturating_duration_since(Instant::now());
    glommio::timer::timeout(left, async { Ok(stream.read(chunk).await) })
        .await
        .ok()
}

/// Reads a request head within the size and time limits. Returns the request
/// and any bytes the client sent after it, or the error response to send.
pub(super) async fn read_head(
    stream: &mut Stream,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::http::upgrade::check_upgrade;

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
