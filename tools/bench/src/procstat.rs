//! CPU time and resident memory of a process, from `/proc/<pid>`.

use serde::Serialize;

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ProcSample {
    /// utime + stime, in seconds.
    pub cpu_s: f64,
    /// Resident set size, KiB (`VmRSS`).
    pub rss_kib: u64,
}

/// Reads `pid` (`None` = this process); `None` when the process is gone.
pub fn sample(pid: Option<u32>) -> Option<ProcSample> {
    let dir = pid.map_or_else(|| "/proc/self".to_string(), |p| format!("/proc/{p}"));
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
    Some(ProcSample {
        cpu_s: cpu_seconds(&stat)?,
        rss_kib: rss_kib(&status)?,
    })
}

/// utime + stime of the calling thread, in seconds (`/proc/thread-self/stat`).
pub fn thread_cpu_s() -> Option<f64> {
    cpu_seconds(&std::fs::read_to_string("/proc/thread-self/stat").ok()?)
}

/// utime + stime of a `/proc/<pid>/stat` line, in seconds.
fn cpu_seconds(stat: &str) -> Option<f64> {
    // The command name (field 2) may hold spaces; fields count after its ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After ')': state is field 3, so utime (14) and stime (15) are the 12th and 13th.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ticks = if ticks > 0 { ticks as f64 } else { 100.0 };
    Some((utime + stime) as f64 / ticks)
}

fn rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_the_name() {
        let stat = "42 (a b) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 1 1 1";
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        assert_eq!(cpu_seconds(stat), Some(300.0 / ticks));
        assert_eq!(rss_kib("Name:\tx\nVmRSS:\t   1234 kB\n"), Some(1234));
    }

    #[test]
    fn samples_this_process() {
        let s = sample(None).unwrap();
        assert!(s.rss_kib > 0);
    }
}
