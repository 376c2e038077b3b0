//! Minting HS256 tokens for `quotecast token` and dev mode, and reading the
//! `--ttl` lifetime they are minted with.

use super::verify::unix_now;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use std::time::Duration;

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

/// Parses a token lifetime: `90s`, `15m`, `1h`, `2d`, combinations such as
/// `1h30m`, or plain seconds (`3600`); units in any case. Whole seconds, more than 0.
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let bad = || format!("bad ttl {s:?}: expected e.g. 90s, 15m, 1h, 2d or plain seconds");
    let text = s.to_ascii_lowercase();
    // Only the units the help names: humantime would also read `w` and `y`
    // (and `M` as months), and fractions, which `1.5h`-style typos should not reach.
    if !text
        .chars()
        .all(|c| c.is_ascii_digit() || "smhd".contains(c))
    {
        return Err(bad());
    }
    let text = match text.bytes().all(|b| b.is_ascii_digit()) {
        true => format!("{text}s"),
        false => text,
    };
    match humantime::parse_duration(&text)
        .map_err(|_| bad())?
        .as_secs()
    {
        0 => Err(format!("bad ttl {s:?}: must be more than 0")),
        secs => Ok(Duration::from_secs(secs)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::Role;
    use super::*;

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
        assert!(claims.has_any_role(&[Role::TRADER, Role::from("ANALYST")]));
        assert!(!claims.has_role(&Role::TRADER));
        assert_eq!(claims.symbols.unwrap(), ["EURUSD"]);
        assert!(verifier().verify_now(&mint_hs256(SECRET, &req)).is_ok());
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
}
