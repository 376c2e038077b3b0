//! Windowed per-tenant analytics on one shard.
//!
//! A [`WindowSpec`] (tenant, channel, window size, filter) accumulates every
//! matching metric event into tumbling windows aligned to the UNIX epoch,
//! keeping `count`, `sum`, `min`, `max` and `last` of each metric at once.
//! When a window closes, each subscribed (aggregation, metric) pair is one
//! latest-value stream: its value is computed and encoded ONCE and goes to
//! every subscriber through the conflation table, like a price. A stream
//! publishes only when its value changed, so clients get delta updates.
//!
//! A window belongs to the event's `ts`, not to its arrival; it closes
//! [`GRACE_US`] after its end, and an event for a closed window is counted
//! as late and left out. The shard keeps recent events so that a new
//! subscription starts with full, correct windows instead of a partial one.

use super::outputs::{self, write_str, StreamIds};
use crate::config::{recent_metrics_us, RECENT_WINDOWS};
use crate::fanout::latest::{Latest, LatestTable, StreamId};
use crate::frame;
use crate::model::channel::{Catalogue, Channel, ChannelId};
use crate::model::event::MetricEvent;
use crate::protocol;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Write;
use std::sync::Arc;

/// How long after its end a window waits for events still in flight.
pub const GRACE_US: u64 = 50_000;
/// Most recent events a shard keeps for new subscriptions.
pub const MAX_RECENT_EVENTS: usize = 200_000;
/// Completed windows kept per spec: the latest, and the one before for `delta`.
const KEEP_CLOSED: usize = 2;
const _: () = assert!(KEEP_CLOSED as u64 + 1 == RECENT_WINDOWS);

/// How a metric's events within one window become one value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Agg {
    /// Sum of values (0 for an empty window).
    Sum,
    /// Mean of values.
    Avg,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// The value with the latest `ts`.
    Last,
    /// Number of events (0 for an empty window).
    Count,
    /// Change of the last value since the end of the previous window.
    Delta,
}

impl Agg {
    /// Parses the wire spelling.
    pub fn parse(s: &str) -> Option<Agg> {
        Some(match s {
            "sum" => Agg::Sum,
            "avg" => Agg::Avg,
            "min" => Agg::Min,
            "max" => Agg::Max,
            "last" => Agg::Last,
            "count" => Agg::Count,
            "delta" => Agg::Delta,
            _ => return None,
        })
    }

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Agg::Sum => "sum",
            Agg::Avg => "avg",
            Agg::Min => "min",
            Agg::Max => "max",
            Agg::Last => "last",
            Agg::Count => "count",
            Agg::Delta => "delta",
        }
    }
}

/// What one window computation is keyed by: shared by every subscriber
/// that asks for the same tenant, channel, window size and filter.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WindowSpec {
    /// Owning tenant (always the subscriber's own).
    pub tenant: Arc<str>,
    /// A `metrics.*` channel.
    pub channel: ChannelId,
    /// Window size.
    pub window_ms: u64,
    /// `(dimension, value)` pairs every counted event must carry, sorted.
    pub filter: Vec<(String, String)>,
}

/// One metric's figures within one window.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MetricAcc {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    last: f64,
    last_ts: u64,
}

impl MetricAcc {
    fn add(&mut self, value: f64, ts_us: u64) {
        if self.count == 0 {
            (self.min, self.max) = (value, value);
        }
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        if ts_us >= self.last_ts {
            (self.last, self.last_ts) = (value, ts_us);
        }
    }

    /// The value of `agg` for this window; `last_before` is the metric's last
    /// value before the window. `None` when the window says nothing.
    pub fn value(&self, agg: Agg, last_before: Option<f64>) -> Option<f64> {
        let any = self.count > 0;
        match agg {
            Agg::Sum => Some(self.sum),
            Agg::Count => Some(self.count as f64),
            Agg::Avg => any.then(|| self.sum / self.count as f64),
            Agg::Min => any.then_some(self.min),
            Agg::Max => any.then_some(self.max),
            Agg::Last => any.then_some(self.last),
            Agg::Delta => {
                let before = last_before?;
                Some(if any { self.last - before } else { 0.0 })
            }
        }
    }
}

impl outputs::Computation for SpecState {
    type Spec = WindowSpec;
    type Out = Output;
    fn spec(&self) -> &WindowSpec {
        &self.spec
    }
    fn outputs(&mut self) -> &mut Vec<Output> {
        &mut self.outputs
    }
}

impl outputs::Output for Output {
    fn of(&self) -> (Agg, u16) {
        (self.agg, self.metric)
    }
    fn refs(&mut self) -> &mut u32 {
        &mut self.refs
    }
    fn stream(&self) -> StreamId {
        self.stream
    }
}

/// A completed window of one spec.
#[derive(Clone, Debug)]
struct Closed {
    index: u64,
    accs: Vec<MetricAcc>,
    /// Each metric's last value before this window.
    last_before: Vec<Option<f64>>,
}

impl Closed {
    fn value(&self, agg: Agg, metric: u16) -> Option<f64> {
        let m = usize::from(metric);
        self.accs[m].value(agg, self.last_before[m])
    }
}

/// One (aggregation, metric) stream of a spec.
#[derive(Clone, Debug)]
struct Output {
    agg: Agg,
    metric: u16,
    stream: StreamId,
    refs: u32,
    last_sent: Option<f64>,
}

#[derive(Debug)]
struct SpecState {
    spec: WindowSpec,
    window_us: u64,
    open: BTreeMap<u64, Vec<MetricAcc>>,
    closed_through: u64,
    closed: VecDeque<Closed>,
    /// Each metric's last value as of the end of `closed_through`.
    carried_last: Vec<Option<f64>>,
    outputs: Vec<Output>,
}

impl SpecState {
    fn new(spec: WindowSpec, metrics: usize, now_us: u64) -> Self {
        let window_us = spec.window_ms * 1_000;
        let due = due_index(now_us, window_us);
        SpecState {
            spec,
            window_us,
            open: BTreeMap::new(),
            // Start early enough that the two latest completed windows get built.
            closed_through: due.saturating_sub(KEEP_CLOSED as u64 + 1),
            closed: VecDeque::new(),
            carried_last: vec![None; metrics],
            outputs: Vec::new(),
        }
    }

    /// A new computation of `spec` with its windows rebuilt from the
    /// `recent` events, so that its first values are of whole windows.
    fn rebuilt(
        spec: &WindowSpec,
        metrics: usize,
        now_us: u64,
        recent: &VecDeque<Arc<MetricEvent>>,
    ) -> Self {
        let mut state = SpecState::new(spec.clone(), metrics, now_us);
        for ev in recent
            .iter()
            .filter(|e| e.tenant == spec.tenant && e.channel == spec.channel)
            .filter(|e| e.matches(&spec.filter))
        {
            state.fold(ev, metrics);
        }
        state.close_due(now_us, metrics, |_, _, _| {});
        state
    }

    /// Folds in an event; false when its window has already closed (late).
    fn fold(&mut self, ev: &MetricEvent, metrics: usize) -> bool {
        let index = ev.ts_us / self.window_us;
        if index <= self.closed_through {
            return false;
        }
        let accs = self
            .open
            .entry(index)
            .or_insert_with(|| vec![MetricAcc::default(); metrics]);
        for &(m, value) in &ev.values {
            if let Some(acc) = accs.get_mut(usize::from(m)) {
                acc.add(value, ev.ts_us);
            }
        }
        true
    }

    /// Closes every window that is due at `now_us` and calls `publish` for
    /// each output whose value changed.
    fn close_due(
        &mut self,
        now_us: u64,
        metrics: usize,
        mut publish: impl FnMut(&Output, &Closed, Option<f64>),
    ) {
        let due = due_index(now_us, self.window_us);
        while self.closed_through + 1 < due {
            let mut index = self.closed_through + 1;
            // A long run of empty windows: only the last ones can matter.
            let next_with_events = self.open.keys().next().copied().unwrap_or(due).min(due);
            if next_with_events > index + KEEP_CLOSED as u64 {
                index = next_with_events - KEEP_CLOSED as u64;
            }
            let accs = self
                .open
                .remove(&index)
                .unwrap_or_else(|| vec![MetricAcc::default(); metrics]);
            let closed = Closed {
                index,
                last_before: self.carried_last.clone(),
                accs,
            };
            for (carried, acc) in self.carried_last.iter_mut().zip(&closed.accs) {
                if acc.count > 0 {
                    *carried = Some(acc.last);
                }
            }
            self.closed_through = index;
            self.closed.push_back(closed);
            if self.closed.len() > KEEP_CLOSED {
                self.closed.pop_front();
            }
            let latest = &self.closed[self.closed.len() - 1];
            for out in &mut self.outputs {
                let value = latest.value(out.agg, out.metric);
                if value.is_some() && value != out.last_sent {
                    out.last_sent = value;
                    publish(
                        out,
                        latest,
                        previous_value(&self.closed, out.agg, out.metric),
                    );
                }
            }
        }
    }

    /// One more subscriber to the `agg` of `metric`, when an output already
    /// computes it; returns its stream.
    fn add_ref(&mut self, agg: Agg, metric: u16) -> Option<StreamId> {
        let out = self
            .outputs
            .iter_mut()
            .find(|o| o.agg == agg && o.metric == metric)?;
        out.refs += 1;
        Some(out.stream)
    }

    /// A new output of the `agg` of `metric` on `stream`, with one
    /// subscriber; returns its value in the latest closed window, encoded,
    /// if it has one.
    fn add_output(
        &mut self,
        agg: Agg,
        metric: u16,
        stream: StreamId,
        channel: &Channel,
        scratch: &mut Vec<u8>,
    ) -> Option<Latest> {
        let mut out = Output {
            agg,
            metric,
            stream,
            refs: 1,
            last_sent: None,
        };
        let mut first = None;
        if let Some(latest) = self.closed.back() {
            let previous = previous_value(&self.closed, agg, metric);
            out.last_sent = latest.value(agg, metric);
            if out.last_sent.is_some() {
                first = Some(encode(
                    scratch,
                    channel,
                    &out,
                    latest,
                    previous,
                    self.window_us,
                ));
            }
        }
        self.outputs.push(out);
        first
    }
}

/// The value of `agg` of `metric` in the window before the latest closed one.
fn previous_value(closed: &VecDeque<Closed>, agg: Agg, metric: u16) -> Option<f64> {
    closed.iter().rev().nth(1)?.value(agg, metric)
}

/// Index of the first window not yet complete at `now_us` (windows before it
/// ended at least [`GRACE_US`] ago).
fn due_index(now_us: u64, window_us: u64) -> u64 {
    now_us.saturating_sub(GRACE_US) / window_us
}

/// Counters of one shard's analytics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WindowCounters {
    /// Metric events received.
    pub events: u64,
    /// Events that arrived after their window closed.
    pub late: u64,
    /// Window values published.
    pub published: u64,
}

/// Every window computation one shard runs, and its recent events.
#[derive(Debug)]
pub struct MetricStreams {
    catalogue: Arc<Catalogue>,
    specs: HashMap<(Arc<str>, ChannelId), Vec<SpecState>>,
    recent: VecDeque<Arc<MetricEvent>>,
    keep_recent_us: u64,
    ids: StreamIds,
    counters: WindowCounters,
    scratch: Vec<u8>,
}

impl MetricStreams {
    /// Recent events are kept for three of the largest windows in `windows_ms`.
    pub fn new(catalogue: Arc<Catalogue>, windows_ms: &[u64]) -> Self {
        MetricStreams {
            catalogue,
            specs: HashMap::new(),
            recent: VecDeque::new(),
            keep_recent_us: recent_metrics_us(windows_ms),
            ids: StreamIds::new(StreamId::metric),
            counters: WindowCounters::default(),
            scratch: Vec::new(),
        }
    }

    /// Folds a metric event into every matching window computation.
    pub fn on_event(&mut self, ev: Arc<MetricEvent>, now_us: u64) {
        self.counters.events += 1;
        let metrics = self.catalogue.get(ev.channel).metrics.len();
        if let Some(states) = self.specs.get_mut(&(ev.tenant.clone(), ev.channel)) {
            for state in states.iter_mut().filter(|s| ev.matches(&s.spec.filter)) {
                if !state.fold(&ev, metrics) {
                    self.counters.late += 1;
                }
            }
        }
        self.recent.push_back(ev);
        let oldest = now_us.saturating_sub(self.keep_recent_us);
        while self.recent.len() > MAX_RECENT_EVENTS
            || self.recent.front().is_some_and(|e| e.ts_us < oldest)
        {
            self.recent.pop_front();
        }
    }

    /// When [`MetricStreams::close_due`] next has a window to close (the
    /// earliest window end plus [`GRACE_US`]); `None` with no streams.
    pub fn next_close_us(&self) -> Option<u64> {
        self.specs
            .values()
            .flatten()
            .map(|state| (state.closed_through + 2) * state.window_us + GRACE_US)
            .min()
    }

    /// Closes due windows, publishes changed values into `table` and appends
    /// the streams that changed to `changed`.
    pub fn close_due(&mut self, now_us: u64, table: &mut LatestTable, changed: &mut Vec<StreamId>) {
        for states in self.specs.values_mut() {
            for state in states.iter_mut() {
                let channel = self.catalogue.get(state.spec.channel);
                let window_us = state.window_us;
                let scratch = &mut self.scratch;
                let counters = &mut self.counters;
                state.close_due(now_us, channel.metrics.len(), |out, closed, previous| {
                    let latest = encode(scratch, channel, out, closed, previous, window_us);
                    if table.publish(out.stream, latest) {
                        changed.push(out.stream);
                        counters.published += 1;
                    }
                });
            }
        }
    }

    /// Adds one subscriber to the (spec, agg, metric) streams, creating what
    /// is missing (with windows rebuilt from recent events), and returns the
    /// stream of each metric in order.
    pub fn subscribe(
        &mut self,
        spec: &WindowSpec,
        agg: Agg,
        metrics: &[u16],
        now_us: u64,
        table: &mut LatestTable,
    ) -> Vec<StreamId> {
        let channel = self.catalogue.get(spec.channel);
        let n = channel.metrics.len();
        let states = self
            .specs
            .entry((spec.tenant.clone(), spec.channel))
            .or_default();
        let at = match states.iter().position(|s| s.spec == *spec) {
            Some(i) => i,
            None => {
                states.push(SpecState::rebuilt(spec, n, now_us, &self.recent));
                states.len() - 1
            }
        };
        let state = &mut states[at];
        let mut streams = Vec::with_capacity(metrics.len());
        for &metric in metrics {
            let stream = match state.add_ref(agg, metric) {
                Some(stream) => stream,
                None => {
                    let stream = self.ids.take();
                    let first = state.add_output(agg, metric, stream, channel, &mut self.scratch);
                    if let Some(latest) = first {
                        table.publish(stream, latest);
                    }
                    stream
                }
            };
            streams.push(stream);
        }
        streams
    }

    /// Drops one subscriber from the (spec, agg, metric) streams; a stream
    /// without subscribers is cleared from `table` and its id reused.
    pub fn unsubscribe(
        &mut self,
        spec: &WindowSpec,
        agg: Agg,
        metrics: &[u16],
        table: &mut LatestTable,
    ) {
        let key = (spec.tenant.clone(), spec.channel);
        outputs::unsubscribe(
            &mut self.specs,
            key,
            spec,
            agg,
            metrics,
            table,
            &mut self.ids,
        );
    }

    /// Window computations running.
    pub fn specs(&self) -> usize {
        self.specs.values().map(Vec::len).sum()
    }

    /// Counters so far.
    pub fn counters(&self) -> WindowCounters {
        self.counters
    }
}

/// `{"type":"metrics","channel":..,"seq":<window index>,"window_end":<ms>,
/// "values":{<metric>:{"value":..,"delta":..}}}`; `delta` (change since the
/// previous window) is left out when the previous window had no value.
fn encode(
    scratch: &mut Vec<u8>,
    channel: &Channel,
    out: &Output,
    closed: &Closed,
    previous: Option<f64>,
    window_us: u64,
) -> Latest {
    let value = out.last_sent.unwrap_or_default();
    let window_end_us = (closed.index + 1) * window_us;
    let metric = &channel.metrics[usize::from(out.metric)];
    // Written by hand: this runs for every changed value of every window.
    scratch.clear();
    scratch.extend_from_slice(br#"{"type":"metrics","channel":"#);
    write_str(scratch, &channel.name);
    let _ = write!(
        scratch,
        r#","seq":{},"window_end":{},"values":{{"#,
        closed.index,
        window_end_us / 1_000
    );
    write_str(scratch, metric);
    scratch.extend_from_slice(br#":{"value":"#);
    protocol::write_number(scratch, value);
    if let Some(p) = previous {
        scratch.extend_from_slice(br#","delta":"#);
        protocol::write_number(scratch, value - p);
    }
    scratch.extend_from_slice(b"}}}");
    let frame = frame::text(scratch);
    Latest {
        seq: closed.index,
        ts_us: window_end_us,
        payload_at: frame.len() - scratch.len(),
        frame,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ChannelsConfig;

    const W: u64 = 1_000; // ms

    fn setup() -> (MetricStreams, ChannelId, LatestTable) {
        let cat = Arc::new(Catalogue::new(&ChannelsConfig::default()).unwrap());
        let (channel, _) = cat.find("metrics.trading").unwrap();
        (
            MetricStreams::new(cat, &[W]),
            channel,
            LatestTable::default(),
        )
    }

    fn event(
        channel: ChannelId,
        tenant: &str,
        ts_us: u64,
        book: &str,
        count: f64,
    ) -> Arc<MetricEvent> {
        Arc::new(MetricEvent {
            tenant: tenant.into(),
            channel,
            ts_us,
            dims: vec![("book".into(), book.into())],
            values: vec![(0, count)],
        })
    }

    fn spec(channel: ChannelId, tenant: &str, filter: &[(&str, &str)]) -> WindowSpec {
        WindowSpec {
            tenant: tenant.into(),
            channel,
            window_ms: W,
            filter: filter
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn value_of(table: &LatestTable, stream: StreamId) -> Option<serde_json::Value> {
        let latest = table.get(stream)?;
        serde_json::from_slice(latest.payload()).ok()
    }

    #[test]
    fn windows_close_with_every_aggregation_and_delta() {
        // Long: one scenario over two windows; each check needs the state before it.
        let (mut m, ch, mut table) = setup();
        let base = 1_000_000 * 1_000_000; // a window boundary, µs
        let aggs = [
            Agg::Sum,
            Agg::Avg,
            Agg::Min,
            Agg::Max,
            Agg::Last,
            Agg::Count,
            Agg::Delta,
        ];
        let fx1 = spec(ch, "t1", &[("book", "FX1")]);
        let streams: Vec<StreamId> = aggs
            .iter()
            .map(|&a| m.subscribe(&fx1, a, &[0], base, &mut table)[0])
            .collect();
        let all = m.subscribe(&spec(ch, "t1", &[]), Agg::Sum, &[0], base, &mut table)[0];
        assert_eq!(m.specs(), 2, "one computation per spec, shared by aggs");
        // Window 0: 3, 5, 1 on FX1 (out of ts order), 100 on FX2, 7 for another tenant.
        for (ts, book, v) in [
            (10, "FX1", 3.0),
            (30, "FX1", 1.0),
            (20, "FX1", 5.0),
            (5, "FX2", 100.0),
        ] {
            m.on_event(event(ch, "t1", base + ts, book, v), base);
        }
        m.on_event(event(ch, "t2", base + 1, "FX1", 7.0), base);
        let mut changed = Vec::new();
        let first_close = base + W * 1_000 + GRACE_US;
        assert!(
            m.next_close_us().is_some_and(|t| t < first_close),
            "the empty windows before"
        );
        m.close_due(first_close - 1, &mut table, &mut changed);
        assert!(changed.is_empty(), "not closed before the grace period");
        assert_eq!(m.next_close_us(), Some(first_close));
        m.close_due(first_close, &mut table, &mut changed);
        assert_eq!(m.next_close_us(), Some(first_close + W * 1_000));
        let got: Vec<serde_json::Value> = streams
            .iter()
            .map(|s| {
                value_of(&table, *s).map_or(serde_json::Value::Null, |v| {
                    v["values"]["trade_count"]["value"].clone()
                })
            })
            .collect();
        // sum 9, avg 3, min 1, max 5, last (by ts) 1, count 3, delta: no value before.
        assert_eq!(
            got,
            serde_json::json!([9, 3, 1, 5, 1, 3, null])
                .as_array()
                .unwrap()
                .clone()
        );
        assert_eq!(
            value_of(&table, all).unwrap()["values"]["trade_count"]["value"],
            109
        );
        let frame = value_of(&table, streams[0]).unwrap();
        assert_eq!(frame["seq"], base / (W * 1_000));
        assert_eq!(frame["window_end"], (base + W * 1_000) / 1_000);
        assert_eq!(
            frame["values"]["trade_count"]["delta"], 9,
            "the window before summed to 0"
        );
        let last = value_of(&table, streams[4]).unwrap();
        assert!(
            last["values"]["trade_count"].get("delta").is_none(),
            "no last value before"
        );

        // Window 1: 4 then 2 on FX1: sum 6 (delta -3), last 2, delta-agg 2-1 = 1.
        changed.clear();
        m.on_event(event(ch, "t1", base + W * 1_000 + 1, "FX1", 4.0), base);
        m.on_event(event(ch, "t1", base + W * 1_000 + 2, "FX1", 2.0), base);
        m.close_due(base + 2 * W * 1_000 + GRACE_US, &mut table, &mut changed);
        let sum = value_of(&table, streams[0]).unwrap();
        assert_eq!(
            sum["values"]["trade_count"],
            serde_json::json!({"value":6,"delta":-3})
        );
        let delta = value_of(&table, streams[6]).unwrap();
        assert_eq!(delta["values"]["trade_count"]["value"], 1);
        // A late event for window 0 is counted, not folded.
        m.on_event(event(ch, "t1", base + 1, "FX1", 50.0), base);
        assert_eq!(
            m.counters().late,
            2,
            "late for the FX1 and the unfiltered spec"
        );
    }

    #[test]
    fn unchanged_values_are_not_republished_and_streams_are_freed() {
        let (mut m, ch, mut table) = setup();
        let base = 2_000_000 * 1_000_000;
        let s = spec(ch, "t1", &[]);
        let stream = m.subscribe(&s, Agg::Last, &[0], base, &mut table)[0];
        let mut changed = Vec::new();
        m.on_event(event(ch, "t1", base + 1, "A", 5.0), base);
        m.close_due(base + W * 1_000 + GRACE_US, &mut table, &mut changed);
        m.on_event(event(ch, "t1", base + W * 1_000 + 1, "A", 5.0), base);
        m.close_due(base + 2 * W * 1_000 + GRACE_US, &mut table, &mut changed);
        assert_eq!(
            changed,
            vec![stream],
            "the same last value is not sent again"
        );

        // A new subscriber on a new shard-side spec rebuilds windows from recent events.
        let again = m.subscribe(
            &spec(ch, "t1", &[("book", "A")]),
            Agg::Sum,
            &[0],
            base + 2 * W * 1_000 + GRACE_US,
            &mut table,
        )[0];
        let v = value_of(&table, again).unwrap();
        assert_eq!(
            v["values"]["trade_count"],
            serde_json::json!({"value":5,"delta":0})
        );

        m.unsubscribe(&s, Agg::Last, &[0], &mut table);
        assert!(table.get(stream).is_none());
        let reused = m.subscribe(&s, Agg::Count, &[1], base, &mut table)[0];
        assert_eq!(reused, stream, "ids are reused");
    }
}
