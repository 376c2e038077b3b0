//! The payload of a token whose signature checked out: claim types first,
//! then the clock, then the configured issuer and audience.

use super::{AuthError, Claims, Role};
use crate::config::{AuthConfig, ClaimNames};
use serde_json::{Map, Value};

/// What a payload must satisfy beyond its types: leeway, issuer, audience.
#[derive(Debug, Clone)]
pub(super) struct ClaimRules {
    leeway_s: u64,
    issuer: Option<String>,
    audience: Option<String>,
    /// Where `sub`, `tenant` and `roles` are.
    names: ClaimNames,
}

impl ClaimRules {
    /// The rules `cfg` configures.
    pub fn new(cfg: &AuthConfig) -> ClaimRules {
        ClaimRules {
            leeway_s: cfg.leeway_s,
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
            names: cfg.claims.clone(),
        }
    }

    /// Steps 6 to 8 of the order in the module docs.
    pub fn check(&self, p: &Map<String, Value>, now_s: u64) -> Result<Claims, AuthError> {
        let claims = Claims {
            sub: required_string(p, &self.names.sub)?,
            tenant: required_string(p, &self.names.tenant)?,
            roles: match at(p, &self.names.roles) {
                Some(Value::Array(items)) => strings(items)?
                    .into_iter()
                    .map(|r| Role::from(r.to_ascii_uppercase()))
                    .collect(),
                _ => return Err(AuthError::MissingClaim),
            },
            exp: numeric_date(p.get("exp").ok_or(AuthError::MissingClaim)?)?,
            symbols: match p.get("symbols") {
                None => None,
                Some(Value::Array(items)) => Some(strings(items)?),
                Some(_) => return Err(AuthError::MissingClaim),
            },
        };
        let nbf = p.get("nbf").map(numeric_date).transpose()?;
        if let Some(iat) = p.get("iat") {
            numeric_date(iat)?;
        }

        if claims.exp.saturating_add(self.leeway_s) < now_s {
            return Err(AuthError::TokenExpired);
        }
        if nbf.is_some_and(|nbf| nbf > now_s.saturating_add(self.leeway_s)) {
            return Err(AuthError::TokenNotYetValid);
        }
        self.check_issuer_and_audience(p)?;
        Ok(claims)
    }

    fn check_issuer_and_audience(&self, p: &Map<String, Value>) -> Result<(), AuthError> {
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
        Ok(())
    }
}

/// The value at `path`: a claim name, or a dotted path into nested objects.
fn at<'p>(p: &'p Map<String, Value>, path: &str) -> Option<&'p Value> {
    let mut steps = path.split('.');
    let first = p.get(steps.next()?)?;
    steps.try_fold(first, |v, step| v.as_object()?.get(step))
}

fn required_string(p: &Map<String, Value>, path: &str) -> Result<String, AuthError> {
    match at(p, path) {
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

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::Verifier;
    use serde_json::{json, Value};

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

    fn mapped() -> Verifier {
        let mut cfg = cfg();
        cfg.claims.tenant = "tenantId".into();
        cfg.claims.roles = "realm_access.roles".into();
        Verifier::from_config(&cfg, Some(SECRET)).unwrap()
    }

    #[test]
    fn mapped_claims_are_read_from_their_names_and_paths() {
        let mut p = without("tenant");
        p.as_object_mut().unwrap().remove("roles");
        p["tenantId"] = json!("t9");
        p["realm_access"] = json!({"roles": ["analyst", "TRADER"]});
        let claims = mapped().verify(&sign(&p), NOW).unwrap();
        assert_eq!((claims.tenant.as_str(), claims.sub.as_str()), ("t9", "u1"));
        assert_eq!(claims.roles, ["ANALYST", "TRADER"]);
        // The default names no longer count, and a broken path is missing.
        assert_eq!(reason(&mapped(), &sign(&good())), "missing_claim");
        for access in [json!(["TRADER"]), json!({"roles": "TRADER"}), json!({})] {
            p["realm_access"] = access.clone();
            assert_eq!(reason(&mapped(), &sign(&p)), "missing_claim", "{access}");
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
    fn strict_claims_with(key: &str, value: Option<Value>) -> Value {
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
}
