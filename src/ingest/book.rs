//! Best bid/ask across venues for every symbol: the pure part of ingest (no
//! I/O, no clock), fed by the aggregator thread.

use crate::model::quote::{BestPrice, VenueQuote};
use crate::model::symbol::{SymbolId, VenueId};
use std::time::Duration;

/// A venue's latest accepted quote for one symbol.
#[derive(Clone, Copy, Debug, Default)]
struct VenueSlot {
    bid: f64,
    bid_size: f64,
    ask: f64,
    ask_size: f64,
    /// When the aggregator received it; liveness is judged on our clock, not
    /// the venue's, so venue clock skew or old replayed `ts` cannot hide a venue.
    received_us: u64,
    present: bool,
}

/// Best bid/ask across venues for every symbol; pure, no I/O or clock.
///
/// Ties on price go to the larger size, then to the lower venue id, so the
/// result does not depend on arrival order. A crossed book across venues
/// (venue A's bid above venue B's ask) is published as-is: it is real market
/// information (an arbitrage or a stale venue), not a data error. A single
/// venue quoting bid > ask, or a non-finite or non-positive price, or a
/// negative or non-finite size, is rejected, counted, and leaves the book as
/// it was (that venue's previous quote still ages out normally).
#[derive(Debug, Clone)]
pub struct BestPriceBook {
    venues: usize,
    max_age_us: u64,
    /// `symbol * venues + venue`.
    slots: Vec<VenueSlot>,
    /// Last published value per symbol: change detection and the `seq` base.
    last: Vec<Option<BestPrice>>,
    rejected: u64,
}

struct Best {
    bid: f64,
    bid_size: f64,
    bid_venue: VenueId,
    ask: f64,
    ask_size: f64,
    ask_venue: VenueId,
}

impl BestPriceBook {
    /// An empty book; a venue quote older than `venue_max_age` stops counting.
    pub fn new(symbols: usize, venues: usize, venue_max_age: Duration) -> Self {
        BestPriceBook {
            venues,
            max_age_us: venue_max_age.as_micros().min(u128::from(u64::MAX)) as u64,
            slots: vec![VenueSlot::default(); symbols * venues],
            last: vec![None; symbols],
            rejected: 0,
        }
    }

    /// Folds in one venue quote received at `now_us`; returns the new best
    /// price when any of best bid/ask, their sizes or venues changed.
    pub fn on_quote(&mut self, q: &VenueQuote, now_us: u64) -> Option<BestPrice> {
        let (s, v) = (q.symbol.0 as usize, q.venue.0 as usize);
        if s >= self.last.len() || v >= self.venues || !is_sane(q) {
            self.rejected += 1;
            return None;
        }
        self.slots[s * self.venues + v] = VenueSlot {
            bid: q.bid,
            bid_size: q.bid_size,
            ask: q.ask,
            ask_size: q.ask_size,
            received_us: now_us,
            present: true,
        };
        self.publish_if_changed(s, now_us)
    }

    /// Re-evaluates symbols whose published best venue has aged out, so a
    /// silent venue stops being "best" even if the symbol gets no new quote.
    /// Linear in the number of symbols; call it every few milliseconds.
    pub fn expire(&mut self, now_us: u64, out: &mut Vec<BestPrice>) {
        for s in 0..self.last.len() {
            let Some(last) = self.last[s] else { continue };
            if self.is_live(s, last.bid_venue, now_us) && self.is_live(s, last.ask_venue, now_us) {
                continue;
            }
            if let Some(bp) = self.publish_if_changed(s, now_us) {
                out.push(bp);
            }
        }
    }

    /// Venue quotes rejected as malformed or outside the universe.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// The last value published for `symbol`.
    pub fn last(&self, symbol: SymbolId) -> Option<&BestPrice> {
        self.last.get(symbol.0 as usize)?.as_ref()
    }

    fn is_live(&self, s: usize, v: VenueId, now_us: u64) -> bool {
        let slot = &self.slots[s * self.venues + v.0 as usize];
        slot.present && now_us.saturating_sub(slot.received_us) <= self.max_age_us
    }

    fn best(&self, s: usize, now_us: u64) -> Option<Best> {
        let mut bid: Option<(f64, f64, usize)> = None;
        let mut ask: Option<(f64, f64, usize)> = None;
        let row = &self.slots[s * self.venues..(s + 1) * self.venues];
        // Ascending venue order + strict comparisons = lower venue id wins a full tie.
        for (v, slot) in row.iter().enumerate() {
            if !slot.present || now_us.saturating_sub(slot.received_us) > self.max_age_us {
                continue;
            }
            if bid.is_none_or(|(p, sz, _)| slot.bid > p || (slot.bid == p && slot.bid_size > sz)) {
                bid = Some((slot.bid, slot.bid_size, v));
            }
            if ask.is_none_or(|(p, sz, _)| slot.ask < p || (slot.ask == p && slot.ask_size > sz)) {
                ask = Some((slot.ask, slot.ask_size, v));
            }
        }
        let ((bid, bid_size, bv), (ask, ask_size, av)) = (bid?, ask?);
        Some(Best {
            bid,
            bid_size,
            bid_venue: VenueId(bv as u16),
            ask,
            ask_size,
            ask_venue: VenueId(av as u16),
        })
    }

    fn publish_if_changed(&mut self, s: usize, now_us: u64) -> Option<BestPrice> {
        let b = self.best(s, now_us)?;
        let last = self.last[s];
        if let Some(l) = &last {
            if l.bid == b.bid
                && l.bid_size == b.bid_size
                && l.bid_venue == b.bid_venue
                && l.ask == b.ask
                && l.ask_size == b.ask_size
                && l.ask_venue == b.ask_venue
            {
                return None;
            }
        }
        let bp = BestPrice {
            symbol: SymbolId(s as u32),
            seq: last.map_or(1, |l| l.seq + 1),
            ts_us: now_us,
            bid: b.bid,
            bid_size: b.bid_size,
            bid_venue: b.bid_venue,
            ask: b.ask,
            ask_size: b.ask_size,
            ask_venue: b.ask_venue,
        };
        self.last[s] = Some(bp);
        Some(bp)
    }
}

fn is_sane(q: &VenueQuote) -> bool {
    let price_ok = |p: f64| p.is_finite() && p > 0.0;
    let size_ok = |s: f64| s.is_finite() && s >= 0.0;
    price_ok(q.bid)
        && price_ok(q.ask)
        && q.bid <= q.ask
        && size_ok(q.bid_size)
        && size_ok(q.ask_size)
}
#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const AGE: Duration = Duration::from_millis(100);

    /// A quote of symbol `s` by venue `v`.
    pub(crate) fn quote(
        s: u32,
        v: u16,
        bid: f64,
        bid_size: f64,
        ask: f64,
        ask_size: f64,
    ) -> VenueQuote {
        VenueQuote {
            symbol: SymbolId(s),
            venue: VenueId(v),
            bid,
            bid_size,
            ask,
            ask_size,
            ts_us: 0,
        }
    }

    #[test]
    fn best_across_venues_with_ties() {
        let mut book = BestPriceBook::new(1, 4, AGE);
        book.on_quote(&quote(0, 2, 1.0, 5.0, 1.2, 5.0), 10).unwrap();
        // Same prices, larger size wins.
        let bp = book.on_quote(&quote(0, 3, 1.0, 9.0, 1.2, 9.0), 10).unwrap();
        assert_eq!((bp.bid_venue, bp.ask_venue), (VenueId(3), VenueId(3)));
        // Full tie: lower venue id wins.
        let bp = book.on_quote(&quote(0, 1, 1.0, 9.0, 1.2, 9.0), 10).unwrap();
        assert_eq!((bp.bid_venue, bp.ask_venue), (VenueId(1), VenueId(1)));
        // Better price beats size; sides can come from different venues.
        let bp = book.on_quote(&quote(0, 0, 1.1, 1.0, 1.3, 1.0), 10).unwrap();
        assert_eq!((bp.bid, bp.bid_size, bp.bid_venue), (1.1, 1.0, VenueId(0)));
        assert_eq!((bp.ask, bp.ask_venue), (1.2, VenueId(1)));
        assert_eq!(bp.ts_us, 10);
    }

    #[test]
    fn seq_increases_and_unchanged_best_is_not_published() {
        let mut book = BestPriceBook::new(2, 2, AGE);
        let a = book.on_quote(&quote(0, 0, 1.0, 1.0, 2.0, 1.0), 1).unwrap();
        assert_eq!(a.seq, 1);
        // A worse venue does not change the best: nothing to publish.
        assert_eq!(book.on_quote(&quote(0, 1, 0.9, 1.0, 2.1, 1.0), 2), None);
        // Same quote again: nothing either.
        assert_eq!(book.on_quote(&quote(0, 0, 1.0, 1.0, 2.0, 1.0), 3), None);
        let b = book.on_quote(&quote(0, 0, 1.0, 2.0, 2.0, 1.0), 4).unwrap();
        let c = book.on_quote(&quote(0, 1, 1.5, 1.0, 2.1, 1.0), 5).unwrap();
        assert_eq!((b.seq, c.seq), (2, 3));
        // Per symbol: another symbol starts at 1.
        assert_eq!(
            book.on_quote(&quote(1, 0, 1.0, 1.0, 2.0, 1.0), 6)
                .unwrap()
                .seq,
            1
        );
        assert_eq!(book.last(SymbolId(0)), Some(&c));
    }

    #[test]
    fn malformed_venue_quotes_are_rejected_and_counted() {
        let mut book = BestPriceBook::new(1, 1, AGE);
        let bad = [
            quote(0, 0, 1.2, 1.0, 1.1, 1.0), // crossed within one venue
            quote(0, 0, f64::NAN, 1.0, 1.1, 1.0),
            quote(0, 0, 1.0, 1.0, f64::INFINITY, 1.0),
            quote(0, 0, 0.0, 1.0, 1.1, 1.0),
            quote(0, 0, -1.0, 1.0, 1.1, 1.0),
            quote(0, 0, 1.0, -1.0, 1.1, 1.0),
            quote(0, 0, 1.0, 1.0, 1.1, f64::NAN),
            quote(5, 0, 1.0, 1.0, 1.1, 1.0), // unknown symbol
            quote(0, 7, 1.0, 1.0, 1.1, 1.0), // unknown venue
        ];
        for q in &bad {
            assert_eq!(book.on_quote(q, 1), None, "{q:?}");
        }
        assert_eq!(book.rejected(), bad.len() as u64);
        // A locked quote (bid == ask) and a zero size are accepted.
        assert!(book.on_quote(&quote(0, 0, 1.1, 0.0, 1.1, 1.0), 1).is_some());
    }

    #[test]
    fn crossed_book_across_venues_is_published() {
        let mut book = BestPriceBook::new(1, 2, AGE);
        book.on_quote(&quote(0, 0, 1.10, 1.0, 1.11, 1.0), 1)
            .unwrap();
        let bp = book
            .on_quote(&quote(0, 1, 1.08, 1.0, 1.09, 1.0), 1)
            .unwrap();
        assert!(bp.bid > bp.ask);
        assert_eq!((bp.bid_venue, bp.ask_venue), (VenueId(0), VenueId(1)));
    }

    #[test]
    fn stale_venues_stop_counting() {
        let age = AGE.as_micros() as u64;
        let mut book = BestPriceBook::new(1, 2, AGE);
        book.on_quote(&quote(0, 0, 1.10, 1.0, 1.12, 1.0), 0)
            .unwrap();
        book.on_quote(&quote(0, 1, 1.09, 1.0, 1.13, 1.0), 50_000);
        // On the next quote after venue 0 aged out, venue 1 is best.
        let bp = book
            .on_quote(&quote(0, 1, 1.09, 2.0, 1.13, 2.0), age + 1)
            .unwrap();
        assert_eq!(
            (bp.bid, bp.bid_venue, bp.ask, bp.ask_venue),
            (1.09, VenueId(1), 1.13, VenueId(1))
        );

        // Without a new quote, the sweep does the same.
        let mut book = BestPriceBook::new(1, 2, AGE);
        book.on_quote(&quote(0, 0, 1.10, 1.0, 1.12, 1.0), 0)
            .unwrap();
        book.on_quote(&quote(0, 1, 1.09, 1.0, 1.13, 1.0), 50_000);
        let mut out = Vec::new();
        book.expire(age, &mut out);
        assert!(out.is_empty(), "still live at exactly max age");
        book.expire(age + 1, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].bid_venue, out[0].seq), (VenueId(1), 2));
        // Every venue stale: no side, nothing published.
        out.clear();
        book.expire(10 * age, &mut out);
        assert!(out.is_empty());
        assert_eq!(
            book.on_quote(&quote(0, 0, 1.0, 1.0, 1.1, 1.0), 10 * age)
                .unwrap()
                .seq,
            3
        );
    }
}
