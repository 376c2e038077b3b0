//! Metric events and reliable events: what enters the server besides venue
//! quotes, from the feed seam or `POST /v1/publish`, validated against the
//! [`Catalogue`] before anything is published.

use crate::model::channel::{Catalogue, Channel, ChannelId, ChannelKind, ALERTS, SESSIONS};
use crate::model::error::ErrorCode;
use crate::model::reliable::Stamp;
use serde_json::{Map, Value};
use std::sync::Arc;

/// Most bytes one published event's `data` may take once serialized.
pub const MAX_DATA_BYTES: usize = 16 * 1024;
/// Most dimensions one metric event may carry.
pub const MAX_DIMS: usize = 16;
/// Longest tenant, `sub`, dimension name or value.
pub const MAX_NAME_BYTES: usize = 128;
/// The `tenant` of a broadcast: a reliable message for every tenant's
/// subscribers of its channel, on a stream (and `seq`) of its own.
pub const BROADCAST_TENANT: &str = "*";
/// Fields the server writes into every reliable message; `data` may not set them.
const RESERVED: [&str; 5] = ["type", "channel", "seq", "ts", "broadcast"];
const ALERT_LEVELS: [&str; 3] = ["info", "warning", "critical"];
const SESSION_STATES: [&str; 5] = [
    "started",
    "paused",
    "completed",
    "expired",
    "emergency_stopped",
];

/// One observation of some metrics of a tenant's analytics channel.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricEvent {
    /// Owning tenant.
    pub tenant: Arc<str>,
    /// A `metrics.*` channel.
    pub channel: ChannelId,
    /// Event time, microseconds UNIX: decides the window it falls in.
    pub ts_us: u64,
    /// Dimension values (`book`, `desk`, `symbol`, ...), for filters.
    pub dims: Vec<(String, String)>,
    /// Metric index in the channel → value.
    pub values: Vec<(u16, f64)>,
}

impl MetricEvent {
    /// Whether every `(dimension, value)` of `filter` matches this event.
    pub fn matches(&self, filter: &[(String, String)]) -> bool {
        filter
            .iter()
            .all(|(k, v)| self.dims.iter().any(|(dk, dv)| dk == k && dv == v))
    }
}

/// A message for a reliable channel, before the server gives it a `seq`.
#[derive(Clone, Debug, PartialEq)]
pub struct ReliableEvent {
    /// Owning tenant.
    pub tenant: Arc<str>,
    /// `alerts`, `sessions` or `notifications`.
    pub channel: ChannelId,
    /// The user of a `notifications` message; `None` for tenant-wide channels.
    pub sub: Option<Arc<str>>,
    /// The message body fields, written into the message as they are.
    pub data: Map<String, Value>,
    /// The `seq` and time it was stored with, when a bus numbered it
    /// (scale-out mode); `None` when this node numbers it.
    pub stamp: Option<Stamp>,
}

/// The new latest object of one key of a keyed channel.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyedEvent {
    /// Owning tenant.
    pub tenant: Arc<str>,
    /// A keyed channel.
    pub channel: ChannelId,
    /// The key (a currency pair, an LP, ...).
    pub key: Arc<str>,
    /// The object, sent as the message's `data`.
    pub data: Map<String, Value>,
}

/// Anything published besides venue quotes.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Feeds the analytics windows.
    Metric(MetricEvent),
    /// Goes to a reliable stream.
    Reliable(ReliableEvent),
    /// Replaces one key's latest object.
    Keyed(KeyedEvent),
}

/// Why an event was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {reason}")]
pub struct EventError {
    /// `bad_request`, `unknown_channel` or `unknown_metric`.
    pub code: ErrorCode,
    /// What is wrong, for a person.
    pub reason: String,
}

fn bad(reason: impl Into<String>) -> EventError {
    EventError {
        code: ErrorCode::BadRequest,
        reason: reason.into(),
    }
}

/// Limits an event is checked against.
#[derive(Clone, Copy, Debug)]
pub struct EventRules {
    /// The receive time, microseconds UNIX: the default `ts`.
    pub now_us: u64,
    /// How far in the future a metric `ts` may be.
    pub max_future_us: u64,
    /// Whether `tenant: "*"` (a broadcast) is allowed: for ADMIN publishers
    /// and the feed seam.
    pub may_broadcast: bool,
}

/// Validates one event object (the `POST /v1/publish` and replay shape).
pub fn parse_event(v: &Value, cat: &Catalogue, rules: EventRules) -> Result<Event, EventError> {
    let obj = v
        .as_object()
        .ok_or_else(|| bad("an event must be a JSON object"))?;
    let name = str_field(obj, "channel")?.ok_or_else(|| bad("missing field channel"))?;
    let (channel, def) = cat.find(name).ok_or_else(|| EventError {
        code: ErrorCode::UnknownChannel,
        reason: format!("unknown channel {name:?}"),
    })?;
    let tenant = name_field(obj, "tenant")?.ok_or_else(|| bad("missing field tenant"))?;
    if tenant == BROADCAST_TENANT {
        check_broadcast(def, rules)?;
    }
    match def.kind {
        ChannelKind::Prices => Err(bad("prices come from the venue feed, not from publish")),
        ChannelKind::System => Err(bad("system is written by the node itself, not by publish")),
        ChannelKind::Metrics => parse_metric(obj, tenant, channel, def, rules).map(Event::Metric),
        ChannelKind::Reliable { per_user } => {
            parse_reliable(obj, tenant, channel, &def.name, per_user).map(Event::Reliable)
        }
        ChannelKind::Keyed => {
            let key = name_field(obj, "key")?.ok_or_else(|| bad("missing field key"))?;
            let data = obj
                .get("data")
                .and_then(Value::as_object)
                .ok_or_else(|| bad("data must be an object"))?;
            check_data(&def.name, data)?;
            Ok(Event::Keyed(KeyedEvent {
                tenant: tenant.into(),
                channel,
                key: key.into(),
                data: data.clone(),
            }))
        }
    }
}

/// A broadcast (`tenant: "*"`) needs the right to broadcast and a
/// tenant-wide reliable channel.
fn check_broadcast(def: &Channel, rules: EventRules) -> Result<(), EventError> {
    if !rules.may_broadcast {
        return Err(EventError {
            code: ErrorCode::Forbidden,
            reason: "tenant \"*\" (a broadcast to every tenant) needs the ADMIN role".into(),
        });
    }
    if def.kind != (ChannelKind::Reliable { per_user: false }) {
        return Err(bad(format!(
            "tenant \"*\" (broadcast) is only for tenant-wide reliable channels, not {}",
            def.name
        )));
    }
    Ok(())
}

/// The fields of a metric event: `ts` (the receive time when absent, and
/// not too far ahead of it), `dims`, and `values` naming metrics of `def`.
fn parse_metric(
    obj: &Map<String, Value>,
    tenant: &str,
    channel: ChannelId,
    def: &Channel,
    rules: EventRules,
) -> Result<MetricEvent, EventError> {
    let ts_us = match obj.get("ts") {
        None => rules.now_us,
        Some(t) => t
            .as_u64()
            .ok_or_else(|| bad("ts must be microseconds as an unsigned integer"))?,
    };
    if ts_us > rules.now_us.saturating_add(rules.max_future_us) {
        return Err(bad("ts is too far in the future"));
    }
    let dims = match obj.get("dims") {
        None => Vec::new(),
        Some(d) => parse_dims(d)?,
    };
    let values = obj
        .get("values")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("values must be an object of metric: number"))?;
    if values.is_empty() {
        return Err(bad("values is empty"));
    }
    let values = values
        .iter()
        .map(|(metric, value)| metric_value(def, metric, value))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(MetricEvent {
        tenant: tenant.into(),
        channel,
        ts_us,
        dims,
        values,
    })
}

/// One entry of a metric event's `values`: a metric of `def` and a finite
/// number.
fn metric_value(def: &Channel, metric: &str, value: &Value) -> Result<(u16, f64), EventError> {
    let index = def.metric_index(metric).ok_or_else(|| EventError {
        code: ErrorCode::UnknownMetric,
        reason: format!("{} has no metric {metric:?}", def.name),
    })?;
    match value.as_f64() {
        Some(x) if x.is_finite() => Ok((index, x)),
        _ => Err(bad(format!("{metric} must be a finite number"))),
    }
}

/// The fields of a reliable event of channel `name`: `sub` exactly when the
/// channel is `per_user`, and `data`.
fn parse_reliable(
    obj: &Map<String, Value>,
    tenant: &str,
    channel: ChannelId,
    name: &str,
    per_user: bool,
) -> Result<ReliableEvent, EventError> {
    let sub = name_field(obj, "sub")?;
    if per_user != sub.is_some() {
        return Err(bad(if per_user {
            "a notification needs the sub it is for"
        } else {
            "sub is only for notifications"
        }));
    }
    let data = obj
        .get("data")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("data must be an object"))?;
    check_data(name, data)?;
    Ok(ReliableEvent {
        tenant: tenant.into(),
        channel,
        sub: sub.map(Arc::from),
        data: data.clone(),
        stamp: None,
    })
}

/// The JSON objects of a publish body (one event object or an array of
/// them), unchecked: the array's items, or the one object.
pub fn batch_items(body: &[u8]) -> Result<Vec<Value>, (usize, EventError)> {
    match serde_json::from_slice(body).map_err(|e| (0, bad(format!("invalid JSON: {e}"))))? {
        Value::Array(items) => Ok(items),
        single => Ok(vec![single]),
    }
}

/// Validates every item of [`batch_items`]; the error carries the index of
/// the first bad one, and nothing is returned then.
pub fn parse_items(
    items: &[Value],
    cat: &Catalogue,
    rules: EventRules,
) -> Result<Vec<Event>, (usize, EventError)> {
    items
        .iter()
        .enumerate()
        .map(|(i, v)| parse_event(v, cat, rules).map_err(|e| (i, e)))
        .collect()
}

fn str_field<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, EventError> {
    match obj.get(field) {
        None => Ok(None),
        Some(v) => v
            .as_str()
            .map(Some)
            .ok_or_else(|| bad(format!("{field} must be a string"))),
    }
}

fn name_field<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, EventError> {
    let value = str_field(obj, field)?;
    if value.is_some_and(|v| v.is_empty() || v.len() > MAX_NAME_BYTES) {
        return Err(bad(format!("{field} must be 1..={MAX_NAME_BYTES} bytes")));
    }
    Ok(value)
}

fn parse_dims(d: &Value) -> Result<Vec<(String, String)>, EventError> {
    let obj = d
        .as_object()
        .ok_or_else(|| bad("dims must be an object of name: string"))?;
    if obj.len() > MAX_DIMS {
        return Err(bad(format!("at most {MAX_DIMS} dims")));
    }
    obj.iter()
        .map(|(k, v)| match v.as_str() {
            Some(s) if k.len() <= MAX_NAME_BYTES && s.len() <= MAX_NAME_BYTES => {
                Ok((k.clone(), s.to_owned()))
            }
            _ => Err(bad(format!(
                "dims.{k} must be a string of at most {MAX_NAME_BYTES} bytes"
            ))),
        })
        .collect()
}

fn check_data(channel: &str, data: &Map<String, Value>) -> Result<(), EventError> {
    if let Some(field) = RESERVED.iter().find(|f| data.contains_key(**f)) {
        return Err(bad(format!("data may not set {field:?}")));
    }
    let size = serde_json::to_vec(data).map_or(usize::MAX, |b| b.len());
    if size > MAX_DATA_BYTES {
        return Err(bad(format!("data is over {MAX_DATA_BYTES} bytes")));
    }
    let text = |field: &str| data.get(field).and_then(Value::as_str);
    let one_of = |field: &str, allowed: &[&str]| match text(field) {
        Some(v) if allowed.contains(&v) => Ok(()),
        _ => Err(bad(format!(
            "data.{field} must be one of {}",
            allowed.join(", ")
        ))),
    };
    match channel {
        ALERTS => {
            one_of("level", &ALERT_LEVELS)?;
            for field in ["kind", "message"] {
                if text(field).is_none() {
                    return Err(bad(format!("data.{field} must be a string")));
                }
            }
        }
        SESSIONS => {
            one_of("status", &SESSION_STATES)?;
            if text("session").is_none() {
                return Err(bad("data.session must be a string"));
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_batch(
        body: &[u8],
        cat: &Catalogue,
        rules: EventRules,
    ) -> Result<Vec<Event>, (usize, EventError)> {
        parse_items(&batch_items(body)?, cat, rules)
    }
    use crate::config::ChannelsConfig;
    use serde_json::json;

    const RULES: EventRules = EventRules {
        now_us: 1_000_000_000,
        max_future_us: 60_000_000,
        may_broadcast: false,
    };

    fn cat() -> Catalogue {
        Catalogue::new(&ChannelsConfig::default()).unwrap()
    }

    #[test]
    fn metric_events_are_validated_against_the_catalogue() {
        let cat = cat();
        let ok = json!({"channel":"metrics.trading","tenant":"t1","ts":999,
            "dims":{"book":"FX1"},"values":{"trade_count":1,"trade_volume":2.5}});
        let Event::Metric(m) = parse_event(&ok, &cat, RULES).unwrap() else {
            panic!("not a metric event")
        };
        assert_eq!((m.ts_us, &*m.tenant), (999, "t1"));
        assert_eq!(m.values, vec![(0, 1.0), (1, 2.5)]);
        assert!(m.matches(&[("book".into(), "FX1".into())]));
        assert!(!m.matches(&[("book".into(), "FX2".into())]));

        let unknown = json!({"channel":"metrics.trading","tenant":"t1","values":{"var":1}});
        assert_eq!(
            parse_event(&unknown, &cat, RULES).unwrap_err().code,
            ErrorCode::UnknownMetric
        );
        let future = json!({"channel":"metrics.risk","tenant":"t1","ts":RULES.now_us + 61_000_000,
            "values":{"var":1}});
        assert!(parse_event(&future, &cat, RULES).is_err());
        let nan = json!({"channel":"metrics.risk","tenant":"t1","values":{"var":"x"}});
        assert!(parse_event(&nan, &cat, RULES).is_err());
        let no_tenant = json!({"channel":"metrics.risk","values":{"var":1}});
        assert!(parse_event(&no_tenant, &cat, RULES).is_err());
    }

    #[test]
    fn reliable_events_need_their_fields() {
        let cat = cat();
        let alert = json!({"channel":"alerts","tenant":"t1","data":{"level":"critical",
            "kind":"loss_limit","message":"m","current":95000,"threshold":100000}});
        assert!(matches!(
            parse_event(&alert, &cat, RULES),
            Ok(Event::Reliable(_))
        ));
        for bad_event in [
            json!({"channel":"alerts","tenant":"t1","data":{"level":"loud","kind":"k","message":"m"}}),
            json!({"channel":"alerts","tenant":"t1","data":{"level":"info","kind":"k","message":"m","seq":1}}),
            json!({"channel":"sessions","tenant":"t1","data":{"session":"s","status":"nope"}}),
            json!({"channel":"notifications","tenant":"t1","data":{"title":"x"}}),
            json!({"channel":"alerts","tenant":"t1","sub":"u1","data":{"level":"info","kind":"k","message":"m"}}),
            json!({"channel":"prices","tenant":"t1","data":{}}),
            json!({"channel":"nope","tenant":"t1","data":{}}),
        ] {
            assert!(
                parse_event(&bad_event, &cat, RULES).is_err(),
                "{bad_event} was accepted"
            );
        }
        let note = json!({"channel":"notifications","tenant":"t1","sub":"u1","data":{"title":"x"}});
        let Ok(Event::Reliable(r)) = parse_event(&note, &cat, RULES) else {
            panic!("notification refused")
        };
        assert_eq!(r.sub.as_deref(), Some("u1"));
    }

    #[test]
    fn a_broadcast_needs_the_right_and_a_tenant_wide_reliable_channel() {
        let cat = cat();
        let notice = json!({"channel":"alerts","tenant":"*","data":{"level":"info",
            "kind":"maintenance","message":"m"}});
        let err = parse_event(&notice, &cat, RULES).unwrap_err();
        assert_eq!(err.code, ErrorCode::Forbidden);
        let admin = EventRules {
            may_broadcast: true,
            ..RULES
        };
        assert!(parse_event(&notice, &cat, admin).is_ok());
        for elsewhere in [
            json!({"channel":"notifications","tenant":"*","sub":"u","data":{}}),
            json!({"channel":"metrics.pnl","tenant":"*","values":{"total_pnl":1}}),
        ] {
            let err = parse_event(&elsewhere, &cat, admin).unwrap_err();
            assert_eq!(err.code, ErrorCode::BadRequest, "{elsewhere}");
        }
    }

    #[test]
    fn a_batch_reports_the_first_bad_index() {
        let cat = cat();
        let body = br#"[{"channel":"metrics.pnl","tenant":"t","values":{"total_pnl":1}},
            {"channel":"metrics.pnl","tenant":"t","values":{"bogus":1}}]"#;
        let (index, err) = parse_batch(body, &cat, RULES).unwrap_err();
        assert_eq!((index, err.code), (1, ErrorCode::UnknownMetric));
        assert_eq!(parse_batch(b"{}", &cat, RULES).unwrap_err().0, 0);
        assert_eq!(parse_batch(b"[", &cat, RULES).unwrap_err().0, 0);
    }
}
