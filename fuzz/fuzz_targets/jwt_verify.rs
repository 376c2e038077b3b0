//! The JWT verifier: no token is accepted without the key.
//!
//! Three shapes of input, picked by the first byte:
//! - any string as a token;
//! - a valid token with fuzz-chosen edits (flip, insert, delete at positions);
//! - a token with fuzz-chosen claims signed with a different secret.
//!
//! Only the untouched valid token may verify; everything else is refused, and
//! no input panics, whatever `now` is.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use quotecast::auth::{mint_hs256_at, AuthError, MintRequest, Verifier, MAX_TOKEN_BYTES};
use quotecast::config::AuthConfig;
use std::time::Duration;

const SECRET: &[u8] = b"fuzz-secret-0123456789abcdef-0123456789";
const NOW: u64 = 1_700_000_000;

#[derive(Arbitrary, Debug)]
enum Edit {
    Flip { at: u16, xor: u8 },
    Insert { at: u16, byte: u8 },
    Delete { at: u16 },
}

#[derive(Arbitrary, Debug)]
enum Input {
    Raw {
        token: String,
        now: u64,
    },
    Mutated {
        edits: Vec<Edit>,
        symbols: Option<Vec<String>>,
        ttl: u32,
    },
    OtherKey {
        secret: Vec<u8>,
        sub: String,
        tenant: String,
        roles: Vec<String>,
        ttl: u32,
    },
}

fn request(
    sub: String,
    tenant: String,
    roles: Vec<String>,
    ttl: u32,
    symbols: Option<Vec<String>>,
) -> MintRequest {
    MintRequest {
        sub,
        tenant,
        roles,
        ttl: Duration::from_secs(ttl.into()),
        symbols,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = Input::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    let verifier = Verifier::from_config(&AuthConfig::default(), Some(SECRET))
        .expect("the default config with a secret is valid");
    match input {
        Input::Raw { token, now } => {
            assert!(
                verifier.verify(&token, now).is_err(),
                "accepted a forged token {token:?}"
            );
        }
        Input::Mutated {
            edits,
            symbols,
            ttl,
        } => {
            let req = request(
                "u1".into(),
                "acme".into(),
                vec!["TRADER".into()],
                ttl.max(60),
                symbols,
            );
            let valid = mint_hs256_at(SECRET, &req, NOW);
            if valid.len() > MAX_TOKEN_BYTES {
                // Many or long symbols: refused for size before any decoding.
                assert_eq!(verifier.verify(&valid, NOW), Err(AuthError::MalformedToken));
                return;
            }
            if let Err(e) = verifier.verify(&valid, NOW) {
                panic!("a fresh token must verify, got {e:?}: {valid}");
            }
            let mut bytes = valid.clone().into_bytes();
            for edit in edits {
                let at = |i: u16, len: usize| usize::from(i) % (len + 1);
                match edit {
                    Edit::Flip { at: i, xor } if !bytes.is_empty() => {
                        let i = usize::from(i) % bytes.len();
                        bytes[i] ^= xor;
                    }
                    Edit::Flip { .. } => {}
                    Edit::Insert { at: i, byte } => {
                        let i = at(i, bytes.len());
                        bytes.insert(i, byte);
                    }
                    Edit::Delete { at: i } if !bytes.is_empty() => {
                        bytes.remove(usize::from(i) % bytes.len());
                    }
                    Edit::Delete { .. } => {}
                }
            }
            let Ok(token) = String::from_utf8(bytes) else {
                return;
            };
            if token != valid {
                assert!(
                    verifier.verify(&token, NOW).is_err(),
                    "accepted an altered token {token:?}"
                );
            }
        }
        Input::OtherKey {
            secret,
            sub,
            tenant,
            roles,
            ttl,
        } => {
            if secret == SECRET {
                return;
            }
            let token = mint_hs256_at(&secret, &request(sub, tenant, roles, ttl, None), NOW);
            assert!(
                verifier.verify(&token, NOW).is_err(),
                "accepted a token signed with another key"
            );
        }
    }
});
