//! The `quotecast` command line: `serve`, `token`, `watch`, `doctor`.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use quotecast::auth::{self, MintRequest};
use quotecast::config::{Config, FeedKind, JwtAlg};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    version,
    about = "Low-latency WebSocket fan-out of conflated best prices"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format on stderr: one JSON object per event, or text.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "QUOTECAST_LOG_FORMAT")]
    log_format: LogFormat,
}

/// How log events are written to stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for log shippers).
    Json,
}

/// Sends log events to stderr in `format`, filtered by `RUST_LOG` (default `info`).
fn init_logging(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the built-in simulator feed by default).
    Serve(ServeArgs),
    /// Mint an HS256 token with the configured secret.
    Token(TokenArgs),
    /// Connect, subscribe to a channel and print its live messages.
    Watch(quotecast::watch::WatchArgs),
    /// Publish a replay file's quotes and events to NATS (feed.kind = "nats").
    Bridge(quotecast::bridge::BridgeArgs),
    /// Check this host against tuning/README.md; non-zero exit on a blocking problem.
    Doctor(quotecast::doctor::DoctorArgs),
}

/// A flag given twice takes its last value, so scripts can append overrides.
#[derive(Args)]
#[command(args_override_self = true)]
struct ServeArgs {
    /// TOML configuration file (see --print-config).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print the documented default configuration and exit.
    #[arg(long)]
    print_config: bool,
    /// Address every shard listens on.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Number of shards (0 = one per core).
    #[arg(long)]
    shards: Option<usize>,
    /// Feed adapter.
    #[arg(long, value_enum)]
    feed: Option<FeedKind>,
    /// Number of simulated symbols.
    #[arg(long)]
    sim_symbols: Option<usize>,
    /// Number of simulated venues.
    #[arg(long)]
    sim_venues: Option<usize>,
    /// Simulated venue quotes per second.
    #[arg(long)]
    sim_rate: Option<u64>,
    /// Simulated analytics events per second (0 = none).
    #[arg(long)]
    sim_events_rate: Option<u64>,
    /// Most flushes per second per connection.
    #[arg(long)]
    max_rate_hz: Option<u32>,
    /// Replay source: a file or tcp:HOST:PORT.
    #[arg(long)]
    replay: Option<String>,
    /// NATS server(s) of the `nats` feed, comma-separated (implies --feed nats).
    #[arg(long)]
    nats_url: Option<String>,
    /// Symbol universe, comma-separated (default: the simulator's).
    #[arg(long, value_delimiter = ',')]
    symbols: Option<Vec<String>>,
    /// Venue names, comma-separated (default: LP1..LPn).
    #[arg(long, value_delimiter = ',')]
    venues: Option<Vec<String>>,
    /// Also print live prices of these symbols (comma-separated) from a local
    /// client in this process: server and first look in one command.
    #[arg(long, value_delimiter = ',')]
    watch: Option<Vec<String>>,
    /// Test only: serve an echo WebSocket at /v1/echo (Autobahn suite).
    #[arg(long)]
    echo_route: bool,
}

#[derive(Args)]
struct TokenArgs {
    /// TOML configuration file (for auth.hs256_secret_file).
    #[arg(long)]
    config: Option<PathBuf>,
    /// User id.
    #[arg(long)]
    sub: String,
    /// Tenant.
    #[arg(long)]
    tenant: String,
    /// Roles, comma-separated (e.g. TRADER,ADMIN).
    #[arg(long, value_delimiter = ',', default_value = "TRADER")]
    roles: Vec<String>,
    /// Lifetime: 90s, 15m, 1h, 2d.
    #[arg(long, default_value = "1h")]
    ttl: String,
    /// Symbols the token may see, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    symbols: Option<Vec<String>>,
}

fn load_config(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    match path {
        None => Ok(Config::default()),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Config::from_toml(&text).with_context(|| format!("in {}", path.display()))
        }
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    if args.print_config {
        print!("{}", Config::default_toml());
        return Ok(());
    }
    let mut cfg = load_config(args.config.as_ref())?;
    let s = &mut cfg.server;
    s.listen = args.listen.unwrap_or(s.listen);
    s.shards = args.shards.unwrap_or(s.shards);
    s.max_rate_hz = args.max_rate_hz.unwrap_or(s.max_rate_hz);
    s.echo_route |= args.echo_route;
    let f = &mut cfg.feed;
    f.kind = args.feed.unwrap_or(f.kind);
    f.sim_symbols = args.sim_symbols.unwrap_or(f.sim_symbols);
    f.sim_venues = args.sim_venues.unwrap_or(f.sim_venues);
    f.sim_rate = args.sim_rate.unwrap_or(f.sim_rate);
    f.sim_events_rate = args.sim_events_rate.unwrap_or(f.sim_events_rate);
    if let Some(replay) = args.replay {
        f.replay = Some(replay);
        if args.feed.is_none() {
            f.kind = FeedKind::Replay;
        }
    }
    if let Some(url) = args.nats_url {
        f.nats_url = url;
        if args.feed.is_none() {
            f.kind = FeedKind::Nats;
        }
    }
    if let Some(symbols) = args.symbols {
        f.symbols = symbols;
    }
    if let Some(venues) = args.venues {
        f.venues = venues;
    }
    cfg.validate().context("invalid configuration")?;
    let watch = args.watch;
    // With TLS, the in-process watch trusts the server's own chain file.
    let tls_cert = cfg.server.tls_cert.clone();
    quotecast::run(cfg, move |ready| {
        println!("quotecast listening on {}", ready.addr);
        let _ = std::io::stdout().flush();
        if let Some(symbols) = watch {
            let Some(token) = ready.local_token else {
                eprintln!("watch: --watch needs HS256 in auth.algorithms (it mints a local token)");
                return;
            };
            let scheme = if tls_cert.is_some() { "wss" } else { "ws" };
            let mut watch_args = quotecast::watch::WatchArgs::prices(
                format!("{scheme}://{}/v1/ws", ready.addr),
                token,
                symbols,
            );
            watch_args.ca_file = tls_cert;
            std::thread::spawn(move || {
                if let Err(e) = quotecast::watch::run(watch_args) {
                    eprintln!("watch: {e:#}");
                }
            });
        }
    })
}

fn token(args: TokenArgs) -> anyhow::Result<()> {
    let cfg = load_config(args.config.as_ref())?;
    if !cfg.auth.allows(JwtAlg::HS256) {
        anyhow::bail!(
            "auth.algorithms does not list HS256, so the server would refuse a minted token; \
             RS256/ES256/EdDSA tokens come from your identity provider"
        );
    }
    let (secret, source) = auth::load_hs256_secret(&cfg.auth)?;
    if matches!(source, auth::SecretSource::Dev) {
        anyhow::bail!(
            "no secret configured: set {} or auth.hs256_secret_file (a dev-mode server prints its own token)",
            auth::SECRET_ENV
        );
    }
    let ttl = auth::parse_ttl(&args.ttl).map_err(anyhow::Error::msg)?;
    let req = MintRequest {
        sub: args.sub,
        tenant: args.tenant,
        roles: args.roles,
        ttl,
        symbols: args.symbols,
    };
    println!("{}", auth::mint_hs256(&secret, &req));
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Token(args) => token(args),
        Command::Watch(args) => quotecast::watch::run(args),
        Command::Bridge(args) => {
            let cfg = load_config(args.config.as_ref())?;
            quotecast::bridge::run(args, &cfg)
        }
        Command::Doctor(args) => {
            let cfg = load_config(args.config.as_ref())?;
            if !quotecast::doctor::run(&args, &cfg) {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
