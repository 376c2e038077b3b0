//! `POST /v1/publish`: systems that raise alerts, session changes,
//! notifications or metric events inject them here. The whole body is
//! validated before anything is published. On one node it goes to the
//! aggregator as one batch, published entirely or not at all; on a NATS
//! node it is stored in JetStream in order, for every node, and `202` means
//! JetStream acknowledged all of it.

use super::request::{read_before, Request};
use super::response::{json_error, response, unauthorized};
use super::{authenticate, Gateway};
use crate::auth::Role;
use crate::clock;
use crate::feed::nats::{BusState, Outgoing, PublishError};
use crate::model::error::ErrorCode;
use crate::model::event::{self, Event, EventRules};
use crate::model::reliable::Sequenced;
use crate::net::Stream;
use std::time::{Duration, Instant};

/// Largest request body accepted.
pub const MAX_PUBLISH_BYTES: usize = 1 << 20;
/// How long a publish waits for every shard to have the batch in its
/// history, or for JetStream to have stored it.
const VISIBLE_WITHIN: Duration = Duration::from_secs(10);
/// Roles that may publish.
pub const PUBLISH_ROLES: [Role; 2] = [Role::ADMIN, Role::SERVICE];

/// Serves one publish request whose head is `req` (and whose body starts
/// with `leftover`); returns the HTTP response.
pub(super) async fn serve(
    gateway: &Gateway,
    stream: &mut Stream,
    req: &Request,
    leftover: Vec<u8>,
) -> Vec<u8> {
    let claims = match authenticate(gateway, req) {
        Ok(c) => c,
        Err(e) => return unauthorized(&e),
    };
    if !claims.has_any_role(&PUBLISH_ROLES) {
        return json_error(403, "forbidden", "needs the ADMIN or SERVICE role");
    }
    let Some(length) = req
        .header("content-length")
        .and_then(|v| v.trim().parse::<usize>().ok())
    else {
        return json_error(411, "length_required", "Content-Length is required");
    };
    if length > MAX_PUBLISH_BYTES {
        return json_error(413, "too_large", "body over 1 MiB");
    }
    let timeout = gateway.node.config.server.handshake_timeout();
    let Some(body) = read_body(stream, leftover, length, timeout).await else {
        return json_error(408, "timeout", "request body not received in time");
    };
    let node = &gateway.node;
    let rules = EventRules {
        now_us: clock::now_us(),
        max_future_us: node.config.channels.max_event_future_us(),
        may_broadcast: claims.has_role(&Role::ADMIN),
    };
    let parsed = event::batch_items(&body).and_then(|items| {
        let events = event::parse_items(&items, &node.catalogue, rules)?;
        Ok((items, events))
    });
    match parsed {
        Err((index, e)) => {
            let body = serde_json::json!({
                "error": e.code, "index": index, "reason": e.reason,
            });
            let status = if e.code == ErrorCode::Forbidden {
                403
            } else {
                400
            };
            response(status, "application/json", &body.to_string())
        }
        Ok((items, events)) => match node.aggregator.bus.get() {
            Some(bus) => store_on_bus(bus, &items, events, gateway).await,
            None => publish(gateway, events).await,
        },
    }
}

/// Stores a validated batch in JetStream for every node: `202` with the
/// `seq`s once JetStream acknowledged all of it; `503` while NATS is
/// unreachable or when storing failed part-way (the answer says how many
/// events were stored, in order, and their `seq`s).
async fn store_on_bus(
    bus: &BusState,
    items: &[serde_json::Value],
    events: Vec<Event>,
    gateway: &Gateway,
) -> Vec<u8> {
    let accepted = events.len();
    let batch = events
        .into_iter()
        .zip(items)
        .map(|(event, item)| Outgoing {
            event,
            json: item.to_string().into(),
        })
        .collect();
    let stored = glommio::timer::timeout(VISIBLE_WITHIN, async { Ok(bus.publish(batch).await) });
    let outcome = match stored.await {
        Ok(outcome) => outcome,
        Err(_) => {
            let body = serde_json::json!({
                "error": "unavailable", "reason": "bus_timeout", "stored": null,
                "detail": "JetStream did not acknowledge in time; the events are not known to be stored",
            });
            return response(503, "application/json", &body.to_string());
        }
    };
    match outcome {
        Ok(sequenced) => accepted_body(gateway, accepted, &sequenced),
        Err(PublishError::Disconnected) => {
            json_error(503, "unavailable", "bus_disconnected: nothing was stored")
        }
        Err(PublishError::Failed(e)) => {
            let body = serde_json::json!({
                "error": "unavailable", "reason": "bus_store_failed", "detail": e.reason,
                "stored": e.stored, "streams": stream_ranges(gateway, &e.sequenced),
            });
            response(503, "application/json", &body.to_string())
        }
    }
}

/// Publishes a validated batch and answers once every shard has it in its
/// history: `202` with the `seq`s given, `503` when the aggregator has
/// stopped, `504` when the shards did not confirm in time (the batch is
/// sequenced and will be delivered; retrying would publish it twice).
async fn publish(gateway: &Gateway, events: Vec<Event>) -> Vec<u8> {
    let accepted = events.len();
    let receipt = match gateway.publisher.publish(events) {
        Ok(receipt) => receipt,
        Err(stopped) => return json_error(503, "unavailable", &stopped.to_string()),
    };
    let visible = glommio::timer::timeout(VISIBLE_WITHIN, async {
        receipt.visible().await;
        Ok(())
    });
    if visible.await.is_err() {
        let body = serde_json::json!({
            "error": "timeout", "accepted": accepted,
            "reason": "accepted but not yet in every shard's history; retrying would publish it twice",
        });
        return response(504, "application/json", &body.to_string());
    }
    // Every shard applied the barrier the aggregator sent after recording
    // the last seq, so the ranges are complete.
    accepted_body(gateway, accepted, &receipt.sequenced())
}

/// The `202` answer: how many events were accepted and the `seq` range
/// each reliable stream got (and `seq` alone when there was one stream).
fn accepted_body(gateway: &Gateway, accepted: usize, sequenced: &[Sequenced]) -> Vec<u8> {
    let streams = stream_ranges(gateway, sequenced);
    let mut body = serde_json::json!({ "accepted": accepted });
    if let [only] = streams.as_slice() {
        body["seq"] = only["seq"].clone();
    }
    body["streams"] = streams.into();
    response(202, "application/json", &body.to_string())
}

/// Each stream's `seq` range as `{channel, tenant, [sub], seq: [first, last]}`.
fn stream_ranges(gateway: &Gateway, sequenced: &[Sequenced]) -> Vec<serde_json::Value> {
    sequenced
        .iter()
        .map(|s| {
            let mut stream = serde_json::json!({
                "channel": gateway.node.catalogue.get(s.key.channel).name,
                "tenant": &*s.key.tenant,
                "seq": [s.first, s.last],
            });
            if let Some(sub) = &s.key.sub {
                stream["sub"] = (**sub).into();
            }
            stream
        })
        .collect()
}

/// Reads `length` body bytes within `timeout`; `None` on timeout or disconnect.
async fn read_body(
    stream: &mut Stream,
    mut body: Vec<u8>,
    length: usize,
    timeout: Duration,
) -> Option<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let mut chunk = vec![0u8; 16 * 1024];
    while body.len() < length {
        match read_before(stream, &mut chunk, deadline).await {
            Some(Ok(n)) if n > 0 => body.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    }
    // Bytes past the announced length are not ours: the connection closes after the reply.
    body.truncate(length);
    Some(body)
}
