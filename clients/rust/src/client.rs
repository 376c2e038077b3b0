//! The connection loop: connect with a fresh token, subscribe, read typed
//! messages; on any loss wait a full-jitter backoff, reconnect, resubscribe
//! and resume reliable channels from the last `seq` seen.

use crate::backoff::Backoff;
use crate::message::{Reliable, ServerMessage, Welcome};
use crate::subscription::Subscription;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::collections::{HashMap, VecDeque};
use std::io::ErrorKind;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Connector, Message, WebSocket};

/// How long one read waits before the loop checks its deadline again.
const POLL: Duration = Duration::from_millis(50);

/// Gives the token for each connection attempt, so a refreshed token is
/// used after a reconnect.
pub trait TokenProvider: Send {
    /// The token to connect with.
    fn token(&mut self) -> Result<String, String>;
}

impl<F: FnMut() -> Result<String, String> + Send> TokenProvider for F {
    fn token(&mut self) -> Result<String, String> {
        self()
    }
}

/// A token that never changes.
#[derive(Clone)]
pub struct StaticToken(pub String);

impl TokenProvider for StaticToken {
    fn token(&mut self) -> Result<String, String> {
        Ok(self.0.clone())
    }
}

/// How to reach the server.
#[derive(Debug, Clone)]
pub struct Options {
    /// `ws://host:port/v1/ws`, or `wss://` for TLS (trusting the system's
    /// roots and `ca_file`).
    pub url: String,
    /// A PEM file of extra CA certificates to trust for `wss://` (a private CA).
    pub ca_file: Option<PathBuf>,
    /// Delays between reconnect attempts.
    pub backoff: Backoff,
    /// TCP connect and handshake limit.
    pub connect_timeout: Duration,
}

impl Options {
    /// Defaults for `url`: 100 ms to 10 s backoff, 5 s connect timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Options {
            url: url.into(),
            ca_file: None,
            backoff: Backoff::default(),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// What [`Client::next`] reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Connected (`reconnect`: not the first time) and subscriptions sent.
    Connected {
        /// The server's welcome.
        welcome: Welcome,
        /// Whether this is a reconnect.
        reconnect: bool,
    },
    /// A server message (reliable duplicates already dropped).
    Message {
        /// The message, typed.
        message: ServerMessage,
        /// The frame exactly as received, for logs or recording.
        text: String,
    },
    /// Reliable messages of `channel` after `after` are lost for good: the
    /// next one seen is `next` (`None`: the server's history no longer
    /// covers the resume point and it sent a snapshot instead).
    Gap {
        /// The channel.
        channel: String,
        /// The last `seq` received before the gap.
        after: u64,
        /// The first `seq` received after it.
        next: Option<u64>,
    },
    /// The connection ended or could not be made; the next attempt comes
    /// after `retry_in`.
    Disconnected {
        /// The close code, if the server sent one.
        code: Option<u16>,
        /// What happened.
        reason: String,
        /// The backoff before the next attempt.
        retry_in: Duration,
    },
}

/// A quotecast client that keeps itself connected.
pub struct Client {
    options: Options,
    tokens: Box<dyn TokenProvider>,
    subs: Vec<Subscription>,
    /// Last `seq` per reliable channel.
    last_seq: HashMap<String, u64>,
    ws: Option<Socket>,
    connected_before: bool,
    attempt: u32,
    retry_at: Instant,
    next_id: u64,
    events: VecDeque<Event>,
}

impl Client {
    /// A client for `options`; nothing happens until [`Client::next`].
    pub fn new(options: Options, tokens: impl TokenProvider + 'static) -> Self {
        Client {
            options,
            tokens: Box::new(tokens),
            subs: Vec::new(),
            last_seq: HashMap::new(),
            ws: None,
            connected_before: false,
            attempt: 0,
            retry_at: Instant::now(),
            next_id: 1,
            events: VecDeque::new(),
        }
    }

    /// Adds a subscription: sent now when connected, and after every reconnect.
    pub fn subscribe(&mut self, sub: Subscription) -> Result<(), String> {
        let op = sub.op(self.take_id(), None);
        self.subs.push(sub);
        match &mut self.ws {
            Some(ws) => ws
                .send(Message::text(op.to_string()))
                .map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    /// The last `seq` received on a reliable channel.
    pub fn last_seq(&self, channel: &str) -> Option<u64> {
        self.last_seq.get(channel).copied()
    }

    fn take_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id - 1
    }

    /// The next event, connecting or reconnecting as needed; `None` once
    /// `deadline` passes without one.
    pub fn next(&mut self, deadline: Instant) -> Option<Event> {
        loop {
            if let Some(e) = self.events.pop_front() {
                return Some(e);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            if self.ws.is_none() {
                if now < self.retry_at {
                    std::thread::sleep(self.retry_at.min(deadline) - now);
                    continue;
                }
                self.connect();
                continue;
            }
            self.read_one();
        }
    }

    /// One connection attempt; queues `Connected` or `Disconnected`.
    fn connect(&mut self) {
        match self.open() {
            Ok((ws, welcome)) => {
                self.ws = Some(ws);
                self.attempt = 0;
                let reconnect = std::mem::replace(&mut self.connected_before, true);
                self.events
                    .push_back(Event::Connected { welcome, reconnect });
                if let Err(e) = self.resubscribe() {
                    self.lost(None, format!("resubscribe failed: {e}"));
                }
            }
            Err(reason) => self.lost(None, reason),
        }
    }

    fn open(&mut self) -> Result<(Socket, Welcome), String> {
        let token = self.tokens.token().map_err(|e| format!("no token: {e}"))?;
        let mut req = self
            .options
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| e.to_string())?;
        let bearer = format!("Bearer {token}")
            .parse()
            .map_err(|_| "token is not a header value")?;
        req.headers_mut().insert("Authorization", bearer);
        let host = req.uri().host().ok_or("url without host")?.to_owned();
        let tls = req.uri().scheme_str() == Some("wss");
        let port = req.uri().port_u16().unwrap_or(if tls { 443 } else { 80 });
        let addr = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| format!("resolving {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host} has no address"))?;
        let timeout = self.options.connect_timeout;
        let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        // Kept to shorten the read timeout once connected, under TLS too.
        let tcp = stream.try_clone().map_err(|e| e.to_string())?;
        let connector = match tls {
            true => Connector::Rustls(tls_config(self.options.ca_file.as_deref())?),
            false => Connector::Plain,
        };
        let handshake = tungstenite::client_tls_with_config(req, stream, None, Some(connector));
        let (mut ws, _) = handshake.map_err(|e| match e {
            tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp)) => {
                format!("upgrade refused: {}", resp.status())
            }
            other => format!("handshake failed: {other}"),
        })?;
        let welcome = match ws.read().map_err(|e| e.to_string())? {
            Message::Text(t) => match ServerMessage::parse(t.as_str()) {
                Ok(ServerMessage::Welcome(w)) => w,
                other => return Err(format!("expected a welcome, got {other:?}")),
            },
            other => return Err(format!("expected a welcome, got {other:?}")),
        };
        tcp.set_read_timeout(Some(POLL))
            .map_err(|e| e.to_string())?;
        Ok((ws, welcome))
    }

    /// Sends every subscription again; reliable ones resume after their last `seq`.
    fn resubscribe(&mut self) -> Result<(), String> {
        let ops: Vec<_> = (0..self.subs.len())
            .map(|i| {
                let id = self.take_id();
                let sub = &self.subs[i];
                sub.op(id, self.last_seq.get(sub.channel()).copied())
            })
            .collect();
        let ws = self.ws.as_mut().ok_or("not connected")?;
        for op in ops {
            ws.send(Message::text(op.to_string()))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Reads one frame (or waits one poll interval) and queues what it means.
    fn read_one(&mut self) {
        let Some(ws) = &mut self.ws else { return };
        match ws.read() {
            Ok(Message::Text(t)) => match ServerMessage::parse(t.as_str()) {
                Ok(msg) => self.on_message(msg, t.as_str().to_owned()),
                Err(e) => self.lost(None, format!("unreadable message: {e}")),
            },
            Ok(Message::Close(frame)) => {
                let code = frame.as_ref().map(|f| u16::from(f.code));
                let reason = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                // Let tungstenite answer the close before the socket goes.
                let _ = ws.flush();
                self.lost(code, format!("closed by the server: {reason}"));
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => self.lost(None, e.to_string()),
        }
    }

    fn on_message(&mut self, msg: ServerMessage, text: String) {
        match &msg {
            ServerMessage::Reliable(r) if !self.note_reliable(r) => return,
            ServerMessage::Ack { body, .. } if body["recovered"] == false => {
                let channel = body["channel"].as_str().unwrap_or_default().to_owned();
                if let Some(after) = self.last_seq.get(&channel).copied() {
                    self.events.push_back(Event::Gap {
                        channel: channel.clone(),
                        after,
                        next: None,
                    });
                }
                // The snapshot restarts the stream at the server's last seq.
                if let Some(last) = body["last_seq"].as_u64() {
                    self.last_seq.insert(channel, last);
                }
            }
            _ => {}
        }
        self.events.push_back(Event::Message { message: msg, text });
    }

    /// Records a reliable message's `seq`; false for a duplicate (dropped).
    /// A jump queues a [`Event::Gap`] ahead of the message.
    fn note_reliable(&mut self, r: &Reliable) -> bool {
        match self.last_seq.get(&r.channel).copied() {
            Some(last) if r.seq <= last => return false,
            Some(last) if r.seq > last + 1 => self.events.push_back(Event::Gap {
                channel: r.channel.clone(),
                after: last,
                next: Some(r.seq),
            }),
            _ => {}
        }
        self.last_seq.insert(r.channel.clone(), r.seq);
        true
    }

    /// The connection is gone: schedule the next attempt.
    fn lost(&mut self, code: Option<u16>, reason: String) {
        self.ws = None;
        let retry_in = self.options.backoff.delay(self.attempt, &mut rand::rng());
        self.attempt = self.attempt.saturating_add(1);
        self.retry_at = Instant::now() + retry_in;
        self.events.push_back(Event::Disconnected {
            code,
            reason,
            retry_in,
        });
    }
}

/// A connection, plain or TLS.
type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

/// The TLS client configuration: the system's root certificates and those
/// of `ca_file`.
fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let system = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(system.certs);
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("a certificate of {}: {e}", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(seq: u64) -> (ServerMessage, String) {
        let text = format!(r#"{{"type":"alert","channel":"alerts","seq":{seq}}}"#);
        (ServerMessage::parse(&text).unwrap(), text)
    }

    fn drain(c: &mut Client) -> Vec<Event> {
        c.events.drain(..).collect()
    }

    #[test]
    fn duplicates_are_dropped_and_jumps_reported() {
        let mut c = Client::new(
            Options::new("ws://127.0.0.1:1/v1/ws"),
            StaticToken("t".into()),
        );
        for seq in [1, 2, 2, 1, 5] {
            let (m, t) = alert(seq);
            c.on_message(m, t);
        }
        let events = drain(&mut c);
        let seqs: Vec<Option<u64>> = events
            .iter()
            .map(|e| match e {
                Event::Message {
                    message: ServerMessage::Reliable(r),
                    ..
                } => Some(r.seq),
                _ => None,
            })
            .collect();
        assert_eq!(seqs, [Some(1), Some(2), None, Some(5)]);
        assert_eq!(
            events[2],
            Event::Gap {
                channel: "alerts".into(),
                after: 2,
                next: Some(5)
            }
        );
        assert_eq!(c.last_seq("alerts"), Some(5));
    }

    #[test]
    fn an_unrecovered_resume_is_a_gap_and_restarts_the_stream() {
        let mut c = Client::new(
            Options::new("ws://127.0.0.1:1/v1/ws"),
            StaticToken("t".into()),
        );
        let (m, t) = alert(7);
        c.on_message(m, t);
        let ack = r#"{"type":"ack","id":3,"channel":"alerts","subscribed":true,"since":7,"recovered":false,"last_seq":2}"#;
        c.on_message(ServerMessage::parse(ack).unwrap(), ack.into());
        let events = drain(&mut c);
        assert_eq!(
            events[1],
            Event::Gap {
                channel: "alerts".into(),
                after: 7,
                next: None
            }
        );
        // A restarted server's stream continues from its own last seq.
        let (m, t) = alert(3);
        c.on_message(m, t);
        assert!(matches!(drain(&mut c)[..], [Event::Message { .. }]));
    }

    #[test]
    fn a_refused_connect_schedules_a_jittered_retry() {
        // Port 1 on loopback refuses at once.
        let mut c = Client::new(
            Options::new("ws://127.0.0.1:1/v1/ws"),
            StaticToken("t".into()),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        match c.next(deadline) {
            Some(Event::Disconnected {
                code: None,
                retry_in,
                ..
            }) => {
                assert!(retry_in <= Backoff::default().ceiling(0));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(c.next(deadline), Some(Event::Disconnected { .. })));
        assert_eq!(c.attempt, 2);
    }
}
