//! Tokens for the auth unit tests: a fixed secret and clock, a valid payload
//! and signers for any header and payload, valid or not.

use super::Verifier;
use crate::config::AuthConfig;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Value};

pub const SECRET: &[u8] = b"test-secret-of-a-reasonable-length!!";
pub const NOW: u64 = 1_763_769_600;

pub fn cfg() -> AuthConfig {
    AuthConfig::default()
}

pub fn verifier() -> Verifier {
    Verifier::from_config(&cfg(), Some(SECRET)).unwrap()
}

pub fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

/// Signs any header and payload, valid or not, with `alg` and `secret`.
pub fn sign_raw(header: &Value, payload: &Value, alg: Algorithm, secret: &[u8]) -> String {
    let message = format!("{}.{}", b64(header), b64(payload));
    let key = EncodingKey::from_secret(secret);
    let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &key, alg).unwrap();
    format!("{message}.{sig}")
}

pub fn sign(payload: &Value) -> String {
    sign_raw(
        &json!({"alg": "HS256", "typ": "JWT"}),
        payload,
        Algorithm::HS256,
        SECRET,
    )
}

pub fn good() -> Value {
    json!({"sub": "u1", "tenant": "t1", "roles": ["trader"], "exp": NOW + 60})
}

pub fn with(key: &str, value: Value) -> Value {
    let mut p = good();
    p[key] = value;
    p
}

pub fn without(key: &str) -> Value {
    let mut p = good();
    p.as_object_mut().unwrap().remove(key);
    p
}

pub fn reason(v: &Verifier, token: &str) -> &'static str {
    v.verify(token, NOW).unwrap_err().reason()
}
