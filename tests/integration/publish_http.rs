//! `POST /v1/publish`: who may publish, and a bad item refuses the whole
//! request with its index, publishing nothing of it.

use crate::events_util::*;
use crate::util::*;
use serde_json::json;
use std::io::Write;

#[test]
fn publish_needs_a_publisher_role() {
    let s = start_sim(5, 1000, &[], None);
    let body = alert("t1", "x").to_string();
    assert_eq!(http_post(s.addr, "/v1/publish", None, &body).status, 401);
    let resp = http_post(s.addr, "/v1/publish", Some(&trader()), &body);
    assert_eq!(
        (resp.status, resp.json()["error"].as_str()),
        (403, Some("forbidden"))
    );
    let admin = token(&["ADMIN"]);
    assert_eq!(
        http_post(s.addr, "/v1/publish", Some(&admin), &body).status,
        202
    );
    assert_eq!(http_get(s.addr, "/v1/publish", &[]).status, 405);
}

#[test]
fn a_bad_item_refuses_the_whole_request() {
    let s = start_sim(5, 1000, &[], None);
    let mut ws = connect(&s, &trader());
    subscribe_op(&mut ws, json!({"op":"subscribe","id":1,"channel":"alerts"}));
    let bad = json!([alert("t1", "never"), {"channel":"metrics.trading","tenant":"t1","values":{"bogus":1}}]);
    let resp = http_post(s.addr, "/v1/publish", Some(&service()), &bad.to_string());
    assert_eq!(resp.status, 400, "{}", resp.body);
    let body = resp.json();
    assert_eq!(
        (&body["index"], body["error"].as_str()),
        (&json!(1), Some("unknown_metric")),
        "{body}"
    );
    for (payload, index) in [
        ("not json", 0),
        (
            r#"{"channel":"alerts","tenant":"t1","data":{"level":"loud","kind":"k","message":"m"}}"#,
            0,
        ),
        (r#"[{"channel":"prices","tenant":"t1","data":{}}]"#, 0),
    ] {
        let resp = http_post(s.addr, "/v1/publish", Some(&service()), payload);
        assert_eq!(
            (resp.status, &resp.json()["index"]),
            (400, &json!(index)),
            "{payload}: {}",
            resp.body
        );
    }
    publish(&s, &alert("t1", "after"));
    let (first, _) = ws.recv_until(deadline(), |v| v["type"] == "alert");
    assert_eq!(
        (first["seq"].as_i64(), first["message"].as_str()),
        (Some(1), Some("after"))
    );
}

#[test]
fn length_is_required_and_bounded() {
    let s = start_sim(5, 1000, &[], None);
    let raw = |head: &str| {
        let mut stream = std::net::TcpStream::connect(s.addr).unwrap();
        let t = service();
        let req = format!(
            "POST /v1/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\n{head}\r\n"
        );
        stream.write_all(req.as_bytes()).unwrap();
        quotecast_testkit::http::read_response(&mut stream, deadline())
            .unwrap()
            .0
            .status
    };
    assert_eq!(raw(""), 411);
    assert_eq!(raw("Content-Length: 2000000\r\n"), 413);
}
