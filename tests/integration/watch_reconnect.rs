//! `quotecast watch` (on `quotecast-client`) survives a server restart: it
//! is told 1001 by the drain, retries with backoff, reconnects to the new
//! server on the same port, resubscribes and prints prices again.

use crate::util::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};

/// Kills the watch process when the test ends, however it ends.
struct Watch(Child);

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads lines until one satisfies `pred`; returns the lines read.
fn lines_until(lines: &Receiver<String>, what: &str, pred: impl Fn(&str) -> bool) -> Vec<String> {
    let end = deadline();
    let mut seen = Vec::new();
    loop {
        let left = end.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                let done = pred(&line);
                seen.push(line);
                if done {
                    return seen;
                }
            }
            Err(e) => panic!("watch never printed {what} ({e}); it printed {seen:#?}"),
        }
    }
}

#[test]
fn watch_reconnects_after_a_server_restart() {
    let mut first = start_sim(3, 200, &[], None);
    let addr = first.addr;
    let mut child = Command::new(env!("CARGO_BIN_EXE_quotecast"))
        .args(["watch", "--url", &format!("ws://{addr}/v1/ws"), "--token"])
        .arg(trader())
        .args(["--seconds", "120", "EURUSD"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start quotecast watch");
    let stdout = child.stdout.take().unwrap();
    let _watch = Watch(child);
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let is_price = |l: &str| l.contains("EURUSD") && !l.starts_with("ack");
    lines_until(&lines, "connected", |l| l.starts_with("connected"));
    lines_until(&lines, "a price", is_price);

    assert!(first.stop().is_some(), "first server did not stop");
    lines_until(&lines, "the drain's 1001", |l| {
        l.starts_with("disconnected (close 1001)")
    });
    // The same port again: SO_REUSEPORT lets the new listener bind at once.
    let listen = addr.to_string();
    let _second = start_sim(3, 200, &["--listen", &listen], None);
    let after = lines_until(&lines, "reconnected", |l| l.starts_with("reconnected"));
    assert!(
        after.iter().all(|l| !l.starts_with("connected")),
        "a reconnect is reported as one: {after:#?}"
    );
    lines_until(&lines, "the resubscribe ack", |l| {
        l.starts_with("ack prices") && l.contains("EURUSD")
    });
    lines_until(&lines, "a price after the restart", is_price);
}
