//! A client's session on its shard: who it is, what it may see, and the
//! rules of each op and channel kind.
//!
//! A session owns its connection's [`crate::fanout::outbox::Outbox`]; ops change the shard's
//! [`Streams`] and answer through the outbox, checked against [`Rules`].

pub mod entitle;
mod keyed;
mod ops;
mod rate;
mod refresh;
mod state;
mod subscribe;
mod unsubscribe_metrics;

pub use ops::{handle_op, handle_parsed, OpKind, OpOutcome};
pub use state::{LatestChannels, Session};
pub use subscribe::release;

use crate::analytics::calendar::CalendarStreams;
use crate::analytics::keyed::KeyedStreams;
use crate::analytics::reliable::ReliableStreams;
use crate::analytics::window::MetricStreams;
use crate::auth::Verifier;
use crate::config::Config;
use crate::fanout::latest::LatestTable;
use crate::fanout::topic::TopicIndex;
use crate::model::channel::Catalogue;
use crate::model::symbol::Universe;
use entitle::Entitlements;

/// The shard's streams that ops subscribe to: the latest-value table and
/// its subscriber index, the metric windows and the reliable histories.
pub struct Streams {
    /// Latest frame of every stream.
    pub table: LatestTable,
    /// Stream → subscribed connections.
    pub topics: TopicIndex,
    /// Per-tenant metric windows and their streams.
    pub metrics: MetricStreams,
    /// Per-tenant calendar running totals and their streams.
    pub calendar: CalendarStreams,
    /// Keyed channels: each key's latest object and who watches them.
    pub keyed: KeyedStreams,
    /// Reliable streams: history and subscribers.
    pub reliable: ReliableStreams,
    /// A subscribe opened metric windows or calendar totals since the
    /// shard's loop last looked at its timed work (it may have to wake
    /// sooner to close them).
    pub timed_work_added: bool,
}

/// Node-wide, read-only facts an op is checked against.
#[derive(Clone, Copy)]
pub struct Rules<'a> {
    /// The validated configuration.
    pub config: &'a Config,
    /// Channels, their kinds, roles and metrics.
    pub catalogue: &'a Catalogue,
    /// Symbols and venues.
    pub universe: &'a Universe,
    /// Token verification, for `auth` refreshes.
    pub verifier: &'a Verifier,
    /// Tenant symbol entitlements, for `auth` refreshes.
    pub entitlements: &'a Entitlements,
}
