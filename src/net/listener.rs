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

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::AsyncWriteExt;
    use glommio::LocalExecutor;
    use std::io::Read;

    #[test]
    fn a_bare_task_panic_takes_the_executor_down() {
        // Why accept_loop catches: glommio propagates a task's panic out of run().
        let outcome = std::panic::catch_unwind(|| {
            LocalExecutor::default().run(async {
                glommio::spawn_local(async { panic!("bug reached by a client") }).await
            })
        });
        assert!(outcome.is_err());
    }

    #[test]
    fn a_panicking_handler_ends_only_its_connection() {
        let replies = LocalExecutor::default().run(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let cfg = ServerConfig::default();
            let accept = glommio::spawn_local(async move {
                accept_loop(listener, &cfg, |mut stream: TcpStream| async move {
                    let input: Option<u8> = std::hint::black_box(None);
                    if stream.peer_addr().unwrap().port() % 2 == 0 {
                        input.expect("input-derived unwrap");
                    }
                    let _ = stream.write_all(b"served").await;
                })
                .await
            });
            // Blocking clients on their own threads; each says what it read.
            let clients: Vec<_> = (0..8)
                .map(|_| {
                    std::thread::spawn(move || {
                        let mut s = std::net::TcpStream::connect(addr).unwrap();
                        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                        let port = s.local_addr().unwrap().port();
                        let mut got = String::new();
                        let _ = s.read_to_string(&mut got);
                        (port, got)
                    })
                })
                .collect();
            while !clients.iter().all(|c| c.is_finished()) {
                glommio::timer::sleep(Duration::from_millis(5)).await;
            }
            drop(accept);
            clients
                .into_iter()
                .map(|c| c.join().unwrap())
                .collect::<Vec<_>>()
        });
        for (port, got) in replies {
            let want = if port % 2 == 0 { "" } else { "served" };
            assert_eq!(got, want, "client port {port}");
        }
    }
}
