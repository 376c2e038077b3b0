//! Integration tests: each module starts the real `quotecast` binary on port 0
//! and talks to it over real sockets; one module per behaviour.

mod util;

mod auth_rejections;
mod bad_ops;
mod echo_route;
mod entitlements;
mod frame_rules;
mod http_routes;
mod idle_timeout;
mod limits;
mod never_reader;
mod rate_cap;
mod seq_and_prices;
mod shutdown;
mod slow_reader;
mod subscribe_snapshot;
mod token_expiry;
mod unsubscribe;
mod welcome;
