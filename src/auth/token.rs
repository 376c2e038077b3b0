//! Where a request carries its token: the `Authorization` header or the
//! `access_token` query parameter (browsers cannot set headers on a WebSocket).

use super::AuthError;
use percent_encoding::percent_decode_str;

/// Takes the token from `Authorization: Bearer <jwt>` (scheme matched
/// case-insensitively) or else from the `access_token` query parameter
/// (percent-decoded, `+` as space). A non-Bearer header falls through to the query.
pub fn token_from_request(
    authorization: Option<&str>,
    query: Option<&str>,
) -> Result<String, AuthError> {
    if let Some((scheme, token)) = authorization.and_then(|h| h.trim().split_once([' ', '\t'])) {
        let token = token.trim();
        if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() {
            return Ok(token.to_string());
        }
    }
    let query = query.unwrap_or("");
    for pair in query.strip_prefix('?').unwrap_or(query).split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if form_decode(name).as_deref() != Some("access_token") {
            continue;
        }
        return match form_decode(value) {
            None => Err(AuthError::MalformedToken),
            Some(token) if token.is_empty() => Err(AuthError::MissingToken),
            Some(token) => Ok(token),
        };
    }
    Err(AuthError::MissingToken)
}

/// Decodes a form-encoded query component (`%XX` escapes, `+` as space);
/// `None` for a broken escape or invalid UTF-8.
pub(crate) fn form_decode(s: &str) -> Option<String> {
    // percent-encoding passes a broken escape through as text; a token
    // altered that way must be refused, not forwarded.
    let whole = |(i, _)| {
        s.get(i + 1..i + 3)
            .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    if !s.match_indices('%').all(whole) {
        return None;
    }
    let spaced = s.replace('+', " ");
    let decoded = percent_decode_str(&spaced).decode_utf8().ok()?;
    Some(decoded.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_wins_over_query() {
        let got = token_from_request(Some("Bearer a.b.c"), Some("access_token=x.y.z"));
        assert_eq!(got.unwrap(), "a.b.c");
        let got = token_from_request(Some("bEaReR   a.b.c "), None);
        assert_eq!(got.unwrap(), "a.b.c");
    }

    #[test]
    fn query_is_used_without_a_bearer_header() {
        let q = Some("channel=prices&access_token=x.y.z&symbols=A,B");
        assert_eq!(token_from_request(None, q).unwrap(), "x.y.z");
        assert_eq!(token_from_request(Some("Basic dTpw"), q).unwrap(), "x.y.z");
        assert_eq!(token_from_request(Some("Bearer "), q).unwrap(), "x.y.z");
        let leading = Some("?access_token=x.y.z");
        assert_eq!(token_from_request(None, leading).unwrap(), "x.y.z");
    }

    #[test]
    fn query_token_is_percent_decoded() {
        let q = Some("access%5Ftoken=a%2Eb%2ec%20d+e");
        assert_eq!(token_from_request(None, q).unwrap(), "a.b.c d e");
        for bad in ["access_token=a%2", "access_token=a%zz", "access_token=%ff"] {
            let err = token_from_request(None, Some(bad)).unwrap_err();
            assert_eq!(err.reason(), "malformed_token", "{bad}");
        }
    }

    #[test]
    fn no_token_is_missing_token() {
        for (header, query) in [
            (None, None),
            (None, Some("")),
            (None, Some("channel=prices&token=x")),
            (None, Some("access_token=")),
            (Some("Basic dTpw"), None),
            (Some("Bearer"), None),
        ] {
            let err = token_from_request(header, query).unwrap_err();
            assert_eq!(err.reason(), "missing_token", "{header:?} {query:?}");
        }
    }
}
