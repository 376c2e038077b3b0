//! Prices as they travel the data path: a venue's quote in, the best
//! bid/ask across venues out.

use super::symbol::{SymbolId, VenueId};

/// One venue's two-sided quote for one symbol: the unit the aggregator folds
/// into a best price. `Copy` so batches move through reused buffers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VenueQuote {
    /// The symbol quoted.
    pub symbol: SymbolId,
    /// The venue quoting it.
    pub venue: VenueId,
    /// Price the venue buys at.
    pub bid: f64,
    /// Quantity available at `bid`.
    pub bid_size: f64,
    /// Price the venue sells at.
    pub ask: f64,
    /// Quantity available at `ask`.
    pub ask_size: f64,
    /// Venue or receive time, microseconds since the UNIX epoch. Informational:
    /// liveness is judged by when the aggregator received the quote.
    pub ts_us: u64,
}

/// Best bid/ask across venues for one symbol, as published by the aggregator.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BestPrice {
    /// The symbol this price is for.
    pub symbol: SymbolId,
    /// Strictly increasing per symbol.
    pub seq: u64,
    /// Microsecond UNIX time at which the aggregator published the value.
    pub ts_us: u64,
    /// Best (highest) bid across live venues.
    pub bid: f64,
    /// Size available at the best bid.
    pub bid_size: f64,
    /// Venue quoting the best bid.
    pub bid_venue: VenueId,
    /// Best (lowest) ask across live venues.
    pub ask: f64,
    /// Size available at the best ask.
    pub ask_size: f64,
    /// Venue quoting the best ask.
    pub ask_venue: VenueId,
}
