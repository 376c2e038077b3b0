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
//!
//! | file | owns |
//! | --- | --- |
//! | `claims` | [`Claims`] and [`Role`]: the verified identity (a leaf) |
//! | `token` | finding the token in a request (header or query) |
//! | `jws` | step 1: taking a compact JWS apart |
//! | `verify` | [`Verifier`] (steps 2–5) and [`AuthError`] |
//! | `keys` | PEM files and the JWKS file, by `kid` |
//! | `payload` | steps 6–8: claim types, the clock, issuer and audience |
//! | `mint` | HS256 tokens for `quotecast token` and dev mode; `--ttl` |
//! | `secret` | loading the HS256 secret |

mod claims;
mod jws;
mod keys;
mod mint;
mod payload;
mod secret;
mod token;
mod verify;

#[cfg(test)]
mod test_support;

pub use claims::{Claims, Role};
pub use jws::MAX_TOKEN_BYTES;
pub use keys::KeyError;
pub use mint::{mint_hs256, mint_hs256_at, parse_ttl, MintRequest};
pub use secret::{load_hs256_secret, SecretSource, SECRET_ENV};
pub(crate) use token::form_decode;
pub use token::token_from_request;
pub use verify::{AuthError, Verifier};
