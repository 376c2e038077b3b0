//! The one wall clock of the server: every `ts` it publishes and every age
//! it judges (feed staleness, history retention, windows) reads it, so
//! clients can measure end-to-end latency against their own clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the UNIX epoch.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Milliseconds since the UNIX epoch (`server_time`, `session_expires`).
pub fn now_ms() -> u64 {
    now_us() / 1_000
}
