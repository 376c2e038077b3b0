//! A client that stops reading is closed with 4008 once its writes have been
//! stuck for `slow_consumer_timeout_ms`; a client that never reads at all is
//! cut off; meanwhile another client keeps getting its updates.

use crate::util::*;
use std::time::{Duration, Instant};

const TIMEOUT_MS: u64 = 1000;
const TOML: &str = "[server]\nslow_consumer_timeout_ms = 1000\n";

#[test]
fn stuck_reader_is_closed_4008_and_others_keep_flowing() {
    let s = start_sim(20, 20000, &["--max-rate-hz", "1000"], Some(TOML));
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

    // The reading client keeps receiving, without long gaps, the whole time.
    let reader = std::thread::spawn(move || {
        let mut last = Instant::now();
        let (mut count, mut max_gap) = (0, Duration::ZERO);
        let end = after_ms(3500);
        while let Some(ev) = good.next(end) {
            match ev {
                Event::Json(v) if v["type"] == "price" => {
                    count += 1;
                    max_gap = max_gap.max(last.elapsed());
                    last = Instant::now();
                }
                Event::Json(_) => {}
                other => panic!("the reading client was closed: {other:?}"),
            }
        }
        max_gap = max_gap.max(last.elapsed());
        good.ping(2);
        (count, max_gap)
    });

    // `stuck` reads nothing until its writes have been blocked for longer than
    // the timeout (but not twice as long): its stream then ends in a 4008 Close.
    std::thread::sleep(Duration::from_millis(TIMEOUT_MS + 600).saturating_sub(start.elapsed()));
    let (frames, end) = stuck.read_frames(after_ms(4_000), |f| f.opcode == 8);
    let close = frames.iter().rev().find(|f| f.opcode == 8);
    assert!(
        close.is_some(),
        "no Close frame for the stuck client ({} frames read, end {end:?}, {:?} after subscribing)",
        frames.len(),
        start.elapsed()
    );
    assert_eq!(close.unwrap().close_code(), Some(4008));

    // `never` has not read for 3.5 s: the server has given it up, so what is
    // left is a bounded tail of old frames and the end of the connection.
    let (count, max_gap) = reader.join().unwrap();
    let (frames, end) = never.read_frames(after_ms(10_000), |f| f.opcode == 8);
    let closed = end == RawEnd::Stopped || matches!(end, RawEnd::Eof | RawEnd::Error(_));
    assert!(
        closed,
        "never-reading client still connected after 3.5 s: {} frames, {end:?}",
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
        "reading client got only {count} prices in 3.5 s"
    );
    assert!(
        max_gap < Duration::from_millis(1000),
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
    status_until(&s, after_ms(2000), |v| v["connections"] == baseline + 1);

    // 4008 is queued once writes have been stuck for the timeout; the TCP
    // connection is cut after another timeout; housekeeping then publishes
    // the count within 100 ms.
    let limit = Duration::from_millis(2 * TIMEOUT_MS + 1000);
    status_until(&s, start + limit, |v| v["connections"] == baseline);
    let gone_after = start.elapsed();
    assert!(
        gone_after >= Duration::from_millis(TIMEOUT_MS),
        "removed after {gone_after:?}, before the slow-consumer timeout"
    );

    // What the client finds: a bounded tail of old frames, then the end.
    let (frames, end) = never.read_frames(after_ms(10_000), |f| f.opcode == 8);
    assert!(
        matches!(end, RawEnd::Stopped | RawEnd::Eof | RawEnd::Error(_)),
        "never-reading client still connected: {} frames, {end:?}",
        frames.len()
    );
    if let Some(code) = frames.iter().find_map(RawFrame::close_code) {
        assert_eq!(code, 4008);
    }
}
