//! Following the reliable stream without a consumer: each message is read
//! with JetStream's direct get, which any replica of the stream answers.
//! A consumer lives on one server (or in its own replicated group) and,
//! when a cluster server dies, creating or re-electing one can take
//! minutes; direct gets go on as long as one replica is up.
//!
//! Reliable messages are few, so reading them one request each costs
//! little. A core subscription to the stream's subjects wakes the reader
//! when something is published; without one it looks every [`IDLE_POLL`].

use super::store::RELIABLE_SUBJECTS;
use super::{until_ready, BusState, RETRY};
use async_nats::header::NATS_SEQUENCE;
use async_nats::jetstream::stream::{self, DirectGetErrorKind};
use async_nats::jetstream::{self, Message};
use async_nats::StatusCode;
use futures_lite::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How often a caught-up reader looks for new messages without a wake-up
/// (a replica may answer before it has what the wake-up announced).
const IDLE_POLL: Duration = Duration::from_millis(50);
/// How often the lag behind the stream is measured while reading.
const LAG_CHECK: Duration = Duration::from_secs(2);

/// Sends every message of the reliable stream `config` describes, from the
/// first, in order, to `out`, until `out` is dropped. Its lag (messages
/// stored after the last one read) goes to `bus`.
pub(super) async fn follow(
    client: async_nats::Client,
    js: jetstream::Context,
    config: stream::Config,
    out: mpsc::Sender<Message>,
    bus: Arc<BusState>,
) {
    let name = config.name.clone();
    let mut stream = until_ready(&name, || async {
        Ok::<_, async_nats::Error>(js.get_or_create_stream(config.clone()).await?)
    })
    .await;
    let mut wake = match client.subscribe(RELIABLE_SUBJECTS).await {
        Ok(wake) => Some(wake),
        Err(e) => {
            tracing::warn!(error = %e, "no wake-ups for {name}; polling every {IDLE_POLL:?}");
            None
        }
    };
    tracing::info!("nats feed reading stream {name}");
    let mut next = 1;
    let mut lag_checked = Instant::now();
    loop {
        if lag_checked.elapsed() >= LAG_CHECK {
            lag_checked = Instant::now();
            if let Ok(info) = stream.info().await {
                bus.set_pending(&name, (info.state.last_sequence + 1).saturating_sub(next));
            }
        }
        let read = stream
            .direct_get_next_for_subject(RELIABLE_SUBJECTS, Some(next))
            .await;
        match read {
            Ok(message) => match (sequence_of(&message), message.status) {
                (Some(seq), _) => {
                    next = seq + 1;
                    if out.send(message).await.is_err() {
                        return;
                    }
                }
                // Nothing at or after `next` yet (a server may answer with a
                // bare 404 status rather than an error description).
                (None, Some(StatusCode::NOT_FOUND)) => {
                    caught_up(&bus, &name, wake.as_mut()).await;
                }
                (None, status) => {
                    tracing::warn!(
                        ?status,
                        "a direct get of {name} answered without a message; retrying"
                    );
                    tokio::time::sleep(RETRY).await;
                }
            },
            Err(e) if matches!(e.kind(), DirectGetErrorKind::NotFound) => {
                caught_up(&bus, &name, wake.as_mut()).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading {name}; retrying");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// Nothing more to read: says so in the lag, then waits for a wake-up or
/// [`IDLE_POLL`].
async fn caught_up(bus: &BusState, name: &str, wake: Option<&mut async_nats::Subscriber>) {
    bus.set_pending(name, 0);
    let woken = async {
        match wake {
            Some(wake) => wake.next().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = woken => {}
        _ = tokio::time::sleep(IDLE_POLL) => {}
    }
}

/// The stream sequence of a message read by a direct get.
fn sequence_of(message: &Message) -> Option<u64> {
    message
        .headers
        .as_ref()?
        .get(NATS_SEQUENCE)?
        .as_str()
        .parse()
        .ok()
}
