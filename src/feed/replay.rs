//! Venue quotes as JSON lines, from a file or from a TCP peer we connect to.
//!
//! One line per quote:
//! `{"symbol":"EURUSD","venue":"LP1","bid":1.0841,"bid_size":1000000,"ask":1.0842,"ask_size":500000}`
//! with an optional `"ts"` (microseconds since the UNIX epoch; receive time
//! when absent). Unknown fields are ignored so producers can add some.
//!
//! A line with a `"channel"` field is an event instead, in the shape of
//! `POST /v1/publish` (a metric event, an alert, a session change or a
//! notification), validated by [`event::parse_event`] the same way.
//!
//! A background thread reads and parses, so a slow or silent peer never
//! blocks the aggregator; a bounded channel pushes back on the reader instead
//! of buffering without limit. Bad lines are counted and logged (at most once
//! a second) and never stop the feed. At end of input the feed stays idle.

use super::Feed;
use crate::clock::now_us;
use crate::model::channel::Catalogue;
use crate::model::event::{self, Event, EventRules};
use crate::model::quote::VenueQuote;
use crate::model::reliable::Stamp;
use crate::model::symbol::Universe;
use serde::Deserialize;
use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest accepted line; longer ones are skipped so a peer that never sends
/// a newline cannot grow our memory.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Quotes parsed but not yet polled; beyond this the reader waits.
const CHANNEL_CAPACITY: usize = 65_536;

/// Most quotes one poll hands over, bounding the aggregator's batch.
const MAX_BATCH: usize = 8_192;

/// Shortest time between two batches of a busy feed: about 4,000 wake-ups a
/// second at most for a feed whose lines are evenly spaced (one per gap, or
/// one per line of a sparser feed), while a sparse feed's line is taken as
/// it comes. A feed of short bursts further apart than this can cost up to
/// three wake-ups a burst (first line, second line, an empty spaced poll).
const BATCH_GAP: Duration = Duration::from_micros(250);

/// Why a line was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineError {
    /// Not JSON, or not the quote shape (missing field, wrong type, NaN token).
    BadJson,
    /// The symbol is not in this node's universe.
    UnknownSymbol,
    /// The venue is not in this node's universe.
    UnknownVenue,
    /// A price or size is infinite (e.g. `1e999`).
    NonFinite,
    /// Longer than [`MAX_LINE_BYTES`].
    TooLong,
    /// An event line that [`event::parse_event`] refused.
    BadEvent,
    /// A reliable event where a bus feed expects only metric and keyed
    /// ones: reliable messages reach a bus through its reliable stream,
    /// which numbers them.
    UnnumberedReliable,
}

/// What the replay reader has seen; readable from any thread.
#[derive(Debug, Default)]
pub struct ReplayStats {
    /// Non-empty lines read.
    pub lines: AtomicU64,
    /// Lines turned into quotes.
    pub quotes: AtomicU64,
    /// Lines that were not valid quote JSON.
    pub bad_json: AtomicU64,
    /// Lines naming a symbol outside the universe.
    pub unknown_symbol: AtomicU64,
    /// Lines naming a venue outside the universe.
    pub unknown_venue: AtomicU64,
    /// Lines with an infinite price or size.
    pub non_finite: AtomicU64,
    /// Lines over [`MAX_LINE_BYTES`].
    pub too_long: AtomicU64,
    /// Lines turned into events.
    pub events: AtomicU64,
    /// Event lines refused by validation.
    pub bad_event: AtomicU64,
}

impl ReplayStats {
    /// Every dropped line, whatever the reason.
    pub fn errors(&self) -> u64 {
        [
            &self.bad_json,
            &self.unknown_symbol,
            &self.unknown_venue,
            &self.non_finite,
            &self.too_long,
            &self.bad_event,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }

    fn count(&self, err: LineError) {
        let counter = match err {
            LineError::BadJson => &self.bad_json,
            LineError::UnknownSymbol => &self.unknown_symbol,
            LineError::UnknownVenue => &self.unknown_venue,
            LineError::NonFinite => &self.non_finite,
            LineError::TooLong => &self.too_long,
            LineError::BadEvent | LineError::UnnumberedReliable => &self.bad_event,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    symbol: Cow<'a, str>,
    #[serde(borrow)]
    venue: Cow<'a, str>,
    bid: f64,
    bid_size: f64,
    ask: f64,
    ask_size: f64,
    ts: Option<u64>,
}

/// Parses one line; `receive_us` stamps quotes without a `ts`. Range checks
/// (bid <= ask, positive prices) are the aggregator's, which counts them.
pub fn parse_line(
    line: &[u8],
    universe: &Universe,
    receive_us: u64,
) -> Result<VenueQuote, LineError> {
    let l: Line = serde_json::from_slice(line).map_err(|_| LineError::BadJson)?;
    let symbol = universe
        .symbol_id(&l.symbol)
        .ok_or(LineError::UnknownSymbol)?;
    let venue = universe.venue_id(&l.venue).ok_or(LineError::UnknownVenue)?;
    if ![l.bid, l.bid_size, l.ask, l.ask_size]
        .iter()
        .all(|x| x.is_finite())
    {
        return Err(LineError::NonFinite);
    }
    Ok(VenueQuote {
        symbol,
        venue,
        bid: l.bid,
        bid_size: l.bid_size,
        ask: l.ask,
        ask_size: l.ask_size,
        ts_us: l.ts.unwrap_or(receive_us),
    })
}

/// What event lines are checked against.
#[derive(Clone, Debug)]
pub struct EventInput {
    /// The channels events may name.
    pub catalogue: Arc<Catalogue>,
    /// How far in the future a metric event's `ts` may be.
    pub max_future_us: u64,
}

/// One good line.
#[derive(Debug, PartialEq)]
pub enum Input {
    /// A venue quote.
    Quote(VenueQuote),
    /// A metric or reliable event.
    Event(Event),
}

/// Parses a quote or, when the line names a `channel`, an event; both are
/// stamped `receive_us` when they carry no `ts`.
pub fn parse_input(
    line: &[u8],
    universe: &Universe,
    events: &EventInput,
    receive_us: u64,
) -> Result<Input, LineError> {
    // Quotes never name a channel: only event lines pay for a generic parse.
    if line.windows(9).any(|w| w == b"\"channel\"") {
        let value: serde_json::Value =
            serde_json::from_slice(line).map_err(|_| LineError::BadJson)?;
        if value.get("channel").is_some() {
            let rules = EventRules {
                now_us: receive_us,
                max_future_us: events.max_future_us,
                // The feed seam is trusted like an ADMIN publisher.
                may_broadcast: true,
            };
            return event::parse_event(&value, &events.catalogue, rules)
                .map(Input::Event)
                .map_err(|_| LineError::BadEvent);
        }
    }
    parse_line(line, universe, receive_us).map(Input::Quote)
}

enum Msg {
    Line(Input),
    End,
    Failed(io::Error),
}

/// The replay feed: quotes and events parsed by the reader thread since the
/// last poll.
pub struct Replay {
    rx: Receiver<Msg>,
    /// Events taken with the quotes of the last poll, for `poll_events`.
    events: Vec<Event>,
    stats: Arc<ReplayStats>,
    /// Kept to unblock the reader with a shutdown when the feed is dropped.
    tcp: Option<TcpStream>,
    /// The bus connection, when the lines come from NATS.
    pub(super) bus: Option<Arc<super::nats::BusState>>,
    finished: bool,
    /// When the last poll took lines.
    last_batch: Instant,
    /// Lines come faster than one per `BATCH_GAP`: polls are spaced.
    busy: bool,
}

impl Replay {
    /// Opens `source`: `tcp:HOST:PORT` connects (and fails now if refused),
    /// anything else is a file path.
    pub fn open(source: &str, universe: Arc<Universe>, events: EventInput) -> io::Result<Replay> {
        match source.strip_prefix("tcp:") {
            Some(addr) => {
                let stream = TcpStream::connect(addr)?;
                // Best effort: a latency knob, not a correctness one.
                let _ = stream.set_nodelay(true);
                let keep = stream.try_clone()?;
                tracing::info!(%addr, "replay feed connected");
                let mut feed = Replay::from_reader(stream, universe, events, source.to_string())?;
                feed.tcp = Some(keep);
                Ok(feed)
            }
            None => {
                let file = File::open(source)
                    .map_err(|e| io::Error::new(e.kind(), format!("replay file {source}: {e}")))?;
                Replay::from_reader(file, universe, events, source.to_string())
            }
        }
    }

    /// Replays any byte stream of JSON lines (tests, stdin, pipes).
    pub fn from_reader<R: Read + Send + 'static>(
        reader: R,
        universe: Arc<Universe>,
        events: EventInput,
        name: String,
    ) -> io::Result<Replay> {
        Replay::spawn_reader("replay-reader", name, universe, events, move |lines| {
            read_lines(BufReader::with_capacity(64 * 1024, reader), lines)
        })
    }

    /// A feed whose input comes from `read`, run on a thread named `thread`:
    /// it hands every line or message to its [`Lines`], which parses,
    /// counts and passes it on to the aggregator.
    pub(super) fn spawn_reader(
        thread: &str,
        source: String,
        universe: Arc<Universe>,
        events: EventInput,
        read: impl FnOnce(Lines) + Send + 'static,
    ) -> io::Result<Replay> {
        let (tx, rx) = sync_channel(CHANNEL_CAPACITY);
        let stats = Arc::new(ReplayStats::default());
        let lines = Lines {
            universe,
            events,
            stats: stats.clone(),
            tx,
            limit: WarnLimit {
                last: None,
                suppressed: 0,
            },
            source,
        };
        std::thread::Builder::new()
            .name(thread.into())
            .spawn(move || read(lines))?;
        Ok(Replay {
            rx,
            events: Vec::new(),
            stats,
            tcp: None,
            bus: None,
            finished: false,
            last_batch: Instant::now(),
            busy: false,
        })
    }

    #[cfg(test)]
    /// The reader's counters, for the status page and tests.
    pub fn stats(&self) -> Arc<ReplayStats> {
        self.stats.clone()
    }

    fn take(&mut self, msg: Msg, out: &mut Vec<VenueQuote>) -> io::Result<()> {
        match msg {
            Msg::Line(Input::Quote(q)) => out.push(q),
            Msg::Line(Input::Event(e)) => self.events.push(e),
            Msg::End => self.finished = true,
            Msg::Failed(e) => {
                self.finished = true;
                return Err(e);
            }
        }
        Ok(())
    }

    /// The next line, waited for up to `max_wait`. A sparse feed (lines
    /// further apart than `BATCH_GAP`) is waited for, so a line goes on as
    /// soon as it comes. A busy one is taken at most once per `BATCH_GAP`,
    /// in batches, until a spaced poll finds nothing: a receiver blocked on
    /// the channel is woken by every line the reader sends (tens of
    /// thousands of context switches a second, on whichever core it shares,
    /// often a shard's).
    fn wait_for_line(&mut self, max_wait: Duration) -> Result<Msg, TryRecvError> {
        if self.busy {
            let gap_left = (self.last_batch + BATCH_GAP).saturating_duration_since(Instant::now());
            std::thread::sleep(gap_left.min(max_wait));
            match self.rx.try_recv() {
                Ok(msg) => return Ok(msg),
                Err(_) => self.busy = false,
            }
        }
        self.rx.recv_timeout(max_wait).map_err(|e| match e {
            RecvTimeoutError::Timeout => TryRecvError::Empty,
            RecvTimeoutError::Disconnected => TryRecvError::Disconnected,
        })
    }
}

impl Feed for Replay {
    fn poll(&mut self, out: &mut Vec<VenueQuote>, max_wait: Duration) -> io::Result<()> {
        if self.finished {
            std::thread::sleep(max_wait);
            return Ok(());
        }
        let first = match self.rx.try_recv() {
            Err(TryRecvError::Empty) if !max_wait.is_zero() => self.wait_for_line(max_wait),
            other => other,
        };
        if first.is_ok() {
            let now = Instant::now();
            self.busy |= now - self.last_batch < BATCH_GAP;
            self.last_batch = now;
        }
        match first {
            Ok(msg) => self.take(msg, out)?,
            Err(TryRecvError::Empty) => return Ok(()),
            Err(TryRecvError::Disconnected) => {
                self.finished = true;
                return Ok(());
            }
        }
        for _ in 1..MAX_BATCH {
            match self.rx.try_recv() {
                Ok(msg) => self.take(msg, out)?,
                Err(_) => break,
            }
        }
        Ok(())
    }

    fn poll_events(&mut self, out: &mut Vec<Event>) {
        out.append(&mut self.events);
    }

    fn input_errors(&self) -> u64 {
        self.stats.errors()
    }

    fn bus(&self) -> Option<Arc<super::nats::BusState>> {
        self.bus.clone()
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        // Wakes a reader blocked on a silent peer; a reader blocked on the
        // channel wakes because the receiver is gone.
        if let Some(tcp) = &self.tcp {
            let _ = tcp.shutdown(Shutdown::Both);
        }
    }
}

/// Logs dropped lines at most once a second, with how many were suppressed.
struct WarnLimit {
    last: Option<Instant>,
    suppressed: u64,
}

impl WarnLimit {
    fn warn(&mut self, source: &str, err: LineError, line: &[u8]) {
        if self
            .last
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            self.suppressed += 1;
            return;
        }
        let shown = String::from_utf8_lossy(&line[..line.len().min(200)]);
        tracing::warn!(
            source,
            ?err,
            line = %shown,
            suppressed = self.suppressed,
            "replay line dropped"
        );
        self.last = Some(Instant::now());
        self.suppressed = 0;
    }
}

/// The receiving end of a reader thread: parses each line or message,
/// counts it, logs a dropped one (at most once a second) and hands good
/// input to the feed.
pub(super) struct Lines {
    universe: Arc<Universe>,
    events: EventInput,
    stats: Arc<ReplayStats>,
    tx: SyncSender<Msg>,
    limit: WarnLimit,
    source: String,
}

impl Lines {
    /// Takes one line or message (surrounding whitespace ignored, empty
    /// ones skipped); false when the feed is gone and reading should stop.
    pub(super) fn push(&mut self, line: &[u8]) -> bool {
        match self.parse(line) {
            Some(result) => self.count(result, line),
            None => true,
        }
    }

    /// Parses a line; `None` when it is empty.
    fn parse(&self, line: &[u8]) -> Option<Result<Input, LineError>> {
        let text = line.trim_ascii();
        if text.is_empty() {
            return None;
        }
        Some(if text.len() > MAX_LINE_BYTES {
            Err(LineError::TooLong)
        } else {
            parse_input(text, &self.universe, &self.events, now_us())
        })
    }

    /// Takes one message from a bus: a reliable event numbered `stamp` by
    /// its reliable stream, or (`None`) a quote, metric or keyed event.
    pub(super) fn push_stored(&mut self, message: &[u8], stamp: Option<Stamp>) -> bool {
        let result = match (self.parse(message), stamp) {
            (Some(Ok(Input::Event(Event::Reliable(mut r)))), Some(stamp)) => {
                r.stamp = Some(stamp);
                Ok(Input::Event(Event::Reliable(r)))
            }
            (Some(Ok(Input::Event(Event::Reliable(_)))), None) => {
                Err(LineError::UnnumberedReliable)
            }
            (Some(Ok(_)), Some(_)) => Err(LineError::BadEvent),
            (Some(result), _) => result,
            (None, _) => return true,
        };
        self.count(result, message)
    }

    /// Counts an over-long line whose rest was skipped.
    fn too_long(&mut self, head: &[u8]) -> bool {
        self.count(Err(LineError::TooLong), head)
    }

    fn count(&mut self, result: Result<Input, LineError>, line: &[u8]) -> bool {
        self.stats.lines.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(input) => {
                let counter = match input {
                    Input::Quote(_) => &self.stats.quotes,
                    Input::Event(_) => &self.stats.events,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                self.tx.send(Msg::Line(input)).is_ok()
            }
            Err(err) => {
                self.stats.count(err);
                self.limit.warn(&self.source, err, line);
                true
            }
        }
    }

    /// The input ended (`Ok`) or failed for good: says so and tells the feed.
    pub(super) fn finish(self, end: io::Result<()>) {
        let end = match end {
            Ok(()) => Msg::End,
            Err(e) => Msg::Failed(e),
        };
        log_end(&end, &self.stats, &self.source);
        let _ = self.tx.send(end);
    }
}

fn read_lines<R: BufRead>(mut reader: R, mut lines: Lines) {
    let mut line = Vec::with_capacity(1024);
    let end = loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line);
        let n = match read {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) => break Err(e),
        };
        let more = if n > MAX_LINE_BYTES && line.last() != Some(&b'\n') {
            if let Err(e) = skip_line(&mut reader) {
                break Err(e);
            }
            lines.too_long(&line)
        } else {
            lines.push(&line)
        };
        if !more {
            return; // the feed was dropped
        }
    };
    lines.finish(end);
}

/// Says why the input stopped: an error, or its end after so many lines.
fn log_end(end: &Msg, stats: &ReplayStats, source: &str) {
    match end {
        Msg::Failed(e) => tracing::error!(source, error = %e, "replay feed failed"),
        _ => tracing::info!(
            source,
            lines = stats.lines.load(Ordering::Relaxed),
            "replay input ended; feed idle"
        ),
    }
}

/// Discards the rest of an over-long line.
fn skip_line<R: BufRead>(reader: &mut R) -> io::Result<()> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                reader.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::symbol::{SymbolId, VenueId};
    use std::io::Write;
    use std::net::TcpListener;

    fn universe() -> Arc<Universe> {
        Arc::new(Universe::new(
            vec!["EURUSD".into(), "USDJPY".into()],
            vec!["LP1".into(), "LP2".into()],
        ))
    }

    fn events() -> EventInput {
        let channels = crate::config::ChannelsConfig::default();
        EventInput {
            catalogue: Arc::new(Catalogue::new(&channels).unwrap()),
            max_future_us: 60_000_000,
        }
    }

    const GOOD: &str = r#"{"symbol":"EURUSD","venue":"LP2","bid":1.0841,"bid_size":1000000,"ask":1.0842,"ask_size":500000}"#;

    #[test]
    fn parses_good_lines() {
        let u = universe();
        let q = parse_line(GOOD.as_bytes(), &u, 77).unwrap();
        assert_eq!(
            q,
            VenueQuote {
                symbol: SymbolId(0),
                venue: VenueId(1),
                bid: 1.0841,
                bid_size: 1e6,
                ask: 1.0842,
                ask_size: 5e5,
                ts_us: 77,
            }
        );
        let with_ts = r#"{"symbol":"USDJPY","venue":"LP1","bid":150.1,"bid_size":1,"ask":150.2,"ask_size":2,"ts":1700000000000000,"extra":true}"#;
        let q = parse_line(with_ts.as_bytes(), &u, 77).unwrap();
        assert_eq!((q.symbol, q.ts_us), (SymbolId(1), 1_700_000_000_000_000));
    }

    #[test]
    fn rejects_bad_lines_by_reason() {
        let u = universe();
        let cases = [
            (r#"{"symbol":"EURUSD","#, LineError::BadJson),
            ("not json", LineError::BadJson),
            (
                r#"{"symbol":"EURUSD","venue":"LP1","bid":"x","bid_size":1,"ask":1,"ask_size":1}"#,
                LineError::BadJson,
            ),
            (
                r#"{"symbol":"EURUSD","venue":"LP1","bid":NaN,"bid_size":1,"ask":1,"ask_size":1}"#,
                LineError::BadJson,
            ),
            (
                r#"{"symbol":"EURUSD","venue":"LP1","bid":1e999,"bid_size":1,"ask":1,"ask_size":1}"#,
                LineError::BadJson,
            ),
            (
                r#"{"symbol":"XXXYYY","venue":"LP1","bid":1,"bid_size":1,"ask":1,"ask_size":1}"#,
                LineError::UnknownSymbol,
            ),
            (
                r#"{"symbol":"EURUSD","venue":"LP9","bid":1,"bid_size":1,"ask":1,"ask_size":1}"#,
                LineError::UnknownVenue,
            ),
        ];
        for (line, want) in cases {
            assert_eq!(parse_line(line.as_bytes(), &u, 0), Err(want), "{line}");
        }
    }

    fn poll_until(feed: &mut Replay, out: &mut Vec<VenueQuote>, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while out.len() < n && Instant::now() < deadline {
            feed.poll(out, Duration::from_millis(10)).unwrap();
        }
    }

    #[test]
    fn file_is_read_to_the_end_then_idle() {
        let path =
            std::env::temp_dir().join(format!("quotecast-replay-{}.jsonl", std::process::id()));
        let long = format!("{{\"symbol\":\"{}\"}}", "A".repeat(MAX_LINE_BYTES));
        let body = format!("{GOOD}\n\nnot json\n{long}\n{GOOD}\r\n{{\"symbol\":\"EURUSD\"");
        std::fs::write(&path, body).unwrap();
        let mut feed = Replay::open(path.to_str().unwrap(), universe(), events()).unwrap();
        let stats = feed.stats();
        let mut out = Vec::new();
        poll_until(&mut feed, &mut out, 2);
        // Drain to the end marker, then polls stay Ok and empty.
        for _ in 0..5 {
            feed.poll(&mut out, Duration::from_millis(5)).unwrap();
        }
        let _ = std::fs::remove_file(&path);
        assert_eq!(out.len(), 2);
        assert_eq!(stats.lines.load(Ordering::Relaxed), 5);
        assert_eq!(stats.bad_json.load(Ordering::Relaxed), 2);
        assert_eq!(stats.too_long.load(Ordering::Relaxed), 1);
        assert_eq!(feed.input_errors(), 3);
        assert!(feed.finished);
    }

    #[test]
    fn missing_file_is_an_open_error() {
        assert!(Replay::open("/nonexistent/quotecast.jsonl", universe(), events()).is_err());
    }

    #[test]
    fn tcp_source_is_connected_to_and_idles_after_eof() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut feed = Replay::open(&format!("tcp:{addr}"), universe(), events()).unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        writeln!(peer, "{GOOD}").unwrap();
        writeln!(peer, "{}", GOOD.replace("EURUSD", "NOPE")).unwrap();
        writeln!(peer, "{}", GOOD.replace("LP2", "LP1")).unwrap();
        peer.flush().unwrap();
        let mut out = Vec::new();
        poll_until(&mut feed, &mut out, 2);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].venue, VenueId(0));
        assert_eq!(feed.stats().unknown_symbol.load(Ordering::Relaxed), 1);
        drop(peer);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !feed.finished && Instant::now() < deadline {
            feed.poll(&mut out, Duration::from_millis(10)).unwrap();
        }
        assert!(feed.finished);
        feed.poll(&mut out, Duration::ZERO).unwrap();
        assert_eq!(out.len(), 2);
    }

    const ALERT: &str = r#"{"channel":"alerts","tenant":"t1","data":{"level":"warning","kind":"risk_limit","message":"FX1 at 82%","current":82,"threshold":80}}"#;
    const METRIC: &str = r#"{"channel":"metrics.trading","tenant":"t1","ts":100000000,"dims":{"book":"FX1"},"values":{"trade_count":1,"trade_volume":250000}}"#;

    #[test]
    fn event_lines_are_validated_like_publish() {
        let (u, ev) = (universe(), events());
        let Ok(Input::Event(Event::Reliable(alert))) = parse_input(ALERT.as_bytes(), &u, &ev, 7)
        else {
            panic!("alert line refused")
        };
        assert_eq!(
            (&*alert.tenant, alert.data["current"].as_u64()),
            ("t1", Some(82))
        );
        let Ok(Input::Event(Event::Metric(m))) =
            parse_input(METRIC.as_bytes(), &u, &ev, 50_000_000)
        else {
            panic!("metric line refused")
        };
        assert_eq!((m.ts_us, m.values.len()), (100_000_000, 2));
        let no_ts = METRIC.replace(r#""ts":100000000,"#, "");
        match parse_input(no_ts.as_bytes(), &u, &ev, 7) {
            Ok(Input::Event(Event::Metric(m))) => assert_eq!(m.ts_us, 7, "receive time"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_input(GOOD.as_bytes(), &u, &ev, 7),
            Ok(Input::Quote(_))
        ));
        let cases = [
            // ts more than the largest window (60 s here) ahead of receive time.
            (METRIC.to_owned(), 39_999_999, LineError::BadEvent),
            (
                METRIC.replace("trade_count", "bogus"),
                7,
                LineError::BadEvent,
            ),
            (
                METRIC.replace("metrics.trading", "metrics.nope"),
                7,
                LineError::BadEvent,
            ),
            (ALERT.replace("warning", "loud"), 7, LineError::BadEvent),
            (
                ALERT.replace(r#""tenant":"t1","#, ""),
                7,
                LineError::BadEvent,
            ),
            (ALERT[..40].to_owned(), 7, LineError::BadJson),
        ];
        for (line, receive_us, want) in cases {
            assert_eq!(
                parse_input(line.as_bytes(), &u, &ev, receive_us).map(|_| ()),
                Err(want),
                "{line}"
            );
        }
    }

    #[test]
    fn events_come_out_of_poll_events_and_bad_ones_are_counted() {
        let bad = ALERT.replace("warning", "loud");
        let body = format!("{GOOD}\n{ALERT}\n{bad}\n{METRIC}\n{GOOD}\n");
        let mut feed = Replay::from_reader(
            std::io::Cursor::new(body.into_bytes()),
            universe(),
            events(),
            "test".into(),
        )
        .unwrap();
        let (mut quotes, mut got) = (Vec::new(), Vec::new());
        let deadline = Instant::now() + Duration::from_secs(5);
        while !feed.finished && Instant::now() < deadline {
            feed.poll(&mut quotes, Duration::from_millis(10)).unwrap();
            feed.poll_events(&mut got);
        }
        assert_eq!(quotes.len(), 2);
        assert!(
            matches!(got.as_slice(), [Event::Reliable(_), Event::Metric(_)]),
            "{got:?}"
        );
        let stats = feed.stats();
        assert_eq!(stats.events.load(Ordering::Relaxed), 2);
        assert_eq!(stats.bad_event.load(Ordering::Relaxed), 1);
        assert_eq!(feed.input_errors(), 1);
    }
}
