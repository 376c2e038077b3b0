//! # quotecast
//!
//! A thread-per-core WebSocket fan-out server for market data: venue quotes in,
//! conflated best bid/ask out to thousands of trading terminals; per-tenant
//! windowed analytics and never-dropped alerts on the same shards.
//!
//! # Layout, in data-path order
//!
//! Each folder depends only on the ones above it (`config`, `clock`, `fd`,
//! `prefetch`, `auth`, `model`, `frame` and `protocol` are leaves every stage
//! may use).
//!
//! | module | owns |
//! | --- | --- |
//! | `config`, `clock`, `fd`, `prefetch` | `Config` with serde defaults and `validate()`; the one wall clock; raw socket calls (and sends batched on an io_uring); cache hints for the write pass |
//! | [`auth`] | token verification and minting (shared with `quotecast token`) |
//! | `model` | symbols, quotes, the channel catalogue, validated events |
//! | [`frame`], `sse`, [`protocol`] | WebSocket frames and SSE events encoded once, frames read; the JSON wire contract |
//! | `feed/` | the `Feed` seam: simulator and JSON-lines replay |
//! | `ingest/` | aggregator thread: best bid/ask book, reliable and keyed `seq`, one SPSC ring per shard |
//! | `fanout/` | latest-value table, stream → subscribers, flush wheel, per-connection outbox |
//! | `analytics/` | per-tenant metric windows and calendar totals, reliable history and replay, keyed channels |
//! | `session/` | a client's claims, limits, ops, subscribe/unsubscribe per channel kind |
//! | `shard/` | one executor per core: drains its ring when the aggregator rings, owns its sessions, writes their due flushes |
//! | `net/` | listener, HTTP routes and upgrade, connection caps, the connection task |
//! | `app/` | process wiring and the shard supervisor |
//! | `cli/` | `quotecast watch`, the terminal client; `quotecast doctor`, the host check |
#![deny(missing_docs)]

mod analytics;
mod app;
pub mod auth;
mod cli;
mod clock;
pub mod config;
mod fanout;
mod fd;
mod feed;
pub mod frame;
mod ingest;
mod model;
mod net;
mod prefetch;
pub mod protocol;
mod session;
mod shard;
mod sse;

pub use app::{run, Ready};
pub use cli::{bridge, doctor, watch};

/// The HTTP request parsing the server runs before any route (fuzz targets).
pub mod http {
    pub use crate::net::http::{check_upgrade, parse_head, HeadError, Request};
}

/// Hot-path parts that benchmarks and fuzz targets drive directly, outside a
/// running server. Not a stable API.
pub mod parts {
    pub use crate::analytics::reliable::ReliableStreams;
    pub use crate::analytics::window::{Agg, MetricStreams, WindowSpec, GRACE_US};
    pub use crate::fanout::latest::{Latest, LatestTable, StreamId, Subscriptions};
    pub use crate::fanout::topic::TopicIndex;
    pub use crate::fanout::wheel::ConnKey;
    pub use crate::fd::{
        batch::{SendBatch, Sent},
        send_now,
    };
    pub use crate::feed::{sim::Sim, universe};
    pub use crate::ingest::book::BestPriceBook;
    pub use crate::ingest::sequencer::Sequencer;
    pub use crate::model::channel::{Catalogue, ChannelId};
    pub use crate::model::event::{MetricEvent, ReliableEvent};
    pub use crate::model::quote::{BestPrice, VenueQuote};
    pub use crate::model::reliable::ReliableKey;
    pub use crate::model::symbol::{SymbolId, Universe, VenueId};
}
