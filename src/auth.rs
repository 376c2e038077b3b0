//! Token verification and minting (shared by `serve` and `quotecast token`).
//!
//! [`Verifier::verify`] checks a compact JWS in a fixed order, so every
//! refusal has one documented [`AuthError::reason`]:
//!
//! 1. size (at most [`MAX_TOKEN_BYTES`]), exactly three parts, header and
//!    payload base64url JSON objects, signature base64url → `malformed_token`
//! 2. `alg` on the configured allow-list (never `none`) → `algorithm_not_allowed`
//! 3. no `crit` header (we understand no extensions) → `malformed_token`
//! 4. a key for `alg` and `kid` → `unknown_key`
//! 5. signature → `bad_signature`
//! 6. `sub`, `tenant`, `roles`, `exp` present and well typed; `nbf`, `iat`,
//!    `symbols` well typed when present → `missing_claim`
//! 7. `exp` + leeway ≥ now → `token_expired`; `nbf` − leeway ≤ now → `token_not_yet_valid`
//! 8. `iss`, then `aud`, when configured: required and equal →
//!    `wrong_issuer` / `wrong_audience`
//!
//! The claims are checked here rather than by `jsonwebtoken::decode`, which
//! reads the system clock and would not let tests set `now`; jsonwebtoken
//! only does the signature arithmetic.

use crate::config::AuthConfig;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Largest token accepted; a longer one is `malformed_token` before any decoding.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Environment variable holding the HS256 secret; wins over the secret file.
pub const SECRET_ENV: &str = "QUOTECAST_JWT_HS256_SECRET";

/// The verified identity behind a connection or request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// Tenant the user belongs to; isolates metric, alert, session and notification streams.
    pub tenant: String,
    /// Roles, upper-cased on verification (`trader` becomes `TRADER`).
    pub roles: Vec<String>,
    /// Expiry, UNIX seconds.
    pub exp: u64,
    /// Symbols this token may see; `None` = every symbol the tenant is entitled to.
    pub symbols: Option<Vec<String>>,
}

impl Claims {
    /// Whether the token holds `role` (upper-case).
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Whether the token holds at least one of `allowed`.
    pub fn has_any_role<S: AsRef<str>>(&self, allowed: &[S]) -> bool {
        allowed.iter().any(|a| self.has_role(a.as_ref()))
    }
}

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

/// One verification key. Later: RS256/ES256/EdDSA from PEM or JWKS, named by `kid`.
#[derive(Debug, Clone)]
struct KeyEntry {
    alg: Algorithm,
    /// `None` matches a token with any or no `kid` (a single-key setup).
    kid: Option<String>,
    key: DecodingKey,
}

/// Checks tokens against an algorithm allow-list, a key set and the
/// configured leeway, issuer and audience. Cheap to clone; share one per process.
#[derive(Debug, Clone)]
pub struct Verifier {
    allowed: Vec<Algorithm>,
    keys: Vec<KeyEntry>,
    leeway_s: u64,
    issuer: Option<String>,
    audience: Option<String>,
}

impl Verifier {
    /// A verifier accepting only HS256 tokens signed with `secret`.
    pub fn hs256(secret: &[u8], cfg: &AuthConfig) -> Verifier {
        Verifier {
            allowed: vec![Algorithm::HS256],
            keys: vec![KeyEntry {
                alg: Algorithm::HS256,
                kid: None,
                key: DecodingKey::from_secret(secret),
            }],
            leeway_s: cfg.leeway_s,
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
        }
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
        self.check_claims(&parts.payload, now_s)
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

    /// The key seam: an exact `kid` match first, then a key without a `kid`.
    fn key_for(&self, alg: Algorithm, kid: Option<&str>) -> Result<&DecodingKey, AuthError> {
        let for_alg = || self.keys.iter().filter(move |k| k.alg == alg);
        for_alg()
            .find(|k| kid.is_some() && k.kid.as_deref() == kid)
            .or_else(|| for_alg().find(|k| k.kid.is_none()))
            .map(|k| &k.key)
            .ok_or(AuthError::UnknownKey)
    }

    fn check_claims(&self, p: &Map<String, Value>, now_s: u64) -> Result<Claims, AuthError> {
        let sub = required_string(p, "sub")?;
        let tenant = required_string(p, "tenant")?;
        let roles = match p.get("roles") {
            Some(Value::Array(items)) => strings(items)?
                .into_iter()
                .map(|r| r.to_ascii_uppercase())
                .collect(),
            _ => return Err(AuthError::MissingClaim),
        };
        let exp = numeric_date(p.get("exp").ok_or(AuthError::MissingClaim)?)?;
        let nbf = p.get("nbf").map(numeric_date).transpose()?;
        if let Some(iat) = p.get("iat") {
            numeric_date(iat)?;
        }
        let symbols = match p.get("symbols") {
            None => None,
            Some(Value::Array(items)) => Some(strings(items)?),
            Some(_) => return Err(AuthError::MissingClaim),
        };

        if exp.saturating_add(self.leeway_s) < now_s {
            return Err(AuthError::TokenExpired);
        }
        if nbf.is_some_and(|nbf| nbf > now_s.saturating_add(self.leeway_s)) {
            return Err(AuthError::TokenNotYetValid);
        }
        if let Some(issuer) = &self.issuer {
            if p.get("iss").and_then(Value::as_str) != Some(issuer.as_str()) {
                return Err(AuthError::WrongIssuer);
            }
        }
        if let Some(audience) = &self.audience {
            let names = |v: &Value| v.as_str() == Some(audience.as_str());
            let ok = match p.get("aud") {
                Some(Value::String(aud)) => aud == audience,
                Some(Value::Array(auds)) => auds.iter().any(names),
                _ => false,
            };
            if !ok {
                return Err(AuthError::WrongAudience);
            }
        }
        Ok(Claims {
            sub,
            tenant,
            roles,
            exp,
            symbols,
        })
    }
}

/// A compact JWS taken apart, before any trust is placed in it.
struct Parts<'a> {
    header: Map<String, Value>,
    payload: Map<String, Value>,
    /// `header.payload`, the bytes the signature covers.
    signed: &'a str,
    /// The base64url signature as sent.
    signature: &'a str,
}

impl<'a> Parts<'a> {
    fn split(token: &'a str) -> Result<Parts<'a>, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::MalformedToken);
        }
        let mut it = token.split('.');
        let (Some(h), Some(p), Some(signature), None) =
            (it.next(), it.next(), it.next(), it.next())
        else {
            return Err(AuthError::MalformedToken);
        };
        URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| AuthError::MalformedToken)?;
        Ok(Parts {
            header: json_object(h)?,
            payload: json_object(p)?,
            signed: &token[..h.len() + 1 + p.len()],
            signature,
        })
    }
}

fn json_object(part: &str) -> Result<Map<String, Value>, AuthError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| AuthError::MalformedToken)?;
    serde_json::from_slice(&bytes).map_err(|_| AuthError::MalformedToken)
}

fn required_string(p: &Map<String, Value>, name: &str) -> Result<String, AuthError> {
    match p.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(AuthError::MissingClaim),
    }
}

fn strings(items: &[Value]) -> Result<Vec<String>, AuthError> {
    items
        .iter()
        .map(|v| v.as_str().map(String::from).ok_or(AuthError::MissingClaim))
        .collect()
}

/// A JWT NumericDate: non-negative seconds, fractions truncated.
fn numeric_date(v: &Value) -> Result<u64, AuthError> {
    if let Some(n) = v.as_u64() {
        return Ok(n);
    }
    match v.as_f64() {
        Some(f) if f.is_finite() && f >= 0.0 && f < u64::MAX as f64 => Ok(f as u64),
        _ => Err(AuthError::MissingClaim),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Takes the token from `Authorization: Bearer <jwt>` (scheme matched
/// case-insensitively) or else from the `access_token` query parameter
/// (percent-decoded, `+` as space). A non-Bearer header falls through to the query.
pub fn token_from_request(
    authorization: Option<&str>,
    query: Option<&str>,
) -> Result<String, AuthError> {
    if let Some((scheme, token)) = authorization.and_then(|h| h.trim().split_once([' ', '\t'])) {
        let token = token.trim();
        if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() {
            return Ok(token.to_string());
        }
    }
    let query = query.unwrap_or("");
    for pair in query.strip_prefix('?').unwrap_or(query).split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if percent_decode(name).as_deref() != Some("access_token") {
            continue;
        }
        return match percent_decode(value) {
            None => Err(AuthError::MalformedToken),
            Some(token) if token.is_empty() => Err(AuthError::MissingToken),
            Some(token) => Ok(token),
        };
    }
    Err(AuthError::MissingToken)
}

/// Decodes `%XX` escapes and `+`; `None` for a broken escape or invalid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = hex(*bytes.get(i + 1)?)?;
                let lo = hex(*bytes.get(i + 2)?)?;
                out.push((hi << 4) | lo);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// What `quotecast token` (and dev mode) puts in a new token.
#[derive(Debug, Clone)]
pub struct MintRequest {
    /// User id.
    pub sub: String,
    /// Tenant.
    pub tenant: String,
    /// Roles; written upper-cased.
    pub roles: Vec<String>,
    /// Lifetime: `exp` = now + `ttl` (whole seconds).
    pub ttl: Duration,
    /// Optional symbol allow-list.
    pub symbols: Option<Vec<String>>,
}

/// Mints an HS256 token issued now (`iat`) and expiring after `req.ttl`.
pub fn mint_hs256(secret: &[u8], req: &MintRequest) -> String {
    mint_hs256_at(secret, req, unix_now())
}

/// [`mint_hs256`] with `iat` = `now_s`, for tests that control time.
pub fn mint_hs256_at(secret: &[u8], req: &MintRequest, now_s: u64) -> String {
    #[derive(serde::Serialize)]
    struct Minted<'a> {
        sub: &'a str,
        tenant: &'a str,
        roles: Vec<String>,
        iat: u64,
        exp: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        symbols: Option<&'a [String]>,
    }
    let claims = Minted {
        sub: &req.sub,
        tenant: &req.tenant,
        roles: req.roles.iter().map(|r| r.to_ascii_uppercase()).collect(),
        iat: now_s,
        exp: now_s.saturating_add(req.ttl.as_secs()),
        symbols: req.symbols.as_deref(),
    };
    let key = EncodingKey::from_secret(secret);
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key)
        .expect("HS256 signing with an HMAC key and plain claims cannot fail")
}

/// Parses a token lifetime: `90s`, `15m`, `1h`, `2d`, or plain seconds (`3600`).
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (digits, unit) = match s.as_bytes().last().map(u8::to_ascii_lowercase) {
        Some(b's') => (&s[..s.len() - 1], 1),
        Some(b'm') => (&s[..s.len() - 1], 60),
        Some(b'h') => (&s[..s.len() - 1], 3_600),
        Some(b'd') => (&s[..s.len() - 1], 86_400),
        _ => (s, 1),
    };
    let bad = || format!("bad ttl {s:?}: expected e.g. 90s, 15m, 1h, 2d or plain seconds");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    match n.checked_mul(unit) {
        Some(0) => Err(format!("bad ttl {s:?}: must be more than 0")),
        Some(secs) => Ok(Duration::from_secs(secs)),
        None => Err(bad()),
    }
}

/// Where the HS256 secret came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// The `QUOTECAST_JWT_HS256_SECRET` environment variable.
    Env,
    /// `auth.hs256_secret_file`.
    File(PathBuf),
    /// Neither: a random secret for this process only (dev mode).
    Dev,
}

impl std::fmt::Display for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Env => write!(f, "env {SECRET_ENV}"),
            SecretSource::File(path) => write!(f, "file {}", path.display()),
            SecretSource::Dev => write!(f, "dev mode (random secret)"),
        }
    }
}

/// Loads the HS256 secret: `QUOTECAST_JWT_HS256_SECRET`, else
/// `auth.hs256_secret_file` (trailing newline trimmed), else 32 random bytes
/// as a 64-character hex string ([`SecretSource::Dev`]), printable so
/// `quotecast token` can use it. An empty env value or file is an error.
pub fn load_hs256_secret(cfg: &AuthConfig) -> std::io::Result<(Vec<u8>, SecretSource)> {
    load_secret_from(std::env::var_os(SECRET_ENV), cfg)
}

fn load_secret_from(
    env: Option<std::ffi::OsString>,
    cfg: &AuthConfig,
) -> std::io::Result<(Vec<u8>, SecretSource)> {
    use std::io::{Error, ErrorKind};
    use std::os::unix::ffi::OsStringExt;

    let empty = |what: String| Error::new(ErrorKind::InvalidData, format!("{what} is empty"));
    if let Some(value) = env {
        let secret = trim_newline(value.into_vec());
        if secret.is_empty() {
            return Err(empty(SECRET_ENV.to_string()));
        }
        return Ok((secret, SecretSource::Env));
    }
    if let Some(path) = &cfg.hs256_secret_file {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let secret = trim_newline(bytes);
        if secret.is_empty() {
            return Err(empty(format!("HS256 secret file {}", path.display())));
        }
        return Ok((secret, SecretSource::File(path.clone())));
    }
    let random: [u8; 32] = rand::random();
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    Ok((hex.into_bytes(), SecretSource::Dev))
}

fn trim_newline(mut bytes: Vec<u8>) -> Vec<u8> {
    while matches!(bytes.last(), Some(b'\n' | b'\r')) {
        bytes.pop();
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &[u8] = b"test-secret-of-a-reasonable-length!!";
    const NOW: u64 = 1_763_769_600;

    fn cfg() -> AuthConfig {
        AuthConfig::default()
    }

    fn verifier() -> Verifier {
        Verifier::hs256(SECRET, &cfg())
    }

    fn b64(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    }

    /// Signs any header and payload, valid or not, with `alg` and `secret`.
    fn sign_raw(header: &Value, payload: &Value, alg: Algorithm, secret: &[u8]) -> String {
        let message = format!("{}.{}", b64(header), b64(payload));
        let key = EncodingKey::from_secret(secret);
        let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &key, alg).unwrap();
        format!("{message}.{sig}")
    }

    fn sign(payload: &Value) -> String {
        sign_raw(
            &json!({"alg": "HS256", "typ": "JWT"}),
            payload,
            Algorithm::HS256,
            SECRET,
        )
    }

    fn good() -> Value {
        json!({"sub": "u1", "tenant": "t1", "roles": ["trader"], "exp": NOW + 60})
    }

    fn with(key: &str, value: Value) -> Value {
        let mut p = good();
        p[key] = value;
        p
    }

    fn without(key: &str) -> Value {
        let mut p = good();
        p.as_object_mut().unwrap().remove(key);
        p
    }

    fn reason(v: &Verifier, token: &str) -> &'static str {
        v.verify(token, NOW).unwrap_err().reason()
    }

    #[test]
    fn valid_token_gives_claims() {
        let token = sign(&with("symbols", json!(["EURUSD", "GBPUSD"])));
        let claims = verifier().verify(&token, NOW).unwrap();
        assert_eq!(claims.sub, "u1");
        assert_eq!(claims.tenant, "t1");
        assert_eq!(claims.roles, ["TRADER"]);
        assert_eq!(claims.exp, NOW + 60);
        assert_eq!(claims.symbols.unwrap(), ["EURUSD", "GBPUSD"]);
        assert!(verifier()
            .verify(&sign(&good()), NOW)
            .unwrap()
            .symbols
            .is_none());
    }

    #[test]
    fn minted_token_verifies() {
        let req = MintRequest {
            sub: "u7".into(),
            tenant: "t2".into(),
            roles: vec!["ADMIN".into(), "analyst".into()],
            ttl: Duration::from_secs(900),
            symbols: Some(vec!["EURUSD".into()]),
        };
        let claims = verifier()
            .verify(&mint_hs256_at(SECRET, &req, NOW), NOW)
            .unwrap();
        assert_eq!(claims.exp, NOW + 900);
        assert_eq!(claims.roles, ["ADMIN", "ANALYST"]);
        assert!(claims.has_any_role(&["TRADER", "ANALYST"]));
        assert!(!claims.has_role("TRADER"));
        assert_eq!(claims.symbols.unwrap(), ["EURUSD"]);
        assert!(verifier().verify_now(&mint_hs256(SECRET, &req)).is_ok());
    }

    #[test]
    fn empty_roles_are_allowed() {
        let claims = verifier().verify(&sign(&with("roles", json!([]))), NOW);
        assert!(claims.unwrap().roles.is_empty());
    }

    #[test]
    fn each_missing_claim_is_missing_claim() {
        for claim in ["sub", "tenant", "roles", "exp"] {
            assert_eq!(
                reason(&verifier(), &sign(&without(claim))),
                "missing_claim",
                "{claim}"
            );
        }
    }

    #[test]
    fn wrongly_typed_claims_are_missing_claim() {
        let cases = [
            ("sub", json!(42)),
            ("sub", json!("")),
            ("tenant", json!(null)),
            ("roles", json!("TRADER")),
            ("roles", json!(["TRADER", 1])),
            ("exp", json!("1763769660")),
            ("exp", json!(-1)),
            ("nbf", json!("soon")),
            ("iat", json!(true)),
            ("symbols", json!("EURUSD")),
            ("symbols", json!([1])),
        ];
        for (claim, value) in cases {
            let token = sign(&with(claim, value.clone()));
            assert_eq!(
                reason(&verifier(), &token),
                "missing_claim",
                "{claim}={value}"
            );
        }
    }

    #[test]
    fn fractional_exp_is_accepted() {
        let token = sign(&with("exp", json!((NOW + 60) as f64 + 0.5)));
        assert_eq!(verifier().verify(&token, NOW).unwrap().exp, NOW + 60);
    }

    #[test]
    fn expired_beyond_leeway_is_token_expired() {
        let token = sign(&with("exp", json!(NOW - 6)));
        assert_eq!(reason(&verifier(), &token), "token_expired");
    }

    #[test]
    fn expired_within_leeway_is_accepted() {
        let token = sign(&with("exp", json!(NOW - 5)));
        assert!(verifier().verify(&token, NOW).is_ok());
    }

    #[test]
    fn nbf_in_the_future_is_token_not_yet_valid() {
        let token = sign(&with("nbf", json!(NOW + 6)));
        assert_eq!(reason(&verifier(), &token), "token_not_yet_valid");
        let within = sign(&with("nbf", json!(NOW + 5)));
        assert!(verifier().verify(&within, NOW).is_ok());
    }

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
        let other = Verifier::hs256(b"another-secret", &cfg());
        assert_eq!(reason(&other, &sign(&good())), "bad_signature");
    }

    #[test]
    fn two_and_four_part_tokens_are_malformed() {
        let token = sign(&good());
        let (two, _) = token.rsplit_once('.').unwrap();
        assert_eq!(reason(&verifier(), two), "malformed_token");
        assert_eq!(
            reason(&verifier(), &format!("{token}.x")),
            "malformed_token"
        );
        assert_eq!(reason(&verifier(), ""), "malformed_token");
    }

    #[test]
    fn non_base64url_or_non_json_parts_are_malformed() {
        let token = sign(&good());
        let parts: Vec<&str> = token.split('.').collect();
        let not_json = URL_SAFE_NO_PAD.encode(b"{not json");
        let array = b64(&json!(["alg", "HS256"]));
        let cases = [
            format!("{}.{}.{}", "e30*", parts[1], parts[2]),
            format!("{}.{}.{}", not_json, parts[1], parts[2]),
            format!("{}.{}.{}", array, parts[1], parts[2]),
            format!("{}.{}.{}", parts[0], not_json, parts[2]),
            format!("{}.{}.{}", parts[0], parts[1], "sig+/="),
            format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
        ];
        for token in cases {
            assert_eq!(reason(&verifier(), &token), "malformed_token", "{token}");
        }
    }

    #[test]
    fn oversized_token_is_malformed() {
        let token = sign(&with("pad", json!("x".repeat(MAX_TOKEN_BYTES))));
        assert!(token.len() > MAX_TOKEN_BYTES);
        assert_eq!(reason(&verifier(), &token), "malformed_token");
    }

    #[test]
    fn crit_header_is_malformed() {
        let header = json!({"alg": "HS256", "crit": ["exp"]});
        let token = sign_raw(&header, &good(), Algorithm::HS256, SECRET);
        assert_eq!(reason(&verifier(), &token), "malformed_token");
    }

    #[test]
    fn kid_selects_the_key() {
        let header = json!({"alg": "HS256", "kid": "k1"});
        let token = sign_raw(&header, &good(), Algorithm::HS256, SECRET);
        // A key without a kid serves every kid.
        assert!(verifier().verify(&token, NOW).is_ok());
        let mut named = verifier();
        named.keys[0].kid = Some("k2".into());
        assert_eq!(reason(&named, &token), "unknown_key");
        named.keys[0].kid = Some("k1".into());
        assert!(named.verify(&token, NOW).is_ok());
        let bad_kid = json!({"alg": "HS256", "kid": 1});
        let token = sign_raw(&bad_kid, &good(), Algorithm::HS256, SECRET);
        assert_eq!(reason(&verifier(), &token), "malformed_token");
    }

    fn strict() -> Verifier {
        let mut cfg = cfg();
        cfg.issuer = Some("https://idp.example".into());
        cfg.audience = Some("quotecast".into());
        Verifier::hs256(SECRET, &cfg)
    }

    fn strict_claims() -> Value {
        let mut p = with("iss", json!("https://idp.example"));
        p["aud"] = json!("quotecast");
        p
    }

    #[test]
    fn iss_and_aud_are_ignored_when_not_configured() {
        let token = sign(&with("aud", json!("someone-else")));
        assert!(verifier().verify(&token, NOW).is_ok());
    }

    /// [`strict_claims`] with `key` set to `value`, or removed for `None`.
    fn strict_claims_with(key: &str, value: Option<serde_json::Value>) -> serde_json::Value {
        let mut p = strict_claims();
        match value {
            Some(v) => p[key] = v,
            None => {
                p.as_object_mut().unwrap().remove(key);
            }
        }
        p
    }

    #[test]
    fn configured_iss_and_aud_accept_matching_tokens() {
        assert!(strict().verify(&sign(&strict_claims()), NOW).is_ok());
        let mut p = strict_claims();
        p["aud"] = json!(["other", "quotecast"]);
        assert!(strict().verify(&sign(&p), NOW).is_ok());
    }

    #[test]
    fn configured_issuer_missing_or_wrong_is_wrong_issuer() {
        for iss in [None, Some(json!("https://evil.example")), Some(json!(7))] {
            let p = strict_claims_with("iss", iss);
            assert_eq!(reason(&strict(), &sign(&p)), "wrong_issuer");
        }
    }

    #[test]
    fn configured_audience_missing_or_wrong_is_wrong_audience() {
        let cases = [
            None,
            Some(json!("other")),
            Some(json!(["a", "b"])),
            Some(json!([])),
        ];
        for aud in cases {
            let p = strict_claims_with("aud", aud);
            assert_eq!(reason(&strict(), &sign(&p)), "wrong_audience");
        }
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

    #[test]
    fn bearer_header_wins_over_query() {
        let got = token_from_request(Some("Bearer a.b.c"), Some("access_token=x.y.z"));
        assert_eq!(got.unwrap(), "a.b.c");
        let got = token_from_request(Some("bEaReR   a.b.c "), None);
        assert_eq!(got.unwrap(), "a.b.c");
    }

    #[test]
    fn query_is_used_without_a_bearer_header() {
        let q = Some("channel=prices&access_token=x.y.z&symbols=A,B");
        assert_eq!(token_from_request(None, q).unwrap(), "x.y.z");
        assert_eq!(token_from_request(Some("Basic dTpw"), q).unwrap(), "x.y.z");
        assert_eq!(token_from_request(Some("Bearer "), q).unwrap(), "x.y.z");
        let leading = Some("?access_token=x.y.z");
        assert_eq!(token_from_request(None, leading).unwrap(), "x.y.z");
    }

    #[test]
    fn query_token_is_percent_decoded() {
        let q = Some("access%5Ftoken=a%2Eb%2ec%20d+e");
        assert_eq!(token_from_request(None, q).unwrap(), "a.b.c d e");
        for bad in ["access_token=a%2", "access_token=a%zz", "access_token=%ff"] {
            let err = token_from_request(None, Some(bad)).unwrap_err();
            assert_eq!(err.reason(), "malformed_token", "{bad}");
        }
    }

    #[test]
    fn no_token_is_missing_token() {
        for (header, query) in [
            (None, None),
            (None, Some("")),
            (None, Some("channel=prices&token=x")),
            (None, Some("access_token=")),
            (Some("Basic dTpw"), None),
            (Some("Bearer"), None),
        ] {
            let err = token_from_request(header, query).unwrap_err();
            assert_eq!(err.reason(), "missing_token", "{header:?} {query:?}");
        }
    }

    #[test]
    fn parse_ttl_accepts_units_and_plain_seconds() {
        assert_eq!(parse_ttl("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_ttl("1h"), Ok(Duration::from_secs(3_600)));
        assert_eq!(parse_ttl("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_ttl("3600"), Ok(Duration::from_secs(3_600)));
        assert_eq!(parse_ttl(" 1H "), Ok(Duration::from_secs(3_600)));
    }

    #[test]
    fn parse_ttl_refuses_nonsense() {
        for bad in [
            "",
            "s",
            "0",
            "0s",
            "-5",
            "+5",
            "1.5h",
            "1w",
            "h1",
            "99999999999999999999d",
        ] {
            assert!(parse_ttl(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn secret_from_env_wins() {
        let mut cfg = cfg();
        cfg.hs256_secret_file = Some("/nonexistent/secret".into());
        let (secret, source) = load_secret_from(Some("s3cret\n".into()), &cfg).unwrap();
        assert_eq!(
            (secret.as_slice(), source),
            (&b"s3cret"[..], SecretSource::Env)
        );
        assert!(load_secret_from(Some("\n".into()), &cfg).is_err());
    }

    #[test]
    fn secret_from_file_is_trimmed_and_must_not_be_empty() {
        let dir = std::env::temp_dir().join(format!("quotecast-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret");
        std::fs::write(&path, "file-secret\r\n").unwrap();
        let mut cfg = cfg();
        cfg.hs256_secret_file = Some(path.clone());
        let (secret, source) = load_secret_from(None, &cfg).unwrap();
        assert_eq!(secret, b"file-secret");
        assert_eq!(source, SecretSource::File(path.clone()));
        std::fs::write(&path, "\n").unwrap();
        assert!(load_secret_from(None, &cfg).is_err());
        cfg.hs256_secret_file = Some(dir.join("absent"));
        let err = load_secret_from(None, &cfg).unwrap_err();
        assert!(err.to_string().contains("absent"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dev_secret_is_random_hex() {
        let (a, source) = load_secret_from(None, &cfg()).unwrap();
        let (b, _) = load_secret_from(None, &cfg()).unwrap();
        assert_eq!(source, SecretSource::Dev);
        assert_eq!(a.len(), 64);
        assert!(a.iter().all(u8::is_ascii_hexdigit));
        assert_ne!(a, b);
    }
}
