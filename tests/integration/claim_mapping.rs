//! Claim mapping against an identity provider's tokens: RS256 from the test
//! JWKS, `tenantId` and `realm_access.roles` mapped by `[auth.claims]`, the
//! token read from the configured `token` query parameter; refusal reasons
//! stay the documented ones.

use crate::events_util::*;
use crate::util::*;
use jsonwebtoken::Algorithm;
use serde_json::{json, Value};
use std::net::TcpStream;

fn config() -> String {
    format!(
        r#"
[auth]
# The JWKS holds RS256, ES256 and EdDSA keys; HS256 stays off.
algorithms = ["RS256", "ES256", "EdDSA"]
jwks_file = "{}"
query_params = ["access_token", "token"]

[auth.claims]
tenant = "tenantId"
roles = "realm_access.roles"
"#,
        key_path("jwks.json").display()
    )
}

/// Claims as a Keycloak-style provider names them.
fn idp_claims(sub: &str, tenant: &str, roles: &[&str]) -> Value {
    json!({"sub": sub, "tenantId": tenant, "realm_access": {"roles": roles},
        "exp": now_secs() + 600})
}

/// RS256 with the JWKS key `jwks-rsa`.
fn rs256(claims: &Value) -> String {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "jwks-rsa"});
    let key = private_key(Algorithm::RS256, "jwks_rsa_private.pem");
    sign_segments(&header, claims, Algorithm::RS256, &key)
}

fn connect_with_query(server: &Server, query: &str) -> Ws {
    let stream = TcpStream::connect(server.addr).expect("connect");
    connect_over(stream, server, None, query)
}

#[test]
fn mapped_claims_from_a_jwks_token_in_the_token_query_parameter() {
    let s = start_server(&[], Some(&config()));

    // Roles from realm_access.roles (upper-cased), tenant from tenantId.
    let user = rs256(&idp_claims("u1", "t9", &["risk_manager"]));
    let mut ws = connect_with_query(&s, &format!("?token={user}"));
    let (ack, _) = ws.request(json!({"op":"subscribe","id":1,"channel":"alerts"}));
    assert_eq!(ack["subscribed"], true, "{ack}");
    // metrics.trading needs TRADER, ANALYST or ADMIN: the mapped roles decide.
    let (refused, _) = ws.request(json!({"op":"subscribe","id":2,"channel":"metrics.trading"}));
    assert_eq!(refused["code"], "forbidden", "{refused}");

    // A publisher's token is mapped too; the alert reaches tenant t9 only.
    let service = rs256(&idp_claims("svc", "t9", &["SERVICE"]));
    let mut other = connect_with_query(
        &s,
        &format!(
            "?access_token={}",
            rs256(&idp_claims("u2", "t1", &["RISK_MANAGER"]))
        ),
    );
    let (ack, _) = other.request(json!({"op":"subscribe","id":1,"channel":"alerts"}));
    assert_eq!(ack["subscribed"], true, "{ack}");
    let resp = http_post(
        s.addr,
        "/v1/publish",
        Some(&service),
        &alert("t9", "mapped tenant").to_string(),
    );
    assert_eq!(resp.status, 202, "{}", resp.body);
    let got = ws.recv_json_until(deadline(), |v| v["type"] == "alert");
    assert_eq!(got["message"], "mapped tenant", "{got}");
    let frames = other.collect_for(after_ms(500));
    assert!(
        frames.iter().all(|f| f["type"] != "alert"),
        "tenant t1 got t9's alert: {}",
        tail(&frames)
    );

    // The Bearer header still wins over the query.
    let stream = TcpStream::connect(s.addr).expect("connect");
    let mut header = connect_over(stream, &s, Some(&user), "?token=garbage");
    header.ping(3);
}

#[test]
fn mapped_claims_keep_the_documented_refusals() {
    let s = start_server(&[], Some(&config()));
    let refused = |query: &str| ws_upgrade_request(s.addr, &format!("/v1/ws{query}"), &[]);

    // Default claim names no longer count: the mapped ones are missing.
    let plain = rs256(&claims("u1", "t1", &["TRADER"], 600));
    assert_401(&refused(&format!("?token={plain}")), "missing_claim");
    // A mapped path whose shape is wrong counts as missing too.
    let mut flat = idp_claims("u1", "t1", &["TRADER"]);
    flat["realm_access"] = json!(["TRADER"]);
    assert_401(
        &refused(&format!("?token={}", rs256(&flat))),
        "missing_claim",
    );
    // Only the configured parameters carry a token.
    let good = rs256(&idp_claims("u1", "t1", &["TRADER"]));
    assert_401(&refused(&format!("?jwt={good}")), "missing_token");
    assert_401(&refused("?token="), "missing_token");
    // Signature and algorithm checks are unchanged.
    // One signature character well inside it (the last one has spare bits).
    let at = good.len() - 10;
    let flipped = if &good[at..=at] == "A" { "B" } else { "A" };
    let forged = format!("{}{flipped}{}", &good[..at], &good[at + 1..]);
    assert_401(&refused(&format!("?token={forged}")), "bad_signature");
    assert_401(
        &refused(&format!(
            "?token={}",
            sign(&idp_claims("u1", "t1", &["TRADER"]))
        )),
        "algorithm_not_allowed",
    );
}
