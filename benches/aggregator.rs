//! Cost of folding one venue quote into the best-price book, the aggregator's
//! per-quote hot path: 200 symbols x 5 venues, simulator-shaped input.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use quotecast::config::{ChannelsConfig, FeedConfig};
use quotecast::parts::{universe, BestPriceBook, Catalogue, Sim, VenueQuote};
use std::hint::black_box;
use std::time::Duration;

const SYMBOLS: usize = 200;
const VENUES: usize = 5;
/// Pre-generated quotes, cycled so generation is not measured.
const QUOTES: usize = 1 << 16;

fn on_quote(c: &mut Criterion) {
    let cfg = FeedConfig {
        sim_symbols: SYMBOLS,
        sim_venues: VENUES,
        ..FeedConfig::default()
    };
    let universe = universe(&cfg);
    let mut quotes: Vec<VenueQuote> = Vec::with_capacity(QUOTES);
    let catalogue = Catalogue::new(&ChannelsConfig::default()).expect("default catalogue");
    Sim::new(&cfg, &universe, &catalogue).generate(QUOTES, 0, &mut quotes);
    let mut book = BestPriceBook::new(SYMBOLS, VENUES, Duration::from_secs(5));

    let mut group = c.benchmark_group("aggregator");
    group.throughput(Throughput::Elements(1));
    group.bench_function("on_quote_200x5", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let q = &quotes[i % QUOTES];
            i = i.wrapping_add(1);
            // Constant clock: every venue stays live, as in a busy market.
            black_box(book.on_quote(black_box(q), 1_000_000))
        })
    });
    group.finish();
}

criterion_group!(benches, on_quote);
criterion_main!(benches);
