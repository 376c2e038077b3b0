//! Decoding shared by every op: the simd-json parse, the guard that gives an
//! op one meaning, and typed reads of its fields with the errors PROTOCOL.md
//! promises.

use crate::protocol::{ErrorCode, OpError};
use simd_json::borrowed::{Object, Value};
use simd_json::prelude::*;

/// Most members an op object may have (ops use five at most).
const MAX_OP_MEMBERS: usize = 32;

/// Parses `text` (used as simd-json scratch) into the op's JSON object.
pub(super) fn object(text: &mut [u8]) -> Result<Object<'_>, OpError> {
    let refuse = |message: String| OpError::new(None, ErrorCode::BadRequest, message);
    let value =
        simd_json::to_borrowed_value(text).map_err(|e| refuse(format!("invalid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(refuse("an op must be a JSON object".into()));
    };
    // simd-json keeps repeated keys in objects of up to 32 members (a lookup
    // finds the first) and keeps the last in larger ones (found by the
    // op_decoder fuzz target): refuse both shapes so an op has one meaning.
    if obj.len() > MAX_OP_MEMBERS {
        return Err(refuse(format!(
            "an op has at most {MAX_OP_MEMBERS} members"
        )));
    }
    if obj
        .keys()
        .enumerate()
        .any(|(i, k)| obj.keys().take(i).any(|seen| seen == k))
    {
        return Err(refuse("an op must not repeat a key".into()));
    }
    Ok(*obj)
}

/// The fields of one op object, read with the op's `id` on every error.
pub(super) struct Fields<'v, 'a> {
    obj: &'v Object<'a>,
    /// The op's `id`, when it has a valid one.
    pub(super) id: Option<u64>,
    /// Most names a list field (`symbols`, `metrics`) may hold.
    max_names: usize,
}

impl<'v, 'a> Fields<'v, 'a> {
    /// Reads `id` first, so every later error can carry it.
    pub(super) fn new(obj: &'v Object<'a>, max_names: usize) -> Result<Self, OpError> {
        let mut fields = Fields {
            obj,
            id: None,
            max_names,
        };
        fields.id = fields.number("id")?;
        Ok(fields)
    }

    /// Refuses the first member that is neither `op`, `id` nor one of
    /// `fields` with `unknown_field`: an op the server would read only in
    /// part must not be applied.
    pub(super) fn only(&self, fields: &[&str]) -> Result<(), OpError> {
        let known = |k: &str| k == "op" || k == "id" || fields.contains(&k);
        match self.obj.keys().find(|k| !known(k)) {
            None => Ok(()),
            Some(k) => Err(OpError::new(
                self.id,
                ErrorCode::UnknownField,
                k.to_string(),
            )),
        }
    }

    /// The raw value of `field`.
    pub(super) fn get(&self, field: &str) -> Option<&'v Value<'a>> {
        self.obj.get(field)
    }

    /// A `bad_request` error for this op.
    pub(super) fn bad(&self, message: impl Into<String>) -> OpError {
        OpError::new(self.id, ErrorCode::BadRequest, message)
    }

    /// The error for a required `field` that is absent.
    pub(super) fn missing(&self, field: &str) -> OpError {
        self.bad(format!("missing field {field}"))
    }

    /// An optional string field.
    pub(super) fn text(&self, field: &str) -> Result<Option<&'v str>, OpError> {
        self.get(field)
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| self.bad(format!("{field} must be a string")))
            })
            .transpose()
    }

    /// An optional unsigned integer field.
    pub(super) fn number(&self, field: &str) -> Result<Option<u64>, OpError> {
        self.get(field)
            .map(|v| {
                v.as_u64()
                    .ok_or_else(|| self.bad(format!("{field} must be an unsigned integer")))
            })
            .transpose()
    }

    /// The required `channel` field.
    pub(super) fn channel(&self) -> Result<String, OpError> {
        let channel = self.text("channel")?;
        Ok(channel.ok_or_else(|| self.missing("channel"))?.to_owned())
    }

    /// An optional list of names (`symbols`, `metrics`), at most `max_names` long.
    pub(super) fn names(&self, field: &str) -> Result<Option<Vec<String>>, OpError> {
        let Some(v) = self.get(field) else {
            return Ok(None);
        };
        let not_list = || self.bad(format!("{field} must be an array of strings"));
        let arr = v.as_array().ok_or_else(not_list)?;
        if arr.len() > self.max_names {
            return Err(self.bad(format!("at most {} {field} per op", self.max_names)));
        }
        arr.iter()
            .map(|s| s.as_str().map(str::to_owned).ok_or_else(not_list))
            .collect::<Result<_, _>>()
            .map(Some)
    }
}
