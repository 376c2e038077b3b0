//! The browser side, built into the binary so a plain `cargo run` serves it
//! (no Node): the SDK at `/client.js` and the trading terminal page at `/`.

use super::response::response;

/// The SDK, `clients/js/src/quotecast.js`.
const CLIENT_JS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/clients/js/src/quotecast.js"
));

/// The terminal page, `clients/terminal/index.html`.
const TERMINAL: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/clients/terminal/index.html"
));

/// `GET /client.js`.
pub fn client_js() -> Vec<u8> {
    response(200, "text/javascript; charset=utf-8", CLIENT_JS)
}

/// `GET /`.
pub fn terminal() -> Vec<u8> {
    response(200, "text/html; charset=utf-8", TERMINAL)
}
