//! Helpers the integration tests share on top of `quotecast-testkit`: the
//! test server (port 0, one shard, the test secret), tokens of the test
//! tenant, a replay feed the test writes, and reads that panic with the
//! frames seen when what a test waits for does not come.

use quotecast_testkit::server::{accept_by, Spawn};
use quotecast_testkit::{http, token};
use serde_json::{json, Value};
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use quotecast_testkit::client::{Event, RawEnd, RawFrame, RawWs, Ws};
pub use quotecast_testkit::http::Response as HttpResponse;
pub use quotecast_testkit::server::Server;
pub use quotecast_testkit::token::claims;
pub use quotecast_testkit::ws::client_frame;

/// The HS256 secret every test server is started with.
pub const SECRET: &str = "integration-test-secret-7c1f3a9e";

/// How long a test waits for something that must happen (a reply, a frame,
/// a close, a state): generous, so that a loaded CI machine is never taken
/// for a broken server. A passing test never waits it out.
pub const WAIT: Duration = Duration::from_secs(20);

/// `Instant::now() + WAIT`: the deadline of a wait for an event.
pub fn deadline() -> Instant {
    Instant::now() + WAIT
}

/// `Instant::now() + ms`: the end of a window in which the test observes
/// (what comes, or that nothing comes), or of a time limit under test.
pub fn after_ms(ms: u64) -> Instant {
    Instant::now() + Duration::from_millis(ms)
}

/// Wall clock in microseconds.
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// Wall clock in milliseconds.
pub fn now_ms() -> i64 {
    now_us() / 1_000
}

/// Wall clock in whole seconds.
pub fn now_secs() -> i64 {
    now_us() / 1_000_000
}

// ---------------------------------------------------------------- server

/// The test server: `quotecast serve --listen 127.0.0.1:0 --shards 1 <args>`
/// with the test secret, and `toml` as its configuration when given.
fn spawn(args: &[&str], toml: Option<&str>) -> Spawn {
    let spawn = Spawn::quotecast(env!("CARGO_BIN_EXE_quotecast"), SECRET).args(args);
    match toml {
        Some(toml) => spawn.config(toml),
        None => spawn,
    }
}

/// Starts the test server; returns once it prints its listening line.
pub fn start_server(args: &[&str], toml: Option<&str>) -> Server {
    spawn(args, toml)
        .start()
        .unwrap_or_else(|e| panic!("quotecast with args {args:?}: {e}"))
}

/// Runs the test server with the configuration `toml`, which must make it
/// refuse to start; returns what it wrote to stderr.
pub fn start_failure(toml: &str) -> String {
    match spawn(&[], Some(toml)).start() {
        Err(quotecast_testkit::server::StartError::Exited { status, stderr, .. }) => {
            assert!(
                !status.success(),
                "quotecast exited 0 with a bad configuration"
            );
            stderr
        }
        Err(e) => panic!("quotecast did not refuse the configuration: {e}"),
        Ok(_) => panic!("quotecast started with a configuration it should refuse"),
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
        ReplayFeed {
            listener,
            conn: None,
        }
    }

    /// Starts a server reading this feed for `symbols` quoted by `venues`.
    pub fn start_server(&self, symbols: &str, venues: &str, toml: Option<&str>) -> Server {
        let arg = format!("tcp:{}", self.listener.local_addr().unwrap());
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
        let conn = accept_by(&self.listener, deadline)
            .unwrap_or_else(|e| panic!("the server never connected to the replay feed: {e}"));
        self.conn = Some(conn);
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

/// Per-shard figure `key` of a `/v1/status` answer, summed over the shards.
pub fn shard_sum(status: &Value, key: &str) -> u64 {
    status["shards"]
        .as_array()
        .map_or(0, |a| a.iter().filter_map(|s| s[key].as_u64()).sum())
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

/// Signs `claims` with HS256 and the test secret.
pub fn sign(claims: &Value) -> String {
    token::hs256(SECRET, claims)
}

/// Signs `claims` with an HMAC algorithm and `secret`.
pub fn sign_with(alg: jsonwebtoken::Algorithm, secret: &str, claims: &Value) -> String {
    token::sign_hmac(alg, secret, claims)
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

/// The body of a response as JSON.
pub trait JsonBody {
    /// The body as JSON; panics with the body when it is not.
    fn json(&self) -> Value;
}

impl JsonBody for HttpResponse {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }
}

/// `GET path` with extra header lines, over a fresh connection.
pub fn http_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    http::get(addr, path, headers).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// `GET path` with the upgrade headers and optional extra headers.
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

// ---------------------------------------------------------------- WebSocket

/// Connects to `/v1/ws` with `Authorization: Bearer token` and reads the welcome.
pub fn connect(server: &Server, token: &str) -> Ws {
    Ws::connect(server.addr, token).unwrap_or_else(|e| panic!("connect: {e}"))
}

/// Connects with the token in the `access_token` query parameter.
pub fn connect_query(server: &Server, token: &str) -> Ws {
    Ws::connect_query(server.addr, token).unwrap_or_else(|e| panic!("connect: {e}"))
}

/// Upgrades `stream` (already connected to the server) and reads the welcome,
/// which must be the first frame.
pub fn connect_over(stream: TcpStream, server: &Server, bearer: Option<&str>, query: &str) -> Ws {
    Ws::over(stream, server.addr, query, bearer).unwrap_or_else(|e| panic!("connect: {e}"))
}

/// Connects and upgrades with a bearer token, without reading any frame.
pub fn raw_connect(server: &Server, token: &str) -> RawWs {
    RawWs::connect(server.addr, token).unwrap_or_else(|e| panic!("raw connect: {e}"))
}

/// Upgrades `stream` with a bearer token, without reading any frame.
pub fn raw_connect_over(stream: TcpStream, addr: SocketAddr, token: &str) -> RawWs {
    RawWs::over(stream, addr, token).unwrap_or_else(|e| panic!("raw connect: {e}"))
}

/// A TCP connection whose receive buffer is `rcvbuf` bytes (set before connect,
/// so the advertised window stays small and the server's writes block early).
pub fn small_rcvbuf_stream(addr: SocketAddr, rcvbuf: usize) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).expect("socket()");
    socket
        .set_recv_buffer_size(rcvbuf)
        .expect("setsockopt(SO_RCVBUF)");
    socket.connect(&addr.into()).expect("connect()");
    socket.into()
}

/// Reads of a [`Ws`] that panic, with the last frames, when what the test
/// waits for does not come; and the ops with the checks every test wants.
pub trait WsExt {
    /// Reads until a JSON frame matches `pred`; returns it and the frames before it.
    /// Panics on timeout or close.
    fn recv_until(
        &mut self,
        deadline: Instant,
        pred: impl FnMut(&Value) -> bool,
    ) -> (Value, Vec<Value>);

    /// Like [`WsExt::recv_until`], returning only the matching frame.
    fn recv_json_until(&mut self, deadline: Instant, pred: impl FnMut(&Value) -> bool) -> Value {
        self.recv_until(deadline, pred).0
    }

    /// Every JSON frame until `deadline`; panics if the connection closes.
    fn collect_for(&mut self, deadline: Instant) -> Vec<Value>;

    /// Every JSON frame of a window of `ms`, then on until `enough` holds of
    /// them all (within [`WAIT`]): the window is what the test observes; the
    /// wait makes sure a loaded machine has delivered what it is about.
    fn collect_at_least(&mut self, ms: u64, enough: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let mut frames = self.collect_for(after_ms(ms));
        let deadline = deadline();
        while !enough(&frames) {
            let (v, before) = self.recv_until(deadline, |_| true);
            frames.extend(before);
            frames.push(v);
        }
        frames
    }

    /// Reads until a Close frame; returns its code and the JSON frames before it.
    /// Panics on timeout or when the connection ends without a Close frame.
    fn expect_close(&mut self, deadline: Instant) -> (Option<u16>, Vec<Value>);

    /// Sends `op` (which has an `id`) and returns the reply with that id
    /// (ack, error or pong) and the frames that came before it.
    fn request(&mut self, op: Value) -> (Value, Vec<Value>);

    /// Sends a `ping` op and checks the `pong`.
    fn ping(&mut self, id: u64);

    /// Subscribes to prices of `symbols`: returns the ack and the snapshot, and
    /// checks that nothing of this subscription came between them.
    fn subscribe(&mut self, id: u64, symbols: &[&str]) -> (Value, Value);
}

impl WsExt for Ws {
    fn recv_until(
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

    fn collect_for(&mut self, deadline: Instant) -> Vec<Value> {
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

    fn expect_close(&mut self, deadline: Instant) -> (Option<u16>, Vec<Value>) {
        let mut before = Vec::new();
        loop {
            match self.next(deadline) {
                Some(Event::Json(v)) => before.push(v),
                Some(Event::Close(code)) => return (code, before),
                Some(Event::Gone(e)) => panic!(
                    "connection ended without a Close frame: {e}; last frames: {}",
                    tail(&before)
                ),
                Some(Event::Invalid(e)) => panic!("{e}; last frames: {}", tail(&before)),
                None => panic!(
                    "no Close frame before the deadline; last frames: {}",
                    tail(&before)
                ),
            }
        }
    }

    fn request(&mut self, op: Value) -> (Value, Vec<Value>) {
        let id = op["id"].clone();
        assert!(!id.is_null(), "request needs an id");
        self.send(&op).unwrap();
        self.recv_until(deadline(), |v| {
            v["id"] == id && matches!(v["type"].as_str(), Some("ack" | "error" | "pong"))
        })
    }

    fn ping(&mut self, id: u64) {
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

    fn subscribe(&mut self, id: u64, symbols: &[&str]) -> (Value, Value) {
        let (ack, _) = self
            .request(json!({"op": "subscribe", "id": id, "channel": "prices", "symbols": symbols}));
        assert_eq!(ack["type"], "ack", "subscribe {symbols:?} refused: {ack}");
        let new: Vec<String> = ack["subscribed"]
            .as_array()
            .unwrap_or_else(|| panic!("ack without subscribed: {ack}"))
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        let (snap, before) = self.recv_until(deadline(), |v| v["type"] == "snapshot");
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
    http::prices_channel(channels).unwrap_or_else(|| panic!("no prices channel in {channels}"))
}

/// Symbol names of the `prices` channel from `GET /v1/channels`.
pub fn channel_symbols(server: &Server) -> Vec<String> {
    http::channel_symbols(server.addr, &trader()).unwrap_or_else(|e| panic!("{e}"))
}
