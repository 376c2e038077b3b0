//! [`Verifier`]: the order of checks of the module docs, and [`AuthError`],
//! one refusal per step.

use super::jws::Parts;
use super::keys::{self, KeyEntry, KeyError};
use super::payload::ClaimRules;
use super::Claims;
use crate::config::{AuthConfig, JwtAlg};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::str::FromStr;

/// Why a token was refused. [`AuthError::reason`] is the PROTOCOL.md wire string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No bearer header and no `access_token` query parameter.
    #[error("no token: send Authorization: Bearer <jwt> or ?access_token=<jwt>")]
    MissingToken,
    /// Not a compact JWS: size, part count, base64url, JSON, or a `crit` header.
    #[error("malformed token")]
    MalformedToken,
    /// The signature does not match the key.
    #[error("bad token signature")]
    BadSignature,
    /// `alg` is `none` or outside the configured allow-list.
    #[error("token algorithm not allowed")]
    AlgorithmNotAllowed,
    /// `exp` is in the past by more than the leeway.
    #[error("token expired")]
    TokenExpired,
    /// `nbf` is in the future by more than the leeway.
    #[error("token not yet valid")]
    TokenNotYetValid,
    /// A required claim is absent, or a claim has the wrong type.
    #[error("token claim missing or of the wrong type")]
    MissingClaim,
    /// `iss` is absent or not the configured issuer.
    #[error("wrong token issuer")]
    WrongIssuer,
    /// `aud` is absent or does not name the configured audience.
    #[error("wrong token audience")]
    WrongAudience,
    /// No configured key matches the token's `alg` and `kid`.
    #[error("unknown token key")]
    UnknownKey,
}

impl AuthError {
    /// The `reason` string of the `401` body, as listed in PROTOCOL.md.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::MissingToken => "missing_token",
            AuthError::MalformedToken => "malformed_token",
            AuthError::BadSignature => "bad_signature",
            AuthError::AlgorithmNotAllowed => "algorithm_not_allowed",
            AuthError::TokenExpired => "token_expired",
            AuthError::TokenNotYetValid => "token_not_yet_valid",
            AuthError::MissingClaim => "missing_claim",
            AuthError::WrongIssuer => "wrong_issuer",
            AuthError::WrongAudience => "wrong_audience",
            AuthError::UnknownKey => "unknown_key",
        }
    }

    /// The `401` response body: `{"error":"unauthorized","reason":"<reason>"}`.
    pub fn json_body(&self) -> String {
        format!(r#"{{"error":"unauthorized","reason":"{}"}}"#, self.reason())
    }
}

/// Checks tokens against an algorithm allow-list, a key set and the
/// configured leeway, issuer and audience. Cheap to clone; share one per process.
#[derive(Debug, Clone)]
pub struct Verifier {
    allowed: Vec<Algorithm>,
    /// The HS256 secret, present exactly when HS256 is allowed; it serves any `kid`.
    hs256: Option<DecodingKey>,
    /// Public keys by `kid`: a token's `kid` is only ever a key into this map.
    keys: HashMap<String, KeyEntry>,
    rules: ClaimRules,
}

impl Verifier {
    /// Builds the verifier from `cfg`: reads every PEM file and the JWKS file
    /// now, so a bad key stops the start instead of refusing tokens later.
    /// `hs256_secret` is needed exactly when `cfg.algorithms` lists HS256.
    pub fn from_config(
        cfg: &AuthConfig,
        hs256_secret: Option<&[u8]>,
    ) -> Result<Verifier, KeyError> {
        let hs256 = match (cfg.allows(JwtAlg::HS256), hs256_secret) {
            (true, Some(secret)) => Some(DecodingKey::from_secret(secret)),
            (true, None) => {
                return Err(KeyError(
                    "auth.algorithms lists HS256 but no secret was loaded".into(),
                ))
            }
            (false, _) => None,
        };
        Ok(Verifier {
            allowed: cfg.algorithms.iter().map(|a| keys::algorithm(*a)).collect(),
            hs256,
            keys: keys::load(cfg)?,
            rules: ClaimRules::new(cfg),
        })
    }

    /// Verifies `token` at UNIX time `now_s`; see the module docs for the order of checks.
    pub fn verify(&self, token: &str, now_s: u64) -> Result<Claims, AuthError> {
        let parts = Parts::split(token)?;
        let alg = self.allowed_alg(&parts.header)?;
        if parts.header.contains_key("crit") {
            return Err(AuthError::MalformedToken);
        }
        let kid = match parts.header.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.as_str()),
            Some(_) => return Err(AuthError::MalformedToken),
        };
        let key = self.key_for(alg, kid)?;
        let signed = parts.signed.as_bytes();
        if !matches!(
            jsonwebtoken::crypto::verify(parts.signature, signed, key, alg),
            Ok(true)
        ) {
            return Err(AuthError::BadSignature);
        }
        self.rules.check(&parts.payload, now_s)
    }

    /// [`Verifier::verify`] at the current system time.
    pub fn verify_now(&self, token: &str) -> Result<Claims, AuthError> {
        self.verify(token, unix_now())
    }

    fn allowed_alg(&self, header: &Map<String, Value>) -> Result<Algorithm, AuthError> {
        let name = match header.get("alg") {
            Some(Value::String(name)) => name,
            _ => return Err(AuthError::MalformedToken),
        };
        // `Algorithm::from_str` is case-sensitive and has no `none`, so every
        // spelling of `none` lands here too.
        match Algorithm::from_str(name) {
            Ok(alg) if self.allowed.contains(&alg) => Ok(alg),
            _ => Err(AuthError::AlgorithmNotAllowed),
        }
    }

    /// HS256 uses the secret whatever the `kid`; every other algorithm needs a
    /// `kid` naming a loaded key of that same algorithm.
    fn key_for(&self, alg: Algorithm, kid: Option<&str>) -> Result<&DecodingKey, AuthError> {
        if alg == Algorithm::HS256 {
            return self.hs256.as_ref().ok_or(AuthError::UnknownKey);
        }
        match kid.and_then(|kid| self.keys.get(kid)) {
            Some(entry) if keys::algorithm(entry.alg) == alg => Ok(&entry.key),
            _ => Err(AuthError::UnknownKey),
        }
    }
}

/// Seconds since the UNIX epoch by the server's one clock.
pub(super) fn unix_now() -> u64 {
    crate::clock::now_us() / 1_000_000
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn alg_none_in_every_spelling_is_not_allowed() {
        for alg in ["none", "None", "NONE", "nOnE"] {
            let header = b64(&json!({"alg": alg, "typ": "JWT"}));
            for sig in ["", "c2ln"] {
                let token = format!("{header}.{}.{sig}", b64(&good()));
                assert_eq!(
                    reason(&verifier(), &token),
                    "algorithm_not_allowed",
                    "{alg}"
                );
            }
        }
    }

    #[test]
    fn algorithm_outside_the_list_is_not_allowed() {
        let hs384 = sign_raw(&json!({"alg": "HS384"}), &good(), Algorithm::HS384, SECRET);
        assert_eq!(reason(&verifier(), &hs384), "algorithm_not_allowed");
        let rs256 = format!("{}.{}.c2ln", b64(&json!({"alg": "RS256"})), b64(&good()));
        assert_eq!(reason(&verifier(), &rs256), "algorithm_not_allowed");
        let lower = format!("{}.{}.c2ln", b64(&json!({"alg": "hs256"})), b64(&good()));
        assert_eq!(reason(&verifier(), &lower), "algorithm_not_allowed");
    }

    #[test]
    fn missing_or_non_string_alg_is_malformed() {
        for header in [json!({"typ": "JWT"}), json!({"alg": 256})] {
            let token = sign_raw(&header, &good(), Algorithm::HS256, SECRET);
            assert_eq!(reason(&verifier(), &token), "malformed_token");
        }
    }

    #[test]
    fn tampered_payload_is_bad_signature() {
        let token = sign(&good());
        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        parts[1] = b64(&with("tenant", json!("t2")));
        assert_eq!(reason(&verifier(), &parts.join(".")), "bad_signature");
    }

    #[test]
    fn other_secret_is_bad_signature() {
        let other = Verifier::from_config(&cfg(), Some(b"another-secret")).unwrap();
        assert_eq!(reason(&other, &sign(&good())), "bad_signature");
    }

    #[test]
    fn crit_header_is_malformed() {
        let header = json!({"alg": "HS256", "crit": ["exp"]});
        let token = sign_raw(&header, &good(), Algorithm::HS256, SECRET);
        assert_eq!(reason(&verifier(), &token), "malformed_token");
    }

    #[test]
    fn hs256_ignores_kid_but_it_must_be_a_string() {
        let header = json!({"alg": "HS256", "kid": "k1"});
        let token = sign_raw(&header, &good(), Algorithm::HS256, SECRET);
        assert!(verifier().verify(&token, NOW).is_ok());
        let bad_kid = json!({"alg": "HS256", "kid": 1});
        let token = sign_raw(&bad_kid, &good(), Algorithm::HS256, SECRET);
        assert_eq!(reason(&verifier(), &token), "malformed_token");
    }

    #[test]
    fn reasons_match_the_protocol() {
        let all = [
            (AuthError::MissingToken, "missing_token"),
            (AuthError::MalformedToken, "malformed_token"),
            (AuthError::BadSignature, "bad_signature"),
            (AuthError::AlgorithmNotAllowed, "algorithm_not_allowed"),
            (AuthError::TokenExpired, "token_expired"),
            (AuthError::TokenNotYetValid, "token_not_yet_valid"),
            (AuthError::MissingClaim, "missing_claim"),
            (AuthError::WrongIssuer, "wrong_issuer"),
            (AuthError::WrongAudience, "wrong_audience"),
            (AuthError::UnknownKey, "unknown_key"),
        ];
        for (err, reason) in all {
            assert_eq!(err.reason(), reason);
        }
        assert_eq!(
            AuthError::TokenExpired.json_body(),
            r#"{"error":"unauthorized","reason":"token_expired"}"#
        );
    }
}
