//! `quotecast doctor`: checks the host against what `tuning/` recommends and
//! prints each finding with its fix; exits non-zero when a finding would
//! stop quotecast from serving as configured.

mod probe;

use crate::config::Config;
use probe::Host;
use std::fmt;

/// A connection needs one fd; this many more cover listeners, io_uring,
/// the feed, logs and HTTP requests in flight.
const FD_SLACK: u64 = 1_024;
/// `net.core.somaxconn` below this truncates the shards' listen backlog (1024 each).
const SOMAXCONN_MIN: u64 = 4_096;

/// Arguments of `quotecast doctor`.
#[derive(clap::Args, Debug)]
pub struct DoctorArgs {
    /// TOML configuration the server will run with (shards, buffers).
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
    /// WebSocket connections this node should hold.
    #[arg(long, default_value_t = 10_000)]
    pub connections: u64,
}

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// As recommended.
    Ok,
    /// Worth knowing; fine for development.
    Note,
    /// Costs latency or capacity.
    Warn,
    /// quotecast cannot serve as configured.
    Fail,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// How much it matters.
    pub level: Level,
    /// What was checked.
    pub check: &'static str,
    /// What was found.
    pub found: String,
    /// What to do about it (empty when nothing).
    pub fix: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            Level::Ok => "ok",
            Level::Note => "note",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        };
        write!(f, "{level:<5} {:<14} {}", self.check, self.found)?;
        if !self.fix.is_empty() {
            write!(f, "\n{:<20}fix: {}", "", self.fix)?;
        }
        Ok(())
    }
}

fn finding(level: Level, check: &'static str, found: String, fix: &str) -> Finding {
    let fix = if level == Level::Ok { "" } else { fix };
    Finding {
        level,
        check,
        found,
        fix: fix.to_owned(),
    }
}

/// Runs every check on this host and prints the findings; false when one
/// is blocking (the command then exits 1).
pub fn run(args: &DoctorArgs, config: &Config) -> bool {
    let findings = check(&Host::read(), config, args.connections);
    for f in &findings {
        println!("{f}");
    }
    match findings.iter().filter(|f| f.level == Level::Fail).count() {
        0 => {
            println!("no blocking problem");
            true
        }
        n => {
            println!("{n} blocking problem(s): see the fixes above and tuning/README.md");
            false
        }
    }
}

/// Judges `host` for `config` serving `connections` connections.
pub fn check(host: &Host, config: &Config, connections: u64) -> Vec<Finding> {
    let shards = config.shard_count(host.cpus);
    vec![
        io_uring(host),
        memlock(host, shards, config.server.io_memory_kib as u64 * 1024),
        nofile(host, connections),
        somaxconn(host),
        send_buffers(host, config.server.send_buffer_bytes as u64),
        receive_buffers(host),
        cpus(host, shards),
        isolated(host),
        governor(host),
        thp(host),
    ]
}

fn io_uring(host: &Host) -> Finding {
    match &host.io_uring {
        Ok(()) => finding(Level::Ok, "io_uring", "available".into(), ""),
        Err(why) => finding(
            Level::Fail,
            "io_uring",
            format!("cannot be set up: {why}"),
            "glommio needs io_uring: Linux 5.8 or later, sysctl kernel.io_uring_disabled=0, \
             and a seccomp profile (containers) that allows io_uring_setup",
        ),
    }
}

fn memlock(host: &Host, shards: usize, per_shard: u64) -> Finding {
    let need = shards as u64 * per_shard;
    let found = |have: String| {
        format!(
            "hard limit {have}, {shards} shard(s) need {} KiB",
            need / 1024
        )
    };
    match host.memlock_hard {
        None => finding(Level::Ok, "ulimit -l", found("unlimited".into()), ""),
        Some(have) => finding(
            if have >= need { Level::Ok } else { Level::Fail },
            "ulimit -l",
            found(format!("{} KiB", have / 1024)),
            "LimitMEMLOCK=infinity in the unit (tuning/quotecast.service), or `ulimit -l unlimited` \
             as root; or fewer shards / a smaller server.io_memory_kib",
        ),
    }
}

fn nofile(host: &Host, connections: u64) -> Finding {
    let need = connections + FD_SLACK;
    let show = |v: Option<u64>| v.map_or("unlimited".to_owned(), |v| v.to_string());
    let found = format!(
        "soft {} (hard {}), {connections} connections need {need}",
        show(host.nofile_soft),
        show(host.nofile_hard)
    );
    let level = match host.nofile_soft {
        Some(soft) if soft < need => Level::Fail,
        _ => Level::Ok,
    };
    let fix = format!(
        "LimitNOFILE={} in the unit, or `ulimit -n {need}` before starting (raise fs.nr_open if above it)",
        need.max(1_000_000)
    );
    finding(level, "ulimit -n", found, &fix)
}

fn somaxconn(host: &Host) -> Finding {
    let fix =
        format!("sysctl -w net.core.somaxconn={SOMAXCONN_MIN} (tuning/sysctl.d/60-quotecast.conf)");
    match host.somaxconn {
        Some(v) if v >= SOMAXCONN_MIN => finding(Level::Ok, "somaxconn", v.to_string(), ""),
        Some(v) => finding(
            Level::Warn,
            "somaxconn",
            format!("{v} < {SOMAXCONN_MIN}: a connect storm overflows the listen backlog"),
            &fix,
        ),
        None => finding(Level::Note, "somaxconn", "unreadable".into(), &fix),
    }
}

fn send_buffers(host: &Host, send_buffer: u64) -> Finding {
    let fix = format!(
        "sysctl -w net.core.wmem_max={0} net.ipv4.tcp_wmem=\"4096 16384 {0}\" \
         (tuning/sysctl.d/60-quotecast.conf)",
        send_buffer.max(4 << 20)
    );
    let (Some(wmem_max), Some([_, _, tcp_max])) = (host.wmem_max, host.tcp_wmem) else {
        return finding(Level::Note, "tcp_wmem", "unreadable".into(), &fix);
    };
    let found = format!(
        "wmem_max {wmem_max}, tcp_wmem max {tcp_max}; server.send_buffer_bytes {send_buffer}"
    );
    // SO_SNDBUF is capped at wmem_max: a smaller cap makes the slow-consumer
    // detection fire earlier than configured.
    let level = if send_buffer > 0 && (wmem_max < send_buffer || tcp_max < send_buffer) {
        Level::Warn
    } else {
        Level::Ok
    };
    finding(level, "tcp_wmem", found, &fix)
}

fn receive_buffers(host: &Host) -> Finding {
    let fix =
        "sysctl -w net.ipv4.tcp_rmem=\"4096 87380 6291456\" (tuning/sysctl.d/60-quotecast.conf)";
    match host.tcp_rmem {
        // Clients send only small ops; a small receive buffer per connection
        // saves memory at 100k connections, but the default must fit an op.
        Some([min, default, max]) => finding(
            if default >= 4096 {
                Level::Ok
            } else {
                Level::Warn
            },
            "tcp_rmem",
            format!("{min} {default} {max}"),
            fix,
        ),
        None => finding(Level::Note, "tcp_rmem", "unreadable".into(), fix),
    }
}

fn cpus(host: &Host, shards: usize) -> Finding {
    let found = format!(
        "{} CPU(s) for {shards} shard(s) + the aggregator thread",
        host.cpus
    );
    let level = if shards > host.cpus {
        Level::Fail
    } else if shards == host.cpus && host.cpus > 1 {
        Level::Note
    } else {
        Level::Ok
    };
    let fix = if level == Level::Fail {
        "set server.shards to at most the CPU count (0 = one per CPU): a shard per core is the design"
    } else {
        "on a dedicated box give core 0 to the kernel and the aggregator: [ingest] aggregator_core = 0 \
         (the shards then take the other cores)"
    };
    finding(level, "cpus", found, fix)
}

fn isolated(host: &Host) -> Finding {
    if host.isolated.is_empty() {
        finding(
            Level::Note,
            "isolated cores",
            "none".into(),
            "boot with isolcpus=1-N nohz_full=1-N rcu_nocbs=1-N and CPUAffinity=1-N in the unit",
        )
    } else {
        finding(Level::Ok, "isolated cores", host.isolated.clone(), "")
    }
}

fn governor(host: &Host) -> Finding {
    let fix = "cpupower frequency-set -g performance (or set it in the BIOS)";
    if host.governors.is_empty() {
        return finding(
            Level::Note,
            "cpu governor",
            "no cpufreq (a VM, or fixed by the BIOS)".into(),
            fix,
        );
    }
    let slow: Vec<&str> = host
        .governors
        .iter()
        .map(String::as_str)
        .filter(|g| *g != "performance")
        .collect();
    let mut seen = host.governors.clone();
    seen.dedup();
    let level = if slow.is_empty() {
        Level::Ok
    } else {
        Level::Warn
    };
    finding(level, "cpu governor", seen.join(", "), fix)
}

fn thp(host: &Host) -> Finding {
    let fix = "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled \
               (or transparent_hugepage=madvise on the kernel command line)";
    match &host.thp {
        Some(mode) if mode.contains("[always]") => finding(
            Level::Warn,
            "THP",
            format!("{mode}: khugepaged compaction stalls add latency spikes"),
            fix,
        ),
        Some(mode) => finding(Level::Ok, "THP", mode.clone(), ""),
        None => finding(Level::Note, "THP", "not available".into(), ""),
    }
}

#[cfg(test)]
mod tests;
