//! Asking the CPU to bring bytes into its cache ahead of use. All `unsafe`
//! of it lives here.

/// The cache line size of the CPUs this runs on (x86-64, and the common
/// aarch64 cores); a larger line only means some hints repeat.
const LINE: usize = 64;

/// Starts loading every cache line of `bytes` into the cache, without
/// waiting for any: a hint that changes no value the program sees.
///
/// A leaf a write is about to change is worth loading whole: its binary
/// search otherwise waits on one cache miss after another, and the copy
/// that makes the page dirty reads all of it anyway.
#[inline]
pub(crate) fn prefetch(bytes: &[u8]) {
    for line in 0..bytes.len().div_ceil(LINE) {
        hint(bytes.as_ptr().wrapping_add(line * LINE));
    }
}

/// Hints the cache line at `at`; nothing on other CPUs, or under Miri.
#[inline(always)]
fn hint(at: *const u8) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: a prefetch reads nothing the program sees and never faults,
    // whatever the address (callers pass one inside a slice anyway).
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(at.cast::<i8>())
    };
    #[cfg(all(target_arch = "aarch64", not(miri)))]
    // SAFETY: as above; `prfm` only hints the cache, touching no register
    // but its address operand and no flag.
    unsafe {
        core::arch::asm!(
            "prfm pldl1keep, [{0}]",
            in(reg) at,
            options(nostack, readonly, preserves_flags)
        )
    };
    #[cfg(not(all(any(target_arch = "x86_64", target_arch = "aarch64"), not(miri))))]
    let _ = at;
}
