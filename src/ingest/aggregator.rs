//! Venue quotes → best bid/ask per symbol, with `seq` and `ts` → shard rings.
//!
//! One thread owns the [`BestPriceBook`] and every ring producer, so the book
//! needs no locks and `seq` is assigned in one place: deterministic for a
//! given input stream, which lets several nodes publish the same `seq`.
//! Publishing never blocks on a slow shard: a full ring turns into a
//! per-symbol "latest pending value" slot, which is conflation, not queueing.

use super::book::BestPriceBook;
use super::keyed::KeyedSequencer;
use super::outputs::ShardOut;
use super::publish::Publication;
use super::ring::{RingProducer, Update};
use super::sequencer::Sequencer;
use super::stats::AggregatorStats;
use crate::clock::now_us;
use crate::config::{FeedConfig, IngestConfig};
use crate::feed::Feed;
use crate::model::channel::Catalogue;
use crate::model::event::Event;
use crate::model::quote::{BestPrice, VenueQuote};
use crate::model::symbol::Universe;
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How long one feed poll may wait: bounds how late `stop`, stale-venue
/// sweeps, publications and values parked on a full ring are seen to. Not
/// shorter: each wake-up is a context switch that may preempt a shard on its
/// core, and an idle feed wakes the aggregator once per wait (500 times a
/// second); a feed that sends every millisecond never outwaits it.
const POLL_WAIT: Duration = Duration::from_millis(2);
/// Upper bound on the stale-venue sweep interval.
const MAX_SWEEP_US: u64 = 100_000;

/// The aggregator: book, shard rings and counters, driven by [`Aggregator::run`]
/// on its own thread (or step by step in tests).
pub struct Aggregator {
    book: BestPriceBook,
    shards: Vec<ShardOut>,
    stats: Arc<AggregatorStats>,
    catalogue: Arc<Catalogue>,
    sequencer: Sequencer,
    keyed: KeyedSequencer,
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
            keyed: KeyedSequencer::default(),
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
            self.forward(event, now_us);
        }
        self.sync_stats();
    }

    /// Forwards a publication's events like [`Aggregator::on_events`],
    /// records the `seq`s given in its receipt, and sends every shard the
    /// barrier that tells the receipt when the shard has applied it all.
    pub fn on_publication(&mut self, publication: Publication, now_us: u64) {
        let Publication { events, receipt } = publication;
        for event in events {
            if let Some(Update::Reliable(msg)) = self.forward(event, now_us) {
                receipt.record(&msg.key, msg.seq);
            }
        }
        for shard in &mut self.shards {
            shard.send_event(Update::Published(receipt.clone()));
        }
        self.sync_stats();
    }

    /// Sequences a reliable event, then sends the event to every shard;
    /// `None` for a copy of a reliable message already forwarded.
    fn forward(&mut self, event: Event, now_us: u64) -> Option<Update> {
        let update = match event {
            Event::Metric(m) => Update::Metric(Arc::new(m)),
            Event::Reliable(r) => match self.sequencer.stamp(r, &self.catalogue, now_us) {
                Some(msg) => Update::Reliable(Arc::new(msg)),
                // The bus delivered it again (a consumer recreated after a gap).
                None => return None,
            },
            Event::Keyed(k) => {
                Update::Keyed(Arc::new(self.keyed.stamp(k, &self.catalogue, now_us)))
            }
        };
        for shard in &mut self.shards {
            shard.send_event(update.clone());
        }
        self.events += 1;
        Some(update)
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

    /// Wakes the shards that sleep with records waiting: once per batch,
    /// after everything in it is pushed.
    fn ring_bells(&self) {
        for shard in &self.shards {
            shard.ring.ring_bell();
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
        published: Receiver<Publication>,
        stop: &AtomicBool,
        busy_poll: bool,
    ) {
        let wait = if busy_poll { Duration::ZERO } else { POLL_WAIT };
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
                std::thread::sleep(POLL_WAIT);
            }
            let now = now_us();
            self.on_quotes(&buf, now);
            if feed_alive {
                feed.poll_events(&mut events);
            }
            if !events.is_empty() {
                self.on_events(events.drain(..), now);
            }
            while let Ok(publication) = published.try_recv() {
                self.on_publication(publication, now);
            }
            if now.saturating_sub(last_sweep) >= self.sweep_us {
                self.expire(now);
                last_sweep = now;
            }
            self.ring_bells();
        }
        tracing::info!(published = self.published, "aggregator stopped");
    }
}

/// Starts the aggregator on a thread named `aggregator`, pinned to
/// `placement.aggregator_core` when given (keep it off the shards' cores),
/// spinning on the feed with `busy_poll`. Returns the spawn error rather
/// than panicking.
pub fn spawn(
    agg: Aggregator,
    feed: Box<dyn Feed>,
    published: Receiver<Publication>,
    stop: Arc<AtomicBool>,
    placement: &IngestConfig,
) -> io::Result<JoinHandle<()>> {
    let (pin_core, busy_poll) = (placement.aggregator_core, placement.busy_poll);
    std::thread::Builder::new()
        .name("aggregator".into())
        .spawn(move || {
            if let Some(id) = pin_core {
                if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
                    tracing::warn!(core = id, "could not pin the aggregator thread");
                }
            }
            agg.run(feed, published, &stop, busy_poll)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::book::tests::quote;
    use crate::ingest::ring::{shard_rings, RingConsumer};

    fn drain(rx: &mut RingConsumer) -> Vec<BestPrice> {
        std::iter::from_fn(|| rx.records.pop().ok())
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

    // One story, kept whole: a real feed and a publication through the
    // thread, then the prices, the alerts and the receipt it produced.
    #[test]
    fn spawned_thread_publishes_and_stops() {
        publishes_and_stops(&IngestConfig::default());
    }

    #[test]
    fn busy_polling_thread_publishes_and_stops() {
        let last_core = core_affinity::get_core_ids().map_or(0, |c| c.len().saturating_sub(1));
        publishes_and_stops(&IngestConfig {
            aggregator_core: Some(last_core),
            busy_poll: true,
        });
    }

    fn publishes_and_stops(placement: &IngestConfig) {
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
        let (tx, published) = std::sync::mpsc::channel();
        let publisher = crate::ingest::publish::Publisher::new(tx, 1);
        let handle = spawn(agg, feed, published, stop.clone(), placement).unwrap();
        let alert = serde_json::json!({"channel":"alerts","tenant":"t1",
            "data":{"level":"info","kind":"k","message":"m"}});
        let rules = crate::model::event::EventRules {
            now_us: now_us(),
            max_future_us: 0,
            may_broadcast: false,
        };
        let event = crate::model::event::parse_event(&alert, &catalogue, rules).unwrap();
        let receipt = publisher.publish(vec![event.clone(), event]).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let (mut prices, mut alerts) = (Vec::new(), Vec::new());
        while (prices.len() < 10 || alerts.len() < 2) && std::time::Instant::now() < deadline {
            while let Ok(u) = rx[0].records.pop() {
                match u {
                    Update::Price(bp) => prices.push(bp),
                    Update::Reliable(m) => alerts.push(m.seq),
                    Update::Published(r) => r.shard_applied(),
                    Update::Metric(_) | Update::Keyed(_) => {}
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
        let ranges: Vec<_> = receipt
            .sequenced()
            .iter()
            .map(|s| (s.first, s.last))
            .collect();
        assert_eq!(ranges, [(1, 2)], "the receipt says which seqs were given");
    }
}
