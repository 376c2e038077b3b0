//! When the harness's feed generated each quote, so every server's latency is
//! measured from one origin: the generator's clock, not the `ts` each server
//! stamps when the quote reaches it.
//!
//! The feed sends every symbol's quotes in order and each one moves the
//! price, so a server's `seq` for a symbol (1, 2, 3, … from its first quote)
//! is the feed's count of quotes for that symbol. A price's send time is
//! looked up by (symbol, seq) in a ring per symbol; a slot that has moved
//! on to a later quote (or never had this one) answers `None`, and the
//! client counts the price as unmatched instead of guessing.

use std::sync::atomic::{AtomicU64, Ordering};

/// Quotes remembered per symbol: at the `hot` rate (100 quotes/s per
/// symbol) 40 s of history, more than any measured latency.
const SLOTS: usize = 4_096;

/// Send times of the latest [`SLOTS`] quotes of every symbol.
pub struct Stamps {
    /// `seq` and send time of each slot side by side: a lookup touches one
    /// cache line, not two.
    slots: Vec<Slot>,
}

/// One remembered quote: the `seq` that owns the slot and its send time.
struct Slot {
    seq: AtomicU64,
    ts_us: AtomicU64,
}

impl Stamps {
    /// An empty table for `symbols` symbols.
    pub fn new(symbols: usize) -> Self {
        let slots = (0..symbols * SLOTS)
            .map(|_| Slot {
                seq: AtomicU64::new(0),
                ts_us: AtomicU64::new(0),
            })
            .collect();
        Stamps { slots }
    }

    /// Records that quote `seq` (from 1) of symbol `symbol` was generated at
    /// `ts_us` (UNIX µs).
    pub fn record(&self, symbol: usize, seq: u64, ts_us: u64) {
        let slot = &self.slots[symbol * SLOTS + seq as usize % SLOTS];
        // Invalidate, write the time, then publish the seq that owns it.
        slot.seq.store(0, Ordering::Release);
        slot.ts_us.store(ts_us, Ordering::Release);
        slot.seq.store(seq, Ordering::Release);
    }

    /// When quote `seq` of `symbol` was generated, if the table still has it.
    pub fn lookup(&self, symbol: usize, seq: u64) -> Option<u64> {
        let slot = self
            .slots
            .get(symbol.checked_mul(SLOTS)? + seq as usize % SLOTS)?;
        if seq == 0 || slot.seq.load(Ordering::Acquire) != seq {
            return None;
        }
        let ts = slot.ts_us.load(Ordering::Acquire);
        (slot.seq.load(Ordering::Acquire) == seq).then_some(ts)
    }
}

/// The index of a harness symbol name (`S0042` → 42).
pub fn symbol_index(name: &[u8]) -> Option<usize> {
    let digits = name.strip_prefix(b"S")?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    usize::try_from(crate::decode::u64_at(digits, 0)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_recorded_quotes_and_refuses_overwritten_ones() {
        let s = Stamps::new(3);
        s.record(2, 1, 100);
        s.record(2, 2, 150);
        assert_eq!(s.lookup(2, 1), Some(100));
        assert_eq!(s.lookup(2, 2), Some(150));
        assert_eq!(s.lookup(1, 1), None, "another symbol");
        assert_eq!(s.lookup(2, 3), None, "not sent yet");
        s.record(2, 1 + SLOTS as u64, 900);
        assert_eq!(s.lookup(2, 1), None, "its slot moved on");
        assert_eq!(s.lookup(2, 1 + SLOTS as u64), Some(900));
        assert_eq!(s.lookup(7, 1), None, "no such symbol");
    }

    #[test]
    fn symbol_names_map_to_indexes() {
        assert_eq!(symbol_index(b"S0042"), Some(42));
        assert_eq!(symbol_index(b"S0000"), Some(0));
        assert_eq!(symbol_index(b"S0000000042"), Some(42));
        assert_eq!(symbol_index(b"EURUSD"), None);
        assert_eq!(symbol_index(b"S"), None);
        assert_eq!(symbol_index(b"S12x"), None);
    }
}
