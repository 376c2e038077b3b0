//! Raw calls on a connection's socket that more than one layer makes: a
//! send that never waits (the shard's own writes, last-resort closes) and
//! the bytes still queued to the peer.

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

/// Bytes queued in the kernel to the peer and not yet acknowledged
/// (`usize::MAX` when the socket cannot say).
pub fn unsent_bytes(fd: RawFd) -> usize {
    let mut queued: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) on a socket fd we own writes one c_int.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut queued) };
    if rc == 0 {
        queued.max(0) as usize
    } else {
        usize::MAX
    }
}
