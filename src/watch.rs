//! `quotecast watch`: a terminal client that connects, subscribes and prints
//! live prices — the newcomer's first look, and a protocol example.

use anyhow::{bail, Context};
use std::io::Write;
use std::time::{Duration, Instant};
use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

/// Arguments of `quotecast watch`.
#[derive(clap::Args, Debug)]
pub struct WatchArgs {
    /// WebSocket endpoint.
    #[arg(long, default_value = "ws://127.0.0.1:8080/v1/ws")]
    pub url: String,
    /// JWT (or set QUOTECAST_TOKEN).
    #[arg(long, env = "QUOTECAST_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Channel to subscribe to.
    #[arg(long, default_value = "prices")]
    pub channel: String,
    /// Stop after this many seconds (default: run until interrupted).
    #[arg(long)]
    pub seconds: Option<u64>,
    /// Symbols to subscribe to.
    #[arg(required = true)]
    pub symbols: Vec<String>,
}

/// Connects, subscribes and prints every server message in a readable form.
pub fn run(args: WatchArgs) -> anyhow::Result<()> {
    let mut request = args.url.as_str().into_client_request()?;
    let bearer = format!("Bearer {}", args.token);
    request.headers_mut().insert(
        "Authorization",
        bearer
            .parse()
            .context("token is not a valid header value")?,
    );
    let (mut ws, _) = match tungstenite::connect(request) {
        Ok(ok) => ok,
        Err(tungstenite::Error::Http(resp)) => {
            let body = resp
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            bail!("server refused the connection: {} {body}", resp.status());
        }
        Err(e) => return Err(e).context(format!("connecting to {}", args.url)),
    };
    let op = serde_json::json!({
        "op": "subscribe", "id": 1, "channel": args.channel, "symbols": args.symbols,
    });
    ws.send(Message::text(op.to_string()))?;
    let deadline = args
        .seconds
        .map(|s| Instant::now() + Duration::from_secs(s));
    let mut out = std::io::stdout().lock();
    while deadline.is_none_or(|d| Instant::now() < d) {
        let line = match ws.read()? {
            Message::Text(text) => describe(&text),
            Message::Close(frame) => {
                let _ = writeln!(out, "closed: {frame:?}");
                return Ok(());
            }
            _ => continue,
        };
        if writeln!(out, "{line}").is_err() {
            // The reader of our output went away (e.g. `| head`): stop quietly.
            return Ok(());
        }
    }
    Ok(())
}

/// One line per server message: prices as a quote board row, the rest as JSON.
pub fn describe(text: &str) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return text.to_owned();
    };
    if v["type"] != "price" {
        return text.to_owned();
    }
    let age_ms = v["ts"]
        .as_u64()
        .map(|ts| crate::feed::now_us().saturating_sub(ts) as f64 / 1000.0)
        .unwrap_or(f64::NAN);
    format!(
        "{:<8} bid {:>12} {:<4} ask {:>12} {:<4} spread {:>7.2}bp  seq {:>8}  age {:>6.2}ms",
        v["symbol"].as_str().unwrap_or("?"),
        v["bid"],
        v["bid_src"].as_str().unwrap_or(""),
        v["ask"],
        v["ask_src"].as_str().unwrap_or(""),
        v["spread_bps"].as_f64().unwrap_or(f64::NAN),
        v["seq"],
        age_ms
    )
}
