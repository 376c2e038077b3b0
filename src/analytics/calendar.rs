//! Calendar running totals on one shard: `metrics.*` with `window: "day"`,
//! `"hour"` or `"session"` ("today's trade volume so far").
//!
//! No event is stored. Every metric event is folded into running
//! accumulators per (tenant, channel, period) and per distinct `dims`
//! combination, from the moment the shard starts, so a subscription made
//! mid-day gets the day's totals at once for any filter: the sum of the
//! groups its filter matches. A period's accumulators are reset when the
//! next period begins (by the event's `ts`, or by the clock). Each
//! subscribed (spec, agg, metric) is a latest-value stream like a window's:
//! encoded once, conflated, published at most every [`UPDATE_EVERY_US`].

use super::outputs::{self, write_str, StreamIds};
use super::window::Agg;
use crate::config::{clock_minutes, CalendarConfig};
use crate::fanout::latest::{Latest, LatestTable, StreamId};
use crate::frame;
use crate::model::channel::{Catalogue, ChannelId};
use crate::model::event::MetricEvent;
use crate::protocol;
use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

/// How often a changed running total is published.
pub const UPDATE_EVERY_US: u64 = 100_000;

/// A calendar period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Period {
    /// From `day_start` to the next.
    Day,
    /// A 24th of a day, on the hour of the configured zone.
    Hour,
    /// From `session_start` to the next (when configured).
    Session,
}

impl Period {
    const ALL: [Period; 3] = [Period::Day, Period::Hour, Period::Session];

    /// Parses the wire spelling of `window`.
    pub fn parse(s: &str) -> Option<Period> {
        Period::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Hour => "hour",
            Period::Session => "session",
        }
    }
}

/// Where periods begin: a fixed UTC offset, day and session starts.
#[derive(Clone, Copy, Debug)]
pub struct Calendar {
    offset_us: i64,
    day_us: u64,
    day_start_us: u64,
    session_start_us: Option<u64>,
}

impl Calendar {
    /// The calendar of `cfg` (checked when the catalogue was built).
    pub fn new(cfg: &CalendarConfig) -> Self {
        let day_us = cfg.day_secs * 1_000_000;
        // A start time is a fraction of the day, so a shortened test day keeps it.
        let at = |hhmm: &str| u64::from(clock_minutes(hhmm).unwrap_or(0)) * day_us / 1_440;
        Calendar {
            offset_us: i64::from(cfg.utc_offset_minutes) * day_us as i64 / 1_440,
            day_us,
            day_start_us: at(&cfg.day_start),
            session_start_us: cfg.session_start.as_deref().map(at),
        }
    }

    /// Whether `period` is offered (`session` needs `session_start`).
    pub fn offers(&self, period: Period) -> bool {
        period != Period::Session || self.session_start_us.is_some()
    }

    /// (length, start within the day) of `period`.
    fn shape(&self, period: Period) -> (u64, u64) {
        match period {
            Period::Day => (self.day_us, self.day_start_us),
            Period::Hour => (self.day_us / 24, 0),
            Period::Session => (self.day_us, self.session_start_us.unwrap_or(0)),
        }
    }

    /// The index of the period holding `ts_us` (UNIX µs).
    pub fn index(&self, period: Period, ts_us: u64) -> u64 {
        let (len, start) = self.shape(period);
        let local = (ts_us as i64 + self.offset_us - start as i64).max(0) as u64;
        local / len
    }

    /// When period `index` begins, UNIX µs.
    pub fn start_us(&self, period: Period, index: u64) -> u64 {
        let (len, start) = self.shape(period);
        ((index * len + start) as i64 - self.offset_us).max(0) as u64
    }
}

/// One metric's running figures within a period.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Acc {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    first: (u64, f64),
    last: (u64, f64),
}

impl Acc {
    fn add(&mut self, value: f64, ts_us: u64) {
        self.merge(&Acc {
            count: 1,
            sum: value,
            min: value,
            max: value,
            first: (ts_us, value),
            last: (ts_us, value),
        });
    }

    fn merge(&mut self, o: &Acc) {
        if o.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *o;
            return;
        }
        self.count += o.count;
        self.sum += o.sum;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        if o.first.0 < self.first.0 {
            self.first = o.first;
        }
        if o.last.0 >= self.last.0 {
            self.last = o.last;
        }
    }

    /// The value of `agg` so far; `delta` is the change since the period's
    /// first value.
    fn value(&self, agg: Agg) -> Option<f64> {
        let any = self.count > 0;
        match agg {
            Agg::Sum => Some(self.sum),
            Agg::Count => Some(self.count as f64),
            Agg::Avg => any.then(|| self.sum / self.count as f64),
            Agg::Min => any.then_some(self.min),
            Agg::Max => any.then_some(self.max),
            Agg::Last => any.then_some(self.last.1),
            Agg::Delta => any.then_some(self.last.1 - self.first.1),
        }
    }
}

/// Dimension values of an event, sorted: one accumulator group each.
type Dims = Vec<(String, String)>;

/// One period's running accumulators of a tenant's channel.
#[derive(Debug)]
struct PeriodTotals {
    period: Period,
    index: u64,
    groups: HashMap<Dims, Vec<Acc>>,
}

/// One tenant's channel: every offered period, and a revision counter that
/// numbers its updates (`seq`).
#[derive(Debug)]
struct Totals {
    revision: u64,
    periods: Vec<PeriodTotals>,
}

impl Totals {
    /// Empty totals of the periods holding `now_us`.
    fn new(calendar: &Calendar, now_us: u64) -> Self {
        Totals {
            revision: 0,
            periods: Period::ALL
                .into_iter()
                .filter(|p| calendar.offers(*p))
                .map(|period| PeriodTotals {
                    period,
                    index: calendar.index(period, now_us),
                    groups: HashMap::new(),
                })
                .collect(),
        }
    }
}

/// What one calendar computation is keyed by.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CalendarSpec {
    /// Owning tenant.
    pub tenant: Arc<str>,
    /// A `metrics.*` channel.
    pub channel: ChannelId,
    /// The period.
    pub period: Period,
    /// `(dimension, value)` pairs every counted event must carry, sorted.
    pub filter: Vec<(String, String)>,
}

#[derive(Debug)]
struct Output {
    agg: Agg,
    metric: u16,
    stream: StreamId,
    refs: u32,
    /// (period index, value) last published.
    last_sent: Option<(u64, Option<f64>)>,
}

impl outputs::Computation for SpecState {
    type Spec = CalendarSpec;
    type Out = Output;
    fn spec(&self) -> &CalendarSpec {
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

#[derive(Debug)]
struct SpecState {
    spec: CalendarSpec,
    outputs: Vec<Output>,
    dirty: bool,
}

/// Counters of one shard's calendar totals.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CalendarCounters {
    /// Events for a period that had already ended.
    pub late: u64,
    /// Events left out because their `dims` group was past `max_groups`.
    pub over_groups: u64,
}

/// Every calendar total one shard keeps, and the streams subscribed to them.
#[derive(Debug)]
pub struct CalendarStreams {
    catalogue: Arc<Catalogue>,
    calendar: Calendar,
    max_groups: usize,
    totals: HashMap<(Arc<str>, ChannelId), Totals>,
    specs: HashMap<(Arc<str>, ChannelId), Vec<SpecState>>,
    ids: StreamIds,
    last_update_us: u64,
    counters: CalendarCounters,
    scratch: Vec<u8>,
}

impl CalendarStreams {
    /// Running totals on the periods of `cfg`.
    pub fn new(catalogue: Arc<Catalogue>, cfg: &CalendarConfig) -> Self {
        CalendarStreams {
            catalogue,
            calendar: Calendar::new(cfg),
            max_groups: cfg.max_groups,
            totals: HashMap::new(),
            specs: HashMap::new(),
            ids: StreamIds::new(StreamId::calendar),
            last_update_us: 0,
            counters: CalendarCounters::default(),
            scratch: Vec::new(),
        }
    }

    /// The calendar, to check a subscribe's `window`.
    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    /// Counters so far.
    pub fn counters(&self) -> CalendarCounters {
        self.counters
    }

    /// Folds a metric event into its tenant's running totals.
    pub fn on_event(&mut self, ev: &MetricEvent) {
        let metrics = self.catalogue.get(ev.channel).metrics.len();
        let calendar = self.calendar;
        let key = (ev.tenant.clone(), ev.channel);
        let totals = self
            .totals
            .entry(key.clone())
            .or_insert_with(|| Totals::new(&calendar, ev.ts_us));
        totals.revision += 1;
        let mut dims = ev.dims.clone();
        dims.sort();
        for pt in &mut totals.periods {
            let index = calendar.index(pt.period, ev.ts_us);
            if index < pt.index {
                self.counters.late += 1;
                continue;
            }
            if index > pt.index {
                (pt.index, pt.groups) = (index, HashMap::new());
            }
            if !pt.groups.contains_key(&dims) && pt.groups.len() >= self.max_groups {
                self.counters.over_groups += 1;
                continue;
            }
            let accs = pt
                .groups
                .entry(dims.clone())
                .or_insert_with(|| vec![Acc::default(); metrics]);
            for &(m, value) in &ev.values {
                if let Some(acc) = accs.get_mut(usize::from(m)) {
                    acc.add(value, ev.ts_us);
                }
            }
        }
        for state in self.specs.get_mut(&key).into_iter().flatten() {
            state.dirty |= ev.matches(&state.spec.filter);
        }
    }

    /// When [`CalendarStreams::publish_due`] next looks at the totals;
    /// `None` with none kept.
    pub fn next_update_us(&self) -> Option<u64> {
        (!self.totals.is_empty()).then_some(self.last_update_us + UPDATE_EVERY_US)
    }

    /// Starts the periods that began by `now_us`, and publishes the totals
    /// that changed (at most every [`UPDATE_EVERY_US`]) into `table`,
    /// appending their streams to `changed`.
    pub fn publish_due(
        &mut self,
        now_us: u64,
        table: &mut LatestTable,
        changed: &mut Vec<StreamId>,
    ) {
        if now_us < self.last_update_us + UPDATE_EVERY_US {
            return;
        }
        self.last_update_us = now_us;
        for (key, totals) in &mut self.totals {
            let mut rolled = false;
            for pt in &mut totals.periods {
                let index = self.calendar.index(pt.period, now_us);
                if index > pt.index {
                    (pt.index, pt.groups) = (index, HashMap::new());
                    rolled = true;
                }
            }
            if rolled {
                totals.revision += 1;
            }
            let Some(states) = self.specs.get_mut(key) else {
                continue;
            };
            for state in states.iter_mut().filter(|s| s.dirty || rolled) {
                state.dirty = false;
                let ctx = Ctx {
                    catalogue: &self.catalogue,
                    calendar: &self.calendar,
                    totals,
                };
                for out in &mut state.outputs {
                    if let Some(latest) = ctx.update(&state.spec, out, &mut self.scratch) {
                        if table.publish(out.stream, latest) {
                            changed.push(out.stream);
                        }
                    }
                }
            }
        }
    }

    /// Adds one subscriber to the (spec, agg, metric) streams; each new
    /// stream starts with the totals so far in `table` (its snapshot).
    /// Returns the stream of each metric in order.
    pub fn subscribe(
        &mut self,
        spec: &CalendarSpec,
        agg: Agg,
        metrics: &[u16],
        now_us: u64,
        table: &mut LatestTable,
    ) -> Vec<StreamId> {
        let key = (spec.tenant.clone(), spec.channel);
        let calendar = self.calendar;
        let totals = self
            .totals
            .entry(key.clone())
            .or_insert_with(|| Totals::new(&calendar, now_us));
        let states = self.specs.entry(key.clone()).or_default();
        let at = match states.iter().position(|s| s.spec == *spec) {
            Some(i) => i,
            None => {
                states.push(SpecState {
                    spec: spec.clone(),
                    outputs: Vec::new(),
                    dirty: false,
                });
                states.len() - 1
            }
        };
        let state = &mut states[at];
        let mut streams = Vec::with_capacity(metrics.len());
        for &metric in metrics {
            if let Some(out) = state
                .outputs
                .iter_mut()
                .find(|o| o.agg == agg && o.metric == metric)
            {
                out.refs += 1;
                streams.push(out.stream);
                continue;
            }
            let stream = self.ids.take();
            let mut out = Output {
                agg,
                metric,
                stream,
                refs: 1,
                last_sent: None,
            };
            let ctx = Ctx {
                catalogue: &self.catalogue,
                calendar: &self.calendar,
                totals,
            };
            if let Some(latest) = ctx.update(spec, &mut out, &mut self.scratch) {
                table.publish(stream, latest);
            }
            state.outputs.push(out);
            streams.push(stream);
        }
        streams
    }

    /// Drops one subscriber from the (spec, agg, metric) streams; a stream
    /// without subscribers is cleared from `table` and its id reused.
    pub fn unsubscribe(
        &mut self,
        spec: &CalendarSpec,
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
}

/// What computing one output's update reads.
struct Ctx<'a> {
    catalogue: &'a Catalogue,
    calendar: &'a Calendar,
    totals: &'a Totals,
}

impl Ctx<'_> {
    /// The output's value now, encoded, when it differs from what it last
    /// published (or the period changed); records it as sent.
    fn update(
        &self,
        spec: &CalendarSpec,
        out: &mut Output,
        scratch: &mut Vec<u8>,
    ) -> Option<Latest> {
        let pt = self
            .totals
            .periods
            .iter()
            .find(|p| p.period == spec.period)?;
        let mut acc = Acc::default();
        for (dims, accs) in &pt.groups {
            let matches = spec
                .filter
                .iter()
                .all(|(k, v)| dims.iter().any(|(dk, dv)| dk == k && dv == v));
            if matches {
                acc.merge(&accs[usize::from(out.metric)]);
            }
        }
        let value = acc.value(out.agg);
        let previous = match out.last_sent {
            Some((index, v)) if index == pt.index => {
                if v == value {
                    return None;
                }
                v
            }
            _ => None,
        };
        out.last_sent = Some((pt.index, value));
        let channel = self.catalogue.get(spec.channel);
        let start_ms = self.calendar.start_us(spec.period, pt.index) / 1_000;
        scratch.clear();
        scratch.extend_from_slice(br#"{"type":"metrics","channel":"#);
        write_str(scratch, &channel.name);
        let _ = write!(
            scratch,
            r#","seq":{},"window":"{}","period_start":{start_ms},"values":{{"#,
            self.totals.revision,
            spec.period.as_str(),
        );
        write_str(scratch, &channel.metrics[usize::from(out.metric)]);
        scratch.extend_from_slice(br#":{"value":"#);
        match value {
            Some(v) => {
                protocol::write_number(scratch, v);
            }
            None => scratch.extend_from_slice(b"null"),
        }
        if let (Some(v), Some(p)) = (value, previous) {
            scratch.extend_from_slice(br#","delta":"#);
            protocol::write_number(scratch, v - p);
        }
        scratch.extend_from_slice(b"}}}");
        let frame = frame::text(scratch);
        Some(Latest {
            seq: self.totals.revision,
            ts_us: crate::clock::now_us(),
            payload_at: frame.len() - scratch.len(),
            frame,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ChannelsConfig;

    fn event(cat: &Catalogue, ts_us: u64, book: &str, volume: f64) -> MetricEvent {
        MetricEvent {
            tenant: "t1".into(),
            channel: cat.find("metrics.trading").unwrap().0,
            ts_us,
            dims: vec![("book".into(), book.into())],
            values: vec![(1, volume)],
        }
    }

    fn value(table: &LatestTable, stream: StreamId) -> serde_json::Value {
        serde_json::from_slice(table.get(stream).unwrap().payload()).unwrap()
    }

    #[test]
    fn periods_follow_the_offset_and_the_day_start() {
        let cfg = CalendarConfig {
            utc_offset_minutes: 60,
            day_start: "06:00".into(),
            ..CalendarConfig::default()
        };
        let cal = Calendar::new(&cfg);
        let hour = 3_600_000_000u64;
        // 05:00 UTC is 06:00 local: the day starts there.
        let day = cal.index(Period::Day, 10_000 * 24 * hour + 5 * hour);
        assert_eq!(
            cal.start_us(Period::Day, day),
            10_000 * 24 * hour + 5 * hour
        );
        assert_eq!(
            cal.index(Period::Day, 10_000 * 24 * hour + 5 * hour - 1),
            day - 1
        );
        assert!(!cal.offers(Period::Session));
        assert_eq!(Period::parse("hour"), Some(Period::Hour));
    }

    #[test]
    fn totals_so_far_for_any_filter_then_deltas_and_a_reset_at_the_boundary() {
        let cat = Arc::new(Catalogue::new(&ChannelsConfig::default()).unwrap());
        let cfg = CalendarConfig {
            day_secs: 24,
            ..CalendarConfig::default()
        };
        let mut cal = CalendarStreams::new(cat.clone(), &cfg);
        let mut table = LatestTable::default();
        let day0 = 1_000 * 24_000_000u64;
        cal.on_event(&event(&cat, day0 + 1, "FX1", 10.0));
        cal.on_event(&event(&cat, day0 + 2, "FX2", 5.0));
        let spec = CalendarSpec {
            tenant: "t1".into(),
            channel: cat.find("metrics.trading").unwrap().0,
            period: Period::Day,
            filter: vec![("book".into(), "FX1".into())],
        };
        let [stream] = cal.subscribe(&spec, Agg::Sum, &[1], day0 + 3, &mut table)[..] else {
            panic!("one stream")
        };
        let snap = value(&table, stream);
        assert_eq!(
            snap["values"]["trade_volume"],
            serde_json::json!({"value":10})
        );
        assert_eq!(snap["period_start"], day0 / 1_000);

        let mut changed = Vec::new();
        cal.on_event(&event(&cat, day0 + 3, "FX1", 2.5));
        cal.publish_due(day0 + 200_000, &mut table, &mut changed);
        assert_eq!(changed, [stream]);
        let v = value(&table, stream);
        assert_eq!(
            v["values"]["trade_volume"],
            serde_json::json!({"value":12.5,"delta":2.5})
        );
        changed.clear();
        cal.publish_due(day0 + 24_000_000, &mut table, &mut changed);
        let v = value(&table, stream);
        assert_eq!(v["values"]["trade_volume"], serde_json::json!({"value":0}));
        assert_eq!(v["period_start"], (day0 + 24_000_000) / 1_000);
        cal.unsubscribe(&spec, Agg::Sum, &[1], &mut table);
        assert!(table.get(stream).is_none());
    }
}
