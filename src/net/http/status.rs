//! The read-only documents: `/healthz`, `/v1/channels` and `/v1/status`.

use super::response::{json_error, response, unauthorized};
use super::{authenticate, counts, Request};
use crate::auth::Role;
use crate::clock;
use crate::model::channel::ChannelKind;
use crate::net::Gateway;
use crate::shard::{Node, ShardStats, SubscriptionCounts};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// `GET /healthz`: 503 while draining, and while a NATS node replays what
/// the bus keeps after its start (a balancer sends it clients once its
/// windows and histories match the other nodes'). A stale feed keeps 200:
/// every node shares the feed, so a 503 would take the whole fleet out of
/// rotation for what clients are told anyway.
pub(super) fn healthz(node: &Node) -> Vec<u8> {
    let bus = node.aggregator.bus.get();
    if node.is_draining() {
        response(503, "text/plain", "draining")
    } else if bus.is_some_and(|bus| bus.replaying()) {
        response(503, "text/plain", "replaying")
    } else if node.feed_stale_since(clock::now_us()).is_some() {
        response(200, "text/plain", "degraded: feed_stale")
    } else if bus.is_some_and(|bus| !bus.connected()) {
        response(200, "text/plain", "degraded: bus_disconnected")
    } else {
        response(200, "text/plain", "ok")
    }
}

/// `GET /v1/channels`: the catalogue, for any valid token; with the
/// subscription counts for ADMIN tokens.
pub(super) fn channels(gateway: &Gateway, req: &Request) -> Vec<u8> {
    match authenticate(gateway, req) {
        Err(e) => unauthorized(&e),
        Ok(c) => {
            let node = &gateway.node;
            let counts = c.has_role(&Role::ADMIN).then(|| counts::node_counts(node));
            response(200, "application/json", &channels_json(node, counts))
        }
    }
}

/// `GET /v1/status`: the node's figures, for ADMIN tokens.
pub(super) fn status(gateway: &Gateway, req: &Request) -> Vec<u8> {
    match authenticate(gateway, req) {
        Err(e) => unauthorized(&e),
        Ok(c) if !c.has_role(&Role::ADMIN) => json_error(403, "forbidden", "needs the ADMIN role"),
        Ok(_) => response(200, "application/json", &status_json(&gateway.node)),
    }
}

/// The catalogue as `/v1/channels` serves it, with `counts` when given.
fn channels_json(shared: &Node, counts: Option<SubscriptionCounts>) -> String {
    let channels: Vec<_> = shared
        .catalogue
        .iter()
        .map(|(id, c)| {
            let mut entry = serde_json::json!({
                "name": c.name, "kind": c.kind.as_str(), "roles": c.roles,
            });
            match c.kind {
                ChannelKind::Prices => entry["symbols"] = shared.universe.symbols().into(),
                ChannelKind::System => {}
                ChannelKind::Metrics => {
                    entry["metrics"] = c.metrics.clone().into();
                    entry["windows_ms"] = shared.config.channels.windows_ms.clone().into();
                }
                ChannelKind::Reliable { .. } => {
                    if let Some(fields) = &c.filter_fields {
                        entry["filters"] = fields.clone().into();
                    }
                }
                ChannelKind::Keyed => {
                    let keys: serde_json::Map<_, _> = c
                        .key_patterns
                        .iter()
                        .map(|(role, p)| (role.as_str().to_owned(), p.clone().into()))
                        .collect();
                    entry["keys"] = keys.into();
                }
            }
            if let (Some(counts), Some(entry)) = (&counts, entry.as_object_mut()) {
                entry.extend(counts::channel_counts(shared, counts, id));
            }
            entry
        })
        .collect();
    serde_json::json!({ "channels": channels }).to_string()
}

/// The `/v1/status` document.
fn status_json(node: &Node) -> String {
    let shards: Vec<_> = node
        .shard_stats
        .iter()
        .enumerate()
        .map(|(i, s)| shard_json(s, i))
        .collect();
    let sum = |f: fn(&ShardStats) -> &AtomicU64| -> u64 {
        node.shard_stats.iter().map(|s| f(s).load(Relaxed)).sum()
    };
    let agg = node.aggregator.snapshot();
    serde_json::json!({
        "connections": sum(|s| &s.connections),
        "subscriptions": {
            "latest": sum(|s| &s.subscriptions),
            "reliable": sum(|s| &s.reliable_subscriptions),
        },
        "channels": counts::per_channel(node),
        "analytics": {
            "window_specs": sum(|s| &s.window_specs),
            "metric_events": sum(|s| &s.metric_events),
            "late_metric_events": sum(|s| &s.late_metric_events),
        },
        "draining": node.is_draining(),
        "feed": {
            "stale": node.feed_stale_since(clock::now_us()).is_some(),
            "last_quote_ms": agg.last_quote_us / 1_000,
        },
        "bus": node.aggregator.bus.get().map(|bus| bus.summary()),
        "aggregator": {
            "quotes": agg.quotes,
            "published": agg.published,
            "rejected": agg.rejected,
            "feed_input_errors": agg.feed_input_errors,
            "overruns": agg.overruns,
            "events": agg.events,
        },
        "shards": shards,
    })
    .to_string()
}

fn shard_json(s: &ShardStats, shard: usize) -> serde_json::Value {
    serde_json::json!({
        "shard": shard,
        "connections": s.connections.load(Relaxed),
        "subscriptions": s.subscriptions.load(Relaxed),
        "frames": s.frames.load(Relaxed),
        "flushes": s.flushes.load(Relaxed),
        "skipped": s.skipped.load(Relaxed),
        "slow_closes": s.slow_closes.load(Relaxed),
        "socket_full_writes": s.metrics.socket_full_writes.load(Relaxed),
        "due_unserved": s.metrics.due_unserved.load(Relaxed),
        "flush_cycle_max_us": s.metrics.cycle_max_us.load(Relaxed),
        "ring_to_socket_us": {
            "p50": s.latency_p50_us.load(Relaxed),
            "p99": s.latency_p99_us.load(Relaxed),
            "p999": s.latency_p999_us.load(Relaxed),
            "max": s.latency_max_us.load(Relaxed),
        },
    })
}
