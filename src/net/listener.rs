//! The accept loop of one shard's SO_REUSEPORT listener.

use super::conn::panic_message;
use super::socket;
use crate::config::ServerConfig;
use futures_lite::FutureExt;
use glommio::net::{TcpListener, TcpStream};
use std::future::Future;
use std::os::fd::AsRawFd;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

/// Accepts connections forever and runs `handler` on each in its own task.
/// A panic in one task is logged and ends that task only (glommio would
/// otherwise unwind out of the executor and end the shard).
pub async fn accept_loop<F, Fut>(listener: TcpListener, cfg: &ServerConfig, handler: F)
where
    F: Fn(TcpStream) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    loop {
        match listener.accept().await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                if cfg.send_buffer_bytes > 0 {
                    socket::set_send_buffer(stream.as_raw_fd(), cfg.send_buffer_bytes);
                }
                let task = AssertUnwindSafe(handler(stream)).catch_unwind();
                glommio::spawn_local(async move {
                    if let Err(payload) = task.await {
                        let msg = panic_message(payload.as_ref());
                        tracing::error!("request task panicked: {msg}");
                    }
                })
                .detach();
            }
            Err(e) => {
                // Typically EMFILE: back off instead of spinning on the error.
                tracing::warn!("accept failed: {e}");
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
