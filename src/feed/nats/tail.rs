//! Following the event stream with a consumer: every metric and keyed
//! event in order, from where the node starts, through NATS reconnects and
//! the loss of a cluster server.

use super::{until_ready, BusState, RETRY};
use async_nats::jetstream::consumer::pull::MessagesErrorKind;
use async_nats::jetstream::context::{ConsumerInfoError, ConsumerInfoErrorKind};
use async_nats::jetstream::{self, consumer, stream};
use futures_lite::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long JetStream keeps a consumer nobody pulls from.
const ABANDONED_AFTER: Duration = Duration::from_secs(60);
/// How long a request about a consumer may take before it counts as failed.
const CONSUMER_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a consumer that delivers nothing is checked.
const WATCH: Duration = Duration::from_secs(2);

/// Sends every message of the stream `config` describes, from `start`, to
/// `out`, in order, until `out` is dropped. Its lag goes to `bus`.
///
/// The consumer has the stream's replicas, so it outlives one NATS server
/// of a cluster; what a server loss breaks is the pull in flight, so a pull
/// that fails or stalls is simply sent again. Only when messages were lost
/// on the way (JetStream counts them delivered) or the consumer is gone
/// does a new consumer start after the last message sent: creating one can
/// take long while a cluster is short of a server.
pub(super) async fn tail(
    js: jetstream::Context,
    config: stream::Config,
    mut start: consumer::DeliverPolicy,
    out: mpsc::Sender<jetstream::Message>,
    bus: Arc<BusState>,
) {
    let name = config.name.clone();
    let prefix = format!(
        "quotecast-{}-{}",
        std::process::id(),
        crate::clock::now_us()
    );
    // Requests about consumers answer fast or not at all (their server died).
    let mut js = js;
    js.set_timeout(CONSUMER_REQUEST_TIMEOUT);
    for attempt in 0.. {
        // A new name each time: the old consumer may live on a dead server,
        // where deleting or reusing it waits for that server.
        let name_now = format!("{prefix}-{name}-{attempt}");
        let (stream, consumer) = until_ready(&name, || {
            pull_consumer(&js, config.clone(), start, &name_now)
        })
        .await;
        tracing::info!("nats feed consuming stream {name}");
        // The consumer sequence of the last message received.
        let mut received = 0;
        loop {
            let mut messages = match consumer.messages().await {
                Ok(messages) => messages,
                Err(e) => {
                    tracing::warn!(error = %e, "nats consumer of {name}: pull failed");
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            };
            let mut watch = tokio::time::interval(WATCH);
            let mut moved = true;
            let next = loop {
                tokio::select! {
                    next = messages.next() => {
                        let message = match next {
                            Some(Ok(message)) => message,
                            Some(Err(e)) if e.kind() == MessagesErrorKind::ConsumerDeleted => {
                                break Next::NewConsumer("it was deleted");
                            }
                            Some(Err(e)) => {
                                tracing::warn!(error = %e, "nats consumer of {name}: pulling again");
                                break Next::Pull;
                            }
                            None => break Next::Pull,
                        };
                        let Ok(info) = message.info() else { continue };
                        if info.consumer_sequence != received + 1 {
                            break Next::NewConsumer("a message did not arrive");
                        }
                        received = info.consumer_sequence;
                        start = consumer::DeliverPolicy::ByStartSequence {
                            start_sequence: info.stream_sequence + 1,
                        };
                        moved = true;
                        if out.send(message).await.is_err() {
                            return;
                        }
                    }
                    _ = watch.tick() => {
                        let info = stream.consumer_info(&name_now).await;
                        if let Ok(info) = &info {
                            bus.set_pending(&name, info.num_pending);
                        }
                        if !moved {
                            if let Some(next) = after_quiet(&info, received) {
                                break next;
                            }
                        }
                        moved = false;
                    }
                }
            };
            match next {
                Next::Pull => tokio::time::sleep(RETRY).await,
                Next::NewConsumer(why) => {
                    tracing::warn!("nats consumer of {name}: {why}; starting a new one");
                    break;
                }
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// What a [`tail`] does when its pull ends.
#[derive(Debug)]
enum Next {
    /// Pull again from the same consumer.
    Pull,
    /// Start a new consumer after the last message received, for this reason.
    NewConsumer(&'static str),
}

/// What to do about a consumer that delivered nothing for a [`WATCH`]
/// period, from its info and the consumer sequence last `received`:
/// nothing (also when JetStream did not answer, as while a cluster elects
/// leaders); pull again when JetStream holds messages for it (the pull in
/// flight was lost); a new consumer when it is gone (its server restarted
/// and forgot it) or when JetStream sent messages past `received` that
/// never arrived (lost while the client reconnected).
fn after_quiet(info: &Result<consumer::Info, ConsumerInfoError>, received: u64) -> Option<Next> {
    let info = match info {
        Ok(info) => info,
        Err(e) if matches!(e.kind(), ConsumerInfoErrorKind::NotFound) => {
            return Some(Next::NewConsumer("it is gone"));
        }
        Err(_) => return None,
    };
    if info.delivered.consumer_sequence > received {
        Some(Next::NewConsumer("messages sent to it were lost"))
    } else if info.num_pending > 0 {
        Some(Next::Pull)
    } else {
        None
    }
}

/// A pull consumer named `name` of the stream `config` describes (created
/// if missing), delivering from `deliver_policy` without acknowledgements,
/// with the stream's replicas; one this node abandons is removed once
/// nobody pulls from it.
async fn pull_consumer(
    js: &jetstream::Context,
    config: stream::Config,
    deliver_policy: consumer::DeliverPolicy,
    name: &str,
) -> Result<(stream::Stream, consumer::PullConsumer), async_nats::Error> {
    let stream = js
        .get_or_create_stream(config)
        .await
        .map_err(|e| format!("looking up the stream: {e}"))?;
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            name: Some(name.into()),
            deliver_policy,
            ack_policy: consumer::AckPolicy::None,
            inactive_threshold: ABANDONED_AFTER,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("creating consumer {name}: {e}"))?;
    Ok((stream, consumer))
}
