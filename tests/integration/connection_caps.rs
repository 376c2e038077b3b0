//! Open connections per IP and per tenant are capped node-wide: over a cap
//! the upgrade gets 429 with `{"error":"too_many_connections","reason":..}`,
//! and a closed connection frees its slot again.

use crate::util::*;

fn tenant_token(tenant: &str) -> String {
    sign(&claims("u1", tenant, &["TRADER"], 600))
}

fn upgrade(s: &Server, token: &str) -> HttpResponse {
    ws_upgrade_request(
        s.addr,
        "/v1/ws",
        &[("Authorization", &format!("Bearer {token}"))],
    )
}

fn assert_refused(r: &HttpResponse, reason: &str) {
    assert_eq!(r.status, 429, "{r:?}");
    let body = r.json();
    assert_eq!(body["error"], "too_many_connections", "{body}");
    assert_eq!(body["reason"], reason, "{body}");
}

/// Retries the upgrade until it is accepted (the server frees a slot when it
/// has processed the close).
fn accepted_again(s: &Server, token: &str) {
    let deadline = deadline();
    loop {
        let r = upgrade(s, token);
        if r.status == 101 {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "still refused: {r:?}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn per_ip_cap_refuses_with_429_and_frees_on_close() {
    let toml = "[server]\nmax_connections_per_ip = 3\nmax_connections_per_tenant = 0\n";
    let s = start_server(&["--shards", "2"], Some(toml));
    let mut open: Vec<Ws> = ["a", "b", "c"]
        .iter()
        .map(|t| connect(&s, &tenant_token(t)))
        .collect();
    assert_refused(&upgrade(&s, &tenant_token("d")), "per_ip");
    open.pop();
    accepted_again(&s, &tenant_token("d"));
    drop(open);
    status_until(&s, deadline(), |v| v["connections"] == 0);
    let again: Vec<Ws> = ["a", "b", "c"]
        .iter()
        .map(|t| connect(&s, &tenant_token(t)))
        .collect();
    assert_eq!(again.len(), 3);
}

#[test]
fn per_tenant_cap_refuses_with_429_and_frees_on_close() {
    let toml = "[server]\nmax_connections_per_ip = 0\nmax_connections_per_tenant = 2\n";
    let s = start_server(&["--shards", "2"], Some(toml));
    let first = connect(&s, &tenant_token("t1"));
    let _second = connect(&s, &tenant_token("t1"));
    assert_refused(&upgrade(&s, &tenant_token("t1")), "per_tenant");
    // Another tenant is not affected.
    let _other = connect(&s, &tenant_token("t2"));
    drop(first);
    accepted_again(&s, &tenant_token("t1"));
}
