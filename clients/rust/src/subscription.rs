//! What a client subscribes to; kept by the client and sent again after a
//! reconnect.

use serde_json::{json, Value};

/// One subscription.
#[derive(Debug, Clone, PartialEq)]
pub enum Subscription {
    /// `prices` of these symbols.
    Prices(Vec<String>),
    /// A `metrics.*` channel; `options` holds the op's optional fields
    /// (`metrics`, `window_ms`, `agg`, `filters`) as the protocol spells them.
    Metrics {
        /// The channel, e.g. `metrics.trading`.
        channel: String,
        /// Optional fields of the subscribe op.
        options: serde_json::Map<String, Value>,
    },
    /// A reliable channel (`alerts`, `sessions`, `notifications`), resumed
    /// after a reconnect from the last `seq` received.
    Reliable {
        /// The channel.
        channel: String,
        /// Replay the messages after this `seq` on the first connect.
        since: Option<u64>,
    },
}

impl Subscription {
    /// The channel it is on.
    pub fn channel(&self) -> &str {
        match self {
            Subscription::Prices(_) => "prices",
            Subscription::Metrics { channel, .. } | Subscription::Reliable { channel, .. } => {
                channel
            }
        }
    }

    /// The `subscribe` op with `id`; a reliable one resumes after `resume_after`
    /// when given (else after its own `since`).
    pub fn op(&self, id: u64, resume_after: Option<u64>) -> Value {
        let mut op = json!({"op": "subscribe", "id": id, "channel": self.channel()});
        match self {
            Subscription::Prices(symbols) => op["symbols"] = json!(symbols),
            Subscription::Metrics { options, .. } => {
                for (k, v) in options {
                    op[k] = v.clone();
                }
            }
            Subscription::Reliable { since, .. } => {
                if let Some(since) = resume_after.or(*since) {
                    op["since"] = since.into();
                }
            }
        }
        op
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reliable_ops_resume_from_the_last_seq() {
        let s = Subscription::Reliable {
            channel: "alerts".into(),
            since: Some(3),
        };
        assert_eq!(s.op(1, None)["since"], 3);
        assert_eq!(s.op(2, Some(41))["since"], 41);
        let p = Subscription::Prices(vec!["EURUSD".into()]);
        assert_eq!(
            p.op(5, Some(9)),
            json!({"op":"subscribe","id":5,"channel":"prices","symbols":["EURUSD"]})
        );
    }
}
