//! Public keys loaded once at start, by `kid`: PEM files (`auth.keys`) and
//! a JWKS file (`auth.jwks_file`). A `kid` is only ever a lookup into this
//! map, and no HMAC key ever comes from key material: HS256 uses the secret.

use crate::config::{AuthConfig, JwtAlg};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::collections::HashMap;
use std::path::Path;

/// A key that could not be loaded at start, saying which and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub(super) String);

/// A public key bound to the one algorithm it verifies.
#[derive(Debug, Clone)]
pub(super) struct KeyEntry {
    pub alg: JwtAlg,
    pub key: DecodingKey,
}

/// The jsonwebtoken algorithm of `alg`.
pub(super) fn algorithm(alg: JwtAlg) -> Algorithm {
    match alg {
        JwtAlg::HS256 => Algorithm::HS256,
        JwtAlg::RS256 => Algorithm::RS256,
        JwtAlg::ES256 => Algorithm::ES256,
        JwtAlg::EdDSA => Algorithm::EdDSA,
    }
}

/// Reads every PEM file and the JWKS file of `cfg`. Each key's algorithm
/// must be allowed, each `kid` unique, and each allowed public-key
/// algorithm must have at least one key.
pub(super) fn load(cfg: &AuthConfig) -> Result<HashMap<String, KeyEntry>, KeyError> {
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
        let entry = pem_key(k.alg, &k.pem_file).map_err(|e| KeyError(format!("{from}: {e}")))?;
        add(k.kid.clone(), entry, "auth.keys")?;
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
    Ok(keys)
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
/// key is refused.
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

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::Verifier;
    use super::*;
    use crate::config::PemKeyConfig;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::{json, Value};
    use std::path::PathBuf;

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
}
