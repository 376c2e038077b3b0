//! `quotecast-testkit`: the machinery the integration tests, the bench and the
//! soak share, in one copy. Everything blocks on std sockets and every wait
//! has a deadline; nothing sleeps a fixed time to wait for readiness.
//!
//! # Layout
//!
//! ```text
//! server.rs  start a server binary, wait for its ready line (or port), stop it
//! token.rs   HS256 tokens like `quotecast token` mints
//! http.rs    plain HTTP/1.1 requests and responses (httparse), /v1/channels
//! ws.rs      the client side of RFC 6455: upgrade request, frame codec
//! tls.rs     a throwaway CA and server certificate; TLS client streams
//! client.rs  blocking WebSocket clients: `Ws` (tungstenite, JSON) and
//!            `RawWs` (raw frames, answers nothing by itself)
//! bin/quotecast-with-server.rs
//!            a command run against a started server, for shell scripts
//! ```
//!
//! I/O and server failures are returned, not panicked: the tests turn them
//! into panics with their own messages, the tools into errors.

#![deny(missing_docs)]

pub mod client;
pub mod http;
pub mod server;
pub mod tls;
pub mod token;
pub mod ws;
