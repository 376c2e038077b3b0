//! The feed the harness drives into every server of a comparison: one venue
//! (`LP1`) quoting `symbols` in a seeded random walk, paced to a rate that the
//! ramp can change while it runs. Every quote moves the price, so each quote
//! is one price update for quotecast and for the peers alike.
//!
//! Two sinks: JSON lines over a TCP connection the server makes to us
//! (quotecast's `--replay tcp:HOST:PORT`, the tokio peer's `--feed`), or one
//! HTTP `POST /pub/<symbol>` per update carrying the price message itself
//! (nchan, which relays bodies and has no aggregator).

use crate::pusher;
use crate::stamps::Stamps;
use anyhow::Context;
use quotecast_testkit::server::accept_by;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The one venue of the generated feed.
pub const VENUE: &str = "LP1";

/// Pacing tick: quotes due are sent in one write every tick.
const TICK: Duration = Duration::from_millis(1);

/// `n` symbol names, `S0000` .. .
pub fn symbol_names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("S{i:04}")).collect()
}

/// Where the quotes go.
pub enum Sink {
    /// JSON lines to the first client of this listener.
    Lines(TcpListener),
    /// `POST /pub/<symbol>` to an HTTP server (nchan) over one keep-alive
    /// connection, each request waiting for its response: nginx served
    /// pipelined requests only as new bytes arrived (~1 per packet), and
    /// eight publishers in parallel left nchan idle for seconds on this
    /// machine; one sequential publisher kept up.
    HttpPublish(SocketAddr, Publish),
}

/// How a publish sink's requests look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publish {
    /// nchan: `POST /pub/<symbol>`, one price message per request.
    Nchan,
    /// sockudo: signed Pusher `batch_events`, up to [`pusher::BATCH`] per request.
    Pusher,
}

/// A running feed. Dropping it stops the thread.
pub struct Feed {
    rate: Arc<AtomicU64>,
    sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
    publisher: Option<JoinHandle<anyhow::Result<u64>>>,
    stamps: Arc<Stamps>,
}

impl Feed {
    /// A line sink on a free loopback port; returns it and its address for the
    /// server's command line.
    pub fn line_listener() -> anyhow::Result<(Sink, SocketAddr)> {
        let l = TcpListener::bind("127.0.0.1:0")?;
        let addr = l.local_addr()?;
        Ok((Sink::Lines(l), addr))
    }

    /// Starts sending at `rate` quotes/s. A line sink waits (up to 30 s) for
    /// the server to connect; call it after spawning the server.
    pub fn start(sink: Sink, symbols: Vec<String>, rate: u64, seed: u64) -> anyhow::Result<Feed> {
        let rate = Arc::new(AtomicU64::new(rate));
        let sent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let stamps = Arc::new(Stamps::new(symbols.len()));
        let mut gen = Quotes::new(symbols, seed, stamps.clone());
        let (r, s, st) = (rate.clone(), sent.clone(), stop.clone());
        let (thread, publisher) = match sink {
            Sink::Lines(listener) => {
                let deadline = Instant::now() + Duration::from_secs(30);
                let out = accept_by(&listener, deadline)
                    .context("waiting for the server to connect to the feed")?;
                let t = std::thread::Builder::new()
                    .name("feed".into())
                    .spawn(move || {
                        pace(&r, &s, &st, |due| {
                            let mut buf = String::new();
                            let now = crate::worker::unix_us();
                            for _ in 0..due {
                                gen.next_line(now, &mut buf);
                            }
                            (&out).write_all(buf.as_bytes())
                        })
                    })?;
                (t, None)
            }
            Sink::HttpPublish(addr, kind) => {
                // Bounded: a full queue holds the pacer back, so the achieved
                // rate (reported) shows what the publisher could do.
                let (tx, rx) = sync_channel::<Vec<String>>(1_024);
                let publisher = std::thread::Builder::new()
                    .name("publisher".into())
                    .spawn(move || publish(addr, &rx))?;
                let t = std::thread::Builder::new()
                    .name("feed".into())
                    .spawn(move || {
                        pace(&r, &s, &st, |due| {
                            let now = crate::worker::unix_us();
                            let batch = gen.next_requests(kind, due, now, addr);
                            tx.send(batch).map_err(|_| ErrorKind::BrokenPipe.into())
                        })
                    })?;
                (t, Some(publisher))
            }
        };
        Ok(Feed {
            rate,
            sent,
            stop,
            thread: Some(thread),
            publisher,
            stamps,
        })
    }

    /// Changes the rate from the next tick on.
    pub fn set_rate(&self, rate: u64) {
        self.rate.store(rate, Ordering::Relaxed);
    }

    /// When each quote was generated, for the clients' latency.
    pub fn stamps(&self) -> Arc<Stamps> {
        self.stamps.clone()
    }

    /// Quotes sent so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Stops the feed; returns an error the feed ended with, and the HTTP
    /// publishes answered 2xx (publish sink).
    pub fn stop(&mut self) -> anyhow::Result<Option<u64>> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join()
                .map_err(|_| anyhow::anyhow!("the feed thread panicked"))??;
        }
        match self.publisher.take() {
            None => Ok(None),
            Some(p) => {
                Ok(Some(p.join().map_err(|_| {
                    anyhow::anyhow!("the publisher panicked")
                })??))
            }
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// A keep-alive connection to a publish endpoint.
fn connect_publisher(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let sock = TcpStream::connect(addr).context("connecting the publisher")?;
    sock.set_nodelay(true)?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    Ok(sock)
}

/// Sends each queued request and reads its response before the next,
/// reconnecting after a response that closes the connection (sockudo's
/// HTTP API closes after each); returns the 2xx answers. Ends when the feed
/// drops its queue.
fn publish(addr: SocketAddr, rx: &Receiver<Vec<String>>) -> anyhow::Result<u64> {
    let mut sock = connect_publisher(addr)?;
    let mut buf = Vec::with_capacity(4_096);
    let mut ok = 0;
    for batch in rx.iter() {
        for req in batch {
            sock.write_all(req.as_bytes()).context("publishing")?;
            buf.clear();
            // Bounded: a response is small and the socket has a read timeout.
            let (status, close) = loop {
                if let Some(answer) = response_status(&buf) {
                    break answer;
                }
                let mut chunk = [0u8; 2_048];
                let n = sock
                    .read(&mut chunk)
                    .context("reading a publish response")?;
                anyhow::ensure!(n > 0 && buf.len() < 64 * 1024, "publish connection closed");
                buf.extend_from_slice(&chunk[..n]);
            };
            if (200..300).contains(&status) {
                ok += 1;
            }
            if close {
                sock = connect_publisher(addr)?;
            }
        }
    }
    Ok(ok)
}

/// The status of a complete HTTP response (head and `Content-Length` body,
/// none without one: the connection is kept alive) in `raw`, and whether
/// the server closes the connection after it.
fn response_status(raw: &[u8]) -> Option<(u16, bool)> {
    let head = quotecast_testkit::http::parse_head(raw).ok()??;
    let close = head
        .header("connection")
        .is_some_and(|c| c.eq_ignore_ascii_case("close"));
    (raw.len() >= head.len + head.content_length().unwrap_or(0)).then_some((head.status, close))
}

/// Sends what is due every [`TICK`] through `send` until `stop`.
fn pace(
    rate: &AtomicU64,
    sent: &AtomicU64,
    stop: &AtomicBool,
    mut send: impl FnMut(u64) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let mut owed = 0.0f64;
    let mut last = Instant::now();
    let mut next = last + TICK;
    // Bounded by `stop`, which the owner sets (and sets on drop).
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now < next {
            std::thread::sleep(next - now);
        }
        next += TICK;
        let now = Instant::now();
        let r = rate.load(Ordering::Relaxed) as f64;
        // After a stall, catch up at most 50 ms worth: a burst, not a flood.
        owed = (owed + r * (now - last).as_secs_f64()).min(r * 0.05 + 1.0);
        last = now;
        let due = owed.floor() as u64;
        owed -= due as f64;
        if due == 0 {
            continue;
        }
        match send(due) {
            Ok(()) => {}
            // The server went away (stopped): the feed ends quietly.
            Err(e) if stop.load(Ordering::Relaxed) || e.kind() == ErrorKind::BrokenPipe => {
                return Ok(());
            }
            Err(e) => return Err(e).context("writing the feed"),
        }
        sent.fetch_add(due, Ordering::Relaxed);
    }
    Ok(())
}

/// The seeded quote stream.
struct Quotes {
    symbols: Vec<String>,
    mid: Vec<f64>,
    seq: Vec<u64>,
    rng: StdRng,
    next: usize,
    stamps: Arc<Stamps>,
}

impl Quotes {
    fn new(symbols: Vec<String>, seed: u64, stamps: Arc<Stamps>) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mid = symbols
            .iter()
            .map(|_| rng.random_range(1.0..200.0))
            .collect();
        let seq = vec![0; symbols.len()];
        Quotes {
            symbols,
            mid,
            seq,
            rng,
            next: 0,
            stamps,
        }
    }

    /// The next symbol (round robin: every symbol gets rate / symbols per
    /// second) with a moved mid, stamped as generated at `now_us`; returns
    /// (index, bid, ask).
    fn step(&mut self, now_us: u64) -> (usize, f64, f64) {
        let i = self.next;
        self.next = (self.next + 1) % self.symbols.len();
        let up = self.rng.random_bool(0.5);
        let m = &mut self.mid[i];
        *m *= if up { 1.0001 } else { 0.9999 };
        let half = *m * 0.00005;
        self.seq[i] += 1;
        self.stamps.record(i, self.seq[i], now_us);
        (i, *m - half, *m + half)
    }

    /// One JSON line of the replay format.
    fn next_line(&mut self, now_us: u64, out: &mut String) {
        let (i, bid, ask) = self.step(now_us);
        let _ = writeln!(
            out,
            r#"{{"symbol":"{}","venue":"{VENUE}","bid":{bid:.6},"bid_size":1000000,"ask":{ask:.6},"ask_size":1000000}}"#,
            self.symbols[i]
        );
    }

    /// The price message a client receives for the next quote, stamped
    /// `now_us`; with the symbol's index.
    fn next_price(&mut self, now_us: u64) -> (usize, String) {
        let (i, bid, ask) = self.step(now_us);
        let body = format!(
            r#"{{"type":"price","symbol":"{}","seq":{},"bid":{bid:.6},"bid_size":1000000,"bid_venue":"{VENUE}","ask":{ask:.6},"ask_size":1000000,"ask_venue":"{VENUE}","ts":{}}}"#,
            self.symbols[i], self.seq[i], now_us
        );
        (i, body)
    }

    /// The HTTP requests that publish the next `due` quotes to `addr`.
    fn next_requests(
        &mut self,
        kind: Publish,
        due: u64,
        now_us: u64,
        addr: SocketAddr,
    ) -> Vec<String> {
        let prices: Vec<(usize, String)> = (0..due).map(|_| self.next_price(now_us)).collect();
        match kind {
            Publish::Nchan => prices
                .into_iter()
                .map(|(i, body)| {
                    format!(
                        "POST /pub/{} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        self.symbols[i],
                        body.len()
                    )
                })
                .collect(),
            Publish::Pusher => prices
                .chunks(pusher::BATCH)
                .map(|chunk| {
                    let events: Vec<(&str, String)> = chunk
                        .iter()
                        .map(|(i, body)| (self.symbols[*i].as_str(), body.clone()))
                        .collect();
                    pusher::batch_request(&addr.to_string(), &events, now_us / 1_000_000)
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_replay_quotes_that_always_move() {
        let stamps = Arc::new(Stamps::new(2));
        let mut q = Quotes::new(symbol_names(2), 7, stamps.clone());
        let mut s = String::new();
        for t in 0..4 {
            q.next_line(1_000 + t, &mut s);
        }
        let lines: Vec<serde_json::Value> = s
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["symbol"], "S0000");
        assert_eq!(lines[1]["symbol"], "S0001");
        assert_eq!(lines[0]["venue"], VENUE);
        assert_ne!(lines[0]["bid"], lines[2]["bid"]);
        assert!(lines[0]["bid"].as_f64() < lines[0]["ask"].as_f64());
        // Line 3 is the second quote of S0000: seq 2, stamped 1_002.
        assert_eq!(stamps.lookup(0, 2), Some(1_002));
        assert_eq!(stamps.lookup(1, 1), Some(1_001));
    }

    #[test]
    fn publish_carries_a_price_the_client_decodes() {
        let mut q = Quotes::new(symbol_names(1), 7, Arc::new(Stamps::new(1)));
        let addr = SocketAddr::from(([127, 0, 0, 1], 80));
        let requests = q.next_requests(Publish::Nchan, 1, 1_763_769_600_123_456, addr);
        let [s] = requests.as_slice() else {
            panic!("one request per quote: {requests:?}");
        };
        assert!(s.starts_with("POST /pub/S0000 HTTP/1.1\r\n"));
        let body = &s[s.find("\r\n\r\n").unwrap() + 4..];
        let len: usize = s
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(body.len(), len);
        assert_eq!(
            crate::decode::classify(body.as_bytes()),
            crate::decode::Kind::Price
        );
        assert_eq!(crate::decode::price_fields(body.as_bytes()).unwrap().seq, 1);
        assert_eq!(
            response_status(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok"),
            Some((202, false))
        );
        assert_eq!(
            response_status(b"HTTP/1.1 200 OK\r\nconnection: close\r\nContent-Length: 2\r\n\r\n{}"),
            Some((200, true))
        );
        assert_eq!(
            response_status(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\no"),
            None
        );
    }

    #[test]
    fn pusher_publishes_batch_quotes() {
        let mut q = Quotes::new(symbol_names(3), 7, Arc::new(Stamps::new(3)));
        let addr = SocketAddr::from(([127, 0, 0, 1], 80));
        let requests = q.next_requests(Publish::Pusher, 250, 1_763_769_600_123_456, addr);
        assert_eq!(
            requests.len(),
            3,
            "250 quotes in batches of {}",
            pusher::BATCH
        );
        assert!(requests[0].starts_with("POST /apps/bench/batch_events?auth_key="));
        assert_eq!(requests[2].matches(r#""name":"price""#).count(), 50);
    }

    #[test]
    fn paced_feed_sends_about_its_rate() {
        let (sink, addr) = Feed::line_listener().unwrap();
        let client = std::thread::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            let mut all = Vec::new();
            s.read_to_end(&mut all).unwrap();
            all.iter().filter(|&&b| b == b'\n').count() as u64
        });
        let mut feed = Feed::start(sink, symbol_names(10), 2_000, 1).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        feed.stop().unwrap();
        let sent = feed.sent();
        drop(feed);
        let got = client.join().unwrap();
        assert_eq!(got, sent);
        assert!((700..=1_300).contains(&sent), "{sent}");
    }
}
