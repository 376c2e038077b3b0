//! An accepted connection's byte stream: plain TCP, or TLS (rustls) over it
//! when `server.tls_cert` is set. Frames are encoded once and shared either
//! way; only the encryption of each write is per connection.

use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt};
use futures_rustls::server::TlsStream;
use glommio::net::TcpStream;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};

/// A client connection, plain or TLS.
pub enum Stream {
    /// `ws://` and `http://`.
    Plain(TcpStream),
    /// `wss://` and `https://` (boxed: a TLS session is a few KiB).
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// The TCP socket under the stream.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => tls.get_ref().0,
        }
    }

    /// The socket's fd, for socket options and queue depth.
    pub fn fd(&self) -> RawFd {
        self.tcp().as_raw_fd()
    }

    /// Whether bytes written to the fd directly reach the client as they are
    /// (not under TLS).
    pub fn is_plain(&self) -> bool {
        matches!(self, Stream::Plain(_))
    }

    /// Writes `bytes` and pushes them out: under TLS the last record may
    /// otherwise wait in the session's buffer.
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_all(bytes).await?;
        self.flush().await
    }
}

/// Delegates one `AsyncRead`/`AsyncWrite` call to the variant.
macro_rules! either {
    ($self:ident, $s:ident => $call:expr) => {
        match $self.get_mut() {
            Stream::Plain($s) => {
                let $s = Pin::new($s);
                $call
            }
            Stream::Tls($s) => {
                let $s = Pin::new(&mut **$s);
                $call
            }
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        either!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        either!(self, s => s.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        either!(self, s => s.poll_flush(cx))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        either!(self, s => s.poll_close(cx))
    }
}
