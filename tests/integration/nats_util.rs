//! A real `nats-server` with JetStream on a loopback port, in a temporary
//! directory, killed and removed when dropped; and a raw NATS publisher (the
//! protocol is text lines) so the tests need no async client of their own.
//!
//! `nats-server` comes from the distribution (`apt-get install nats-server`);
//! CI installs it and sets `QUOTECAST_REQUIRE_NATS=1`, which makes a missing
//! binary a failure. Elsewhere the NATS tests say they were skipped.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running nats-server.
pub struct Nats {
    child: Child,
    dir: PathBuf,
    /// Its client address.
    pub addr: SocketAddr,
    /// Cluster arguments, for a member of a cluster.
    cluster: Vec<String>,
}

/// Whether nats-server can be run here; panics when it is required
/// (`QUOTECAST_REQUIRE_NATS`) and missing.
fn installed() -> bool {
    if Command::new("nats-server")
        .arg("--version")
        .output()
        .is_ok()
    {
        return true;
    }
    assert!(
        std::env::var_os("QUOTECAST_REQUIRE_NATS").is_none(),
        "QUOTECAST_REQUIRE_NATS is set but nats-server is not installed"
    );
    eprintln!("SKIPPED: nats-server is not installed (apt-get install nats-server)");
    false
}

/// A loopback port the OS just handed out (nats-server binds it right after).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Nats {
    /// Starts nats-server with JetStream, or `None` (with a message) when it
    /// is not installed and not required.
    pub fn start() -> Option<Nats> {
        installed().then(|| Nats::spawn_member(free_port(), Vec::new()))
    }

    /// Starts a cluster of `n` nats-servers with JetStream, routed to each
    /// other on loopback; returns once each accepts clients (the cluster
    /// elects its JetStream leader after that).
    pub fn cluster(n: usize) -> Option<Vec<Nats>> {
        if !installed() {
            return None;
        }
        let routes: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let route_list = routes
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let name = format!("qc{}", std::process::id());
        let members = routes
            .iter()
            .enumerate()
            .map(|(i, route)| {
                let args = vec![
                    "--name".to_string(),
                    format!("{name}-{i}"),
                    "--cluster_name".into(),
                    name.clone(),
                    "--cluster".into(),
                    format!("nats://127.0.0.1:{route}"),
                    "--routes".into(),
                    route_list.clone(),
                ];
                Nats::spawn_member(free_port(), args)
            })
            .collect();
        Some(members)
    }

    fn spawn_member(port: u16, cluster: Vec<String>) -> Nats {
        let dir =
            std::env::temp_dir().join(format!("quotecast-nats-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let child = spawn(addr, &dir, &cluster);
        Nats {
            child,
            dir,
            addr,
            cluster,
        }
    }

    /// Kills the server (as a crash would), runs `while_down`, then starts
    /// it again on the same port with the same JetStream directory.
    pub fn restart(&mut self, while_down: impl FnOnce()) {
        self.kill();
        while_down();
        self.child = spawn(self.addr, &self.dir, &self.cluster);
    }

    /// Kills the server as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Its `nats://` URL.
    pub fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    /// A raw publisher connected to it.
    pub fn publisher(&self) -> Publisher {
        Publisher::connect(self.addr)
    }
}

/// nats-server with JetStream on `addr`, storing in `dir`, with `extra`
/// arguments; returns once it accepts connections.
fn spawn(addr: SocketAddr, dir: &std::path::Path, extra: &[String]) -> Child {
    let child = Command::new("nats-server")
        .args([
            "-a",
            "127.0.0.1",
            "-p",
            &addr.port().to_string(),
            "-js",
            "-sd",
        ])
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning nats-server");
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "nats-server never listened on {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A NATS client speaking the text protocol: `PUB`, and `PING` to know the
/// server has processed everything before it.
pub struct Publisher {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Publisher {
    fn connect(addr: SocketAddr) -> Publisher {
        let stream = TcpStream::connect(addr).expect("connecting to nats-server");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut p = Publisher {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        };
        let info = p.line();
        assert!(
            info.starts_with("INFO "),
            "nats-server greeted with {info:?}"
        );
        p.writer
            .write_all(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\n")
            .unwrap();
        p
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader
            .read_line(&mut line)
            .expect("reading from nats-server");
        line
    }

    /// Publishes `payload` on `subject` and waits until the server has it.
    pub fn publish(&mut self, subject: &str, payload: &str) {
        let msg = format!("PUB {subject} {}\r\n{payload}\r\nPING\r\n", payload.len());
        self.writer.write_all(msg.as_bytes()).unwrap();
        loop {
            let line = self.line();
            assert!(!line.starts_with("-ERR"), "nats-server: {line}");
            if line.starts_with("PONG") {
                return;
            }
        }
    }
}
