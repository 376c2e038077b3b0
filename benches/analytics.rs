//! The analytics and reliable paths of a shard, at the sizes issue 5 names:
//! closing one round of windows for 1,000 tenants x 4 `metrics.*` channels,
//! and fanning one alert out to 10,000 subscribers. Each states its throughput.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use quotecast::config::ChannelsConfig;
use quotecast::parts::{
    Agg, Catalogue, ChannelId, ConnKey, LatestTable, MetricEvent, MetricStreams, ReliableEvent,
    ReliableKey, ReliableStreams, Sequencer, WindowSpec, GRACE_US,
};
use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TENANTS: usize = 1_000;
const WINDOW_MS: u64 = 1_000;
const WINDOW_US: u64 = WINDOW_MS * 1_000;
/// Events per tenant and channel in each window.
const EVENTS_PER_WINDOW: u64 = 3;
const SUBSCRIBERS: u32 = 10_000;

fn catalogue() -> Arc<Catalogue> {
    Arc::new(Catalogue::new(&ChannelsConfig::default()).expect("default catalogue"))
}

/// Every tenant subscribes `sum` of every metric of each of the 4 channels
/// (14 streams a tenant); each window, every (tenant, channel) gets 3 events
/// whose values differ from the window before, so every stream publishes.
/// Measured: `close_due` at the end of one window, which closes 4,000
/// window computations and encodes 14,000 values into the latest-value
/// table. Folding the events in is not measured.
fn window_flush(c: &mut Criterion) {
    let cat = catalogue();
    let channels: Vec<(ChannelId, usize)> = cat
        .iter()
        .filter(|(_, ch)| !ch.metrics.is_empty())
        .map(|(id, ch)| (id, ch.metrics.len()))
        .collect();
    assert_eq!(channels.len(), 4);
    let tenants: Vec<Arc<str>> = (0..TENANTS).map(|t| format!("t{t}").into()).collect();
    let mut streams = MetricStreams::new(cat.clone(), &[WINDOW_MS]);
    let mut table = LatestTable::default();
    let start_us = 1_000_000 * WINDOW_US;
    let mut outputs = 0;
    for tenant in &tenants {
        for &(channel, metrics) in &channels {
            let spec = WindowSpec {
                tenant: tenant.clone(),
                channel,
                window_ms: WINDOW_MS,
                filter: Vec::new(),
            };
            let all: Vec<u16> = (0..metrics as u16).collect();
            outputs += streams
                .subscribe(&spec, Agg::Sum, &all, start_us, &mut table)
                .len();
        }
    }
    let mut changed = Vec::new();
    streams.close_due(start_us + GRACE_US, &mut table, &mut changed);
    let mut window = start_us / WINDOW_US;

    let mut g = c.benchmark_group("analytics");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements((TENANTS * channels.len()) as u64));
    g.bench_function("window_flush_1k_tenants_x4_channels", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                for tenant in &tenants {
                    for &(channel, metrics) in &channels {
                        for k in 0..EVENTS_PER_WINDOW {
                            let ts_us = window * WINDOW_US + k * 1_000;
                            let event = MetricEvent {
                                tenant: tenant.clone(),
                                channel,
                                ts_us,
                                dims: vec![("book".into(), "FX1".into())],
                                values: (0..metrics as u16)
                                    .map(|m| (m, (window % 97 + k) as f64 + f64::from(m)))
                                    .collect(),
                            };
                            streams.on_event(Arc::new(event), ts_us);
                        }
                    }
                }
                changed.clear();
                let now_us = (window + 1) * WINDOW_US + GRACE_US;
                let t0 = Instant::now();
                streams.close_due(now_us, &mut table, &mut changed);
                spent += t0.elapsed();
                assert_eq!(changed.len(), outputs, "every stream changed");
                window += 1;
            }
            spent
        })
    });
    g.finish();
}

/// One alert for a tenant with 10,000 subscribers on this shard: sequence
/// and encode it once, append it to the stream's history, and push the
/// shared frame onto each subscriber's queue. A `Conn` cannot be built
/// outside a shard, so each queue is a `VecDeque<Bytes>`, the type of a
/// connection's reliable queue; draining the queues is not measured.
fn alert_fanout(c: &mut Criterion) {
    let cat = catalogue();
    let (alerts, _) = cat.find("alerts").expect("alerts channel");
    let key = ReliableKey {
        tenant: "t1".into(),
        channel: alerts,
        sub: None,
    };
    let mut shard = ReliableStreams::new(10_000, 3_600 * 1_000_000);
    for index in 0..SUBSCRIBERS {
        shard.subscribe(
            &key,
            ConnKey {
                index,
                generation: 1,
            },
            None,
            None,
        );
    }
    let mut queues: Vec<VecDeque<Bytes>> = vec![VecDeque::new(); SUBSCRIBERS as usize];
    let mut sequencer = Sequencer::default();
    let data = serde_json::json!({"level":"critical","kind":"loss_limit",
        "message":"Desk FX1 at 95% of loss limit","current":95000,"threshold":100000});
    let event = ReliableEvent {
        tenant: key.tenant.clone(),
        channel: alerts,
        sub: None,
        data: data.as_object().expect("an object").clone(),
        stamp: None,
    };
    let mut now_us = 1_763_769_600_000_000u64;

    let mut g = c.benchmark_group("analytics");
    g.throughput(Throughput::Elements(u64::from(SUBSCRIBERS)));
    g.bench_function("alert_fanout_10k_subscribers", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                now_us += 1;
                let t0 = Instant::now();
                let msg = Arc::new(
                    sequencer
                        .stamp(event.clone(), &cat, now_us)
                        .expect("unstamped events are always numbered"),
                );
                for conn in shard.on_message(msg.clone(), now_us) {
                    queues[conn.index as usize].push_back(msg.frame.clone());
                }
                spent += t0.elapsed();
                let delivered: usize = queues.iter().map(VecDeque::len).sum();
                assert_eq!(delivered, SUBSCRIBERS as usize);
                queues.iter_mut().for_each(VecDeque::clear);
            }
            black_box(&queues);
            spent
        })
    });
    g.finish();
}

criterion_group!(benches, window_flush, alert_fanout);
criterion_main!(benches);
