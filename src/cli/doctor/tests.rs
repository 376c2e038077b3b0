use super::probe::{parse_triple, Host};
use super::*;

const UNIT: &str = include_str!("../../../tuning/quotecast.service");
const SYSCTL: &str = include_str!("../../../tuning/sysctl.d/60-quotecast.conf");
const README: &str = include_str!("../../../tuning/README.md");

/// A host as tuning/ recommends it, 8 CPUs.
fn tuned() -> Host {
    Host {
        io_uring: Ok(()),
        memlock_hard: None,
        nofile_soft: Some(1_000_000),
        nofile_hard: Some(1_000_000),
        somaxconn: Some(4096),
        tcp_rmem: Some([4096, 87380, 6291456]),
        tcp_wmem: Some([4096, 16384, 4194304]),
        wmem_max: Some(4194304),
        cpus: 8,
        isolated: "1-7".into(),
        governors: vec!["performance".into(); 8],
        thp: Some("always [madvise] never".into()),
    }
}

fn level_of(findings: &[Finding], check: &str) -> Level {
    findings
        .iter()
        .find(|f| f.check == check)
        .unwrap_or_else(|| panic!("no {check} finding"))
        .level
}

fn config_with_shards(shards: usize) -> Config {
    let mut cfg = Config::default();
    cfg.server.shards = shards;
    cfg
}

#[test]
fn a_tuned_host_has_only_ok_findings() {
    let findings = check(&tuned(), &config_with_shards(7), 100_000);
    for f in &findings {
        assert_eq!(f.level, Level::Ok, "{f}");
        assert!(f.fix.is_empty(), "{f}");
    }
}

#[test]
fn blocking_problems_fail_with_a_fix() {
    let host = Host {
        io_uring: Err("Operation not permitted".into()),
        memlock_hard: Some(8 << 20),
        nofile_soft: Some(1024),
        cpus: 2,
        ..tuned()
    };
    let findings = check(&host, &config_with_shards(16), 10_000);
    for check in ["io_uring", "ulimit -l", "ulimit -n", "cpus"] {
        assert_eq!(level_of(&findings, check), Level::Fail, "{check}");
    }
    assert!(findings
        .iter()
        .filter(|f| f.level == Level::Fail)
        .all(|f| !f.fix.is_empty()));
    // 16 shards at the default 1 MiB each need 16 MiB: 8 MiB is short, 16 is enough.
    let enough = Host {
        memlock_hard: Some(16 << 20),
        ..host
    };
    let findings = check(&enough, &config_with_shards(16), 10_000);
    assert_eq!(level_of(&findings, "ulimit -l"), Level::Ok);
}

#[test]
fn latency_costs_warn() {
    let host = Host {
        somaxconn: Some(128),
        wmem_max: Some(8_192),
        governors: vec!["performance".into(), "powersave".into()],
        thp: Some("[always] madvise never".into()),
        isolated: String::new(),
        ..tuned()
    };
    let findings = check(&host, &config_with_shards(4), 10_000);
    for check in ["somaxconn", "tcp_wmem", "cpu governor", "THP"] {
        assert_eq!(level_of(&findings, check), Level::Warn, "{check}");
    }
    assert_eq!(level_of(&findings, "isolated cores"), Level::Note);
    assert!(findings.iter().all(|f| f.level != Level::Fail));
}

/// `key = value` lines of the sysctl file.
fn sysctl(key: &str) -> &'static str {
    SYSCTL
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim())
        .unwrap_or_else(|| panic!("{key} missing from the sysctl file"))
}

/// `Key=value` lines of the unit's `[Service]` section.
fn service(key: &str) -> &'static str {
    let section = UNIT
        .split("\n[")
        .find(|s| s.starts_with("Service]"))
        .expect("a [Service] section");
    section
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("{key} missing from [Service]"))
}

#[test]
fn the_shipped_unit_and_sysctl_file_pass_the_doctor() {
    let nofile: u64 = service("LimitNOFILE").parse().unwrap();
    assert_eq!(service("LimitMEMLOCK"), "infinity");
    let host = Host {
        memlock_hard: None,
        nofile_soft: Some(nofile),
        nofile_hard: Some(nofile),
        somaxconn: Some(sysctl("net.core.somaxconn").parse().unwrap()),
        wmem_max: Some(sysctl("net.core.wmem_max").parse().unwrap()),
        tcp_wmem: parse_triple(sysctl("net.ipv4.tcp_wmem")),
        tcp_rmem: parse_triple(sysctl("net.ipv4.tcp_rmem")),
        ..tuned()
    };
    let nr_open: u64 = sysctl("fs.nr_open").parse().unwrap();
    assert!(
        nr_open >= nofile,
        "LimitNOFILE above fs.nr_open cannot be set"
    );
    let findings = check(&host, &config_with_shards(7), 500_000);
    for f in &findings {
        assert_eq!(f.level, Level::Ok, "{f}");
    }
    // The unit restarts on failure, drains on SIGTERM, pins, and runs the doctor first.
    assert_eq!(service("Restart"), "on-failure");
    assert_eq!(service("KillSignal"), "SIGTERM");
    assert!(!service("CPUAffinity").is_empty());
    assert!(service("ExecStart").contains("quotecast serve"));
    assert!(service("ExecStartPre").contains("quotecast doctor"));
    for file in [
        "quotecast.service",
        "sysctl.d/60-quotecast.conf",
        "quotecast doctor",
    ] {
        assert!(
            README.contains(file),
            "tuning/README.md does not mention {file}"
        );
    }
}
