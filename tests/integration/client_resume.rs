//! `quotecast-client` against the real server: a token expiry closes the
//! connection (4001); the client asks its token provider again, reconnects,
//! resubscribes and resumes `alerts` from the last `seq` it saw, so the
//! alerts published meanwhile arrive exactly once and no gap is reported.

use crate::events_util::{alert, publish};
use crate::util::*;
use quotecast_client::{Client, Event, Options, ServerMessage, Subscription};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The next event; panics at the deadline.
fn next(client: &mut Client) -> Event {
    client
        .next(deadline())
        .expect("no event within the deadline")
}

#[test]
fn client_resumes_alerts_after_a_token_expiry_close() {
    let s = start_server(&[], None);
    let tokens_given = Arc::new(AtomicUsize::new(0));
    let given = tokens_given.clone();
    // The first token lives 3 s; every later one ten minutes.
    let provider = move || {
        let ttl = if given.fetch_add(1, Ordering::Relaxed) == 0 {
            3
        } else {
            600
        };
        Ok(sign(&claims("u1", "t1", &["TRADER"], ttl)))
    };
    let mut client = Client::new(Options::new(format!("ws://{}/v1/ws", s.addr)), provider);
    client
        .subscribe(Subscription::Reliable {
            channel: "alerts".into(),
            since: None,
        })
        .unwrap();
    assert!(matches!(
        next(&mut client),
        Event::Connected {
            reconnect: false,
            ..
        }
    ));

    let mut seqs = Vec::new();
    publish(&s, &alert("t1", "one"));
    // Read until the first connection ends: the expired token's 4001.
    loop {
        match next(&mut client) {
            Event::Message {
                message: ServerMessage::Reliable(r),
                ..
            } => seqs.push(r.seq),
            Event::Disconnected { code, .. } => {
                assert_eq!(code, Some(4001));
                break;
            }
            Event::Gap { .. } => panic!("gap on a fresh subscription"),
            _ => {}
        }
    }
    assert_eq!(seqs, [1]);
    assert_eq!(client.last_seq("alerts"), Some(1));

    // Published while the client is away (it reconnects only when driven).
    publish(
        &s,
        &serde_json::json!([alert("t1", "two"), alert("t1", "three")]),
    );
    loop {
        match next(&mut client) {
            Event::Connected { reconnect, .. } => assert!(reconnect),
            Event::Message {
                message: ServerMessage::Reliable(r),
                ..
            } => {
                seqs.push(r.seq);
                if r.seq == 3 {
                    break;
                }
            }
            Event::Message {
                message: ServerMessage::Ack { body, .. },
                ..
            } => {
                assert_eq!(body["recovered"], true, "{body}");
                assert_eq!(body["since"], 1, "{body}");
            }
            Event::Gap { .. } => panic!("gap although the history covers the resume"),
            Event::Disconnected { reason, .. } => panic!("lost the second connection: {reason}"),
            Event::Message { .. } => {}
        }
    }
    assert_eq!(seqs, [1, 2, 3]);
    assert!(
        tokens_given.load(Ordering::Relaxed) >= 2,
        "the provider was asked again"
    );
}
