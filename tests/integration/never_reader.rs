//! A client that stops reading is closed with 4008 once its writes have been
//! stuck for `slow_consumer_timeout_ms`; a client that never reads at all is
//! cut off; meanwhile another client keeps getting its updates.

use crate::util::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TIMEOUT_MS: u64 = 1000;
const TOML: &str = "[server]\nslow_consumer_timeout_ms = 1000\n";

/// The stuck reader's timeout: it must start reading after the server marked
/// it (one timeout stuck) and before it gives up (two), a window this test
/// finds by polling `/v1/status`, so it is kept wide for a loaded machine.
const STUCK_TIMEOUT_MS: u64 = 2000;

#[test]
fn stuck_reader_is_closed_4008_and_others_keep_flowing() {
    let toml = format!("[server]\nslow_consumer_timeout_ms = {STUCK_TIMEOUT_MS}\n");
    let s = start_sim(20, 20000, &["--max-rate-hz", "1000"], Some(&toml));
    let all = channel_symbols(&s);
    let op = format!(
        r#"{{"op":"subscribe","id":1,"channel":"prices","symbols":{}}}"#,
        serde_json::to_string(&all).unwrap()
    );

    let mut good = connect(&s, &trader());
    let syms: Vec<&str> = all.iter().map(String::as_str).collect();
    good.subscribe(1, &syms);

    // Small receive buffers so the server's writes block within milliseconds.
    let mut stuck = raw_connect_over(small_rcvbuf_stream(s.addr, 4096), s.addr, &trader());
    let mut never = raw_connect_over(small_rcvbuf_stream(s.addr, 4096), s.addr, &trader());
    stuck.send_text(&op).unwrap();
    never.send_text(&op).unwrap();
    let start = Instant::now();

    // The reading client keeps receiving, without long gaps, the whole time:
    // at least 3.5 s, and until the stuck client has its close.
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut last = Instant::now();
            let (mut count, mut max_gap) = (0, Duration::ZERO);
            let (min_end, wait) = (after_ms(3500), deadline() + WAIT);
            while !(done.load(Ordering::Relaxed) && Instant::now() >= min_end) {
                assert!(
                    Instant::now() < wait,
                    "the stuck client never got its close"
                );
                match good.next(after_ms(100)) {
                    Some(Event::Json(v)) if v["type"] == "price" => {
                        count += 1;
                        max_gap = max_gap.max(last.elapsed());
                        last = Instant::now();
                    }
                    Some(Event::Json(_)) | None => {}
                    Some(other) => panic!("the reading client was closed: {other:?}"),
                }
            }
            max_gap = max_gap.max(last.elapsed());
            good.ping(2);
            (count, max_gap)
        })
    };

    // `stuck` reads nothing until its writes have been blocked for longer than
    // the timeout (the server has marked both it and `never` as slow), but not
    // twice as long: its stream then ends in a 4008 Close.
    let marked = status_until(&s, deadline(), |v| shard_sum(v, "slow_closes") >= 2);
    // Neither reads, so the shard's writes to each found its socket full.
    assert!(
        shard_sum(&marked, "socket_full_writes") >= 2,
        "no socket-full write counted: {marked}"
    );
    let (frames, end) = stuck.read_frames(deadline(), |f| f.opcode == 8);
    done.store(true, Ordering::Relaxed);
    let close = frames.iter().rev().find(|f| f.opcode == 8);
    assert!(
        close.is_some(),
        "no Close frame for the stuck client ({} frames read, end {end:?}, {:?} after subscribing)",
        frames.len(),
        start.elapsed()
    );
    assert_eq!(close.unwrap().close_code(), Some(4008));

    // `never` has not read since it subscribed: the server has given it up, so
    // what is left is a bounded tail of old frames and the end of the connection.
    let (count, max_gap) = reader.join().unwrap();
    let (frames, end) = never.read_frames(deadline(), |f| f.opcode == 8);
    let closed = end == RawEnd::Stopped || matches!(end, RawEnd::Eof | RawEnd::Error(_));
    assert!(
        closed,
        "never-reading client still connected: {} frames, {end:?}",
        frames.len()
    );
    if let Some(code) = frames
        .iter()
        .find(|f| f.opcode == 8)
        .and_then(|f| f.close_code())
    {
        assert_eq!(code, 4008);
    }

    assert!(
        count >= 100,
        "reading client got only {count} prices in 3.5 s or more"
    );
    // Starved means held up behind the stuck client: its timeout or longer.
    assert!(
        max_gap < Duration::from_millis(STUCK_TIMEOUT_MS),
        "reading client starved for {max_gap:?}"
    );
}

#[test]
fn never_reader_is_cut_off_and_the_connection_count_returns_to_baseline() {
    let s = start_sim(20, 20000, &["--max-rate-hz", "1000"], Some(TOML));
    let all = channel_symbols(&s);
    let baseline = status(&s)["connections"].as_u64().unwrap();
    let op = format!(
        r#"{{"op":"subscribe","id":1,"channel":"prices","symbols":{}}}"#,
        serde_json::to_string(&all).unwrap()
    );
    let mut never = raw_connect_over(small_rcvbuf_stream(s.addr, 4096), s.addr, &trader());
    never.send_text(&op).unwrap();
    let start = Instant::now();
    status_until(&s, deadline(), |v| v["connections"] == baseline + 1);

    // 4008 is queued once writes have been stuck for the timeout; the TCP
    // connection is cut after another timeout; housekeeping then publishes
    // the count within 100 ms. Generous above for a loaded machine.
    let limit = Duration::from_millis(2 * TIMEOUT_MS + 5000);
    status_until(&s, start + limit, |v| v["connections"] == baseline);
    let gone_after = start.elapsed();
    assert!(
        gone_after >= Duration::from_millis(TIMEOUT_MS),
        "removed after {gone_after:?}, before the slow-consumer timeout"
    );

    // What the client finds: a bounded tail of old frames, then the end.
    let (frames, end) = never.read_frames(deadline(), |f| f.opcode == 8);
    assert!(
        matches!(end, RawEnd::Stopped | RawEnd::Eof | RawEnd::Error(_)),
        "never-reading client still connected: {} frames, {end:?}",
        frames.len()
    );
    if let Some(code) = frames.iter().find_map(RawFrame::close_code) {
        assert_eq!(code, 4008);
    }
}
