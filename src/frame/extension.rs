//! permessage-deflate negotiation (RFC 7692 §5, §7.1) from a client's
//! `Sec-WebSocket-Extensions` offers.
//!
//! The first offer the server can honour is accepted; one it cannot (an
//! unknown or repeated parameter, a bad value) is passed over, and when none
//! is left the connection goes on uncompressed: an offer never fails the
//! handshake.

/// The offer accepted for one connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The LZ77 window the server may use: the client's
    /// `server_max_window_bits`, or 15.
    pub window_bits: u8,
    /// The `Sec-WebSocket-Extensions` value of the 101 response.
    pub response: String,
}

/// The accepted `permessage-deflate` offer among `headers` (every
/// `Sec-WebSocket-Extensions` value of the request, in order), if any.
///
/// The response always carries `server_no_context_takeover` (a compressed
/// frame is then shared by every connection) and `client_no_context_takeover`
/// (RFC 7692 §7.1.1.1 lets a server ask for it in any response; no inflate
/// window is then kept per connection between messages).
pub fn negotiate<'a>(headers: impl IntoIterator<Item = &'a str>) -> Option<Accepted> {
    headers
        .into_iter()
        .flat_map(|h| split_outside_quotes(h, ','))
        .find_map(accept_offer)
}

/// The parameters of one offer that matter to the server.
#[derive(Default)]
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `client_max_window_bits`, with its value if it has one.
    client_max_window_bits: Option<Option<u8>>,
}

fn accept_offer(offer: &str) -> Option<Accepted> {
    let mut parts = split_outside_quotes(offer, ';');
    if !parts
        .next()?
        .trim()
        .eq_ignore_ascii_case("permessage-deflate")
    {
        return None;
    }
    let mut seen = Offer::default();
    for param in parts {
        let (name, value) = match param.split_once('=') {
            Some((n, v)) => (n.trim(), Some(unquote(v.trim())?)),
            None => (param.trim(), None),
        };
        match name.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" if value.is_none() && !seen.server_no_context_takeover => {
                seen.server_no_context_takeover = true;
            }
            "client_no_context_takeover" if value.is_none() && !seen.client_no_context_takeover => {
                seen.client_no_context_takeover = true;
            }
            "server_max_window_bits" if seen.server_max_window_bits.is_none() => {
                seen.server_max_window_bits = Some(window_bits(value?)?);
            }
            "client_max_window_bits" if seen.client_max_window_bits.is_none() => {
                // Without a value it only says the client could limit its
                // window; the server inflates with the largest window
                // anyway, so it never asks it to.
                seen.client_max_window_bits = Some(match value {
                    Some(v) => Some(window_bits(v)?),
                    None => None,
                });
            }
            _ => return None,
        }
    }
    let mut response =
        String::from("permessage-deflate; server_no_context_takeover; client_no_context_takeover");
    if let Some(bits) = seen.server_max_window_bits {
        response.push_str(&format!("; server_max_window_bits={bits}"));
    }
    Some(Accepted {
        window_bits: seen
            .server_max_window_bits
            .unwrap_or(super::deflate::MAX_WINDOW_BITS),
        response,
    })
}

/// A window size: a decimal 8..=15 without leading zeros (RFC 7692 §7.1.2).
fn window_bits(value: &str) -> Option<u8> {
    if value.starts_with('0') || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok().filter(|b| (8..=15).contains(b))
}

/// A parameter value with the quotes of a quoted-string removed.
fn unquote(value: &str) -> Option<&str> {
    match value.strip_prefix('"') {
        // Window sizes are digits, so an escape is never needed in one.
        Some(rest) => rest.strip_suffix('"').filter(|v| !v.contains(['"', '\\'])),
        None => Some(value),
    }
}

/// Splits `s` on `sep` except inside a quoted string.
fn split_outside_quotes(s: &str, sep: char) -> impl Iterator<Item = &str> {
    let mut quoted = false;
    let mut escaped = false;
    s.split(move |c: char| {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        }
        c == sep && !quoted
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(offers: &[&str]) -> Option<u8> {
        negotiate(offers.iter().copied()).map(|a| a.window_bits)
    }

    #[test]
    fn accepts_the_browser_offer_with_no_context_takeover_both_ways() {
        let a = negotiate(["permessage-deflate; client_max_window_bits"]).unwrap();
        assert_eq!(a.window_bits, 15);
        assert_eq!(
            a.response,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
    }

    #[test]
    fn honours_server_max_window_bits_and_quoted_values() {
        let a =
            negotiate(["permessage-deflate; server_max_window_bits=9; client_no_context_takeover"])
                .unwrap();
        assert_eq!(a.window_bits, 9);
        assert!(a.response.ends_with("; server_max_window_bits=9"));
        assert_eq!(
            bits(&["permessage-deflate; server_max_window_bits=\"10\""]),
            Some(10)
        );
        assert_eq!(
            bits(&["permessage-deflate; client_max_window_bits=\"8\""]),
            Some(15)
        );
    }

    #[test]
    fn passes_over_offers_it_cannot_honour() {
        for bad in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; client_max_window_bits=x",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; mystery",
            "permessage-deflate; server_max_window_bits=\"9",
            "x-webkit-deflate-frame",
        ] {
            assert_eq!(bits(&[bad]), None, "{bad}");
        }
        // The next offer, in the same header or a later one, is taken.
        assert_eq!(
            bits(&["permessage-deflate; mystery, permessage-deflate; server_max_window_bits=12"]),
            Some(12)
        );
        assert_eq!(bits(&["foo; a=\"x,y\"", "permessage-deflate"]), Some(15));
        assert_eq!(bits(&[]), None);
    }
}
