//! Watches the shards: how each one ended, and the drain on SIGTERM/SIGINT.

use crate::shard::Node;
use anyhow::{bail, Context};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a shard thread ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ShardExit {
    /// Its loop returned (the node drained, or it could not listen).
    Finished,
    /// It unwound from a panic.
    Panicked,
}

impl std::fmt::Display for ShardExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ShardExit::Finished => "finished",
            ShardExit::Panicked => "panicked",
        })
    }
}

/// What a shard thread tells the supervisor.
pub(super) enum ShardEvent {
    /// Its listener is bound (to this address), or could not be.
    Bound(std::io::Result<SocketAddr>),
    /// Shard `id` ended.
    Exited(usize, ShardExit),
}

/// Reports a shard's end to the supervisor even when it unwinds from a panic.
pub(super) struct ExitGuard {
    id: usize,
    events: mpsc::Sender<ShardEvent>,
    exit: ShardExit,
}

impl ExitGuard {
    /// A guard that reports a panic unless [`ExitGuard::finished`] is called.
    pub(super) fn new(id: usize, events: mpsc::Sender<ShardEvent>) -> Self {
        ExitGuard {
            id,
            events,
            exit: ShardExit::Panicked,
        }
    }

    /// The shard ended normally.
    pub(super) fn finished(&mut self) {
        self.exit = ShardExit::Finished;
    }
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let _ = self.events.send(ShardEvent::Exited(self.id, self.exit));
    }
}

/// Waits for a signal or a shard failure; on a signal, drains and waits for
/// every shard to finish within the drain timeout.
pub(super) fn supervise(
    node: &Node,
    events: &mpsc::Receiver<ShardEvent>,
    shards: usize,
) -> anyhow::Result<()> {
    let signalled = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, signalled.clone())
            .context("installing signal handlers")?;
    }
    let mut finished = 0;
    let mut deadline: Option<Instant> = None;
    loop {
        if deadline.is_none() && signalled.load(Ordering::Relaxed) {
            tracing::info!(
                "signal received: draining (healthz 503, close 1001 to every connection)"
            );
            node.start_draining();
            deadline =
                Some(Instant::now() + node.config.server.drain_timeout() + Duration::from_secs(2));
        }
        match events.recv_timeout(Duration::from_millis(50)) {
            Ok(ShardEvent::Exited(id, exit))
                if !node.is_draining() || exit == ShardExit::Panicked =>
            {
                bail!("shard-{id} {exit} unexpectedly; stopping the node");
            }
            Ok(ShardEvent::Exited(..)) => {
                finished += 1;
                if finished == shards {
                    tracing::info!("drained; exiting");
                    return Ok(());
                }
            }
            Ok(ShardEvent::Bound(..)) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => bail!("every shard is gone"),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            tracing::warn!(
                "drain timeout passed with {} shard(s) still running",
                shards - finished
            );
            return Ok(());
        }
    }
}
