//! Kernel receive timestamps: when the bytes a read returns reached the
//! client's socket (see [`recv`] for which bytes a stamp belongs to). On
//! loopback that is the moment the server's write arrived, so a price's
//! latency does not include the time the harness's own read loop (one
//! thread for thousands of connections, on a shared core) took to get to
//! that socket; that delay is measured apart.

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, RawFd};

/// Asks the kernel to stamp what `sock` receives (`SO_TIMESTAMPNS`, the
/// realtime clock, software stamps taken as each packet is received).
pub fn enable(sock: &impl AsRawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid fd and a c_int option value of the size given.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Room for one `SCM_TIMESTAMPNS` control message (a `timespec`), aligned
/// as `cmsghdr` needs.
#[repr(C, align(8))]
struct Control([u8; 64]);

/// Reads into `buf` like `read(2)` and returns the bytes read with a
/// receive time (µs since the Unix epoch), if the socket has stamping on.
/// The kernel reports the stamp of the last queued buffer the read copied
/// from, and a buffer that later packets were merged into carries the
/// newest one's: the stamp is never earlier than any byte returned, and may
/// belong to bytes still queued. A latency from it is never flattered.
pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Option<u64>)> {
    let mut control = Control([0; 64]);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; every pointer set below outlives the call.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = control.0.len() as _;
    // SAFETY: `fd` is an open socket; msg points at live buffers of the sizes given.
    let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((n as usize, stamp_of(&msg)))
}

/// The `SCM_TIMESTAMPNS` stamp of a received message, µs.
fn stamp_of(msg: &libc::msghdr) -> Option<u64> {
    // SAFETY: walking the control messages the kernel wrote into msg's
    // buffer with the libc macros, which stay within `msg_controllen`.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            let c = &*cmsg;
            if c.cmsg_level == libc::SOL_SOCKET && c.cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                let us = ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000;
                return (us > 0).then_some(us);
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn a_stamped_socket_reports_when_its_bytes_arrived() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        enable(&client).unwrap();
        // The first stamping socket turns the kernel's receive stamps on
        // from a work queue, a moment later: wait (at most 10 s) until a
        // byte arrives stamped.
        let mut buf = [0u8; 16];
        let started = std::time::Instant::now();
        loop {
            server.write_all(b".").unwrap();
            let (_, stamp) = recv(client.as_raw_fd(), &mut buf).unwrap();
            if stamp.is_some() || started.elapsed().as_secs() >= 10 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let before = crate::worker::unix_us();
        server.write_all(b"hello").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (n, stamp) = recv(client.as_raw_fd(), &mut buf).unwrap();
        let after_read = crate::worker::unix_us();
        assert_eq!(&buf[..n], b"hello");
        let stamp = stamp.expect("a stamp on an enabled socket");
        assert!(stamp >= before, "stamped {stamp}, written at {before}");
        assert!(
            after_read - stamp >= 15_000,
            "the stamp is the arrival, not the read 20 ms later"
        );
    }

    /// Meaningful beside the test above, which shows stamps do arrive.
    #[test]
    fn a_socket_without_stamping_reads_without_a_stamp() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        server.write_all(b"x").unwrap();
        let mut buf = [0u8; 4];
        let (n, stamp) = recv(client.as_raw_fd(), &mut buf).unwrap();
        assert_eq!((n, stamp), (1, None));
    }
}
