//! A compact JWS (`header.payload.signature`) taken apart, before any trust
//! is placed in it. Every failure here is `malformed_token`.

use super::AuthError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

/// Largest token accepted; a longer one is `malformed_token` before any decoding.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The three parts of a compact JWS, header and payload decoded.
pub(super) struct Parts<'a> {
    /// The decoded header object.
    pub header: Map<String, Value>,
    /// The decoded payload (claims) object.
    pub payload: Map<String, Value>,
    /// `header.payload`, the bytes the signature covers.
    pub signed: &'a str,
    /// The base64url signature as sent.
    pub signature: &'a str,
}

impl<'a> Parts<'a> {
    /// Checks the size, the part count and that header and payload are
    /// base64url JSON objects and the signature base64url.
    pub fn split(token: &'a str) -> Result<Parts<'a>, AuthError> {
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

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use serde_json::json;

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
}
