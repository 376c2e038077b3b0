//! `[auth]`: which token algorithms and keys are accepted.

use super::{ClaimNames, ConfigError};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A signature algorithm quotecast can be configured to accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JwtAlg {
    /// HMAC-SHA256 with the shared secret (`auth.hs256_secret_file` or the env).
    HS256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, RSA public key.
    RS256,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// Ed25519.
    EdDSA,
}

impl JwtAlg {
    /// The name used in a JWT header and in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            JwtAlg::HS256 => "HS256",
            JwtAlg::RS256 => "RS256",
            JwtAlg::ES256 => "ES256",
            JwtAlg::EdDSA => "EdDSA",
        }
    }
}

/// A public key from a PEM file, selected by a token's `kid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PemKeyConfig {
    /// The `kid` a token names to select this key; unique across `keys` and the JWKS.
    pub kid: String,
    /// The key's algorithm: RS256, ES256 or EdDSA (HS256 is a secret, never a PEM).
    pub alg: JwtAlg,
    /// PEM file holding the public key (SPKI `PUBLIC KEY`; RSA also `RSA PUBLIC KEY`).
    pub pem_file: PathBuf,
}

/// Token verification settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Algorithms a token may use; anything else (and every spelling of `none`)
    /// is refused with `algorithm_not_allowed`.
    pub algorithms: Vec<JwtAlg>,
    /// File holding the HS256 secret. `QUOTECAST_JWT_HS256_SECRET` takes precedence.
    /// With neither, `serve` runs in dev mode with a random secret. Read only
    /// when `algorithms` lists HS256.
    pub hs256_secret_file: Option<PathBuf>,
    /// Public keys from PEM files, each named by its `kid`.
    pub keys: Vec<PemKeyConfig>,
    /// A JWKS file (`{"keys":[...]}`) of public keys, each with a `kid`.
    pub jwks_file: Option<PathBuf>,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub leeway_s: u64,
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// Required `aud`, when set.
    pub audience: Option<String>,
    /// Query parameters a token is read from when there is no Bearer
    /// header, first present wins (browsers cannot set WebSocket headers).
    pub query_params: Vec<String>,
    /// Where `sub`, `tenant` and `roles` are in the payload.
    pub claims: ClaimNames,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            algorithms: vec![JwtAlg::HS256],
            hs256_secret_file: None,
            keys: Vec::new(),
            jwks_file: None,
            leeway_s: 5,
            issuer: None,
            audience: None,
            query_params: vec!["access_token".into()],
            claims: ClaimNames::default(),
        }
    }
}

impl AuthConfig {
    /// Whether `alg` is on the allow-list.
    pub fn allows(&self, alg: JwtAlg) -> bool {
        self.algorithms.contains(&alg)
    }

    /// Checks what can be checked without reading the key files; the
    /// leeway is checked with the other numeric settings in `validate.rs`.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |msg: String| Err(ConfigError::Auth(msg));
        if self.algorithms.is_empty() {
            return bad(
                "auth.algorithms is empty: list at least one of HS256, RS256, ES256, EdDSA".into(),
            );
        }
        let mut kids = std::collections::HashSet::new();
        for key in &self.keys {
            if key.kid.is_empty() {
                return bad(format!(
                    "auth.keys: the key in {} has an empty kid",
                    key.pem_file.display()
                ));
            }
            if !kids.insert(key.kid.as_str()) {
                return bad(format!("auth.keys: kid {:?} is used twice", key.kid));
            }
            if key.alg == JwtAlg::HS256 {
                return bad(format!(
                    "auth.keys: kid {:?} is HS256, but an HMAC key is never built from a PEM; \
                     use auth.hs256_secret_file",
                    key.kid
                ));
            }
            if !self.allows(key.alg) {
                return bad(format!(
                    "auth.keys: kid {:?} is {} but auth.algorithms does not list it",
                    key.kid,
                    key.alg.name()
                ));
            }
        }
        if self.query_params.iter().any(String::is_empty) {
            return bad("auth.query_params has an empty name".into());
        }
        self.claims.validate()?;
        for (field, value) in [
            ("auth.issuer", &self.issuer),
            ("auth.audience", &self.audience),
        ] {
            if value.as_deref() == Some("") {
                return bad(format!(
                    "{field} is empty: remove it or name the expected value"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn unknown_algorithm_is_refused_at_parse() {
        let err = Config::from_toml("[auth]\nalgorithms = [\"HS384\"]\n").unwrap_err();
        assert!(err.to_string().contains("HS384"), "{err}");
        let err = Config::from_toml("[auth]\nalgorithms = [\"none\"]\n").unwrap_err();
        assert!(err.to_string().contains("none"), "{err}");
    }

    fn auth_error(edit: impl FnOnce(&mut AuthConfig)) -> String {
        let mut cfg = Config::default();
        cfg.auth.algorithms = vec![JwtAlg::RS256, JwtAlg::ES256];
        cfg.auth.keys = vec![PemKeyConfig {
            kid: "k1".into(),
            alg: JwtAlg::RS256,
            pem_file: "k1.pem".into(),
        }];
        cfg.validate().unwrap();
        edit(&mut cfg.auth);
        cfg.validate().unwrap_err().to_string()
    }

    #[test]
    fn inconsistent_auth_settings_are_named() {
        let twice = auth_error(|a| a.keys.push(a.keys[0].clone()));
        assert!(twice.contains("\"k1\" is used twice"), "{twice}");
        let hmac = auth_error(|a| a.keys[0].alg = JwtAlg::HS256);
        assert!(hmac.contains("never built from a PEM"), "{hmac}");
        let unlisted = auth_error(|a| a.algorithms = vec![JwtAlg::ES256]);
        assert!(unlisted.contains("does not list it"), "{unlisted}");
        let empty = auth_error(|a| a.algorithms.clear());
        assert!(empty.contains("auth.algorithms is empty"), "{empty}");
        let no_kid = auth_error(|a| a.keys[0].kid.clear());
        assert!(no_kid.contains("empty kid"), "{no_kid}");
        let leeway = auth_error(|a| a.leeway_s = 301);
        assert!(leeway.starts_with("auth.leeway_s = 301"), "{leeway}");
        let issuer = auth_error(|a| a.issuer = Some(String::new()));
        assert!(issuer.contains("auth.issuer is empty"), "{issuer}");
    }
}
