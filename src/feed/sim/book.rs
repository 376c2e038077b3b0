//! The simulated desks' books: positions per symbol, exposure and P&L, and
//! how close each book is to its limits.

/// Alert thresholds, percent of a limit, and how far below a threshold a
/// level must fall before it can be raised again.
pub(super) const WARNING_PCT: f64 = 80.0;
pub(super) const CRITICAL_PCT: f64 = 95.0;
pub(super) const HYSTERESIS_PCT: f64 = 10.0;

/// How close something is to its limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Level {
    Normal,
    Warning,
    Critical,
}

impl Level {
    /// The level at `pct` of a limit when it was `self`: thresholds going
    /// up, thresholds less the hysteresis going down.
    pub(super) fn next(self, pct: f64) -> Level {
        let up = if pct >= CRITICAL_PCT {
            Level::Critical
        } else if pct >= WARNING_PCT {
            Level::Warning
        } else {
            Level::Normal
        };
        let stays = match self {
            Level::Critical if pct >= CRITICAL_PCT - HYSTERESIS_PCT => Level::Critical,
            Level::Warning | Level::Critical if pct >= WARNING_PCT - HYSTERESIS_PCT => {
                Level::Warning
            }
            _ => Level::Normal,
        };
        up.max(stays)
    }
}

#[derive(Clone, Debug, Default)]
pub(super) struct Position {
    pub(super) qty: f64,
    /// Average price of the open quantity.
    pub(super) avg: f64,
    pub(super) realized: f64,
}

impl Position {
    /// Books a fill of `qty` (signed) at `price`.
    pub(super) fn fill(&mut self, qty: f64, price: f64) {
        if self.qty == 0.0 || self.qty.signum() == qty.signum() {
            self.avg = (self.avg * self.qty + price * qty) / (self.qty + qty);
        } else {
            let closed = qty.abs().min(self.qty.abs());
            self.realized += closed * (price - self.avg) * self.qty.signum();
            if qty.abs() > self.qty.abs() {
                self.avg = price;
            }
        }
        self.qty += qty;
        if self.qty == 0.0 {
            self.avg = 0.0;
        }
    }

    pub(super) fn unrealized(&self, mid: f64) -> f64 {
        self.qty * (mid - self.avg)
    }
}

pub(super) struct Book {
    pub(super) name: &'static str,
    pub(super) desk: &'static str,
    /// Universe index and lot size of each symbol traded.
    pub(super) symbols: Vec<(usize, f64)>,
    pub(super) positions: Vec<Position>,
    /// Exposure limit: every position at its largest, at the start mids.
    pub(super) limit: f64,
    /// Drifting appetite in [-1, 1]: > 0 leans to buying.
    pub(super) bias: f64,
    pub(super) risk_level: Level,
    pub(super) loss_level: Level,
}

impl Book {
    pub(super) fn exposure(&self, mids: &[f64]) -> f64 {
        self.symbols
            .iter()
            .zip(&self.positions)
            .map(|(&(s, _), p)| p.qty.abs() * mids[s])
            .sum()
    }

    pub(super) fn pnl(&self, mids: &[f64]) -> (f64, f64) {
        self.symbols
            .iter()
            .zip(&self.positions)
            .fold((0.0, 0.0), |(r, u), (&(s, _), p)| {
                (r + p.realized, u + p.unrealized(mids[s]))
            })
    }

    pub(super) fn dims(&self) -> Vec<(String, String)> {
        vec![
            ("book".into(), self.name.into()),
            ("desk".into(), self.desk.into()),
        ]
    }
}
