//! Codec and pipeline benchmarks, each beside the plain crates in one run.
//!
//! Throughput is in segment (data) bytes. `PRUNEDB_BENCH_QUICK=1` shortens
//! the measurement for smoke runs.

use std::hint::black_box;
use std::time::Duration;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use prunedb_dispersal::{Backend, Codec, LakeKey, SegmentBuilder, SegmentConfig};

const K: usize = 20;
const M: usize = 80;
const PAGE: usize = 4096;

fn filled(len: usize, seed: u64) -> Vec<u8> {
    use rand::{RngCore, SeedableRng};
    let mut v = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

/// `count` buffers of `len` bytes, each 64-byte aligned (len is a multiple
/// of 64), carved from one allocation as the segment builder does.
struct Aligned {
    backing: Vec<u8>,
    offset: usize,
    len: usize,
    count: usize,
}

impl Aligned {
    fn new(count: usize, len: usize) -> Aligned {
        let backing = vec![0u8; count * len + 64];
        let offset = backing.as_ptr().align_offset(64);
        Aligned {
            backing,
            offset,
            len,
            count,
        }
    }

    fn slices(&mut self) -> Vec<&mut [u8]> {
        self.backing[self.offset..self.offset + self.count * self.len]
            .chunks_exact_mut(self.len)
            .collect()
    }
}

fn shard_len(segment: usize) -> usize {
    segment.div_ceil(K).div_ceil(64) * 64
}

fn configure(c: &mut Criterion) -> Criterion {
    let quick = std::env::var_os("PRUNEDB_BENCH_QUICK").is_some();
    let _ = c;
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(if quick { 200 } else { 500 }))
        .measurement_time(Duration::from_secs(if quick { 1 } else { 3 }))
}

fn encode(c: &mut Criterion) {
    let mut c = configure(c);
    let mut group = c.benchmark_group("encode_20+80");
    for mib in [1usize, 4, 16] {
        let segment = mib << 20;
        let len = shard_len(segment);
        let data: Vec<Vec<u8>> = (0..K).map(|i| filled(len, i as u64 + 1)).collect();
        let ins: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let mut parity = Aligned::new(M, len);
        group.throughput(Throughput::Bytes(segment as u64));

        for backend in [Backend::detect(), Backend::Portable] {
            let codec = Codec::with_backend(K, M, backend).expect("codec");
            group.bench_function(
                BenchmarkId::new(format!("prunedb-{}", backend.name()), format!("{mib}MiB")),
                |b| b.iter(|| codec.encode(&ins, &mut parity.slices()).expect("encode")),
            );
        }

        let rse = reed_solomon_erasure::galois_8::ReedSolomon::new(K, M).expect("rse");
        group.bench_function(
            BenchmarkId::new("reed-solomon-erasure", format!("{mib}MiB")),
            |b| b.iter(|| rse.encode_sep(&ins, &mut parity.slices()).expect("encode")),
        );

        let mut simd = reed_solomon_simd::ReedSolomonEncoder::new(K, M, len).expect("simd");
        group.bench_function(
            BenchmarkId::new("reed-solomon-simd", format!("{mib}MiB")),
            |b| {
                b.iter(|| {
                    for d in &ins {
                        simd.add_original_shard(d).expect("add");
                    }
                    let result = simd.encode().expect("encode");
                    for (out, rec) in parity.slices().into_iter().zip(result.recovery_iter()) {
                        out.copy_from_slice(rec);
                    }
                })
            },
        );
    }
    group.finish();
}

/// One 4 KiB page rebuilt from parity shards 80..100, all data shards lost:
/// every codec gets just the page's 4 KiB column range of each parity shard.
fn rebuild_page(c: &mut Criterion) {
    let mut c = configure(c);
    let mut group = c.benchmark_group("rebuild_4KiB_page_from_20_parity");
    let len = PAGE;
    let data: Vec<Vec<u8>> = (0..K).map(|i| filled(len, i as u64 + 7)).collect();
    let codec = Codec::new(K, M).expect("codec");
    let mut parity = vec![vec![0u8; len]; M];
    {
        let ins: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let mut outs: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
        codec.encode(&ins, &mut outs).expect("encode");
    }
    let target = 7usize;
    group.throughput(Throughput::Bytes(PAGE as u64));

    let sources: Vec<(usize, &[u8])> = (M - K..M).map(|p| (K + p, parity[p].as_slice())).collect();
    group.bench_function("prunedb", |b| {
        b.iter(|| {
            let out = codec
                .reconstruct(black_box(&sources), &[target])
                .expect("rebuild");
            assert_eq!(out[0], data[target]);
        })
    });

    let rse = reed_solomon_erasure::galois_8::ReedSolomon::new(K, M).expect("rse");
    group.bench_function("reed-solomon-erasure", |b| {
        b.iter(|| {
            let mut shards: Vec<Option<Vec<u8>>> = vec![None; K + M];
            for &(i, bytes) in &sources {
                shards[i] = Some(bytes.to_vec());
            }
            rse.reconstruct_data(&mut shards).expect("rebuild");
            assert_eq!(shards[target].as_deref(), Some(data[target].as_slice()));
        })
    });

    // reed-solomon-simd uses its own code, so it gets its own parity.
    let simd_parity = reed_solomon_simd::encode(K, M, &data).expect("simd encode");
    let mut decoder = reed_solomon_simd::ReedSolomonDecoder::new(K, M, len).expect("simd");
    group.bench_function("reed-solomon-simd", |b| {
        b.iter(|| {
            for (p, shard) in simd_parity.iter().enumerate().skip(M - K) {
                decoder.add_recovery_shard(p, shard).expect("add");
            }
            let result = decoder.decode().expect("decode");
            assert_eq!(
                result.restored_original(target),
                Some(data[target].as_slice())
            );
        })
    });
    group.finish();
}

/// The full write path on 2 threads, next to its primitives on 1 thread, so
/// the ratio to what the primitives allow can be read off one run.
fn pipeline(c: &mut Criterion) {
    let mut c = configure(c);
    let key = LakeKey::new([3; 32]);
    let mut group = c.benchmark_group("pipeline");
    for mib in [4usize, 16] {
        let segment = mib << 20;
        let pages = segment / (PAGE + 16);
        let page = filled(PAGE, 99);
        let data_bytes = (pages * (PAGE + 16)) as u64;
        group.throughput(Throughput::Bytes(data_bytes));
        let codec = std::sync::Arc::new(Codec::new(K, M).expect("codec"));

        for threads in [1usize, 2] {
            let config = SegmentConfig {
                k: K,
                m: M,
                target_size: segment,
                threads,
            };
            // As a shipping loop runs: each builder reuses the buffers of
            // the previous, already uploaded, segment.
            let mut previous = None;
            group.bench_function(
                BenchmarkId::new(format!("build_{threads}t"), format!("{mib}MiB")),
                |b| {
                    b.iter(|| {
                        let mut builder =
                            SegmentBuilder::with_codec(&key, [1; 16], 7, config, codec.clone())
                                .expect("builder");
                        if let Some(old) = previous.take() {
                            builder.reuse(old);
                        }
                        for p in 0..pages {
                            builder.push(p as u64, 1, &page).expect("push");
                        }
                        previous = Some(black_box(builder.finish().expect("finish")));
                    })
                },
            );
        }

        let aead = XChaCha20Poly1305::new(&[5u8; 32].into());
        let mut buf = filled(pages * PAGE, 3);
        group.bench_function(
            BenchmarkId::new("primitive_xchacha20poly1305_1t", format!("{mib}MiB")),
            |b| {
                b.iter(|| {
                    for (i, rec) in buf.chunks_mut(PAGE).enumerate() {
                        let mut nonce = [0u8; 24];
                        nonce[..8].copy_from_slice(&(i as u64).to_le_bytes());
                        black_box(
                            aead.encrypt_in_place_detached(&XNonce::from(nonce), b"aad", rec)
                                .expect("seal"),
                        );
                    }
                })
            },
        );

        let len = shard_len(data_bytes as usize);
        let shards: Vec<Vec<u8>> = (0..K + M).map(|i| filled(len, i as u64 + 11)).collect();
        group.bench_function(
            BenchmarkId::new("primitive_blake3_all_shards_1t", format!("{mib}MiB")),
            |b| {
                b.iter(|| {
                    for s in &shards {
                        black_box(blake3::hash(s));
                    }
                })
            },
        );

        let ins: Vec<&[u8]> = shards[..K].iter().map(Vec::as_slice).collect();
        let mut parity = Aligned::new(M, len);
        group.bench_function(
            BenchmarkId::new("primitive_encode_1t", format!("{mib}MiB")),
            |b| b.iter(|| codec.encode(&ins, &mut parity.slices()).expect("encode")),
        );
    }
    group.finish();
}

criterion_group!(benches, encode, rebuild_page, pipeline);
criterion_main!(benches);
