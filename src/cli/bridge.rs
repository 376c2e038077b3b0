//! `quotecast bridge`: pushes a replay file into NATS, for demos and
//! benchmarks of `feed.kind = "nats"`. Quote lines go to core subjects
//! `quotecast.quote.<venue>.<symbol>`; event lines (those with a `channel`)
//! are published to JetStream on `quotecast.event.<tenant>.<channel>` and
//! wait for its acknowledgement, so an event the bridge reports sent is
//! stored.

use crate::feed::nats::{event_stream, event_subject, quote_subject};
use anyhow::{bail, Context};
use serde_json::Value;
use std::io::BufRead;
use std::path::PathBuf;
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
}

/// What one line of the file is published as.
#[derive(Debug, PartialEq)]
enum Route {
    /// A venue quote on this core subject.
    Quote(String),
    /// An event on this JetStream subject.
    Event(String),
}

/// How many subject tokens a field may span.
#[derive(Clone, Copy)]
enum Tokens {
    One,
    /// Channel names such as `metrics.trading`.
    Many,
}

/// The subject of one replay line, or why it has none.
fn route(line: &str) -> anyhow::Result<Route> {
    let value: Value = serde_json::from_str(line).context("not JSON")?;
    // `tokens`: how many dot-separated subject tokens the field may span.
    let field = |name: &str, tokens: Tokens| -> anyhow::Result<String> {
        let text = value
            .get(name)
            .and_then(Value::as_str)
            .with_context(|| format!("no string \"{name}\""))?;
        let bad_token = |t: &str| t.is_empty() || t.contains(['*', '>', ' ', '\t']);
        let fits = match tokens {
            Tokens::One => !text.contains('.') && !bad_token(text),
            Tokens::Many => !text.split('.').any(bad_token),
        };
        if !fits {
            bail!("\"{name}\" = {text:?} cannot be part of a NATS subject");
        }
        Ok(text.to_string())
    };
    Ok(if value.get("channel").is_some() {
        let tenant = field("tenant", Tokens::One)?;
        Route::Event(event_subject(&tenant, &field("channel", Tokens::Many)?))
    } else {
        let venue = field("venue", Tokens::One)?;
        Route::Quote(quote_subject(&venue, &field("symbol", Tokens::One)?))
    })
}

/// Runs the bridge to the end of the file; a bad line is reported with its
/// number and skipped.
pub fn run(args: BridgeArgs) -> anyhow::Result<()> {
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("opening {}", args.file.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(publish(std::io::BufReader::new(file), &args))
}

async fn publish(lines: impl BufRead, args: &BridgeArgs) -> anyhow::Result<()> {
    let client = async_nats::connect(args.to.as_str())
        .await
        .with_context(|| format!("connecting to {}", args.to))?;
    let js = async_nats::jetstream::new(client.clone());
    js.get_or_create_stream(event_stream())
        .await
        .context("creating the event stream")?;
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
        match route(line) {
            Ok(Route::Quote(subject)) => {
                client.publish(subject, line.to_string().into()).await?;
                quotes += 1;
            }
            Ok(Route::Event(subject)) => {
                js.publish(subject, line.to_string().into())
                    .await?
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
        let quote =
            r#"{"symbol":"EURUSD","venue":"LP1","bid":1.1,"bid_size":1,"ask":1.2,"ask_size":1}"#;
        assert_eq!(
            route(quote).unwrap(),
            Route::Quote("quotecast.quote.LP1.EURUSD".into())
        );
        let alert = r#"{"channel":"alerts","tenant":"t1","data":{"level":"info","kind":"k","message":"m"}}"#;
        assert_eq!(
            route(alert).unwrap(),
            Route::Event("quotecast.event.t1.alerts".into())
        );
        let metric = r#"{"channel":"metrics.trading","tenant":"t1","values":{"trade_count":1}}"#;
        assert_eq!(
            route(metric).unwrap(),
            Route::Event("quotecast.event.t1.metrics.trading".into())
        );
        let broadcast = r#"{"channel":"alerts","tenant":"*","data":{}}"#;
        let err = route(broadcast).unwrap_err().to_string();
        assert!(err.contains("cannot be part of a NATS subject"), "{err}");
        assert!(route("nope").is_err());
        assert!(route(r#"{"symbol":"EURUSD"}"#).is_err());
    }
}
