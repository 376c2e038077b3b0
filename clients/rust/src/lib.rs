//! # quotecast-client
//!
//! A client for quotecast's WebSocket API that a Rust trading system can
//! depend on: typed server messages, a token provider asked on every
//! connect, reconnect with exponential backoff and full jitter, every
//! subscription sent again after a reconnect, and reliable channels
//! (`alerts`, `sessions`, `notifications`) resumed with `since` from the last
//! `seq` received, duplicates dropped and losses reported as [`Event::Gap`].
//!
//! It is blocking (one thread per client, no async runtime imposed) and
//! depends only on tungstenite, serde and rand.
//!
//! ```no_run
//! use quotecast_client::{Client, Event, Options, ServerMessage, StaticToken, Subscription};
//! use std::time::{Duration, Instant};
//!
//! let mut client = Client::new(
//!     Options::new("ws://127.0.0.1:8080/v1/ws"),
//!     StaticToken("<jwt>".into()),
//! );
//! client.subscribe(Subscription::Prices(vec!["EURUSD".into()])).unwrap();
//! let deadline = Instant::now() + Duration::from_secs(10);
//! while let Some(event) = client.next(deadline) {
//!     if let Event::Message { message: ServerMessage::Price(p), .. } = event {
//!         println!("{} {} / {}", p.symbol, p.bid, p.ask);
//!     }
//! }
//! ```
#![deny(missing_docs)]

mod backoff;
mod client;
mod message;
mod subscription;

pub use backoff::Backoff;
pub use client::{Client, Event, Options, StaticToken, TokenProvider};
pub use message::{ParseError, Price, Reliable, ServerMessage, Welcome};
pub use subscription::Subscription;
