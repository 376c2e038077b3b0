//! The universe: symbols and venues interned to small integers at start-up.
//!
//! Every hot-path structure indexes by [`SymbolId`] and [`VenueId`]; names are
//! only looked up at the edges (client ops in, JSON frames out).

use std::collections::HashMap;

/// A symbol interned to a dense index into the [`Universe`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SymbolId(pub u32);

/// A liquidity venue interned to a dense index into the [`Universe`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VenueId(pub u16);

/// Read-only table of every symbol and venue this node serves.
#[derive(Debug, Clone)]
pub struct Universe {
    symbols: Vec<String>,
    symbol_index: HashMap<String, SymbolId>,
    venues: Vec<String>,
    venue_index: HashMap<String, VenueId>,
}

impl Universe {
    /// Builds the table; duplicate names keep their first id.
    pub fn new(symbols: Vec<String>, venues: Vec<String>) -> Self {
        let mut symbol_index = HashMap::with_capacity(symbols.len());
        for (i, name) in symbols.iter().enumerate() {
            symbol_index
                .entry(name.clone())
                .or_insert(SymbolId(i as u32));
        }
        let mut venue_index = HashMap::with_capacity(venues.len());
        for (i, name) in venues.iter().enumerate() {
            venue_index.entry(name.clone()).or_insert(VenueId(i as u16));
        }
        Universe {
            symbols,
            symbol_index,
            venues,
            venue_index,
        }
    }

    /// The id of a symbol name, if this node serves it.
    pub fn symbol_id(&self, name: &str) -> Option<SymbolId> {
        self.symbol_index.get(name).copied()
    }

    /// The name of an interned symbol.
    pub fn symbol_name(&self, id: SymbolId) -> &str {
        &self.symbols[id.0 as usize]
    }

    /// The id of a venue name, if known.
    pub fn venue_id(&self, name: &str) -> Option<VenueId> {
        self.venue_index.get(name).copied()
    }

    /// The name of an interned venue.
    pub fn venue_name(&self, id: VenueId) -> &str {
        &self.venues[id.0 as usize]
    }

    /// Every symbol name, in id order.
    pub fn symbols(&self) -> &[String] {
        &self.symbols
    }

    /// Number of symbols.
    pub fn symbol_count(&self) -> usize {
        self.symbols.len()
    }

    /// Number of venues.
    pub fn venue_count(&self) -> usize {
        self.venues.len()
    }
}
