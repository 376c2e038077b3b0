//! The built-in venue simulator, the server's default feed.
//!
//! Each symbol has one mid price following a seeded, weakly mean-reverting
//! random walk; each venue quotes around that shared mid with its own spread,
//! so venues differ. The walk never leaves any venue's standing quote, so
//! every venue brackets the mid and the best bid across venues never exceeds
//! the best ask. Updates are
//! spread over symbols Zipf-like (s = 1): a few hot symbols take most of the
//! rate, as in real markets. The quote sequence depends only on the seed and
//! the universe; the wall clock only decides how many quotes are due.
//!
//! Alongside the quotes, [`desk`] simulates a few tenants' trading desks at
//! the simulated mids: the analytics and reliable events of `poll_events`.

use super::Feed;
use crate::clock::now_us;
use crate::config::FeedConfig;
use crate::model::channel::Catalogue;
use crate::model::event::Event;
use crate::model::quote::VenueQuote;
use crate::model::symbol::{SymbolId, Universe, VenueId};
use desk::{Desks, Traded, TRADED_SYMBOLS};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io;
use std::time::{Duration, Instant};

mod book;
mod desk;
mod keyed;

/// How a simulated instrument trades.
struct Instrument {
    name: &'static str,
    /// Starting mid price.
    mid: f64,
    /// Price decimals: the tick is 10^-decimals.
    decimals: u32,
    /// Tightest half spread, in ticks.
    half_spread: u32,
    /// Largest random-walk step per quote, in ticks.
    step: u32,
    /// Quote size unit (a round lot).
    lot: f64,
}

const fn fx(name: &'static str, mid: f64, decimals: u32) -> Instrument {
    inst(name, mid, decimals, 3, 1, 1_000_000.0)
}

const fn inst(
    name: &'static str,
    mid: f64,
    decimals: u32,
    half_spread: u32,
    step: u32,
    lot: f64,
) -> Instrument {
    Instrument {
        name,
        mid,
        decimals,
        half_spread,
        step,
        lot,
    }
}

/// Realistic instruments, most traded first so the Zipf skew makes them hot.
const INSTRUMENTS: &[Instrument] = &[
    fx("EURUSD", 1.0850, 5),
    fx("GBPUSD", 1.2700, 5),
    fx("USDJPY", 150.20, 3),
    fx("USDCHF", 0.8800, 5),
    fx("AUDUSD", 0.6600, 5),
    fx("USDCAD", 1.3600, 5),
    fx("NZDUSD", 0.6100, 5),
    fx("EURGBP", 0.8550, 5),
    fx("EURJPY", 162.90, 3),
    fx("GBPJPY", 190.70, 3),
    inst("XAUUSD", 2400.00, 2, 15, 5, 100.0),
    inst("BTCUSD", 60000.00, 2, 500, 100, 1.0),
    inst("ETHUSD", 3000.00, 2, 50, 10, 10.0),
    inst("XAGUSD", 30.000, 3, 10, 2, 5_000.0),
    fx("EURCHF", 0.9550, 5),
    fx("AUDJPY", 99.10, 3),
    fx("EURAUD", 1.6450, 5),
    fx("EURCAD", 1.4750, 5),
    fx("GBPCHF", 1.1200, 5),
    fx("CADJPY", 110.40, 3),
    fx("CHFJPY", 170.60, 3),
    fx("AUDNZD", 1.0820, 5),
    fx("AUDCAD", 0.8980, 5),
    fx("GBPAUD", 1.9250, 5),
    fx("GBPCAD", 1.7300, 5),
    fx("NZDJPY", 91.50, 3),
    inst("SOLUSD", 150.00, 2, 5, 2, 100.0),
    inst("XRPUSD", 0.5000, 4, 2, 1, 10_000.0),
    inst("BNBUSD", 580.00, 2, 10, 3, 10.0),
    inst("ADAUSD", 0.4500, 4, 2, 1, 10_000.0),
    inst("DOGEUSD", 0.15000, 5, 5, 2, 100_000.0),
    inst("LTCUSD", 80.00, 2, 3, 1, 100.0),
    inst("XPTUSD", 1000.00, 2, 50, 10, 50.0),
    inst("XPDUSD", 1000.00, 2, 80, 15, 50.0),
    inst("US500", 5300.0, 1, 3, 1, 10.0),
    inst("NAS100", 18500.0, 1, 10, 3, 10.0),
    inst("US30", 39000.0, 1, 15, 5, 10.0),
    inst("GER40", 18500.0, 1, 10, 3, 10.0),
    inst("UK100", 8200.0, 1, 5, 2, 10.0),
    inst("JPN225", 38500.0, 0, 5, 2, 10.0),
    fx("USDSGD", 1.3450, 5),
    fx("USDHKD", 7.8150, 5),
    inst("USDMXN", 17.0500, 4, 10, 2, 1_000_000.0),
    inst("USDZAR", 18.5000, 4, 20, 3, 1_000_000.0),
    inst("USDNOK", 10.7000, 4, 10, 2, 1_000_000.0),
    inst("USDSEK", 10.6000, 4, 10, 2, 1_000_000.0),
];

/// Generated symbols (`SYM0042`) trade like a 100.00 stock.
const GENERATED: Instrument = inst("", 100.00, 2, 2, 1, 100.0);

/// Size multiples of the lot a venue shows (0.5 x a 1M FX lot = 500k).
const SIZE_MULTIPLES: [f64; 6] = [0.5, 1.0, 1.0, 2.0, 3.0, 5.0];

/// Pull of the mid back toward its start per quote; keeps long runs plausible.
const MEAN_REVERSION: f64 = 1e-6;

/// `n` symbol names: the realistic instruments first, then `SYM<index>`.
pub fn symbol_names(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match INSTRUMENTS.get(i) {
            Some(inst) => inst.name.to_string(),
            None => format!("SYM{i:04}"),
        })
        .collect()
}

/// Per-symbol walk state, all in ticks so quotes land on the tick grid.
struct SymbolState {
    mid: f64,
    start: f64,
    /// Lowest mid the walk may reach (reflects there), keeping prices positive.
    floor: f64,
    scale: f64,
    half_spread: f64,
    step: f64,
    lot: f64,
}

impl SymbolState {
    /// The walk of symbol `name`, at its starting mid: the instrument of
    /// that name, or a generated one.
    fn new(name: &str) -> SymbolState {
        let inst = INSTRUMENTS
            .iter()
            .find(|i| i.name == name)
            .unwrap_or(&GENERATED);
        let scale = 10f64.powi(inst.decimals as i32);
        let start = (inst.mid * scale).round();
        SymbolState {
            mid: start,
            start,
            floor: (start * 0.1).max(f64::from(inst.half_spread) + 1.0),
            scale,
            half_spread: f64::from(inst.half_spread),
            step: f64::from(inst.step),
            lot: inst.lot,
        }
    }
}

/// Cumulative Zipf (s = 1) weights of `n` symbols: symbol i weighs 1/(i+1).
fn zipf_cumulative(n: usize) -> Vec<f64> {
    let mut total = 0.0;
    (0..n)
        .map(|i| {
            total += 1.0 / (i as f64 + 1.0);
            total
        })
        .collect()
}

/// The simulator feed. Also usable without a clock via [`Sim::generate`].
pub struct Sim {
    rng: StdRng,
    symbols: Vec<SymbolState>,
    /// Cumulative Zipf weights over symbol index, for a binary-search pick.
    cumulative: Vec<f64>,
    /// Extra half spread per venue, in ticks of each symbol's tightest spread.
    venue_extra: Vec<u32>,
    /// Each venue's last (bid, ask) in ticks, `symbol * venues + venue`.
    quoted: Vec<(f64, f64)>,
    rate: u64,
    start: Instant,
    emitted: u64,
    /// The trading desks behind the events; `None` when events are off.
    desks: Option<Desks>,
    /// Desk steps per second (each yields about four metric events).
    step_rate: u64,
    steps: u64,
}

/// Metric events one desk step yields: trading, positions, risk and P&L.
const EVENTS_PER_STEP: u64 = 4;

impl Sim {
    /// A simulator for every symbol and venue of `universe`, seeded by
    /// `cfg.sim_seed` and paced at `cfg.sim_rate` quotes per second, with
    /// about `cfg.sim_events_rate` analytics events per second on the
    /// channels of `catalogue`.
    pub fn new(cfg: &FeedConfig, universe: &Universe, catalogue: &Catalogue) -> Sim {
        let mut rng = StdRng::seed_from_u64(cfg.sim_seed);
        let symbols: Vec<SymbolState> = universe
            .symbols()
            .iter()
            .map(|name| SymbolState::new(name))
            .collect();
        let cumulative = zipf_cumulative(symbols.len());
        let venue_extra: Vec<u32> = (0..universe.venue_count())
            .map(|_| rng.random_range(0..=2))
            .collect();
        let quoted = vec![(f64::NEG_INFINITY, f64::INFINITY); symbols.len() * venue_extra.len()];
        let traded: Vec<Traded> = universe
            .symbols()
            .iter()
            .zip(&symbols)
            .take(TRADED_SYMBOLS)
            .map(|(name, s)| Traded {
                name: name.clone(),
                start: s.start / s.scale,
                lot: s.lot,
            })
            .collect();
        let step_rate = cfg.sim_events_rate.div_ceil(EVENTS_PER_STEP);
        let desks = Desks::new(catalogue, &traded, cfg.sim_seed, step_rate as f64);
        Sim {
            rng,
            symbols,
            cumulative,
            venue_extra,
            quoted,
            rate: cfg.sim_rate,
            start: Instant::now(),
            emitted: 0,
            desks,
            step_rate,
            steps: 0,
        }
    }

    /// Appends the events of the next `n` desk steps, stamped `ts_us` and
    /// priced at the current mids.
    pub fn generate_events(&mut self, n: usize, ts_us: u64, out: &mut Vec<Event>) {
        let Some(desks) = &mut self.desks else {
            return;
        };
        let mids: Vec<f64> = self
            .symbols
            .iter()
            .take(TRADED_SYMBOLS)
            .map(|s| s.mid / s.scale)
            .collect();
        for _ in 0..n {
            desks.step(ts_us, &mids, out);
        }
    }

    /// Appends the next `n` quotes of the seeded sequence, stamped `ts_us`.
    pub fn generate(&mut self, n: usize, ts_us: u64, out: &mut Vec<VenueQuote>) {
        let (Some(&total), false) = (self.cumulative.last(), self.venue_extra.is_empty()) else {
            return;
        };
        out.reserve(n);
        for _ in 0..n {
            let x = self.rng.random::<f64>() * total;
            let s = self
                .cumulative
                .partition_point(|&c| c <= x)
                .min(self.symbols.len() - 1);
            let venues = self.venue_extra.len();
            let v = self.rng.random_range(0..venues);
            let extra = self.venue_extra[v];
            let sym = &mut self.symbols[s];
            let row = &mut self.quoted[s * venues..(s + 1) * venues];

            let step = (self.rng.random::<f64>() * 2.0 - 1.0) * sym.step;
            let mut mid = sym.mid + step + (sym.start - sym.mid) * MEAN_REVERSION;
            if mid < sym.floor {
                mid = 2.0 * sym.floor - mid;
            }
            // The mid may only move within every other venue's standing quote:
            // then all venues bracket it, and best bid <= mid <= best ask.
            // Invariant: the old mid is inside that range, so it is not empty.
            let (mut lo, mut hi) = (f64::NEG_INFINITY, f64::INFINITY);
            for (u, &(b, a)) in row.iter().enumerate() {
                if u != v {
                    lo = lo.max(b);
                    hi = hi.min(a);
                }
            }
            sym.mid = if mid < lo {
                lo
            } else if mid > hi {
                hi
            } else {
                mid
            };
            let unit = (sym.half_spread / 2.0).max(1.0);
            let jitter = f64::from(self.rng.random_range(0..=1u32)) * unit;
            let half = sym.half_spread + f64::from(extra) * unit + jitter;
            let bid_ticks = (sym.mid - half).floor().max(1.0);
            let ask_ticks = (sym.mid + half).ceil();
            row[v] = (bid_ticks, ask_ticks);
            let mut size = || SIZE_MULTIPLES[self.rng.random_range(0..SIZE_MULTIPLES.len())];
            let (bid_mult, ask_mult) = (size(), size());
            out.push(VenueQuote {
                symbol: SymbolId(s as u32),
                venue: VenueId(v as u16),
                // Integer ticks over a power of ten: the nearest double to the
                // decimal price, so it prints as e.g. 1.0841, not 1.08410000001.
                bid: bid_ticks / sym.scale,
                bid_size: bid_mult * sym.lot,
                ask: ask_ticks / sym.scale,
                ask_size: ask_mult * sym.lot,
                ts_us,
            });
        }
    }

    /// Items due by now at `rate` a second since start.
    fn due(&self, rate: u64) -> u64 {
        let nanos = self.start.elapsed().as_nanos();
        (nanos * u128::from(rate) / 1_000_000_000).min(u128::from(u64::MAX)) as u64
    }
}

/// How many items to make now when `due` are due at `rate` a second and
/// `done` were made; advances `done`. A consumer that fell behind gets at
/// most 50 ms worth at once; the rest is skipped rather than replayed as a
/// burst.
fn take_due(done: &mut u64, due: u64, rate: u64) -> u64 {
    let max_batch = (rate / 20).max(256);
    if due.saturating_sub(*done) > max_batch {
        *done = due - max_batch;
    }
    let n = due.saturating_sub(*done);
    *done += n;
    n
}

impl Feed for Sim {
    fn poll(&mut self, out: &mut Vec<VenueQuote>, max_wait: Duration) -> io::Result<()> {
        if self.rate == 0 || self.symbols.is_empty() || self.venue_extra.is_empty() {
            std::thread::sleep(max_wait);
            return Ok(());
        }
        // Wake once per millisecond's batch, not once per quote: every
        // wake-up is a context switch that may land on a shard's core.
        let batch = (self.rate / 1000).max(1);
        let mut due = self.due(self.rate);
        if due < self.emitted + batch {
            let next_ns = u128::from(self.emitted + batch) * 1_000_000_000 / u128::from(self.rate);
            let next = Duration::from_nanos(next_ns.min(u128::from(u64::MAX)) as u64);
            std::thread::sleep(next.saturating_sub(self.start.elapsed()).min(max_wait));
            due = self.due(self.rate);
        }
        let n = take_due(&mut self.emitted, due, self.rate);
        self.generate(n as usize, now_us(), out);
        Ok(())
    }

    fn poll_events(&mut self, out: &mut Vec<Event>) {
        if self.desks.is_none() {
            return;
        }
        let due = self.due(self.step_rate);
        let n = take_due(&mut self.steps, due, self.step_rate);
        if n > 0 {
            self.generate_events(n as usize, now_us(), out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::universe;
    use crate::ingest::book::BestPriceBook;

    fn sim(seed: u64, symbols: usize, venues: usize, rate: u64) -> (Sim, Universe) {
        sim_with_events(
            seed,
            symbols,
            venues,
            rate,
            FeedConfig::default().sim_events_rate,
        )
    }

    fn sim_with_events(
        seed: u64,
        symbols: usize,
        venues: usize,
        rate: u64,
        events_rate: u64,
    ) -> (Sim, Universe) {
        let cfg = FeedConfig {
            sim_symbols: symbols,
            sim_venues: venues,
            sim_seed: seed,
            sim_rate: rate,
            sim_events_rate: events_rate,
            ..FeedConfig::default()
        };
        let u = universe(&cfg);
        (Sim::new(&cfg, &u, &catalogue()), u)
    }

    fn catalogue() -> Catalogue {
        Catalogue::new(&crate::config::ChannelsConfig::default()).unwrap()
    }

    #[test]
    fn names_are_realistic_first_then_generated_and_unique() {
        let names = symbol_names(300);
        assert_eq!(&names[..4], ["EURUSD", "GBPUSD", "USDJPY", "USDCHF"]);
        assert!(names.contains(&"XAUUSD".to_string()));
        assert!(names.contains(&"BTCUSD".to_string()));
        assert_eq!(names[299], "SYM0299");
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 300);
    }

    #[test]
    fn same_seed_same_quotes_other_seed_differs() {
        let (mut a, _) = sim(7, 50, 5, 0);
        let (mut b, _) = sim(7, 50, 5, 0);
        let (mut c, _) = sim(8, 50, 5, 0);
        let (mut qa, mut qb, mut qc) = (Vec::new(), Vec::new(), Vec::new());
        a.generate(1_000, 1, &mut qa);
        // Batching must not change the sequence.
        b.generate(400, 1, &mut qb);
        b.generate(600, 1, &mut qb);
        c.generate(1_000, 1, &mut qc);
        assert_eq!(qa, qb);
        assert_ne!(qa, qc);
    }

    #[test]
    fn quotes_are_sane_and_aggregate_uncrossed() {
        let (mut s, u) = sim(42, 200, 5, 0);
        let mut book =
            BestPriceBook::new(u.symbol_count(), u.venue_count(), Duration::from_secs(5));
        let mut quotes = Vec::new();
        s.generate(100_000, 1, &mut quotes);
        let mut per_symbol = vec![0u32; u.symbol_count()];
        for q in &quotes {
            assert!(q.bid > 0.0 && q.bid < q.ask, "{q:?}");
            assert!(q.bid_size > 0.0 && q.ask_size > 0.0, "{q:?}");
            per_symbol[q.symbol.0 as usize] += 1;
            if let Some(best) = book.on_quote(q, 1_000) {
                assert!(best.bid <= best.ask, "crossed {best:?}");
            }
        }
        assert_eq!(book.rejected(), 0);
        // Zipf skew: the head symbol is far hotter than the tail.
        assert!(
            per_symbol[0] > 20 * per_symbol[199].max(1),
            "{per_symbol:?}"
        );
        // EURUSD stays plausible but does move.
        let (lo, hi) = quotes
            .iter()
            .filter(|q| q.symbol == SymbolId(0))
            .fold((f64::MAX, f64::MIN), |(lo, hi), q| {
                (lo.min(q.bid), hi.max(q.bid))
            });
        assert!(lo > 1.0 && hi < 1.2 && hi - lo > 0.0005, "{lo} {hi}");
    }

    #[test]
    fn paced_by_wall_clock_and_quiet_at_rate_zero() {
        let (mut quiet, _) = sim(1, 10, 2, 0);
        let mut out = Vec::new();
        quiet.poll(&mut out, Duration::from_millis(2)).unwrap();
        assert!(out.is_empty());

        let (mut s, _) = sim(1, 10, 2, 10_000);
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_millis(30) {
            s.poll(&mut out, Duration::from_millis(1)).unwrap();
        }
        let bound = t0.elapsed().as_secs_f64() * 10_000.0 + 2.0;
        assert!(
            !out.is_empty() && out.len() as f64 <= bound,
            "{}",
            out.len()
        );
    }

    /// Quotes and desk steps interleaved as the server makes them by
    /// default (a hundred quotes per step).
    fn quotes_and_events(seed: u64, steps: u64) -> (Vec<VenueQuote>, Vec<Event>) {
        let (mut s, _) = sim(seed, 20, 3, 0);
        let (mut quotes, mut events) = (Vec::new(), Vec::new());
        for step in 0..steps {
            s.generate(100, step, &mut quotes);
            s.generate_events(1, step, &mut events);
        }
        (quotes, events)
    }

    #[test]
    fn events_follow_the_seed_and_the_simulated_prices() {
        let (quotes, events) = quotes_and_events(7, 1_000);
        assert_eq!(events, quotes_and_events(7, 1_000).1);
        assert_ne!(events, quotes_and_events(8, 1_000).1);
        let cat = catalogue();
        let (trading, def) = cat.find("metrics.trading").unwrap();
        let (volume, notional) = (
            def.metric_index("trade_volume").unwrap(),
            def.metric_index("trade_notional").unwrap(),
        );
        let (lo, hi) = quotes
            .iter()
            .filter(|q| q.symbol == SymbolId(0))
            .fold((f64::MAX, f64::MIN), |(lo, hi), q| {
                (lo.min(q.bid), hi.max(q.ask))
            });
        let mut eurusd_trades = 0;
        for ev in &events {
            let Event::Metric(m) = ev else { continue };
            let value = |i| m.values.iter().find(|(j, _)| *j == i).map(|(_, v)| *v);
            let eurusd = m.dims.iter().any(|(k, v)| k == "symbol" && v == "EURUSD");
            if m.channel != trading || !eurusd {
                continue;
            }
            let (Some(v), Some(n)) = (value(volume), value(notional)) else {
                panic!("{m:?}")
            };
            if v > 0.0 {
                let price = n / v;
                assert!(
                    price > lo * 0.999 && price < hi * 1.001,
                    "{price} vs {lo}..{hi}"
                );
                eurusd_trades += 1;
            }
        }
        assert!(eurusd_trades > 10, "{eurusd_trades}");
    }

    #[test]
    fn events_are_paced_by_wall_clock_and_off_at_rate_zero() {
        let (mut off, _) = sim_with_events(1, 10, 2, 0, 0);
        let mut events = Vec::new();
        off.poll_events(&mut events);
        off.generate_events(10, 1, &mut events);
        assert!(events.is_empty());

        let (mut s, _) = sim_with_events(1, 10, 2, 0, 4_000);
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_millis(30) {
            s.poll_events(&mut events);
            std::thread::sleep(Duration::from_millis(1));
        }
        let metrics = events
            .iter()
            .filter(|e| matches!(e, Event::Metric(_)))
            .count();
        let bound = (t0.elapsed().as_secs_f64() * 1_000.0 + 1.0) * EVENTS_PER_STEP as f64;
        assert!(
            metrics > 0 && metrics as f64 <= bound,
            "{metrics} > {bound}"
        );
    }
}
