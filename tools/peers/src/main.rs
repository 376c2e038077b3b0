//! `tokio-broadcast`: the conventional tokio + tokio-tungstenite price
//! gateway quotecast is compared with (issue 3). Written the usual way on
//! purpose: a broadcast channel per symbol, a task per subscription, every
//! message serialized and sent on its own. See README.md.

use anyhow::Context;
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
#[command(about = "Conventional tokio broadcast price gateway (benchmark peer)")]
struct Args {
    /// Address to listen on (loopback).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Quote feed to connect to: tcp:HOST:PORT, JSON lines.
    #[arg(long)]
    feed: String,
    /// Capacity of each symbol's broadcast channel.
    #[arg(long, default_value_t = 1024)]
    channel_capacity: usize,
    /// Messages queued per connection before its subscriptions wait.
    #[arg(long, default_value_t = 1024)]
    conn_queue: usize,
}

/// A venue quote of the feed (unknown fields ignored).
#[derive(Deserialize)]
struct Quote {
    symbol: String,
    venue: String,
    bid: f64,
    bid_size: f64,
    ask: f64,
    ask_size: f64,
}

/// The price message every subscriber receives.
#[derive(Serialize, Clone)]
struct Price {
    #[serde(rename = "type")]
    kind: &'static str,
    symbol: String,
    seq: u64,
    bid: f64,
    bid_size: f64,
    bid_venue: String,
    ask: f64,
    ask_size: f64,
    ask_venue: String,
    ts: u64,
}

#[derive(Deserialize)]
struct Op {
    op: String,
    id: Option<u64>,
    #[serde(default)]
    symbols: Vec<String>,
}

/// Symbol → its broadcast sender, created on first use.
type Topics = Arc<Mutex<HashMap<String, broadcast::Sender<Arc<Price>>>>>;

fn topic(topics: &Topics, symbol: &str, capacity: usize) -> broadcast::Sender<Arc<Price>> {
    let mut map = topics.lock().expect("topics lock");
    map.entry(symbol.to_string())
        .or_insert_with(|| broadcast::channel(capacity).0)
        .clone()
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.listen.ip().is_loopback() {
        anyhow::bail!("--listen must be a loopback address");
    }
    let feed_addr = args
        .feed
        .strip_prefix("tcp:")
        .context("--feed must be tcp:HOST:PORT")?
        .to_string();
    let feed = TcpStream::connect(&feed_addr)
        .await
        .with_context(|| format!("connecting to the feed {feed_addr}"))?;
    let topics: Topics = Arc::default();
    let listener = TcpListener::bind(args.listen).await?;
    println!("tokio-broadcast listening on {}", listener.local_addr()?);
    tokio::spawn(read_feed(feed, topics.clone(), args.channel_capacity));
    let capacity = args.channel_capacity;
    let queue = args.conn_queue;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (sock, _) = accepted?;
                tokio::spawn(serve(sock, topics.clone(), capacity, queue));
            }
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// Reads JSON-lines quotes and broadcasts each as a price.
async fn read_feed(sock: TcpStream, topics: Topics, capacity: usize) {
    let _ = sock.set_nodelay(true);
    let mut lines = BufReader::new(sock).lines();
    let mut seqs: HashMap<String, u64> = HashMap::new();
    let mut senders: HashMap<String, broadcast::Sender<Arc<Price>>> = HashMap::new();
    while let Ok(Some(line)) = lines.next_line().await {
        let Ok(q) = serde_json::from_str::<Quote>(&line) else {
            eprintln!("bad feed line: {line}");
            continue;
        };
        let seq = seqs.entry(q.symbol.clone()).or_default();
        *seq += 1;
        let price = Arc::new(Price {
            kind: "price",
            symbol: q.symbol.clone(),
            seq: *seq,
            bid: q.bid,
            bid_size: q.bid_size,
            bid_venue: q.venue.clone(),
            ask: q.ask,
            ask_size: q.ask_size,
            ask_venue: q.venue,
            ts: now_us(),
        });
        let tx = senders
            .entry(q.symbol.clone())
            .or_insert_with(|| topic(&topics, &q.symbol, capacity));
        // No subscriber is not an error for a broadcast.
        let _ = tx.send(price);
    }
    eprintln!("feed ended");
}

/// One client: upgrade, then ops in, prices out.
async fn serve(sock: TcpStream, topics: Topics, capacity: usize, queue: usize) {
    let _ = sock.set_nodelay(true);
    let Ok(ws) = tokio_tungstenite::accept_async(sock).await else {
        return;
    };
    let (mut sink, mut stream) = ws.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(queue);
    let writer = tokio::spawn(async move {
        while let Some(msg) = out_rx.recv().await {
            if sink.send(msg).await.is_err() {
                break;
            }
        }
    });
    let mut forwarders = Vec::new();
    while let Some(Ok(msg)) = stream.next().await {
        let text = match msg {
            Message::Text(t) => t,
            Message::Close(_) => break,
            _ => continue,
        };
        let reply = match serde_json::from_str::<Op>(text.as_str()) {
            Ok(op) if op.op == "subscribe" => {
                for symbol in op.symbols {
                    let rx = topic(&topics, &symbol, capacity).subscribe();
                    forwarders.push(tokio::spawn(forward(rx, out_tx.clone())));
                }
                serde_json::json!({"type": "ack", "id": op.id})
            }
            Ok(op) => serde_json::json!({
                "type": "error", "id": op.id, "code": "unknown_op", "message": op.op
            }),
            Err(e) => serde_json::json!({
                "type": "error", "code": "bad_request", "message": e.to_string()
            }),
        };
        if out_tx.send(Message::text(reply.to_string())).await.is_err() {
            break;
        }
    }
    for f in forwarders {
        f.abort();
    }
    drop(out_tx);
    let _ = writer.await;
}

/// One subscription: every price of the symbol, serialized for this client.
async fn forward(mut rx: broadcast::Receiver<Arc<Price>>, out: mpsc::Sender<Message>) {
    loop {
        match rx.recv().await {
            Ok(price) => {
                let Ok(text) = serde_json::to_string(&*price) else {
                    continue;
                };
                if out.send(Message::text(text)).await.is_err() {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
