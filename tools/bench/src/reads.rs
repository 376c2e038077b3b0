//! Which of the server's writes a healthy price arrived in, when one socket
//! read holds several.
//!
//! A read's kernel stamp is the arrival of the last bytes it returns, and
//! data waiting in a receive queue is merged into one buffer that keeps the
//! newest arrival. So when a load thread reads a socket late, one read can
//! hold two or more of the server's writes, and every price in it would be
//! timed at the last write's arrival: the earlier ones look a whole flush
//! interval older than they were.
//!
//! A conflating server (quotecast, known by the `max_rate_hz` of its welcome)
//! sends each symbol at most once per write, so a symbol the current write
//! already carried starts the next write. Only the prices of a read's last
//! write have a known arrival; those before it are counted apart, as upper
//! bounds. A write whose symbols do not repeat the one before it cannot be
//! told from it, so a few merged prices may still be timed late (never
//! early).

/// A healthy price's latency, held until its read is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timed {
    /// Generator stamp to the read's kernel stamp, µs.
    pub latency_us: u64,
    /// Generated more than one flush interval after the previous flush.
    pub leading: bool,
}

/// The timed prices of the read being parsed, with where its last write
/// begins.
#[derive(Debug, Default)]
pub struct ReadSplit {
    timed: Vec<Timed>,
    last_write_from: usize,
    split: bool,
    gap_us: Option<u64>,
}

impl ReadSplit {
    /// Holds `t` until the read ends.
    pub fn push(&mut self, t: Timed) {
        self.timed.push(t);
    }

    /// The next price starts another write inside this read.
    pub fn new_write(&mut self) {
        self.last_write_from = self.timed.len();
        self.split = true;
    }

    /// The gap from the connection's previous flush to this read's first
    /// write; kept only if the read holds one write.
    pub fn gap(&mut self, us: u64) {
        self.gap_us = Some(us);
    }

    /// Ends the read: hands every held price to `each` with whether its
    /// arrival is known (it came in the read's last write), and returns the
    /// flush gap if it is known.
    pub fn finish(&mut self, mut each: impl FnMut(Timed, bool)) -> Option<u64> {
        for (i, t) in self.timed.drain(..).enumerate() {
            each(t, i >= self.last_write_from);
        }
        self.last_write_from = 0;
        let gap = self.gap_us.take().filter(|_| !self.split);
        self.split = false;
        gap
    }
}

/// Notes `symbol` in the write being read (`write`: its symbols so far).
/// Returns true when that write already carried it: `symbol` starts a new
/// write, which `write` then holds. A linear scan: a write carries at most
/// the connection's symbols (20 in `hot`).
pub fn repeats(write: &mut Vec<u32>, symbol: u32) -> bool {
    let again = write.contains(&symbol);
    if again {
        write.clear();
    }
    write.push(symbol);
    again
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(latency_us: u64) -> Timed {
        Timed {
            latency_us,
            leading: false,
        }
    }

    fn finish(r: &mut ReadSplit) -> (Vec<u64>, Vec<u64>, Option<u64>) {
        let (mut known, mut unknown) = (Vec::new(), Vec::new());
        let gap = r.finish(|t, k| {
            if k { &mut known } else { &mut unknown }.push(t.latency_us);
        });
        (known, unknown, gap)
    }

    #[test]
    fn a_symbol_seen_twice_starts_a_new_write() {
        let mut write = Vec::new();
        assert!(!repeats(&mut write, 1));
        assert!(!repeats(&mut write, 2));
        assert!(repeats(&mut write, 1));
        assert_eq!(write, vec![1]);
        assert!(!repeats(&mut write, 2));
    }

    #[test]
    fn one_write_in_a_read_is_all_known_with_its_gap() {
        let mut r = ReadSplit::default();
        r.gap(16_000);
        r.push(t(5));
        r.push(t(6));
        assert_eq!(finish(&mut r), (vec![5, 6], vec![], Some(16_000)));
    }

    #[test]
    fn only_the_last_write_of_a_merged_read_is_known() {
        let mut r = ReadSplit::default();
        r.gap(33_000);
        r.push(t(20_000));
        r.push(t(21_000));
        r.new_write();
        r.push(t(4_000));
        r.new_write();
        r.push(t(3_000));
        r.push(t(2_000));
        assert_eq!(
            finish(&mut r),
            (vec![3_000, 2_000], vec![20_000, 21_000, 4_000], None)
        );
        // The next read starts afresh.
        r.push(t(7));
        assert_eq!(finish(&mut r), (vec![7], vec![], None));
    }
}
