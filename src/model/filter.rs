//! Filters on reliable channels: a subscriber asks for messages whose
//! top-level `data` fields equal a value or are one of a set
//! (`{"level":["critical","warning"],"book":"FX1"}`). Checked on the shard,
//! for live messages and for the `since` replay alike.

use serde_json::{Map, Value};

/// Most fields one filter may name.
pub const MAX_FILTER_FIELDS: usize = 16;
/// Most values one field of a filter may list.
pub const MAX_FILTER_VALUES: usize = 64;

/// A value a filter compares a `data` field with.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    /// A JSON string.
    Text(String),
    /// A JSON number (compared as `f64`, so `1` equals `1.0`).
    Number(f64),
    /// A JSON boolean.
    Bool(bool),
}

impl Scalar {
    fn matches(&self, v: &Value) -> bool {
        match (self, v) {
            (Scalar::Text(a), Value::String(b)) => a == b,
            (Scalar::Number(a), Value::Number(b)) => b.as_f64() == Some(*a),
            (Scalar::Bool(a), Value::Bool(b)) => a == b,
            _ => false,
        }
    }
}

/// Field → allowed values; a message passes when every field is present
/// in its `data` with one of its values.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DataFilter {
    /// Sorted by field name, each field once, each with at least one value.
    pub fields: Vec<(String, Vec<Scalar>)>,
}

impl DataFilter {
    /// Whether `data` passes the filter.
    pub fn matches(&self, data: &Map<String, Value>) -> bool {
        self.fields.iter().all(|(field, values)| {
            data.get(field)
                .is_some_and(|v| values.iter().any(|s| s.matches(v)))
        })
    }

    /// The first field not in `allowed` (`None` = every field allowed).
    pub fn first_outside<'a>(&'a self, allowed: Option<&[String]>) -> Option<&'a str> {
        let allowed = allowed?;
        self.fields
            .iter()
            .map(|(f, _)| f.as_str())
            .find(|f| !allowed.iter().any(|a| a == f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equality_and_set_membership_on_top_level_fields() {
        let filter = DataFilter {
            fields: vec![
                ("book".into(), vec![Scalar::Text("FX1".into())]),
                (
                    "level".into(),
                    vec![
                        Scalar::Text("critical".into()),
                        Scalar::Text("warning".into()),
                    ],
                ),
            ],
        };
        let data = |v: Value| v.as_object().unwrap().clone();
        assert!(filter.matches(&data(json!({"level":"warning","book":"FX1","x":1}))));
        assert!(!filter.matches(&data(json!({"level":"info","book":"FX1"}))));
        assert!(
            !filter.matches(&data(json!({"level":"critical"}))),
            "book missing"
        );
        assert!(!filter.matches(&data(json!({"level":"critical","book":1}))));
        let numeric = DataFilter {
            fields: vec![("n".into(), vec![Scalar::Number(1.0), Scalar::Bool(true)])],
        };
        assert!(numeric.matches(&data(json!({"n":1}))));
        assert!(numeric.matches(&data(json!({"n":true}))));
        assert!(!numeric.matches(&data(json!({"n":"1"}))));
        assert_eq!(filter.first_outside(None), None);
        assert_eq!(filter.first_outside(Some(&["book".into()])), Some("level"));
    }
}
