//! The values that travel the data path, shared by every stage: the symbol
//! universe, quotes and best prices, the channel catalogue and validated
//! events.

pub mod channel;
pub mod error;
pub mod event;
pub mod filter;
pub mod quote;
pub mod reliable;
pub mod symbol;
