//! One client's session: its verified claims, entitlements and limits, its
//! subscriptions beyond latest values, and its outbox.

use super::rate::TokenBucket;
use super::subscribe::MetricSub;
use crate::auth::Claims;
use crate::config::ServerConfig;
use crate::fanout::latest::{StreamId, StreamKind};
use crate::fanout::outbox::Outbox;
use crate::fanout::wheel::ConnKey;
use crate::fanout::wire::Wire;
use crate::frame::deflate::DeflateUse;
use crate::frame::{self, CloseCode};
use crate::model::channel::ChannelId;
use crate::model::reliable::ReliableKey;
use crate::model::symbol::SymbolId;
use crate::protocol;
use std::time::{Duration, Instant};

/// The state of one connection's client, owned by its shard.
pub struct Session {
    claims: Claims,
    /// Symbols the tenant and token may see ([`super::entitle`]); `None` = all.
    allowed: Option<Vec<SymbolId>>,
    outbox: Outbox,
    /// One analytics subscription per `metrics.*` channel.
    pub(super) metric_subs: Vec<MetricSub>,
    /// Reliable streams subscribed.
    pub(super) reliable_subs: Vec<ReliableKey>,
    pub(super) ops: TokenBucket,
    /// Limits client pings and pongs (`pings_per_sec`, `pings_burst`).
    control: TokenBucket,
    pub(super) refused_in_row: u32,
    /// Whether this client was told `status: feed_stale` and not yet `ok`.
    told_feed_stale: bool,
    last_rx: Instant,
    last_ping: Instant,
}

impl Session {
    /// A new session for `claims` on connection `key` speaking `wire`,
    /// limited by `cfg`; `deflate` when it negotiated permessage-deflate.
    pub fn new(
        key: ConnKey,
        wire: Wire,
        claims: Claims,
        allowed: Option<Vec<SymbolId>>,
        cfg: &ServerConfig,
        deflate: Option<DeflateUse>,
        now: Instant,
    ) -> Self {
        Session {
            claims,
            allowed,
            outbox: Outbox::new(key, wire, now, deflate),
            metric_subs: Vec::new(),
            reliable_subs: Vec::new(),
            ops: TokenBucket::new(cfg.ops_per_sec, cfg.ops_burst, now),
            control: TokenBucket::new(cfg.pings_per_sec, cfg.pings_burst, now),
            refused_in_row: 0,
            told_feed_stale: false,
            last_rx: now,
            last_ping: now,
        }
    }

    /// The connection's key in its shard.
    pub fn key(&self) -> ConnKey {
        self.outbox.key()
    }

    /// The verified token behind the session.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// Takes a refreshed token's claims and the symbols they allow; the
    /// expiry only ever moves later. Returns it.
    pub(super) fn refresh(&mut self, claims: Claims, allowed: Option<Vec<SymbolId>>) -> u64 {
        let exp = self.claims.exp.max(claims.exp);
        self.claims = Claims { exp, ..claims };
        self.allowed = allowed;
        exp
    }

    /// The `metrics.*` channels subscribed.
    pub fn metric_channels(&self) -> impl Iterator<Item = ChannelId> + '_ {
        self.metric_subs.iter().map(|m| m.spec.channel)
    }

    /// What the client is sent next.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// What the client is sent next, for queuing and flushing.
    pub fn outbox_mut(&mut self) -> &mut Outbox {
        &mut self.outbox
    }

    /// Whether the client may see `symbol`.
    pub fn may_see(&self, symbol: SymbolId) -> bool {
        self.allowed
            .as_ref()
            .is_none_or(|list| list.binary_search(&symbol).is_ok())
    }

    /// The client sent bytes: it is alive.
    pub fn received(&mut self, now: Instant) {
        self.last_rx = now;
    }

    /// A client ping or pong: answered (pings) within `pings_per_sec`;
    /// past it the connection is closed with 1008.
    pub fn on_control_frame(&mut self, ping: Option<&[u8]>, now: Instant) {
        if !self.control.try_take(now) {
            self.outbox
                .request_close_with_reason(CloseCode::POLICY_VIOLATION, "control frame flood");
        } else if let Some(payload) = ping {
            self.outbox.push_control(frame::pong(payload));
        }
    }

    /// Heartbeat, idle, token expiry and drain checks.
    pub fn housekeeping(&mut self, now: Instant, now_s: u64, heartbeat: Duration, draining: bool) {
        let outbox = &mut self.outbox;
        if outbox.is_closing() {
            return;
        }
        if draining {
            outbox.request_close(CloseCode::GOING_AWAY);
        } else if self.claims.exp <= now_s {
            outbox.push_json(&protocol::token_expired());
            outbox.request_close(CloseCode::TOKEN_EXPIRED);
        } else if !outbox.wire().is_sse()
            && now.saturating_duration_since(self.last_rx) > heartbeat * 3
        {
            // An SSE client sends nothing after its request: a dead one is
            // found by its writes (slow consumer), not by silence.
            outbox.request_close(CloseCode::IDLE_TIMEOUT);
        } else if now.saturating_duration_since(self.last_ping) >= heartbeat {
            self.last_ping = now;
            outbox.push_heartbeat();
        }
    }

    /// Adds this session's subscriptions to `counts` (indexed by channel):
    /// price streams under `prices`, the figures stream under `system`, each
    /// metric stream under its `metrics.*` channel, each reliable stream
    /// under its channel.
    pub fn count_subscriptions(&self, latest: LatestChannels, counts: &mut [u64]) {
        let mut add = |channel: ChannelId, n: usize| {
            if let Some(c) = counts.get_mut(usize::from(channel.0)) {
                *c += n as u64;
            }
        };
        for sub in &self.metric_subs {
            add(sub.spec.channel, sub.streams.len());
        }
        let subs = self.outbox.subs();
        if let Some(prices) = latest.prices {
            let n = subs
                .streams()
                .filter(|s| s.kind() == StreamKind::Price)
                .count();
            add(prices, n);
        }
        if let Some(system) = latest.system {
            add(system, usize::from(subs.contains(StreamId::system())));
        }
        for key in &self.reliable_subs {
            add(key.channel, 1);
        }
    }

    /// Tells a `prices` subscriber once that the feed went stale (`since`
    /// the last quote, UNIX ms), and `status: ok` once it is back.
    pub fn note_feed(&mut self, stale_since: Option<u64>) {
        let subscribed_to_prices = || self.outbox.subs().any(|s| s.kind() == StreamKind::Price);
        match stale_since {
            Some(since) if !self.told_feed_stale && subscribed_to_prices() => {
                self.told_feed_stale = true;
                self.outbox.push_json(&protocol::status_feed_stale(since));
            }
            None if self.told_feed_stale => {
                self.told_feed_stale = false;
                self.outbox.push_json(&protocol::status_ok());
            }
            _ => {}
        }
    }
}

/// The channels of the latest-value streams a session counts by kind.
#[derive(Clone, Copy, Debug)]
pub struct LatestChannels {
    /// `prices`.
    pub prices: Option<ChannelId>,
    /// `system`.
    pub system: Option<ChannelId>,
}
