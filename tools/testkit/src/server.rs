//! Starting a server process and knowing when it listens: quotecast (and the
//! tokio peer) print `<name> listening on ADDR` on stdout once every shard
//! accepts; other servers (nginx) are polled on their port. Either way the
//! wait ends at a deadline or as soon as the process exits.

use std::ffi::OsString;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What quotecast prints, followed by its address, once it accepts connections.
const READY_PREFIX: &str = "quotecast listening on ";

/// The environment variable quotecast reads its HS256 secret from.
const SECRET_ENV: &str = "QUOTECAST_JWT_HS256_SECRET";

/// How long a server may take to become ready by default: generous, because
/// a loaded 2-core CI machine may take seconds to start a debug build.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long [`Server::stop`] waits after SIGTERM before it kills.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Most stderr bytes [`Stderr::Keep`] holds; the oldest half goes first.
const STDERR_KEEP: usize = 256 * 1024;

/// Numbers the configuration files of this process.
static CONFIG_SEQ: AtomicUsize = AtomicUsize::new(0);

/// How a spawned server shows it is ready.
#[derive(Debug, Clone)]
pub enum Ready {
    /// It prints this prefix and then its address on a stdout line.
    Line(String),
    /// It accepts TCP connections on this address.
    Port(SocketAddr),
}

/// Where a spawned server's stderr goes.
#[derive(Debug, Clone)]
pub enum Stderr {
    /// Kept in memory (the last 256 KiB) for failure reports.
    Keep,
    /// Written to this file.
    File(PathBuf),
    /// Thrown away.
    Discard,
}

/// A server process to start: binary, arguments, environment, readiness.
#[derive(Debug, Clone)]
pub struct Spawn {
    bin: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    ready: Ready,
    core: Option<usize>,
    stderr: Stderr,
    config: Option<String>,
}

impl Spawn {
    /// `bin` with no arguments, ready when `ready` says so.
    pub fn new(bin: impl Into<OsString>, ready: Ready) -> Spawn {
        Spawn {
            bin: bin.into(),
            args: Vec::new(),
            env: Vec::new(),
            ready,
            core: None,
            stderr: Stderr::Keep,
            config: None,
        }
    }

    /// `bin serve --listen 127.0.0.1:0 --shards 1` with `secret` as its HS256
    /// secret; later arguments override these (clap keeps the last).
    pub fn quotecast(bin: impl Into<OsString>, secret: &str) -> Spawn {
        Spawn::new(bin, Ready::Line(READY_PREFIX.into()))
            .args(["serve", "--listen", "127.0.0.1:0", "--shards", "1"])
            .env(SECRET_ENV, secret)
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Spawn {
        self.args.push(arg.into());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Spawn
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Spawn {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Writes `toml` to a temporary file and passes it as `--config`; the
    /// file is removed with the server.
    pub fn config(mut self, toml: &str) -> Spawn {
        self.config = Some(toml.to_string());
        self
    }

    /// Pins the server to `core` with `taskset`, when it is installed.
    pub fn pin_core(mut self, core: usize) -> Spawn {
        self.core = Some(core);
        self
    }

    /// Where stderr goes (default: [`Stderr::Keep`]).
    pub fn stderr(mut self, stderr: Stderr) -> Spawn {
        self.stderr = stderr;
        self
    }

    /// Starts the server and waits until it is ready, it exits, or 30 s have
    /// passed.
    pub fn start(&self) -> Result<Server, StartError> {
        let config = match &self.config {
            Some(text) => Some(write_config(text).map_err(StartError::Config)?),
            None => None,
        };
        let (mut server, lines) = self.launch(config)?;
        let deadline = Instant::now() + START_TIMEOUT;
        let addr = match &self.ready {
            Ready::Line(prefix) => server.await_line(&lines, prefix, deadline)?,
            Ready::Port(addr) => server.await_port(*addr, deadline)?,
        };
        server.addr = addr;
        Ok(server)
    }

    /// The command line: `taskset -c CORE` in front when pinned (and
    /// taskset is installed), `--config` last; returns it and whether it pins.
    fn command(&self, config: Option<&PathBuf>) -> Result<(Command, bool), StartError> {
        let taskset = self
            .core
            .filter(|_| Command::new("taskset").arg("-V").output().is_ok());
        let mut cmd = match taskset {
            Some(core) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(core.to_string()).arg(&self.bin);
                c
            }
            None => Command::new(&self.bin),
        };
        cmd.args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        if let Some(path) = config {
            cmd.arg("--config").arg(path);
        }
        match &self.stderr {
            Stderr::Keep => cmd.stderr(Stdio::piped()),
            Stderr::File(path) => cmd.stderr(
                std::fs::File::create(path).map_err(|e| StartError::Spawn(self.describe(), e))?,
            ),
            Stderr::Discard => cmd.stderr(Stdio::null()),
        };
        // If this process dies without running destructors, take the server
        // with it. The signal follows the spawning *thread*: spawn from the
        // thread that owns the server (a test, or the tool's main thread).
        // SAFETY: prctl is async-signal-safe and touches no memory of ours.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        Ok((cmd, taskset.is_some()))
    }

    /// Spawns the process and the threads that drain its pipes.
    fn launch(
        &self,
        config: Option<PathBuf>,
    ) -> Result<(Server, mpsc::Receiver<String>), StartError> {
        let (mut cmd, pinned) = self.command(config.as_ref())?;
        let mut child = cmd
            .spawn()
            .map_err(|e| StartError::Spawn(self.describe(), e))?;
        let (kept, stderr_reader) = match child.stderr.take() {
            Some(pipe) => {
                let kept = Arc::new(Mutex::new(Vec::new()));
                (Some(kept.clone()), Some(keep_tail(pipe, kept)))
            }
            None => (None, None),
        };
        let stdout = child.stdout.take().expect("stdout is piped");
        let prefix = match &self.ready {
            Ready::Line(p) => Some(p.clone()),
            Ready::Port(_) => None,
        };
        let lines = forward_until_ready(stdout, prefix);
        let server = Server {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            child,
            pinned,
            stderr: kept,
            stderr_reader,
            config,
        };
        Ok((server, lines))
    }

    fn describe(&self) -> String {
        self.bin.to_string_lossy().into_owned()
    }
}

/// Accepts the first connection on `listener` by `deadline`, as a blocking
/// stream without Nagle: a server dialling a feed the harness listens on.
pub fn accept_by(listener: &TcpListener, deadline: Instant) -> std::io::Result<TcpStream> {
    listener.set_nonblocking(true)?;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "no connection before the deadline",
                    ));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Reads stdout lines and sends them on, through the one that starts with
/// `prefix`; then keeps draining so the server never blocks on a full pipe.
fn forward_until_ready(
    stdout: std::process::ChildStdout,
    prefix: Option<String>,
) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(prefix) = prefix {
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                let ready = line.trim_start().starts_with(&prefix);
                if tx.send(line).is_err() || ready {
                    break;
                }
            }
        }
        for _ in lines {}
    });
    rx
}

/// Drains `pipe` into `kept`, keeping at most [`STDERR_KEEP`] bytes.
fn keep_tail(mut pipe: impl Read + Send + 'static, kept: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            let mut s = kept.lock().unwrap_or_else(|e| e.into_inner());
            s.extend_from_slice(&buf[..n]);
            if s.len() > STDERR_KEEP {
                let cut = s.len() - STDERR_KEEP / 2;
                s.drain(..cut);
            }
        }
    })
}

/// Writes a configuration to a fresh temporary file.
fn write_config(text: &str) -> std::io::Result<PathBuf> {
    let path = std::env::temp_dir().join(format!(
        "quotecast-testkit-{}-{}.toml",
        std::process::id(),
        CONFIG_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, text)?;
    Ok(path)
}

/// Why a server did not become ready.
#[derive(Debug)]
pub enum StartError {
    /// The temporary configuration file could not be written.
    Config(std::io::Error),
    /// The binary (named) could not be started.
    Spawn(String, std::io::Error),
    /// The process exited before it was ready.
    Exited {
        /// Its exit status.
        status: ExitStatus,
        /// What it printed on stdout.
        stdout: Vec<String>,
        /// What it printed on stderr (with [`Stderr::Keep`]).
        stderr: String,
    },
    /// It was still not ready after 30 s (it has been killed).
    NotReady {
        /// What it printed on stdout.
        stdout: Vec<String>,
        /// The tail of its stderr (with [`Stderr::Keep`]).
        stderr: String,
    },
    /// The ready line did not end in an address.
    BadAddress(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "writing the configuration: {e}"),
            StartError::Spawn(bin, e) => write!(f, "starting {bin}: {e}"),
            StartError::Exited {
                status,
                stdout,
                stderr,
            } => write!(
                f,
                "exited before listening ({status})\nstdout: {stdout:?}\nstderr:\n{stderr}"
            ),
            StartError::NotReady { stdout, stderr } => write!(
                f,
                "not listening within {START_TIMEOUT:?}\nstdout: {stdout:?}\nstderr:\n{stderr}"
            ),
            StartError::BadAddress(line) => write!(f, "bad listening line {line:?}"),
        }
    }
}

impl std::error::Error for StartError {}

/// A running server; killed (SIGKILL) when dropped, see [`Server::stop`] for
/// a graceful end.
pub struct Server {
    /// The address it listens on.
    pub addr: SocketAddr,
    child: Child,
    pinned: bool,
    stderr: Option<Arc<Mutex<Vec<u8>>>>,
    stderr_reader: Option<JoinHandle<()>>,
    config: Option<PathBuf>,
}

impl Server {
    /// Waits for the ready line on `lines`; returns the address it names.
    fn await_line(
        &mut self,
        lines: &mpsc::Receiver<String>,
        prefix: &str,
        deadline: Instant,
    ) -> Result<SocketAddr, StartError> {
        let mut stdout = Vec::new();
        loop {
            if let Some(status) = self.exited() {
                // The pipes end with the process: collect everything it said.
                while let Ok(line) = lines.recv_timeout(Duration::from_millis(500)) {
                    stdout.push(line);
                }
                return Err(StartError::Exited {
                    status,
                    stdout,
                    stderr: self.stderr_tail(4000),
                });
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(StartError::NotReady {
                    stdout,
                    stderr: self.stderr_tail(4000),
                });
            }
            match lines.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => match line.trim().strip_prefix(prefix) {
                    Some(addr) => {
                        return addr
                            .trim()
                            .parse()
                            .map_err(|_| StartError::BadAddress(line.clone()))
                    }
                    None => stdout.push(line),
                },
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                // Stdout closed: the process is ending, the check above sees it.
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(Duration::from_millis(20))
                }
            }
        }
    }

    /// Polls `addr` until it accepts a connection.
    fn await_port(
        &mut self,
        addr: SocketAddr,
        deadline: Instant,
    ) -> Result<SocketAddr, StartError> {
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                return Ok(addr);
            }
            if let Some(status) = self.exited() {
                return Err(StartError::Exited {
                    status,
                    stdout: Vec::new(),
                    stderr: self.stderr_tail(4000),
                });
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(StartError::NotReady {
                    stdout: Vec::new(),
                    stderr: self.stderr_tail(4000),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The exit status once the process has ended, after its stderr is read.
    fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.try_wait().ok().flatten()?;
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        Some(status)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process id (`taskset` execs, so it is the server's own).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it was pinned to a core with `taskset`.
    pub fn pinned(&self) -> bool {
        self.pinned
    }

    /// The last `max` bytes it wrote to stderr (empty unless [`Stderr::Keep`]).
    pub fn stderr_tail(&self, max: usize) -> String {
        let Some(kept) = &self.stderr else {
            return String::new();
        };
        let s = kept.lock().unwrap_or_else(|e| e.into_inner());
        let from = s.len().saturating_sub(max);
        String::from_utf8_lossy(&s[from..]).into_owned()
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) -> std::io::Result<()> {
        // SAFETY: signalling our own child by pid.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// Waits for the process to exit, up to `deadline`.
    pub fn wait_exit(&mut self, deadline: Instant) -> Option<ExitStatus> {
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then up to 10 s for a clean exit, then SIGKILL.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        if let Some(status) = self.exited() {
            return Some(status);
        }
        let _ = self.sigterm();
        if let Some(status) = self.wait_exit(Instant::now() + STOP_GRACE) {
            return Some(status);
        }
        let _ = self.child.kill();
        self.child.wait().ok()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        // The pipe has ended with the process: take all it said.
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        if let Some(path) = &self.config {
            let _ = std::fs::remove_file(path);
        }
        // A failing test drops its server while panicking: say what it logged.
        if std::thread::panicking() && self.stderr.is_some() {
            eprintln!("---- server stderr (tail) ----\n{}", self.stderr_tail(3000));
        }
    }
}
