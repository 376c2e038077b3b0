//! The SDK at `/client.js` and the terminal page at `/`, embedded in the
//! binary; in dev mode the page URL with a ready token, and the dev Origin
//! default (`http://localhost:*`).

use crate::sse_client::open;
use crate::util::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;

fn repo_file(path: &str) -> String {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

#[test]
fn the_page_and_the_sdk_are_served_without_a_token() {
    let s = start_sim(5, 100, &[], None);
    for (path, file, content_type) in [
        (
            "/",
            "clients/terminal/index.html",
            "text/html; charset=utf-8",
        ),
        (
            "/client.js",
            "clients/js/src/quotecast.js",
            "text/javascript; charset=utf-8",
        ),
    ] {
        let resp = http_get(s.addr, path, &[]);
        assert_eq!(resp.status, 200, "{path}: {resp:?}");
        assert_eq!(resp.header("content-type"), Some(content_type), "{path}");
        assert_eq!(resp.body, repo_file(file), "{path} serves {file}");
        let post =
            quotecast_testkit::http::request(s.addr, "POST", path, &[], Some(""), deadline());
        assert_eq!(post.unwrap().status, 405, "{path}");
    }
}

/// A server process that is killed when the test ends, passed or not.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A dev-mode server (no secret configured): the process and its stdout up
/// to the listening line.
fn start_dev_server() -> (Killed, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_quotecast"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--shards",
            "1",
            "--sim-symbols",
            "5",
        ])
        .env_remove("QUOTECAST_JWT_HS256_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map(Killed)
        .expect("spawn quotecast");
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = deadline();
    while !lines
        .iter()
        .any(|l: &String| l.starts_with("quotecast listening on "))
    {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(_) => panic!("dev server never got ready: {lines:?}"),
        }
    }
    (child, lines)
}

#[test]
fn dev_mode_prints_the_page_url_with_a_token_and_admits_localhost_pages() {
    let (_server, lines) = start_dev_server();
    let url = lines
        .iter()
        .map(|l| l.trim())
        .find(|l| l.starts_with("http://") && l.contains("/?token="))
        .unwrap_or_else(|| panic!("no page URL in the banner: {lines:?}"))
        .to_owned();
    let (origin, token) = url.split_once("/?token=").unwrap();
    let addr: std::net::SocketAddr = origin.trim_start_matches("http://").parse().unwrap();
    let page = http_get(addr, "/", &[]);
    assert_eq!(page.status, 200);

    // The printed token opens a stream, from the page's own origin and from
    // a local dev server's; another site's page is refused.
    let target = format!("/v1/sse?channel=prices&symbols=EURUSD&access_token={token}");
    for ok in [origin, "http://localhost:5173"] {
        let mut sse =
            open(addr, &target, &[("Origin", ok)]).unwrap_or_else(|r| panic!("{ok}: {r:?}"));
        sse.until(deadline(), |e| e.event == "snapshot");
    }
    let refused = open(addr, &target, &[("Origin", "https://evil.example")])
        .err()
        .expect("refused");
    assert_eq!(refused.status, 403, "{refused:?}");
}
