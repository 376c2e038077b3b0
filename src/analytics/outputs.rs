//! What the window and calendar computations share: the stream ids they
//! hand out, the reference-counted (aggregation, metric) outputs each
//! subscriber shares, and the JSON strings they write.

use super::window::Agg;
use crate::fanout::latest::{LatestTable, StreamId};

/// Hands out stream ids of one kind and takes them back when the last
/// subscriber leaves.
#[derive(Debug)]
pub(super) struct StreamIds {
    next: u32,
    free: Vec<u32>,
    make: fn(u32) -> StreamId,
}

impl StreamIds {
    /// Ids built by `make` (e.g. [`StreamId::metric`]).
    pub(super) fn new(make: fn(u32) -> StreamId) -> Self {
        StreamIds {
            next: 0,
            free: Vec::new(),
            make,
        }
    }

    /// A free id.
    pub(super) fn take(&mut self) -> StreamId {
        (self.make)(self.free.pop().unwrap_or_else(|| {
            self.next += 1;
            self.next - 1
        }))
    }
}

/// An (aggregation, metric) stream with its count of subscribers.
pub(super) trait Output {
    /// Its aggregation and metric.
    fn of(&self) -> (Agg, u16);
    /// Its subscribers, for changing.
    fn refs(&mut self) -> &mut u32;
    /// Its stream.
    fn stream(&self) -> StreamId;
}

/// Drops one subscriber from the `agg` outputs of `metrics`; an output left
/// without subscribers is removed, its stream cleared from `table` and its
/// id given back to `ids`.
pub(super) fn release<O: Output>(
    outputs: &mut Vec<O>,
    agg: Agg,
    metrics: &[u16],
    table: &mut LatestTable,
    ids: &mut StreamIds,
) {
    for &metric in metrics {
        let Some(i) = outputs.iter().position(|o| o.of() == (agg, metric)) else {
            continue;
        };
        *outputs[i].refs() -= 1;
        if *outputs[i].refs() == 0 {
            let out = outputs.swap_remove(i);
            table.clear(out.stream());
            ids.free.push(out.stream().number());
        }
    }
}

/// A JSON string (names come from configuration, so they are escaped).
pub(super) fn write_str(out: &mut Vec<u8>, s: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}
