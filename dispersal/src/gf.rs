//! Small dense matrices over GF(2^8) (polynomial 0x11D), the field of
//! `reed-solomon-erasure`, whose element arithmetic this module reuses.

use reed_solomon_erasure::galois_8 as gf;

/// Row-major matrix over GF(2^8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<u8>,
}

impl Matrix {
    pub(crate) fn zero(rows: usize, cols: usize) -> Self {
        Matrix {
            rows,
            cols,
            data: vec![0; rows * cols],
        }
    }

    pub(crate) fn identity(n: usize) -> Self {
        let mut m = Self::zero(n, n);
        for i in 0..n {
            m.set(i, i, 1);
        }
        m
    }

    /// The n x k Vandermonde matrix with entry (r, c) = r^c. Any k of its rows
    /// are linearly independent because the evaluation points 0..n are distinct.
    pub(crate) fn vandermonde(rows: usize, cols: usize) -> Self {
        let mut m = Self::zero(rows, cols);
        for r in 0..rows {
            for c in 0..cols {
                m.set(r, c, gf::exp(r as u8, c));
            }
        }
        m
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    pub(crate) fn cols(&self) -> usize {
        self.cols
    }

    pub(crate) fn get(&self, r: usize, c: usize) -> u8 {
        self.data[r * self.cols + c]
    }

    pub(crate) fn set(&mut self, r: usize, c: usize, v: u8) {
        self.data[r * self.cols + c] = v;
    }

    pub(crate) fn row(&self, r: usize) -> &[u8] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// A new matrix made of the given rows of `self`, in that order.
    pub(crate) fn select_rows(&self, rows: &[usize]) -> Self {
        let mut out = Self::zero(rows.len(), self.cols);
        for (i, &r) in rows.iter().enumerate() {
            out.data[i * self.cols..(i + 1) * self.cols].copy_from_slice(self.row(r));
        }
        out
    }

    pub(crate) fn mul(&self, rhs: &Matrix) -> Matrix {
        debug_assert_eq!(self.cols, rhs.rows);
        let mut out = Self::zero(self.rows, rhs.cols);
        for r in 0..self.rows {
            for c in 0..rhs.cols {
                let mut acc = 0u8;
                for i in 0..self.cols {
                    acc ^= gf::mul(self.get(r, i), rhs.get(i, c));
                }
                out.set(r, c, acc);
            }
        }
        out
    }

    /// Gauss-Jordan inverse; `None` when the matrix is singular (or not square).
    pub(crate) fn invert(&self) -> Option<Matrix> {
        if self.rows != self.cols {
            return None;
        }
        let n = self.rows;
        let mut a = self.clone();
        let mut inv = Self::identity(n);
        for col in 0..n {
            let pivot = (col..n).find(|&r| a.get(r, col) != 0)?;
            if pivot != col {
                a.swap_rows(pivot, col);
                inv.swap_rows(pivot, col);
            }
            let p = a.get(col, col);
            if p != 1 {
                let scale = gf::div(1, p);
                a.scale_row(col, scale);
                inv.scale_row(col, scale);
            }
            for r in 0..n {
                let f = a.get(r, col);
                if r != col && f != 0 {
                    a.add_scaled_row(col, r, f);
                    inv.add_scaled_row(col, r, f);
                }
            }
        }
        Some(inv)
    }

    fn swap_rows(&mut self, a: usize, b: usize) {
        for c in 0..self.cols {
            self.data.swap(a * self.cols + c, b * self.cols + c);
        }
    }

    fn scale_row(&mut self, r: usize, f: u8) {
        for v in &mut self.data[r * self.cols..(r + 1) * self.cols] {
            *v = gf::mul(*v, f);
        }
    }

    /// row[dst] ^= f * row[src]
    fn add_scaled_row(&mut self, src: usize, dst: usize, f: u8) {
        for c in 0..self.cols {
            let v = gf::mul(self.get(src, c), f);
            self.data[dst * self.cols + c] ^= v;
        }
    }
}

/// The systematic (k + m) x k encoding matrix: identity on top, parity rows
/// below. Built exactly as `reed-solomon-erasure` builds it (Vandermonde times
/// the inverse of its top square), so both produce the same parity bytes, which
/// the tests check; any k rows of it are invertible.
pub(crate) fn systematic_matrix(k: usize, m: usize) -> Option<Matrix> {
    let vm = Matrix::vandermonde(k + m, k);
    let top = vm.select_rows(&(0..k).collect::<Vec<_>>());
    Some(vm.mul(&top.invert()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_roundtrip() {
        let enc = systematic_matrix(20, 80).unwrap();
        for r in 0..20 {
            for c in 0..20 {
                assert_eq!(enc.get(r, c), u8::from(r == c));
            }
        }
        let rows: Vec<usize> = (80..100).collect();
        let sub = enc.select_rows(&rows);
        let inv = sub.invert().unwrap();
        assert_eq!(sub.mul(&inv), Matrix::identity(20));
        assert_eq!(inv.mul(&sub), Matrix::identity(20));
    }

    #[test]
    fn singular_is_detected() {
        let mut m = Matrix::identity(3);
        m.set(2, 2, 0);
        assert!(m.invert().is_none());
    }
}
