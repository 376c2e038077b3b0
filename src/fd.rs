//! Raw calls on a connection's socket that more than one layer makes: a
//! send that never waits (the shard's own writes, last-resort closes) and
//! the bytes still waiting to be sent to the peer; and [`batch`], many
//! such sends in one system call.

pub mod batch;

use std::io;
use std::os::fd::RawFd;

/// Sends what the socket takes of `bytes` now, without waiting: the bytes
/// taken, or `WouldBlock` when its send buffer is full.
pub fn send_now(fd: RawFd, bytes: &[u8]) -> io::Result<usize> {
    // SAFETY: callers pass the fd of a socket they keep open for the call;
    // the buffer is valid for `bytes.len()` bytes.
    let n = unsafe {
        libc::send(
            fd,
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Whether a [`send_now`] of `len` bytes found the socket full: it took
/// part of them, or none (`WouldBlock`). Other errors are not a full socket.
pub fn found_full(sent: &io::Result<usize>, len: usize) -> bool {
    match sent {
        Ok(n) => *n < len,
        Err(e) => e.kind() == io::ErrorKind::WouldBlock,
    }
}

/// Bytes queued in the kernel to the peer and not yet sent (`SIOCOUTQNSD`):
/// what waits for the peer's window (or TCP's congestion window). Bytes in
/// flight (sent, not yet acknowledged) are left out: over a long round trip
/// they are the network's, not a slow reader's. `usize::MAX` when the socket
/// cannot say.
pub fn unsent_bytes(fd: RawFd) -> usize {
    let mut queued: libc::c_int = 0;
    // SAFETY: SIOCOUTQNSD on a socket fd we own writes one c_int.
    let rc = unsafe { libc::ioctl(fd, libc::SIOCOUTQNSD as _, &mut queued) };
    if rc == 0 {
        queued.max(0) as usize
    } else {
        usize::MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;
    use std::time::{Duration, Instant};

    #[test]
    fn a_full_socket_is_a_short_send_or_would_block_and_nothing_else() {
        let would_block = io::Error::from(io::ErrorKind::WouldBlock);
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert!(!found_full(&Ok(10), 10));
        assert!(found_full(&Ok(4), 10));
        assert!(found_full(&Err(would_block), 10));
        assert!(!found_full(&Err(reset), 10));
    }

    #[test]
    fn unsent_bytes_wait_for_a_reader_and_drain_when_it_reads() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let sender = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut reader, _) = listener.accept().unwrap();
        let fd = sender.as_raw_fd();
        assert_eq!(unsent_bytes(fd), 0);

        // Fill the reader's window and our send buffer, reading nothing.
        let chunk = [7u8; 16 * 1024];
        let mut sent = 0;
        loop {
            let r = send_now(fd, &chunk);
            let full = found_full(&r, chunk.len());
            match r {
                Ok(n) => sent += n,
                Err(e) => assert!(full, "send failed: {e}"),
            }
            if full {
                break;
            }
        }
        let queued = unsent_bytes(fd);
        assert!(queued > 0 && queued <= sent, "{queued} of {sent}");

        // Read everything sent: nothing is left waiting.
        let deadline = Instant::now() + Duration::from_secs(10);
        reader
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut read = 0;
        while read < sent {
            assert!(Instant::now() < deadline, "read {read} of {sent}");
            read += reader.read(&mut buf).unwrap();
        }
        assert_eq!(unsent_bytes(fd), 0);
    }
}
