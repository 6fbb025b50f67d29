//! The one hot loop of the codec: `outputs = M * inputs` over GF(2^8), byte
//! column by byte column, for a small coefficient matrix `M`.
//!
//! Two implementations compute exactly the same bytes: a GFNI + AVX-512 one
//! (each multiply by a constant is one `vgf2p8affineqb` on 64 bytes), and the
//! portable `reed-solomon-erasure` slice routines. The choice is made once at
//! run time from the CPU's features.

#[cfg(target_arch = "x86_64")]
mod gfni;

use reed_solomon_erasure::galois_8 as gf;

/// Which implementation of the GF(2^8) matrix kernel a [`crate::Codec`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// `vgf2p8affineqb` on 512-bit vectors; needs AVX-512F, AVX-512BW and GFNI.
    GfniAvx512,
    /// `reed-solomon-erasure`'s slice multiply (SIMD where that crate has it);
    /// runs everywhere.
    Portable,
}

impl Backend {
    /// The fastest backend this CPU supports.
    pub fn detect() -> Backend {
        if Backend::GfniAvx512.is_supported() {
            Backend::GfniAvx512
        } else {
            Backend::Portable
        }
    }

    /// Whether this CPU can run the backend.
    pub fn is_supported(self) -> bool {
        match self {
            Backend::Portable => true,
            Backend::GfniAvx512 => gfni_supported(),
        }
    }

    /// A short stable name, for benchmark labels and logs.
    pub fn name(self) -> &'static str {
        match self {
            Backend::GfniAvx512 => "gfni-avx512",
            Backend::Portable => "portable",
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn gfni_supported() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("gfni")
}

#[cfg(not(target_arch = "x86_64"))]
fn gfni_supported() -> bool {
    false
}

/// Column blocking: all outputs are computed for one block of columns before
/// moving on, so the k input blocks stay in L1/L2 across the many parity rows
/// instead of being streamed from memory once per row. Tuned by the
/// `kernel_block` benchmark.
const BLOCK: usize = 4096;

/// Output sizes (bytes, all rows) from which the GFNI kernel writes with
/// streaming stores, when the outputs are 64-byte aligned.
const STREAM_THRESHOLD: usize = 16 << 20;

/// A coefficient matrix prepared for the kernel.
#[derive(Debug, Clone)]
pub(crate) struct Coeffs {
    rows: usize,
    cols: usize,
    bytes: Vec<u8>,
    /// One GFNI affine matrix per coefficient, row-major like `bytes`.
    affine: Vec<u64>,
}

impl Coeffs {
    /// `bytes` is row-major, `rows * cols` long.
    pub(crate) fn new(rows: usize, cols: usize, bytes: Vec<u8>) -> Coeffs {
        debug_assert_eq!(bytes.len(), rows * cols);
        let affine = bytes.iter().map(|&c| affine_matrix(c)).collect();
        Coeffs {
            rows,
            cols,
            bytes,
            affine,
        }
    }
}

/// The 8x8 bit matrix of "multiply by `c`" in the layout `vgf2p8affineqb`
/// reads: byte `7 - i` of the result selects the input bits whose images
/// under the multiplication have bit `i` set.
fn affine_matrix(c: u8) -> u64 {
    let images: [u8; 8] = core::array::from_fn(|j| gf::mul(c, 1 << j));
    let mut m = 0u64;
    for i in 0..8 {
        let mut row = 0u8;
        for (j, image) in images.iter().enumerate() {
            row |= ((image >> i) & 1) << j;
        }
        m |= u64::from(row) << (8 * (7 - i));
    }
    m
}

/// `outputs[r] = sum_c coeffs[r][c] * inputs[c]`, overwriting the outputs.
///
/// Panics if the slice counts do not match the matrix or the slices differ in
/// length: callers check lengths that come from data and return errors first,
/// so a panic here is a bug in this crate, never a reaction to input.
pub(crate) fn mul_matrix(
    backend: Backend,
    coeffs: &Coeffs,
    inputs: &[&[u8]],
    outputs: &mut [&mut [u8]],
) {
    mul_matrix_with(backend, coeffs, inputs, outputs, STREAM_THRESHOLD)
}

/// [`mul_matrix`] with the streaming-store threshold as a parameter, so the
/// tests can reach the streaming path with small outputs.
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
fn mul_matrix_with(
    backend: Backend,
    coeffs: &Coeffs,
    inputs: &[&[u8]],
    outputs: &mut [&mut [u8]],
    stream_threshold: usize,
) {
    assert_eq!(inputs.len(), coeffs.cols, "kernel input count");
    assert_eq!(outputs.len(), coeffs.rows, "kernel output count");
    let len = match (inputs.first(), outputs.first()) {
        (Some(i), _) => i.len(),
        (None, Some(o)) => o.len(),
        (None, None) => return,
    };
    assert!(
        inputs.iter().all(|s| s.len() == len) && outputs.iter().all(|s| s.len() == len),
        "kernel slices of unequal length"
    );
    if coeffs.cols == 0 {
        for o in outputs.iter_mut() {
            o.fill(0);
        }
        return;
    }
    match backend {
        #[cfg(target_arch = "x86_64")]
        Backend::GfniAvx512 => {
            if !gfni::mul_matrix(
                &coeffs.affine,
                coeffs.rows,
                coeffs.cols,
                inputs,
                outputs,
                len,
                stream_threshold,
            ) {
                portable(coeffs, inputs, outputs, len);
            }
        }
        _ => portable(coeffs, inputs, outputs, len),
    }
}

fn portable(coeffs: &Coeffs, inputs: &[&[u8]], outputs: &mut [&mut [u8]], len: usize) {
    let mut start = 0;
    while start < len {
        let end = (start + BLOCK * 4).min(len);
        for (r, out) in outputs.iter_mut().enumerate() {
            let out = &mut out[start..end];
            let row = &coeffs.bytes[r * coeffs.cols..(r + 1) * coeffs.cols];
            gf::mul_slice(row[0], &inputs[0][start..end], out);
            for (c, input) in inputs.iter().enumerate().skip(1) {
                gf::mul_slice_xor(row[c], &input[start..end], out);
            }
        }
        start = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(coeffs: &[u8], rows: usize, inputs: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let cols = inputs.len();
        let len = inputs.first().map_or(0, Vec::len);
        (0..rows)
            .map(|r| {
                (0..len)
                    .map(|j| {
                        (0..cols).fold(0u8, |acc, c| {
                            acc ^ gf::mul(coeffs[r * cols + c], inputs[c][j])
                        })
                    })
                    .collect()
            })
            .collect()
    }

    fn run(backend: Backend, coeffs: &Coeffs, inputs: &[Vec<u8>], len: usize) -> Vec<Vec<u8>> {
        let ins: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
        let mut outs = vec![vec![0xAAu8; len]; coeffs.rows];
        let mut out_refs: Vec<&mut [u8]> = outs.iter_mut().map(Vec::as_mut_slice).collect();
        mul_matrix(backend, coeffs, &ins, &mut out_refs);
        outs
    }

    /// Every constant times every byte value, on both backends: the affine
    /// matrices are derived, not tabulated, so all 65536 products are checked.
    #[test]
    fn every_product_matches_the_field() {
        let input: Vec<u8> = (0..=255).collect();
        for backend in [Backend::Portable, Backend::detect()] {
            let bytes: Vec<u8> = (0..=255).collect();
            let coeffs = Coeffs::new(256, 1, bytes);
            let outs = run(backend, &coeffs, std::slice::from_ref(&input), 256);
            for (c, out) in outs.iter().enumerate() {
                for (x, &y) in out.iter().enumerate() {
                    assert_eq!(y, gf::mul(c as u8, x as u8), "{backend:?} {c} * {x}");
                }
            }
        }
    }

    /// The streaming-store path (large aligned outputs) computes the same
    /// bytes; forced here with a zero threshold on aligned buffers.
    #[test]
    fn streaming_stores_match_reference() {
        let (rows, cols) = (11, 6);
        for len in [64usize, 640, BLOCK + 64 * 3, 2 * BLOCK + 40] {
            let coeffs: Vec<u8> = (0..rows * cols).map(|i| (i * 37 + 5) as u8).collect();
            let inputs: Vec<Vec<u8>> = (0..cols)
                .map(|c| (0..len).map(|j| (j * 13 + c * 101) as u8).collect())
                .collect();
            let want = reference(&coeffs, rows, &inputs);
            let prepared = Coeffs::new(rows, cols, coeffs);
            let stride = len.div_ceil(64) * 64;
            let mut backing = vec![0u8; rows * stride + 64];
            let off = backing.as_ptr().align_offset(64);
            let ins: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
            let mut outs: Vec<&mut [u8]> = backing[off..off + rows * stride]
                .chunks_exact_mut(stride)
                .map(|c| &mut c[..len])
                .collect();
            mul_matrix_with(Backend::detect(), &prepared, &ins, &mut outs, 0);
            let got: Vec<Vec<u8>> = outs.iter().map(|o| o.to_vec()).collect();
            assert_eq!(got, want, "len {len}");
        }
    }

    /// Matrix shapes that exercise every row-group size and the masked tail,
    /// at lengths around the vector width and the cache block.
    #[test]
    fn matrices_match_reference() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        };
        for &(rows, cols) in &[(1, 1), (3, 2), (7, 5), (8, 20), (9, 3), (17, 20), (80, 20)] {
            for &len in &[
                0usize,
                1,
                63,
                64,
                65,
                200,
                BLOCK - 1,
                BLOCK + 65,
                3 * BLOCK + 7,
            ] {
                let coeffs: Vec<u8> = (0..rows * cols).map(|_| next()).collect();
                let inputs: Vec<Vec<u8>> = (0..cols)
                    .map(|_| (0..len).map(|_| next()).collect())
                    .collect();
                let want = reference(&coeffs, rows, &inputs);
                let prepared = Coeffs::new(rows, cols, coeffs);
                for backend in [Backend::Portable, Backend::detect()] {
                    assert_eq!(
                        run(backend, &prepared, &inputs, len),
                        want,
                        "{backend:?} {rows}x{cols} len {len}"
                    );
                }
            }
        }
    }
}
