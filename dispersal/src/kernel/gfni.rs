//! GFNI + AVX-512 matrix kernel: the crate's only `unsafe` code.
//!
//! Multiplying 64 bytes by a GF(2^8) constant is one `vgf2p8affineqb` with
//! the constant's 8x8 bit matrix (any field polynomial works, since
//! multiplication by a constant is GF(2)-linear). Up to eight output rows are
//! accumulated in registers while the input rows are read once per group.

use core::arch::x86_64::{
    __m512i, _mm512_gf2p8affine_epi64_epi8, _mm512_loadu_si512, _mm512_mask_storeu_epi8,
    _mm512_maskz_loadu_epi8, _mm512_set1_epi64, _mm512_setzero_si512, _mm512_storeu_si512,
    _mm512_stream_si512, _mm512_xor_si512, _mm_sfence,
};

use super::BLOCK;

/// Largest number of output rows kept in registers at once: eight
/// accumulators plus the input vector and matrix broadcasts fit the 32 zmm
/// registers with room to spare.
const GROUP: usize = 8;

/// `outputs[r] = sum_c M[r][c] * inputs[c]` where `affine[r * cols + c]` is
/// the bit matrix of `M[r][c]`. Returns `false` (and touches nothing) when
/// the CPU lacks the features or the shapes are inconsistent, so that this
/// function is sound whatever it is given.
pub(super) fn mul_matrix(
    affine: &[u64],
    rows: usize,
    cols: usize,
    inputs: &[&[u8]],
    outputs: &mut [&mut [u8]],
    len: usize,
    stream_threshold: usize,
) -> bool {
    if !super::gfni_supported()
        || affine.len() != rows * cols
        || inputs.len() != cols
        || outputs.len() != rows
        || inputs.iter().any(|s| s.len() != len)
        || outputs.iter().any(|s| s.len() != len)
    {
        return false;
    }
    let ins: Vec<*const u8> = inputs.iter().map(|s| s.as_ptr()).collect();
    let mut outs: Vec<*mut u8> = outputs.iter_mut().map(|s| s.as_mut_ptr()).collect();
    // Outputs far larger than the caches are written around them: streaming
    // stores skip the read-for-ownership and leave the inputs cached. They
    // need 64-byte aligned destinations.
    let stream = rows.saturating_mul(len) >= stream_threshold
        && outs.iter().all(|p| (*p as usize).is_multiple_of(64));
    // SAFETY: the CPU supports avx512f, avx512bw and gfni (checked above), and
    // every pointer in `ins` and `outs` addresses `len` valid bytes (all
    // slice lengths were checked equal to `len`); outputs are distinct `&mut`
    // slices, so no output aliases an input or another output. When `stream`
    // is set every output pointer is 64-byte aligned, as `blocks` requires.
    unsafe {
        if stream {
            blocks::<true>(affine, cols, &ins, &mut outs, len);
            _mm_sfence();
        } else {
            blocks::<false>(affine, cols, &ins, &mut outs, len);
        }
    }
    true
}

/// # Safety
/// The CPU supports avx512f, avx512bw and gfni; each pointer in `ins` and
/// `outs` is valid for `len` bytes (reads, resp. writes); outputs alias
/// nothing; `affine.len() == outs.len() * ins.len()`; with `STREAM`, every
/// output pointer is 64-byte aligned.
#[target_feature(enable = "avx512f,avx512bw,gfni")]
unsafe fn blocks<const STREAM: bool>(
    affine: &[u64],
    cols: usize,
    ins: &[*const u8],
    outs: &mut [*mut u8],
    len: usize,
) {
    let rows = outs.len();
    let mut start = 0;
    while start < len {
        let end = (start + BLOCK).min(len);
        let mut r = 0;
        while r < rows {
            let g = (rows - r).min(GROUP);
            let mats = &affine[r * cols..(r + g) * cols];
            let o = &mut outs[r..r + g];
            // SAFETY: forwarded contract of `blocks`; `start..end` lies in `0..len`.
            unsafe {
                match g {
                    8 => group::<8, STREAM>(mats, ins, o, start, end),
                    7 => group::<7, STREAM>(mats, ins, o, start, end),
                    6 => group::<6, STREAM>(mats, ins, o, start, end),
                    5 => group::<5, STREAM>(mats, ins, o, start, end),
                    4 => group::<4, STREAM>(mats, ins, o, start, end),
                    3 => group::<3, STREAM>(mats, ins, o, start, end),
                    2 => group::<2, STREAM>(mats, ins, o, start, end),
                    _ => group::<1, STREAM>(mats, ins, o, start, end),
                }
            }
            r += g;
        }
        start = end;
    }
}

/// Computes `G` output rows over columns `start..end`.
///
/// # Safety
/// As for [`blocks`], with `outs.len() == G`, `mats.len() == G * ins.len()`,
/// `start <= end <= len` and `start` a multiple of 64.
#[target_feature(enable = "avx512f,avx512bw,gfni")]
#[inline]
unsafe fn group<const G: usize, const STREAM: bool>(
    mats: &[u64],
    ins: &[*const u8],
    outs: &mut [*mut u8],
    start: usize,
    end: usize,
) {
    let cols = ins.len();
    let mut off = start;
    while off + 64 <= end {
        let mut acc: [__m512i; G] = [_mm512_setzero_si512(); G];
        for (c, &input) in ins.iter().enumerate() {
            // SAFETY: off + 64 <= end <= len, and `input` is valid for len bytes.
            let x = unsafe { _mm512_loadu_si512(input.add(off).cast()) };
            for (g, a) in acc.iter_mut().enumerate() {
                let m = _mm512_set1_epi64(mats[g * cols + c] as i64);
                *a = _mm512_xor_si512(*a, _mm512_gf2p8affine_epi64_epi8::<0>(x, m));
            }
        }
        for (g, a) in acc.iter().enumerate() {
            // SAFETY: as for the load; outputs are valid for writes of len
            // bytes. With STREAM the output base and `off` are multiples of
            // 64, so the address is aligned as `_mm512_stream_si512` needs.
            unsafe {
                if STREAM {
                    _mm512_stream_si512(outs[g].add(off).cast(), *a);
                } else {
                    _mm512_storeu_si512(outs[g].add(off).cast(), *a);
                }
            }
        }
        off += 64;
    }
    if off < end {
        // Fewer than 64 columns left: masked loads and stores touch only them.
        let mask: u64 = (1u64 << (end - off)) - 1;
        let mut acc: [__m512i; G] = [_mm512_setzero_si512(); G];
        for (c, &input) in ins.iter().enumerate() {
            // SAFETY: the mask limits the access to bytes off..end, inside len.
            let x = unsafe { _mm512_maskz_loadu_epi8(mask, input.add(off).cast()) };
            for (g, a) in acc.iter_mut().enumerate() {
                let m = _mm512_set1_epi64(mats[g * cols + c] as i64);
                *a = _mm512_xor_si512(*a, _mm512_gf2p8affine_epi64_epi8::<0>(x, m));
            }
        }
        for (g, a) in acc.iter().enumerate() {
            // SAFETY: the mask limits the store to bytes off..end, inside len.
            unsafe { _mm512_mask_storeu_epi8(outs[g].add(off).cast(), mask, *a) };
        }
    }
}
