//! The shard's own write pass: every plain connection whose flush is due is
//! written from the shard loop, one `send` each, with no task woken. Only a
//! write the socket does not take at once goes to the connection's writer
//! task, which finishes it when the socket is writable again (and keeps the
//! slow-consumer clock). A child of `state`, so it reads the shard's fields.

use super::Shard;
use crate::fanout::outbox::reusable;
use crate::fd;
use std::time::Instant;

impl Shard {
    /// Writes the connections in the due-now list that still have a flush
    /// due, for at most one tick (`server.tick_us`): the rest stay in the list, first in line
    /// for the next pass, so the ring is drained in between and what they
    /// are sent is fresh. Returns whether some are left. A connection with a
    /// close to send is woken instead.
    pub fn write_due(&mut self, now: Instant) -> bool {
        let budget = self.node.config.server.tick();
        let mut keys = std::mem::take(&mut self.due);
        self.wheel.take_due_now(&mut keys);
        let started = Instant::now();
        let mut served = 0;
        while let Some(&key) = keys.get(served) {
            if served % 16 == 15 && started.elapsed() > budget {
                break;
            }
            served += 1;
            // Each send takes microseconds: ample time for the session two
            // ahead and the subscription list one ahead to reach the cache
            // before their turn.
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
            outbox.keep_write_buffer(std::mem::take(&mut self.pass_buf));
            let Some(flush) = self.build_flush(key, now) else {
                continue;
            };
            match fd::send_now(socket, &flush.buf) {
                Ok(n) if n == flush.buf.len() => {
                    self.finish_write(key, now, || fd::unsent_bytes(socket));
                    self.pass_buf = reusable(flush.buf);
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
        let left = keys.len() - served;
        self.unserved_max = self.unserved_max.max(left);
        keys.drain(..served);
        self.wheel.still_due(&mut keys);
        self.due = keys;
        left > 0
    }
}
