//! Helpers shared by the fuzz targets.

/// Splits `data` into chunks of pseudo-random sizes (1 to 64 bytes) drawn from
/// `seed`, the way a socket hands bytes over in arbitrary reads.
pub fn chunks(seed: u8, data: &[u8]) -> Vec<&[u8]> {
    let mut state = u32::from(seed) | 0x100;
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        // xorshift32: cheap and deterministic, so a crash replays exactly.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (1 + state % 64) as usize;
        let (head, tail) = rest.split_at(n.min(rest.len()));
        out.push(head);
        rest = tail;
    }
    out
}
