//! Per-core figures measured in CPU time rather than wall time, so that they
//! stay meaningful on a machine shared with other work, where criterion's
//! wall-clock numbers mostly measure the neighbours. Linux only (reads
//! `/proc`). Run with:
//!
//! ```text
//! cargo run --release -p prunedb-dispersal --example cpu_figures [encode|rebuild|pipeline]
//! ```

use std::sync::Arc;
use std::time::Instant;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use prunedb_dispersal::{Codec, LakeKey, Segment, SegmentBuilder, SegmentConfig};

const K: usize = 20;
const M: usize = 80;

/// CPU time of the calling thread, in seconds (scheduler accounting).
fn thread_cpu() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0.0, |ns| ns as f64 * 1e-9)
}

/// Runs `f` until at least `budget` seconds of thread CPU time have passed
/// and returns CPU seconds per call.
fn per_call(budget: f64, mut f: impl FnMut()) -> f64 {
    f();
    let start = thread_cpu();
    let mut n = 0u32;
    while thread_cpu() - start < budget || n < 3 {
        f();
        n += 1;
    }
    (thread_cpu() - start) / f64::from(n)
}

fn filled(len: usize, seed: u64) -> Vec<u8> {
    use rand::{RngCore, SeedableRng};
    let mut v = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

fn aligned(count: usize, len: usize) -> (Vec<u8>, usize) {
    let v = vec![0u8; count * len + 64];
    let off = v.as_ptr().align_offset(64);
    (v, off)
}

fn report(name: &str, bytes: usize, secs: f64) {
    println!(
        "{name:48} {:10.1} us  {:8.0} MB/s per core",
        secs * 1e6,
        bytes as f64 / secs / 1e6
    );
}

fn main() {
    let budget = 0.6;
    let only = std::env::args().nth(1).unwrap_or_default();
    let run = |part: &str| only.is_empty() || only == part;
    if run("encode") {
        encode(budget);
    }
    if run("rebuild") {
        rebuild(budget);
    }
    if run("pipeline") {
        pipeline(budget);
    }
}

fn encode(budget: f64) {
    println!("-- encode 20+80, CPU time of one thread --");
    for mib in [1usize, 4, 16] {
        let seg = mib << 20;
        let len = seg.div_ceil(K).div_ceil(64) * 64;
        let data: Vec<Vec<u8>> = (0..K).map(|i| filled(len, i as u64 + 1)).collect();
        let ins: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let (mut backing, off) = aligned(M, len);
        let region = off..off + M * len;

        let codec = Codec::new(K, M).expect("codec");
        let ours = per_call(budget, || {
            let mut o: Vec<&mut [u8]> = backing[region.clone()].chunks_exact_mut(len).collect();
            codec.encode(&ins, &mut o).expect("encode");
        });
        let rse = reed_solomon_erasure::galois_8::ReedSolomon::new(K, M).expect("rse");
        let theirs = per_call(budget, || {
            let mut o: Vec<&mut [u8]> = backing[region.clone()].chunks_exact_mut(len).collect();
            rse.encode_sep(&ins, &mut o).expect("encode");
        });
        let mut enc = reed_solomon_simd::ReedSolomonEncoder::new(K, M, len).expect("simd");
        let simd = per_call(budget, || {
            for d in &ins {
                enc.add_original_shard(d).expect("add");
            }
            let r = enc.encode().expect("encode");
            for (o, rec) in backing[region.clone()]
                .chunks_exact_mut(len)
                .zip(r.recovery_iter())
            {
                o.copy_from_slice(rec);
            }
        });
        report(
            &format!("prunedb ({}) {mib} MiB", codec.backend().name()),
            seg,
            ours,
        );
        report(&format!("reed-solomon-erasure {mib} MiB"), seg, theirs);
        report(&format!("reed-solomon-simd {mib} MiB"), seg, simd);
        println!(
            "  ratio: {:.1}x reed-solomon-erasure, {:.1}x reed-solomon-simd",
            theirs / ours,
            simd / ours
        );
    }
}

fn rebuild(budget: f64) {
    println!("-- rebuild one 4 KiB page from 20 parity shards --");
    {
        let len = 4096;
        let data: Vec<Vec<u8>> = (0..K).map(|i| filled(len, i as u64 + 7)).collect();
        let codec = Codec::new(K, M).expect("codec");
        let mut parity = vec![vec![0u8; len]; M];
        let ins: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let mut outs: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
        codec.encode(&ins, &mut outs).expect("encode");
        let sources: Vec<(usize, &[u8])> =
            (M - K..M).map(|p| (K + p, parity[p].as_slice())).collect();
        let ours = per_call(budget, || {
            std::hint::black_box(codec.reconstruct(&sources, &[7]).expect("rebuild"));
        });
        let rse = reed_solomon_erasure::galois_8::ReedSolomon::new(K, M).expect("rse");
        let theirs = per_call(budget, || {
            let mut sh: Vec<Option<Vec<u8>>> = vec![None; K + M];
            for &(i, b) in &sources {
                sh[i] = Some(b.to_vec());
            }
            rse.reconstruct_data(&mut sh).expect("rebuild");
        });
        let simd_parity = reed_solomon_simd::encode(K, M, &data).expect("simd");
        let mut dec = reed_solomon_simd::ReedSolomonDecoder::new(K, M, len).expect("simd");
        let simd = per_call(budget, || {
            for (p, shard) in simd_parity.iter().enumerate().skip(M - K) {
                dec.add_recovery_shard(p, shard).expect("add");
            }
            std::hint::black_box(
                dec.decode()
                    .expect("decode")
                    .restored_original(7)
                    .map(<[u8]>::len),
            );
        });
        report("prunedb", len, ours);
        report("reed-solomon-erasure", len, theirs);
        report("reed-solomon-simd", len, simd);
        println!(
            "  ratio: {:.1}x reed-solomon-erasure, {:.1}x reed-solomon-simd",
            theirs / ours,
            simd / ours
        );
    }
}

fn pipeline(budget: f64) {
    println!("-- pipeline: encrypt + encode + hash, against its primitives --");
    let key = LakeKey::new([3; 32]);
    let codec = Arc::new(Codec::new(K, M).expect("codec"));
    for mib in [4usize, 16] {
        let pages = (mib << 20) / 4112;
        let bytes = pages * 4112;
        let page = filled(4096, 9);
        let aead = XChaCha20Poly1305::new(&[5u8; 32].into());
        let mut buf = filled(bytes, 3);
        let enc = per_call(budget, || {
            for (i, rec) in buf.chunks_mut(4112).enumerate() {
                let mut n = [0u8; 24];
                n[..8].copy_from_slice(&(i as u64).to_le_bytes());
                let (body, tag) = rec.split_at_mut(4096);
                let t = aead
                    .encrypt_in_place_detached(&XNonce::from(n), b"aad", body)
                    .expect("seal");
                tag.copy_from_slice(&t);
            }
        });
        let len = bytes.div_ceil(K).div_ceil(64) * 64;
        let shards: Vec<Vec<u8>> = (0..K + M).map(|i| filled(len, i as u64 + 11)).collect();
        let hash = per_call(budget, || {
            for s in &shards {
                std::hint::black_box(blake3::hash(s));
            }
        });
        let ins: Vec<&[u8]> = shards[..K].iter().map(Vec::as_slice).collect();
        let (mut backing, off) = aligned(M, len);
        let encode = per_call(budget, || {
            let mut o: Vec<&mut [u8]> = backing[off..off + M * len].chunks_exact_mut(len).collect();
            codec.encode(&ins, &mut o).expect("encode");
        });
        let sum = enc + hash + encode;
        report(&format!("xchacha20poly1305 {mib} MiB"), bytes, enc);
        report(&format!("blake3 of all 100 shards {mib} MiB"), bytes, hash);
        report(&format!("encode {mib} MiB"), bytes, encode);
        report(&format!("sum of primitives {mib} MiB"), bytes, sum);

        let config = |threads| SegmentConfig {
            k: K,
            m: M,
            target_size: mib << 20,
            threads,
        };
        let build = |prev: Option<Segment>, threads| {
            let mut b =
                SegmentBuilder::with_codec(&key, [1; 16], 7, config(threads), codec.clone())
                    .expect("builder");
            if let Some(old) = prev {
                b.reuse(old);
            }
            for p in 0..pages {
                b.push(p as u64, 1, &page).expect("push");
            }
            b.finish().expect("finish")
        };
        // One thread: every phase runs on the calling thread, so its CPU
        // time is the whole cost, comparable with the primitives'.
        let mut prev = Some(build(None, 1));
        let one = per_call(budget * 2.0, || prev = Some(build(prev.take(), 1)));
        report(&format!("build 1 thread {mib} MiB"), bytes, one);
        println!("  = {:.0}% of what its primitives allow", sum / one * 100.0);
        // Two threads: wall time, back to back with one thread; only
        // meaningful on an otherwise idle machine.
        for threads in [1usize, 2] {
            let start = Instant::now();
            let mut n = 0u32;
            while start.elapsed().as_secs_f64() < 2.0 || n < 3 {
                prev = Some(build(prev.take(), threads));
                n += 1;
            }
            let wall = start.elapsed().as_secs_f64() / f64::from(n);
            println!(
                "build {threads} thread(s) {mib} MiB, wall {:.2} ms = {:.0} MB/s; allowed by primitives on {threads} core(s): {:.0} MB/s",
                wall * 1e3,
                bytes as f64 / wall / 1e6,
                threads as f64 * bytes as f64 / sum / 1e6
            );
        }
    }
}
