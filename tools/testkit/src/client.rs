//! Blocking WebSocket clients of `/v1/ws`, over std sockets with short read
//! timeouts so that every read honours a deadline.
//!
//! - [`Ws`]: tungstenite underneath, JSON frames out; answers pings while
//!   reading, like any well-behaved client.
//! - [`RawWs`]: bytes and frames only; it answers nothing, so a test decides
//!   whether and when it reads or replies.

use crate::http::{self, POLL, TIMEOUT};
use crate::ws::{self, derive_accept_key, generate_key};
use serde_json::Value;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::WebSocket;
use tungstenite::Message;

/// Whether an I/O error only means "nothing to read yet".
fn is_poll_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}

// ---------------------------------------------------------------- Ws

/// What one read of a [`Ws`] produced.
#[derive(Debug)]
pub enum Event {
    /// A text frame holding JSON.
    Json(Value),
    /// A Close frame and its code.
    Close(Option<u16>),
    /// The connection ended without a Close frame (or a read error).
    Gone(String),
    /// A frame quotecast never sends: binary, or text that is not JSON.
    Invalid(String),
}

/// A WebSocket client connection through tungstenite.
pub struct Ws {
    /// The socket.
    pub ws: WebSocket<TcpStream>,
    /// The first frame the server sent: quotecast's `welcome`.
    pub welcome: Value,
    /// Server pings seen (tungstenite answers them while reading).
    pub pings: usize,
}

impl Ws {
    /// Connects to `/v1/ws` with `Authorization: Bearer token`; reads the welcome.
    pub fn connect(addr: SocketAddr, token: &str) -> io::Result<Ws> {
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
        Ws::over(stream, addr, "", Some(token))
    }

    /// Connects with the token in the `access_token` query parameter.
    pub fn connect_query(addr: SocketAddr, token: &str) -> io::Result<Ws> {
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
        Ws::over(stream, addr, &format!("?access_token={token}"), None)
    }

    /// Upgrades `stream`, already connected to `addr`, on `/v1/ws` plus
    /// `query`, and reads the welcome, which must be the first frame.
    pub fn over(
        stream: TcpStream,
        addr: SocketAddr,
        query: &str,
        bearer: Option<&str>,
    ) -> io::Result<Ws> {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        let mut req = format!("ws://{addr}/v1/ws{query}")
            .into_client_request()
            .map_err(io::Error::other)?;
        if let Some(t) = bearer {
            let value = format!("Bearer {t}").parse().map_err(io::Error::other)?;
            req.headers_mut().insert("Authorization", value);
        }
        let (ws, _) = tungstenite::client::client(req, stream).map_err(|e| match e {
            tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp)) => {
                let body = resp.body().as_deref().map(String::from_utf8_lossy);
                io::Error::other(format!("upgrade refused: {} {body:?}", resp.status()))
            }
            other => io::Error::other(format!("WebSocket handshake failed: {other}")),
        })?;
        ws.get_ref().set_read_timeout(Some(POLL))?;
        let mut ws = Ws {
            ws,
            welcome: Value::Null,
            pings: 0,
        };
        match ws.next(Instant::now() + TIMEOUT) {
            Some(Event::Json(v)) if v["type"] == "welcome" => ws.welcome = v,
            other => {
                return Err(io::Error::new(
                    ErrorKind::InvalidData,
                    format!("the first frame must be a welcome, got {other:?}"),
                ))
            }
        }
        Ok(ws)
    }

    /// Sends a text frame.
    pub fn send_text(&mut self, text: &str) -> io::Result<()> {
        self.ws
            .send(Message::text(text.to_string()))
            .map_err(|e| io::Error::other(format!("send {text:?}: {e}")))
    }

    /// Sends a JSON op.
    pub fn send(&mut self, op: &Value) -> io::Result<()> {
        self.send_text(&op.to_string())
    }

    /// The next JSON frame, Close or end of connection; `None` at `deadline`.
    pub fn next(&mut self, deadline: Instant) -> Option<Event> {
        loop {
            if Instant::now() >= deadline {
                return None;
            }
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    return Some(match serde_json::from_str(t.as_str()) {
                        Ok(v) => Event::Json(v),
                        Err(e) => Event::Invalid(format!("non-JSON text ({e}): {t:?}")),
                    })
                }
                Ok(Message::Binary(b)) => {
                    return Some(Event::Invalid(format!("binary frame ({} bytes)", b.len())))
                }
                Ok(Message::Ping(_)) => self.pings += 1,
                Ok(Message::Pong(_)) | Ok(Message::Frame(_)) => {}
                Ok(Message::Close(f)) => return Some(Event::Close(f.map(|f| u16::from(f.code)))),
                Err(tungstenite::Error::Io(e)) if is_poll_timeout(&e) => {}
                Err(e) => return Some(Event::Gone(e.to_string())),
            }
        }
    }
}

// ---------------------------------------------------------------- RawWs

/// One frame as the server sent it.
#[derive(Debug, Clone)]
pub struct RawFrame {
    /// Opcode: 1 text, 2 binary, 8 close, 9 ping, 10 pong.
    pub opcode: u8,
    /// RSV1: the payload is compressed (permessage-deflate).
    pub rsv1: bool,
    /// The payload as sent.
    pub payload: Vec<u8>,
    /// When the frame was parsed.
    pub at: Instant,
}

impl RawFrame {
    /// The close code of a Close frame.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == ws::OP_CLOSE)
            .then(|| ws::close_code(&self.payload))
            .flatten()
    }

    /// The payload of a text frame as JSON.
    pub fn json(&self) -> Option<Value> {
        (self.opcode == ws::OP_TEXT)
            .then(|| serde_json::from_slice(&self.payload).ok())
            .flatten()
    }
}

/// How a raw read ended.
#[derive(Debug, PartialEq, Eq)]
pub enum RawEnd {
    /// The stop predicate matched.
    Stopped,
    /// The server closed the TCP connection.
    Eof,
    /// A socket error (e.g. reset) or a frame no server may send.
    Error(String),
    /// The deadline passed.
    Deadline,
}

/// A WebSocket client that never answers anything by itself: the test
/// decides whether it reads, and pings are not answered.
pub struct RawWs {
    /// The socket.
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl RawWs {
    /// Connects to `/v1/ws` and upgrades with a bearer token.
    pub fn connect(addr: SocketAddr, token: &str) -> io::Result<RawWs> {
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
        RawWs::over(stream, addr, token)
    }

    /// Upgrades `stream`, already connected to `addr`, with a bearer token,
    /// checking the accept key; reads no frame.
    pub fn over(stream: TcpStream, addr: SocketAddr, token: &str) -> io::Result<RawWs> {
        RawWs::upgrade(stream, addr, token, &[]).map(|(ws, _)| ws)
    }

    /// Connects to `/v1/ws` offering `headers` too (e.g.
    /// `Sec-WebSocket-Extensions`); returns the 101 response with it.
    pub fn connect_with(
        addr: SocketAddr,
        token: &str,
        headers: &[(&str, &str)],
    ) -> io::Result<(RawWs, http::Response)> {
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
        RawWs::upgrade(stream, addr, token, headers)
    }

    fn upgrade(
        mut stream: TcpStream,
        addr: SocketAddr,
        token: &str,
        headers: &[(&str, &str)],
    ) -> io::Result<(RawWs, http::Response)> {
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        let key = generate_key();
        stream.write_all(&ws::upgrade_request_with(
            &addr.to_string(),
            "/v1/ws",
            &key,
            token,
            headers,
        ))?;
        let (resp, rest) = http::read_response(&mut stream, Instant::now() + TIMEOUT)?;
        if resp.status != 101 {
            return Err(io::Error::other(format!(
                "upgrade refused: {} {}",
                resp.status, resp.body
            )));
        }
        if resp.header("sec-websocket-accept") != Some(derive_accept_key(key.as_bytes()).as_str()) {
            return Err(io::Error::other(format!("bad accept key: {resp:?}")));
        }
        Ok((RawWs { stream, buf: rest }, resp))
    }

    /// Sends one masked text frame.
    pub fn send_text(&mut self, text: &str) -> io::Result<()> {
        self.stream
            .write_all(&ws::client_frame(ws::OP_TEXT, text.as_bytes()))
    }

    /// Reads and parses frames until `stop` matches one, EOF, an error or `deadline`.
    pub fn read_frames(
        &mut self,
        deadline: Instant,
        mut stop: impl FnMut(&RawFrame) -> bool,
    ) -> (Vec<RawFrame>, RawEnd) {
        let mut frames = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            loop {
                let (frame, used) = match ws::parse_frame(&self.buf) {
                    Ok(Some((f, used))) => (
                        RawFrame {
                            opcode: f.opcode,
                            rsv1: f.rsv1,
                            payload: f.payload.to_vec(),
                            at: Instant::now(),
                        },
                        used,
                    ),
                    Ok(None) => break,
                    Err(e) => return (frames, RawEnd::Error(e.to_string())),
                };
                self.buf.drain(..used);
                let hit = stop(&frame);
                frames.push(frame);
                if hit {
                    return (frames, RawEnd::Stopped);
                }
            }
            if Instant::now() >= deadline {
                return (frames, RawEnd::Deadline);
            }
            // The socket keeps the short timeout read_response set on it.
            match self.stream.read(&mut chunk) {
                Ok(0) => return (frames, RawEnd::Eof),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if is_poll_timeout(&e) => {}
                Err(e) => return (frames, RawEnd::Error(e.to_string())),
            }
        }
    }
}
