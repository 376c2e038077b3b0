//! `quotecast watch`: a terminal client that connects, subscribes and prints
//! one readable line per message — live prices, windowed analytics, alerts,
//! session changes, notifications. The newcomer's first look, and a
//! protocol example.

use crate::model::channel::{METRICS_PREFIX, PRICES};
use anyhow::bail;
use quotecast_client::{Client, Event, Options, StaticToken, Subscription};
use serde_json::{json, Value};
use std::io::Write;
use std::time::{Duration, Instant};

/// Arguments of `quotecast watch`.
#[derive(clap::Args, Debug)]
pub struct WatchArgs {
    /// WebSocket endpoint (`wss://` for TLS).
    #[arg(long, default_value = "ws://127.0.0.1:8080/v1/ws")]
    pub url: String,
    /// For `wss://`: a PEM file of CA certificates to trust besides the
    /// system's (a private CA, or a self-signed server certificate).
    #[arg(long)]
    pub ca_file: Option<std::path::PathBuf>,
    /// JWT (or set QUOTECAST_TOKEN).
    #[arg(long, env = "QUOTECAST_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Channel to subscribe to: prices, metrics.trading, metrics.positions,
    /// metrics.risk, metrics.pnl, alerts, sessions, notifications.
    #[arg(long, default_value = PRICES)]
    pub channel: String,
    /// Stop after this many seconds (default: run until interrupted).
    #[arg(long)]
    pub seconds: Option<u64>,
    /// metrics.*: metrics to subscribe to, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    pub metrics: Option<Vec<String>>,
    /// metrics.*: window size in milliseconds (default: the server's).
    #[arg(long)]
    pub window_ms: Option<u64>,
    /// metrics.*: sum, avg, min, max, last, count or delta (default: last).
    #[arg(long)]
    pub agg: Option<String>,
    /// metrics.*: only events with this dimension value, e.g. book=FX1 (repeatable).
    #[arg(long = "filter", value_parser = parse_filter)]
    pub filters: Vec<(String, String)>,
    /// alerts, sessions, notifications: replay the messages after this seq first.
    #[arg(long)]
    pub since: Option<u64>,
    /// prices: symbols to subscribe to.
    pub symbols: Vec<String>,
}

impl WatchArgs {
    /// Watching `symbols` on `prices` at `url`, until interrupted.
    pub fn prices(url: String, token: String, symbols: Vec<String>) -> Self {
        WatchArgs {
            url,
            ca_file: None,
            token,
            channel: PRICES.into(),
            seconds: None,
            metrics: None,
            window_ms: None,
            agg: None,
            filters: Vec::new(),
            since: None,
            symbols,
        }
    }

    /// The `subscribe` op for the channel, refusing options that do not
    /// apply to its kind.
    pub fn subscribe_op(&self) -> anyhow::Result<Value> {
        let metric_opts = self.metrics.is_some()
            || self.window_ms.is_some()
            || self.agg.is_some()
            || !self.filters.is_empty();
        let channel = self.channel.as_str();
        let is_metrics = channel.starts_with(METRICS_PREFIX);
        if channel == PRICES && self.symbols.is_empty() {
            bail!("--channel prices needs symbols, e.g. `watch EURUSD GBPUSD`");
        }
        if channel != PRICES && !self.symbols.is_empty() {
            bail!("symbols are only for --channel prices");
        }
        if metric_opts && !is_metrics {
            bail!("--metrics, --window-ms, --agg and --filter are only for metrics.* channels");
        }
        if self.since.is_some() && (channel == PRICES || is_metrics) {
            bail!("--since is only for alerts, sessions and notifications");
        }
        let mut op = json!({"op": "subscribe", "id": 1, "channel": channel});
        if channel == PRICES {
            op["symbols"] = json!(self.symbols);
        }
        if let Some(metrics) = &self.metrics {
            op["metrics"] = json!(metrics);
        }
        if !self.filters.is_empty() {
            op["filters"] = self.filters.iter().cloned().collect();
        }
        if let Some(w) = self.window_ms {
            op["window_ms"] = w.into();
        }
        if let Some(agg) = &self.agg {
            op["agg"] = agg.as_str().into();
        }
        if let Some(since) = self.since {
            op["since"] = since.into();
        }
        Ok(op)
    }
}

/// Reads `name=value`.
fn parse_filter(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not dimension=value (e.g. book=FX1)")),
    }
}

/// Connects, subscribes and prints every server message in a readable form;
/// reconnects (with backoff, resubscribing, resuming reliable channels)
/// through `quotecast-client` until `--seconds` or interrupted.
pub fn run(args: WatchArgs) -> anyhow::Result<()> {
    let subscription = subscription(args.subscribe_op()?);
    let options = Options {
        ca_file: args.ca_file.clone(),
        ..Options::new(&args.url)
    };
    let mut client = Client::new(options, StaticToken(args.token.clone()));
    client.subscribe(subscription).map_err(anyhow::Error::msg)?;
    // Without --seconds: a day at a time, until interrupted.
    let until = |secs: Option<u64>| Instant::now() + Duration::from_secs(secs.unwrap_or(86_400));
    let mut deadline = until(args.seconds);
    let mut out = std::io::stdout().lock();
    loop {
        let Some(event) = client.next(deadline) else {
            if args.seconds.is_some() {
                return Ok(());
            }
            deadline = until(None);
            continue;
        };
        if writeln!(out, "{}", describe_event(&event)).is_err() {
            // The reader of our output went away (e.g. `| head`): stop quietly.
            return Ok(());
        }
    }
}

/// The client-side subscription of a checked `subscribe` op.
fn subscription(op: Value) -> Subscription {
    let channel = op["channel"].as_str().unwrap_or(PRICES).to_owned();
    if channel == PRICES {
        let symbols = op["symbols"].as_array().into_iter().flatten();
        Subscription::Prices(
            symbols
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect(),
        )
    } else if channel.starts_with(METRICS_PREFIX) {
        let mut options = op.as_object().cloned().unwrap_or_default();
        for key in ["op", "id", "channel"] {
            options.remove(key);
        }
        Subscription::Metrics { channel, options }
    } else {
        Subscription::Reliable {
            channel,
            since: op["since"].as_u64(),
        }
    }
}

/// One line for a client event: the message's readable form, or what
/// happened to the connection.
fn describe_event(event: &Event) -> String {
    match event {
        Event::Message { text, .. } => describe(text),
        Event::Connected { welcome, reconnect } => format!(
            "{} (conn {}, shard {})",
            if *reconnect {
                "reconnected"
            } else {
                "connected"
            },
            welcome.conn,
            welcome.shard
        ),
        Event::Disconnected {
            code,
            reason,
            retry_in,
        } => format!(
            "disconnected (close {}): {reason}; retrying in {} ms",
            code.map_or("none".to_owned(), |c| c.to_string()),
            retry_in.as_millis()
        ),
        Event::Gap {
            channel,
            after,
            next,
        } => match next {
            Some(next) => format!("GAP on {channel}: messages {}..{next} lost", after + 1),
            None => {
                format!("GAP on {channel}: history no longer covers seq {after}; snapshot follows")
            }
        },
    }
}

/// One line per server message (a snapshot: a line for it, then one per
/// item): prices as a quote board row, analytics, alerts, sessions and
/// notifications as readable lines, anything else as its JSON.
pub fn describe(text: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return text.to_owned();
    };
    describe_value(&v).unwrap_or_else(|| text.to_owned())
}

fn describe_value(v: &Value) -> Option<String> {
    let s = |name: &str| field(v, name);
    Some(match v["type"].as_str()? {
        "price" => describe_price(v),
        "metrics" => describe_metrics(v)?,
        "alert" => format!(
            "ALERT   #{:<5} {:<8} {:<15} {}  (current {}, threshold {})",
            v["seq"],
            s("level"),
            s("kind"),
            s("message"),
            v["current"],
            v["threshold"]
        ),
        "session" => format!(
            "SESSION #{:<5} {:<14} {:<18} pnl {}  utilization {}%",
            v["seq"],
            s("session"),
            s("status"),
            v["pnl"],
            v["utilization"]
        ),
        "notification" => format!("NOTE    #{:<5} {}: {}", v["seq"], s("title"), s("body")),
        "welcome" => format!(
            "connected: conn {} on shard {}, heartbeat {} ms, at most {} flushes/s",
            s("conn"),
            v["shard"],
            v["heartbeat_ms"],
            v["max_rate_hz"]
        ),
        "ack" => describe_ack(v),
        "error" => format!("error {}: {}", s("code"), s("message")),
        "status" => format!(
            "status {} {}",
            s("state"),
            v["skipped"]
                .as_u64()
                .map_or(String::new(), |n| format!("(skipped {n})"))
        ),
        "snapshot" => describe_snapshot(v)?,
        _ => return None,
    })
}

/// A string field of a message, `?` when it is missing.
fn field<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name].as_str().unwrap_or("?")
}

/// One window value: the metric (only one per message), its value and its
/// change since the previous window.
fn describe_metrics(v: &Value) -> Option<String> {
    let (metric, figures) = v["values"].as_object()?.iter().next()?;
    let delta = figures
        .get("delta")
        .and_then(Value::as_f64)
        .map_or(String::new(), |d| format!("  ({d:+})", d = readable(d)));
    Some(format!(
        "{:<18} {metric:<15} {:>16}{delta:<18} window to {}  seq {}",
        field(v, "channel"),
        readable(figures["value"].as_f64()?),
        clock_ms(v["window_end"].as_u64()?),
        v["seq"]
    ))
}

/// The ack with whichever optional fields it carries.
fn describe_ack(v: &Value) -> String {
    let mut line = format!(
        "ack {}: subscribed {}",
        field(v, "channel"),
        v["subscribed"]
    );
    for name in [
        "errors",
        "window_ms",
        "agg",
        "since",
        "recovered",
        "last_seq",
    ] {
        match &v[name] {
            Value::Null => {}
            Value::Array(a) if a.is_empty() => {}
            x => line.push_str(&format!(", {name} {x}")),
        }
    }
    line
}

/// A line for the snapshot, then a line for each of its items.
fn describe_snapshot(v: &Value) -> Option<String> {
    let items = v["data"].as_array()?;
    let mut lines = vec![format!(
        "snapshot of {}: {} item(s)",
        field(v, "channel"),
        items.len()
    )];
    lines.extend(
        items
            .iter()
            .map(|item| describe_value(item).unwrap_or_else(|| item.to_string())),
    );
    Some(lines.join("\n"))
}

fn describe_price(v: &Value) -> String {
    let age_ms = v["ts"]
        .as_u64()
        .map(|ts| crate::clock::now_us().saturating_sub(ts) as f64 / 1000.0)
        .unwrap_or(f64::NAN);
    format!(
        "{:<8} bid {:>12} {:<4} ask {:>12} {:<4} spread {:>7.2}bp  seq {:>8}  age {:>6.2}ms",
        field(v, "symbol"),
        v["bid"],
        v["bid_src"].as_str().unwrap_or(""),
        v["ask"],
        v["ask_src"].as_str().unwrap_or(""),
        v["spread_bps"].as_f64().unwrap_or(f64::NAN),
        v["seq"],
        age_ms
    )
}

/// Rounded to 4 decimals, so float noise (`0.30000000000000004`) never
/// reaches the terminal.
fn readable(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

/// `HH:MM:SS.mmm` UTC of a millisecond UNIX time.
fn clock_ms(ms: u64) -> String {
    let s = ms / 1_000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        s / 3_600 % 24,
        s / 60 % 60,
        s % 60,
        ms % 1_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        watch: WatchArgs,
    }

    fn args(argv: &[&str]) -> Result<WatchArgs, clap::Error> {
        let argv = ["watch", "--token", "t"].iter().chain(argv);
        Cli::try_parse_from(argv).map(|c| c.watch)
    }

    #[test]
    fn options_become_the_subscribe_op_of_the_channel() {
        let op = args(&[
            "--channel",
            "metrics.trading",
            "--metrics",
            "trade_count,trade_volume",
            "--window-ms",
            "5000",
            "--agg",
            "sum",
            "--filter",
            "book=FX1",
            "--filter",
            "desk=fx",
        ])
        .unwrap()
        .subscribe_op()
        .unwrap();
        assert_eq!(
            op,
            json!({"op":"subscribe","id":1,"channel":"metrics.trading",
                "metrics":["trade_count","trade_volume"],"filters":{"book":"FX1","desk":"fx"},
                "window_ms":5000,"agg":"sum"})
        );
        let op = args(&["--channel", "alerts", "--since", "41"])
            .unwrap()
            .subscribe_op()
            .unwrap();
        assert_eq!(
            op,
            json!({"op":"subscribe","id":1,"channel":"alerts","since":41})
        );
        let op = args(&["EURUSD"]).unwrap().subscribe_op().unwrap();
        assert_eq!(
            op,
            json!({"op":"subscribe","id":1,"channel":"prices","symbols":["EURUSD"]})
        );

        assert!(
            args(&["--filter", "book"]).is_err(),
            "a filter needs a value"
        );
        for wrong in [
            &["--channel", "prices"][..],
            &["--channel", "alerts", "EURUSD"],
            &["--channel", "alerts", "--agg", "sum"],
            &["--channel", "metrics.risk", "--since", "3"],
            &["EURUSD", "--window-ms", "100"],
        ] {
            assert!(args(wrong).unwrap().subscribe_op().is_err(), "{wrong:?}");
        }
    }

    #[test]
    fn each_message_kind_reads_as_one_line() {
        let metrics = r#"{"type":"metrics","channel":"metrics.trading","seq":77,
            "window_end":1763769601000,"values":{"trade_count":{"value":42,"delta":3}}}"#;
        let line = describe(metrics);
        assert!(
            line.starts_with("metrics.trading")
                && line.contains("trade_count")
                && line.contains("42")
                && line.contains("(+3)")
                && line.contains("window to 00:00:01.000"),
            "{line}"
        );
        let alert = r#"{"type":"alert","channel":"alerts","seq":4,"level":"critical",
            "kind":"loss_limit","message":"Book FX1 past 95%","current":-9.5,"threshold":-9,"ts":1}"#;
        let line = describe(alert);
        assert!(
            line.contains("critical")
                && line.contains("Book FX1 past 95%")
                && line.contains("-9.5"),
            "{line}"
        );
        let session = r#"{"type":"session","channel":"sessions","seq":2,"session":"local-s1",
            "status":"paused","pnl":-12.5,"utilization":41.2,"ts":1}"#;
        assert!(describe(session).contains("local-s1"));
        let snapshot =
            format!(r#"{{"type":"snapshot","channel":"alerts","data":[{alert},{alert}]}}"#);
        let lines: Vec<String> = describe(&snapshot).lines().map(String::from).collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[1].starts_with("ALERT"));
        let delta = r#"{"type":"metrics","channel":"metrics.risk","seq":1,"window_end":0,
            "values":{"exposure":{"value":57949857.35,"delta":-9718852.359999992}}}"#;
        assert!(
            describe(delta).contains("(-9718852.36)"),
            "{}",
            describe(delta)
        );
        let ack = r#"{"type":"ack","id":1,"channel":"alerts","subscribed":true,"since":3,
            "recovered":false,"last_seq":9}"#;
        assert_eq!(
            describe(ack),
            "ack alerts: subscribed true, since 3, recovered false, last_seq 9"
        );
        for raw in [r#"{"type":"pong","id":6}"#, "not json"] {
            assert_eq!(describe(raw), raw);
        }
        assert!(!describe(metrics).contains('\n'));
    }
}
