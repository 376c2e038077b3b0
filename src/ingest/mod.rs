//! Ingest: one aggregator thread folds venue quotes into best prices, gives
//! reliable messages their `seq`, and hands everything to the shards over one
//! lock-free ring each.

pub mod aggregator;
pub mod book;
pub mod doorbell;
pub mod keyed;
mod outputs;
pub mod publish;
pub mod ring;
pub mod sequencer;
pub mod stats;
