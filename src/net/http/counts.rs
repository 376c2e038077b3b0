//! Subscriptions per channel and subscribers per symbol, summed over the
//! shards' counts, as `/v1/status` and (for ADMIN) `/v1/channels` show them.

use crate::model::channel::{ChannelId, ChannelKind};
use crate::shard::{Node, SubscriptionCounts};
use serde_json::{Map, Value};

/// The node's counts: every shard's last figures, added up.
pub(super) fn node_counts(node: &Node) -> SubscriptionCounts {
    let mut total = SubscriptionCounts::default();
    for stats in &node.shard_stats {
        // A shard that panicked holding its slot leaves figures still worth showing.
        let counts = stats.counts.lock().unwrap_or_else(|e| e.into_inner());
        total.add(&counts);
    }
    total
}

/// The figures of channel `id`: `subscriptions`, and `subscribers` per
/// symbol (those that have any) for `prices`.
pub(super) fn channel_counts(
    node: &Node,
    counts: &SubscriptionCounts,
    id: ChannelId,
) -> Map<String, Value> {
    let mut entry = Map::new();
    let n = counts.per_channel.get(usize::from(id.0)).copied();
    entry.insert("subscriptions".into(), n.unwrap_or(0).into());
    if node.catalogue.get(id).kind == ChannelKind::Prices {
        let symbols = node.universe.symbols();
        let subscribers: Map<String, Value> = counts
            .per_symbol
            .iter()
            .zip(symbols)
            .filter(|(n, _)| **n > 0)
            .map(|(n, name)| (name.clone(), (*n).into()))
            .collect();
        entry.insert("subscribers".into(), subscribers.into());
    }
    entry
}

/// `"channels"` of `/v1/status`: channel name → its figures.
pub(super) fn per_channel(node: &Node) -> Value {
    let counts = node_counts(node);
    node.catalogue
        .iter()
        .map(|(id, c)| (c.name.clone(), channel_counts(node, &counts, id).into()))
        .collect::<Map<String, Value>>()
        .into()
}
