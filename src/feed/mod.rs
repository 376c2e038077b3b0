//! The feed seam: where venue quotes enter the server.
//!
//! A [`Feed`] is polled by the aggregator thread only, so an adapter may keep
//! plain mutable state. Adapters: [`sim`] (the default, a seeded simulator),
//! [`replay`] (JSON lines from a file or a TCP peer) and [`nats`] (the same
//! lines from NATS subjects and JetStream).

use crate::config::{Config, FeedConfig, FeedKind};
use crate::model::channel::Catalogue;
use crate::model::quote::VenueQuote;
use crate::model::symbol::Universe;
use std::io;
use std::sync::Arc;
use std::time::Duration;

pub mod nats;
pub mod replay;
pub mod sim;

/// A source of venue quotes, driven by the aggregator thread.
pub trait Feed: Send {
    /// Appends the quotes that arrived since the last call, waiting at most
    /// `max_wait` for the first one. `Err` means the feed is gone for good:
    /// the aggregator logs it and keeps running idle.
    fn poll(&mut self, out: &mut Vec<VenueQuote>, max_wait: Duration) -> io::Result<()>;

    /// Appends the metric and reliable events that arrived with the quotes
    /// of the last `poll`; feeds without events add nothing.
    fn poll_events(&mut self, _out: &mut Vec<crate::model::event::Event>) {}

    /// Input lines or messages dropped as malformed so far, for the status
    /// page; feeds that cannot receive bad input report 0.
    fn input_errors(&self) -> u64 {
        0
    }

    /// The message bus connection this feed reads from, if any (NATS).
    fn bus(&self) -> Option<Arc<nats::BusState>> {
        None
    }
}

/// The symbol and venue universe this node serves: the configured lists, or
/// the simulator's defaults when a list is empty.
pub fn universe(cfg: &FeedConfig) -> Universe {
    let symbols = if cfg.symbols.is_empty() {
        sim::symbol_names(cfg.sim_symbols)
    } else {
        cfg.symbols.clone()
    };
    let venues = if cfg.venues.is_empty() {
        (1..=cfg.sim_venues).map(|i| format!("LP{i}")).collect()
    } else {
        cfg.venues.clone()
    };
    Universe::new(symbols, venues)
}

/// Starts the adapter `config.feed.kind` selects; events are checked
/// against `catalogue`. Errors are start-up errors (a missing replay file, a
/// refused TCP connection) for the caller to report.
pub fn open(
    config: &Config,
    universe: Arc<Universe>,
    catalogue: Arc<Catalogue>,
) -> io::Result<Box<dyn Feed>> {
    let cfg = &config.feed;
    let events = replay::EventInput {
        catalogue: catalogue.clone(),
        max_future_us: config.channels.max_event_future_us(),
    };
    match cfg.kind {
        FeedKind::Sim => Ok(Box::new(sim::Sim::new(cfg, &universe, &catalogue))),
        FeedKind::Replay => {
            let source = cfg.replay.as_deref().ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "feed.kind = \"replay\" needs feed.replay",
                )
            })?;
            Ok(Box::new(replay::Replay::open(source, universe, events)?))
        }
        FeedKind::Nats => {
            let settings = nats::BusSettings {
                url: cfg.nats_url.clone(),
                retention: nats::Retention {
                    replicas: cfg.nats_replicas,
                    per_stream: config.channels.history_max,
                },
                metric_replay_us: crate::config::recent_metrics_us(&config.channels.windows_ms),
            };
            Ok(Box::new(nats::open(settings, universe, events)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::symbol::VenueId;

    #[test]
    fn universe_defaults_to_simulated_names() {
        let cfg = FeedConfig {
            sim_symbols: 3,
            sim_venues: 2,
            ..FeedConfig::default()
        };
        let u = universe(&cfg);
        assert_eq!(u.symbols(), ["EURUSD", "GBPUSD", "USDJPY"]);
        assert_eq!(u.venue_id("LP2"), Some(VenueId(1)));
        assert_eq!(u.venue_count(), 2);

        let cfg = FeedConfig {
            symbols: vec!["AAA".into()],
            venues: vec!["X".into()],
            ..FeedConfig::default()
        };
        let u = universe(&cfg);
        assert_eq!(u.symbols(), ["AAA"]);
        assert_eq!(u.venue_id("X"), Some(VenueId(0)));
    }

    #[test]
    fn open_replay_without_source_is_an_error() {
        let mut cfg = Config::default();
        cfg.feed.kind = FeedKind::Replay;
        let u = Arc::new(universe(&cfg.feed));
        let catalogue = Arc::new(Catalogue::new(&cfg.channels).unwrap());
        assert!(open(&cfg, u, catalogue).is_err());
    }
}
