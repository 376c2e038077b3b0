//! The simulated desks' keyed channels, so the demo shows them: `exposure`
//! (a tenant's net position per currency pair, across its books) and
//! `lp.performance` (the latest fill statistics per liquidity provider).

use super::book::Book;
use crate::model::channel::ChannelId;
use crate::model::event::{Event, KeyedEvent};
use serde_json::json;
use std::sync::Arc;

/// Liquidity providers the desks fill with.
pub(super) const LPS: [&str; 3] = ["LP1", "LP2", "LP3"];

fn keyed(channel: ChannelId, tenant: &Arc<str>, key: &str, data: serde_json::Value) -> Event {
    Event::Keyed(KeyedEvent {
        tenant: tenant.clone(),
        channel,
        key: key.into(),
        data: data.as_object().cloned().unwrap_or_default(),
    })
}

/// The tenant's net position and its value in universe symbol `symbol`
/// (named `name`) across `books`.
pub(super) fn exposure(
    channel: Option<ChannelId>,
    tenant: &Arc<str>,
    books: &[Book],
    symbol: usize,
    name: &str,
    mid: f64,
) -> Option<Event> {
    let net: f64 = books
        .iter()
        .flat_map(|b| b.symbols.iter().zip(&b.positions))
        .filter(|((s, _), _)| *s == symbol)
        .map(|(_, p)| p.qty)
        .sum();
    let value = (net * mid * 100.0).round() / 100.0;
    Some(keyed(
        channel?,
        tenant,
        name,
        json!({"net_qty": net, "net_value": value, "mid": mid}),
    ))
}

/// One fill's statistics at liquidity provider `lp`.
pub(super) fn lp_fill(
    channel: Option<ChannelId>,
    tenant: &Arc<str>,
    lp: usize,
    latency_ms: f64,
    fill_rate: f64,
) -> Option<Event> {
    let latency_ms = (latency_ms * 100.0).round() / 100.0;
    Some(keyed(
        channel?,
        tenant,
        LPS[lp % LPS.len()],
        json!({"last_latency_ms": latency_ms, "fill_rate": fill_rate}),
    ))
}
