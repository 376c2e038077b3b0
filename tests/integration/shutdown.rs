//! SIGTERM: `/healthz` turns 503, every connection gets close 1001, and the
//! process exits cleanly within the drain timeout.

use crate::util::*;
use std::time::Instant;

const TOML: &str = "[server]\ndrain_timeout_ms = 2000\n";

#[test]
fn sigterm_drains_with_1001_and_exits() {
    let mut s = start_sim(3, 1000, &[], Some(TOML));
    let mut a = connect(&s, &trader());
    a.subscribe(1, &["EURUSD"]);
    let mut b = connect(&s, &trader());
    // One client that never reads, so never answers the close: the drain
    // timeout must still end the process.
    let mut silent = raw_connect(&s, &trader());
    assert_eq!(http_get(s.addr, "/healthz", &[]).status, 200);

    let t0 = Instant::now();
    s.sigterm().expect("SIGTERM");
    // Draining lasts until the process exits (the silent client holds it to
    // the drain timeout): ask until a 503, or until it is too late.
    let mut health = Vec::new();
    let wait = deadline();
    let saw_503 = loop {
        match quotecast_testkit::http::get(s.addr, "/healthz", &[]) {
            Ok(r) if r.status == 503 => break true,
            Ok(r) => health.push(format!("{}", r.status)),
            Err(e) => health.push(e.to_string()),
        }
        if s.wait_exit(Instant::now()).is_some() || Instant::now() >= wait {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    };

    for (name, ws) in [("a", &mut a), ("b", &mut b)] {
        let (code, before) = ws.expect_close(deadline());
        assert_eq!(
            code,
            Some(1001),
            "client {name}: frames before: {}",
            tail(&before)
        );
    }
    // The drain timeout, with room for a loaded machine.
    let status = s.wait_exit(after_ms(2000 + 8000));
    let elapsed = t0.elapsed();
    let (frames, _) = silent.read_frames(deadline(), |f| f.opcode == 8);
    let silent_close = frames
        .iter()
        .find(|f| f.opcode == 8)
        .and_then(|f| f.close_code());

    assert!(
        saw_503,
        "/healthz never answered 503 while draining: {health:?}"
    );
    let status = status
        .unwrap_or_else(|| panic!("still running {elapsed:?} after SIGTERM (drain timeout 2 s)"));
    assert!(status.success(), "exit status {status}");
    assert_eq!(
        silent_close,
        Some(1001),
        "the non-reading client got no 1001"
    );
}
