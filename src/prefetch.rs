//! Cache prefetch hints. The shard's write pass visits connections in the
//! order their flushes fell due, which the hardware cannot guess: without a
//! hint, each connection's session and subscription list is a cache miss the
//! core waits on, one after the other.

/// At most this much of one value is asked for: a hint for the head of a
/// long subscription list is enough, the hardware follows a sequential read.
const MAX_BYTES: usize = 1024;

const CACHE_LINE: usize = 64;

/// Asks the CPU to start loading the cache lines of `value` (a hint: it
/// changes nothing and the CPU may ignore it).
pub fn value<T>(value: &T) {
    bytes(std::ptr::from_ref(value).cast(), size_of::<T>());
}

/// [`value`] for the items of a slice.
pub fn slice<T>(items: &[T]) {
    bytes(items.as_ptr().cast(), size_of_val(items));
}

fn bytes(start: *const i8, len: usize) {
    if len == 0 {
        return;
    }
    // Every line the value touches, from the one it starts in: a value off a
    // line boundary can touch one line more than its length suggests.
    let skew = start as usize % CACHE_LINE;
    let first = start.wrapping_sub(skew);
    let span = skew + len.min(MAX_BYTES);
    #[cfg(target_arch = "x86_64")]
    for offset in (0..span).step_by(CACHE_LINE) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: SSE is part of every x86_64 CPU, and a prefetch reads
        // nothing the program sees and never faults, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(first.wrapping_add(offset)) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (first, span);
}
