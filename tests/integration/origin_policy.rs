//! The Origin policy: a browser page outside `server.allowed_origins` cannot
//! open a WebSocket or SSE stream (403), and gets no CORS headers from REST
//! endpoints; the server's own page and non-browser clients always may.

use crate::sse_client::open;
use crate::util::*;
use quotecast_testkit::http;

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn assert_origin_refused(resp: &HttpResponse, what: &str) {
    assert_eq!(resp.status, 403, "{what}: {resp:?}");
    let body = resp.json();
    assert_eq!(
        (body["error"].as_str(), body["reason"].as_str()),
        (Some("forbidden"), Some("origin_not_allowed")),
        "{what}: {body}"
    );
}

fn options(server: &Server, path: &str, origin: &str) -> HttpResponse {
    let headers = [
        ("Origin", origin),
        ("Access-Control-Request-Method", "GET"),
        ("Access-Control-Request-Headers", "authorization"),
    ];
    http::request(server.addr, "OPTIONS", path, &headers, None, deadline()).unwrap()
}

#[test]
fn production_default_refuses_foreign_pages_and_admits_its_own() {
    let s = start_sim(5, 100, &[], None);
    let auth = bearer(&trader());
    let own = format!("http://{}", s.addr);
    for origin in ["https://evil.example", "http://localhost:5173", "null"] {
        let headers = [("Authorization", auth.as_str()), ("Origin", origin)];
        assert_origin_refused(&ws_upgrade_request(s.addr, "/v1/ws", &headers), origin);
        let sse = open(s.addr, "/v1/sse?channel=prices&symbols=EURUSD", &headers);
        assert_origin_refused(&sse.err().expect("refused"), origin);
        let resp = http_get(s.addr, "/v1/channels", &headers);
        assert_eq!(resp.status, 200, "{resp:?}");
        assert_eq!(resp.header("access-control-allow-origin"), None, "{resp:?}");
        let pre = options(&s, "/v1/channels", origin);
        assert_origin_refused(&pre, origin);
        assert_eq!(pre.header("access-control-allow-origin"), None);
    }
    for headers in [vec![("Origin", own.as_str())], vec![]] {
        let mut all = headers.clone();
        all.push(("Authorization", &auth));
        assert_eq!(
            ws_upgrade_request(s.addr, "/v1/ws", &all).status,
            101,
            "{headers:?}"
        );
        let sse = open(s.addr, "/v1/sse?channel=prices&symbols=EURUSD", &all);
        assert!(sse.is_ok(), "{headers:?}: {:?}", sse.err());
    }
}

#[test]
fn listed_origins_may_connect_and_read_rest_answers() {
    let toml = "[server]\nallowed_origins = [\"https://desk.example\", \"http://localhost:*\"]\n";
    let s = start_sim(5, 100, &[], Some(toml));
    let auth = bearer(&trader());
    for origin in ["https://desk.example", "http://localhost:5173"] {
        let headers = [("Authorization", auth.as_str()), ("Origin", origin)];
        assert_eq!(
            ws_upgrade_request(s.addr, "/v1/ws", &headers).status,
            101,
            "{origin}"
        );
        let sse = open(s.addr, "/v1/sse?channel=prices&symbols=EURUSD", &headers)
            .unwrap_or_else(|r| panic!("{origin}: {r:?}"));
        assert_eq!(sse.header("access-control-allow-origin"), Some(origin));

        let resp = http_get(s.addr, "/v1/channels", &headers);
        assert_eq!(resp.status, 200);
        assert_eq!(
            resp.header("access-control-allow-origin"),
            Some(origin),
            "{resp:?}"
        );
        assert_eq!(resp.header("vary"), Some("Origin"));
        let refused = http_get(s.addr, "/v1/channels", &[("Origin", origin)]);
        assert_eq!(refused.status, 401);
        assert_eq!(
            refused.header("access-control-allow-origin"),
            Some(origin),
            "errors are readable too"
        );

        for path in ["/v1/channels", "/v1/publish", "/v1/sse"] {
            let pre = options(&s, path, origin);
            assert_eq!(pre.status, 204, "{path}: {pre:?}");
            assert_eq!(pre.header("access-control-allow-origin"), Some(origin));
            let allowed = pre.header("access-control-allow-headers").unwrap_or("");
            assert!(allowed.contains("Authorization"), "{pre:?}");
            assert!(pre
                .header("access-control-allow-methods")
                .unwrap_or("")
                .contains("POST"));
        }
    }
    let headers = [
        ("Authorization", auth.as_str()),
        ("Origin", "https://desk.example:8443"),
    ];
    assert_origin_refused(
        &ws_upgrade_request(s.addr, "/v1/ws", &headers),
        "other port",
    );
}

#[test]
fn a_bad_origin_pattern_stops_the_start() {
    let err = start_failure("[server]\nallowed_origins = [\"desk.example\"]\n");
    assert!(err.contains("server.allowed_origins"), "{err}");
}
