//! Hostile tokens against a server configured for RS256, ES256 and EdDSA keys
//! (PEM files and a JWKS file) with a required issuer and audience: each attack
//! gets `401` and its exact reason before the upgrade, and each kind of valid
//! token is upgraded. One server runs the whole table; a failure names its case.

use crate::util::*;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Value};

const ISSUER: &str = "https://idp.test";
const AUDIENCE: &str = "quotecast";
/// The server's `auth.leeway_s` (the default).
const LEEWAY: i64 = 5;
/// The server's largest token.
const MAX_TOKEN: usize = 8 * 1024;

fn config() -> String {
    let key = |name: &str| key_path(name).display().to_string();
    format!(
        r#"
[server]
# Room for the oversized-token case to reach the verifier instead of the 431 head cap.
max_header_bytes = 32768

[auth]
algorithms = ["RS256", "ES256", "EdDSA"]
jwks_file = "{jwks}"
issuer = "{ISSUER}"
audience = "{AUDIENCE}"

[[auth.keys]]
kid = "pem-rsa"
alg = "RS256"
pem_file = "{rsa}"

[[auth.keys]]
kid = "pem-ec"
alg = "ES256"
pem_file = "{ec}"

[[auth.keys]]
kid = "pem-ed"
alg = "EdDSA"
pem_file = "{ed}"
"#,
        jwks = key("jwks.json"),
        rsa = key("rsa_public.pem"),
        ec = key("ec_public.pem"),
        ed = key("ed25519_public.pem"),
    )
}

/// Claims the server accepts: subject, tenant, roles, issuer, audience, 10 min.
fn good() -> Value {
    let mut c = claims("u1", "t1", &["TRADER"], 600);
    c["iss"] = json!(ISSUER);
    c["aud"] = json!(AUDIENCE);
    c
}

fn with(field: &str, value: Value) -> Value {
    let mut c = good();
    c[field] = value;
    c
}

fn without(field: &str) -> Value {
    let mut c = good();
    c.as_object_mut().unwrap().remove(field);
    c
}

fn rsa() -> EncodingKey {
    private_key(Algorithm::RS256, "rsa_private.pem")
}

/// RS256 with the PEM key `pem-rsa`.
fn rs256(claims: &Value) -> String {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "pem-rsa"});
    sign_segments(&header, claims, Algorithm::RS256, &rsa())
}

/// A valid RS256 token padded with a `pad` claim to the longest length that is
/// at most `max` bytes (RSA signatures have a fixed length, so the size is known
/// before signing).
fn rs256_of_length_at_most(max: usize) -> String {
    let sig_len = rs256(&good()).rsplit('.').next().unwrap().len();
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "pem-rsa"});
    let len = |pad: usize| {
        segment(&header).len()
            + 1
            + segment(&with("pad", json!("x".repeat(pad)))).len()
            + 1
            + sig_len
    };
    let pad = (0..max).take_while(|p| len(*p) <= max).last().unwrap();
    rs256(&with("pad", json!("x".repeat(pad))))
}

/// An unsigned token whose header names `alg`.
fn alg_none(alg: &str) -> String {
    let header = json!({"alg": alg, "typ": "JWT", "kid": "pem-rsa"});
    format!("{}.{}.", segment(&header), segment(&good()))
}

/// `(header, payload, signature)` of a valid RS256 token.
fn parts() -> (String, String, String) {
    let t = rs256(&good());
    let mut it = t.split('.').map(String::from);
    (it.next().unwrap(), it.next().unwrap(), it.next().unwrap())
}

/// What a case expects: an upgrade, or a 401 with this reason.
const UPGRADE: &str = "101";

/// A case's token: made up front, or signed right before it is sent, so a
/// boundary one second from now is not blurred by the time the table takes.
enum Token {
    Fixed(String),
    Timed(fn(i64) -> Value),
}

impl Token {
    /// The token, and for a timed one the second it was signed in (with
    /// Ed25519: fast, unlike RSA in a debug build).
    fn mint(&self) -> (String, Option<i64>) {
        match self {
            Token::Fixed(token) => (token.clone(), None),
            Token::Timed(claims) => {
                let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": "pem-ed"});
                let key = private_key(Algorithm::EdDSA, "ed25519_private.pem");
                let now = now_secs();
                let token = sign_segments(&header, &claims(now), Algorithm::EdDSA, &key);
                (token, Some(now))
            }
        }
    }

    /// The token and what the server made of it. A timed token is judged
    /// only by an attempt answered within the second it was signed in: its
    /// boundary is one second away, which a loaded machine can cross.
    fn try_on(&self, server: &Server) -> (String, String) {
        let wait = deadline();
        loop {
            let (token, signed_in) = self.mint();
            let got = outcome(&upgrade(server, Some(&token)));
            let late = signed_in.is_some_and(|s| now_secs() != s);
            if !late || std::time::Instant::now() >= wait {
                return (token, got);
            }
        }
    }
}

type Case = (&'static str, Token, &'static str);

fn cases() -> Vec<Case> {
    use Token::{Fixed, Timed};
    let (h, p, s) = parts();
    let signer = |alg: Algorithm, kid: &str, file: &str| {
        let header = json!({"alg": alg, "typ": "JWT", "kid": kid});
        Fixed(sign_segments(
            &header,
            &good(),
            alg,
            &private_key(alg, file),
        ))
    };
    let signed_with =
        |header: Value| Fixed(sign_segments(&header, &good(), Algorithm::RS256, &rsa()));
    let claims = |c: Value| Fixed(rs256(&c));
    let raw = |t: String| Fixed(t);
    let rsa_public_pem = std::fs::read(key_path("rsa_public.pem")).unwrap();
    let hs256_with_public_pem = sign_segments(
        &json!({"alg": "HS256", "typ": "JWT", "kid": "pem-rsa"}),
        &good(),
        Algorithm::HS256,
        &EncodingKey::from_secret(&rsa_public_pem),
    );
    let mut tampered = good();
    tampered["tenant"] = json!("t2");
    let exp_string = with("exp", json!((now_secs() + 600).to_string()));
    vec![
        (
            "valid RS256 from PEM",
            signer(Algorithm::RS256, "pem-rsa", "rsa_private.pem"),
            UPGRADE,
        ),
        (
            "valid ES256 from PEM",
            signer(Algorithm::ES256, "pem-ec", "ec_private.pem"),
            UPGRADE,
        ),
        (
            "valid EdDSA from PEM",
            signer(Algorithm::EdDSA, "pem-ed", "ed25519_private.pem"),
            UPGRADE,
        ),
        (
            "valid RS256 from JWKS",
            signer(Algorithm::RS256, "jwks-rsa", "jwks_rsa_private.pem"),
            UPGRADE,
        ),
        (
            "valid ES256 from JWKS",
            signer(Algorithm::ES256, "jwks-ec", "jwks_ec_private.pem"),
            UPGRADE,
        ),
        (
            "valid EdDSA from JWKS",
            signer(Algorithm::EdDSA, "jwks-ed", "jwks_ed25519_private.pem"),
            UPGRADE,
        ),
        ("alg none", raw(alg_none("none")), "algorithm_not_allowed"),
        ("alg None", raw(alg_none("None")), "algorithm_not_allowed"),
        ("alg NONE", raw(alg_none("NONE")), "algorithm_not_allowed"),
        ("alg nOnE", raw(alg_none("nOnE")), "algorithm_not_allowed"),
        (
            "HS256 signed with the RSA public PEM",
            raw(hs256_with_public_pem),
            "algorithm_not_allowed",
        ),
        (
            "RS384, not on the list",
            signed_with(json!({"alg": "RS384", "kid": "pem-rsa"})),
            "algorithm_not_allowed",
        ),
        (
            "stripped signature (h.p.)",
            raw(format!("{h}.{p}.")),
            "bad_signature",
        ),
        (
            "signature part removed (h.p)",
            raw(format!("{h}.{p}")),
            "malformed_token",
        ),
        (
            "extra signature part (h.p.s.s)",
            raw(format!("{h}.{p}.{s}.{s}")),
            "malformed_token",
        ),
        (
            "extra empty segment (h.p.s.)",
            raw(format!("{h}.{p}.{s}.")),
            "malformed_token",
        ),
        (
            "signature of another payload",
            raw(format!("{h}.{}.{s}", segment(&tampered))),
            "bad_signature",
        ),
        (
            "padded header segment (h=)",
            raw(format!("{h}=.{p}.{s}")),
            "malformed_token",
        ),
        (
            "padded signature (s==)",
            raw(format!("{h}.{p}.{s}==")),
            "malformed_token",
        ),
        (
            "standard base64 alphabet in signature",
            raw(format!("{h}.{p}.{}", s.replace(['-', '_'], "+"))),
            "malformed_token",
        ),
        ("missing exp", claims(without("exp")), "missing_claim"),
        ("exp as a string", claims(exp_string), "missing_claim"),
        (
            "expired by leeway + 1 s",
            Timed(|now| with("exp", json!(now - LEEWAY - 1))),
            "token_expired",
        ),
        (
            "expired by leeway - 1 s",
            Timed(|now| with("exp", json!(now - LEEWAY + 1))),
            UPGRADE,
        ),
        (
            "nbf beyond the leeway",
            Timed(|now| with("nbf", json!(now + LEEWAY + 2))),
            "token_not_yet_valid",
        ),
        (
            "nbf within the leeway",
            Timed(|now| with("nbf", json!(now + LEEWAY - 1))),
            UPGRADE,
        ),
        ("missing tenant", claims(without("tenant")), "missing_claim"),
        ("missing sub", claims(without("sub")), "missing_claim"),
        ("missing roles", claims(without("roles")), "missing_claim"),
        (
            "wrong iss",
            claims(with("iss", json!("https://evil.test"))),
            "wrong_issuer",
        ),
        ("missing iss", claims(without("iss")), "wrong_issuer"),
        (
            "wrong aud",
            claims(with("aud", json!("someone-else"))),
            "wrong_audience",
        ),
        ("missing aud", claims(without("aud")), "wrong_audience"),
        (
            "unknown kid",
            signed_with(json!({"alg": "RS256", "kid": "rotated-away"})),
            "unknown_key",
        ),
        (
            "kid naming a key file path",
            signed_with(json!({"alg": "RS256", "kid": "../keys/rsa_public.pem"})),
            "unknown_key",
        ),
        (
            "kid of a key of another alg",
            signed_with(json!({"alg": "RS256", "kid": "pem-ec"})),
            "unknown_key",
        ),
        (
            "no kid",
            signed_with(json!({"alg": "RS256"})),
            "unknown_key",
        ),
        (
            "token of exactly 8 KiB",
            raw(rs256_of_length_at_most(MAX_TOKEN)),
            UPGRADE,
        ),
        (
            "oversized token (> 8 KiB)",
            raw(rs256_of_length_at_most(MAX_TOKEN + 3)),
            "malformed_token",
        ),
        (
            "crit header",
            signed_with(json!({"alg": "RS256", "kid": "pem-rsa", "crit": ["exp"]})),
            "malformed_token",
        ),
    ]
}

/// `101`, or `<status> <reason>` of a refusal.
fn outcome(resp: &HttpResponse) -> String {
    match resp.status {
        101 => UPGRADE.to_string(),
        status => {
            let body: Value = serde_json::from_str(&resp.body).unwrap_or(Value::Null);
            let error = body["error"].as_str().unwrap_or("?");
            let reason = body["reason"].as_str().unwrap_or("?");
            format!("{status} {error}/{reason}")
        }
    }
}

#[test]
fn every_jwt_attack_is_refused_with_its_reason() {
    let server = start_server(
        &["--sim-symbols", "3", "--sim-rate", "100"],
        Some(&config()),
    );
    let mut failures = Vec::new();
    eprintln!("| case | token bytes | got |");
    for (name, token, want) in cases() {
        let (token, got) = token.try_on(&server);
        let expected = match want {
            UPGRADE => UPGRADE.to_string(),
            reason => format!("401 unauthorized/{reason}"),
        };
        eprintln!("| {name} | {} | {got} |", token.len());
        if got != expected {
            failures.push(format!("{name}: expected {expected}, got {got}"));
        }
    }
    assert!(
        failures.is_empty(),
        "failing cases:\n  {}",
        failures.join("\n  ")
    );
}

#[test]
fn oversized_token_fits_the_size_boundary() {
    assert_eq!(rs256_of_length_at_most(MAX_TOKEN).len(), MAX_TOKEN);
    assert!(rs256_of_length_at_most(MAX_TOKEN + 3).len() > MAX_TOKEN);
}

#[test]
fn bad_key_configuration_stops_the_start_with_a_clear_error() {
    let missing = config().replace("rsa_public.pem", "absent.pem");
    let text = start_failure(&missing);
    assert!(text.contains("absent.pem"), "{text}");
    let collision = config().replace("kid = \"pem-ec\"", "kid = \"jwks-ec\"");
    let text = start_failure(&collision);
    assert!(text.contains("\"jwks-ec\" is already taken"), "{text}");
    let unknown_alg = config().replace("\"EdDSA\"]", "\"EdDSA\", \"HS384\"]");
    let text = start_failure(&unknown_alg);
    assert!(text.contains("HS384"), "{text}");
}
