//! Where a request carries its token: the `Authorization` header or a
//! configured query parameter (`auth.query_params`, by default
//! `access_token`: browsers cannot set headers on a WebSocket).

use super::AuthError;
use percent_encoding::percent_decode_str;

/// Takes the token from `Authorization: Bearer <jwt>` (scheme matched
/// case-insensitively) or else from the first of the query parameters
/// `params` present (percent-decoded, `+` as space). A non-Bearer header
/// falls through to the query.
pub fn token_from_request(
    authorization: Option<&str>,
    query: Option<&str>,
    params: &[String],
) -> Result<String, AuthError> {
    if let Some((scheme, token)) = authorization.and_then(|h| h.trim().split_once([' ', '\t'])) {
        let token = token.trim();
        if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() {
            return Ok(token.to_string());
        }
    }
    let query = query.unwrap_or("");
    let pairs: Vec<(Option<String>, &str)> = query
        .strip_prefix('?')
        .unwrap_or(query)
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .map(|(name, value)| (form_decode(name), value))
        .collect();
    let first_listed = params.iter().find_map(|param| {
        pairs
            .iter()
            .find(|(name, _)| name.as_deref() == Some(param.as_str()))
    });
    if let Some((_, value)) = first_listed {
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

    fn token_from_request(h: Option<&str>, q: Option<&str>) -> Result<String, AuthError> {
        super::token_from_request(h, q, &["access_token".to_string()])
    }

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

    #[test]
    fn configured_query_params_are_tried_in_order() {
        let params = ["access_token".to_string(), "token".to_string()];
        let get = |q: &str| super::token_from_request(None, Some(q), &params);
        assert_eq!(get("token=t.t.t").unwrap(), "t.t.t");
        assert_eq!(get("token=t.t.t&access_token=a.a.a").unwrap(), "a.a.a");
        let none: &[String] = &[];
        let err = super::token_from_request(None, Some("access_token=a.b.c"), none);
        assert_eq!(err.unwrap_err().reason(), "missing_token");
    }
}
