//! Sends to many sockets with one system call: an io_uring of the shard's
//! own, apart from glommio's, submitted once per batch of due writes. Each
//! send is [`super::send_now`]'s (it never waits: `MSG_DONTWAIT`, which
//! makes the kernel finish it, or fail it with `EAGAIN`, inside the
//! submitting call), and the batch completes before [`SendBatch::send_all`]
//! returns. What a batch saves is the system call and its entry and exit
//! per write (on this VM's loopback 7–10% of a write's cost:
//! `tuning/results/2026-12-07-batched-sends.md`).

use std::io;
use std::os::fd::RawFd;

/// Writes queued for one submission, each an owner of its bytes (`T`) and
/// the socket they go to.
pub struct SendBatch<T> {
    /// `None` when no ring could be set up (or one failed): each write is
    /// then its own `send`, with the same results.
    ring: Option<io_uring::IoUring>,
    queued: Vec<(RawFd, T)>,
    results: Vec<Option<io::Result<usize>>>,
    capacity: usize,
}

/// One queued write and what became of it: the bytes the socket took, or
/// `WouldBlock` when its send buffer was full, or the error that ended it.
pub type Sent<T> = (RawFd, T, io::Result<usize>);

/// Submissions refused for want of kernel resources (`EAGAIN`, `EBUSY`) in
/// a row before the ring is given up.
const BUSY_RETRIES: u32 = 1_000;

impl<T: AsRef<[u8]>> SendBatch<T> {
    /// A batch of at most `capacity` writes (1 or more). Without a ring (the
    /// kernel or a sandbox refused one), writes go one `send` each.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let ring = u32::try_from(capacity)
            .ok()
            .and_then(|n| io_uring::IoUring::new(n.next_power_of_two()).ok());
        if ring.is_none() {
            tracing::warn!("no io_uring for batched sends: one send(2) per write");
        }
        SendBatch {
            ring,
            queued: Vec::with_capacity(capacity),
            results: Vec::with_capacity(capacity),
            capacity,
        }
    }

    /// Whether writes go through an io_uring (else one `send` each).
    pub fn uses_io_uring(&self) -> bool {
        self.ring.is_some()
    }

    /// Queues a write of `bytes` to `fd`; returns whether the batch is now
    /// full (and must be sent before the next push).
    pub fn push(&mut self, fd: RawFd, bytes: T) -> bool {
        debug_assert!(self.queued.len() < self.capacity, "push to a full batch");
        self.queued.push((fd, bytes));
        self.queued.len() >= self.capacity
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// Sends every queued write and appends each, with its result, to `out`
    /// in the order they were queued.
    pub fn send_all(&mut self, out: &mut Vec<Sent<T>>) {
        if self.queued.is_empty() {
            return;
        }
        self.results.clear();
        self.results.resize_with(self.queued.len(), || None);
        let mut taken = 0;
        if let Some(ring) = self.ring.as_mut() {
            if let Err((e, took)) = submit(ring, &self.queued, &mut self.results) {
                taken = took;
                // Entries the ring did not take are dropped with it (the
                // kernel never saw them): those writes go by `send` below.
                tracing::error!(
                    "io_uring submission failed ({e}): one send(2) per write from now on"
                );
                self.ring = None;
            }
        }
        for (i, ((fd, bytes), result)) in self
            .queued
            .drain(..)
            .zip(self.results.drain(..))
            .enumerate()
        {
            match result {
                Some(result) => out.push((fd, bytes, result)),
                None if i < taken => {
                    // The kernel may still read these bytes: they are never
                    // freed, reused or sent again. None ever are while
                    // sends finish inside the submitting call, as
                    // `MSG_DONTWAIT` sends do.
                    tracing::error!(fd, "a send the failed io_uring took never finished: its connection gets no more writes");
                    std::mem::forget(bytes);
                }
                None => {
                    let result = super::send_now(fd, bytes.as_ref());
                    out.push((fd, bytes, result));
                }
            }
        }
    }
}

/// Submits one send per queued write and collects their results by index.
/// An `Err` means the ring failed, with how many writes the kernel had
/// taken (the first ones, in order): the others were not sent.
fn submit<T: AsRef<[u8]>>(
    ring: &mut io_uring::IoUring,
    queued: &[(RawFd, T)],
    results: &mut [Option<io::Result<usize>>],
) -> Result<(), (io::Error, usize)> {
    {
        let mut sq = ring.submission();
        for (i, (fd, bytes)) in queued.iter().enumerate() {
            let bytes = bytes.as_ref();
            let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
            let entry = io_uring::opcode::Send::new(io_uring::types::Fd(*fd), bytes.as_ptr(), len)
                .flags(libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
                .build()
                .user_data(i as u64);
            // SAFETY: the buffer is owned by `queued`, which is neither
            // changed nor dropped until every entry the kernel takes has
            // completed (the loop below waits for each; `send_all` leaks
            // the bytes of any it cannot wait for). The ring has room: it
            // has at least as many entries as the batch and is empty
            // between batches.
            unsafe { sq.push(&entry) }
                .map_err(|_| (io::Error::other("submission queue full"), 0))?;
        }
    }
    let mut pending = queued.len();
    let mut busy = 0;
    while pending > 0 {
        match ring.submit_and_wait(pending) {
            Ok(_) => busy = 0,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_busy(&e) && busy < BUSY_RETRIES => {
                busy += 1;
                std::thread::yield_now();
            }
            Err(e) => {
                reap(ring, results, &mut pending);
                return Err((e, queued.len() - ring.submission().len()));
            }
        }
        reap(ring, results, &mut pending);
    }
    Ok(())
}

/// Moves the completions waiting in `ring` into `results` by index.
fn reap(
    ring: &mut io_uring::IoUring,
    results: &mut [Option<io::Result<usize>>],
    pending: &mut usize,
) {
    for cqe in ring.completion() {
        let result = cqe.result();
        if let Some(slot @ None) = results.get_mut(cqe.user_data() as usize) {
            *slot = Some(if result < 0 {
                Err(io::Error::from_raw_os_error(-result))
            } else {
                Ok(result as usize)
            });
            *pending -= 1;
        }
    }
}

/// The kernel could not take more work for now (`EAGAIN`, `EBUSY`).
fn is_busy(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EBUSY))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    fn pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        (server, client)
    }

    #[test]
    fn a_batch_sends_each_write_to_its_socket_and_reports_in_order() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let pairs: Vec<_> = (0..3).map(|_| pair(&listener)).collect();
        let mut batch = SendBatch::new(2);
        assert!(batch.ring.is_some(), "io_uring is available here");
        let mut sent = Vec::new();
        for (i, (server, _)) in pairs.iter().enumerate() {
            let full = batch.push(server.as_raw_fd(), vec![b'a' + i as u8; 100 + i]);
            assert_eq!(full, i == 1, "full at the second write");
            if full {
                batch.send_all(&mut sent);
                assert!(batch.is_empty());
            }
        }
        batch.send_all(&mut sent);
        let got: Vec<_> = sent
            .iter()
            .map(|(fd, b, r)| (*fd, b[0], *r.as_ref().unwrap()))
            .collect();
        let want: Vec<_> = pairs
            .iter()
            .enumerate()
            .map(|(i, (s, _))| (s.as_raw_fd(), b'a' + i as u8, 100 + i))
            .collect();
        assert_eq!(got, want);
        for (i, (_, mut client)) in pairs.into_iter().enumerate() {
            let mut buf = vec![0u8; 100 + i];
            client.read_exact(&mut buf).unwrap();
            assert!(buf.iter().all(|&b| b == b'a' + i as u8));
        }
    }

    #[test]
    fn a_full_socket_is_reported_as_such_and_the_others_still_go() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (stuck, _stuck_client) = pair(&listener);
        let (free, mut free_client) = pair(&listener);
        // Fill the stuck socket: its client never reads.
        let chunk = vec![7u8; 64 * 1024];
        while !super::super::found_full(
            &super::super::send_now(stuck.as_raw_fd(), &chunk),
            chunk.len(),
        ) {}

        let mut batch = SendBatch::new(4);
        batch.push(stuck.as_raw_fd(), chunk.clone());
        batch.push(free.as_raw_fd(), b"fresh".to_vec());
        let mut sent = Vec::new();
        batch.send_all(&mut sent);
        assert!(
            super::super::found_full(&sent[0].2, chunk.len()),
            "{:?}",
            sent[0].2
        );
        assert_eq!(*sent[1].2.as_ref().unwrap(), 5);
        let mut buf = [0u8; 5];
        free_client.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"fresh");
    }

    /// A write to a bad fd and one to an open socket, in one batch.
    fn bad_then_good(batch: &mut SendBatch<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (open, mut open_client) = pair(&listener);
        batch.push(-1, b"nowhere".to_vec());
        batch.push(open.as_raw_fd(), b"here".to_vec());
        let mut sent = Vec::new();
        batch.send_all(&mut sent);
        assert!(batch.is_empty());
        let err = sent[0].2.as_ref().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF), "{err}");
        assert_eq!(*sent[1].2.as_ref().unwrap(), 4);
        let mut buf = [0u8; 4];
        open_client.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"here");
    }

    #[test]
    fn a_closed_socket_is_an_error_for_its_write_only() {
        bad_then_good(&mut SendBatch::new(2));
    }

    #[test]
    fn without_a_ring_each_write_is_its_own_send_with_the_same_results() {
        let mut batch = SendBatch::new(2);
        batch.ring = None; // as when the kernel refuses one, or one failed
        assert!(!batch.uses_io_uring());
        bad_then_good(&mut batch);
    }
}
