//! The server side of a run: starting `quotecast serve` (`--spawn-server`),
//! minting its token, and learning its symbols from `GET /v1/channels`.

use anyhow::{bail, Context};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The environment variable quotecast reads its HS256 secret from.
pub const SECRET_ENV: &str = "QUOTECAST_JWT_HS256_SECRET";

/// How a spawned server shows it is ready.
pub enum Ready {
    /// It prints `PREFIX<addr>` on stdout (quotecast, the tokio peer).
    Line(&'static str),
    /// It accepts connections on this address (nginx).
    Port(SocketAddr),
}

/// A server process to start.
pub struct SpawnSpec {
    /// The binary.
    pub bin: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// How to tell it is listening.
    pub ready: Ready,
    /// Core to pin the server to with `taskset` (when it is installed).
    pub core: Option<usize>,
    /// Where the server's stderr goes.
    pub log: Option<String>,
}

impl SpawnSpec {
    /// `quotecast serve` on a free loopback port, one shard, with `secret`,
    /// fed by its simulator or, with `replay`, by `tcp:ADDR` over `symbols`.
    pub fn quotecast(
        bin: &str,
        secret: &str,
        max_rate_hz: u32,
        feed: QuotecastFeed<'_>,
    ) -> SpawnSpec {
        let mut args: Vec<String> = ["serve", "--listen", "127.0.0.1:0", "--shards", "1"]
            .map(String::from)
            .to_vec();
        args.extend(["--max-rate-hz".into(), max_rate_hz.to_string()]);
        match feed {
            QuotecastFeed::Sim { symbols, rate } => args.extend([
                "--sim-symbols".into(),
                symbols.to_string(),
                "--sim-rate".into(),
                rate.to_string(),
            ]),
            QuotecastFeed::Replay { addr, symbols } => args.extend([
                "--replay".into(),
                format!("tcp:{addr}"),
                "--symbols".into(),
                symbols.join(","),
                "--venues".into(),
                crate::feed::VENUE.into(),
            ]),
        }
        SpawnSpec {
            bin: bin.to_string(),
            args,
            env: vec![(SECRET_ENV.into(), secret.into())],
            ready: Ready::Line("quotecast listening on "),
            core: None,
            log: None,
        }
    }
}

/// Where a spawned quotecast gets its quotes.
pub enum QuotecastFeed<'a> {
    /// Its own simulator.
    Sim {
        /// Simulated symbols.
        symbols: usize,
        /// Venue quotes per second.
        rate: u64,
    },
    /// The harness's feed over TCP.
    Replay {
        /// The feed's listening address.
        addr: SocketAddr,
        /// The symbol universe.
        symbols: &'a [String],
    },
}

/// A server this run started; SIGTERMed on [`Spawned::stop`] or drop.
pub struct Spawned {
    child: Child,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Whether it was pinned with taskset.
    pub pinned: bool,
}

impl Spawned {
    /// The server's process id (taskset execs, so it is the server's own).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then up to 10 s for a clean exit, then SIGKILL.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        self.child.wait().ok()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A fresh random secret (hex).
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Starts the server and waits (up to 30 s) until it is ready.
pub fn spawn(spec: &SpawnSpec) -> anyhow::Result<Spawned> {
    let taskset = spec
        .core
        .filter(|_| Command::new("taskset").arg("-V").output().is_ok());
    let mut cmd = match taskset {
        Some(core) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(core.to_string()).arg(&spec.bin);
            c
        }
        None => Command::new(&spec.bin),
    };
    cmd.args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    match &spec.log {
        Some(path) => {
            let file = std::fs::File::create(path).with_context(|| format!("creating {path}"))?;
            cmd.stderr(file);
        }
        None => {
            cmd.stderr(Stdio::null());
        }
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", spec.bin))?;
    let stdout = child.stdout.take().context("server stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    let prefix = match spec.ready {
        Ready::Line(p) => Some(p),
        Ready::Port(_) => None,
    };
    std::thread::Builder::new()
        .name("server-stdout".into())
        .spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(prefix) = prefix {
                for line in lines.by_ref() {
                    let Ok(line) = line else { break };
                    if let Some(addr) = line.strip_prefix(prefix) {
                        let _ = tx.send(addr.trim().to_string());
                        break;
                    }
                }
            }
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        })?;
    let mut spawned = Spawned {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        pinned: taskset.is_some(),
    };
    // Bounded: 30 s, and over as soon as the server exits.
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = loop {
        match spec.ready {
            Ready::Line(_) => {
                if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
                    break line
                        .parse()
                        .with_context(|| format!("server printed a bad address {line:?}"))?;
                }
            }
            Ready::Port(addr) => {
                if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                    break addr;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        if let Ok(Some(status)) = spawned.child.try_wait() {
            bail!(
                "{} exited before listening ({status}); see its log",
                spec.bin
            );
        }
        if Instant::now() >= deadline {
            spawned.stop();
            bail!("{} was not listening within 30 s", spec.bin);
        }
    };
    spawned.addr = addr;
    Ok(spawned)
}

/// Mints an HS256 token like `quotecast token` does.
pub fn mint(secret: &str, ttl: Duration) -> anyhow::Result<String> {
    #[derive(serde::Serialize)]
    struct Claims<'a> {
        sub: &'a str,
        tenant: &'a str,
        roles: [&'a str; 2],
        iat: u64,
        exp: u64,
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let claims = Claims {
        sub: "bench",
        tenant: "bench",
        roles: ["TRADER", "ADMIN"],
        iat: now,
        exp: now + ttl.as_secs(),
    };
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &key,
    )?)
}

/// The symbols of the `prices` channel, from `GET /v1/channels`.
pub fn fetch_symbols(addr: SocketAddr, token: &str) -> anyhow::Result<Vec<String>> {
    let mut sock = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("connecting to {addr}"))?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        sock,
        "GET /v1/channels HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    // Bounded: the response is small and the socket has a read timeout.
    while raw.len() < 16 << 20 {
        if let Some((status, body)) = complete_response(&raw) {
            if status != 200 {
                bail!(
                    "GET /v1/channels answered {status}: {}",
                    String::from_utf8_lossy(body)
                );
            }
            return parse_symbols(body);
        }
        let n = sock.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&chunk[..n]);
    }
    bail!("incomplete /v1/channels response")
}

/// Status and body of `raw` once all of its `Content-Length` has arrived.
fn complete_response(raw: &[u8]) -> Option<(u16, &[u8])> {
    let head = crate::ws::find(raw, b"\r\n\r\n")?;
    let text = std::str::from_utf8(&raw[..head]).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let len: usize = text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    })?;
    let body = raw.get(head + 4..head + 4 + len)?;
    Some((status, body))
}

fn parse_symbols(body: &[u8]) -> anyhow::Result<Vec<String>> {
    let v: serde_json::Value =
        serde_json::from_slice(body).context("GET /v1/channels: body is not JSON")?;
    let prices = v["channels"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "prices"))
        .context("no prices channel in /v1/channels")?;
    let symbols: Vec<String> = prices["symbols"]
        .as_array()
        .context("prices channel without symbols")?
        .iter()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect();
    if symbols.is_empty() {
        bail!("the server lists no symbols");
    }
    Ok(symbols)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_body_gives_the_symbols() {
        let raw = b"HTTP/1.1 200 OK\r\ncontent-length: 68\r\n\r\n\
            {\"channels\":[{\"name\":\"prices\",\"kind\":\"latest\",\"symbols\":[\"A\",\"B\"]}]}";
        assert!(complete_response(&raw[..raw.len() - 3]).is_none());
        let (status, body) = complete_response(raw).unwrap();
        assert_eq!(status, 200);
        assert_eq!(parse_symbols(body).unwrap(), vec!["A", "B"]);
        let refused = b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(complete_response(refused).unwrap().0, 401);
    }

    #[test]
    fn minted_token_has_three_parts() {
        let t = mint("s", Duration::from_secs(60)).unwrap();
        assert_eq!(t.split('.').count(), 3);
    }
}
