//! Token verification and minting (shared by `serve` and `quotecast token`).
//!
//! [`Verifier::verify`] checks a compact JWS in a fixed order, so every
//! refusal has one documented [`AuthError::reason`]:
//!
//! 1. size (at most [`MAX_TOKEN_BYTES`]), exactly three parts, header and
//!    payload base64url JSON objects, signature base64url → `malformed_token`
//! 2. `alg` on the configured allow-list (never `none`) → `algorithm_not_allowed`
//! 3. no `crit` header (we understand no extensions) → `malformed_token`
//! 4. a key for `alg` and `kid` → `unknown_key`: HS256 uses the secret;
//!    RS256/ES256/EdDSA need a `kid` naming a loaded key of that algorithm
//! 5. signature → `bad_signature`
//! 6. `sub`, `tenant`, `roles`, `exp` present and well typed; `nbf`, `iat`,
//!    `symbols` well typed when present → `missing_claim`
//! 7. `exp` + leeway ≥ now → `token_expired`; `nbf` − leeway ≤ now → `token_not_yet_valid`
//! 8. `iss`, then `aud`, when configured: required and equal →
//!    `wrong_issuer` / `wrong_audience`
//!
//! Keys are loaded once by [`Verifier::from_config`] (PEM files, a JWKS file,
//! the HS256 secret); a `kid` is only ever a lookup into that map, and an HMAC
//! key is only ever built from the secret.
//!
//! The claims are checked here rather than by `jsonwebtoken::decode`, which
//! reads the system clock and would not let tests set `now`; jsonwebtoken
//! only does the signature arithmetic.

use crate::config::{AuthConfig, JwtAlg};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
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

/// A public key loaded at start, bound to the one algorithm it verifies.
#[derive(Debug, Clone)]
struct KeyEntry {
    alg: JwtAlg,
    key: DecodingKey,
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
    leeway_s: u64,
    issuer: Option<String>,
    audience: Option<String>,
}

/// A key that could not be loaded at start, saying which and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(String);

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
        let mut keys = HashMap::new();
        let mut add = |kid: String, entry: KeyEntry, from: &str| {
            if !cfg.allows(entry.alg) {
                return Err(KeyError(format!(
                    "{from}: kid {kid:?} is {} but auth.algorithms does not list it",
                    entry.alg.name()
                )));
            }
            if keys.insert(kid.clone(), entry).is_some() {
                return Err(KeyError(format!(
                    "{from}: kid {kid:?} is already taken by another key"
                )));
            }
            Ok(())
        };
        for k in &cfg.keys {
            let from = format!("auth.keys kid {:?}", k.kid);
            add(
                k.kid.clone(),
                pem_key(k.alg, &k.pem_file).map_err(|e| KeyError(format!("{from}: {e}")))?,
                "auth.keys",
            )?;
        }
        if let Some(path) = &cfg.jwks_file {
            for (kid, entry) in jwks_keys(path)? {
                add(kid, entry, &format!("auth.jwks_file {}", path.display()))?;
            }
        }
        for &alg in &cfg.algorithms {
            if alg != JwtAlg::HS256 && !keys.values().any(|k: &KeyEntry| k.alg == alg) {
                let name = alg.name();
                return Err(KeyError(format!(
                    "auth.algorithms lists {name} but auth.keys and auth.jwks_file hold no {name} key"
                )));
            }
        }
        Ok(Verifier {
            allowed: cfg.algorithms.iter().map(|a| algorithm(*a)).collect(),
            hs256,
            keys,
            leeway_s: cfg.leeway_s,
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
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

    /// HS256 uses the secret whatever the `kid`; every other algorithm needs a
    /// `kid` naming a loaded key of that same algorithm.
    fn key_for(&self, alg: Algorithm, kid: Option<&str>) -> Result<&DecodingKey, AuthError> {
        if alg == Algorithm::HS256 {
            return self.hs256.as_ref().ok_or(AuthError::UnknownKey);
        }
        match kid.and_then(|kid| self.keys.get(kid)) {
            Some(entry) if algorithm(entry.alg) == alg => Ok(&entry.key),
            _ => Err(AuthError::UnknownKey),
        }
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

fn algorithm(alg: JwtAlg) -> Algorithm {
    match alg {
        JwtAlg::HS256 => Algorithm::HS256,
        JwtAlg::RS256 => Algorithm::RS256,
        JwtAlg::ES256 => Algorithm::ES256,
        JwtAlg::EdDSA => Algorithm::EdDSA,
    }
}

/// Reads a public key PEM for `alg`. A private key is refused: it does not
/// belong on the gateway, and RSA would only fail later, token by token.
fn pem_key(alg: JwtAlg, path: &Path) -> Result<KeyEntry, String> {
    let text = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let is_public = String::from_utf8_lossy(&text).contains("PUBLIC KEY-----");
    if !is_public {
        return Err(format!("{} is not a public key PEM", path.display()));
    }
    let key = match alg {
        JwtAlg::RS256 => DecodingKey::from_rsa_pem(&text),
        JwtAlg::ES256 => DecodingKey::from_ec_pem(&text),
        JwtAlg::EdDSA => DecodingKey::from_ed_pem(&text),
        JwtAlg::HS256 => return Err("an HMAC key is never built from a PEM".into()),
    }
    .map_err(|e| format!("{} is not a {} public key: {e}", path.display(), alg.name()))?;
    usable(alg, key).map_err(|e| format!("{}: {e}", path.display()))
}

/// Every key of a JWKS file, by `kid`. Only RS256, ES256 (P-256) and EdDSA
/// (Ed25519) public keys are accepted, each with a `kid`; a symmetric (`oct`)
/// key is refused, so no HMAC key ever comes from key-set material.
fn jwks_keys(path: &Path) -> Result<Vec<(String, KeyEntry)>, KeyError> {
    let from = format!("auth.jwks_file {}", path.display());
    let text = std::fs::read(path).map_err(|e| KeyError(format!("{from}: {e}")))?;
    let set: JwkSet = serde_json::from_slice(&text)
        .map_err(|e| KeyError(format!("{from}: not a JWKS document: {e}")))?;
    set.keys
        .iter()
        .enumerate()
        .map(|(i, jwk)| {
            let kid = jwk.common.key_id.clone().filter(|k| !k.is_empty());
            let kid = kid.ok_or_else(|| KeyError(format!("{from}: key #{i} has no kid")))?;
            let entry = jwk_key(jwk).map_err(|e| KeyError(format!("{from}: kid {kid:?}: {e}")))?;
            Ok((kid, entry))
        })
        .collect()
}

fn jwk_key(jwk: &Jwk) -> Result<KeyEntry, String> {
    let alg = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => JwtAlg::RS256,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => JwtAlg::ES256,
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            // jsonwebtoken slices the first 32 bytes of the key: check the length first.
            match URL_SAFE_NO_PAD.decode(&p.x) {
                Ok(x) if x.len() == 32 => JwtAlg::EdDSA,
                _ => return Err("Ed25519 x is not 32 base64url bytes".into()),
            }
        }
        AlgorithmParameters::OctetKey(_) => {
            return Err(
                "symmetric (oct) keys are refused: HS256 uses auth.hs256_secret_file".into(),
            )
        }
        _ => return Err("only RSA, EC P-256 and OKP Ed25519 keys are supported".into()),
    };
    let named = match jwk.common.key_algorithm {
        None => alg,
        Some(KeyAlgorithm::RS256) => JwtAlg::RS256,
        Some(KeyAlgorithm::ES256) => JwtAlg::ES256,
        Some(KeyAlgorithm::EdDSA) => JwtAlg::EdDSA,
        Some(other) => return Err(format!("alg {other:?} is not supported")),
    };
    if named != alg {
        return Err(format!(
            "alg {} does not fit the key type ({})",
            named.name(),
            alg.name()
        ));
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    usable(alg, key)
}

/// Binds `key` to `alg` after checking that jsonwebtoken can build a verifier
/// from it (an error here is a key of the wrong kind or a broken point).
fn usable(alg: JwtAlg, key: DecodingKey) -> Result<KeyEntry, String> {
    jsonwebtoken::crypto::verify("", b"", &key, algorithm(alg))
        .map_err(|e| format!("not a usable {} key: {e}", alg.name()))?;
    Ok(KeyEntry { alg, key })
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
    use crate::config::PemKeyConfig;
    use serde_json::json;

    const SECRET: &[u8] = b"test-secret-of-a-reasonable-length!!";
    const NOW: u64 = 1_763_769_600;

    fn cfg() -> AuthConfig {
        AuthConfig::default()
    }

    fn verifier() -> Verifier {
        Verifier::from_config(&cfg(), Some(SECRET)).unwrap()
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
        let other = Verifier::from_config(&cfg(), Some(b"another-secret")).unwrap();
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
    fn hs256_ignores_kid_but_it_must_be_a_string() {
        let header = json!({"alg": "HS256", "kid": "k1"});
        let token = sign_raw(&header, &good(), Algorithm::HS256, SECRET);
        assert!(verifier().verify(&token, NOW).is_ok());
        let bad_kid = json!({"alg": "HS256", "kid": 1});
        let token = sign_raw(&bad_kid, &good(), Algorithm::HS256, SECRET);
        assert_eq!(reason(&verifier(), &token), "malformed_token");
    }

    fn key_path(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/keys")
            .join(name)
    }

    fn pem(kid: &str, alg: JwtAlg, file: &str) -> PemKeyConfig {
        PemKeyConfig {
            kid: kid.into(),
            alg,
            pem_file: key_path(file),
        }
    }

    /// RS256, ES256 and EdDSA from PEM files (`pem-rsa`, `pem-ec`, `pem-ed`)
    /// and from the JWKS file (`jwks-rsa`, `jwks-ec`, `jwks-ed`).
    fn keyed_cfg() -> AuthConfig {
        AuthConfig {
            algorithms: vec![JwtAlg::RS256, JwtAlg::ES256, JwtAlg::EdDSA],
            keys: vec![
                pem("pem-rsa", JwtAlg::RS256, "rsa_public.pem"),
                pem("pem-ec", JwtAlg::ES256, "ec_public.pem"),
                pem("pem-ed", JwtAlg::EdDSA, "ed25519_public.pem"),
            ],
            jwks_file: Some(key_path("jwks.json")),
            ..AuthConfig::default()
        }
    }

    fn keyed() -> Verifier {
        Verifier::from_config(&keyed_cfg(), None).unwrap()
    }

    /// Signs `payload` with the private key `file` under `alg` and `kid`.
    fn sign_pem(alg: Algorithm, kid: &str, file: &str, payload: &Value) -> String {
        let text = std::fs::read(key_path(file)).unwrap();
        let key = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&text),
            Algorithm::ES256 => EncodingKey::from_ec_pem(&text),
            _ => EncodingKey::from_ed_pem(&text),
        }
        .unwrap();
        let message = format!("{}.{}", b64(&json!({"alg": alg, "kid": kid})), b64(payload));
        let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &key, alg).unwrap();
        format!("{message}.{sig}")
    }

    const SIGNERS: [(Algorithm, &str, &str); 6] = [
        (Algorithm::RS256, "pem-rsa", "rsa_private.pem"),
        (Algorithm::ES256, "pem-ec", "ec_private.pem"),
        (Algorithm::EdDSA, "pem-ed", "ed25519_private.pem"),
        (Algorithm::RS256, "jwks-rsa", "jwks_rsa_private.pem"),
        (Algorithm::ES256, "jwks-ec", "jwks_ec_private.pem"),
        (Algorithm::EdDSA, "jwks-ed", "jwks_ed25519_private.pem"),
    ];

    #[test]
    fn public_key_tokens_from_pem_and_jwks_verify() {
        for (alg, kid, file) in SIGNERS {
            let claims = keyed().verify(&sign_pem(alg, kid, file, &good()), NOW);
            assert_eq!(claims.map(|c| c.sub), Ok("u1".into()), "{kid}");
        }
    }

    #[test]
    fn kid_must_name_a_key_of_the_token_algorithm() {
        // The right key under another key's kid, an unknown kid, no kid at all.
        let cases = [
            (
                Algorithm::RS256,
                "jwks-rsa",
                "rsa_private.pem",
                "bad_signature",
            ),
            (Algorithm::RS256, "pem-ec", "rsa_private.pem", "unknown_key"),
            (Algorithm::ES256, "nope", "ec_private.pem", "unknown_key"),
            (
                Algorithm::EdDSA,
                "../ed25519_public.pem",
                "ed25519_private.pem",
                "unknown_key",
            ),
        ];
        for (alg, kid, file, want) in cases {
            assert_eq!(
                reason(&keyed(), &sign_pem(alg, kid, file, &good())),
                want,
                "{kid}"
            );
        }
        let text = std::fs::read(key_path("rsa_private.pem")).unwrap();
        let key = EncodingKey::from_rsa_pem(&text).unwrap();
        let no_kid = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &good(), &key).unwrap();
        assert_eq!(reason(&keyed(), &no_kid), "unknown_key");
    }

    #[test]
    fn hs256_with_the_public_pem_as_secret_is_not_allowed() {
        let public = std::fs::read(key_path("rsa_public.pem")).unwrap();
        let header = json!({"alg": "HS256", "kid": "pem-rsa"});
        let token = sign_raw(&header, &good(), Algorithm::HS256, &public);
        assert_eq!(reason(&keyed(), &token), "algorithm_not_allowed");
        // Even with HS256 allowed next to RS256, only the secret is an HMAC key.
        let mut both = keyed_cfg();
        both.algorithms.push(JwtAlg::HS256);
        let both = Verifier::from_config(&both, Some(SECRET)).unwrap();
        assert_eq!(reason(&both, &token), "bad_signature");
    }

    fn load_error(cfg: &AuthConfig) -> String {
        Verifier::from_config(cfg, None).unwrap_err().to_string()
    }

    #[test]
    fn bad_key_files_stop_the_start_with_a_clear_error() {
        let mut cfg = keyed_cfg();
        cfg.keys[0].pem_file = key_path("absent.pem");
        assert!(
            load_error(&cfg).contains("absent.pem"),
            "{}",
            load_error(&cfg)
        );
        let mut cfg = keyed_cfg();
        cfg.keys[0].pem_file = key_path("rsa_private.pem");
        assert!(
            load_error(&cfg).contains("not a public key"),
            "{}",
            load_error(&cfg)
        );
        let mut cfg = keyed_cfg();
        cfg.keys[1].pem_file = key_path("rsa_public.pem");
        assert!(
            load_error(&cfg).contains("not a ES256 public key"),
            "{}",
            load_error(&cfg)
        );
        let mut cfg = keyed_cfg();
        cfg.keys[0].kid = "jwks-ec".into();
        assert!(
            load_error(&cfg).contains("already taken"),
            "{}",
            load_error(&cfg)
        );
        let mut cfg = keyed_cfg();
        cfg.algorithms.retain(|a| *a != JwtAlg::EdDSA);
        cfg.keys.pop();
        assert!(
            load_error(&cfg).contains("does not list it"),
            "{}",
            load_error(&cfg)
        );
        let mut cfg = keyed_cfg();
        cfg.keys.clear();
        cfg.jwks_file = None;
        assert!(
            load_error(&cfg).contains("hold no RS256 key"),
            "{}",
            load_error(&cfg)
        );
        let mut cfg = AuthConfig::default();
        assert!(
            load_error(&cfg).contains("no secret"),
            "{}",
            load_error(&cfg)
        );
        cfg.algorithms = vec![JwtAlg::RS256];
        cfg.jwks_file = Some(key_path("rsa_public.pem"));
        assert!(
            load_error(&cfg).contains("not a JWKS"),
            "{}",
            load_error(&cfg)
        );
    }

    fn jwks_error(key: Value) -> String {
        let dir = std::env::temp_dir().join(format!("quotecast-jwks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{}.json", rand::random::<u64>()));
        std::fs::write(&path, json!({"keys": [key]}).to_string()).unwrap();
        let cfg = AuthConfig {
            algorithms: vec![JwtAlg::HS256, JwtAlg::RS256, JwtAlg::ES256, JwtAlg::EdDSA],
            jwks_file: Some(path.clone()),
            ..AuthConfig::default()
        };
        let err = Verifier::from_config(&cfg, Some(SECRET))
            .unwrap_err()
            .to_string();
        std::fs::remove_file(&path).unwrap();
        err
    }

    #[test]
    fn jwks_keys_we_cannot_use_are_refused_at_load() {
        let oct = json!({"kty": "oct", "kid": "h", "k": "c2VjcmV0"});
        assert!(jwks_error(oct).contains("symmetric"));
        let no_kid =
            json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode([7u8; 32])});
        assert!(jwks_error(no_kid).contains("no kid"));
        let short = json!({"kty": "OKP", "kid": "e", "crv": "Ed25519", "x": "AAAA"});
        assert!(jwks_error(short).contains("32"));
        let rs384 = json!({"kty": "RSA", "kid": "r", "alg": "RS384", "n": "AQAB", "e": "AQAB"});
        assert!(jwks_error(rs384).contains("RS384"));
        let p384 = json!({"kty": "EC", "kid": "p", "crv": "P-384", "x": "AA", "y": "AA"});
        assert!(jwks_error(p384).contains("only RSA"));
        let mismatch = json!({"kty": "OKP", "kid": "m", "alg": "ES256", "crv": "Ed25519",
                              "x": URL_SAFE_NO_PAD.encode([7u8; 32])});
        assert!(jwks_error(mismatch).contains("does not fit"));
    }

    fn strict() -> Verifier {
        let mut cfg = cfg();
        cfg.issuer = Some("https://idp.example".into());
        cfg.audience = Some("quotecast".into());
        Verifier::from_config(&cfg, Some(SECRET)).unwrap()
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
