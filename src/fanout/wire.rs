//! The wire format of one connection: WebSocket frames, or Server-Sent
//! Events with the connection's resume cursor. Every value has one shared
//! encoding per format; only acks, errors and the like (one connection's
//! own messages) are encoded for the connection.

use crate::frame::{self, CloseCode};
use crate::ingest::sequencer::ReliableMsg;
use crate::model::channel::ChannelId;
use crate::model::event::BROADCAST_TENANT;
use crate::sse::{self, Cursor};
use bytes::Bytes;

/// How a connection's bytes are framed.
#[derive(Debug)]
pub enum Wire {
    /// RFC 6455 frames.
    WebSocket,
    /// `text/event-stream`, with where it stands in its reliable streams.
    Sse(Cursor),
}

/// A reliable stream moved to `seq`: the SSE cursor follows when its
/// event is written.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// The reliable channel.
    pub channel: ChannelId,
    /// Its last `seq` once the event is sent.
    pub seq: u64,
}

impl Wire {
    /// Whether this is an SSE connection.
    pub fn is_sse(&self) -> bool {
        matches!(self, Wire::Sse(_))
    }

    /// A server message (its JSON) for this connection alone.
    pub fn message(&self, json: &[u8]) -> Bytes {
        match self {
            Wire::WebSocket => frame::text(json),
            Wire::Sse(_) => sse::message(json),
        }
    }

    /// The periodic keep-alive: a ping frame, or an SSE comment line.
    pub fn heartbeat(&self) -> Bytes {
        match self {
            Wire::WebSocket => frame::ping(b""),
            Wire::Sse(_) => Bytes::from_static(sse::HEARTBEAT),
        }
    }

    /// The last thing sent: a close frame, or the SSE `close` event.
    pub fn close(&self, code: CloseCode, reason: &str) -> Bytes {
        match self {
            Wire::WebSocket => frame::close_frame_with_reason(code, reason),
            Wire::Sse(_) => sse::close(code.code(), reason),
        }
    }

    /// A reliable message's shared encoding, and for SSE the cursor step
    /// whose `id:` completes it.
    pub fn reliable(&self, msg: &ReliableMsg) -> (Bytes, Option<Step>) {
        match self {
            Wire::WebSocket => (msg.frame.clone(), None),
            Wire::Sse(_) => {
                // Broadcast streams have seqs of their own: no cursor step.
                let step = (&*msg.key.tenant != BROADCAST_TENANT).then_some(Step {
                    channel: msg.key.channel,
                    seq: msg.seq,
                });
                (msg.sse_fields().clone(), step)
            }
        }
    }

    /// A reliable channel's `snapshot` (`json`) that brings `channel` up to
    /// `seq`, for this connection.
    pub fn reliable_snapshot(
        &self,
        json: &[u8],
        channel: Option<ChannelId>,
        seq: u64,
    ) -> (Bytes, Option<Step>) {
        match self {
            Wire::WebSocket => (frame::text(json), None),
            Wire::Sse(_) => (
                sse::event_fields("snapshot", json),
                channel.map(|channel| Step { channel, seq }),
            ),
        }
    }

    /// Starts an SSE cursor on `channel` at `seq`: the step that announces it.
    pub fn follow(&mut self, channel: ChannelId, name: &str, seq: u64) -> Option<Step> {
        let Wire::Sse(cursor) = self else {
            return None;
        };
        cursor.follow(channel, name, seq);
        Some(Step { channel, seq })
    }

    /// Writes the `id:` line that ends an SSE reliable event after `step`.
    pub fn complete(&mut self, step: Option<Step>, out: &mut Vec<u8>) {
        if let (Wire::Sse(cursor), Some(step)) = (self, step) {
            cursor.advance(step.channel, step.seq);
            cursor.write_id(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ChannelsConfig;
    use crate::ingest::sequencer::{tests::alert, Sequencer};
    use crate::model::channel::Catalogue;

    #[test]
    fn sse_shares_each_message_and_adds_the_connection_cursor() {
        let cat = Catalogue::new(&ChannelsConfig::default()).unwrap();
        let alerts = cat.find("alerts").unwrap().0;
        let msg = Sequencer::default()
            .stamp(alert(&cat, "t1", 1), &cat, 9)
            .unwrap();

        let (frame, step) = Wire::WebSocket.reliable(&msg);
        assert_eq!((frame, step.is_none()), (msg.frame.clone(), true));

        let mut wire = Wire::Sse(Cursor::default());
        assert!(wire.follow(alerts, "alerts", 0).is_some());
        let (fields, step) = wire.reliable(&msg);
        let (again, _) = Wire::Sse(Cursor::default()).reliable(&msg);
        assert_eq!(fields.as_ptr(), again.as_ptr(), "encoded once, shared");
        let mut out = fields.to_vec();
        wire.complete(step, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("event: alert\ndata: {"), "{text}");
        assert!(text.ends_with("}\nid: 1\n\n"), "{text}");
        assert!(Wire::WebSocket.follow(alerts, "alerts", 0).is_none());
    }
}
