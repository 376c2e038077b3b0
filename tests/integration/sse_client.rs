//! A raw SSE client over TCP for the tests: sends one `GET`, reads the
//! response head, then splits the body into events the way a browser's
//! `EventSource` does (fields up to a blank line; comments; `id` kept).

use crate::util::*;
use quotecast_testkit::http;
use serde_json::Value;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// One dispatched event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    /// The `event:` field.
    pub event: String,
    /// The `id:` field of this event, when it had one.
    pub id: Option<String>,
    /// The `data:` field as JSON.
    pub data: Value,
}

/// An open event stream.
pub struct Sse {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Response headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// What `Last-Event-ID` would be on a reconnect (the last `id:` seen).
    pub last_id: Option<String>,
    /// Comment lines seen (heartbeats).
    pub comments: usize,
    /// The server ended the stream.
    pub ended: bool,
}

/// Opens `GET target` with `headers`: the stream once the server answers
/// 200, or the whole refusal.
pub fn open(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> Result<Sse, HttpResponse> {
    open_over(
        TcpStream::connect(addr).expect("connect"),
        addr,
        target,
        headers,
    )
}

/// [`open`] over `stream`, already connected to `addr`.
pub fn open_over(
    mut stream: TcpStream,
    addr: SocketAddr,
    target: &str,
    headers: &[(&str, &str)],
) -> Result<Sse, HttpResponse> {
    let mut req = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).expect("send request");
    stream
        .set_read_timeout(Some(Duration::from_millis(25)))
        .unwrap();
    let deadline = deadline();
    let mut buf = Vec::new();
    let head = loop {
        if let Some(head) = http::parse_head(&buf).expect("response head") {
            break head;
        }
        assert!(
            read_some(&mut stream, &mut buf, deadline),
            "no response head: {buf:?}"
        );
    };
    if head.status != 200 {
        loop {
            let eof = !read_some(&mut stream, &mut buf, deadline);
            if let Some((resp, _)) = http::parse_response(&buf, eof).expect("response") {
                return Err(resp);
            }
            assert!(!eof, "refusal cut short: {buf:?}");
        }
    }
    assert_eq!(
        head.header("content-type"),
        Some("text/event-stream"),
        "{head:?}"
    );
    Ok(Sse {
        stream,
        buf: buf.split_off(head.len),
        headers: head.headers,
        last_id: None,
        comments: 0,
        ended: false,
    })
}

/// Reads more into `buf`; false at the end of the stream or at `deadline`.
fn read_some(stream: &mut TcpStream, buf: &mut Vec<u8>, deadline: Instant) -> bool {
    let mut chunk = [0u8; 16 * 1024];
    while Instant::now() < deadline {
        match stream.read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return true;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return false,
        }
    }
    false
}

impl Sse {
    /// The value of response header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The next event with data, by `deadline`; `None` at the deadline or
    /// the end of the stream (then `ended` is set).
    pub fn next(&mut self, deadline: Instant) -> Option<SseEvent> {
        loop {
            while let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..end + 2).collect();
                if let Some(event) = self.dispatch(&block[..end]) {
                    return Some(event);
                }
            }
            if !read_some(&mut self.stream, &mut self.buf, deadline) {
                self.ended = Instant::now() < deadline;
                return None;
            }
        }
    }

    fn dispatch(&mut self, block: &[u8]) -> Option<SseEvent> {
        let text = std::str::from_utf8(block).expect("UTF-8 event");
        let (mut event, mut id, mut data) = (None, None, None);
        for line in text.split('\n') {
            if line.starts_with(':') {
                self.comments += 1;
                continue;
            }
            let (field, value) = line.split_once(": ").unwrap_or((line, ""));
            match field {
                "event" => event = Some(value.to_owned()),
                "id" => id = Some(value.to_owned()),
                "data" => {
                    assert!(data.is_none(), "one data line per event: {text}");
                    data = Some(value.to_owned());
                }
                other => panic!("unexpected field {other:?} in {text:?}"),
            }
        }
        if id.is_some() {
            self.last_id = id.clone();
        }
        let data = data?;
        let data: Value = serde_json::from_str(&data).unwrap_or_else(|e| panic!("{e}: {data}"));
        let event = event.expect("every event is named");
        assert_eq!(
            data["type"],
            event.as_str(),
            "event name is the type: {text}"
        );
        Some(SseEvent { event, id, data })
    }

    /// Events until one matches `pred`; returns it and those before it.
    pub fn until(
        &mut self,
        deadline: Instant,
        mut pred: impl FnMut(&SseEvent) -> bool,
    ) -> (SseEvent, Vec<SseEvent>) {
        let mut before = Vec::new();
        loop {
            match self.next(deadline) {
                Some(e) if pred(&e) => return (e, before),
                Some(e) => before.push(e),
                None => panic!(
                    "wanted event not received (ended: {}); last: {:?}",
                    self.ended,
                    before.iter().rev().take(5).collect::<Vec<_>>()
                ),
            }
        }
    }
}
