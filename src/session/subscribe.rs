//! `subscribe` and `unsubscribe` for each kind of channel: permissions
//! first, then the channel's own rules.
//!
//! - `prices`: per symbol, filtered by the session's entitlements; a
//!   snapshot of the latest values, then live values.
//! - `metrics.*`: one subscription per channel (a new `subscribe` to the same
//!   channel replaces the old one); each metric is a latest-value stream of
//!   the tenant's window computation; snapshot first.
//! - reliable channels: the tenant's stream (or the user's, for
//!   `notifications`); with `since`, a replay or a snapshot when the history
//!   no longer covers it.
//! - `system`: the node's one figures stream; its last value is the snapshot.

use super::state::Session;
use super::unsubscribe_metrics::unsubscribe_metrics;
use super::{Rules, Streams};
use crate::analytics::calendar::{CalendarSpec, Period};
use crate::analytics::window::{Agg, WindowSpec};
use crate::clock;
use crate::fanout::latest::{StreamId, StreamKind};
use crate::model::channel::{Channel, ChannelId, ChannelKind};
use crate::model::event::BROADCAST_TENANT;
use crate::model::filter::DataFilter;
use crate::model::reliable::ReliableKey;
use crate::protocol::{self, ErrorCode, OpError, StreamStart, SubscribeOp, SymbolError};
use std::sync::Arc;

/// A session's subscription to one `metrics.*` channel.
#[derive(Clone, Debug)]
pub struct MetricSub {
    /// The window computation it reads (`window_ms` 0 for a calendar period).
    pub spec: WindowSpec,
    /// The calendar period, for running totals instead of windows.
    pub period: Option<Period>,
    /// The aggregation.
    pub agg: Agg,
    /// Metric indexes in the channel, in the order subscribed.
    pub metrics: Vec<u16>,
    /// The latest-value stream of each metric.
    pub streams: Vec<StreamId>,
}

/// Window size used when a `metrics.*` subscribe gives none (if configured).
const DEFAULT_WINDOW_MS: u64 = 1_000;
/// Aggregation used when a `metrics.*` subscribe gives none.
const DEFAULT_AGG: Agg = Agg::Last;

/// Looks the channel up and checks the session's roles against it.
fn check_channel(
    session: &Session,
    id: u64,
    channel: &str,
    rules: Rules<'_>,
) -> Result<(ChannelId, ChannelKind), OpError> {
    let Some((channel_id, def)) = rules.catalogue.find(channel) else {
        return Err(OpError::new(
            Some(id),
            ErrorCode::UnknownChannel,
            format!("unknown channel {channel:?}"),
        ));
    };
    if !def.admits(session.claims()) {
        return Err(OpError::new(
            Some(id),
            ErrorCode::Forbidden,
            format!(
                "channel {channel} needs one of the roles {}",
                def.roles.join(", ")
            ),
        ));
    }
    Ok((channel_id, def.kind))
}

/// Carries out a `subscribe`; queues the ack (and replay) and returns
/// what goes after the ack (a snapshot, or the ack itself).
pub(super) fn subscribe(
    session: &mut Session,
    op: SubscribeOp,
    streams: &mut Streams,
    rules: Rules<'_>,
) -> Result<Vec<u8>, OpError> {
    let (channel, kind) = check_channel(session, op.id, &op.channel, rules)?;
    if op.filter.is_some() && !matches!(kind, ChannelKind::Reliable { .. }) {
        return Err(OpError::new(
            Some(op.id),
            ErrorCode::BadRequest,
            "filter is for reliable channels (metrics channels take filters)",
        ));
    }
    match kind {
        ChannelKind::Prices => {
            let symbols = op.symbols.as_deref().ok_or_else(|| {
                OpError::new(Some(op.id), ErrorCode::BadRequest, "missing field symbols")
            })?;
            Ok(subscribe_prices(
                session,
                op.id,
                &op.channel,
                symbols,
                streams,
                rules,
            ))
        }
        ChannelKind::Metrics => subscribe_metrics(session, channel, op, streams, rules),
        ChannelKind::Reliable { per_user } => {
            let def = rules.catalogue.get(channel);
            let outside = op
                .filter
                .as_ref()
                .and_then(|f| f.first_outside(def.filter_fields.as_deref()));
            if let Some(field) = outside {
                return Err(OpError::new(
                    Some(op.id),
                    ErrorCode::BadRequest,
                    format!("{} does not allow a filter on {field:?}", def.name),
                ));
            }
            Ok(subscribe_reliable(session, channel, per_user, &op, streams))
        }
        ChannelKind::Keyed => Ok(super::keyed::subscribe(
            session, channel, &op, streams, rules,
        )),
        ChannelKind::System => Ok(subscribe_system(session, op.id, &op.channel, streams)),
    }
}

fn subscribe_system(
    session: &mut Session,
    id: u64,
    channel: &str,
    streams: &mut Streams,
) -> Vec<u8> {
    let stream = StreamId::system();
    let new = !session.outbox().subs().contains(stream);
    if new {
        follow(session, stream, streams);
    }
    session
        .outbox_mut()
        .push_json(&protocol::subscribe_ack(id, channel, &[], &[]));
    // Already following: the value went out before, no snapshot again.
    let fresh = [stream];
    snapshot(channel, &fresh[..usize::from(new)], streams)
}

fn subscribe_prices(
    session: &mut Session,
    id: u64,
    channel: &str,
    symbols: &[String],
    streams: &mut Streams,
    rules: Rules<'_>,
) -> Vec<u8> {
    let max_subs = rules.config.server.max_subscriptions;
    let mut subscribed: Vec<&str> = Vec::new();
    let mut errors = Vec::new();
    let mut snapshot_streams = Vec::new();
    for name in symbols {
        let refuse = |code: ErrorCode| SymbolError {
            symbol: name.clone(),
            code,
        };
        let Some(symbol) = rules.universe.symbol_id(name) else {
            errors.push(refuse(ErrorCode::UnknownSymbol));
            continue;
        };
        if !session.may_see(symbol) {
            errors.push(refuse(ErrorCode::NotEntitled));
            continue;
        }
        let stream = StreamId::price(symbol);
        let subs = session.outbox_mut().subs_mut();
        if subs.contains(stream) {
            subscribed.push(name);
            continue;
        }
        if subs.len() >= max_subs {
            errors.push(refuse(ErrorCode::TooManySubscriptions));
            continue;
        }
        follow(session, stream, streams);
        subscribed.push(name);
        snapshot_streams.push(stream);
    }
    // The ack goes first, then the snapshot, then (in later flushes) live values.
    session
        .outbox_mut()
        .push_json(&protocol::subscribe_ack(id, channel, &subscribed, &errors));
    snapshot(channel, &snapshot_streams, streams)
}

/// The `snapshot` of the current values of `of`.
pub(super) fn snapshot(channel: &str, of: &[StreamId], streams: &Streams) -> Vec<u8> {
    protocol::snapshot(
        channel,
        of.iter()
            .filter_map(|s| streams.table.get(*s))
            .map(|l| l.payload()),
    )
}

/// The window (a size, or a calendar period) and aggregation a metrics
/// subscribe asks for, checked.
fn window_and_agg(
    op: &SubscribeOp,
    streams: &Streams,
    rules: Rules<'_>,
) -> Result<(u64, Option<Period>, Agg), OpError> {
    let bad = |msg: String| OpError::new(Some(op.id), ErrorCode::BadRequest, msg);
    let agg = match op.agg.as_deref() {
        None => DEFAULT_AGG,
        Some(a) => Agg::parse(a).ok_or_else(|| {
            bad("agg must be one of sum, avg, min, max, last, count, delta".into())
        })?,
    };
    if let Some(window) = &op.window {
        if op.window_ms.is_some() {
            return Err(bad("give window_ms or window, not both".into()));
        }
        let calendar = streams.calendar.calendar();
        return match Period::parse(window).filter(|p| calendar.offers(*p)) {
            Some(period) => Ok((0, Some(period), agg)),
            None if calendar.offers(Period::Session) => {
                Err(bad("window must be day, hour or session".into()))
            }
            None => Err(bad(
                "window must be day or hour (session needs channels.calendar.session_start)".into(),
            )),
        };
    }
    let windows = &rules.config.channels.windows_ms;
    let default_window = if windows.contains(&DEFAULT_WINDOW_MS) {
        DEFAULT_WINDOW_MS
    } else {
        windows[0]
    };
    let window_ms = op.window_ms.unwrap_or(default_window);
    if !windows.contains(&window_ms) {
        return Err(bad(format!("window_ms must be one of {windows:?}")));
    }
    Ok((window_ms, None, agg))
}

/// Sends `stream` to the session from now on; the value the table holds
/// goes in the snapshot, so it counts as sent.
pub(super) fn follow(session: &mut Session, stream: StreamId, streams: &mut Streams) {
    let sent_seq = streams.table.get(stream).map_or(0, |l| l.seq);
    session.outbox_mut().subs_mut().add(stream, sent_seq);
    streams.topics.subscribe(stream, session.key().index);
}

fn subscribe_metrics(
    session: &mut Session,
    channel: ChannelId,
    op: SubscribeOp,
    streams: &mut Streams,
    rules: Rules<'_>,
) -> Result<Vec<u8>, OpError> {
    let def = rules.catalogue.get(channel);
    let (window_ms, period, agg) = window_and_agg(&op, streams, rules)?;
    let wanted = op.metrics.unwrap_or_else(|| def.metrics.clone());
    let (indexes, unknown) = metric_indexes(def, &wanted, op.id)?;
    let spec = WindowSpec {
        tenant: Arc::from(session.claims().tenant.as_str()),
        channel,
        window_ms,
        filter: op.filters,
    };
    replace_metric_sub(session, channel, indexes.len(), op.id, streams, rules)?;
    streams.timed_work_added = true;
    let metric_streams = match period {
        Some(period) => streams.calendar.subscribe(
            &calendar_spec(&spec, period),
            agg,
            &indexes,
            clock::now_us(),
            &mut streams.table,
        ),
        None => {
            streams
                .metrics
                .subscribe(&spec, agg, &indexes, clock::now_us(), &mut streams.table)
        }
    };
    for &stream in &metric_streams {
        follow(session, stream, streams);
    }
    let names: Vec<&str> = indexes
        .iter()
        .map(|&m| def.metrics[usize::from(m)].as_str())
        .collect();
    session.outbox_mut().push_json(&protocol::metrics_ack(
        op.id,
        &def.name,
        &names,
        &unknown,
        match period {
            Some(p) => ("window", p.as_str().into()),
            None => ("window_ms", window_ms.into()),
        },
        agg.as_str(),
    ));
    let reply = snapshot(&def.name, &metric_streams, streams);
    session.metric_subs.push(MetricSub {
        spec,
        period,
        agg,
        metrics: indexes,
        streams: metric_streams,
    });
    Ok(reply)
}

/// The channel's indexes of the `wanted` metrics it has (sorted, once
/// each), and the names of those it lacks.
fn metric_indexes<'a>(
    def: &Channel,
    wanted: &'a [String],
    id: u64,
) -> Result<(Vec<u16>, Vec<&'a str>), OpError> {
    if wanted.is_empty() {
        return Err(OpError::new(
            Some(id),
            ErrorCode::BadRequest,
            "metrics is empty",
        ));
    }
    let (known, unknown): (Vec<&String>, Vec<&String>) =
        wanted.iter().partition(|m| def.metric_index(m).is_some());
    let mut indexes: Vec<u16> = known.iter().filter_map(|m| def.metric_index(m)).collect();
    indexes.sort_unstable();
    indexes.dedup();
    Ok((indexes, unknown.iter().map(|m| m.as_str()).collect()))
}

/// Makes way for a subscription of `added` streams to `channel`: releases
/// the session's current one, which it replaces, unless the new one would
/// not fit `max_subscriptions` (then the session keeps the old one).
fn replace_metric_sub(
    session: &mut Session,
    channel: ChannelId,
    added: usize,
    id: u64,
    streams: &mut Streams,
    rules: Rules<'_>,
) -> Result<(), OpError> {
    let replaced = session
        .metric_subs
        .iter()
        .position(|m| m.spec.channel == channel)
        .map(|i| session.metric_subs.swap_remove(i));
    let replaced_len = replaced.as_ref().map_or(0, |m| m.streams.len());
    let max_subs = rules.config.server.max_subscriptions;
    if session.outbox().subs().len() - replaced_len + added > max_subs {
        session.metric_subs.extend(replaced);
        return Err(OpError::new(
            Some(id),
            ErrorCode::TooManySubscriptions,
            format!("at most {max_subs} subscriptions per connection"),
        ));
    }
    if let Some(old) = replaced {
        release_metric_sub(session, &old, streams);
    }
    Ok(())
}

fn subscribe_reliable(
    session: &mut Session,
    channel: ChannelId,
    per_user: bool,
    op: &SubscribeOp,
    streams: &mut Streams,
) -> Vec<u8> {
    let claims = session.claims();
    let own = ReliableKey {
        tenant: Arc::from(claims.tenant.as_str()),
        channel,
        sub: per_user.then(|| Arc::from(claims.sub.as_str())),
    };
    // Tenant-wide channels also carry the broadcast stream (`tenant: "*"`).
    let broadcast = (!per_user && &*own.tenant != BROADCAST_TENANT).then(|| ReliableKey {
        tenant: Arc::from(BROADCAST_TENANT),
        channel,
        sub: None,
    });
    let filter = op.filter.clone().map(Arc::new);
    let own_start = follow_reliable(session, own, op.since, &filter, &op.channel, streams);
    let broadcast_start = broadcast.map(|key| {
        follow_reliable(
            session,
            key,
            op.broadcast_since,
            &filter,
            &op.channel,
            streams,
        )
    });
    protocol::reliable_ack(
        op.id,
        &op.channel,
        own_start,
        broadcast_start,
        op.filter.is_some(),
    )
}

/// Subscribes the session to one reliable stream and queues its replay (or
/// snapshot) behind the ack.
fn follow_reliable(
    session: &mut Session,
    stream: ReliableKey,
    since: Option<u64>,
    filter: &Option<Arc<DataFilter>>,
    channel: &str,
    streams: &mut Streams,
) -> StreamStart {
    let replay = streams
        .reliable
        .subscribe(&stream, session.key(), since, filter.clone());
    // The SSE cursor (`id:`) follows a channel's own stream; the broadcast
    // stream beside it has seqs of its own and carries no `id:`.
    let sse_cursor = &*stream.tenant != BROADCAST_TENANT;
    let channel_id = stream.channel;
    if !session.reliable_subs.contains(&stream) {
        session.reliable_subs.push(stream);
    }
    // The ack is a control frame, so it goes out ahead of the replay
    // (or snapshot) queued here and of the live messages behind them.
    let outbox = session.outbox_mut();
    if sse_cursor {
        // An SSE cursor starts where the client stands: at `since`, or at
        // the stream's end for a live subscription.
        outbox.follow_reliable(channel_id, channel, since.unwrap_or(replay.last_seq));
    }
    if replay.recovered {
        for msg in &replay.messages {
            outbox.push_replay(msg);
        }
    } else {
        let snapshot = protocol::snapshot(channel, replay.messages.iter().map(|m| m.payload()));
        outbox.push_replay_snapshot(&snapshot, sse_cursor.then_some(channel_id), replay.last_seq);
    }
    StreamStart {
        since,
        recovered: replay.recovered,
        last_seq: replay.last_seq,
    }
}

/// Carries out an `unsubscribe`: some or all symbols of `prices`, some or
/// all metrics of a `metrics.*` channel, or the whole subscription of a
/// reliable channel. `names` are the op's `symbols` and `metrics`.
pub(super) fn unsubscribe(
    session: &mut Session,
    id: u64,
    channel: &str,
    (symbols, metrics): (Option<&[String]>, Option<&[String]>),
    streams: &mut Streams,
    rules: Rules<'_>,
) -> Result<Vec<u8>, OpError> {
    let (channel_id, kind) = check_channel(session, id, channel, rules)?;
    if metrics.is_some() && kind != ChannelKind::Metrics {
        return Err(OpError::new(
            Some(id),
            ErrorCode::BadRequest,
            "metrics applies to metrics.* channels only",
        ));
    }
    let names: Vec<String> = match kind {
        ChannelKind::Prices => unsubscribe_prices(session, symbols, streams, rules),
        ChannelKind::Metrics => {
            let def = rules.catalogue.get(channel_id);
            let channel = (channel_id, def);
            return Ok(unsubscribe_metrics(session, id, channel, metrics, streams));
        }
        ChannelKind::System => {
            let (stream, index) = (StreamId::system(), session.key().index);
            if !session.outbox_mut().subs_mut().remove(stream) {
                return Ok(protocol::unsubscribe_ack(id, channel, &[]));
            }
            streams.topics.unsubscribe(stream, index);
            vec![channel.to_owned()]
        }
        ChannelKind::Keyed => {
            if !super::keyed::drop_keyed(session, channel_id, streams) {
                return Ok(protocol::unsubscribe_ack(id, channel, &[]));
            }
            vec![channel.to_owned()]
        }
        ChannelKind::Reliable { .. } => {
            // The tenant's (or user's) stream and the broadcast one.
            let key = session.key();
            let before = session.reliable_subs.len();
            session.reliable_subs.retain(|r| {
                let keep = r.channel != channel_id;
                if !keep {
                    streams.reliable.unsubscribe(r, key);
                }
                keep
            });
            if session.reliable_subs.len() == before {
                return Ok(protocol::unsubscribe_ack(id, channel, &[]));
            }
            vec![channel.to_owned()]
        }
    };
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    Ok(protocol::unsubscribe_ack(id, channel, &names))
}

/// Drops the named `prices` symbols (all of them for `None`); returns the
/// names actually dropped.
fn unsubscribe_prices(
    session: &mut Session,
    symbols: Option<&[String]>,
    streams: &mut Streams,
    rules: Rules<'_>,
) -> Vec<String> {
    let universe = rules.universe;
    let index = session.key().index;
    let subs = session.outbox_mut().subs_mut();
    let removed = match symbols {
        None => subs.remove_where(|s| s.kind() == StreamKind::Price),
        Some(names) => names
            .iter()
            .filter_map(|n| universe.symbol_id(n))
            .map(StreamId::price)
            .filter(|s| subs.remove(*s))
            .collect(),
    };
    for stream in &removed {
        streams.topics.unsubscribe(*stream, index);
    }
    removed
        .iter()
        .filter_map(|s| s.symbol())
        .map(|s| universe.symbol_name(s).to_owned())
        .collect()
}

/// Drops a metric subscription's streams from the session, the topic
/// index and the window computations.
pub(super) fn release_metric_sub(session: &mut Session, sub: &MetricSub, streams: &mut Streams) {
    let index = session.key().index;
    let subs = session.outbox_mut().subs_mut();
    for stream in &sub.streams {
        subs.remove(*stream);
        streams.topics.unsubscribe(*stream, index);
    }
    drop_metric_streams(sub, streams);
}

/// The calendar computation a metrics subscription of `period` reads.
fn calendar_spec(spec: &WindowSpec, period: Period) -> CalendarSpec {
    CalendarSpec {
        tenant: spec.tenant.clone(),
        channel: spec.channel,
        period,
        filter: spec.filter.clone(),
    }
}

/// Releases a metric subscription's share of its window or calendar
/// computation.
fn drop_metric_streams(sub: &MetricSub, streams: &mut Streams) {
    let table = &mut streams.table;
    match sub.period {
        Some(period) => {
            let spec = calendar_spec(&sub.spec, period);
            streams
                .calendar
                .unsubscribe(&spec, sub.agg, &sub.metrics, table)
        }
        None => streams
            .metrics
            .unsubscribe(&sub.spec, sub.agg, &sub.metrics, table),
    }
}

/// Releases everything a leaving session held in the shard's streams.
pub fn release(session: &mut Session, streams: &mut Streams) {
    let key = session.key();
    for stream in session.outbox_mut().subs_mut().clear() {
        streams.topics.unsubscribe(stream, key.index);
    }
    for sub in &session.metric_subs {
        drop_metric_streams(sub, streams);
    }
    for stream in &session.reliable_subs {
        streams.reliable.unsubscribe(stream, key);
    }
    streams.keyed.release(key.index);
}
