//! Process wiring: feed → aggregator thread → one ring per shard → shard
//! executors (one per core), plus the supervisor that drains on SIGTERM/SIGINT
//! and fails loudly when a shard dies.

use crate::aggregator::{self, Aggregator, AggregatorStats};
use crate::auth::{self, MintRequest, SecretSource, Verifier};
use crate::channel::Catalogue;
use crate::config::{Config, JwtAlg};
use crate::feed;
use crate::ring::{self, RingConsumer};
use crate::shard::{self, Shared};
use anyhow::{bail, Context};
use glommio::{LocalExecutorBuilder, Placement};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a shard thread ended, reported to the supervisor.
enum ShardEvent {
    Bound(std::io::Result<SocketAddr>),
    Exited(usize, String),
}

/// Reports a shard's end to the supervisor even when it unwinds from a panic.
struct ExitGuard {
    id: usize,
    events: mpsc::Sender<ShardEvent>,
    finished: bool,
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let how = if self.finished {
            "finished".to_owned()
        } else {
            "panicked".to_owned()
        };
        let _ = self.events.send(ShardEvent::Exited(self.id, how));
    }
}

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
    // The catalogue checks the `channels` section: before anything starts.
    let catalogue = Arc::new(Catalogue::new(&config.channels).context("invalid configuration")?);
    raise_memlock_limit();
    let hs256 = match config.auth.allows(JwtAlg::HS256) {
        true => Some(auth::load_hs256_secret(&config.auth).context("loading the HS256 secret")?),
        false => None,
    };
    let secret = hs256.as_ref().map(|(secret, _)| secret.as_slice());
    let verifier = Verifier::from_config(&config.auth, secret).context("loading the token keys")?;
    let universe = Arc::new(feed::universe(&config.feed));
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let shards = match config.server.shards {
        0 => cores.len().max(1),
        n => n,
    };

    let (producers, consumers) = ring::shard_rings(shards, config.server.ring_capacity);
    let agg_stats = Arc::new(AggregatorStats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let feed =
        feed::open(&config, universe.clone(), catalogue.clone()).context("opening the feed")?;
    let (publisher, published) = mpsc::channel();
    let agg = Aggregator::new(
        &universe,
        &config.feed,
        catalogue.clone(),
        producers,
        agg_stats.clone(),
    );
    let aggregator = aggregator::spawn(agg, feed, published, stop.clone(), None)
        .context("starting the aggregator thread")?;

    let listen = config.server.listen;
    let local_token = secret.map(|secret| {
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
    });
    let shared = Arc::new(Shared::new(
        config,
        universe.clone(),
        catalogue,
        verifier,
        shards,
        agg_stats,
        publisher,
    ));

    let (events_tx, events) = mpsc::channel();
    let mut bound = listen;
    for (id, ring) in consumers.into_iter().enumerate() {
        // Shard i runs on core i. On a tuned box the first cores are kept for
        // IRQs and the aggregator; see tuning/README.md for isolating them.
        let core = cores.get(id % cores.len().max(1)).copied();
        spawn_shard(id, core, bound, shared.clone(), ring, events_tx.clone())?;
        match events.recv_timeout(Duration::from_secs(30)) {
            Ok(ShardEvent::Bound(Ok(addr))) => bound = addr,
            Ok(ShardEvent::Bound(Err(e))) => bail!("shard-{id} could not listen on {bound}: {e}"),
            Ok(ShardEvent::Exited(_, how)) => bail!("shard-{id} {how} while starting"),
            Err(_) => bail!("shard-{id} did not start within 30 s"),
        }
    }
    tracing::info!(shards, %bound, symbols = universe.symbol_count(), "quotecast serving");
    if let (Some((_, SecretSource::Dev)), Some(token)) = (&hs256, &local_token) {
        print_dev_banner(bound, token, &universe);
    }
    on_ready(Ready {
        addr: bound,
        local_token,
    });

    let outcome = supervise(&shared, &events, shards);
    stop.store(true, Ordering::Relaxed);
    let _ = aggregator.join();
    outcome
}

fn spawn_shard(
    id: usize,
    core: Option<core_affinity::CoreId>,
    listen: SocketAddr,
    shared: Arc<Shared>,
    ring: RingConsumer,
    events: mpsc::Sender<ShardEvent>,
) -> anyhow::Result<()> {
    let io_memory = shared.config.server.io_memory_kib * 1024;
    LocalExecutorBuilder::new(Placement::Unbound)
        .name(&format!("shard-{id}"))
        .io_memory(io_memory)
        .spawn(move || async move {
            let mut guard = ExitGuard {
                id,
                events: events.clone(),
                finished: false,
            };
            if let Some(core) = core {
                if !core_affinity::set_for_current(core) {
                    tracing::warn!("shard-{id}: could not pin to core {}", core.id);
                }
            }
            let listener = match glommio::net::TcpListener::bind(listen) {
                Ok(l) => l,
                Err(e) => {
                    let _ = events.send(ShardEvent::Bound(Err(e.into())));
                    guard.finished = true;
                    return;
                }
            };
            let addr = listener.local_addr().map_err(std::io::Error::from);
            let _ = events.send(ShardEvent::Bound(addr));
            shard::run(id, shared, listener, ring).await;
            guard.finished = true;
        })
        .map_err(|e| {
            anyhow::anyhow!(
                "starting shard-{id}: {e} (if io_uring memory is refused, raise `ulimit -l`; see tuning/)"
            )
        })?;
    Ok(())
}

/// Waits for a signal or a shard failure; on a signal, drains and waits for
/// every shard to finish within the drain timeout.
fn supervise(
    shared: &Shared,
    events: &mpsc::Receiver<ShardEvent>,
    shards: usize,
) -> anyhow::Result<()> {
    let signalled = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, signalled.clone())
            .context("installing signal handlers")?;
    }
    let mut finished = 0;
    let mut deadline: Option<Instant> = None;
    loop {
        if deadline.is_none() && signalled.load(Ordering::Relaxed) {
            tracing::info!(
                "signal received: draining (healthz 503, close 1001 to every connection)"
            );
            shared.start_draining();
            deadline = Some(
                Instant::now() + shared.config.server.drain_timeout() + Duration::from_secs(2),
            );
        }
        match events.recv_timeout(Duration::from_millis(50)) {
            Ok(ShardEvent::Exited(id, how)) if !shared.is_draining() || how != "finished" => {
                bail!("shard-{id} {how} unexpectedly; stopping the node");
            }
            Ok(ShardEvent::Exited(..)) => {
                finished += 1;
                if finished == shards {
                    tracing::info!("drained; exiting");
                    return Ok(());
                }
            }
            Ok(ShardEvent::Bound(..)) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => bail!("every shard is gone"),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            tracing::warn!(
                "drain timeout passed with {} shard(s) still running",
                shards - finished
            );
            return Ok(());
        }
    }
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

fn print_dev_banner(addr: SocketAddr, token: &str, universe: &crate::symbol::Universe) {
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
         watch live prices in another terminal:\n  \
         cargo run --release -- watch --url ws://{addr}/v1/ws --token {token} {symbols}\n",
        auth::SECRET_ENV
    );
}
