//! What `quotecast doctor` reads from the host: resource limits, sysctls,
//! CPU topology and settings, and whether io_uring can be set up.

use std::path::Path;

/// The host facts the checks judge. Every field is a plain value so the
/// checks can be tested with made-up hosts (and with the files in `tuning/`).
#[derive(Debug, Clone)]
pub struct Host {
    /// `Err(why)` when an io_uring instance cannot be created.
    pub io_uring: Result<(), String>,
    /// `RLIMIT_MEMLOCK` hard limit in bytes (`None` = unlimited); quotecast
    /// raises its soft limit to it at start.
    pub memlock_hard: Option<u64>,
    /// `RLIMIT_NOFILE` soft limit (`None` = unlimited).
    pub nofile_soft: Option<u64>,
    /// `RLIMIT_NOFILE` hard limit (`None` = unlimited).
    pub nofile_hard: Option<u64>,
    /// `net.core.somaxconn`.
    pub somaxconn: Option<u64>,
    /// `net.ipv4.tcp_rmem`: min, default, max.
    pub tcp_rmem: Option<[u64; 3]>,
    /// `net.ipv4.tcp_wmem`: min, default, max.
    pub tcp_wmem: Option<[u64; 3]>,
    /// `net.core.wmem_max`: the most an `SO_SNDBUF` may ask for.
    pub wmem_max: Option<u64>,
    /// CPUs this process may run on.
    pub cpus: usize,
    /// `/sys/devices/system/cpu/isolated` (empty when none).
    pub isolated: String,
    /// The scaling governor of each CPU that has cpufreq (empty in most VMs).
    pub governors: Vec<String>,
    /// `/sys/kernel/mm/transparent_hugepage/enabled`, e.g. `always [madvise] never`.
    pub thp: Option<String>,
}

impl Host {
    /// Reads the running host.
    pub fn read() -> Host {
        let (memlock_hard, _) = rlimit(libc::RLIMIT_MEMLOCK);
        let (nofile_hard, nofile_soft) = rlimit(libc::RLIMIT_NOFILE);
        Host {
            io_uring: io_uring_available(),
            memlock_hard,
            nofile_soft,
            nofile_hard,
            somaxconn: read_u64("/proc/sys/net/core/somaxconn"),
            tcp_rmem: read_triple("/proc/sys/net/ipv4/tcp_rmem"),
            tcp_wmem: read_triple("/proc/sys/net/ipv4/tcp_wmem"),
            wmem_max: read_u64("/proc/sys/net/core/wmem_max"),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            isolated: read("/sys/devices/system/cpu/isolated").unwrap_or_default(),
            governors: governors(),
            thp: read("/sys/kernel/mm/transparent_hugepage/enabled"),
        }
    }
}

fn read(path: impl AsRef<Path>) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

fn read_u64(path: &str) -> Option<u64> {
    read(path)?.parse().ok()
}

/// Parses a three-number sysctl such as `4096 131072 6291456`.
pub fn parse_triple(text: &str) -> Option<[u64; 3]> {
    let mut it = text.split_whitespace().map(|n| n.parse::<u64>().ok());
    let triple = [it.next()??, it.next()??, it.next()??];
    it.next().is_none().then_some(triple)
}

fn read_triple(path: &str) -> Option<[u64; 3]> {
    parse_triple(&read(path)?)
}

/// `(hard, soft)` of `resource`; `None` means unlimited.
fn rlimit(resource: libc::__rlimit_resource_t) -> (Option<u64>, Option<u64>) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the valid rlimit struct we pass.
    if unsafe { libc::getrlimit(resource, &mut lim) } != 0 {
        return (Some(0), Some(0));
    }
    let finite = |v: libc::rlim_t| (v != libc::RLIM_INFINITY).then_some(v);
    (finite(lim.rlim_max), finite(lim.rlim_cur))
}

/// Sets up (and closes) a one-entry io_uring, as glommio will.
fn io_uring_available() -> Result<(), String> {
    if read("/proc/sys/kernel/io_uring_disabled").is_some_and(|v| v != "0") {
        return Err("kernel.io_uring_disabled is set".into());
    }
    // struct io_uring_params is 120 bytes; zeroed means default flags.
    let mut params = [0u8; 120];
    // SAFETY: io_uring_setup reads and writes `params`, which is large
    // enough; the returned fd is closed below.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr()) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    // SAFETY: closing the fd io_uring_setup just returned.
    unsafe { libc::close(fd as libc::c_int) };
    Ok(())
}

fn governors() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/sys/devices/system/cpu") else {
        return Vec::new();
    };
    let mut found: Vec<String> = dir
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.strip_prefix("cpu")
                .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()) && !n.is_empty())
        })
        .filter_map(|e| read(e.path().join("cpufreq/scaling_governor")))
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triples_need_exactly_three_numbers() {
        assert_eq!(
            parse_triple("4096\t131072 6291456"),
            Some([4096, 131072, 6291456])
        );
        assert_eq!(parse_triple("4096 131072"), None);
        assert_eq!(parse_triple("1 2 3 4"), None);
        assert_eq!(parse_triple("1 x 3"), None);
    }

    #[test]
    fn this_host_reads() {
        let host = Host::read();
        assert!(host.cpus >= 1);
        // Linux always has these two.
        assert!(
            host.somaxconn.is_some() && host.tcp_wmem.is_some(),
            "{host:?}"
        );
    }
}
