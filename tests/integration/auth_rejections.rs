//! Every way a token can be wrong is refused with `401` and the JSON reason
//! before the upgrade; a good token (also within the leeway) is upgraded.

use crate::util::*;
use jsonwebtoken::Algorithm;
use serde_json::{json, Value};

fn server() -> Server {
    start_sim(3, 100, &[], None)
}

fn rejected_with(token: Option<&str>, reason: &str) {
    let s = server();
    assert_401(&upgrade(&s, token), reason);
}

fn without(field: &str) -> Value {
    let mut c = claims("u1", "t1", &["TRADER"], 600);
    c.as_object_mut().unwrap().remove(field);
    c
}

#[test]
fn good_token_is_upgraded() {
    let s = server();
    let r = upgrade(&s, Some(&trader()));
    assert_eq!(r.status, 101, "{r:?}");
    let r = ws_upgrade_request(s.addr, &format!("/v1/ws?access_token={}", trader()), &[]);
    assert_eq!(r.status, 101, "token in the query: {r:?}");
}

#[test]
fn expiry_within_leeway_is_accepted() {
    let s = server();
    // Leeway is 5 s: a token that expired 2 s ago still upgrades.
    let r = upgrade(&s, Some(&sign(&claims("u1", "t1", &["TRADER"], -2))));
    assert_eq!(r.status, 101, "{r:?}");
}

#[test]
fn missing_token() {
    rejected_with(None, "missing_token");
}

#[test]
fn malformed_token() {
    rejected_with(Some("abc"), "malformed_token");
}

#[test]
fn bad_signature() {
    let t = sign_with(
        Algorithm::HS256,
        "some-other-secret",
        &claims("u1", "t1", &["TRADER"], 600),
    );
    rejected_with(Some(&t), "bad_signature");
}

#[test]
fn bad_signature_in_query_parameter() {
    let s = server();
    let t = sign_with(
        Algorithm::HS256,
        "some-other-secret",
        &claims("u1", "t1", &["TRADER"], 600),
    );
    assert_401(
        &ws_upgrade_request(s.addr, &format!("/v1/ws?access_token={t}"), &[]),
        "bad_signature",
    );
}

#[test]
fn alg_none_not_allowed() {
    rejected_with(
        Some(&unsigned_token(&claims("u1", "t1", &["TRADER"], 600))),
        "algorithm_not_allowed",
    );
}

#[test]
fn hs384_not_allowed() {
    let t = sign_with(
        Algorithm::HS384,
        SECRET,
        &claims("u1", "t1", &["TRADER"], 600),
    );
    rejected_with(Some(&t), "algorithm_not_allowed");
}

#[test]
fn token_expired() {
    rejected_with(
        Some(&sign(&claims("u1", "t1", &["TRADER"], -60))),
        "token_expired",
    );
}

#[test]
fn token_not_yet_valid() {
    let mut c = claims("u1", "t1", &["TRADER"], 600);
    c["nbf"] = json!(now_secs() + 60);
    rejected_with(Some(&sign(&c)), "token_not_yet_valid");
}

#[test]
fn missing_claims() {
    let s = server();
    for field in ["tenant", "sub", "roles"] {
        let r = upgrade(&s, Some(&sign(&without(field))));
        assert_eq!(r.status, 401, "token without {field}: {r:?}");
        assert_eq!(
            r.json()["reason"],
            "missing_claim",
            "token without {field}: {}",
            r.body
        );
    }
}
