//! The Origin policy (`server.allowed_origins`): which browser pages may
//! open a stream and read REST answers, so that a page a trader happens to
//! visit cannot use the trader's token (cross-site WebSocket hijacking).
//!
//! A request without `Origin` is not from a browser page and is let through
//! (its token still applies); the server's own page (`Origin` naming the
//! `Host` it asked) always may. Others must match a listed pattern: an exact
//! origin, or `scheme://host:*` for any port of a host.

/// The origins a node admits besides its own.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    patterns: Vec<String>,
}

/// What the list is when `server.allowed_origins` is not set, in dev mode:
/// pages served from this machine by a front-end dev server.
const DEV_DEFAULT: &str = "http://localhost:*";

impl OriginPolicy {
    /// The configured list, or else the mode's default: in dev mode local
    /// pages, in production none (only non-browser clients and the server's
    /// own page).
    pub fn new(configured: Option<&[String]>, dev_mode: bool) -> Self {
        let patterns = match configured {
            Some(list) => list.iter().map(|p| p.to_ascii_lowercase()).collect(),
            None if dev_mode => vec![DEV_DEFAULT.to_owned()],
            None => Vec::new(),
        };
        OriginPolicy { patterns }
    }

    /// Whether a request carrying `origin` (if any) to `host` may open a
    /// stream or be answered.
    pub fn admits(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        let own = host.is_some_and(|host| {
            ["http://", "https://"].iter().any(|scheme| {
                origin.len() == scheme.len() + host.len()
                    && origin[..scheme.len()].eq_ignore_ascii_case(scheme)
                    && origin[scheme.len()..].eq_ignore_ascii_case(host)
            })
        });
        own || self.lists(origin)
    }

    /// Whether `origin` is on the list: a cross-origin page that may read
    /// REST answers (`Access-Control-Allow-Origin`).
    pub fn lists(&self, origin: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        self.patterns.iter().any(|p| match p.strip_suffix(":*") {
            Some(host) => origin.strip_prefix(host).is_some_and(|port| {
                port.is_empty()
                    || port
                        .strip_prefix(':')
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            }),
            None => *p == origin,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_default_admits_only_non_browsers_and_the_own_page() {
        let p = OriginPolicy::new(None, false);
        assert!(p.admits(None, Some("q.example:8080")));
        assert!(p.admits(Some("http://q.example:8080"), Some("q.example:8080")));
        assert!(p.admits(Some("HTTPS://Q.example:8080"), Some("q.example:8080")));
        assert!(!p.admits(Some("http://localhost:3000"), Some("q.example:8080")));
        assert!(!p.admits(Some("http://q.example:8080"), None));
        assert!(!p.admits(Some("null"), Some("q.example:8080")));
        assert!(!p.lists("http://q.example:8080"));
    }

    #[test]
    fn dev_default_adds_any_localhost_port() {
        let p = OriginPolicy::new(None, true);
        for ok in [
            "http://localhost:5173",
            "http://localhost",
            "http://LOCALHOST:1",
        ] {
            assert!(p.admits(Some(ok), Some("127.0.0.1:8080")), "{ok}");
            assert!(p.lists(ok), "{ok}");
        }
        for bad in [
            "https://localhost:5173",
            "http://localhost.evil.example",
            "http://localhost:",
            "http://localhost:80x",
            "http://evil.example",
        ] {
            assert!(!p.admits(Some(bad), Some("127.0.0.1:8080")), "{bad}");
        }
    }

    #[test]
    fn a_configured_list_replaces_the_default() {
        let list = ["https://desk.example".to_owned()];
        let p = OriginPolicy::new(Some(&list), true);
        assert!(p.lists("https://desk.example"));
        assert!(!p.lists("https://desk.example:444"));
        assert!(!p.lists("http://localhost:5173"));
    }
}
