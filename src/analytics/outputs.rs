//! What the window and calendar computations share: the stream ids they
//! hand out, the reference-counted (aggregation, metric) outputs each
//! subscriber shares, and the JSON strings they write.

use super::window::Agg;
use crate::fanout::latest::{LatestTable, StreamId};
use std::collections::HashMap;
use std::hash::Hash;

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
fn release<O: Output>(
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

/// One computation (window or calendar) and its outputs.
pub(super) trait Computation {
    /// What identifies it.
    type Spec: PartialEq;
    /// Its kind of output.
    type Out: Output;
    /// Its spec.
    fn spec(&self) -> &Self::Spec;
    /// Its outputs, for changing.
    fn outputs(&mut self) -> &mut Vec<Self::Out>;
}

/// Drops one subscriber from the `agg` outputs of `metrics` of the
/// computation `spec` under `key`; a computation left without outputs is
/// removed, and so is a key left without computations.
pub(super) fn unsubscribe<K: Hash + Eq, C: Computation>(
    specs: &mut HashMap<K, Vec<C>>,
    key: K,
    spec: &C::Spec,
    agg: Agg,
    metrics: &[u16],
    table: &mut LatestTable,
    ids: &mut StreamIds,
) {
    let Some(states) = specs.get_mut(&key) else {
        return;
    };
    let Some(at) = states.iter().position(|s| s.spec() == spec) else {
        return;
    };
    let outputs = states[at].outputs();
    release(outputs, agg, metrics, table, ids);
    if outputs.is_empty() {
        states.swap_remove(at);
    }
    if states.is_empty() {
        specs.remove(&key);
    }
}

/// A JSON string (names come from configuration, so they are escaped).
pub(super) fn write_str(out: &mut Vec<u8>, s: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}
