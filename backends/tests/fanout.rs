//! The fan-out over 100 fault-injecting backends: threshold writes with
//! straggler cancellation, reads with 80 of 100 offline (decoded and
//! compared byte for byte), a clean failure at 81, and bit flips that never
//! reach the caller.

mod common;

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use prunedb_backends::{
    ChunkedBlake3, Error, FanOut, FanOutConfig, FaultConfig, FaultyStore, Fetched, Health, Latency,
    MemoryStore, MissingReason, ObjectInfo, Outage, ShardStore, WholeShardBlake3,
};
use reed_solomon_erasure::galois_8::ReedSolomon;

const K: usize = 20;
const M: usize = 80;
const N: usize = K + M;
const SHARD_LEN: usize = 32 << 10;
const CHUNK: u64 = 1024;
/// An encrypted 4 KiB page with its nonce and tag.
const PAGE_LEN: u64 = 4096 + 40;

type Backends = Vec<Arc<FaultyStore<MemoryStore>>>;

fn lake(faults: FaultConfig, config: FanOutConfig) -> (FanOut, Backends) {
    let backends: Backends = (0..N)
        .map(|i| {
            let f = FaultConfig {
                seed: i as u64,
                ..faults.clone()
            };
            Arc::new(FaultyStore::new(MemoryStore::new(format!("m{i:03}")), f))
        })
        .collect();
    let dyns: Vec<Arc<dyn ShardStore>> = backends
        .iter()
        .map(|b| Arc::clone(b) as Arc<dyn ShardStore>)
        .collect();
    (FanOut::new(dyns, config).unwrap(), backends)
}

/// A coded segment: `N` shards, the first `K` of them the data.
struct Segment {
    id: u64,
    shards: Vec<Bytes>,
    verifier: ChunkedBlake3,
}

impl Segment {
    fn new(id: u64) -> Segment {
        let mut shards: Vec<Vec<u8>> = (0..K)
            .map(|i| common::bytes(id * 1000 + i as u64, SHARD_LEN).to_vec())
            .collect();
        shards.resize(N, vec![0u8; SHARD_LEN]);
        ReedSolomon::new(K, M).unwrap().encode(&mut shards).unwrap();
        let verifier = ChunkedBlake3::from_shards(CHUNK, &shards);
        Segment {
            id,
            shards: shards.into_iter().map(Bytes::from).collect(),
            verifier,
        }
    }

    /// Pages as (data shard, byte range inside it), spread over all data
    /// shards at offsets that straddle chunk boundaries.
    fn pages(&self, per_shard: usize) -> Vec<(usize, Range<u64>)> {
        let mut out = Vec::new();
        for shard in 0..K {
            for p in 0..per_shard {
                let start = (p as u64 * 7_919 + shard as u64 * 131) % (SHARD_LEN as u64 - PAGE_LEN);
                out.push((shard, start..start + PAGE_LEN));
            }
        }
        out
    }
}

/// Reads one page through the fan-out and, when the primary did not
/// answer, decodes it from the `K` pieces, the way the layer above will.
async fn read_page(
    fan: &FanOut,
    seg: &Segment,
    shard: usize,
    page: Range<u64>,
) -> Result<(Bytes, bool), Error> {
    read_page_timed(fan, seg, shard, page)
        .await
        .map(|(b, p, _)| (b, p))
}

/// Like `read_page`, also returning the time the fan-out took (without
/// the decoding, which is the caller's).
async fn read_page_timed(
    fan: &FanOut,
    seg: &Segment,
    shard: usize,
    page: Range<u64>,
) -> Result<(Bytes, bool, Duration), Error> {
    let wide = seg.verifier.covering(page.clone());
    let start = Instant::now();
    let out = fan
        .read_segment(seg.id, N, K, Some(shard), Some(wide.clone()), &seg.verifier)
        .await?;
    let fetch = start.elapsed();
    let offset = (page.start - wide.start) as usize..(page.end - wide.start) as usize;
    match out.fetched {
        Fetched::Primary(piece) => {
            assert_eq!(piece.shard, shard);
            Ok((piece.bytes.slice(offset), true, fetch))
        }
        Fetched::Pieces(pieces) => {
            assert_eq!(pieces.len(), K);
            let distinct: BTreeSet<usize> = pieces.iter().map(|p| p.shard).collect();
            assert_eq!(distinct.len(), K, "pieces of distinct shards");
            let mut cols: Vec<Option<Vec<u8>>> = vec![None; N];
            for p in pieces {
                // Every piece handed out must be the true bytes.
                let truth = seg.shards[p.shard].slice(wide.start as usize..wide.end as usize);
                assert_eq!(p.bytes, truth, "unverified bytes reached the caller");
                cols[p.shard] = Some(p.bytes.to_vec());
            }
            ReedSolomon::new(K, M)
                .unwrap()
                .reconstruct_data(&mut cols)
                .unwrap();
            let col = cols[shard].take().unwrap();
            Ok((Bytes::from(col).slice(offset), false, fetch))
        }
    }
}

fn truth(seg: &Segment, shard: usize, page: &Range<u64>) -> Bytes {
    seg.shards[shard].slice(page.start as usize..page.end as usize)
}

/// Picks `count` backends by a fixed pseudo-random permutation.
fn pick(count: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..N).collect();
    let mut x = seed | 1;
    for i in (1..N).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        idx.swap(i, (x % (i as u64 + 1)) as usize);
    }
    idx.truncate(count);
    idx
}

/// `count` backends that include every data shard's backend of `seg`, so
/// no page can be served by its primary.
fn offline_including_data(fan: &FanOut, seg: &Segment, count: usize, seed: u64) -> Vec<usize> {
    let data: Vec<usize> = (0..K).map(|i| fan.locate(seg.id, i).backend).collect();
    let mut out = data.clone();
    out.extend(
        pick(N, seed)
            .into_iter()
            .filter(|b| !data.contains(b))
            .take(count - K),
    );
    out
}

fn percentiles(mut v: Vec<Duration>) -> (Duration, Duration, Duration) {
    v.sort();
    (
        common::percentile(&v, 50.0),
        common::percentile(&v, 99.0),
        *v.last().unwrap(),
    )
}

const RTT_MS: f64 = 10.0;

fn rtt() -> FaultConfig {
    FaultConfig {
        latency: Latency::LogNormal {
            median_ms: RTT_MS,
            sigma: 0.3,
        },
        ..FaultConfig::default()
    }
}

fn read_config() -> FanOutConfig {
    FanOutConfig {
        write_threshold: N,
        hedge_delay: Duration::from_millis(30),
        hedge_spare: 2,
        ..FanOutConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_succeeds_at_threshold_and_cancels_stragglers() {
    let config = FanOutConfig {
        write_threshold: 90,
        ..FanOutConfig::default()
    };
    let (fan, backends) = lake(
        FaultConfig {
            latency: Latency::fixed(Duration::from_millis(5)),
            ..FaultConfig::default()
        },
        config,
    );
    let seg_id = 7;
    // Ten backends take 30 s to answer.
    let slow: BTreeSet<usize> = pick(10, 3).into_iter().collect();
    for &b in &slow {
        backends[b].set_config(FaultConfig {
            latency: Latency::fixed(Duration::from_secs(30)),
            ..FaultConfig::default()
        });
    }
    let shards: Vec<Bytes> = (0..N).map(|i| common::bytes(i as u64, 2048)).collect();
    let start = Instant::now();
    let report = fan.write_segment(seg_id, shards.clone()).await.unwrap();
    let took = start.elapsed();
    eprintln!(
        "threshold write of 100 x 2 KiB with 10 stragglers: {}",
        common::ms(took)
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(report.acked.len(), 90);
    assert_eq!(report.missing.len(), 10);
    let missing_backends: BTreeSet<usize> = report.missing.iter().map(|m| m.backend).collect();
    assert_eq!(missing_backends, slow);
    for m in &report.missing {
        assert!(matches!(m.reason, MissingReason::Cancelled), "{m:?}");
        assert_eq!(fan.locate(seg_id, m.shard).backend, m.backend);
    }
    // The stragglers were cancelled, not left running, and wrote nothing.
    tokio::time::sleep(Duration::from_millis(50)).await;
    for (b, store) in backends.iter().enumerate() {
        let stats = store.stats();
        if slow.contains(&b) {
            assert_eq!(stats.cancelled, 1, "backend {b}");
            assert!(store.inner().is_empty(), "backend {b}");
        } else {
            assert_eq!(stats.cancelled, 0, "backend {b}");
            assert_eq!(store.inner().len(), 1, "backend {b}");
        }
    }
    // Every acknowledged shard is where placement says, with its bytes.
    for &shard in &report.acked {
        let loc = fan.locate(seg_id, shard);
        let got = backends[loc.backend].inner().get(&loc.key).await.unwrap();
        assert_eq!(got, shards[shard]);
    }
}

/// Counts requests in flight across all backends it wraps.
#[derive(Debug)]
struct Gauge {
    inner: MemoryStore,
    now: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

#[async_trait]
impl ShardStore for Gauge {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn put(&self, key: &str, data: Bytes) -> prunedb_backends::Result<()> {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(n, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(2)).await;
        let r = self.inner.put(key, data).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        r
    }
    async fn get(&self, key: &str) -> prunedb_backends::Result<Bytes> {
        self.inner.get(key).await
    }
    async fn get_range(&self, key: &str, r: Range<u64>) -> prunedb_backends::Result<Bytes> {
        self.inner.get_range(key, r).await
    }
    async fn delete(&self, key: &str) -> prunedb_backends::Result<()> {
        self.inner.delete(key).await
    }
    async fn list(&self, prefix: &str) -> prunedb_backends::Result<Vec<ObjectInfo>> {
        self.inner.list(prefix).await
    }
    async fn health(&self) -> prunedb_backends::Result<Health> {
        self.inner.health().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_concurrency_is_bounded() {
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let backends: Vec<Arc<dyn ShardStore>> = (0..N)
        .map(|i| {
            Arc::new(Gauge {
                inner: MemoryStore::new(format!("g{i}")),
                now: now.clone(),
                peak: peak.clone(),
            }) as Arc<dyn ShardStore>
        })
        .collect();
    let fan = FanOut::new(
        backends,
        FanOutConfig {
            write_threshold: 0,
            max_concurrency: 16,
            ..FanOutConfig::default()
        },
    )
    .unwrap();
    let report = fan
        .write_segment(1, (0..N).map(|i| common::bytes(i as u64, 64)).collect())
        .await
        .unwrap();
    assert_eq!(report.acked.len(), N);
    assert!(report.missing.is_empty());
    assert_eq!(peak.load(Ordering::SeqCst), 16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_fails_as_soon_as_the_threshold_is_out_of_reach() {
    let (fan, backends) = lake(
        FaultConfig {
            latency: Latency::fixed(Duration::from_secs(5)),
            ..FaultConfig::default()
        },
        FanOutConfig {
            write_threshold: 90,
            ..FanOutConfig::default()
        },
    );
    for b in pick(11, 5) {
        backends[b].set_outage(Outage::Down);
    }
    let start = Instant::now();
    let err = fan
        .write_segment(3, (0..N).map(|i| common::bytes(i as u64, 64)).collect())
        .await
        .unwrap_err();
    let took = start.elapsed();
    match err {
        Error::WriteQuorum {
            acked,
            needed,
            failed,
            failures,
        } => {
            assert_eq!((acked, needed, failed), (0, 90, 11));
            assert_eq!(failures.len(), 11);
            assert!(failures.iter().all(|(_, e)| e.is_transient()));
        }
        other => panic!("{other}"),
    }
    // Decided on the eleventh refusal, without waiting for the slow acks.
    assert!(took < Duration::from_secs(2), "{took:?}");
}

async fn read_all_pages(
    label: &str,
    fan: &FanOut,
    seg: &Segment,
    pages: &[(usize, Range<u64>)],
) -> (Duration, Duration) {
    let mut lat = Vec::new();
    let mut total = Vec::new();
    let mut primary_hits = 0;
    for (shard, page) in pages {
        let start = Instant::now();
        let (bytes, primary, fetch) = read_page_timed(fan, seg, *shard, page.clone())
            .await
            .unwrap_or_else(|e| panic!("{label}: page {shard}/{page:?}: {e}"));
        total.push(start.elapsed());
        lat.push(fetch);
        assert_eq!(
            bytes,
            truth(seg, *shard, page),
            "{label}: page {shard}/{page:?}"
        );
        primary_hits += usize::from(primary);
    }
    let (p50, p99, max) = percentiles(lat);
    let (t50, t99, _) = percentiles(total);
    eprintln!(
        "{label:<34} pages {:>3}  primary {:>3}  fetch p50 {:>9} p99 {:>9} max {:>9} | with decode p50 {:>9} p99 {:>9}",
        pages.len(),
        primary_hits,
        common::ms(p50),
        common::ms(p99),
        common::ms(max),
        common::ms(t50),
        common::ms(t99),
    );
    (p50, p99)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_reads_with_80_of_100_offline() {
    let (fan, backends) = lake(rtt(), read_config());
    let seg = Segment::new(11);
    let report = fan.write_segment(seg.id, seg.shards.clone()).await.unwrap();
    assert_eq!(report.acked.len(), N);
    // Unoptimised Reed-Solomon decoding dominates debug runs; release
    // runs (the ones the figures come from) read twice as many pages.
    let pages = seg.pages(if cfg!(debug_assertions) { 2 } else { 4 });
    eprintln!("injected round trip: log-normal, median {RTT_MS} ms, sigma 0.3; hedge delay 30 ms");
    read_all_pages("all 100 up", &fan, &seg, &pages).await;

    let offline = pick(80, 17);
    for mode in [Outage::Down, Outage::Blackhole] {
        for &b in &offline {
            backends[b].set_outage(mode);
        }
        let label = format!("80 of 100 offline ({mode:?})");
        let (_, p99) = read_all_pages(&label, &fan, &seg, &pages).await;
        // Generous: a handful of hedge rounds plus round trips.
        assert!(p99 < Duration::from_secs(2), "{label}: p99 {p99:?}");
        for &b in &offline {
            backends[b].set_outage(Outage::Up);
        }
    }

    // The worst placement: every data shard's backend is among the 80.
    for b in offline_including_data(&fan, &seg, 80, 23) {
        backends[b].set_outage(Outage::Blackhole);
    }
    let (_, p99) = read_all_pages("80 offline incl. all data shards", &fan, &seg, &pages).await;
    assert!(p99 < Duration::from_secs(2), "p99 {p99:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_81_offline_reads_fail_cleanly() {
    let (fan, backends) = lake(rtt(), read_config());
    let seg = Segment::new(12);
    fan.write_segment(seg.id, seg.shards.clone()).await.unwrap();
    // Every data shard among them: no page has a primary to fall back on.
    let offline = offline_including_data(&fan, &seg, 81, 29);
    for &b in &offline {
        backends[b].set_outage(Outage::Down);
    }
    for (shard, page) in seg.pages(1) {
        let start = Instant::now();
        let err = read_page(&fan, &seg, shard, page).await.unwrap_err();
        match &err {
            Error::NotEnoughShards { got, needed, .. } => {
                assert_eq!(*needed, K);
                assert!(*got < K);
            }
            other => panic!("expected NotEnoughShards, got {other}"),
        }
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    // Unresponsive rather than refusing: the per-request timeout turns the
    // silence into failures and the read still ends with a clear error.
    let dyns: Vec<Arc<dyn ShardStore>> = backends
        .iter()
        .map(|b| Arc::clone(b) as Arc<dyn ShardStore>)
        .collect();
    let fan = FanOut::new(
        dyns,
        FanOutConfig {
            request_timeout: Some(Duration::from_millis(300)),
            ..read_config()
        },
    )
    .unwrap();
    for &b in &offline {
        backends[b].set_outage(Outage::Blackhole);
    }
    let (shard, page) = seg.pages(1)[0].clone();
    let start = Instant::now();
    let err = read_page(&fan, &seg, shard, page).await.unwrap_err();
    eprintln!(
        "81 offline (blackhole): {err} after {}",
        common::ms(start.elapsed())
    );
    assert!(
        matches!(err, Error::NotEnoughShards { got: 19, .. }),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bit_flipped_shards_never_reach_the_caller() {
    let (fan, backends) = lake(rtt(), read_config());
    let seg = Segment::new(13);
    fan.write_segment(seg.id, seg.shards.clone()).await.unwrap();
    // 50 offline, 30 answer with a flipped bit every time, 20 are honest:
    // exactly enough, and only if every flipped answer is refused.
    let order = pick(N, 31);
    let (offline, rest) = order.split_at(50);
    let (liars, honest) = rest.split_at(30);
    assert_eq!(honest.len(), K);
    for &b in offline {
        backends[b].set_outage(Outage::Down);
    }
    for &b in liars {
        backends[b].set_config(FaultConfig {
            bitflip_rate: 1.0,
            ..rtt()
        });
    }
    let pages = seg.pages(2);
    read_all_pages("50 offline, 30 flipping bits", &fan, &seg, &pages).await;
    let flips: u64 = liars.iter().map(|&b| backends[b].stats().bit_flips).sum();
    assert!(flips > 0, "no flipped read was ever served");

    // One more liar and there is no honest quorum: an error, not bytes.
    backends[honest[0]].set_config(FaultConfig {
        bitflip_rate: 1.0,
        ..rtt()
    });
    let mut failures = 0;
    for (shard, page) in pages.iter().take(10) {
        let primary_backend = fan.locate(seg.id, *shard).backend;
        match read_page(&fan, &seg, *shard, page.clone()).await {
            // Only an honest primary may still serve its own page.
            Ok((bytes, true)) if honest[1..].contains(&primary_backend) => {
                assert_eq!(bytes, truth(&seg, *shard, page));
            }
            Ok(_) => panic!("read succeeded without an honest quorum"),
            Err(Error::NotEnoughShards { failures: f, .. }) => {
                failures += 1;
                assert!(f.iter().any(|(_, e)| matches!(e, Error::Corrupt { .. })));
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(failures > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_shard_reads_for_repair_skip_corrupt_shards() {
    let (fan, backends) = lake(rtt(), read_config());
    let seg = Segment::new(14);
    fan.write_segment(seg.id, seg.shards.clone()).await.unwrap();
    let hashes = seg
        .shards
        .iter()
        .map(|s| *blake3::hash(s).as_bytes())
        .collect();
    let verifier = WholeShardBlake3::new(hashes);
    for b in pick(40, 37) {
        backends[b].set_config(FaultConfig {
            bitflip_rate: 1.0,
            ..rtt()
        });
    }
    for b in pick(N, 37).into_iter().skip(40).take(30) {
        backends[b].set_outage(Outage::Blackhole);
    }
    let out = fan
        .read_segment(seg.id, N, K, None, None, &verifier)
        .await
        .unwrap();
    let Fetched::Pieces(pieces) = out.fetched else {
        panic!("no primary was asked for");
    };
    assert_eq!(pieces.len(), K);
    for p in &pieces {
        assert_eq!(p.bytes, seg.shards[p.shard]);
    }
    eprintln!("repair read: {:?}", out.stats);
    assert!(out.stats.rejected > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_lake_of_local_directories_survives_losing_80() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = prunedb_backends::LakeConfig::embedded(dir.path(), K, M);
    config.hedge_delay_ms = 20;
    let fan = config.open().unwrap();
    assert!(fan.health_all().await.iter().all(|h| h.is_ok()));
    let seg = Segment::new(21);
    let report = fan.write_segment(seg.id, seg.shards.clone()).await.unwrap();
    assert!(report.acked.len() >= config.effective_write_threshold());

    // Take 80 disks away, every data shard's among them.
    let gone = offline_including_data(&fan, &seg, 80, 41);
    for &b in &gone {
        std::fs::remove_dir_all(dir.path().join(format!("b{b:03}"))).unwrap();
    }
    let health = fan.health_all().await;
    assert_eq!(health.iter().filter(|h| h.is_err()).count(), 80);
    for (shard, page) in seg.pages(2) {
        let (bytes, primary) = read_page(&fan, &seg, shard, page.clone()).await.unwrap();
        assert!(!primary);
        assert_eq!(bytes, truth(&seg, shard, &page));
    }
    // The lost backends are remembered and asked last.
    assert!(fan.suspects().len() >= 60, "{}", fan.suspects().len());
}

/// Long run with everything at once: latency tails, random errors, liars,
/// and 80 backends flapping between up, refusing and silent, while pages
/// are read. Twenty backends stay honest and reachable, so every read must
/// succeed with the right bytes.
/// `PRUNEDB_SOAK_SECS` sets the length (default 60).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak: run with --ignored"]
async fn soak_flapping_lake() {
    let secs: u64 = std::env::var("PRUNEDB_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let (fan, backends) = lake(
        rtt(),
        FanOutConfig {
            request_timeout: Some(Duration::from_millis(500)),
            ..read_config()
        },
    );
    let order = pick(N, 99);
    let (steady, flappers) = order.split_at(K);
    let segments: Vec<Segment> = (100..104).map(Segment::new).collect();
    for seg in &segments {
        let report = fan.write_segment(seg.id, seg.shards.clone()).await.unwrap();
        assert_eq!(report.acked.len(), N);
    }
    for &b in &flappers[..10] {
        backends[b].set_config(FaultConfig {
            bitflip_rate: 0.5,
            error_rate: 0.05,
            ..rtt()
        });
    }
    let stop = Instant::now() + Duration::from_secs(secs);
    let flapper = {
        let backends = backends.clone();
        let flappers = flappers.to_vec();
        tokio::spawn(async move {
            let mut x = 12345u64;
            while Instant::now() < stop {
                for &b in &flappers {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    backends[b].set_outage(match x % 3 {
                        0 => Outage::Up,
                        1 => Outage::Down,
                        _ => Outage::Blackhole,
                    });
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let mut lat = Vec::new();
    let mut reads = 0usize;
    while Instant::now() < stop {
        for seg in &segments {
            for (shard, page) in seg.pages(1) {
                let start = Instant::now();
                let (bytes, _) = read_page(&fan, seg, shard, page.clone())
                    .await
                    .unwrap_or_else(|e| panic!("read {shard}/{page:?} failed: {e}"));
                lat.push(start.elapsed());
                assert_eq!(bytes, truth(seg, shard, &page));
                reads += 1;
            }
        }
    }
    flapper.await.unwrap();
    let (p50, p99, max) = percentiles(lat);
    eprintln!(
        "soak {secs} s: {reads} page reads, p50 {} p99 {} max {} ({} steady backends)",
        common::ms(p50),
        common::ms(p99),
        common::ms(max),
        steady.len()
    );
}
