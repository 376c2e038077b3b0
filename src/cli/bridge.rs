//! `quotecast bridge`: pushes a replay file into NATS, for demos and
//! benchmarks of `feed.kind = "nats"`. Quote lines go to core subjects
//! `quotecast.quote.<venue>.<symbol>`; event lines (those with a `channel`)
//! are checked against the configured channels and stored in JetStream the
//! way `POST /v1/publish` stores them on a NATS node (reliable messages
//! numbered in their stream), each waiting for JetStream's
//! acknowledgement, so an event the bridge reports sent is stored.

use crate::clock;
use crate::config::Config;
use crate::feed::nats::{quote_subject, server_addrs, token, Outgoing, Retention, Store};
use crate::model::channel::Catalogue;
use crate::model::event::{self, EventRules};
use anyhow::{bail, Context};
use serde_json::Value;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Arguments of `quotecast bridge`.
#[derive(clap::Args, Debug)]
pub struct BridgeArgs {
    /// A file of replay lines (quotes, and events in the `POST /v1/publish` shape).
    pub file: PathBuf,
    /// NATS server(s), comma-separated.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    pub to: String,
    /// Lines per second (0 = as fast as NATS takes them).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// TOML configuration of the nodes (channels, `feed.nats_replicas`).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// What one line of the file is published as.
#[derive(Debug)]
enum Route {
    /// A venue quote on this core subject.
    Quote(String),
    /// An event, stored in JetStream.
    Event(Outgoing),
}

/// Where one replay line goes, or why it cannot.
fn route(line: &str, catalogue: &Catalogue, config: &Config) -> anyhow::Result<Route> {
    let value: Value = serde_json::from_str(line).context("not JSON")?;
    if value.get("channel").is_some() {
        let rules = EventRules {
            now_us: clock::now_us(),
            max_future_us: config.channels.max_event_future_us(),
            may_broadcast: true,
        };
        let event = event::parse_event(&value, catalogue, rules)?;
        return Ok(Route::Event(Outgoing {
            event,
            json: line.to_string().into(),
        }));
    }
    let field = |name: &str| -> anyhow::Result<&str> {
        match value.get(name).and_then(Value::as_str) {
            Some(text) if !text.is_empty() => Ok(text),
            _ => bail!("no string \"{name}\""),
        }
    };
    Ok(Route::Quote(quote_subject(
        &token(field("venue")?),
        &token(field("symbol")?),
    )))
}

/// Runs the bridge to the end of the file; a bad line is reported with its
/// number and skipped.
pub fn run(args: BridgeArgs, config: &Config) -> anyhow::Result<()> {
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("opening {}", args.file.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(publish(std::io::BufReader::new(file), &args, config))
}

async fn publish(lines: impl BufRead, args: &BridgeArgs, config: &Config) -> anyhow::Result<()> {
    let catalogue = Arc::new(Catalogue::new(&config.channels).context("invalid configuration")?);
    let client = async_nats::connect(server_addrs(&args.to)?)
        .await
        .with_context(|| format!("connecting to {}", args.to))?;
    let retention = Retention {
        replicas: config.feed.nats_replicas,
        per_stream: config.channels.history_max,
    };
    let js = async_nats::jetstream::new(client.clone());
    let mut store = Store::open(js, catalogue.clone(), retention)
        .await
        .map_err(|e| anyhow::anyhow!("creating the JetStream streams: {e}"))?;
    let started = Instant::now();
    let (mut quotes, mut events, mut skipped) = (0u64, 0u64, 0u64);
    for (n, line) in lines.lines().enumerate() {
        let line = line.context("reading the file")?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if args.rate > 0 {
            let due =
                started + Duration::from_secs_f64((quotes + events) as f64 / args.rate as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        match route(line, &catalogue, config) {
            Ok(Route::Quote(subject)) => {
                client.publish(subject, line.to_string().into()).await?;
                quotes += 1;
            }
            Ok(Route::Event(out)) => {
                store
                    .store(vec![out])
                    .await
                    .with_context(|| format!("line {}: JetStream did not store it", n + 1))?;
                events += 1;
            }
            Err(e) => {
                eprintln!("line {}: {e:#}; skipped", n + 1);
                skipped += 1;
            }
        }
    }
    client.flush().await?;
    println!(
        "published {quotes} quotes and {events} events to {}; {skipped} lines skipped",
        args.to
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_routed_by_their_fields() {
        let config = Config::default();
        let cat = Catalogue::new(&config.channels).unwrap();
        let route = |line: &str| route(line, &cat, &config);
        let quote =
            r#"{"symbol":"EURUSD","venue":"LP1","bid":1.1,"bid_size":1,"ask":1.2,"ask_size":1}"#;
        assert!(
            matches!(route(quote).unwrap(), Route::Quote(s) if s == "quotecast.quote.LP1.EURUSD")
        );
        let alert = r#"{"channel":"alerts","tenant":"t1","data":{"level":"info","kind":"k","message":"m"}}"#;
        assert!(matches!(route(alert).unwrap(), Route::Event(o) if *o.json == *alert.as_bytes()));
        let err = route(r#"{"channel":"alerts","tenant":"t1","data":{}}"#).unwrap_err();
        assert!(err.to_string().contains("level"), "{err}");
        assert!(route("nope").is_err());
        assert!(route(r#"{"symbol":"EURUSD"}"#).is_err());
    }
}
