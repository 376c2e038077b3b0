//! `quotecast doctor` on the machine running the tests: one finding per
//! check, and exit status 1 exactly when a finding is blocking.

use std::process::Command;

const CHECKS: [&str; 10] = [
    "io_uring",
    "ulimit -l",
    "ulimit -n",
    "somaxconn",
    "tcp_wmem",
    "tcp_rmem",
    "cpus",
    "isolated cores",
    "cpu governor",
    "THP",
];

/// Runs `quotecast doctor args`; its exit success and stdout.
fn doctor(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_quotecast"))
        .arg("doctor")
        .args(args)
        .output()
        .expect("run quotecast doctor");
    let stdout = String::from_utf8(out.stdout).unwrap();
    (out.status.success(), stdout)
}

#[test]
fn doctor_reports_every_check_and_fails_only_on_blocking_findings() {
    let (ok, out) = doctor(&[]);
    for check in CHECKS {
        assert!(
            out.lines()
                .any(|l| l.get(5..).unwrap_or("").trim_start().starts_with(check)),
            "no {check} finding:\n{out}"
        );
    }
    let blocking = out.lines().any(|l| l.starts_with("FAIL"));
    assert_eq!(
        ok, !blocking,
        "exit status disagrees with the findings:\n{out}"
    );
    // Every finding that is not ok says how to fix it.
    let lines: Vec<&str> = out.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with("WARN") || l.starts_with("FAIL") {
            assert!(lines[i + 1].trim_start().starts_with("fix: "), "{l}\n{out}");
        }
    }
}

#[test]
fn too_many_connections_for_the_fd_limit_is_blocking() {
    let (ok, out) = doctor(&["--connections", "1000000000000"]);
    assert!(!ok, "{out}");
    let nofile = out.lines().find(|l| l.contains("ulimit -n")).unwrap();
    assert!(nofile.starts_with("FAIL"), "{out}");
    assert!(out.contains("LimitNOFILE="), "{out}");
}
