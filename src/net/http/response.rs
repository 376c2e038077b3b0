//! Responses: each complete, each closing the connection.

use crate::auth::AuthError;

/// A complete HTTP response that closes the connection.
pub fn response(status: u16, content_type: &str, body: &str) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    };
    let extra = if status == 426 {
        "Sec-WebSocket-Version: 13\r\n"
    } else {
        ""
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Connection: close\r\nCache-Control: no-store\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A JSON error response `{"error":..,"reason":..}`.
pub fn json_error(status: u16, error: &str, reason: &str) -> Vec<u8> {
    let body = serde_json::json!({ "error": error, "reason": reason }).to_string();
    response(status, "application/json", &body)
}

/// The `401` response for a refused token.
pub fn unauthorized(err: &AuthError) -> Vec<u8> {
    response(401, "application/json", &err.json_body())
}

/// `reply` with the header lines `headers` (each ending in CRLF) added
/// after its status line.
pub fn with_headers(mut reply: Vec<u8>, headers: &str) -> Vec<u8> {
    if headers.is_empty() {
        return reply;
    }
    let at = reply
        .windows(2)
        .position(|w| w == b"\r\n")
        .map_or(reply.len(), |i| i + 2);
    reply.splice(at..at, headers.bytes());
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_go_after_the_status_line() {
        let reply = with_headers(response(200, "text/plain", "ok"), "A: 1\r\n");
        let text = String::from_utf8(reply).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 200 OK\r\nA: 1\r\nContent-Type: text/plain\r\n"),
            "{text}"
        );
        assert!(text.ends_with("\r\n\r\nok"), "{text}");
    }
}
