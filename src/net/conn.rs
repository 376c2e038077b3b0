//! One upgraded WebSocket connection or SSE stream: a reader (client frames
//! → the shard; an SSE client sends nothing) and a writer (one socket write
//! per flush the shard builds), running concurrently on the shard that
//! accepted it.

use super::socket;
use super::Stream;
use crate::auth::Claims;
use crate::fanout::wheel::ConnKey;
use crate::frame::deflate::DeflateUse;
use crate::frame::{self, CloseCode, FrameReader};
use crate::protocol::SubscribeOp;
use crate::shard::ShardHandle;
use crate::sse;
use futures_lite::io::{ReadHalf, WriteHalf};
use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

/// How long the server waits for the client's close reply before cutting TCP.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Runs an upgraded connection until it closes: sends `welcome`, then reads
/// ops and writes flushes concurrently on this shard; `deflate` when it
/// negotiated permessage-deflate.
///
/// A panic in either half costs this connection only (glommio would
/// otherwise unwind out of the executor and end the shard): it is closed
/// with 1011 and its state removed. After a panic the only state left
/// half-updated is this connection's, which is removed here; the shard's
/// `RefCell` borrow is released by the unwinding itself.
pub async fn run(
    shard: ShardHandle,
    stream: Stream,
    claims: Claims,
    leftover: Vec<u8>,
    opening: Opening,
) {
    let (fd, plain) = (stream.fd(), stream.is_plain());
    let opened = Instant::now();
    let peer = super::peer_of(stream.tcp());
    let (tenant, sub) = (claims.tenant.clone(), claims.sub.clone());
    let (sse, inflates) = match &opening {
        Opening::WebSocket(deflate) => (false, deflate.is_some()),
        Opening::Sse(_) => (true, false),
    };
    // The shard writes flushes to a plain socket itself; TLS needs the task.
    let direct = plain.then_some(fd);
    let (key, conn) = match opening {
        Opening::WebSocket(deflate) => shard.open(claims, deflate, direct),
        Opening::Sse(ops) => shard.open_sse(claims, ops, direct),
    };
    tracing::info!(
        event = "connect",
        conn,
        peer,
        tenant,
        sub,
        transport = if sse { "sse" } else { "ws" },
        "connection opened"
    );
    // The halves stay here, outside the caught future, so the socket is
    // still open when the 1011 close is written.
    let (mut rd, mut wr) = futures_lite::io::split(stream);
    let reading = async {
        match sse {
            true => drain_loop(&shard, key, &mut rd).await,
            false => read_loop(&shard, key, &mut rd, inflates, leftover).await,
        }
    };
    let served = futures_lite::future::zip(reading, write_loop(&shard, key, &mut wr, fd, &conn));
    if let Err(payload) = AssertUnwindSafe(served).catch_unwind().await {
        let msg = panic_message(payload.as_ref());
        tracing::error!(conn = ?key, "connection task panicked: {msg}; closing it with 1011");
        let code = CloseCode::INTERNAL_ERROR;
        let close = match sse {
            true => sse::close(code.code(), code.reason()),
            false => frame::close_frame(code),
        };
        // Under TLS the session is in the caught future's state, gone:
        // the client sees TCP end.
        if plain {
            let _ = crate::fd::send_now(fd, &close);
        }
    }
    if let Some(end) = shard.remove(key) {
        tracing::info!(
            event = "disconnect",
            conn,
            tenant,
            sub,
            code = end.code.code(),
            reason = end.reason,
            duration_ms = opened.elapsed().as_millis() as u64,
            frames = end.frames,
            "connection closed"
        );
    }
}

/// What an accepted request becomes.
pub enum Opening {
    /// A WebSocket connection: ops arrive as frames, compressed when it
    /// negotiated permessage-deflate.
    WebSocket(Option<DeflateUse>),
    /// An SSE stream with the subscriptions its query named; the client
    /// sends nothing more.
    Sse(Vec<SubscribeOp>),
}

/// The reading side of an SSE stream: the client has nothing more to say,
/// so anything it sends is dropped; its end closes the stream.
async fn drain_loop(shard: &ShardHandle, key: ConnKey, rd: &mut ReadHalf<Stream>) {
    let mut chunk = [0u8; 512];
    while let Ok(1..) = rd.read(&mut chunk).await {}
    shard.reader_finished(key);
}

/// The message a panic carried, for the log.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

async fn read_loop(
    shard: &ShardHandle,
    key: ConnKey,
    rd: &mut ReadHalf<Stream>,
    deflate: bool,
    leftover: Vec<u8>,
) {
    let cfg = &shard.node().config.server;
    let mut reader = FrameReader::new(cfg.max_message_bytes)
        .with_max_fragments(cfg.max_fragments)
        .with_deflate(deflate);
    reader.extend(&leftover);
    let mut chunk = [0u8; 1024];
    'conn: loop {
        loop {
            match reader.next_message() {
                Ok(Some(msg)) => {
                    if !shard.on_message(key, msg) {
                        break 'conn;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    shard.on_frame_error(key, e);
                    break 'conn;
                }
            }
        }
        let n = match rd.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        shard.received(key);
        reader.extend(&chunk[..n]);
    }
    shard.reader_finished(key);
}

async fn write_loop(
    shard: &ShardHandle,
    key: ConnKey,
    wr: &mut WriteHalf<Stream>,
    fd: std::os::fd::RawFd,
    conn: &str,
) {
    let slow_timeout = shard.node().config.server.slow_consumer_timeout();
    while shard.writer_ready(key).await {
        let started = Instant::now();
        let Some(mut flush) = shard.build_flush(key, started) else {
            break;
        };
        let written = write_watched(
            shard,
            key,
            wr,
            &mut flush.buf,
            flush.behind_since,
            slow_timeout,
            conn,
        )
        .await;
        shard.finish_write(key, flush.buf, started, || crate::fd::unsent_bytes(fd));
        if !written {
            break;
        }
        if flush.closing || shard.close_sent(key) {
            // After our close frame: give the client a moment to answer
            // before cutting TCP.
            let _ = glommio::timer::timeout(CLOSE_GRACE, async {
                shard.reader_done(key).await;
                Ok(())
            })
            .await;
            break;
        }
    }
    // Shutdown (not close) ends the reader's pending read so the connection
    // can finish.
    socket::shutdown(fd);
}

/// Writes `buf` completely and flushes it (under TLS the last record may
/// wait in the session otherwise). A connection behind since `behind_since` for
/// `slow_timeout` is a slow consumer: a close 4008 is appended behind the
/// frames already queued, and after another `slow_timeout` the write is given
/// up (returns false).
async fn write_watched(
    shard: &ShardHandle,
    key: ConnKey,
    wr: &mut WriteHalf<Stream>,
    buf: &mut Vec<u8>,
    behind_since: Instant,
    slow_timeout: Duration,
    conn: &str,
) -> bool {
    let mut pos = 0;
    let mut marked_slow = false;
    loop {
        let deadline = behind_since + slow_timeout * if marked_slow { 2 } else { 1 };
        // Fast path: a client that keeps up takes the bytes at once, so no
        // timer is armed (a timer per flush would cost more than the send).
        let step = match futures_lite::future::poll_once(advance(wr, buf, pos)).await {
            Some(done) => Some(done),
            None => {
                let left = deadline.saturating_duration_since(Instant::now());
                glommio::timer::timeout(left, async { Ok(advance(wr, buf, pos).await) })
                    .await
                    .ok()
            }
        };
        match step {
            Some(Ok(0)) if pos == buf.len() => return true,
            Some(Ok(0)) | Some(Err(_)) => return false,
            Some(Ok(n)) => pos += n,
            None if marked_slow => return false,
            None => {
                marked_slow = true;
                tracing::warn!(
                    event = "slow_consumer",
                    conn,
                    behind_ms = slow_timeout.as_millis() as u64,
                    "closing as slow consumer (4008)"
                );
                if let Some(close) = shard.close_as_slow(key) {
                    buf.extend_from_slice(&close);
                }
            }
        }
    }
}

/// One step of [`write_watched`]: writes what is left of `buf` from `pos`
/// (bytes taken, 0 when the peer is gone), or once all is written, flushes
/// (0 when done).
async fn advance(wr: &mut WriteHalf<Stream>, buf: &[u8], pos: usize) -> std::io::Result<usize> {
    match buf.get(pos..) {
        Some(rest) if !rest.is_empty() => wr.write(rest).await,
        _ => wr.flush().await.map(|()| 0),
    }
}
