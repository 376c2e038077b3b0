//! `subscribe` and `unsubscribe` for each kind of channel, on the shard that
//! owns the connection: permissions first, then the channel's own rules.
//!
//! - `prices`: per symbol, filtered by the token's `symbols` claim; a
//!   snapshot of the latest values, then live values.
//! - `metrics.*`: one subscription per channel (a new `subscribe` to the same
//!   channel replaces the old one); each metric is a latest-value stream of
//!   the tenant's window computation; snapshot first.
//! - reliable channels: the tenant's stream (or the user's, for
//!   `notifications`); with `since`, a replay or a snapshot when the history
//!   no longer covers it.

use crate::channel::{ChannelId, ChannelKind};
use crate::conflate::StreamId;
use crate::flush::ConnKey;
use crate::protocol::{self, ErrorCode, OpError, SubscribeOp, SymbolError};
use crate::reliable::ReliableKey;
use crate::shard::Shard;
use crate::symbol::SymbolId;
use crate::window::{Agg, WindowSpec};
use std::sync::Arc;

/// A connection's subscription to one `metrics.*` channel.
#[derive(Clone, Debug)]
pub struct MetricSub {
    /// The window computation it reads.
    pub spec: WindowSpec,
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

fn closed(id: u64) -> OpError {
    OpError::new(Some(id), ErrorCode::BadRequest, "connection closed")
}

impl Shard {
    /// Looks the channel up and checks the connection's roles against it.
    fn check_channel(
        &mut self,
        key: ConnKey,
        id: u64,
        channel: &str,
    ) -> Result<(ChannelId, ChannelKind), OpError> {
        let shared = self.shared().clone();
        let Some((channel_id, def)) = shared.catalogue.find(channel) else {
            return Err(OpError::new(
                Some(id),
                ErrorCode::UnknownChannel,
                format!("unknown channel {channel:?}"),
            ));
        };
        let conn = self.conns.get_mut(key).ok_or_else(|| closed(id))?;
        if !def.admits(&conn.claims) {
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
    pub fn subscribe(&mut self, key: ConnKey, op: SubscribeOp) -> Result<Vec<u8>, OpError> {
        let (channel, kind) = self.check_channel(key, op.id, &op.channel)?;
        match kind {
            ChannelKind::Prices => {
                let symbols = op.symbols.as_deref().ok_or_else(|| {
                    OpError::new(Some(op.id), ErrorCode::BadRequest, "missing field symbols")
                })?;
                self.subscribe_prices(key, op.id, &op.channel, symbols)
            }
            ChannelKind::Metrics => self.subscribe_metrics(key, channel, op),
            ChannelKind::Reliable { per_user } => {
                self.subscribe_reliable(key, channel, per_user, &op)
            }
        }
    }

    fn subscribe_prices(
        &mut self,
        key: ConnKey,
        id: u64,
        channel: &str,
        symbols: &[String],
    ) -> Result<Vec<u8>, OpError> {
        let shared = self.shared().clone();
        let max_subs = shared.config.server.max_subscriptions;
        let conn = self.conns.get_mut(key).ok_or_else(|| closed(id))?;
        let mut subscribed: Vec<&str> = Vec::new();
        let mut errors = Vec::new();
        let mut snapshot_streams = Vec::new();
        for name in symbols {
            let refuse = |code: ErrorCode| SymbolError {
                symbol: name.clone(),
                code,
            };
            let Some(symbol) = shared.universe.symbol_id(name) else {
                errors.push(refuse(ErrorCode::UnknownSymbol));
                continue;
            };
            if !conn.may_see(symbol) {
                errors.push(refuse(ErrorCode::NotEntitled));
                continue;
            }
            let stream = StreamId(symbol.0);
            if conn.subs.contains(stream) {
                subscribed.push(name);
                continue;
            }
            if conn.subs.len() >= max_subs {
                errors.push(refuse(ErrorCode::TooManySubscriptions));
                continue;
            }
            let sent_seq = self.table.get(stream).map_or(0, |l| l.seq);
            conn.subs.add(stream, sent_seq);
            self.topics.subscribe(stream, key.index);
            subscribed.push(name);
            snapshot_streams.push(stream);
        }
        // The ack goes first, then the snapshot, then (in later flushes) live values.
        conn.push_json(&protocol::subscribe_ack(id, channel, &subscribed, &errors));
        Ok(self.snapshot(channel, &snapshot_streams))
    }

    fn snapshot(&self, channel: &str, streams: &[StreamId]) -> Vec<u8> {
        protocol::snapshot(
            channel,
            streams
                .iter()
                .filter_map(|s| self.table.get(*s))
                .map(|l| l.payload()),
        )
    }

    fn subscribe_metrics(
        &mut self,
        key: ConnKey,
        channel: ChannelId,
        op: SubscribeOp,
    ) -> Result<Vec<u8>, OpError> {
        let shared = self.shared().clone();
        let cfg = &shared.config;
        let def = shared.catalogue.get(channel);
        let bad = |msg: String| OpError::new(Some(op.id), ErrorCode::BadRequest, msg);
        let windows = &cfg.channels.windows_ms;
        let default_window = if windows.contains(&DEFAULT_WINDOW_MS) {
            DEFAULT_WINDOW_MS
        } else {
            windows[0]
        };
        let window_ms = op.window_ms.unwrap_or(default_window);
        if !windows.contains(&window_ms) {
            return Err(bad(format!("window_ms must be one of {windows:?}")));
        }
        let agg = match op.agg.as_deref() {
            None => DEFAULT_AGG,
            Some(a) => Agg::parse(a).ok_or_else(|| {
                bad("agg must be one of sum, avg, min, max, last, count, delta".into())
            })?,
        };
        let wanted = op.metrics.unwrap_or_else(|| def.metrics.clone());
        if wanted.is_empty() {
            return Err(bad("metrics is empty".into()));
        }
        let (known, unknown): (Vec<&String>, Vec<&String>) =
            wanted.iter().partition(|m| def.metric_index(m).is_some());
        let mut indexes: Vec<u16> = known.iter().filter_map(|m| def.metric_index(m)).collect();
        indexes.sort_unstable();
        indexes.dedup();
        let conn = self.conns.get_mut(key).ok_or_else(|| closed(op.id))?;
        let spec = WindowSpec {
            tenant: Arc::from(conn.claims.tenant.as_str()),
            channel,
            window_ms,
            filter: op.filters,
        };
        let replaced = conn
            .metric_subs
            .iter()
            .position(|m| m.spec.channel == channel)
            .map(|i| conn.metric_subs.swap_remove(i));
        let replaced_len = replaced.as_ref().map_or(0, |m| m.streams.len());
        if conn.subs.len() - replaced_len + indexes.len() > cfg.server.max_subscriptions {
            if let Some(old) = replaced {
                conn.metric_subs.push(old);
            }
            return Err(OpError::new(
                Some(op.id),
                ErrorCode::TooManySubscriptions,
                format!(
                    "at most {} subscriptions per connection",
                    cfg.server.max_subscriptions
                ),
            ));
        }
        if let Some(old) = replaced {
            self.release_metric_sub(key, &old);
        }
        let now_us = crate::feed::now_us();
        let streams = self
            .metrics
            .subscribe(&spec, agg, &indexes, now_us, &mut self.table);
        let conn = self.conns.get_mut(key).ok_or_else(|| closed(op.id))?;
        for &stream in &streams {
            let sent_seq = self.table.get(stream).map_or(0, |l| l.seq);
            conn.subs.add(stream, sent_seq);
            self.topics.subscribe(stream, key.index);
        }
        let names: Vec<&str> = indexes
            .iter()
            .map(|&m| def.metrics[usize::from(m)].as_str())
            .collect();
        let unknown: Vec<&str> = unknown.iter().map(|m| m.as_str()).collect();
        conn.push_json(&protocol::metrics_ack(
            op.id,
            &def.name,
            &names,
            &unknown,
            window_ms,
            agg.as_str(),
        ));
        conn.metric_subs.push(MetricSub {
            spec,
            agg,
            metrics: indexes,
            streams: streams.clone(),
        });
        Ok(self.snapshot(&def.name, &streams))
    }

    fn subscribe_reliable(
        &mut self,
        key: ConnKey,
        channel: ChannelId,
        per_user: bool,
        op: &SubscribeOp,
    ) -> Result<Vec<u8>, OpError> {
        let conn = self.conns.get_mut(key).ok_or_else(|| closed(op.id))?;
        let stream = ReliableKey {
            tenant: Arc::from(conn.claims.tenant.as_str()),
            channel,
            sub: per_user.then(|| Arc::from(conn.claims.sub.as_str())),
        };
        if !conn.reliable_subs.contains(&stream) {
            conn.reliable_subs.push(stream.clone());
        }
        let replay = self.reliable.subscribe(&stream, key, op.since);
        // The ack is a control frame, so it goes out ahead of the replay
        // (or snapshot) queued here and of the live messages behind them.
        if replay.recovered {
            for msg in &replay.messages {
                conn.push_replay(msg.frame.clone());
            }
        } else {
            let snapshot =
                protocol::snapshot(&op.channel, replay.messages.iter().map(|m| m.payload()));
            conn.push_replay(crate::frame::text(&snapshot));
        }
        Ok(protocol::reliable_ack(
            op.id,
            &op.channel,
            op.since,
            replay.recovered,
            replay.last_seq,
        ))
    }

    /// Carries out an `unsubscribe`: some or all symbols of `prices`, or the
    /// whole subscription of any other channel.
    pub fn unsubscribe(
        &mut self,
        key: ConnKey,
        id: u64,
        channel: &str,
        symbols: Option<&[String]>,
    ) -> Result<Vec<u8>, OpError> {
        let (channel_id, kind) = self.check_channel(key, id, channel)?;
        let shared = self.shared().clone();
        let universe = &shared.universe;
        let conn = self.conns.get_mut(key).ok_or_else(|| closed(id))?;
        let names: Vec<String> = match kind {
            ChannelKind::Prices => {
                let price_streams = universe.symbol_count() as u32;
                let streams = match symbols {
                    None => conn.subs.remove_where(|s| s.0 < price_streams),
                    Some(names) => names
                        .iter()
                        .filter_map(|n| universe.symbol_id(n))
                        .map(|s| StreamId(s.0))
                        .filter(|s| conn.subs.remove(*s))
                        .collect(),
                };
                for stream in &streams {
                    self.topics.unsubscribe(*stream, key.index);
                }
                streams
                    .iter()
                    .map(|s| universe.symbol_name(SymbolId(s.0)).to_owned())
                    .collect()
            }
            ChannelKind::Metrics => {
                let Some(i) = conn
                    .metric_subs
                    .iter()
                    .position(|m| m.spec.channel == channel_id)
                else {
                    return Ok(protocol::unsubscribe_ack(id, channel, &[]));
                };
                let old = conn.metric_subs.swap_remove(i);
                self.release_metric_sub(key, &old);
                let def = shared.catalogue.get(channel_id);
                old.metrics
                    .iter()
                    .map(|&m| def.metrics[usize::from(m)].clone())
                    .collect()
            }
            ChannelKind::Reliable { .. } => {
                let Some(i) = conn
                    .reliable_subs
                    .iter()
                    .position(|r| r.channel == channel_id)
                else {
                    return Ok(protocol::unsubscribe_ack(id, channel, &[]));
                };
                let stream = conn.reliable_subs.swap_remove(i);
                self.reliable.unsubscribe(&stream, key);
                vec![channel.to_owned()]
            }
        };
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        Ok(protocol::unsubscribe_ack(id, channel, &names))
    }

    /// Drops a metric subscription's streams from the connection, the topic
    /// index and the window computations.
    fn release_metric_sub(&mut self, key: ConnKey, sub: &MetricSub) {
        if let Some(conn) = self.conns.get_mut(key) {
            for stream in &sub.streams {
                conn.subs.remove(*stream);
            }
        }
        for stream in &sub.streams {
            self.topics.unsubscribe(*stream, key.index);
        }
        self.metrics
            .unsubscribe(&sub.spec, sub.agg, &sub.metrics, &mut self.table);
    }

    /// Releases everything a leaving connection held in the analytics and
    /// reliable state (its latest-value streams are dropped by the caller).
    pub fn release_channels(
        &mut self,
        key: ConnKey,
        metric_subs: &[MetricSub],
        reliable: &[ReliableKey],
    ) {
        for sub in metric_subs {
            self.metrics
                .unsubscribe(&sub.spec, sub.agg, &sub.metrics, &mut self.table);
        }
        for stream in reliable {
            self.reliable.unsubscribe(stream, key);
        }
    }
}
