//! `compare --quotecast-runs N`: quotecast run N times, each run followed by
//! one probe run, and a summary of every pair with the medians.
//!
//! On this shared VM, runs of one build a minute apart differ by a quarter
//! in writes/s and nearly twofold in p99 (tuning/results/2026-12-07-run-to-run.md),
//! so one run can meet a target the next one misses. Each pair's share and
//! CPU ratio are still from one run and the probe right after it; the
//! medians say what the build does.

use crate::probe::ProbeReport;
use crate::report::Report;
use crate::results::{cpu_us_per_write, invalid_reasons, opt};
use crate::scenario::RunConfig;
use std::fmt::Write as _;

/// A bound the issue sets on healthy p99: this many times the cycle the
/// probe allows (connections ÷ probe writes/s).
const P99_CYCLES: f64 = 1.5;

/// What one quotecast run measured against the probe run after it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairFigures {
    /// quotecast's writes/s, by its own count.
    pub writes_per_s: f64,
    /// The probe's writes/s.
    pub probe_writes_per_s: f64,
    /// quotecast's writes/s over the probe's.
    pub share: f64,
    /// quotecast's CPU per write over the probe's; none when quotecast was
    /// not saturated (a tick's fixed cost spread over few writes).
    pub cpu_ratio: Option<f64>,
    /// Healthy clients' p99 latency, ms.
    pub p99_ms: f64,
    /// [`P99_CYCLES`] × the probe's cycle (connections ÷ its writes/s), ms.
    pub p99_bound_ms: f64,
    /// The load generator's CPU, % of its core(s).
    pub generator_cpu_pct: Option<f64>,
}

/// The figures of `run` against `probe`; none without a write count.
pub fn figures(run: &Report, probe: &ProbeReport) -> Option<PairFigures> {
    let writes = run.throughput.server_writes_per_s.filter(|w| *w > 0.0)?;
    let probe_writes = probe.writes_per_s.max(1e-9);
    let cpu_ratio = cpu_us_per_write(run)
        .filter(|(_, saturated)| *saturated)
        .map(|(us, _)| us / probe.cpu_us_per_write.max(1e-9));
    Some(PairFigures {
        writes_per_s: writes,
        probe_writes_per_s: probe.writes_per_s,
        share: writes / probe_writes,
        cpu_ratio,
        p99_ms: run.latency_healthy.p99_us as f64 / 1000.0,
        p99_bound_ms: P99_CYCLES * probe.config.connections as f64 / probe_writes * 1000.0,
        generator_cpu_pct: run.generator_proc.cpu_pct,
    })
}

/// The item with the median `key` (the upper one of an even count); none
/// if there is none.
pub fn median_by<T>(items: &[T], key: impl Fn(&T) -> f64) -> Option<&T> {
    let mut sorted: Vec<&T> = items.iter().collect();
    sorted.sort_by(|a, b| key(a).total_cmp(&key(b)));
    sorted.get(sorted.len() / 2).copied()
}

/// The median of `values` (the upper one of an even count).
fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let v: Vec<f64> = values.into_iter().collect();
    median_by(&v, |x| *x).copied()
}

/// The index of the run with the median writes/s among the runs the median
/// row is over: valid, with a probe run after them (`probes[i]`) when any
/// probe ran. Falls back to the valid runs, then to all.
pub fn median_run(cfg: &RunConfig, runs: &[Report], probes: &[ProbeReport]) -> Option<usize> {
    let writes = |r: &Report| r.throughput.server_writes_per_s.unwrap_or(0.0);
    let valid: Vec<usize> = (0..runs.len())
        .filter(|&i| invalid_reasons(cfg, &runs[i]).is_empty())
        .collect();
    let paired: Vec<usize> = valid
        .iter()
        .copied()
        .filter(|&i| {
            probes
                .get(i)
                .is_some_and(|p| figures(&runs[i], p).is_some())
        })
        .collect();
    let pool = [paired, valid, (0..runs.len()).collect()]
        .into_iter()
        .find(|pool| !pool.is_empty())?;
    median_by(&pool, |&i| writes(&runs[i])).copied()
}

fn pct(v: f64) -> String {
    format!("{:.0}%", v * 100.0)
}

/// The section of summary.md: one row per pair, then the medians over the
/// valid pairs. `probes[i]` is the probe run right after `runs[i]`.
pub fn section(cfg: &RunConfig, runs: &[Report], probes: &[ProbeReport], s: &mut String) {
    let _ = writeln!(
        s,
        "## quotecast over {} runs, each against the probe run after it\n",
        runs.len()
    );
    let _ = writeln!(
        s,
        "Each row is one quotecast run (a new server) and the probe run right after it; \
         the median row is each column's median over the valid pairs. The sections above show \
         run {}, the run with the median writes/s, against its probe run. p99 bound: \
         {P99_CYCLES} × the cycle the probe allows (connections ÷ probe writes/s).\n",
        median_run(cfg, runs, probes).map_or("n/a".into(), |i| (i + 1).to_string())
    );
    let _ = writeln!(
        s,
        "| run | quotecast writes/s | probe writes/s | share of probe | CPU per write / probe's | healthy p99 (ms) | p99 bound (ms) | generator CPU |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    let mut valid = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let reasons = invalid_reasons(cfg, run);
        let paired = probes.get(i).and_then(|p| figures(run, p));
        match (reasons.is_empty(), paired) {
            (true, Some(f)) => {
                let _ = writeln!(
                    s,
                    "| {} | {:.0} | {:.0} | {} | {} | {:.1} | {:.1} | {} |",
                    i + 1,
                    f.writes_per_s,
                    f.probe_writes_per_s,
                    pct(f.share),
                    opt(f.cpu_ratio, 2),
                    f.p99_ms,
                    f.p99_bound_ms,
                    f.generator_cpu_pct
                        .map_or("n/a".into(), |g| format!("{g:.0}%")),
                );
                valid.push(f);
            }
            (true, None) => {
                let _ = writeln!(
                    s,
                    "| {} | no probe run or no write count | | | | | | |",
                    i + 1
                );
            }
            (false, _) => {
                let _ = writeln!(
                    s,
                    "| {} | invalid: {} | | | | | | |",
                    i + 1,
                    reasons.join("; ")
                );
            }
        }
    }
    let col = |f: fn(&PairFigures) -> Option<f64>| median(valid.iter().filter_map(f));
    let _ = writeln!(
        s,
        "| median of {} | {} | {} | {} | {} | {} | {} | |\n",
        valid.len(),
        opt(col(|f| Some(f.writes_per_s)), 0),
        opt(col(|f| Some(f.probe_writes_per_s)), 0),
        col(|f| Some(f.share)).map_or("n/a".into(), pct),
        opt(col(|f| f.cpu_ratio), 2),
        opt(col(|f| Some(f.p99_ms)), 1),
        opt(col(|f| Some(f.p99_bound_ms)), 1),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::tests::{hot_comparison, probe_run, report};

    /// A valid quotecast run of `cfg` with `writes` writes/s at `cpu_pct`
    /// and a healthy p99 of `p99_ms`.
    fn run(cfg: &RunConfig, writes: f64, cpu_pct: f64, p99_ms: u64) -> Report {
        let mut r = report(cfg, "quotecast", cfg.connections, 0, cfg.sim_rate as f64);
        r.throughput.server_writes_per_s = Some(writes);
        r.server_proc.cpu_pct = Some(cpu_pct);
        r.latency_healthy.p99_us = p99_ms * 1000;
        r
    }

    #[test]
    fn a_pair_is_measured_against_its_own_probe_run() {
        let (cfg, _) = hot_comparison();
        // The probe fixture: 10 connections, 7 µs per write.
        let probe = probe_run(100_000.0);
        let f = figures(&run(&cfg, 80_000.0, 100.0, 20), &probe).unwrap();
        assert_eq!(f.share, 0.8);
        // 1e6 / 80k = 12.5 µs per write against the probe's 7.
        assert!((f.cpu_ratio.unwrap() - 12.5 / 7.0).abs() < 1e-9);
        assert_eq!(f.p99_ms, 20.0);
        // 1.5 × 10 connections / 100k writes/s = 0.15 ms.
        assert!((f.p99_bound_ms - 0.15).abs() < 1e-9);
        let idle = figures(&run(&cfg, 80_000.0, 50.0, 20), &probe).unwrap();
        assert_eq!(idle.cpu_ratio, None, "not saturated: no CPU ratio");
        let mut uncounted = run(&cfg, 80_000.0, 100.0, 20);
        uncounted.throughput.server_writes_per_s = None;
        assert_eq!(figures(&uncounted, &probe), None);
    }

    #[test]
    fn the_median_run_is_picked_among_the_valid_runs() {
        let (cfg, _) = hot_comparison();
        let mut runs: Vec<Report> = [90.0, 70.0, 80.0, 100.0]
            .map(|k| run(&cfg, k * 1000.0, 100.0, 20))
            .to_vec();
        // Of four, the upper median: 90k.
        assert_eq!(median_run(&cfg, &runs, &[]), Some(0));
        // 90k failed connections: of 70k, 80k and 100k the median is 80k.
        runs[0].connections.failed = 1;
        assert_eq!(median_run(&cfg, &runs, &[]), Some(2));
        // Probe runs after the first two only: the one valid run with a
        // probe is 70k, which the median row would be over.
        let probes = [100_000.0; 2].map(probe_run);
        assert_eq!(median_run(&cfg, &runs, &probes), Some(1));
        // None valid: the median of all four again.
        for r in &mut runs {
            r.connections.failed = 1;
        }
        assert_eq!(median_run(&cfg, &runs, &probes), Some(0));
        assert_eq!(median_run(&cfg, &[], &[]), None);
    }

    #[test]
    fn the_section_has_a_row_per_run_and_medians_over_the_valid_pairs() {
        let (cfg, _) = hot_comparison();
        let mut runs = vec![
            run(&cfg, 80_000.0, 100.0, 20),
            run(&cfg, 60_000.0, 100.0, 40),
            run(&cfg, 90_000.0, 100.0, 30),
            run(&cfg, 95_000.0, 100.0, 10),
        ];
        runs[2].connections.failed = 3;
        // The fourth run has no probe after it. With 2000 connections the
        // bounds are 1.5 × 2000 / 100k = 30 ms and 1.5 × 2000 / 120k = 25 ms.
        let probes = [100_000.0, 120_000.0, 100_000.0].map(|w| {
            let mut p = probe_run(w);
            p.config.connections = 2_000;
            p
        });
        let mut s = String::new();
        section(&cfg, &runs, &probes, &mut s);
        assert!(s.contains("## quotecast over 4 runs"), "{s}");
        assert!(
            s.contains("| 1 | 80000 | 100000 | 80% | 1.79 | 20.0 | 30.0 | n/a |"),
            "{s}"
        );
        assert!(
            s.contains("| 2 | 60000 | 120000 | 50% | 2.38 | 40.0 | 25.0 | n/a |"),
            "{s}"
        );
        assert!(
            s.contains("| 3 | invalid: 10 of 10 connections ready, 3 failed |"),
            "{s}"
        );
        assert!(s.contains("| 4 | no probe run or no write count |"), "{s}");
        // Over runs 1 and 2: the upper of two.
        assert!(
            s.contains("| median of 2 | 80000 | 120000 | 80% | 2.38 | 40.0 | 30.0 | |"),
            "{s}"
        );
    }

    #[test]
    fn an_invalid_repeated_run_is_listed_by_its_number_and_hides_no_ratio() {
        let (cfg, mut c) = hot_comparison();
        c.quotecast_runs = vec![
            run(&cfg, 80_000.0, 100.0, 20),
            run(&cfg, 90_000.0, 100.0, 20),
        ];
        c.quotecast_runs[1].connections.failed = 2;
        c.reports.push(c.quotecast_runs[0].clone());
        let invalid = crate::results::invalid_runs(&c);
        assert_eq!(invalid.len(), 1, "{invalid:?}");
        assert_eq!(invalid[0].server, "quotecast run 2");
        c.invalid = invalid;
        assert!(c.is_valid("quotecast"));
    }
}
