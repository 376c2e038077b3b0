//! Simulated trading desks: the analytics and events behind the simulator.
//!
//! A few tenants each trade the first simulated symbols in three books
//! (`FX1`, `FX2` on desk `fx`, `RATES1` on desk `rates`). One step is one
//! trade at the simulated mid, which moves a position; it yields one event
//! on each `metrics.*` channel: the trade, the position it changed, and the
//! book's risk and P&L marked at the current mids. Each book's appetite
//! drifts, so exposure sometimes runs up to its limit: utilization crossing
//! 80 % / 95 % raises a `risk_limit` alert, losses crossing the same
//! fractions of the loss limit a `loss_limit` one (and a critical loss an
//! emergency stop). Each tenant's trading session moves through started,
//! paused, completed, expired and emergency_stopped, with its P&L and
//! utilization, and its users get a notification of each change.
//!
//! Everything depends only on the seed, the mids passed in and the number
//! of steps: the wall clock only decides how many steps are due.

use super::book::{Book, Level, Position, CRITICAL_PCT, WARNING_PCT};
use super::keyed;
use crate::model::channel::{Catalogue, ChannelId, ALERTS, NOTIFICATIONS, SESSIONS};
use crate::model::event::{Event, MetricEvent, ReliableEvent};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Tenants and the users who get their notifications. `local` is the
/// tenant of the dev token that `serve` prints, so `watch` shows it.
const TENANTS: [(&str, &[&str]); 3] = [
    ("local", &["local"]),
    ("acme", &["alice", "bob"]),
    ("globex", &["carol"]),
];
/// Books and the desk each belongs to.
const BOOKS: [(&str, &str); 3] = [("FX1", "fx"), ("FX2", "fx"), ("RATES1", "rates")];
/// Symbols traded: the first ones of the universe, dealt to books in turn.
pub const TRADED_SYMBOLS: usize = 12;
/// Largest position per symbol, in lots.
const MAX_LOTS: f64 = 50.0;
/// Trade sizes, in lots.
const TRADE_LOTS: [f64; 5] = [1.0, 1.0, 2.0, 3.0, 5.0];
/// A book's loss limit as a fraction of its exposure limit.
const LOSS_LIMIT: f64 = 0.004;
/// One-day 99 % VaR per unit of exposure (2.33 σ, σ = 0.6 % a day).
const VAR_PER_EXPOSURE: f64 = 2.33 * 0.006;
/// Largest change of a book's appetite per trade.
const BIAS_STEP: f64 = 0.06;
/// Mean seconds a session runs, pauses, or waits before the next one starts.
const SESSION_RUN_S: f64 = 90.0;
const SESSION_PAUSE_S: f64 = 10.0;
const SESSION_GAP_S: f64 = 5.0;

/// The metric names of one channel, in the order values are given.
const TRADING: [&str; 6] = [
    "trade_count",
    "trade_volume",
    "trade_notional",
    "order_count",
    "fill_rate",
    "avg_latency",
];
const POSITIONS: [&str; 2] = ["position_value", "position_pnl"];
const RISK: [&str; 3] = ["exposure", "utilization", "var"];
const PNL: [&str; 3] = ["realized_pnl", "unrealized_pnl", "total_pnl"];

/// A `metrics.*` channel of the catalogue and the index of each of our
/// metric names in it; metrics the catalogue lacks are left out.
struct MetricChannel {
    id: ChannelId,
    index: Vec<Option<u16>>,
}

impl MetricChannel {
    fn find(cat: &Catalogue, name: &str, metrics: &[&str]) -> Option<MetricChannel> {
        let (id, def) = cat.find(name)?;
        Some(MetricChannel {
            id,
            index: metrics.iter().map(|m| def.metric_index(m)).collect(),
        })
    }

    fn event(
        &self,
        tenant: &Arc<str>,
        ts_us: u64,
        dims: Vec<(String, String)>,
        values: &[f64],
    ) -> Option<Event> {
        let values: Vec<(u16, f64)> = self
            .index
            .iter()
            .zip(values)
            .filter_map(|(i, v)| i.map(|i| (i, *v)))
            .collect();
        (!values.is_empty()).then(|| {
            Event::Metric(MetricEvent {
                tenant: tenant.clone(),
                channel: self.id,
                ts_us,
                dims,
                values,
            })
        })
    }
}

/// Where each kind of event goes; `None` when the catalogue lacks it.
struct Channels {
    trading: Option<MetricChannel>,
    positions: Option<MetricChannel>,
    risk: Option<MetricChannel>,
    pnl: Option<MetricChannel>,
    alerts: Option<ChannelId>,
    sessions: Option<ChannelId>,
    notifications: Option<ChannelId>,
    exposure: Option<ChannelId>,
    lp: Option<ChannelId>,
}

impl Channels {
    /// Looks up every channel the desks write to.
    fn find(cat: &Catalogue) -> Channels {
        Channels {
            trading: MetricChannel::find(cat, "metrics.trading", &TRADING),
            positions: MetricChannel::find(cat, "metrics.positions", &POSITIONS),
            risk: MetricChannel::find(cat, "metrics.risk", &RISK),
            pnl: MetricChannel::find(cat, "metrics.pnl", &PNL),
            alerts: cat.find(ALERTS).map(|(id, _)| id),
            sessions: cat.find(SESSIONS).map(|(id, _)| id),
            notifications: cat.find(NOTIFICATIONS).map(|(id, _)| id),
            exposure: cat.find("exposure").map(|(id, _)| id),
            lp: cat.find("lp.performance").map(|(id, _)| id),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Started,
    Paused,
    Completed,
    Expired,
    EmergencyStopped,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Started => "started",
            Status::Paused => "paused",
            Status::Completed => "completed",
            Status::Expired => "expired",
            Status::EmergencyStopped => "emergency_stopped",
        }
    }
}

struct Tenant {
    name: Arc<str>,
    users: &'static [&'static str],
    books: Vec<Book>,
    session: u64,
    /// `None` until the first session starts.
    status: Option<Status>,
    /// Steps until the next session change.
    countdown: u64,
}

/// A symbol the desks trade.
pub struct Traded {
    /// Symbol name, the `symbol` dimension.
    pub name: String,
    /// Mid price at the start, for limits.
    pub start: f64,
    /// One lot, in units of the symbol.
    pub lot: f64,
}

/// The simulated desks of every tenant.
pub struct Desks {
    rng: StdRng,
    names: Vec<String>,
    channels: Channels,
    tenants: Vec<Tenant>,
    steps_per_sec: f64,
}

impl Desks {
    /// Desks trading the first [`TRADED_SYMBOLS`] of `symbols` (in universe
    /// order), taking `steps_per_sec` steps a second; `None` when there is
    /// nothing to trade.
    pub fn new(
        cat: &Catalogue,
        symbols: &[Traded],
        seed: u64,
        steps_per_sec: f64,
    ) -> Option<Desks> {
        let symbols = &symbols[..symbols.len().min(TRADED_SYMBOLS)];
        let tenants: Vec<Tenant> = TENANTS
            .iter()
            .map(|&(name, users)| Tenant {
                name: name.into(),
                users,
                books: books(symbols),
                session: 0,
                status: None,
                countdown: 0,
            })
            .filter(|t| !t.books.is_empty())
            .collect();
        (!tenants.is_empty() && steps_per_sec > 0.0).then(|| Desks {
            // Its own stream, so enabling events leaves the quote sequence alone.
            rng: StdRng::seed_from_u64(seed ^ 0x0DE5_C0DE),
            names: symbols.iter().map(|s| s.name.clone()).collect(),
            channels: Channels::find(cat),
            tenants,
            steps_per_sec,
        })
    }

    /// One step at `ts_us` with the current `mids` (by universe index):
    /// a trade for one tenant's book, or its marks while its session is
    /// not running, then any alerts and session changes that follow.
    pub fn step(&mut self, ts_us: u64, mids: &[f64], out: &mut Vec<Event>) {
        let t = self.rng.random_range(0..self.tenants.len());
        self.advance_session(t, mids, out);
        let tenant = &mut self.tenants[t];
        let b = self.rng.random_range(0..tenant.books.len());
        let book = &mut tenant.books[b];
        book.bias = (book.bias + (self.rng.random::<f64>() - 0.5) * BIAS_STEP).clamp(-1.0, 1.0);
        let k = self.rng.random_range(0..book.symbols.len());
        if tenant.status == Some(Status::Started) {
            self.trade(t, b, k, ts_us, mids, out);
        }
        self.mark_position(t, b, k, ts_us, mids, out);
        let (utilization, pnl) = self.mark_book(t, b, ts_us, mids, out);
        self.check_limits(t, b, utilization, pnl, mids, out);
    }

    /// Trades symbol `k` of book `b` near its mid, leaning with the book's
    /// appetite, and emits the trade on `metrics.trading`.
    fn trade(
        &mut self,
        t: usize,
        b: usize,
        k: usize,
        ts_us: u64,
        mids: &[f64],
        out: &mut Vec<Event>,
    ) {
        let book = &mut self.tenants[t].books[b];
        let (symbol, lot) = book.symbols[k];
        let position = &mut book.positions[k];
        let lots = TRADE_LOTS[self.rng.random_range(0..TRADE_LOTS.len())];
        let held = position.qty / (MAX_LOTS * lot);
        // Positions settle near 0.75 x the bias x the limit, short of the alert levels but for runs of luck.
        let buy = self.rng.random::<f64>() < 0.5 + 0.3 * book.bias - 0.4 * held;
        let qty = if buy { lots * lot } else { -lots * lot };
        let qty = (position.qty + qty).clamp(-MAX_LOTS * lot, MAX_LOTS * lot) - position.qty;
        // Fills within a basis point of the mid, either side.
        let price = mids[symbol] * (1.0 + (self.rng.random::<f64>() - 0.5) * 2e-4);
        let orders = self.rng.random_range(1..=3u32);
        let latency_ms = 0.2 + self.rng.random::<f64>().powi(3) * 4.0;
        if qty != 0.0 {
            position.fill(qty, price);
        }
        let dims = self.symbol_dims(t, b, k);
        if let Some(ch) = &self.channels.trading {
            out.extend(ch.event(
                &self.tenants[t].name,
                ts_us,
                dims,
                &[
                    1.0,
                    qty.abs(),
                    round2(qty.abs() * price),
                    f64::from(orders),
                    1.0 / f64::from(orders),
                    round2(latency_ms),
                ],
            ));
        }
        let lp = self.rng.random_range(0..keyed::LPS.len());
        let tenant = &self.tenants[t].name;
        out.extend(keyed::lp_fill(
            self.channels.lp,
            tenant,
            lp,
            latency_ms,
            1.0 / f64::from(orders),
        ));
    }

    /// Emits the value and P&L of symbol `k`'s position in book `b` on
    /// `metrics.positions`.
    fn mark_position(
        &self,
        t: usize,
        b: usize,
        k: usize,
        ts_us: u64,
        mids: &[f64],
        out: &mut Vec<Event>,
    ) {
        let tenant = &self.tenants[t];
        let book = &tenant.books[b];
        let position = &book.positions[k];
        let (symbol, _) = book.symbols[k];
        let mid = mids[symbol];
        if let Some(ch) = &self.channels.positions {
            out.extend(ch.event(
                &tenant.name,
                ts_us,
                self.symbol_dims(t, b, k),
                &[
                    round2(position.qty * mid),
                    round2(position.realized + position.unrealized(mid)),
                ],
            ));
        }
        let name = &self.names[symbol];
        let ch = self.channels.exposure;
        out.extend(keyed::exposure(
            ch,
            &tenant.name,
            &tenant.books,
            symbol,
            name,
            mid,
        ));
    }

    /// Emits book `b`'s risk and P&L on `metrics.risk` and `metrics.pnl`;
    /// returns its utilization (percent of its limit) and total P&L.
    fn mark_book(
        &self,
        t: usize,
        b: usize,
        ts_us: u64,
        mids: &[f64],
        out: &mut Vec<Event>,
    ) -> (f64, f64) {
        let tenant = &self.tenants[t];
        let book = &tenant.books[b];
        let exposure = book.exposure(mids);
        let utilization = exposure / book.limit * 100.0;
        if let Some(ch) = &self.channels.risk {
            out.extend(ch.event(
                &tenant.name,
                ts_us,
                book.dims(),
                &[
                    round2(exposure),
                    round2(utilization),
                    round2(exposure * VAR_PER_EXPOSURE),
                ],
            ));
        }
        let (realized, unrealized) = book.pnl(mids);
        if let Some(ch) = &self.channels.pnl {
            out.extend(ch.event(
                &tenant.name,
                ts_us,
                book.dims(),
                &[
                    round2(realized),
                    round2(unrealized),
                    round2(realized + unrealized),
                ],
            ));
        }
        (utilization, realized + unrealized)
    }

    fn symbol_dims(&self, t: usize, b: usize, k: usize) -> Vec<(String, String)> {
        let book = &self.tenants[t].books[b];
        let mut dims = book.dims();
        let (symbol, _) = book.symbols[k];
        dims.push(("symbol".into(), self.names[symbol].clone()));
        dims
    }

    /// Raises `risk_limit` and `loss_limit` alerts when a level rises (and
    /// an `info` when it is back to normal); a critical loss stops the
    /// tenant's trading.
    fn check_limits(
        &mut self,
        t: usize,
        b: usize,
        utilization: f64,
        pnl: f64,
        mids: &[f64],
        out: &mut Vec<Event>,
    ) {
        let tenant = &mut self.tenants[t];
        let book = &mut tenant.books[b];
        let loss_limit = book.limit * LOSS_LIMIT;
        let loss_pct = (-pnl / loss_limit * 100.0).max(0.0);
        let risk = (book.risk_level, book.risk_level.next(utilization));
        let loss = (book.loss_level, book.loss_level.next(loss_pct));
        (book.risk_level, book.loss_level) = (risk.1, loss.1);
        let name = book.name;
        let mut alerts = Vec::new();
        if let Some(a) = limit_alert(
            name,
            "risk_limit",
            "its risk limit",
            risk,
            utilization,
            |th| th,
        ) {
            alerts.push(a);
        }
        if let Some(a) = limit_alert(name, "loss_limit", "its loss limit", loss, pnl, |th| {
            -loss_limit * th / 100.0
        }) {
            alerts.push(a);
        }
        let stop = loss.1 == Level::Critical
            && loss.0 != Level::Critical
            && tenant.status == Some(Status::Started);
        if stop {
            alerts.push(json!({
                "level": "critical", "kind": "emergency_stop", "book": name,
                "message": format!("Trading stopped for {}: book {name} breached its loss limit", tenant.name),
                "current": round2(pnl), "threshold": round2(-loss_limit * CRITICAL_PCT / 100.0),
            }));
        }
        if let Some(ch) = self.channels.alerts {
            for data in alerts {
                out.push(reliable(&self.tenants[t].name, ch, None, data));
            }
        }
        if stop {
            self.change_session(t, Status::EmergencyStopped, mids, out);
        }
    }

    /// Counts down the tenant's session clock and moves it on when it runs
    /// out (the first step of each tenant starts its first session).
    fn advance_session(&mut self, t: usize, mids: &[f64], out: &mut Vec<Event>) {
        let tenant = &mut self.tenants[t];
        if tenant.status.is_some() && tenant.countdown > 0 {
            tenant.countdown -= 1;
            return;
        }
        let next = match tenant.status {
            Some(Status::Started) => {
                let roll = self.rng.random::<f64>();
                if roll < 0.6 {
                    Status::Paused
                } else if roll < 0.9 {
                    Status::Completed
                } else {
                    Status::Expired
                }
            }
            _ => Status::Started,
        };
        self.change_session(t, next, mids, out);
    }

    fn change_session(&mut self, t: usize, status: Status, mids: &[f64], out: &mut Vec<Event>) {
        let tenant = &mut self.tenants[t];
        let resumed = tenant.status == Some(Status::Paused) && status == Status::Started;
        if status == Status::Started && !resumed {
            // A new session: P&L and limit levels start from zero.
            tenant.session += 1;
            for book in &mut tenant.books {
                for (position, &(s, _)) in book.positions.iter_mut().zip(&book.symbols) {
                    position.realized = 0.0;
                    if position.qty != 0.0 {
                        position.avg = mids[s];
                    }
                }
                book.loss_level = Level::Normal;
            }
        }
        tenant.status = Some(status);
        let mean_s = match status {
            Status::Started => SESSION_RUN_S,
            Status::Paused => SESSION_PAUSE_S,
            _ => SESSION_GAP_S,
        };
        // Exponential durations, counted in this tenant's share of the steps.
        let steps = mean_s * self.steps_per_sec / self.tenants.len() as f64;
        let draw = -(1.0 - self.rng.random::<f64>()).ln() * steps;
        let tenant = &mut self.tenants[t];
        tenant.countdown = draw.round().max(1.0) as u64;
        let (pnl, utilization) = tenant.books.iter().fold((0.0, 0.0f64), |(p, u), book| {
            let (r, un) = book.pnl(mids);
            (p + r + un, u.max(book.exposure(mids) / book.limit * 100.0))
        });
        let session = format!("{}-s{}", tenant.name, tenant.session);
        if let Some(ch) = self.channels.sessions {
            let data = json!({
                "session": session, "status": status.as_str(),
                "pnl": round2(pnl), "utilization": round2(utilization),
            });
            out.push(reliable(&tenant.name, ch, None, data));
        }
        if let Some(ch) = self.channels.notifications {
            for user in tenant.users {
                let data = json!({
                    "title": format!("Session {session} {}", status.as_str().replace('_', " ")),
                    "body": format!("P&L {:.2}, peak book utilization {:.1}%", pnl, utilization),
                });
                out.push(reliable(&tenant.name, ch, Some(user), data));
            }
        }
    }
}

/// One tenant's books, empty and flat: symbols are dealt to the books in
/// turn, and a book's limit is [`MAX_LOTS`] of each of its symbols at the
/// starting price. Books left with nothing to trade are left out.
fn books(symbols: &[Traded]) -> Vec<Book> {
    BOOKS
        .iter()
        .enumerate()
        .map(|(b, &(name, desk))| {
            let traded: Vec<(usize, f64)> = symbols
                .iter()
                .enumerate()
                .skip(b)
                .step_by(BOOKS.len())
                .map(|(s, sym)| (s, sym.lot))
                .collect();
            let limit = traded
                .iter()
                .map(|&(s, lot)| MAX_LOTS * lot * symbols[s].start)
                .sum();
            Book {
                name,
                desk,
                positions: vec![Position::default(); traded.len()],
                symbols: traded,
                limit,
                bias: 0.0,
                risk_level: Level::Normal,
                loss_level: Level::Normal,
            }
        })
        .filter(|b| !b.symbols.is_empty() && b.limit > 0.0)
        .collect()
}

/// The alert for a level change `(from, to)` of `value` against a limit;
/// `threshold` turns a threshold percent into the figure it stands for.
fn limit_alert(
    book: &str,
    kind: &str,
    limit: &str,
    (from, to): (Level, Level),
    value: f64,
    threshold: impl Fn(f64) -> f64,
) -> Option<Value> {
    let (level, pct) = match (from, to) {
        (f, Level::Critical) if f != Level::Critical => ("critical", CRITICAL_PCT),
        (Level::Normal, Level::Warning) => ("warning", WARNING_PCT),
        (f, Level::Normal) if f != Level::Normal => ("info", WARNING_PCT),
        _ => return None,
    };
    let message = if level == "info" {
        format!("Book {book} back within {limit}")
    } else {
        format!("Book {book} past {pct:.0}% of {limit}")
    };
    Some(json!({
        "level": level, "kind": kind, "book": book, "message": message,
        "current": round2(value), "threshold": round2(threshold(pct)),
    }))
}

fn reliable(tenant: &Arc<str>, channel: ChannelId, sub: Option<&str>, data: Value) -> Event {
    let data = match data {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    Event::Reliable(ReliableEvent {
        tenant: tenant.clone(),
        channel,
        sub: sub.map(Arc::from),
        data,
        stamp: None,
    })
}

/// Cents: the figures read like money, and stay finite.
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ChannelsConfig;
    use crate::model::channel::{Channel, ChannelKind};
    use crate::model::event::{parse_event, EventRules};
    use std::collections::{BTreeMap, HashMap};

    fn catalogue() -> Catalogue {
        Catalogue::new(&ChannelsConfig::default()).unwrap()
    }

    /// The `POST /v1/publish` shape of a generated event.
    fn publish_json(ev: &Event, cat: &Catalogue) -> Value {
        match ev {
            Event::Metric(m) => {
                let def = cat.get(m.channel);
                let dims: Map<_, _> = m
                    .dims
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone().into()))
                    .collect();
                let values: Map<_, _> = m
                    .values
                    .iter()
                    .map(|&(i, v)| (def.metrics[usize::from(i)].clone(), v.into()))
                    .collect();
                json!({"channel": def.name, "tenant": &*m.tenant, "ts": m.ts_us,
                    "dims": dims, "values": values})
            }
            Event::Reliable(r) => {
                let mut v = json!({"channel": cat.get(r.channel).name,
                    "tenant": &*r.tenant, "data": r.data});
                if let Some(sub) = &r.sub {
                    v["sub"] = sub.to_string().into();
                }
                v
            }
            Event::Keyed(k) => json!({"channel": cat.get(k.channel).name,
                "tenant": &*k.tenant, "key": &*k.key, "data": k.data}),
        }
    }

    /// `steps` desk steps over twelve symbols whose mids walk randomly
    /// (a basis point per step at most), one step per millisecond.
    fn run(seed: u64, steps: u64) -> Vec<Event> {
        let symbols: Vec<Traded> = (0..TRADED_SYMBOLS)
            .map(|i| Traded {
                name: format!("S{i}"),
                start: 1.0 + i as f64,
                lot: 1_000.0,
            })
            .collect();
        let mut mids: Vec<f64> = symbols.iter().map(|s| s.start).collect();
        let mut desks = Desks::new(&catalogue(), &symbols, seed, 100.0).unwrap();
        let mut walk = StdRng::seed_from_u64(seed);
        let mut out = Vec::new();
        for step in 0..steps {
            for mid in &mut mids {
                *mid *= 1.0 + (walk.random::<f64>() - 0.5) * 2e-4;
            }
            desks.step(1_000_000 + step * 1_000, &mids, &mut out);
        }
        out
    }

    fn sorted(ev: &Event) -> Event {
        let mut ev = ev.clone();
        if let Event::Metric(m) = &mut ev {
            m.values.sort_by_key(|(i, _)| *i);
        }
        ev
    }

    #[test]
    fn same_seed_same_events_other_seed_differs() {
        let events = run(7, 5_000);
        assert_eq!(events, run(7, 5_000));
        assert_ne!(events, run(8, 5_000));
    }

    #[test]
    fn every_event_passes_publish_validation() {
        let cat = catalogue();
        let steps = 20_000;
        let rules = EventRules {
            now_us: 1_000_000 + steps * 1_000,
            max_future_us: 0,
            may_broadcast: false,
        };
        let mut per_channel = BTreeMap::<String, usize>::new();
        for ev in run(3, steps) {
            let json = publish_json(&ev, &cat);
            let parsed =
                parse_event(&json, &cat, rules).unwrap_or_else(|e| panic!("{json} refused: {e}"));
            assert_eq!(sorted(&parsed), sorted(&ev), "round trip of {json}");
            if let Event::Metric(m) = &ev {
                assert!(m.values.iter().all(|(_, v)| v.is_finite()), "{json}");
                assert!(m.dims.iter().any(|(k, v)| k == "book" && !v.is_empty()));
            }
            let channel = json["channel"].as_str().unwrap_or_default().to_owned();
            *per_channel.entry(channel).or_default() += 1;
        }
        // Prices come from venue quotes and `system` from the node itself.
        let published = |c: &Channel| !matches!(c.kind, ChannelKind::Prices | ChannelKind::System);
        for (_, def) in cat.iter().filter(|(_, c)| published(c)) {
            assert!(
                per_channel.contains_key(&def.name),
                "no {} in {per_channel:?}",
                def.name
            );
        }
    }

    #[test]
    fn alerts_and_sessions_are_well_formed() {
        // Long: one pass over a long run checks each message, then the tallies.
        let cat = catalogue();
        let mut kinds = BTreeMap::<(String, String), usize>::new();
        let mut statuses = BTreeMap::<String, usize>::new();
        let mut first_status = HashMap::new();
        for ev in run(42, 200_000) {
            let Event::Reliable(r) = ev else { continue };
            let d = &r.data;
            let text = |f: &str| d[f].as_str().unwrap_or_else(|| panic!("{f} in {d:?}"));
            let number = |f: &str| d[f].as_f64().unwrap_or_else(|| panic!("{f} in {d:?}"));
            match cat.get(r.channel).name.as_str() {
                ALERTS => {
                    let (level, kind) = (text("level"), text("kind"));
                    let (current, threshold) = (number("current"), number("threshold"));
                    assert!(text("message").contains(text("book")), "{d:?}");
                    match (kind, level) {
                        (_, "info") => {}
                        ("risk_limit", _) => {
                            assert!(current >= threshold, "{d:?}");
                            assert!([WARNING_PCT, CRITICAL_PCT].contains(&threshold), "{d:?}");
                        }
                        ("loss_limit" | "emergency_stop", _) => {
                            assert!(current <= threshold && threshold < 0.0, "{d:?}")
                        }
                        _ => panic!("unexpected alert {d:?}"),
                    }
                    *kinds.entry((kind.into(), level.into())).or_default() += 1;
                }
                SESSIONS => {
                    let status = text("status");
                    first_status
                        .entry(r.tenant.clone())
                        .or_insert(status.to_owned());
                    *statuses.entry(status.into()).or_default() += 1;
                    assert!(text("session").starts_with(&*r.tenant));
                    assert!(number("pnl").is_finite());
                    assert!(number("utilization") >= 0.0, "{d:?}");
                }
                _ => assert!(r.sub.is_some() && d["title"].is_string(), "{d:?}"),
            }
        }
        assert_eq!(
            first_status.len(),
            TENANTS.len(),
            "every tenant has a session"
        );
        assert!(
            first_status.values().all(|s| s == "started"),
            "{first_status:?}"
        );
        for want in [
            ("risk_limit", "warning"),
            ("risk_limit", "critical"),
            ("loss_limit", "warning"),
        ] {
            let key = (want.0.to_owned(), want.1.to_owned());
            assert!(kinds.contains_key(&key), "no {want:?} in {kinds:?}");
        }
        for want in ["started", "paused", "completed"] {
            assert!(statuses.contains_key(want), "no {want} in {statuses:?}");
        }
    }
}
