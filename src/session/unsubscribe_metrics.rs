//! `unsubscribe` of a `metrics.*` channel: the whole subscription, or only
//! some of its metrics (the rest keep their filters, window and agg).

use super::state::Session;
use super::subscribe::{release_metric_sub, MetricSub};
use super::Streams;
use crate::model::channel::{Channel, ChannelId};
use crate::protocol;

/// Drops the `wanted` metrics (every one for `None`) of the session's
/// subscription to `def`; the ack names those dropped and those left.
pub(super) fn unsubscribe_metrics(
    session: &mut Session,
    id: u64,
    (channel, def): (ChannelId, &Channel),
    wanted: Option<&[String]>,
    streams: &mut Streams,
) -> Vec<u8> {
    let Some(i) = session
        .metric_subs
        .iter()
        .position(|m| m.spec.channel == channel)
    else {
        return protocol::metrics_unsubscribe_ack(id, &def.name, &[], &[]);
    };
    let old = session.metric_subs.swap_remove(i);
    let name = |m: u16| def.metrics[usize::from(m)].as_str();
    let dropped_here = |m: u16| wanted.is_none_or(|names| names.iter().any(|n| n == name(m)));
    let part = |keep: bool| {
        let (metrics, streams) = old
            .metrics
            .iter()
            .zip(&old.streams)
            .filter(|(m, _)| dropped_here(**m) != keep)
            .map(|(m, s)| (*m, *s))
            .unzip();
        MetricSub {
            spec: old.spec.clone(),
            period: old.period,
            agg: old.agg,
            metrics,
            streams,
        }
    };
    let (dropped, kept) = (part(false), part(true));
    release_metric_sub(session, &dropped, streams);
    let dropped: Vec<&str> = dropped.metrics.iter().map(|&m| name(m)).collect();
    let remaining: Vec<&str> = kept.metrics.iter().map(|&m| name(m)).collect();
    if !kept.metrics.is_empty() {
        session.metric_subs.push(kept);
    }
    protocol::metrics_unsubscribe_ack(id, &def.name, &dropped, &remaining)
}
