//! Socket options and last-resort writes on an accepted connection's fd,
//! through `socket2` (glommio's stream exposes only the raw fd).

use socket2::SockRef;
use std::os::fd::{BorrowedFd, RawFd};

/// A connection's socket, borrowed for one call.
fn with_socket<R>(fd: RawFd, f: impl FnOnce(SockRef<'_>) -> R) -> R {
    // SAFETY: callers pass the fd of a stream they still own, so it stays
    // open for the borrow, which ends with this call.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    f(SockRef::from(&fd))
}

/// Caps the kernel send buffer so a slow reader falls behind in our
/// conflation table (latest values) instead of in a deep kernel queue.
pub fn set_send_buffer(fd: RawFd, bytes: usize) {
    if let Err(e) = with_socket(fd, |s| s.set_send_buffer_size(bytes)) {
        tracing::warn!("could not set SO_SNDBUF to {bytes}: {e}");
    }
}

/// Ends both directions, so a pending read returns and the connection's
/// tasks can finish; the fd itself is closed by the stream's owner.
pub fn shutdown(fd: RawFd) {
    let _ = with_socket(fd, |s| s.shutdown(std::net::Shutdown::Both));
}
