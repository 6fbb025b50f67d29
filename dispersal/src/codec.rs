//! Systematic Reed-Solomon over GF(2^8): k data shards, m parity shards, any
//! k of the k + m rebuild everything.
//!
//! Every operation is column-wise: byte j of every output depends only on
//! byte j of the inputs. So the same functions that encode or rebuild whole
//! shards also rebuild any byte range, given that range of any k shards.

use crate::gf::{systematic_matrix, Matrix};
use crate::kernel::{self, Backend, Coeffs};
use crate::{Error, Result};

/// Largest k + m: the field has 256 elements, one evaluation point per shard.
pub const MAX_SHARDS: usize = 256;

/// A Reed-Solomon code with fixed k and m, and the kernel it runs on.
#[derive(Debug, Clone)]
pub struct Codec {
    k: usize,
    m: usize,
    backend: Backend,
    matrix: Matrix,
    parity: Coeffs,
}

impl Codec {
    /// A code with `k` data and `m` parity shards on the fastest kernel the
    /// CPU supports.
    pub fn new(k: usize, m: usize) -> Result<Codec> {
        Codec::with_backend(k, m, Backend::detect())
    }

    /// A code on a chosen kernel; fails if this CPU cannot run it.
    pub fn with_backend(k: usize, m: usize, backend: Backend) -> Result<Codec> {
        if k == 0 || k + m > MAX_SHARDS {
            return Err(Error::InvalidConfig(format!(
                "need 1 <= k and k + m <= {MAX_SHARDS}, got k={k} m={m}"
            )));
        }
        if !backend.is_supported() {
            return Err(Error::InvalidConfig(format!(
                "backend {} is not supported by this CPU",
                backend.name()
            )));
        }
        let matrix = systematic_matrix(k, m)
            .ok_or_else(|| Error::InvalidConfig("singular encoding matrix".into()))?;
        let rows: Vec<usize> = (k..k + m).collect();
        let parity_rows = matrix.select_rows(&rows);
        let parity = Coeffs::new(
            m,
            k,
            (0..m).flat_map(|r| parity_rows.row(r).to_vec()).collect(),
        );
        Ok(Codec {
            k,
            m,
            backend,
            matrix,
            parity,
        })
    }

    /// k, the number of data shards (and of shards needed to rebuild).
    pub fn data_shards(&self) -> usize {
        self.k
    }

    /// m, the number of parity shards.
    pub fn parity_shards(&self) -> usize {
        self.m
    }

    /// k + m.
    pub fn total_shards(&self) -> usize {
        self.k + self.m
    }

    /// The kernel in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Computes the m parity shards (or the same column range of each) from
    /// the k data shards. All slices must have one length.
    pub fn encode(&self, data: &[&[u8]], parity: &mut [&mut [u8]]) -> Result<()> {
        self.check_encode_shapes(data, parity)?;
        kernel::mul_matrix(self.backend, &self.parity, data, parity);
        Ok(())
    }

    /// [`Codec::encode`] split by column ranges over `threads` threads.
    pub fn encode_parallel(
        &self,
        data: &[&[u8]],
        parity: &mut [&mut [u8]],
        threads: usize,
    ) -> Result<()> {
        let len = self.check_encode_shapes(data, parity)?;
        let threads = threads.max(1);
        // Chunks are whole 64-byte vectors so only the last one has a tail.
        let chunk = len.div_ceil(threads).div_ceil(64) * 64;
        if threads == 1 || chunk == 0 || chunk >= len {
            kernel::mul_matrix(self.backend, &self.parity, data, parity);
            return Ok(());
        }
        type Job<'a> = (Vec<&'a [u8]>, Vec<&'a mut [u8]>);
        let mut jobs: Vec<Job<'_>> = Vec::new();
        let mut rests: Vec<&mut [u8]> = parity.iter_mut().map(|p| &mut **p).collect();
        let mut start = 0;
        while start < len {
            let end = (start + chunk).min(len);
            let ins: Vec<&[u8]> = data.iter().map(|d| &d[start..end]).collect();
            let mut outs = Vec::with_capacity(rests.len());
            for rest in rests.iter_mut() {
                let (head, tail) = core::mem::take(rest).split_at_mut(end - start);
                outs.push(head);
                *rest = tail;
            }
            jobs.push((ins, outs));
            start = end;
        }
        std::thread::scope(|s| {
            let mut jobs = jobs.into_iter();
            let first = jobs.next();
            for (ins, mut outs) in jobs {
                s.spawn(move || kernel::mul_matrix(self.backend, &self.parity, &ins, &mut outs));
            }
            if let Some((ins, mut outs)) = first {
                kernel::mul_matrix(self.backend, &self.parity, &ins, &mut outs);
            }
        });
        Ok(())
    }

    fn check_encode_shapes(&self, data: &[&[u8]], parity: &[&mut [u8]]) -> Result<usize> {
        if data.len() != self.k || parity.len() != self.m {
            return Err(Error::InvalidConfig(format!(
                "encode needs {} data and {} parity slices, got {} and {}",
                self.k,
                self.m,
                data.len(),
                parity.len()
            )));
        }
        let len = data[0].len();
        for (i, s) in data
            .iter()
            .map(|s| s.len())
            .chain(parity.iter().map(|s| s.len()))
            .enumerate()
        {
            if s != len {
                return Err(Error::ShardLength {
                    index: i,
                    expected: len,
                    actual: s,
                });
            }
        }
        Ok(len)
    }

    /// Rebuilds the shards numbered `wanted` (or the same column range of
    /// each) from `available`, pairs of shard index and bytes, of which the
    /// first k distinct ones are used, data shards preferred. Returns the
    /// rebuilt shards in the order of `wanted`.
    pub fn reconstruct(
        &self,
        available: &[(usize, &[u8])],
        wanted: &[usize],
    ) -> Result<Vec<Vec<u8>>> {
        let n = self.total_shards();
        let len = available.first().map_or(0, |(_, s)| s.len());
        for &w in wanted {
            if w >= n {
                return Err(Error::ShardIndex {
                    index: w,
                    shards: n,
                });
            }
        }
        let mut seen = [false; MAX_SHARDS];
        for &(index, bytes) in available {
            if index >= n {
                return Err(Error::ShardIndex { index, shards: n });
            }
            if seen[index] {
                return Err(Error::DuplicateShard(index));
            }
            seen[index] = true;
            if bytes.len() != len {
                return Err(Error::ShardLength {
                    index,
                    expected: len,
                    actual: bytes.len(),
                });
            }
        }
        if available.len() < self.k {
            return Err(Error::NotEnoughShards {
                needed: self.k,
                available: available.len(),
            });
        }
        let mut sources: Vec<(usize, &[u8])> = available.to_vec();
        sources.sort_unstable_by_key(|&(i, _)| i);
        sources.truncate(self.k);

        let mut out: Vec<Vec<u8>> = Vec::with_capacity(wanted.len());
        let mut missing: Vec<(usize, usize)> = Vec::new();
        for (slot, &w) in wanted.iter().enumerate() {
            match sources.iter().find(|&&(i, _)| i == w) {
                Some(&(_, bytes)) => out.push(bytes.to_vec()),
                None => {
                    out.push(vec![0; len]);
                    missing.push((slot, w));
                }
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let rows: Vec<usize> = sources.iter().map(|&(i, _)| i).collect();
        let decode = self
            .matrix
            .select_rows(&rows)
            .invert()
            .ok_or_else(|| Error::InvalidConfig("singular decode matrix".into()))?;
        // Row w of the encoding matrix times the inverse maps the k sources
        // straight to shard w, data or parity.
        let wanted_rows: Vec<usize> = missing.iter().map(|&(_, w)| w).collect();
        let coeffs = self.matrix.select_rows(&wanted_rows).mul(&decode);
        let coeffs = Coeffs::new(
            coeffs.rows(),
            coeffs.cols(),
            (0..coeffs.rows())
                .flat_map(|r| coeffs.row(r).to_vec())
                .collect(),
        );
        let ins: Vec<&[u8]> = sources.iter().map(|&(_, b)| b).collect();
        let mut targets: Vec<&mut [u8]> = Vec::with_capacity(missing.len());
        let mut missing_slots = missing.iter().map(|&(slot, _)| slot).peekable();
        for (slot, buf) in out.iter_mut().enumerate() {
            if missing_slots.peek() == Some(&slot) {
                missing_slots.next();
                targets.push(buf.as_mut_slice());
            }
        }
        kernel::mul_matrix(self.backend, &coeffs, &ins, &mut targets);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reed_solomon_erasure::galois_8::ReedSolomon;

    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        use rand::{RngCore, SeedableRng};
        let mut v = vec![0u8; len];
        rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut v);
        v
    }

    /// Our parity must equal reed-solomon-erasure's byte for byte, on every
    /// backend, for several shapes and lengths (including ragged tails).
    #[test]
    fn parity_matches_reed_solomon_erasure() {
        for &(k, m) in &[(1, 1), (2, 3), (4, 2), (20, 80), (10, 20), (17, 9)] {
            let reference = ReedSolomon::new(k, m).unwrap();
            for &len in &[1usize, 64, 100, 4096, 5000, 70_000] {
                let data: Vec<Vec<u8>> = (0..k)
                    .map(|i| pseudo_random(len, (i * 31 + len) as u64))
                    .collect();
                let mut want: Vec<Vec<u8>> = data.clone();
                want.extend((0..m).map(|_| vec![0u8; len]));
                reference.encode(&mut want).unwrap();
                for backend in [Backend::Portable, Backend::detect()] {
                    let codec = Codec::with_backend(k, m, backend).unwrap();
                    for threads in [1, 2, 3] {
                        let mut parity = vec![vec![0x55u8; len]; m];
                        let ins: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
                        let mut outs: Vec<&mut [u8]> =
                            parity.iter_mut().map(Vec::as_mut_slice).collect();
                        codec.encode_parallel(&ins, &mut outs, threads).unwrap();
                        assert_eq!(
                            parity,
                            want[k..],
                            "k={k} m={m} len={len} {backend:?} t={threads}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn rejects_bad_parameters() {
        assert!(Codec::new(0, 4).is_err());
        assert!(Codec::new(200, 57).is_err());
        assert!(Codec::new(200, 56).is_ok());
        let c = Codec::new(3, 2).unwrap();
        let a = [0u8; 8];
        let r = c.reconstruct(&[(0, &a[..]), (1, &a[..])], &[2]);
        assert_eq!(
            r,
            Err(Error::NotEnoughShards {
                needed: 3,
                available: 2
            })
        );
        let r = c.reconstruct(&[(0, &a[..]), (0, &a[..]), (1, &a[..])], &[2]);
        assert_eq!(r, Err(Error::DuplicateShard(0)));
        let r = c.reconstruct(&[(0, &a[..]), (1, &a[..]), (5, &a[..])], &[2]);
        assert_eq!(
            r,
            Err(Error::ShardIndex {
                index: 5,
                shards: 5
            })
        );
        let r = c.reconstruct(&[(0, &a[..]), (1, &a[..4]), (3, &a[..])], &[2]);
        assert!(matches!(r, Err(Error::ShardLength { index: 1, .. })));
    }

    #[test]
    fn every_survivor_pair_rebuilds_small_code() {
        let (k, m) = (2, 3);
        let codec = Codec::new(k, m).unwrap();
        let data: Vec<Vec<u8>> = (0..k).map(|i| pseudo_random(300, i as u64)).collect();
        let mut parity = vec![vec![0u8; 300]; m];
        {
            let ins: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
            let mut outs: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
            codec.encode(&ins, &mut outs).unwrap();
        }
        let all: Vec<&[u8]> = data
            .iter()
            .chain(parity.iter())
            .map(Vec::as_slice)
            .collect();
        for a in 0..k + m {
            for b in 0..k + m {
                if a == b {
                    continue;
                }
                let got = codec
                    .reconstruct(&[(a, all[a]), (b, all[b])], &(0..k + m).collect::<Vec<_>>())
                    .unwrap();
                for (i, shard) in got.iter().enumerate() {
                    assert_eq!(shard.as_slice(), all[i], "survivors {a},{b} shard {i}");
                }
            }
        }
    }
}
