//! The test-only `/v1/echo` route (for the Autobahn suite): absent by default,
//! and with `--echo-route` an echo on the production frame reader and limits.

use crate::util::*;
use std::net::TcpStream;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Bytes, Message};

#[test]
fn echo_route_is_off_by_default() {
    let server = start_server(&[], None);
    let resp = http_get(server.addr, "/v1/echo", &[]);
    assert_eq!(resp.status, 404, "{resp:?}");
}

#[test]
fn echo_route_echoes_text_and_binary_and_keeps_the_size_cap() {
    let server = start_server(&["--echo-route"], None);
    let stream = TcpStream::connect_timeout(&server.addr, WAIT).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let url = format!("ws://{}/v1/echo", server.addr);
    let (mut ws, _) = tungstenite::client::client(url, stream).expect("echo upgrade");

    ws.send(Message::text("héllo")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("héllo"));
    let bytes = Bytes::from_static(&[0, 1, 2, 255]);
    ws.send(Message::Binary(bytes.clone())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Binary(bytes));

    // The production cap (server.max_message_bytes = 64 KiB) applies here too.
    ws.send(Message::Binary(vec![7u8; 64 * 1024 + 1].into()))
        .unwrap();
    match ws.read() {
        Ok(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Size),
        other => panic!("expected close 1009, got {other:?}"),
    }
}
