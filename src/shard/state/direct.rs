//! The shard's own write pass: every plain connection whose flush is due is
//! written from the shard loop, with no task woken, its sends submitted in
//! batches (`fd::batch`: one system call for many writes). Only a write the
//! socket does not take at once goes to the connection's writer task, which
//! finishes it when the socket is writable again (and keeps the
//! slow-consumer clock). A child of `state`, so it reads the shard's fields.

use super::Shard;
use crate::fanout::outbox::{reusable, Flush};
use crate::fanout::wheel::ConnKey;
use crate::fd;
use std::time::Instant;

/// Writes submitted together. Each holds its own buffer until the batch is
/// sent, so the batch is kept small enough for its buffers to stay in cache
/// (32 writes of ~4.5 KB). A choice, not a measured optimum: a first trial
/// on this VM's loopback, with a throw-away program not kept, saw no clear
/// difference between 16 and 256.
pub const SEND_BATCH: usize = 32;

/// A flush built for a connection and queued in the batch.
pub struct DueWrite {
    key: ConnKey,
    flush: Flush,
}

impl AsRef<[u8]> for DueWrite {
    fn as_ref(&self) -> &[u8] {
        &self.flush.buf
    }
}

impl Shard {
    /// Writes the connections in the due-now list that still have a flush
    /// due, for about one tick (`server.tick_us`; the pass stops after the
    /// first batch that ends past it): the rest stay in the list, first in
    /// line for the next pass, so the ring is drained in between and what
    /// they are sent is fresh. Returns whether some are left. A connection with a
    /// close to send is woken instead.
    pub fn write_due(&mut self, now: Instant) -> bool {
        let budget = self.node.config.server.tick();
        let mut keys = std::mem::take(&mut self.due);
        self.wheel.take_due_now(&mut keys);
        let started = Instant::now();
        let mut served = 0;
        while let Some(&key) = keys.get(served) {
            served += 1;
            // Building a write takes about a microsecond (and each batch's
            // sends take microseconds each): time for the session two ahead
            // and the subscription list one ahead to start reaching the
            // cache before their turn.
            if let Some(&ahead) = keys.get(served + 1) {
                self.conns.prefetch_session(ahead);
            }
            if let Some(&next) = keys.get(served) {
                self.conns.prefetch_subscriptions(next);
            }
            let Some(session) = self.conns.get_mut(key) else {
                continue;
            };
            let outbox = session.outbox_mut();
            let Some(socket) = outbox.direct_write_due() else {
                outbox.wake_for_close();
                continue;
            };
            outbox.keep_write_buffer(self.spare_bufs.pop().unwrap_or_default());
            let Some(flush) = self.build_flush(key, now) else {
                continue;
            };
            // The time goes in the sends, so the budget is checked after
            // each batch: a pass overruns its tick by one batch at most.
            if self.sends.push(socket, DueWrite { key, flush }) {
                self.send_batch(now);
                if started.elapsed() > budget {
                    break;
                }
            }
        }
        self.send_batch(now);
        let left = keys.len() - served;
        self.unserved_max = self.unserved_max.max(left);
        keys.drain(..served);
        self.wheel.still_due(&mut keys);
        self.due = keys;
        left > 0
    }

    /// Sends the queued writes and settles each: a whole write is finished
    /// and its buffer kept for the pass; the rest of any other is parked for
    /// the connection's writer task.
    fn send_batch(&mut self, now: Instant) {
        if self.sends.is_empty() {
            return;
        }
        let mut sent = std::mem::take(&mut self.sent);
        self.sends.send_all(&mut sent);
        for (socket, write, result) in sent.drain(..) {
            let DueWrite { key, flush } = write;
            match result {
                Ok(n) if n == flush.buf.len() => {
                    self.finish_write(key, now, || fd::unsent_bytes(socket));
                    self.spare_bufs.push(reusable(flush.buf));
                }
                sent => {
                    // Partial, a full socket (WouldBlock), or an error the
                    // writer task meets again and ends the connection on.
                    let full = fd::found_full(&sent, flush.buf.len());
                    self.counters.socket_full_writes += u64::from(full);
                    let written = sent.unwrap_or(0);
                    if let Some(session) = self.conns.get_mut(key) {
                        session.outbox_mut().park_rest(flush, written);
                    }
                }
            }
        }
        self.sent = sent;
    }
}
