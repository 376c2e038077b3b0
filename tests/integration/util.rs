//! Helpers shared by the integration tests: start the real `quotecast` binary on
//! port 0, mint tokens, talk WebSocket (through tungstenite, or raw bytes when a
//! test must not answer pings) and plain HTTP over std sockets. Every wait has a
//! deadline; nothing sleeps a fixed time to wait for readiness.

#![allow(dead_code)]

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::io::FromRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::WebSocket;
use tungstenite::Message;

/// The HS256 secret every test server is started with.
pub const SECRET: &str = "integration-test-secret-7c1f3a9e";

/// How long a server may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Granularity of every blocking read: short, so deadlines are honoured.
const POLL: Duration = Duration::from_millis(25);

static CONFIG_SEQ: AtomicUsize = AtomicUsize::new(0);

/// `Instant::now() + ms`.
pub fn after_ms(ms: u64) -> Instant {
    Instant::now() + Duration::from_millis(ms)
}

/// Wall clock in whole seconds.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Wall clock in milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Wall clock in microseconds.
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

// ---------------------------------------------------------------- server

/// A running `quotecast serve`, killed when dropped.
pub struct Server {
    /// The address from the `quotecast listening on ...` line.
    pub addr: SocketAddr,
    /// The process.
    pub child: Child,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
    config: Option<PathBuf>,
}

/// Starts `quotecast serve --listen 127.0.0.1:0 --shards 1 <args>` with the test
/// secret, and `--config` pointing at `toml` when given; returns once it prints
/// its listening line.
pub fn start_server(args: &[&str], toml: Option<&str>) -> Server {
    let config = toml.map(write_config);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_quotecast"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--shards", "1"])
        .args(args)
        .env("QUOTECAST_JWT_HS256_SECRET", SECRET)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(path) = &config {
        cmd.arg("--config").arg(path);
    }
    // If the test process dies without running destructors, take the server with it.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn quotecast");

    // Drain stderr so the pipe never fills; keep the tail for failure reports.
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let stderr_reader = {
        let sink = stderr.clone();
        let mut pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut s = sink.lock().unwrap();
                s.extend_from_slice(&buf[..n]);
                if s.len() > 256 * 1024 {
                    let cut = s.len() - 128 * 1024;
                    s.drain(..cut);
                }
            }
        })
    };
    let (tx, rx) = mpsc::channel::<String>();
    {
        let pipe = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
    }
    let mut server = Server {
        addr: "127.0.0.1:1".parse().unwrap(),
        child,
        stderr,
        stderr_reader: Some(stderr_reader),
        config,
    };
    let deadline = Instant::now() + START_TIMEOUT;
    let mut stdout_seen: Vec<String> = Vec::new();
    loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            // The pipe ends with the process: collect everything it said.
            if let Some(reader) = server.stderr_reader.take() {
                let _ = reader.join();
            }
            while let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
                stdout_seen.push(line);
            }
            panic!(
                "quotecast exited before listening ({status}); args {args:?}\nstdout: {stdout_seen:?}\nstderr:\n{}",
                server.stderr_tail(4000)
            );
        }
        if Instant::now() >= deadline {
            panic!(
                "quotecast printed no listening line within {START_TIMEOUT:?}; args {args:?}\nstdout: {stdout_seen:?}\nstderr:\n{}",
                server.stderr_tail(4000)
            );
        }
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(line) => {
                if let Some(rest) = line.trim().strip_prefix("quotecast listening on ") {
                    server.addr = rest
                        .trim()
                        .parse()
                        .unwrap_or_else(|e| panic!("bad listening line {line:?}: {e}"));
                    break;
                }
                stdout_seen.push(line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    server
}

/// Writes a test configuration to a fresh temporary file.
fn write_config(text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "quotecast-it-{}-{}.toml",
        std::process::id(),
        CONFIG_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, text).expect("write test config");
    path
}

/// Runs `quotecast serve` with the configuration `toml`, which must make it
/// refuse to start within 10 s; returns what it wrote to stderr.
pub fn start_failure(toml: &str) -> String {
    let path = write_config(toml);
    let mut child = Command::new(env!("CARGO_BIN_EXE_quotecast"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--shards",
            "1",
            "--config",
        ])
        .arg(&path)
        .env("QUOTECAST_JWT_HS256_SECRET", SECRET)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn quotecast");
    let deadline = after_ms(10_000);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait quotecast") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(&path);
            panic!("quotecast started (or hung) with a configuration it should refuse");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = std::fs::remove_file(&path);
    assert!(
        !status.success(),
        "quotecast exited 0 with a bad configuration"
    );
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    stderr
}

impl Server {
    /// `ws://ADDR/v1/ws` plus `query`.
    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://{}/v1/ws{}", self.addr, query)
    }

    /// The last `max` bytes the server wrote to stderr.
    pub fn stderr_tail(&self, max: usize) -> String {
        let s = self.stderr.lock().unwrap();
        let from = s.len().saturating_sub(max);
        String::from_utf8_lossy(&s[from..]).into_owned()
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill(SIGTERM) failed");
    }

    /// Waits for the process to exit, up to `deadline`.
    pub fn wait_exit(&mut self, deadline: Instant) -> Option<ExitStatus> {
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(path) = &self.config {
            let _ = std::fs::remove_file(path);
        }
        if std::thread::panicking() {
            eprintln!(
                "---- quotecast stderr (tail) ----\n{}",
                self.stderr_tail(3000)
            );
        }
    }
}

/// A server on the simulator with `symbols` symbols at `rate` quotes/s.
pub fn start_sim(symbols: u32, rate: u32, extra: &[&str], toml: Option<&str>) -> Server {
    let symbols = symbols.to_string();
    let rate = rate.to_string();
    let mut args = vec![
        "--feed",
        "sim",
        "--sim-symbols",
        &symbols,
        "--sim-rate",
        &rate,
    ];
    args.extend_from_slice(extra);
    start_server(&args, toml)
}

// ---------------------------------------------------------------- replay feed

/// The far end of `--feed replay --replay tcp:...`: the test writes venue quotes.
pub struct ReplayFeed {
    listener: TcpListener,
    conn: Option<TcpStream>,
}

impl ReplayFeed {
    /// Binds 127.0.0.1:0.
    pub fn bind() -> ReplayFeed {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        ReplayFeed {
            listener,
            conn: None,
        }
    }

    /// The `--replay` argument.
    pub fn arg(&self) -> String {
        format!("tcp:{}", self.listener.local_addr().unwrap())
    }

    /// Starts a server reading this feed for `symbols` quoted by `venues`.
    pub fn start_server(&self, symbols: &str, venues: &str, toml: Option<&str>) -> Server {
        let arg = self.arg();
        start_server(
            &[
                "--feed",
                "replay",
                "--replay",
                &arg,
                "--symbols",
                symbols,
                "--venues",
                venues,
            ],
            toml,
        )
    }

    /// Waits for the server to connect.
    pub fn accept(&mut self, deadline: Instant) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    stream.set_nodelay(true).unwrap();
                    self.conn = Some(stream);
                    return;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    assert!(
                        Instant::now() < deadline,
                        "the server never connected to the replay feed"
                    );
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("replay accept: {e}"),
            }
        }
    }

    /// Writes one venue quote line.
    pub fn quote(
        &mut self,
        symbol: &str,
        venue: &str,
        bid: f64,
        bid_size: u64,
        ask: f64,
        ask_size: u64,
    ) {
        let line = json!({"symbol": symbol, "venue": venue, "bid": bid, "bid_size": bid_size,
                          "ask": ask, "ask_size": ask_size});
        self.line(&line.to_string());
    }

    /// Writes one raw line (a newline is added), e.g. JSON that serde_json
    /// would not produce.
    pub fn line(&mut self, text: &str) {
        let conn = self.conn.as_mut().expect("replay feed not accepted yet");
        conn.write_all(format!("{text}\n").as_bytes())
            .expect("write replay line");
        conn.flush().unwrap();
    }
}

/// `GET /v1/status` with an ADMIN token.
pub fn status(server: &Server) -> Value {
    let auth = format!("Bearer {}", token(&["ADMIN"]));
    let r = http_get(server.addr, "/v1/status", &[("Authorization", &auth)]);
    assert_eq!(r.status, 200, "GET /v1/status: {r:?}");
    r.json()
}

/// Polls `/v1/status` until `pred` holds; returns that document, or panics
/// with the last one at `deadline`.
pub fn status_until(server: &Server, deadline: Instant, pred: impl Fn(&Value) -> bool) -> Value {
    loop {
        let v = status(server);
        if pred(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "status never matched: {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------- tokens

/// Claims for `sub`/`tenant` with `roles`, expiring `ttl_s` from now.
pub fn claims(sub: &str, tenant: &str, roles: &[&str], ttl_s: i64) -> Value {
    json!({"sub": sub, "tenant": tenant, "roles": roles, "exp": now_secs() + ttl_s})
}

/// Signs `claims` with HS256 and the test secret.
pub fn sign(claims: &Value) -> String {
    sign_with(jsonwebtoken::Algorithm::HS256, SECRET, claims)
}

/// Signs `claims` with an HMAC algorithm and `secret`.
pub fn sign_with(alg: jsonwebtoken::Algorithm, secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign token")
}

/// An unsigned `alg: none` token.
pub fn unsigned_token(claims: &Value) -> String {
    let header = json!({"alg": "none", "typ": "JWT"});
    format!("{}.{}.", segment(&header), segment(claims))
}

/// base64url (no padding) of a JSON value: one JWT segment.
pub fn segment(v: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

/// A test-only key file under `tests/keys/` (see its README).
pub fn key_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/keys")
        .join(name)
}

/// The private key `file` (PKCS#8 PEM under `tests/keys/`) as a signing key for `alg`.
pub fn private_key(alg: jsonwebtoken::Algorithm, file: &str) -> jsonwebtoken::EncodingKey {
    use jsonwebtoken::{Algorithm, EncodingKey};
    let pem = std::fs::read(key_path(file)).expect("read test key");
    match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
        other => panic!("no private key for {other:?}"),
    }
    .expect("parse test key")
}

/// Signs any `header` and `claims`, valid or hostile, with `key` under `alg`.
pub fn sign_segments(
    header: &Value,
    claims: &Value,
    alg: jsonwebtoken::Algorithm,
    key: &jsonwebtoken::EncodingKey,
) -> String {
    let message = format!("{}.{}", segment(header), segment(claims));
    let sig = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).expect("sign");
    format!("{message}.{sig}")
}

/// `GET /v1/ws` upgrade with `Authorization: Bearer token`, or no token.
pub fn upgrade(server: &Server, token: Option<&str>) -> HttpResponse {
    match token {
        Some(t) => ws_upgrade_request(
            server.addr,
            "/v1/ws",
            &[("Authorization", &format!("Bearer {t}"))],
        ),
        None => ws_upgrade_request(server.addr, "/v1/ws", &[]),
    }
}

/// Asserts a `401` with `{"error":"unauthorized","reason":reason}`.
pub fn assert_401(resp: &HttpResponse, reason: &str) {
    assert_eq!(resp.status, 401, "expected 401 {reason}, got {resp:?}");
    let body = resp.json();
    assert_eq!(body["error"], "unauthorized", "body {body}");
    assert_eq!(body["reason"], reason, "body {body}");
}

/// A valid token for user `u1` of tenant `t1` with `roles`, ten minutes long.
pub fn token(roles: &[&str]) -> String {
    sign(&claims("u1", "t1", roles, 600))
}

/// A valid TRADER token.
pub fn trader() -> String {
    token(&["TRADER"])
}

// ---------------------------------------------------------------- HTTP

/// A plain HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Header lines, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body (de-chunked); empty for 101.
    pub body: String,
}

impl HttpResponse {
    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }
}

/// `GET path` with extra header lines, over a fresh connection.
pub fn http_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    try_http_get(addr, path, headers).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// `GET path`; an Err for connection-level failures.
pub fn try_http_get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<HttpResponse, String> {
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(POLL)).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("connection"))
    {
        req.push_str("Connection: close\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    read_http_response(&mut s, after_ms(5000)).map(|(r, _)| r)
}

/// `GET /v1/ws` with the upgrade headers and optional extra headers.
pub fn ws_upgrade_request(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    let mut all = vec![
        ("Connection", "Upgrade"),
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    all.extend_from_slice(headers);
    http_get(addr, path, &all)
}

/// Reads one response: the head, then (unless 101) a Content-Length or chunked
/// body, or everything to EOF. Returns the bytes read past the response too.
pub fn read_http_response(
    s: &mut TcpStream,
    deadline: Instant,
) -> Result<(HttpResponse, Vec<u8>), String> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        if !read_some(s, &mut buf, deadline)? {
            return Err(format!(
                "connection closed before a full response head: {:?}",
                String::from_utf8_lossy(&buf)
            ));
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut rest = buf[head_end..].to_vec();
    if status == 101 {
        return Ok((
            HttpResponse {
                status,
                headers,
                body: String::new(),
            },
            rest,
        ));
    }
    let body = if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        while rest.len() < len {
            if !read_some(s, &mut rest, deadline)? {
                break;
            }
        }
        rest.truncate(len);
        rest
    } else if header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        loop {
            if let Some(body) = dechunk(&rest) {
                break body;
            }
            if !read_some(s, &mut rest, deadline)? {
                return Err("connection closed inside a chunked body".into());
            }
        }
    } else {
        while read_some(s, &mut rest, deadline)? {}
        rest
    };
    Ok((
        HttpResponse {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        },
        Vec::new(),
    ))
}

/// Appends what is readable; false on EOF; Err on timeout or socket error.
fn read_some(s: &mut TcpStream, buf: &mut Vec<u8>, deadline: Instant) -> Result<bool, String> {
    let mut chunk = [0u8; 16384];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(true);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                if Instant::now() >= deadline {
                    return Err(format!(
                        "timed out; got so far: {:?}",
                        String::from_utf8_lossy(buf)
                    ));
                }
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = find(data, b"\r\n")?;
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        if data.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

// ---------------------------------------------------------------- WebSocket (tungstenite)

/// What a read produced.
#[derive(Debug)]
pub enum Event {
    /// A JSON text frame.
    Json(Value),
    /// A Close frame and its code.
    Close(Option<u16>),
    /// The connection ended without a Close frame (or a read error).
    Gone(String),
}

/// A WebSocket client connection through tungstenite.
pub struct Ws {
    /// The socket.
    pub ws: WebSocket<TcpStream>,
    /// The first frame the server sent.
    pub welcome: Value,
    /// Server pings seen (tungstenite answers them while reading).
    pub pings: usize,
}

/// Connects to `/v1/ws` with `Authorization: Bearer token` and reads the welcome.
pub fn connect(server: &Server, token: &str) -> Ws {
    let stream = TcpStream::connect_timeout(&server.addr, Duration::from_secs(2)).unwrap();
    connect_over(stream, server, Some(token), "")
}

/// Connects with the token in the `access_token` query parameter.
pub fn connect_query(server: &Server, token: &str) -> Ws {
    let stream = TcpStream::connect_timeout(&server.addr, Duration::from_secs(2)).unwrap();
    connect_over(stream, server, None, &format!("?access_token={token}"))
}

/// Upgrades `stream` (already connected to the server) and reads the welcome,
/// which must be the first frame.
pub fn connect_over(stream: TcpStream, server: &Server, bearer: Option<&str>, query: &str) -> Ws {
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut req = server.ws_url(query).into_client_request().unwrap();
    if let Some(t) = bearer {
        req.headers_mut()
            .insert("Authorization", format!("Bearer {t}").parse().unwrap());
    }
    let (ws, resp) = match tungstenite::client::client(req, stream) {
        Ok(x) => x,
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
            let body = resp
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned());
            panic!("upgrade refused: {} {:?}", resp.status(), body)
        }
        Err(e) => panic!("WebSocket handshake failed: {e:?}"),
    };
    assert_eq!(resp.status().as_u16(), 101);
    ws.get_ref().set_read_timeout(Some(POLL)).unwrap();
    let mut ws = Ws {
        ws,
        welcome: Value::Null,
        pings: 0,
    };
    match ws.next(after_ms(5000)) {
        Some(Event::Json(v)) => {
            assert_eq!(v["type"], "welcome", "first frame must be welcome: {v}");
            ws.welcome = v;
        }
        other => panic!("expected a welcome frame, got {other:?}"),
    }
    ws
}

/// A TCP connection whose receive buffer is `rcvbuf` bytes (set before connect,
/// so the advertised window stays small and the server's writes block early).
pub fn small_rcvbuf_stream(addr: SocketAddr, rcvbuf: i32) -> TcpStream {
    let SocketAddr::V4(v4) = addr else {
        panic!("IPv4 only")
    };
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket()");
        let v: libc::c_int = rcvbuf;
        let rc = libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &v as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        assert_eq!(rc, 0, "setsockopt(SO_RCVBUF)");
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(v4.ip().octets()),
            },
            sin_zero: [0; 8],
        };
        let rc = libc::connect(
            fd,
            &sin as *const libc::sockaddr_in as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(rc, 0, "connect(): {}", std::io::Error::last_os_error());
        TcpStream::from_raw_fd(fd)
    }
}

impl Ws {
    /// Sends a text frame.
    pub fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::text(text.to_string()))
            .unwrap_or_else(|e| panic!("send {text:?}: {e}"));
    }

    /// Sends a text frame, ignoring errors (the server may already have closed).
    pub fn try_send_text(&mut self, text: &str) -> bool {
        self.ws.send(Message::text(text.to_string())).is_ok()
    }

    /// Sends a JSON op.
    pub fn send(&mut self, op: &Value) {
        self.send_text(&op.to_string());
    }

    /// The next JSON frame, Close or end of connection; None at `deadline`.
    pub fn next(&mut self, deadline: Instant) -> Option<Event> {
        loop {
            if Instant::now() >= deadline {
                return None;
            }
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    let v: Value = serde_json::from_str(t.as_str())
                        .unwrap_or_else(|e| panic!("server sent non-JSON text ({e}): {t:?}"));
                    return Some(Event::Json(v));
                }
                Ok(Message::Binary(b)) => panic!("server sent a binary frame ({} bytes)", b.len()),
                Ok(Message::Ping(_)) => self.pings += 1,
                Ok(Message::Pong(_)) | Ok(Message::Frame(_)) => {}
                Ok(Message::Close(f)) => return Some(Event::Close(f.map(|f| u16::from(f.code)))),
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Some(Event::Gone(e.to_string())),
            }
        }
    }

    /// Reads until a JSON frame matches `pred`; returns it and the frames before it.
    /// Panics on timeout or close.
    pub fn recv_until(
        &mut self,
        deadline: Instant,
        mut pred: impl FnMut(&Value) -> bool,
    ) -> (Value, Vec<Value>) {
        let mut before = Vec::new();
        loop {
            match self.next(deadline) {
                Some(Event::Json(v)) => {
                    if pred(&v) {
                        return (v, before);
                    }
                    before.push(v);
                }
                other => panic!(
                    "wanted frame not received: {other:?}; last frames: {}",
                    tail(&before)
                ),
            }
        }
    }

    /// Like [`Ws::recv_until`], returning only the matching frame.
    pub fn recv_json_until(
        &mut self,
        deadline: Instant,
        pred: impl FnMut(&Value) -> bool,
    ) -> Value {
        self.recv_until(deadline, pred).0
    }

    /// Every JSON frame until `deadline`; panics if the connection closes.
    pub fn collect_for(&mut self, deadline: Instant) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            match self.next(deadline) {
                Some(Event::Json(v)) => out.push(v),
                None => return out,
                Some(other) => panic!(
                    "connection ended early: {other:?}; last frames: {}",
                    tail(&out)
                ),
            }
        }
    }

    /// Reads until a Close frame; returns its code and the JSON frames before it.
    /// Panics on timeout or when the connection ends without a Close frame.
    pub fn expect_close(&mut self, deadline: Instant) -> (Option<u16>, Vec<Value>) {
        let mut before = Vec::new();
        loop {
            match self.next(deadline) {
                Some(Event::Json(v)) => before.push(v),
                Some(Event::Close(code)) => return (code, before),
                Some(Event::Gone(e)) => panic!(
                    "connection ended without a Close frame: {e}; last frames: {}",
                    tail(&before)
                ),
                None => panic!(
                    "no Close frame before the deadline; last frames: {}",
                    tail(&before)
                ),
            }
        }
    }

    /// Sends `op` (which has an `id`) and returns the reply with that id
    /// (ack, error or pong) and the frames that came before it.
    pub fn request(&mut self, op: Value) -> (Value, Vec<Value>) {
        let id = op["id"].clone();
        assert!(!id.is_null(), "request needs an id");
        self.send(&op);
        self.recv_until(after_ms(5000), |v| {
            v["id"] == id && matches!(v["type"].as_str(), Some("ack" | "error" | "pong"))
        })
    }

    /// Sends a `ping` op and checks the `pong`.
    pub fn ping(&mut self, id: u64) {
        let (reply, _) = self.request(json!({"op": "ping", "id": id}));
        assert_eq!(reply["type"], "pong", "ping {id} answered with {reply}");
        let t = reply["server_time"]
            .as_i64()
            .unwrap_or_else(|| panic!("pong without server_time: {reply}"));
        assert!(
            (t - now_ms()).abs() < 5_000,
            "pong server_time {t} is not now ({})",
            now_ms()
        );
    }

    /// Subscribes to prices of `symbols`: returns the ack and the snapshot, and
    /// checks that nothing of this subscription came between them.
    pub fn subscribe(&mut self, id: u64, symbols: &[&str]) -> (Value, Value) {
        let (ack, _) = self
            .request(json!({"op": "subscribe", "id": id, "channel": "prices", "symbols": symbols}));
        assert_eq!(ack["type"], "ack", "subscribe {symbols:?} refused: {ack}");
        let new: Vec<String> = ack["subscribed"]
            .as_array()
            .unwrap_or_else(|| panic!("ack without subscribed: {ack}"))
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        let (snap, before) = self.recv_until(after_ms(5000), |v| v["type"] == "snapshot");
        for v in &before {
            assert!(
                !(v["type"] == "price" && new.iter().any(|s| v["symbol"] == s.as_str())),
                "price of a new subscription before its snapshot: {v}"
            );
        }
        (ack, snap)
    }
}

/// The last few frames, for failure messages.
pub fn tail(frames: &[Value]) -> String {
    let from = frames.len().saturating_sub(5);
    frames[from..]
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join("\n  ")
}

/// Price frames among `frames`.
pub fn prices(frames: &[Value]) -> Vec<&Value> {
    frames.iter().filter(|v| v["type"] == "price").collect()
}

/// The `prices` entry of a `GET /v1/channels` document.
pub fn prices_channel(channels: &Value) -> &Value {
    channels["channels"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == "prices"))
        .unwrap_or_else(|| panic!("no prices channel in {channels}"))
}

/// Symbol names of the `prices` channel from `GET /v1/channels`.
pub fn channel_symbols(server: &Server) -> Vec<String> {
    let t = trader();
    let r = http_get(
        server.addr,
        "/v1/channels",
        &[("Authorization", &format!("Bearer {t}"))],
    );
    assert_eq!(r.status, 200, "GET /v1/channels: {r:?}");
    let v = r.json();
    let prices = prices_channel(&v);
    prices["symbols"]
        .as_array()
        .unwrap_or_else(|| panic!("prices channel without symbols: {prices}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------- raw WebSocket

/// One frame as the server sent it (servers never mask).
#[derive(Debug, Clone)]
pub struct RawFrame {
    /// Opcode: 1 text, 2 binary, 8 close, 9 ping, 10 pong.
    pub opcode: u8,
    /// Unmasked payload.
    pub payload: Vec<u8>,
    /// When the frame was parsed.
    pub at: Instant,
}

impl RawFrame {
    /// The close code of a Close frame.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == 8 && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }

    /// The payload of a text frame as JSON.
    pub fn json(&self) -> Option<Value> {
        if self.opcode == 1 {
            serde_json::from_slice(&self.payload).ok()
        } else {
            None
        }
    }
}

/// How a raw read ended.
#[derive(Debug, PartialEq)]
pub enum RawEnd {
    /// The stop predicate matched.
    Stopped,
    /// The server closed the TCP connection.
    Eof,
    /// A socket error (e.g. reset).
    Error(String),
    /// The deadline passed.
    Deadline,
}

/// A WebSocket client that never answers anything by itself: the test decides
/// whether it reads, and pings are not answered.
pub struct RawWs {
    /// The socket.
    pub stream: TcpStream,
    buf: Vec<u8>,
}

/// Upgrades `stream` with a bearer token, without reading any frame.
pub fn raw_connect_over(mut stream: TcpStream, addr: SocketAddr, token: &str) -> RawWs {
    stream.set_nodelay(true).unwrap();
    stream.set_read_timeout(Some(POLL)).unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let req = format!(
        "GET /v1/ws HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Authorization: Bearer {token}\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).unwrap();
    let (resp, rest) = read_http_response(&mut stream, after_ms(5000)).expect("upgrade response");
    assert_eq!(resp.status, 101, "upgrade refused: {resp:?}");
    RawWs { stream, buf: rest }
}

/// Connects and upgrades with a bearer token.
pub fn raw_connect(server: &Server, token: &str) -> RawWs {
    let stream = TcpStream::connect_timeout(&server.addr, Duration::from_secs(2)).unwrap();
    raw_connect_over(stream, server.addr, token)
}

impl RawWs {
    /// Sends one masked text frame.
    pub fn send_text(&mut self, text: &str) -> std::io::Result<()> {
        self.stream.write_all(&client_frame(1, text.as_bytes()))
    }

    /// Reads and parses frames until `stop` matches one, EOF, an error or `deadline`.
    pub fn read_frames(
        &mut self,
        deadline: Instant,
        mut stop: impl FnMut(&RawFrame) -> bool,
    ) -> (Vec<RawFrame>, RawEnd) {
        let mut frames = Vec::new();
        let mut chunk = vec![0u8; 65536];
        loop {
            while let Some((frame, used)) = parse_server_frame(&self.buf) {
                self.buf.drain(..used);
                let hit = stop(&frame);
                frames.push(frame);
                if hit {
                    return (frames, RawEnd::Stopped);
                }
            }
            if Instant::now() >= deadline {
                return (frames, RawEnd::Deadline);
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return (frames, RawEnd::Eof),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(e) => return (frames, RawEnd::Error(e.to_string())),
            }
        }
    }
}

/// A masked client frame.
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let mask = [0x5a, 0x17, 0xc3, 0x88];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// One complete server frame from the front of `buf`, and its length.
fn parse_server_frame(buf: &[u8]) -> Option<(RawFrame, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let opcode = buf[0] & 0x0f;
    let masked = buf[1] & 0x80 != 0;
    let (len, mut at) = match buf[1] & 0x7f {
        126 => {
            if buf.len() < 4 {
                return None;
            }
            (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4)
        }
        127 => {
            if buf.len() < 10 {
                return None;
            }
            (
                u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
                10,
            )
        }
        n => (n as usize, 2),
    };
    let mask = if masked {
        if buf.len() < at + 4 {
            return None;
        }
        let m = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
        at += 4;
        Some(m)
    } else {
        None
    };
    if buf.len() < at + len {
        return None;
    }
    let mut payload = buf[at..at + len].to_vec();
    if let Some(m) = mask {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= m[i % 4];
        }
    }
    Some((
        RawFrame {
            opcode,
            payload,
            at: Instant::now(),
        },
        at + len,
    ))
}
