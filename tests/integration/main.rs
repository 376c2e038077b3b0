//! Integration tests: each module starts the real `quotecast` binary on port 0
//! and talks to it over real sockets; one module per behaviour.

mod events_util;
mod util;

mod alerts_replay;
mod auth_rejections;
mod bad_ops;
mod channel_permissions;
mod client_resume;
mod connection_caps;
mod doctor;
mod echo_route;
mod entitlements;
mod feed_faults;
mod frame_limits;
mod frame_rules;
mod handshake_limits;
mod http_routes;
mod idle_timeout;
mod jwt_attacks;
mod limits;
mod metrics_endpoint;
mod metrics_windows;
mod never_reader;
mod publish_http;
mod publish_visible;
mod rate_cap;
mod seq_and_prices;
mod shutdown;
mod slow_reader;
mod structured_logs;
mod subscribe_snapshot;
mod tenant_isolation;
mod token_expiry;
mod unsubscribe;
mod watch_reconnect;
mod welcome;
