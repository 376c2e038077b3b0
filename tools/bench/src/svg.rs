//! Small hand-written SVG line charts: titled, with labelled axes (linear or
//! log10), tick labels, grid lines, a legend and optional reference lines.

use std::fmt::Write as _;

/// One axis of a chart, in data units.
pub struct Axis {
    /// Label with its unit, e.g. "latency (ms)".
    pub label: String,
    /// Log10 scale (every value must be > 0).
    pub log: bool,
    /// Lowest value shown.
    pub min: f64,
    /// Highest value shown.
    pub max: f64,
    /// Tick positions and their labels.
    pub ticks: Vec<(f64, String)>,
}

/// One line of a chart.
pub struct Series {
    /// Legend text.
    pub name: String,
    /// (x, y) in data units.
    pub points: Vec<(f64, f64)>,
}

/// A dashed horizontal reference line at `y` with a label.
pub struct RefLine {
    /// Where, in data units of the y axis.
    pub y: f64,
    /// Its label, drawn at the right end.
    pub label: String,
}

const W: f64 = 820.0;
const H: f64 = 480.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 190.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;
const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
];

impl Axis {
    /// An axis from `min` to `max` with ticks at 1-2-5 steps of each decade
    /// (log) or at about six round steps (linear).
    pub fn auto(label: &str, log: bool, min: f64, max: f64) -> Axis {
        let (min, max) = if log {
            let lo = 10f64.powf(min.max(1e-9).log10().floor());
            let hi = 10f64.powf(max.max(lo * 10.0).log10().ceil());
            (lo, hi)
        } else {
            let step = nice_step((max - min).max(1e-9) / 6.0);
            ((min / step).floor() * step, (max / step).ceil() * step)
        };
        let ticks = if log {
            let mut t = Vec::new();
            let mut decade = min;
            while decade <= max * 1.0001 {
                for m in [1.0, 2.0, 5.0] {
                    let v = decade * m;
                    if v <= max * 1.0001 {
                        t.push((v, number(v)));
                    }
                }
                decade *= 10.0;
            }
            t
        } else {
            let step = nice_step((max - min).max(1e-9) / 6.0);
            let n = ((max - min) / step).round() as usize;
            (0..=n)
                .map(|i| {
                    let v = min + step * i as f64;
                    (v, number(v))
                })
                .collect()
        };
        Axis {
            label: label.into(),
            log,
            min,
            max,
            ticks,
        }
    }

    fn frac(&self, v: f64) -> f64 {
        if self.log {
            let (a, b) = (self.min.log10(), self.max.log10());
            (v.max(self.min * 1e-3).log10() - a) / (b - a)
        } else {
            (v - self.min) / (self.max - self.min)
        }
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * p)
}

/// A short label for a tick value.
pub fn number(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if v.abs() >= 1e3 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The chart as a standalone SVG document. Long because it writes the
/// document top to bottom: frame, grid and ticks, reference lines, series,
/// legend; each part is a few lines that read best in drawing order.
pub fn chart(title: &str, x: &Axis, y: &Axis, series: &[Series], refs: &[RefLine]) -> String {
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let px = |v: f64| LEFT + x.frac(v).clamp(0.0, 1.0) * pw;
    let py = |v: f64| TOP + ph - y.frac(v).clamp(0.0, 1.0) * ph;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="28" font-size="16" font-weight="bold" text-anchor="middle">{}</text>"#,
        LEFT + pw / 2.0,
        esc(title)
    );
    for (v, label) in &x.ticks {
        let xp = px(*v);
        let _ = writeln!(
            s,
            r##"<line x1="{xp:.1}" y1="{TOP}" x2="{xp:.1}" y2="{:.1}" stroke="#e0e0e0"/><text x="{xp:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            TOP + ph,
            TOP + ph + 18.0,
            esc(label)
        );
    }
    for (v, label) in &y.ticks {
        let yp = py(*v);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{yp:.1}" x2="{:.1}" y2="{yp:.1}" stroke="#e0e0e0"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + pw,
            LEFT - 6.0,
            yp + 4.0,
            esc(label)
        );
    }
    let _ = writeln!(
        s,
        r#"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        LEFT + pw / 2.0,
        H - 15.0,
        esc(&x.label)
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(20,{:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        TOP + ph / 2.0,
        esc(&y.label)
    );
    for r in refs {
        let yp = py(r.y);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{yp:.1}" x2="{:.1}" y2="{yp:.1}" stroke="#555" stroke-dasharray="6,4"/><text x="{:.1}" y="{:.1}" fill="#555">{}</text>"##,
            LEFT + pw,
            LEFT + pw + 6.0,
            yp + 4.0,
            esc(&r.label)
        );
    }
    for (i, se) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<String> = se
            .points
            .iter()
            .filter(|(a, b)| a.is_finite() && b.is_finite())
            .map(|&(a, b)| format!("{:.1},{:.1}", px(a), py(b)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            pts.join(" ")
        );
        for p in &pts {
            let (a, b) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(s, r#"<circle cx="{a}" cy="{b}" r="2.5" fill="{color}"/>"#);
        }
        let ly = TOP + 10.0 + 20.0 * i as f64;
        let lx = LEFT + pw + 15.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{color}" stroke-width="3"/><text x="{}" y="{}">{}</text>"#,
            lx + 22.0,
            lx + 28.0,
            ly + 4.0,
            esc(&se.name)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_axis_spans_whole_decades_with_1_2_5_ticks() {
        let a = Axis::auto("ms", true, 0.3, 42.0);
        assert_eq!((a.min, a.max), (0.1, 100.0));
        let labels: Vec<&str> = a.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels[..4], ["0.1", "0.2", "0.5", "1"]);
        assert_eq!(labels.last(), Some(&"100"));
        assert!((a.frac(10.0) - 2.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn chart_has_title_axes_legend_and_lines() {
        let x = Axis::auto("time (s)", false, 0.0, 10.0);
        let y = Axis::auto("flushes/s", false, 0.0, 60.0);
        let svg = chart(
            "Cadence <test>",
            &x,
            &y,
            &[Series {
                name: "quotecast".into(),
                points: vec![(0.0, 10.0), (5.0, 60.0)],
            }],
            &[RefLine {
                y: 60.0,
                label: "max_rate_hz".into(),
            }],
        );
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("Cadence &lt;test&gt;"));
        assert!(svg.contains("time (s)") && svg.contains("flushes/s"));
        assert!(svg.contains(">quotecast</text>"));
        assert!(svg.contains("<polyline"));
        assert!(svg.contains("stroke-dasharray"));
        assert_eq!(number(20_000.0), "20k");
    }
}
