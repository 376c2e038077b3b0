//! How a shard's tasks reach its state: a `RefCell` borrowed only between
//! awaits, never across one.

use super::node::Node;
use super::state::{ConnEnd, Shard};
use crate::auth::Claims;
use crate::fanout::outbox::Flush;
use crate::fanout::wheel::ConnKey;
use crate::fanout::wire::Wire;
use crate::frame::deflate::DeflateUse;
use crate::frame::{FrameError, Incoming};
use crate::protocol::SubscribeOp;
use bytes::Bytes;
use std::cell::RefCell;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A shard's state as its tasks hold it.
#[derive(Clone)]
pub struct ShardHandle {
    inner: Rc<RefCell<Shard>>,
    node: Arc<Node>,
}

impl ShardHandle {
    /// A new, empty shard number `id` of `node`.
    pub fn new(id: usize, node: Arc<Node>) -> Self {
        ShardHandle {
            inner: Rc::new(RefCell::new(Shard::new(id, node.clone()))),
            node,
        }
    }

    /// The node context.
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// Runs `f` on the shard state; `f` cannot await, so the borrow never
    /// spans a suspension point. Wakes the shard's loop when `f` made a
    /// flush due before the loop would wake by itself.
    pub(super) fn with<R>(&self, f: impl FnOnce(&mut Shard) -> R) -> R {
        let mut shard = self.inner.borrow_mut();
        let out = f(&mut shard);
        shard.wake_loop_if_sooner();
        out
    }

    /// Runs `f` on the shard state at `now`, then writes what became due:
    /// a welcome or a reply goes out at once, not at the loop's next turn.
    fn with_writes<R>(&self, f: impl FnOnce(&mut Shard, Instant) -> R) -> R {
        self.with(|s| {
            let now = Instant::now();
            let out = f(s, now);
            s.write_due(now);
            out
        })
    }

    /// Opens a session for an upgraded connection; returns its key and the
    /// connection id its welcome names. The shard writes to `direct` itself
    /// when given (a plain socket).
    pub fn open(
        &self,
        claims: Claims,
        deflate: Option<DeflateUse>,
        direct: Option<RawFd>,
    ) -> (ConnKey, String) {
        self.with_writes(|s, _| s.open(claims, Wire::WebSocket, deflate, direct))
    }

    /// Opens an SSE session subscribed with `ops`; returns its key and the
    /// connection id its welcome names.
    pub fn open_sse(
        &self,
        claims: Claims,
        ops: Vec<SubscribeOp>,
        direct: Option<RawFd>,
    ) -> (ConnKey, String) {
        self.with_writes(|s, _| s.open_sse(claims, ops, direct))
    }

    /// The client sent bytes.
    pub fn received(&self, key: ConnKey) {
        self.with(|s| s.received(key, Instant::now()))
    }

    /// Handles one client message; false when the reader should stop.
    pub fn on_message(&self, key: ConnKey, msg: Incoming) -> bool {
        self.with_writes(|s, now| s.on_message(key, msg, now))
    }

    /// The client broke the WebSocket rules.
    pub fn on_frame_error(&self, key: ConnKey, e: FrameError) {
        self.with(|s| s.on_frame_error(key, e))
    }

    /// The client's side of the connection ended.
    pub fn reader_finished(&self, key: ConnKey) {
        self.with(|s| s.reader_finished(key))
    }

    /// Waits until the writer of `key` has something to do; false once the
    /// connection is done.
    pub async fn writer_ready(&self, key: ConnKey) -> bool {
        std::future::poll_fn(|cx| self.with(|s| s.poll_writer(key, cx))).await
    }

    /// Waits until the client stopped reading (after our close frame).
    pub async fn reader_done(&self, key: ConnKey) {
        std::future::poll_fn(|cx| self.with(|s| s.poll_reader_done(key, cx))).await
    }

    /// Builds the next write of `key`; `None` once it is gone.
    pub fn build_flush(&self, key: ConnKey, now: Instant) -> Option<Flush> {
        self.with(|s| s.build_flush(key, now))
    }

    /// Records a finished write (see [`Shard::finish_write`]) and keeps its
    /// buffer for the connection's next flush.
    pub fn finish_write(
        &self,
        key: ConnKey,
        buf: Vec<u8>,
        started: Instant,
        unsent: impl FnOnce() -> usize,
    ) {
        self.with(|s| {
            s.keep_write_buffer(key, buf);
            s.finish_write(key, started, unsent);
        })
    }

    /// Whether `key` sent its close frame (or is gone).
    pub fn close_sent(&self, key: ConnKey) -> bool {
        self.with(|s| s.close_sent(key))
    }

    /// Closes `key` as a slow consumer; the close frame to append, if any.
    pub fn close_as_slow(&self, key: ConnKey) -> Option<Bytes> {
        self.with(|s| s.close_as_slow(key))
    }

    /// Records how long an upgrade took from accept to `101` written.
    pub fn record_handshake(&self, took: Duration) {
        self.with(|s| s.record_handshake(took))
    }

    /// Removes a finished connection and its subscriptions; how it ended.
    pub fn remove(&self, key: ConnKey) -> Option<ConnEnd> {
        self.with(|s| s.remove(key))
    }
}
