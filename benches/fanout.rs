//! Hot-path micro-benchmarks of the shard: encode a price once into a frame,
//! conflation update + drain across many subscribers, the subscriber index,
//! and client op parsing. Each states its throughput.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use quotecast::parts::{
    BestPrice, Latest, LatestTable, StreamId, Subscriptions, SymbolId, TopicIndex, Universe,
    VenueId,
};
use quotecast::{frame, protocol};
use std::hint::black_box;

fn price(symbol: u32, seq: u64) -> BestPrice {
    BestPrice {
        symbol: SymbolId(symbol),
        seq,
        ts_us: 1_763_769_600_123_456,
        bid: 1.08412,
        bid_size: 1_000_000.0,
        bid_venue: VenueId(1),
        ask: 1.08415,
        ask_size: 500_000.0,
        ask_venue: VenueId(0),
    }
}

fn encode(c: &mut Criterion) {
    let universe = Universe::new(vec!["EURUSD".into()], vec!["LP1".into(), "LP2".into()]);
    let mut scratch = Vec::with_capacity(512);
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("price_frame", |b| {
        let mut seq = 0;
        b.iter(|| {
            seq += 1;
            protocol::write_price(&price(0, seq), &universe, &mut scratch);
            black_box(frame::text(&scratch))
        })
    });
    g.finish();
}

/// 10,000 connections × 10 of 1,000 streams; every stream changes, then every
/// connection's flush collects its dirty frames into its write buffer.
fn conflation(c: &mut Criterion) {
    const CONNS: usize = 10_000;
    const STREAMS: u32 = 1_000;
    let mut table = LatestTable::default();
    let mut conns: Vec<Subscriptions> = (0..CONNS)
        .map(|i| {
            let mut s = Subscriptions::default();
            for k in 0..10 {
                s.add(
                    StreamId::price(SymbolId((i as u32 * 7 + k * 97) % STREAMS)),
                    0,
                );
            }
            s
        })
        .collect();
    let frame = Bytes::from(vec![b'x'; 260]);
    let mut out = Vec::with_capacity(4096);
    let mut seq = 0;
    let mut g = c.benchmark_group("conflation");
    g.throughput(Throughput::Elements(CONNS as u64));
    g.bench_function("update_all_then_flush_10k_conns", |b| {
        b.iter(|| {
            seq += 1;
            for s in 0..STREAMS {
                table.publish(
                    StreamId::price(SymbolId(s)),
                    Latest {
                        seq,
                        ts_us: seq,
                        frame: frame.clone(),
                        payload_at: 2,
                    },
                );
            }
            let mut frames = 0;
            for subs in &mut conns {
                out.clear();
                frames += subs.collect_dirty(&table, &mut out).frames;
            }
            black_box(frames)
        })
    });
    g.finish();
}

fn topics(c: &mut Criterion) {
    let mut g = c.benchmark_group("topic");
    g.throughput(Throughput::Elements(2));
    g.bench_function("subscribe_unsubscribe_among_1k", |b| {
        b.iter_batched_ref(
            || {
                let mut t = TopicIndex::default();
                for conn in 0..1_000 {
                    t.subscribe(StreamId::metric(7), conn);
                }
                t
            },
            |t| {
                t.subscribe(StreamId::metric(7), 5_000);
                black_box(t.unsubscribe(StreamId::metric(7), 500))
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn parse_ops(c: &mut Criterion) {
    let op = br#"{"op":"subscribe","id":1,"channel":"prices","symbols":["EURUSD","GBPUSD","USDJPY","XAUUSD"]}"#;
    let mut g = c.benchmark_group("ops");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_subscribe", |b| {
        b.iter_batched_ref(
            || op.to_vec(),
            |buf| black_box(protocol::parse_op(buf, 200).is_ok()),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, encode, conflation, topics, parse_ops);
criterion_main!(benches);
