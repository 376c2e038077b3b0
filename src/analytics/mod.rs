//! Per-tenant analytics and reliable channels on a shard: metric windows
//! published as latest-value streams, and the bounded history of reliable
//! streams with replay.

pub mod calendar;
pub mod keyed;
mod outputs;
pub mod reliable;
pub mod window;
