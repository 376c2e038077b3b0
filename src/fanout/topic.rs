//! Stream → subscribers index of one shard, so a changed value touches only
//! the connections subscribed to it (linear in affected subscribers).

use super::latest::{PerStream, StreamId};

/// Index of a connection in its shard's connection table.
pub type ConnIndex = u32;

/// For each stream, the connections subscribed to it.
#[derive(Debug, Default)]
pub struct TopicIndex {
    subscribers: PerStream<Vec<ConnIndex>>,
    total: usize,
}

impl TopicIndex {
    /// Adds `conn` to `stream`'s subscribers. The caller ensures it is not there yet.
    pub fn subscribe(&mut self, stream: StreamId, conn: ConnIndex) {
        self.subscribers.entry(stream).push(conn);
        self.total += 1;
    }

    /// Removes `conn` from `stream`'s subscribers; returns whether it was there.
    pub fn unsubscribe(&mut self, stream: StreamId, conn: ConnIndex) -> bool {
        let Some(list) = self.subscribers.get_mut(stream) else {
            return false;
        };
        match list.iter().position(|&c| c == conn) {
            Some(i) => {
                list.swap_remove(i);
                self.total -= 1;
                true
            }
            None => false,
        }
    }

    /// The connections subscribed to `stream`.
    pub fn subscribers(&self, stream: StreamId) -> &[ConnIndex] {
        self.subscribers.get(stream).map_or(&[], Vec::as_slice)
    }

    /// Total subscriptions across all streams.
    pub fn total(&self) -> usize {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_and_unsubscribe() {
        let mut t = TopicIndex::default();
        t.subscribe(StreamId::metric(5), 1);
        t.subscribe(StreamId::metric(5), 2);
        t.subscribe(StreamId::metric(0), 2);
        assert_eq!(t.subscribers(StreamId::metric(5)), &[1, 2]);
        assert_eq!(t.total(), 3);
        assert!(t.unsubscribe(StreamId::metric(5), 1));
        assert!(!t.unsubscribe(StreamId::metric(5), 1));
        assert!(!t.unsubscribe(StreamId::metric(99), 1));
        assert_eq!(t.subscribers(StreamId::metric(5)), &[2]);
        assert_eq!(t.subscribers(StreamId::metric(7)), &[] as &[u32]);
        assert_eq!(t.total(), 2);
    }
}
