//! Process wiring: feed → aggregator thread → one ring per shard → shard
//! executors (one per core), plus the supervisor that drains on SIGTERM/SIGINT
//! and fails loudly when a shard dies.

mod supervisor;

use crate::auth::{self, MintRequest, SecretSource, Verifier};
use crate::config::{AuthConfig, Config, JwtAlg};
use crate::feed;
use crate::ingest::aggregator::{self, Aggregator};
use crate::ingest::publish::Publisher;
use crate::ingest::ring::{self, RingConsumer, RingProducer};
use crate::ingest::stats::AggregatorStats;
use crate::model::channel::Catalogue;
use crate::model::symbol::Universe;
use crate::net::admission::Admission;
use crate::net::origin::OriginPolicy;
use crate::net::{http, listener, tls, Gateway};
use crate::shard::{self, Node, ShardHandle};
use anyhow::{bail, Context};
use glommio::{LocalExecutorBuilder, Placement};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use supervisor::{ExitGuard, ShardEvent};

/// What [`run`] hands its caller once every shard accepts connections.
pub struct Ready {
    /// The address the shards listen on (the real port when 0 was asked for).
    pub addr: SocketAddr,
    /// A 12-hour TRADER token signed with the server's HS256 secret, for a
    /// local `watch` client started alongside the server; `None` when
    /// `auth.algorithms` does not list HS256.
    pub local_token: Option<String>,
}

/// Runs the server until SIGTERM/SIGINT has drained it. `on_ready` is called
/// once every shard accepts connections.
pub fn run(config: Config, on_ready: impl FnOnce(Ready)) -> anyhow::Result<()> {
    config.validate()?;
    tracing::info!(event = "config", config = %config.redacted_json(), "configuration");
    // The catalogue checks the `channels` section: before anything starts.
    let catalogue = Arc::new(Catalogue::new(&config.channels).context("invalid configuration")?);
    raise_memlock_limit();
    let (hs256, verifier) = load_keys(&config.auth)?;
    let universe = Arc::new(feed::universe(&config.feed));
    let mut cores = core_affinity::get_core_ids().unwrap_or_default();
    let shards = config.shard_count(cores.len());
    // A pinned aggregator's core is not a shard's.
    if let Some(aggregator) = config.ingest.aggregator_core {
        if cores.len() > 1 {
            cores.retain(|c| c.id != aggregator);
        }
    }

    let (producers, consumers) = ring::shard_rings(shards, config.server.ring_capacity);
    let agg_stats = Arc::new(AggregatorStats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (publisher, aggregator) = start_ingest(
        &config,
        &universe,
        &catalogue,
        producers,
        agg_stats.clone(),
        stop.clone(),
    )?;

    let listen = config.server.listen;
    let local_token = hs256.as_ref().map(|(secret, _)| mint_local_token(secret));
    let node = Arc::new(Node::new(
        config,
        universe.clone(),
        catalogue,
        verifier,
        shards,
        agg_stats,
    ));
    let dev_mode = matches!(hs256, Some((_, SecretSource::Dev)));
    let gateway = new_gateway(&node, publisher, dev_mode)?;
    if let Some(addr) = node.config.metrics.listen {
        let bound = http::listen_metrics(node.clone(), addr)
            .with_context(|| format!("binding metrics.listen {addr}"))?;
        tracing::info!(%bound, "metrics listening");
    }

    let (events_tx, events) = mpsc::channel();
    let bound = start_shards(consumers, &cores, listen, &gateway, &events_tx, &events)?;
    tracing::info!(shards, %bound, symbols = universe.symbol_count(), "quotecast serving");
    if let (Some((_, SecretSource::Dev)), Some(token)) = (&hs256, &local_token) {
        print_dev_banner(bound, token, &universe, gateway.tls.is_some());
    }
    on_ready(Ready {
        addr: bound,
        local_token,
    });

    let outcome = supervisor::supervise(&node, &events, shards);
    stop.store(true, Ordering::Relaxed);
    let _ = aggregator.join();
    outcome
}

/// The HS256 secret and where it came from.
type Hs256Secret = (Vec<u8>, SecretSource);

/// The HS256 secret (`None` when `auth.algorithms` does not list HS256) and
/// the verifier of every allowed algorithm.
fn load_keys(cfg: &AuthConfig) -> anyhow::Result<(Option<Hs256Secret>, Verifier)> {
    let hs256 = match cfg.allows(JwtAlg::HS256) {
        true => Some(auth::load_hs256_secret(cfg).context("loading the HS256 secret")?),
        false => None,
    };
    let secret = hs256.as_ref().map(|(secret, _)| secret.as_slice());
    let verifier = Verifier::from_config(cfg, secret).context("loading the token keys")?;
    Ok((hs256, verifier))
}

/// Opens the feed and starts the aggregator thread that writes into the
/// shard rings; returns the way publishing reaches it, and the thread.
fn start_ingest(
    config: &Config,
    universe: &Arc<Universe>,
    catalogue: &Arc<Catalogue>,
    producers: Vec<RingProducer>,
    agg_stats: Arc<AggregatorStats>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<(Publisher, JoinHandle<()>)> {
    let feed =
        feed::open(config, universe.clone(), catalogue.clone()).context("opening the feed")?;
    if let Some(bus) = feed.bus() {
        let _ = agg_stats.bus.set(bus);
    }
    let (tx, published) = mpsc::channel();
    let publisher = Publisher::new(tx, producers.len());
    let agg = Aggregator::new(
        universe,
        &config.feed,
        catalogue.clone(),
        producers,
        agg_stats,
    );
    let aggregator = aggregator::spawn(agg, feed, published, stop, &config.ingest)
        .context("starting the aggregator thread")?;
    Ok((publisher, aggregator))
}

/// The 12-hour TRADER and ADMIN token of [`Ready::local_token`].
fn mint_local_token(secret: &[u8]) -> String {
    auth::mint_hs256(
        secret,
        &MintRequest {
            sub: "local".into(),
            tenant: "local".into(),
            roles: vec!["TRADER".into(), "ADMIN".into()],
            ttl: Duration::from_secs(12 * 3600),
            symbols: None,
        },
    )
}

/// What every connection goes through: the node, TLS when configured, the
/// per-IP and per-tenant connection limits, and the way to the aggregator
/// for publishing.
fn new_gateway(
    node: &Arc<Node>,
    publisher: Publisher,
    dev_mode: bool,
) -> anyhow::Result<Arc<Gateway>> {
    let server = &node.config.server;
    let tls = match (&server.tls_cert, &server.tls_key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
        _ => None,
    };
    Ok(Arc::new(Gateway {
        tls,
        origins: OriginPolicy::new(server.allowed_origins.as_deref(), dev_mode),
        admission: Admission::new(
            server.max_connections_per_ip,
            server.max_connections_per_tenant,
        ),
        node: node.clone(),
        publisher,
    }))
}

/// Starts one shard per ring and returns the address they listen on. One at
/// a time: each shard listens on the address the one before it bound, so
/// when port 0 is asked for, every shard gets the port the first one got.
fn start_shards(
    rings: Vec<RingConsumer>,
    cores: &[core_affinity::CoreId],
    listen: SocketAddr,
    gateway: &Arc<Gateway>,
    events_tx: &mpsc::Sender<ShardEvent>,
    events: &mpsc::Receiver<ShardEvent>,
) -> anyhow::Result<SocketAddr> {
    let mut bound = listen;
    for (id, ring) in rings.into_iter().enumerate() {
        // Shard i runs on core i. On a tuned box the first cores are kept for
        // IRQs and the aggregator; see tuning/README.md for isolating them.
        let core = cores.get(id % cores.len().max(1)).copied();
        spawn_shard(id, core, bound, gateway.clone(), ring, events_tx.clone())?;
        match events.recv_timeout(Duration::from_secs(30)) {
            Ok(ShardEvent::Bound(Ok(addr))) => bound = addr,
            Ok(ShardEvent::Bound(Err(e))) => bail!("shard-{id} could not listen on {bound}: {e}"),
            Ok(ShardEvent::Exited(_, exit)) => bail!("shard-{id} {exit} while starting"),
            Err(_) => bail!("shard-{id} did not start within 30 s"),
        }
    }
    Ok(bound)
}

fn spawn_shard(
    id: usize,
    core: Option<core_affinity::CoreId>,
    listen: SocketAddr,
    gateway: Arc<Gateway>,
    ring: RingConsumer,
    events: mpsc::Sender<ShardEvent>,
) -> anyhow::Result<()> {
    let io_memory = gateway.node.config.server.io_memory_kib * 1024;
    LocalExecutorBuilder::new(Placement::Unbound)
        .name(&format!("shard-{id}"))
        .io_memory(io_memory)
        .spawn(move || async move {
            let mut guard = ExitGuard::new(id, events.clone());
            if let Some(core) = core {
                if !core_affinity::set_for_current(core) {
                    tracing::warn!("shard-{id}: could not pin to core {}", core.id);
                }
            }
            let listener = match glommio::net::TcpListener::bind(listen) {
                Ok(l) => l,
                Err(e) => {
                    let _ = events.send(ShardEvent::Bound(Err(e.into())));
                    guard.finished();
                    return;
                }
            };
            let addr = listener.local_addr().map_err(std::io::Error::from);
            let _ = events.send(ShardEvent::Bound(addr));
            let handle = ShardHandle::new(id, gateway.node.clone());
            // The shard never names HTTP: the listener runs the handler given here.
            let accept = glommio::spawn_local({
                let handle = handle.clone();
                async move {
                    let cfg = gateway.node.config.server.clone();
                    listener::accept_loop(listener, &cfg, |stream| {
                        http::serve(handle.clone(), gateway.clone(), stream)
                    })
                    .await
                }
            });
            shard::run(handle, ring).await;
            drop(accept);
            guard.finished();
        })
        .map_err(|e| {
            anyhow::anyhow!(
                "starting shard-{id}: {e} (if io_uring memory is refused, raise `ulimit -l`; see tuning/)"
            )
        })?;
    Ok(())
}

/// glommio registers io_uring memory that counts against RLIMIT_MEMLOCK;
/// raise the soft limit to the hard one so more shards fit.
fn raise_memlock_limit() {
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim);
        }
    }
}

fn print_dev_banner(addr: SocketAddr, token: &str, universe: &Universe, tls: bool) {
    let (http, ws) = if tls {
        ("https", "wss")
    } else {
        ("http", "ws")
    };
    // A browser cannot open 0.0.0.0: name the loopback address instead.
    let mut page = addr;
    if page.ip().is_unspecified() {
        page.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let symbols = universe
        .symbols()
        .iter()
        .take(4)
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    println!(
        "\n*** DEV MODE: no {} and no auth.hs256_secret_file, so this process made up a random \
         secret. Tokens below die with it. Never run production like this. ***\n\
         dev token (sub=local tenant=local roles=TRADER,ADMIN, 12h):\n  {token}\n\
         open the trading terminal in a browser:\n  {http}://{page}/?token={token}\n\
         watch live prices in another terminal:\n  \
         cargo run --release -- watch --url {ws}://{addr}/v1/ws --token {token} {symbols}\n",
        auth::SECRET_ENV
    );
}
