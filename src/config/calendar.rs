//! `[channels.calendar]`: where calendar periods (`window: "day"`, `"hour"`,
//! `"session"`) begin. The time zone is a fixed offset from UTC (no
//! daylight-saving rules: an operator in such a zone changes the offset).

use serde::{Deserialize, Serialize};

/// Calendar periods of `metrics.*` running totals.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CalendarConfig {
    /// The zone's offset from UTC in minutes (e.g. `-300` for New York in
    /// winter), -1439..=1439.
    pub utc_offset_minutes: i32,
    /// Local time at which a trading day begins, `"HH:MM"`.
    pub day_start: String,
    /// Local time at which a trading session begins, `"HH:MM"`; `window:
    /// "session"` is offered only when it is set.
    pub session_start: Option<String>,
    /// Length of a day in seconds: 86400 but for tests, which shorten it;
    /// an hour is a 24th of it.
    pub day_secs: u64,
    /// Most distinct `dims` combinations kept per tenant and channel; an
    /// event with a new combination past it is left out (and counted).
    pub max_groups: usize,
}

impl Default for CalendarConfig {
    fn default() -> Self {
        CalendarConfig {
            utc_offset_minutes: 0,
            day_start: "00:00".into(),
            session_start: None,
            day_secs: 86_400,
            max_groups: 10_000,
        }
    }
}

impl CalendarConfig {
    /// Checks the settings; the message names the key.
    pub fn check(&self) -> Result<(), String> {
        if self.utc_offset_minutes.abs() > 1439 {
            return Err("calendar.utc_offset_minutes must be in -1439..=1439".into());
        }
        if self.day_secs == 0 || self.day_secs > 86_400 {
            return Err("calendar.day_secs must be in 1..=86400".into());
        }
        if self.max_groups == 0 {
            return Err("calendar.max_groups must be > 0".into());
        }
        clock_minutes(&self.day_start).ok_or("calendar.day_start must be \"HH:MM\"")?;
        if let Some(s) = &self.session_start {
            clock_minutes(s).ok_or("calendar.session_start must be \"HH:MM\"")?;
        }
        Ok(())
    }
}

/// Minutes after midnight of `"HH:MM"` (00:00..=23:59).
pub fn clock_minutes(hhmm: &str) -> Option<u32> {
    let (h, m) = hhmm.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_bounds_are_checked() {
        assert_eq!(clock_minutes("17:30"), Some(17 * 60 + 30));
        for bad in ["24:00", "7:00", "07:60", "0700", "aa:bb"] {
            assert_eq!(clock_minutes(bad), None, "{bad}");
        }
        assert!(CalendarConfig::default().check().is_ok());
        let bad = |f: fn(&mut CalendarConfig)| {
            let mut c = CalendarConfig::default();
            f(&mut c);
            c.check().unwrap_err()
        };
        assert!(bad(|c| c.day_secs = 0).contains("day_secs"));
        assert!(bad(|c| c.utc_offset_minutes = 1440).contains("utc_offset"));
        assert!(bad(|c| c.session_start = Some("x".into())).contains("session_start"));
    }
}
