//! A test-only echo route, `/v1/echo`, served only with `server.echo_route`
//! (`serve --echo-route`). It runs on the same listener, handshake,
//! [`FrameReader`], limits and frame encoders as `/v1/ws`, so the Autobahn
//! conformance suite (`tools/scripts/autobahn`) exercises the WebSocket layer that
//! production connections use. Off by default; never enable it in production.

use super::request::Request;
use super::upgrade::{deflate_offer, deflate_use, switching_protocols};
use crate::config::ServerConfig;
use crate::frame::deflate::DeflateUse;
use crate::frame::{self, CloseCode, FrameReader, Incoming};
use crate::net::Stream;
use futures_lite::AsyncReadExt;
use std::net::Shutdown;
use std::time::Duration;

/// How long the server waits for the client to close its side after our close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Answers the upgrade (already checked; `accept` is its key) and echoes
/// until the close handshake.
pub(super) async fn serve(
    mut stream: Stream,
    accept: &str,
    req: &Request,
    leftover: Vec<u8>,
    cfg: &ServerConfig,
) {
    let offer = deflate_offer(req, cfg);
    if stream
        .send(&switching_protocols(accept, offer.as_ref()))
        .await
        .is_ok()
    {
        let deflate = deflate_use(offer.as_ref(), cfg);
        run(stream, leftover, cfg, deflate).await;
    }
}

/// Echoes every text and binary message back as one frame (compressed when
/// the connection negotiated `deflate`), answers pings, and ends with a close
/// handshake: the client's close code echoed, or ours (1002, 1007, 1009)
/// when its frames break RFC 6455 or the size or fragment caps.
async fn run(
    mut stream: Stream,
    leftover: Vec<u8>,
    cfg: &ServerConfig,
    deflate: Option<DeflateUse>,
) {
    let mut reader = FrameReader::new(cfg.max_message_bytes)
        .with_max_fragments(cfg.max_fragments)
        .with_deflate(deflate.is_some());
    reader.extend(&leftover);
    let mut chunk = vec![0u8; 16 * 1024];
    let close_frame = loop {
        let reply = match reader.next_message() {
            Ok(Some(Incoming::Text(text))) => match &deflate {
                Some(d) => d.text(&text),
                None => frame::text(&text),
            },
            Ok(Some(Incoming::Binary(bytes))) => match &deflate {
                Some(d) => d.binary(&bytes),
                None => frame::binary(&bytes),
            },
            Ok(Some(Incoming::Ping(payload))) => frame::pong(&payload),
            Ok(Some(Incoming::Pong)) => continue,
            Ok(Some(Incoming::Close(code))) => {
                let code = code.and_then(CloseCode::new).unwrap_or(CloseCode::NORMAL);
                break frame::close_frame_with_reason(code, "");
            }
            Err(e) => break frame::close_frame_with_reason(e.close_code(), &e.to_string()),
            Ok(None) => match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    reader.extend(&chunk[..n]);
                    continue;
                }
            },
        };
        if stream.send(&reply).await.is_err() {
            return;
        }
    };
    if stream.send(&close_frame).await.is_ok() {
        // Half-close, then let the client read our close and hang up first.
        let _ = stream.tcp().shutdown(Shutdown::Write).await;
        let drain = async {
            while matches!(stream.read(&mut chunk).await, Ok(n) if n > 0) {}
            Ok(())
        };
        let _ = glommio::timer::timeout(CLOSE_GRACE, drain).await;
    }
}
