//! HTTP/1.1 over std sockets (plain, or TLS for a GET), one request per
//! connection (`Connection: close`): enough for quotecast's routes and for
//! reading an upgrade response. Heads are parsed by httparse; bodies by
//! `Content-Length`, chunked encoding, or the end of the connection.

use httparse::Status;
use serde_json::Value;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a request may take by default, connection to last byte:
/// generous, so that a loaded machine is not mistaken for a broken server.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Most headers a response head may have.
const MAX_HEADERS: usize = 64;

/// How long one read of a TLS handshake may wait.
const HANDSHAKE_READ: Duration = Duration::from_secs(5);

/// Granularity of blocking reads, so that deadlines are honoured.
pub(crate) const POLL: Duration = Duration::from_millis(25);

/// A response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Length of the head including the blank line; the body starts after it.
    pub len: usize,
}

impl Head {
    /// The value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The `Content-Length`, when present and a number.
    pub fn content_length(&self) -> Option<usize> {
        self.header("content-length")?.parse().ok()
    }
}

/// A whole response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body (de-chunked, lossily UTF-8); empty for `101`.
    pub body: String,
}

impl Response {
    /// The value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, what.into())
}

/// Parses the response head at the start of `buf`; `Ok(None)` while it has
/// not all arrived.
pub fn parse_head(buf: &[u8]) -> io::Result<Option<Head>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(Status::Complete(len)) => len,
        Ok(Status::Partial) => return Ok(None),
        Err(e) => return Err(invalid(format!("bad response head: {e}"))),
    };
    Ok(Some(Head {
        status: resp.code.unwrap_or_default(),
        headers: resp
            .headers
            .iter()
            .map(|h| {
                let value = String::from_utf8_lossy(h.value).trim().to_string();
                (h.name.to_ascii_lowercase(), value)
            })
            .collect(),
        len,
    }))
}

/// Parses one whole response at the start of `buf` and returns it with the
/// bytes it took; `Ok(None)` while more is needed. `eof` says the peer has
/// closed, which ends a body that has neither length nor chunks.
pub fn parse_response(buf: &[u8], eof: bool) -> io::Result<Option<(Response, usize)>> {
    let Some(head) = parse_head(buf)? else {
        return Ok(None);
    };
    let rest = &buf[head.len..];
    let chunked = head
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    // RFC 9112 §6.3: these carry no body whatever their headers say.
    let bodyless = matches!(head.status, 100..=199 | 204 | 304);
    let (body, used) = if bodyless {
        (Vec::new(), 0)
    } else if chunked {
        match dechunk(rest)? {
            Some(done) => done,
            None => return Ok(None),
        }
    } else if let Some(len) = head.content_length() {
        if rest.len() < len {
            return Ok(None);
        }
        (rest[..len].to_vec(), len)
    } else if eof {
        (rest.to_vec(), rest.len())
    } else {
        return Ok(None);
    };
    let response = Response {
        status: head.status,
        body: String::from_utf8_lossy(&body).into_owned(),
        headers: head.headers,
    };
    Ok(Some((response, head.len + used)))
}

/// The body of a chunked message at the start of `data` and the bytes it
/// took (trailers skipped), or `None` while incomplete.
fn dechunk(mut data: &[u8]) -> io::Result<Option<(Vec<u8>, usize)>> {
    let total = data.len();
    let mut body = Vec::new();
    loop {
        let (used, size) = match httparse::parse_chunk_size(data) {
            Ok(Status::Complete(c)) => c,
            Ok(Status::Partial) => return Ok(None),
            Err(_) => return Err(invalid("bad chunk size")),
        };
        data = &data[used..];
        if size == 0 {
            // The last chunk, then trailer lines up to a blank line.
            let end = if data.starts_with(b"\r\n") {
                2
            } else {
                match data.windows(4).position(|w| w == b"\r\n\r\n") {
                    Some(i) => i + 4,
                    None => return Ok(None),
                }
            };
            return Ok(Some((body, total - data.len() + end)));
        }
        let size = usize::try_from(size).map_err(|_| invalid("chunk too large"))?;
        if data.len() < size.saturating_add(2) {
            return Ok(None);
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// Reads one response from `stream` by `deadline` and returns it with any
/// bytes read past it (the first frames after a `101`). Sets a short read
/// timeout on `stream` so that the deadline is honoured.
pub fn read_response(stream: &mut TcpStream, deadline: Instant) -> io::Result<(Response, Vec<u8>)> {
    stream.set_read_timeout(Some(POLL))?;
    read_response_from(stream, deadline)
}

/// [`read_response`] from any stream (TLS over TCP, say) whose reads time
/// out often enough for `deadline` to be honoured.
pub fn read_response_from(
    stream: &mut impl Read,
    deadline: Instant,
) -> io::Result<(Response, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let mut eof = false;
    loop {
        if let Some((response, used)) = parse_response(&buf, eof)? {
            return Ok((response, buf.split_off(used)));
        }
        if eof {
            return Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                format!(
                    "connection closed before a whole response: {:?}",
                    String::from_utf8_lossy(&buf)
                ),
            ));
        }
        match stream.read(&mut chunk) {
            Ok(0) => eof = true,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                if Instant::now() >= deadline {
                    return Err(io::Error::new(
                        ErrorKind::TimedOut,
                        format!(
                            "no whole response in time; got so far: {:?}",
                            String::from_utf8_lossy(&buf)
                        ),
                    ));
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Sends `method path` with `headers` (and `body`, with its length) on a
/// fresh connection to `addr`, and reads the response by `deadline`.
/// `Connection: close` is added unless `headers` has a `Connection`.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
    deadline: Instant,
) -> io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    let req = request_text(addr, method, path, headers, body);
    stream.set_write_timeout(Some(TIMEOUT))?;
    stream.write_all(req.as_bytes())?;
    read_response(&mut stream, deadline).map(|(r, _)| r)
}

/// The bytes of a request [`request`] sends.
fn request_text(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> String {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(body) = body {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("connection"))
    {
        req.push_str("Connection: close\r\n");
    }
    req.push_str("\r\n");
    req.push_str(body.unwrap_or_default());
    req
}

/// `GET path` with `headers`, within [`TIMEOUT`].
pub fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> io::Result<Response> {
    request(addr, "GET", path, headers, None, Instant::now() + TIMEOUT)
}

/// [`get`] over TLS (`https://`), trusting what `client` trusts.
pub fn get_tls(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    client: Arc<rustls::ClientConfig>,
) -> io::Result<Response> {
    let deadline = Instant::now() + TIMEOUT;
    // The handshake's reads may wait seconds (a saturated server: 25 ms
    // failed); the response is read in POLL steps, so the deadline holds.
    let mut stream = crate::tls::connect(client, addr, HANDSHAKE_READ)?;
    stream.sock.set_read_timeout(Some(POLL))?;
    stream.write_all(request_text(addr, "GET", path, headers, None).as_bytes())?;
    read_response_from(&mut stream, deadline).map(|(r, _)| r)
}

/// `POST path` of a JSON `body` with `headers`, within [`TIMEOUT`].
pub fn post_json(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> io::Result<Response> {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    request(
        addr,
        "POST",
        path,
        &all,
        Some(body),
        Instant::now() + TIMEOUT,
    )
}

/// The `prices` entry of a `GET /v1/channels` document.
pub fn prices_channel(channels: &Value) -> Option<&Value> {
    channels["channels"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == "prices")
}

/// The symbols of the `prices` channel, from `GET /v1/channels` with `token`.
pub fn channel_symbols(addr: SocketAddr, token: &str) -> io::Result<Vec<String>> {
    let auth = format!("Bearer {token}");
    let r = get(addr, "/v1/channels", &[("Authorization", &auth)])?;
    if r.status != 200 {
        return Err(io::Error::other(format!(
            "GET /v1/channels answered {}: {}",
            r.status, r.body
        )));
    }
    let doc: Value = serde_json::from_str(&r.body)
        .map_err(|e| invalid(format!("GET /v1/channels: body is not JSON: {e}")))?;
    let symbols = prices_channel(&doc)
        .and_then(|p| p["symbols"].as_array())
        .ok_or_else(|| invalid(format!("no prices channel with symbols in {doc}")))?;
    Ok(symbols
        .iter()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_wait_for_the_blank_line() {
        let full = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                     Sec-WebSocket-Accept: abc=\r\n\r\n\x81\x02hi";
        assert_eq!(parse_head(&full[..30]).unwrap(), None);
        let head = parse_head(full).unwrap().unwrap();
        assert_eq!(head.status, 101);
        assert_eq!(head.header("sec-websocket-accept"), Some("abc="));
        assert_eq!(&full[head.len..], b"\x81\x02hi");
        let (r, used) = parse_response(full, false).unwrap().unwrap();
        assert_eq!((r.status, r.body.as_str(), used), (101, "", head.len));
        assert!(parse_head(b"SSH-2.0\r\n\r\n").is_err());
    }

    #[test]
    fn bodies_by_length_chunks_or_eof() {
        let len = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokX";
        assert_eq!(parse_response(&len[..len.len() - 2], false).unwrap(), None);
        let (r, used) = parse_response(len, false).unwrap().unwrap();
        assert_eq!((r.body.as_str(), used), ("ok", len.len() - 1));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1;x=y\r\nc\r\n0\r\n\r\n";
        assert_eq!(parse_response(&chunked[..50], false).unwrap(), None);
        let (r, used) = parse_response(chunked, false).unwrap().unwrap();
        assert_eq!((r.body.as_str(), used), ("abc", chunked.len()));
        let eof = b"HTTP/1.1 404 Not Found\r\n\r\nnope";
        assert_eq!(parse_response(eof, false).unwrap(), None);
        assert_eq!(parse_response(eof, true).unwrap().unwrap().0.body, "nope");
    }

    #[test]
    fn channels_document_gives_the_prices_channel() {
        let doc = serde_json::json!({"channels": [
            {"name": "alerts"}, {"name": "prices", "symbols": ["A", "B"]}]});
        assert_eq!(prices_channel(&doc).unwrap()["symbols"][1], "B");
        assert!(prices_channel(&serde_json::json!({})).is_none());
    }
}
