//! Identity and numbering of reliable streams: which stream a message
//! belongs to, the `seq` and time it was given, and the `seq` ranges a
//! publication got.

use super::channel::ChannelId;
use std::sync::Arc;

/// One reliable stream: a tenant's channel, or one user's notifications.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReliableKey {
    /// Owning tenant.
    pub tenant: Arc<str>,
    /// `alerts`, `sessions` or `notifications`.
    pub channel: ChannelId,
    /// The user, for per-user channels.
    pub sub: Option<Arc<str>>,
}

/// The `seq` and time a message was given where it was stored (JetStream,
/// in scale-out mode), so every node delivers it with the same numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// The message's place in its stream.
    pub seq: u64,
    /// Microsecond UNIX time at which it was stored.
    pub ts_us: u64,
}

/// The `seq` range one reliable stream got from a publication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sequenced {
    /// The stream.
    pub key: ReliableKey,
    /// The first `seq` given in this publication.
    pub first: u64,
    /// The last `seq` given in this publication.
    pub last: u64,
}

/// Adds `seq` (given in order) of stream `key` to `ranges`, one range per
/// stream in order of first appearance.
pub fn record(ranges: &mut Vec<Sequenced>, key: &ReliableKey, seq: u64) {
    match ranges.iter_mut().find(|s| &s.key == key) {
        Some(s) => s.last = seq,
        None => ranges.push(Sequenced {
            key: key.clone(),
            first: seq,
            last: seq,
        }),
    }
}
