//! `GET /v1/sse`: a Server-Sent Events stream. The query names what
//! `subscribe` ops would (one op in its own parameters, or several as
//! `subs=<JSON array>`), read by the same parser as WebSocket ops; then the
//! token and the connection caps, as for an upgrade; then the stream runs as
//! a connection of the shard like any WebSocket one.

use super::request::Request;
use super::response::json_error;
use super::upgrade::admit;
use crate::auth;
use crate::net::conn::{self, Opening};
use crate::net::Gateway;
use crate::net::Stream;
use crate::protocol::{self, ClientOp, SubscribeOp};
use crate::shard::ShardHandle;
use crate::sse::{self, Resume};
use futures_lite::AsyncWriteExt;
use serde_json::{Map, Value};

/// Parameters naming one subscribe op; `filter.<key>` adds to `filters`.
const OP_PARAMS: [&str; 7] = [
    "channel",
    "symbols",
    "metrics",
    "window_ms",
    "agg",
    "since",
    "subs",
];

/// Serves the stream until it ends; `cors` is the header block a listed
/// browser origin is sent.
pub(super) async fn serve(
    shard: ShardHandle,
    gateway: &Gateway,
    mut stream: Stream,
    req: &Request,
    cors: &str,
) {
    let max_symbols = gateway.node.config.server.max_symbols_per_op;
    let opened = subscriptions(req, max_symbols)
        .map_err(|reason| json_error(400, "bad_request", &reason))
        .and_then(|ops| Ok((ops, admit(gateway, &stream, req)?)));
    let (ops, (claims, _slot)) = match opened {
        Ok(opened) => opened,
        Err(reply) => {
            let _ = stream
                .send(&super::response::with_headers(reply, cors))
                .await;
            let _ = stream.close().await;
            return;
        }
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n\
         Connection: close\r\nX-Accel-Buffering: no\r\n{cors}\r\n"
    );
    if stream.send(head.as_bytes()).await.is_ok() {
        conn::run(shard, stream, claims, Vec::new(), Opening::Sse(ops)).await;
    }
}

/// The subscribe ops a request names, each `since` moved on to where its
/// `Last-Event-ID` says the client stands; or why the query is refused.
pub fn subscriptions(req: &Request, max_symbols: usize) -> Result<Vec<SubscribeOp>, String> {
    let params = query_params(req.query.as_deref())?;
    let mut ops = match params.iter().find(|(name, _)| name == "subs") {
        Some((_, subs)) => {
            if params.iter().any(|(name, _)| name != "subs") {
                return Err("subs names every subscription: give no other parameter".into());
            }
            let list: Vec<Value> = serde_json::from_str(subs)
                .map_err(|e| format!("subs must be a JSON array of subscribe ops: {e}"))?;
            if list.is_empty() {
                return Err("subs is empty".into());
            }
            list.iter()
                .map(|op| parse_subscribe(op, max_symbols))
                .collect::<Result<_, _>>()?
        }
        None => vec![parse_subscribe(&one_op(&params)?, max_symbols)?],
    };
    match req
        .header("last-event-id")
        .map(sse::parse_cursor)
        .transpose()?
    {
        None => {}
        // The id of a stream with one reliable subscription: `since` of
        // every op (latest-value channels ignore it).
        Some(Resume::Seq(seq)) => ops.iter_mut().for_each(|op| op.since = Some(seq)),
        Some(Resume::Channels(cursor)) => {
            for (channel, seq) in cursor {
                for op in ops.iter_mut().filter(|op| op.channel == channel) {
                    op.since = Some(seq);
                }
            }
        }
    }
    Ok(ops)
}

/// The decoded query parameters other than `access_token`, each given once.
fn query_params(query: Option<&str>) -> Result<Vec<(String, String)>, String> {
    let mut params: Vec<(String, String)> = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            auth::form_decode(s).ok_or_else(|| format!("query parameter {pair:?} is not decodable"))
        };
        let (name, value) = (decode(name)?, decode(value)?);
        if name == "access_token" {
            continue;
        }
        if !OP_PARAMS.contains(&name.as_str()) && !name.starts_with("filter.") {
            return Err(format!("unknown query parameter {name:?}"));
        }
        if params.iter().any(|(n, _)| *n == name) {
            return Err(format!("query parameter {name:?} is given twice"));
        }
        params.push((name, value));
    }
    Ok(params)
}

/// The subscribe op the parameters spell, as the JSON a client would send:
/// lists are comma-separated, numbers stay text when they are not numbers
/// (so the op parser names the field that is wrong).
fn one_op(params: &[(String, String)]) -> Result<Value, String> {
    let mut op = Map::new();
    op.insert("op".into(), "subscribe".into());
    op.insert("id".into(), 1.into());
    let mut filters = Map::new();
    for (name, value) in params {
        let json = match name.as_str() {
            "symbols" | "metrics" => value
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| Value::from(s.to_owned()))
                .collect(),
            "window_ms" | "since" => value
                .parse::<u64>()
                .map_or_else(|_| Value::from(value.clone()), Value::from),
            _ => match name.strip_prefix("filter.") {
                Some("") => return Err("filter.<key> needs a key".into()),
                Some(key) => {
                    filters.insert(key.to_owned(), value.clone().into());
                    continue;
                }
                None => value.clone().into(),
            },
        };
        op.insert(name.clone(), json);
    }
    if !filters.is_empty() {
        op.insert("filters".into(), filters.into());
    }
    Ok(op.into())
}

/// Runs `op` through the WebSocket op parser; it must be a `subscribe`.
fn parse_subscribe(op: &Value, max_symbols: usize) -> Result<SubscribeOp, String> {
    let mut text = serde_json::to_vec(op).unwrap_or_default();
    match protocol::parse_op(&mut text, max_symbols) {
        Ok(ClientOp::Subscribe(op)) => Ok(op),
        Ok(_) => Err(format!("only subscribe ops can open a stream: {op}")),
        Err(e) => Err(e.message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::http::parse_head;

    fn ops(target: &str, last_event_id: Option<&str>) -> Result<Vec<SubscribeOp>, String> {
        let header = last_event_id.map_or(String::new(), |id| format!("Last-Event-ID: {id}\r\n"));
        let head = format!("GET {target} HTTP/1.1\r\nHost: x\r\n{header}\r\n");
        let (req, _) = parse_head(head.as_bytes(), 8192).unwrap().unwrap();
        subscriptions(&req, 3)
    }

    #[test]
    fn the_query_spells_one_subscribe_op() {
        let got = ops(
            "/v1/sse?channel=metrics.trading&metrics=a,b&window_ms=1000&agg=sum\
             &filter.book=FX%201&access_token=t",
            None,
        )
        .unwrap();
        let want = SubscribeOp {
            id: 1,
            channel: "metrics.trading".into(),
            metrics: Some(vec!["a".into(), "b".into()]),
            filters: vec![("book".into(), "FX 1".into())],
            window_ms: Some(1000),
            agg: Some("sum".into()),
            ..SubscribeOp::default()
        };
        assert_eq!(got, vec![want]);
    }

    #[test]
    fn subs_and_last_event_id_set_each_since() {
        let subs = r#"[{"op":"subscribe","id":4,"channel":"alerts","since":3},
            {"op":"subscribe","id":5,"channel":"sessions"},
            {"op":"subscribe","id":6,"channel":"prices","symbols":["EURUSD"]}]"#;
        let target = format!("/v1/sse?subs={}", percent_encode(subs));
        let got = ops(&target, Some("alerts:9,sessions:2")).unwrap();
        let since: Vec<_> = got.iter().map(|op| (op.id, op.since)).collect();
        assert_eq!(since, [(4, Some(9)), (5, Some(2)), (6, None)]);
        let got = ops("/v1/sse?channel=alerts&since=1", Some("7")).unwrap();
        assert_eq!(got[0].since, Some(7));
    }

    #[test]
    fn bad_queries_are_refused_with_the_reason() {
        for (target, why) in [
            ("/v1/sse", "missing field channel"),
            ("/v1/sse?channel=prices&symbols=A,B,C,D", "at most 3"),
            ("/v1/sse?channel=alerts&since=x", "since"),
            (
                "/v1/sse?channel=alerts&color=red",
                "unknown query parameter",
            ),
            ("/v1/sse?channel=alerts&channel=sessions", "twice"),
            ("/v1/sse?channel=alerts&subs=%5B%5D", "no other parameter"),
            ("/v1/sse?subs=%5B%5D", "empty"),
            (
                "/v1/sse?subs=%5B%7B%22op%22%3A%22ping%22%2C%22id%22%3A1%7D%5D",
                "only subscribe",
            ),
            ("/v1/sse?channel=%ZZ", "not decodable"),
        ] {
            let err = ops(target, None).unwrap_err();
            assert!(err.contains(why), "{target}: {err}");
        }
        let err = ops("/v1/sse?channel=alerts", Some("alerts")).unwrap_err();
        assert!(err.contains("Last-Event-ID"), "{err}");
    }

    fn percent_encode(s: &str) -> String {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    }
}
