//! How the aggregator wakes a shard that sleeps on an empty ring.
//!
//! Below saturation a shard has nothing to do between quotes; rather than
//! polling its ring every tick it sleeps until its next timed work, and the
//! aggregator rings the bell after pushing records. The bell is one byte on
//! a socket pair, written only while the shard says it is parked, so a busy
//! shard costs the aggregator a load of the ring's read index, a fence and a
//! flag load per batch, and no system call.

use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::Arc;

/// The aggregator's end: rings when the shard is parked.
pub struct Doorbell {
    parked: Arc<AtomicBool>,
    socket: UnixStream,
}

/// A bell, the parked flag the shard's loop sets, and the socket whose
/// bytes are the rings (one byte each, any number coalesced), for a task of
/// the shard to wait on.
pub fn doorbell() -> io::Result<(Doorbell, Parking, UnixStream)> {
    let (ring_end, listen_end) = UnixStream::pair()?;
    // Never block the aggregator: a full socket already holds a wake-up.
    ring_end.set_nonblocking(true)?;
    let parked = Arc::new(AtomicBool::new(false));
    let bell = Doorbell {
        parked: parked.clone(),
        socket: ring_end,
    };
    Ok((bell, Parking(parked), listen_end))
}

impl Doorbell {
    /// Wakes the shard if it is parked. Call after pushing its records: the
    /// fence pairs with [`Parking::arm`], so either the shard sees
    /// the records before it sleeps or this sees it parked.
    pub fn ring(&self) {
        fence(Ordering::SeqCst);
        if self.parked.load(Ordering::Relaxed) && self.parked.swap(false, Ordering::Relaxed) {
            // WouldBlock means bytes are already waiting; a closed shard
            // needs no waking.
            let _ = (&self.socket).write(&[1]);
        }
    }
}

/// The parked flag, as the shard's loop sets it.
pub struct Parking(Arc<AtomicBool>);

impl Parking {
    /// Marks the shard parked; check the ring after this, and sleep only if
    /// it is empty.
    pub fn arm(&self) {
        self.0.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// Marks the shard awake: the aggregator stops ringing.
    pub fn disarm(&self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn rings_waiting(mut socket: &UnixStream) -> usize {
        socket.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 16];
        match socket.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn rings_only_a_parked_shard_and_once_per_parking() {
        let (bell, parking, socket) = doorbell().unwrap();
        bell.ring();
        assert_eq!(rings_waiting(&socket), 0, "an awake shard is not rung");
        parking.arm();
        bell.ring();
        bell.ring();
        assert_eq!(rings_waiting(&socket), 1, "one byte per parking");
        parking.arm();
        parking.disarm();
        bell.ring();
        assert_eq!(rings_waiting(&socket), 0, "disarmed before the ring");
    }
}
