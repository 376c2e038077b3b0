//! Venue quotes → best bid/ask per symbol, with `seq` and `ts` → shard rings.
//!
//! One thread owns the [`BestPriceBook`] and every ring producer, so the book
//! needs no locks and `seq` is assigned in one place: deterministic for a
//! given input stream, which lets several nodes publish the same `seq`.
//! Publishing never blocks on a slow shard: a full ring turns into a
//! per-symbol "latest pending value" slot, which is conflation, not queueing.

use crate::channel::Catalogue;
use crate::config::FeedConfig;
use crate::event::Event;
use crate::feed::{now_us, Feed, VenueQuote};
use crate::reliable::Sequencer;
use crate::ring::{BestPrice, RingProducer, Update};
use crate::symbol::{SymbolId, Universe, VenueId};
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How long one feed poll may wait when nothing is pending: bounds how late
/// `stop` and stale-venue sweeps are noticed.
const POLL_WAIT: Duration = Duration::from_millis(1);
/// Shorter wait while a ring is full, so pending values go out soon.
const PENDING_WAIT: Duration = Duration::from_micros(200);
/// Upper bound on the stale-venue sweep interval.
const MAX_SWEEP_US: u64 = 100_000;

/// A venue's latest accepted quote for one symbol.
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    bid: f64,
    bid_size: f64,
    ask: f64,
    ask_size: f64,
    /// When the aggregator received it; liveness is judged on our clock, not
    /// the venue's, so venue clock skew or old replayed `ts` cannot hide a venue.
    received_us: u64,
    present: bool,
}

/// Best bid/ask across venues for every symbol; pure, no I/O or clock.
///
/// Ties on price go to the larger size, then to the lower venue id, so the
/// result does not depend on arrival order. A crossed book across venues
/// (venue A's bid above venue B's ask) is published as-is: it is real market
/// information (an arbitrage or a stale venue), not a data error. A single
/// venue quoting bid > ask, or a non-finite or non-positive price, or a
/// negative or non-finite size, is rejected, counted, and leaves the book as
/// it was (that venue's previous quote still ages out normally).
#[derive(Debug, Clone)]
pub struct BestPriceBook {
    venues: usize,
    max_age_us: u64,
    /// `symbol * venues + venue`.
    slots: Vec<Slot>,
    /// Last published value per symbol: change detection and the `seq` base.
    last: Vec<Option<BestPrice>>,
    rejected: u64,
}

struct Best {
    bid: f64,
    bid_size: f64,
    bid_venue: VenueId,
    ask: f64,
    ask_size: f64,
    ask_venue: VenueId,
}

impl BestPriceBook {
    /// An empty book; a venue quote older than `venue_max_age` stops counting.
    pub fn new(symbols: usize, venues: usize, venue_max_age: Duration) -> Self {
        BestPriceBook {
            venues,
            max_age_us: venue_max_age.as_micros().min(u128::from(u64::MAX)) as u64,
            slots: vec![Slot::default(); symbols * venues],
            last: vec![None; symbols],
            rejected: 0,
        }
    }

    /// Folds in one venue quote received at `now_us`; returns the new best
    /// price when any of best bid/ask, their sizes or venues changed.
    pub fn on_quote(&mut self, q: &VenueQuote, now_us: u64) -> Option<BestPrice> {
        let (s, v) = (q.symbol.0 as usize, q.venue.0 as usize);
        if s >= self.last.len() || v >= self.venues || !is_sane(q) {
            self.rejected += 1;
            return None;
        }
        self.slots[s * self.venues + v] = Slot {
            bid: q.bid,
            bid_size: q.bid_size,
            ask: q.ask,
            ask_size: q.ask_size,
            received_us: now_us,
            present: true,
        };
        self.publish_if_changed(s, now_us)
    }

    /// Re-evaluates symbols whose published best venue has aged out, so a
    /// silent venue stops being "best" even if the symbol gets no new quote.
    /// Linear in the number of symbols; call it every few milliseconds.
    pub fn expire(&mut self, now_us: u64, out: &mut Vec<BestPrice>) {
        for s in 0..self.last.len() {
            let Some(last) = self.last[s] else { continue };
            if self.is_live(s, last.bid_venue, now_us) && self.is_live(s, last.ask_venue, now_us) {
                continue;
            }
            if let Some(bp) = self.publish_if_changed(s, now_us) {
                out.push(bp);
            }
        }
    }

    /// Venue quotes rejected as malformed or outside the universe.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// The last value published for `symbol`.
    pub fn last(&self, symbol: SymbolId) -> Option<&BestPrice> {
        self.last.get(symbol.0 as usize)?.as_ref()
    }

    fn is_live(&self, s: usize, v: VenueId, now_us: u64) -> bool {
        let slot = &self.slots[s * self.venues + v.0 as usize];
        slot.present && now_us.saturating_sub(slot.received_us) <= self.max_age_us
    }

    fn best(&self, s: usize, now_us: u64) -> Option<Best> {
        let mut bid: Option<(f64, f64, usize)> = None;
        let mut ask: Option<(f64, f64, usize)> = None;
        let row = &self.slots[s * self.venues..(s + 1) * self.venues];
        // Ascending venue order + strict comparisons = lower venue id wins a full tie.
        for (v, slot) in row.iter().enumerate() {
            if !slot.present || now_us.saturating_sub(slot.received_us) > self.max_age_us {
                continue;
            }
            if bid.is_none_or(|(p, sz, _)| slot.bid > p || (slot.bid == p && slot.bid_size > sz)) {
                bid = Some((slot.bid, slot.bid_size, v));
            }
            if ask.is_none_or(|(p, sz, _)| slot.ask < p || (slot.ask == p && slot.ask_size > sz)) {
                ask = Some((slot.ask, slot.ask_size, v));
            }
        }
        let ((bid, bid_size, bv), (ask, ask_size, av)) = (bid?, ask?);
        Some(Best {
            bid,
            bid_size,
            bid_venue: VenueId(bv as u16),
            ask,
            ask_size,
            ask_venue: VenueId(av as u16),
        })
    }

    fn publish_if_changed(&mut self, s: usize, now_us: u64) -> Option<BestPrice> {
        let b = self.best(s, now_us)?;
        let last = self.last[s];
        if let Some(l) = &last {
            if l.bid == b.bid
                && l.bid_size == b.bid_size
                && l.bid_venue == b.bid_venue
                && l.ask == b.ask
                && l.ask_size == b.ask_size
                && l.ask_venue == b.ask_venue
            {
                return None;
            }
        }
        let bp = BestPrice {
            symbol: SymbolId(s as u32),
            seq: last.map_or(1, |l| l.seq + 1),
            ts_us: now_us,
            bid: b.bid,
            bid_size: b.bid_size,
            bid_venue: b.bid_venue,
            ask: b.ask,
            ask_size: b.ask_size,
            ask_venue: b.ask_venue,
        };
        self.last[s] = Some(bp);
        Some(bp)
    }
}

fn is_sane(q: &VenueQuote) -> bool {
    let price_ok = |p: f64| p.is_finite() && p > 0.0;
    let size_ok = |s: f64| s.is_finite() && s >= 0.0;
    price_ok(q.bid)
        && price_ok(q.ask)
        && q.bid <= q.ask
        && size_ok(q.bid_size)
        && size_ok(q.ask_size)
}

/// Aggregator counters, written by the aggregator thread only and readable
/// from any thread (status page, tests).
#[derive(Debug, Default)]
pub struct AggregatorStats {
    /// Venue quotes received from the feed.
    pub quotes: AtomicU64,
    /// Best prices published (each goes to every shard).
    pub published: AtomicU64,
    /// Venue quotes rejected as malformed.
    pub rejected: AtomicU64,
    /// Values that found a shard ring full and were parked as pending.
    pub overruns: AtomicU64,
    /// Pending values replaced by a newer one for the same symbol before delivery.
    pub overrun_dropped: AtomicU64,
    /// Values currently parked across all shards.
    pub pending: AtomicU64,
    /// Times the feed failed for good.
    pub feed_errors: AtomicU64,
    /// Malformed input the feed itself dropped (e.g. bad replay lines).
    pub feed_input_errors: AtomicU64,
    /// Metric and reliable events forwarded to the shards.
    pub events: AtomicU64,
    /// When the last accepted venue quote arrived (UNIX µs; the aggregator's
    /// start until the first one, 0 before it runs): shards judge feed
    /// staleness from it.
    pub last_quote_us: AtomicU64,
}

/// A plain copy of [`AggregatorStats`] at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AggregatorSnapshot {
    /// See [`AggregatorStats::quotes`].
    pub quotes: u64,
    /// See [`AggregatorStats::published`].
    pub published: u64,
    /// See [`AggregatorStats::rejected`].
    pub rejected: u64,
    /// See [`AggregatorStats::overruns`].
    pub overruns: u64,
    /// See [`AggregatorStats::overrun_dropped`].
    pub overrun_dropped: u64,
    /// See [`AggregatorStats::pending`].
    pub pending: u64,
    /// See [`AggregatorStats::feed_errors`].
    pub feed_errors: u64,
    /// See [`AggregatorStats::feed_input_errors`].
    pub feed_input_errors: u64,
    /// See [`AggregatorStats::events`].
    pub events: u64,
    /// See [`AggregatorStats::last_quote_us`].
    pub last_quote_us: u64,
}

impl AggregatorStats {
    /// Reads every counter (each individually consistent, not as a set).
    pub fn snapshot(&self) -> AggregatorSnapshot {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        AggregatorSnapshot {
            quotes: r(&self.quotes),
            published: r(&self.published),
            rejected: r(&self.rejected),
            overruns: r(&self.overruns),
            overrun_dropped: r(&self.overrun_dropped),
            pending: r(&self.pending),
            feed_errors: r(&self.feed_errors),
            feed_input_errors: r(&self.feed_input_errors),
            events: r(&self.events),
            last_quote_us: r(&self.last_quote_us),
        }
    }
}

/// One shard's ring plus what did not fit in it yet.
struct ShardOut {
    ring: RingProducer,
    /// Events that found the ring full, in order: never dropped, never merged.
    backlog: VecDeque<Update>,
    /// Latest undelivered value per symbol.
    pending: Vec<Option<BestPrice>>,
    /// Symbols with a pending value, oldest first; each at most once, so it
    /// never grows past the symbol count (capacity reserved up front).
    order: VecDeque<u32>,
}

impl ShardOut {
    /// Pushes backlogged events, then pending values oldest first; true
    /// when none is left.
    fn flush(&mut self) -> bool {
        while let Some(update) = self.backlog.pop_front() {
            if let Err(rtrb::PushError::Full(update)) = self.ring.push(update) {
                self.backlog.push_front(update);
                return false;
            }
        }
        while let Some(&s) = self.order.front() {
            if let Some(bp) = self.pending[s as usize] {
                if self.ring.push(Update::Price(bp)).is_err() {
                    return false;
                }
                self.pending[s as usize] = None;
            }
            self.order.pop_front();
        }
        true
    }

    /// Sends `bp` or parks it; returns (parked, replaced an older pending value).
    fn send(&mut self, bp: BestPrice) -> (bool, bool) {
        // Only push directly when nothing is parked: a parked older value of
        // the same symbol must never be overtaken.
        if self.flush() && self.ring.push(Update::Price(bp)).is_ok() {
            return (false, false);
        }
        let slot = &mut self.pending[bp.symbol.0 as usize];
        let replaced = slot.is_some();
        if !replaced {
            self.order.push_back(bp.symbol.0);
        }
        *slot = Some(bp);
        (true, replaced)
    }

    /// Sends an event, behind any backlog so events keep their order.
    fn send_event(&mut self, update: Update) {
        if !self.backlog.is_empty() {
            self.flush();
        }
        if !self.backlog.is_empty() {
            self.backlog.push_back(update);
        } else if let Err(rtrb::PushError::Full(update)) = self.ring.push(update) {
            self.backlog.push_back(update);
        }
    }
}

/// The aggregator: book, shard rings and counters, driven by [`Aggregator::run`]
/// on its own thread (or step by step in tests).
pub struct Aggregator {
    book: BestPriceBook,
    shards: Vec<ShardOut>,
    stats: Arc<AggregatorStats>,
    catalogue: Arc<Catalogue>,
    sequencer: Sequencer,
    events: u64,
    expired: Vec<BestPrice>,
    sweep_us: u64,
    quotes: u64,
    published: u64,
    overruns: u64,
    overrun_dropped: u64,
}

impl Aggregator {
    /// An aggregator publishing to one ring per shard.
    pub fn new(
        universe: &Universe,
        cfg: &FeedConfig,
        catalogue: Arc<Catalogue>,
        producers: Vec<RingProducer>,
        stats: Arc<AggregatorStats>,
    ) -> Self {
        let symbols = universe.symbol_count();
        let max_age = Duration::from_millis(cfg.venue_max_age_ms);
        let shards = producers
            .into_iter()
            .map(|ring| ShardOut {
                ring,
                backlog: VecDeque::new(),
                pending: vec![None; symbols],
                order: VecDeque::with_capacity(symbols),
            })
            .collect();
        Aggregator {
            book: BestPriceBook::new(symbols, universe.venue_count(), max_age),
            shards,
            stats,
            catalogue,
            sequencer: Sequencer::default(),
            events: 0,
            expired: Vec::with_capacity(symbols),
            // A tenth of the max age keeps staleness precise to ~10%.
            sweep_us: (cfg.venue_max_age_ms.saturating_mul(100)).clamp(1_000, MAX_SWEEP_US),
            quotes: 0,
            published: 0,
            overruns: 0,
            overrun_dropped: 0,
        }
    }

    /// Folds in a batch received at `now_us` and publishes what changed,
    /// after first retrying values parked on full rings.
    pub fn on_quotes(&mut self, quotes: &[VenueQuote], now_us: u64) {
        self.retry_pending();
        let mut fresh = false;
        for q in quotes {
            let rejected = self.book.rejected();
            let best = self.book.on_quote(q, now_us);
            // Only sane quotes keep the feed fresh (a venue sending garbage is
            // a stall), and the time is stored before the price goes out, so
            // a shard that sees the price also sees the feed fresh.
            if !fresh && self.book.rejected() == rejected {
                fresh = true;
                self.stats.last_quote_us.store(now_us, Ordering::Relaxed);
            }
            if let Some(bp) = best {
                self.publish(bp);
            }
        }
        self.quotes += quotes.len() as u64;
        self.sync_stats();
    }

    /// Forwards metric events and sequences reliable ones (in the order
    /// given), sending each to every shard; nothing is dropped.
    pub fn on_events(&mut self, events: impl IntoIterator<Item = Event>, now_us: u64) {
        for event in events {
            let update = match event {
                Event::Metric(m) => Update::Metric(Arc::new(m)),
                Event::Reliable(r) => {
                    Update::Reliable(Arc::new(self.sequencer.stamp(r, &self.catalogue, now_us)))
                }
            };
            for shard in &mut self.shards {
                shard.send_event(update.clone());
            }
            self.events += 1;
        }
        self.sync_stats();
    }

    /// Drops venues that aged out of the best price and publishes the result.
    pub fn expire(&mut self, now_us: u64) {
        self.retry_pending();
        let mut expired = std::mem::take(&mut self.expired);
        expired.clear();
        self.book.expire(now_us, &mut expired);
        for bp in &expired {
            self.publish(*bp);
        }
        self.expired = expired;
        self.sync_stats();
    }

    /// Pushes parked values to rings that have room again.
    pub fn retry_pending(&mut self) {
        for shard in &mut self.shards {
            if !shard.order.is_empty() || !shard.backlog.is_empty() {
                shard.flush();
            }
        }
    }

    /// Values and events parked across all shards.
    pub fn pending(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.order.len() + s.backlog.len())
            .sum()
    }

    fn publish(&mut self, bp: BestPrice) {
        self.published += 1;
        for shard in &mut self.shards {
            let (parked, replaced) = shard.send(bp);
            self.overruns += u64::from(parked);
            self.overrun_dropped += u64::from(replaced);
        }
    }

    fn sync_stats(&self) {
        // Single writer: plain stores of our running totals.
        let s = &self.stats;
        s.quotes.store(self.quotes, Ordering::Relaxed);
        s.published.store(self.published, Ordering::Relaxed);
        s.rejected.store(self.book.rejected(), Ordering::Relaxed);
        s.overruns.store(self.overruns, Ordering::Relaxed);
        s.overrun_dropped
            .store(self.overrun_dropped, Ordering::Relaxed);
        s.pending.store(self.pending() as u64, Ordering::Relaxed);
        s.events.store(self.events, Ordering::Relaxed);
    }

    /// Polls `feed` and the `published` events (`POST /v1/publish`) and
    /// publishes until `stop` is set. A failed feed is logged and the loop
    /// idles, so shards, clients and publishing stay up.
    pub fn run(
        mut self,
        mut feed: Box<dyn Feed>,
        published: Receiver<Vec<Event>>,
        stop: &AtomicBool,
    ) {
        let mut buf: Vec<VenueQuote> = Vec::with_capacity(4096);
        let mut events: Vec<Event> = Vec::new();
        let mut feed_alive = true;
        let mut last_sweep = now_us();
        self.stats
            .last_quote_us
            .store(last_sweep, Ordering::Relaxed);
        tracing::info!(shards = self.shards.len(), "aggregator running");
        while !stop.load(Ordering::Relaxed) {
            buf.clear();
            let wait = if self.pending() > 0 {
                PENDING_WAIT
            } else {
                POLL_WAIT
            };
            if feed_alive {
                if let Err(e) = feed.poll(&mut buf, wait) {
                    tracing::error!(error = %e, "feed failed; aggregator idle");
                    feed_alive = false;
                    self.stats.feed_errors.fetch_add(1, Ordering::Relaxed);
                }
                self.stats
                    .feed_input_errors
                    .store(feed.input_errors(), Ordering::Relaxed);
            } else {
                std::thread::sleep(wait);
            }
            let now = now_us();
            self.on_quotes(&buf, now);
            if feed_alive {
                feed.poll_events(&mut events);
            }
            while let Ok(batch) = published.try_recv() {
                events.extend(batch);
            }
            if !events.is_empty() {
                self.on_events(events.drain(..), now);
            }
            if now.saturating_sub(last_sweep) >= self.sweep_us {
                self.expire(now);
                last_sweep = now;
            }
        }
        tracing::info!(published = self.published, "aggregator stopped");
    }
}

/// Starts the aggregator on a thread named `aggregator`, pinned to
/// `pin_core` when given (keep it off the shards' cores). Returns the spawn
/// error rather than panicking.
pub fn spawn(
    agg: Aggregator,
    feed: Box<dyn Feed>,
    published: Receiver<Vec<Event>>,
    stop: Arc<AtomicBool>,
    pin_core: Option<usize>,
) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("aggregator".into())
        .spawn(move || {
            if let Some(id) = pin_core {
                if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
                    tracing::warn!(core = id, "could not pin the aggregator thread");
                }
            }
            agg.run(feed, published, &stop)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::{shard_rings, RingConsumer};

    const AGE: Duration = Duration::from_millis(100);

    fn quote(s: u32, v: u16, bid: f64, bid_size: f64, ask: f64, ask_size: f64) -> VenueQuote {
        VenueQuote {
            symbol: SymbolId(s),
            venue: VenueId(v),
            bid,
            bid_size,
            ask,
            ask_size,
            ts_us: 0,
        }
    }

    #[test]
    fn best_across_venues_with_ties() {
        let mut book = BestPriceBook::new(1, 4, AGE);
        book.on_quote(&quote(0, 2, 1.0, 5.0, 1.2, 5.0), 10).unwrap();
        // Same prices, larger size wins.
        let bp = book.on_quote(&quote(0, 3, 1.0, 9.0, 1.2, 9.0), 10).unwrap();
        assert_eq!((bp.bid_venue, bp.ask_venue), (VenueId(3), VenueId(3)));
        // Full tie: lower venue id wins.
        let bp = book.on_quote(&quote(0, 1, 1.0, 9.0, 1.2, 9.0), 10).unwrap();
        assert_eq!((bp.bid_venue, bp.ask_venue), (VenueId(1), VenueId(1)));
        // Better price beats size; sides can come from different venues.
        let bp = book.on_quote(&quote(0, 0, 1.1, 1.0, 1.3, 1.0), 10).unwrap();
        assert_eq!((bp.bid, bp.bid_size, bp.bid_venue), (1.1, 1.0, VenueId(0)));
        assert_eq!((bp.ask, bp.ask_venue), (1.2, VenueId(1)));
        assert_eq!(bp.ts_us, 10);
    }

    #[test]
    fn seq_increases_and_unchanged_best_is_not_published() {
        let mut book = BestPriceBook::new(2, 2, AGE);
        let a = book.on_quote(&quote(0, 0, 1.0, 1.0, 2.0, 1.0), 1).unwrap();
        assert_eq!(a.seq, 1);
        // A worse venue does not change the best: nothing to publish.
        assert_eq!(book.on_quote(&quote(0, 1, 0.9, 1.0, 2.1, 1.0), 2), None);
        // Same quote again: nothing either.
        assert_eq!(book.on_quote(&quote(0, 0, 1.0, 1.0, 2.0, 1.0), 3), None);
        let b = book.on_quote(&quote(0, 0, 1.0, 2.0, 2.0, 1.0), 4).unwrap();
        let c = book.on_quote(&quote(0, 1, 1.5, 1.0, 2.1, 1.0), 5).unwrap();
        assert_eq!((b.seq, c.seq), (2, 3));
        // Per symbol: another symbol starts at 1.
        assert_eq!(
            book.on_quote(&quote(1, 0, 1.0, 1.0, 2.0, 1.0), 6)
                .unwrap()
                .seq,
            1
        );
        assert_eq!(book.last(SymbolId(0)), Some(&c));
    }

    #[test]
    fn malformed_venue_quotes_are_rejected_and_counted() {
        let mut book = BestPriceBook::new(1, 1, AGE);
        let bad = [
            quote(0, 0, 1.2, 1.0, 1.1, 1.0), // crossed within one venue
            quote(0, 0, f64::NAN, 1.0, 1.1, 1.0),
            quote(0, 0, 1.0, 1.0, f64::INFINITY, 1.0),
            quote(0, 0, 0.0, 1.0, 1.1, 1.0),
            quote(0, 0, -1.0, 1.0, 1.1, 1.0),
            quote(0, 0, 1.0, -1.0, 1.1, 1.0),
            quote(0, 0, 1.0, 1.0, 1.1, f64::NAN),
            quote(5, 0, 1.0, 1.0, 1.1, 1.0), // unknown symbol
            quote(0, 7, 1.0, 1.0, 1.1, 1.0), // unknown venue
        ];
        for q in &bad {
            assert_eq!(book.on_quote(q, 1), None, "{q:?}");
        }
        assert_eq!(book.rejected(), bad.len() as u64);
        // A locked quote (bid == ask) and a zero size are accepted.
        assert!(book.on_quote(&quote(0, 0, 1.1, 0.0, 1.1, 1.0), 1).is_some());
    }

    #[test]
    fn crossed_book_across_venues_is_published() {
        let mut book = BestPriceBook::new(1, 2, AGE);
        book.on_quote(&quote(0, 0, 1.10, 1.0, 1.11, 1.0), 1)
            .unwrap();
        let bp = book
            .on_quote(&quote(0, 1, 1.08, 1.0, 1.09, 1.0), 1)
            .unwrap();
        assert!(bp.bid > bp.ask);
        assert_eq!((bp.bid_venue, bp.ask_venue), (VenueId(0), VenueId(1)));
    }

    #[test]
    fn stale_venues_stop_counting() {
        let age = AGE.as_micros() as u64;
        let mut book = BestPriceBook::new(1, 2, AGE);
        book.on_quote(&quote(0, 0, 1.10, 1.0, 1.12, 1.0), 0)
            .unwrap();
        book.on_quote(&quote(0, 1, 1.09, 1.0, 1.13, 1.0), 50_000);
        // On the next quote after venue 0 aged out, venue 1 is best.
        let bp = book
            .on_quote(&quote(0, 1, 1.09, 2.0, 1.13, 2.0), age + 1)
            .unwrap();
        assert_eq!(
            (bp.bid, bp.bid_venue, bp.ask, bp.ask_venue),
            (1.09, VenueId(1), 1.13, VenueId(1))
        );

        // Without a new quote, the sweep does the same.
        let mut book = BestPriceBook::new(1, 2, AGE);
        book.on_quote(&quote(0, 0, 1.10, 1.0, 1.12, 1.0), 0)
            .unwrap();
        book.on_quote(&quote(0, 1, 1.09, 1.0, 1.13, 1.0), 50_000);
        let mut out = Vec::new();
        book.expire(age, &mut out);
        assert!(out.is_empty(), "still live at exactly max age");
        book.expire(age + 1, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].bid_venue, out[0].seq), (VenueId(1), 2));
        // Every venue stale: no side, nothing published.
        out.clear();
        book.expire(10 * age, &mut out);
        assert!(out.is_empty());
        assert_eq!(
            book.on_quote(&quote(0, 0, 1.0, 1.0, 1.1, 1.0), 10 * age)
                .unwrap()
                .seq,
            3
        );
    }

    fn drain(rx: &mut RingConsumer) -> Vec<BestPrice> {
        std::iter::from_fn(|| rx.pop().ok())
            .map(|u| {
                let Update::Price(bp) = u else {
                    panic!("unexpected {u:?}")
                };
                bp
            })
            .collect()
    }

    #[test]
    fn full_ring_keeps_latest_value_and_delivers_in_order() {
        let universe = Universe::new(vec!["A".into(), "B".into()], vec!["LP1".into()]);
        let (tx, mut rx) = shard_rings(2, 2);
        let stats = Arc::new(AggregatorStats::default());
        let catalogue = Arc::new(Catalogue::new(&Default::default()).unwrap());
        let mut agg = Aggregator::new(
            &universe,
            &FeedConfig::default(),
            catalogue,
            tx,
            stats.clone(),
        );
        let q = |s, bid: f64| quote(s, 0, bid, 1.0, bid + 1.0, 1.0);
        // Ring holds 2; values 3 and 4 of symbol A park, 4 replacing 3.
        agg.on_quotes(&[q(0, 1.0), q(0, 2.0), q(0, 3.0), q(0, 4.0), q(1, 9.0)], 1);
        let s = stats.snapshot();
        assert_eq!((s.quotes, s.published, s.pending), (5, 5, 4));
        assert_eq!((s.overruns, s.overrun_dropped), (6, 2));

        // Shard 0 drains: A's latest goes first, then B.
        let first = drain(&mut rx[0]);
        assert_eq!(first.iter().map(|b| b.seq).collect::<Vec<_>>(), [1, 2]);
        agg.on_quotes(&[], 2);
        let mut second = drain(&mut rx[0]);
        agg.retry_pending();
        second.extend(drain(&mut rx[0]));
        let got: Vec<_> = second.iter().map(|b| (b.symbol.0, b.seq, b.bid)).collect();
        assert_eq!(got, [(0, 4, 4.0), (1, 1, 9.0)]);
        assert_eq!(agg.pending(), 2, "shard 1 still parked");

        // New values for a parked symbol never overtake the parked one.
        agg.on_quotes(&[q(0, 5.0)], 3);
        let mut all = drain(&mut rx[1]);
        agg.retry_pending();
        all.extend(drain(&mut rx[1]));
        agg.retry_pending();
        all.extend(drain(&mut rx[1]));
        let a: Vec<_> = all
            .iter()
            .filter(|b| b.symbol.0 == 0)
            .map(|b| b.seq)
            .collect();
        assert_eq!(a, [1, 2, 5]);
        assert!(all.iter().any(|b| b.symbol.0 == 1 && b.seq == 1));
        assert_eq!(agg.pending(), 0);
    }

    #[test]
    fn spawned_thread_publishes_and_stops() {
        let cfg = FeedConfig {
            sim_symbols: 5,
            sim_venues: 3,
            sim_rate: 20_000,
            // Only the alerts published below reach the reliable streams.
            sim_events_rate: 0,
            ..FeedConfig::default()
        };
        let universe = Arc::new(crate::feed::universe(&cfg));
        let catalogue = Arc::new(Catalogue::new(&Default::default()).unwrap());
        let config = crate::config::Config {
            feed: cfg.clone(),
            ..Default::default()
        };
        let feed = crate::feed::open(&config, universe.clone(), catalogue.clone()).unwrap();
        let (tx, mut rx) = shard_rings(1, 1024);
        let stats = Arc::new(AggregatorStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let agg = Aggregator::new(&universe, &cfg, catalogue.clone(), tx, stats.clone());
        let (publisher, published) = std::sync::mpsc::channel();
        let handle = spawn(agg, feed, published, stop.clone(), None).unwrap();
        let alert = serde_json::json!({"channel":"alerts","tenant":"t1",
            "data":{"level":"info","kind":"k","message":"m"}});
        let rules = crate::event::EventRules {
            now_us: now_us(),
            max_future_us: 0,
        };
        let event = crate::event::parse_event(&alert, &catalogue, rules).unwrap();
        publisher.send(vec![event.clone(), event]).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let (mut prices, mut alerts) = (Vec::new(), Vec::new());
        while (prices.len() < 10 || alerts.len() < 2) && std::time::Instant::now() < deadline {
            while let Ok(u) = rx[0].pop() {
                match u {
                    Update::Price(bp) => prices.push(bp),
                    Update::Reliable(m) => alerts.push(m.seq),
                    Update::Metric(_) => {}
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        stop.store(true, Ordering::Relaxed);
        handle.join().unwrap();
        assert!(prices.len() >= 10, "{}", prices.len());
        assert!(prices.iter().all(|b| b.bid <= b.ask));
        assert_eq!(
            alerts,
            vec![1, 2],
            "published events arrive sequenced, in order"
        );
        assert!(stats.snapshot().quotes > 0);
    }
}
