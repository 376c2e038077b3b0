//! `quotecast-bench`: load generator and latency harness for quotecast.
//!
//! # Layout
//!
//! ```text
//! main.rs      the modes: one run, `compare`, `probe`
//! cli.rs       the command line
//! scenario.rs  named workloads → RunConfig; each connection's plan
//! zipf.rs      Zipf-skewed symbol draws
//! run.rs       a run's phases, /proc sampling, the ramp
//! report.rs    the report of a run (`--json`) and its printed summary
//! compare.rs   `compare`: one scenario against quotecast, the peers and the probe
//! feed.rs      the generated quote feed (JSON lines or HTTP publish), paced
//! probe.rs     `probe`: the physical limit of coalesced loopback writes
//! results.rs   results/<scenario>-<ts>/: report.json, summary.md, plots
//! repeats.rs   `compare --quotecast-runs N`: each run against the probe after it
//! svg.rs       hand-written SVG line charts
//! server.rs    the quotecast to spawn, its token, GET /v1/channels
//! worker.rs    one mio (epoll) loop per thread over its connections
//! conn.rs      one connection: connect, upgrade, frames, timed prices
//! decode.rs    byte-search decoding of server messages
//! stats.rs     histograms and counters, merged across threads
//! procstat.rs  CPU time and RSS from /proc/<pid>
//! ```
//!
//! Spawning servers, tokens, HTTP and the RFC 6455 codec come from
//! `quotecast-testkit` (tools/testkit).

mod cli;
mod compare;
mod conn;
mod decode;
mod feed;
mod probe;
mod procstat;
mod pusher;
mod reads;
mod repeats;
mod report;
mod results;
mod run;
mod rx;
mod scenario;
mod scrape;
mod server;
mod stamps;
mod stats;
mod svg;
mod worker;
mod zipf;

use clap::Parser;
use cli::{Cmd, Top};

fn main() -> anyhow::Result<()> {
    let top = Top::parse();
    match &top.cmd {
        Some(Cmd::Compare(args)) => compare::main(args),
        Some(Cmd::Probe(args)) => probe::main(args),
        None => run::single(&top.run),
    }
}
