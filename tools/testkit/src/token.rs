//! Tokens as `quotecast token` mints them: HS256 over `sub`, `tenant`,
//! `roles` and `exp` (see docs/PROTOCOL.md, Authentication).

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};

/// The claims of user `sub` of `tenant` with `roles`, expiring `ttl_s`
/// seconds from now (negative: already expired).
pub fn claims(sub: &str, tenant: &str, roles: &[&str], ttl_s: i64) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    json!({"sub": sub, "tenant": tenant, "roles": roles, "exp": now + ttl_s})
}

/// Signs `claims` with HS256 and `secret`.
pub fn hs256(secret: &str, claims: &Value) -> String {
    sign_hmac(Algorithm::HS256, secret, claims)
}

/// Signs `claims` with an HMAC algorithm (HS256, HS384, HS512) and `secret`.
///
/// # Panics
///
/// With a non-HMAC `alg`: a secret is no key for it.
pub fn sign_hmac(alg: Algorithm, secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap_or_else(|e| panic!("{alg:?} is not an HMAC algorithm: {e}"))
}

/// A fresh random secret: 32 bytes, hex.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_claims_verify_with_the_secret() {
        let c = claims("u", "t", &["TRADER"], 60);
        let token = hs256("s", &c);
        let mut v = jsonwebtoken::Validation::new(Algorithm::HS256);
        v.required_spec_claims.clear();
        let got = jsonwebtoken::decode::<Value>(
            &token,
            &jsonwebtoken::DecodingKey::from_secret(b"s"),
            &v,
        )
        .unwrap();
        assert_eq!(got.claims, c);
        assert_eq!(new_secret().len(), 64);
    }
}
