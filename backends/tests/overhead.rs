//! Measures what the fan-out adds on top of a single backend round trip,
//! and prints the figures (run with `-- --nocapture` to see them). Only
//! generous bounds are asserted: the numbers depend on the machine.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use prunedb_backends::{
    AcceptAll, FanOut, FanOutConfig, FaultConfig, FaultyStore, Fetched, Latency, MemoryStore,
    Outage, ShardStore,
};

const K: usize = 20;
const N: usize = 100;
const PAGE: u64 = 4136;
const SAMPLES: usize = 60;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    common::percentile(&v, 50.0)
}

fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort();
    common::percentile(&v, 99.0)
}

struct Lake {
    fan: FanOut,
    stores: Vec<Arc<FaultyStore<MemoryStore>>>,
}

fn lake(latency: Latency, config: FanOutConfig) -> Lake {
    let stores: Vec<_> = (0..N)
        .map(|i| {
            Arc::new(FaultyStore::new(
                MemoryStore::new(format!("m{i}")),
                FaultConfig {
                    latency,
                    ..FaultConfig::default()
                },
            ))
        })
        .collect();
    let dyns = stores
        .iter()
        .map(|s| Arc::clone(s) as Arc<dyn ShardStore>)
        .collect();
    Lake {
        fan: FanOut::new(dyns, config).unwrap(),
        stores,
    }
}

fn config() -> FanOutConfig {
    FanOutConfig {
        write_threshold: 90,
        hedge_delay: Duration::from_millis(30),
        // Each read below must start from a clean slate.
        suspect_for: Duration::ZERO,
        ..FanOutConfig::default()
    }
}

async fn time<F, Fut, T>(samples: usize, f: F) -> Vec<Duration>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    time_with(samples, f).await.0
}

async fn time_with<F, Fut, T>(samples: usize, mut f: F) -> (Vec<Duration>, Vec<T>)
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut out = Vec::with_capacity(samples);
    let mut results = Vec::with_capacity(samples);
    for i in 0..samples {
        let start = Instant::now();
        results.push(f(i).await);
        out.push(start.elapsed());
    }
    (out, results)
}

fn row(what: &str, v: &[Duration], base: Duration) {
    let m = median(v.to_vec());
    let over = m.as_secs_f64() - base.as_secs_f64();
    eprintln!(
        "{what:<52} p50 {:>10}  p99 {:>10}  over one round trip {:>+9.2} ms",
        common::ms(m),
        common::ms(p99(v.to_vec())),
        over * 1e3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_overhead_over_one_round_trip() {
    let rtt = Duration::from_millis(10);
    let l = lake(Latency::fixed(rtt), config());
    let shards: Vec<Bytes> = (0..N).map(|i| common::bytes(i as u64, 64 << 10)).collect();
    let seg = 1;
    l.fan
        .write(
            (0..N)
                .map(|i| {
                    let loc = l.fan.locate(seg, i);
                    prunedb_backends::ShardWrite {
                        shard: i,
                        backend: loc.backend,
                        key: loc.key,
                        data: shards[i].clone(),
                    }
                })
                .collect(),
            0,
        )
        .await
        .unwrap();
    let primary = 3usize;
    let loc = l.fan.locate(seg, primary);
    let range = 8192..8192 + PAGE;

    eprintln!(
        "injected round trip: fixed {} ms; hedge delay 30 ms; page {PAGE} B; 100 backends, k = 20",
        rtt.as_millis()
    );
    let direct = time(SAMPLES, |_| {
        l.stores[loc.backend].get_range(&loc.key, range.clone())
    })
    .await;
    let base = median(direct.clone());
    row("one backend: get_range", &direct, base);

    let primary_read = time(SAMPLES, |_| {
        l.fan
            .read_segment(seg, N, K, Some(primary), Some(range.clone()), &AcceptAll)
    })
    .await;
    row("fan-out read, primary up", &primary_read, base);

    l.stores[loc.backend].set_outage(Outage::Down);
    let (refused, outcomes) = time_with(SAMPLES, |_| {
        l.fan
            .read_segment(seg, N, K, Some(primary), Some(range.clone()), &AcceptAll)
    })
    .await;
    for out in outcomes {
        assert!(matches!(out.unwrap().fetched, Fetched::Pieces(ref p) if p.len() == K));
    }
    row("fan-out read, primary refuses (k pieces)", &refused, base);

    l.stores[loc.backend].set_outage(Outage::Blackhole);
    let hung = time(SAMPLES / 2, |_| {
        l.fan
            .read_segment(seg, N, K, Some(primary), Some(range.clone()), &AcceptAll)
    })
    .await;
    row(
        "fan-out read, primary hangs (hedge + k pieces)",
        &hung,
        base,
    );
    l.stores[loc.backend].set_outage(Outage::Up);

    // The primary hangs but is known to: hedged at once.
    let remembering = lake(
        Latency::fixed(rtt),
        FanOutConfig {
            suspect_for: Duration::from_secs(60),
            ..config()
        },
    );
    remembering
        .fan
        .write_segment(seg, shards.clone())
        .await
        .unwrap();
    let loc2 = remembering.fan.locate(seg, primary);
    remembering.stores[loc2.backend].set_outage(Outage::Blackhole);
    let learned = time(SAMPLES / 2, |_| {
        remembering
            .fan
            .read_segment(seg, N, K, Some(primary), Some(range.clone()), &AcceptAll)
    })
    .await;
    row(
        "fan-out read, primary hangs, known suspect",
        &learned[1..],
        base,
    );

    let single = &l.stores[0];
    let one_put = time(SAMPLES / 2, |i| {
        let (key, data) = (format!("single/{i}"), shards[0].clone());
        async move { single.put(&key, data).await }
    })
    .await;
    row("one backend: put 64 KiB", &one_put, base);
    let writes90 = time(SAMPLES / 2, |i| {
        l.fan.write_segment(1000 + i as u64, shards.clone())
    })
    .await;
    row("fan-out write 100 x 64 KiB, threshold 90", &writes90, base);

    // Bounded, generous checks: the fan-out costs a round trip, not many.
    let slack = Duration::from_millis(50);
    assert!(median(primary_read) < base + slack);
    assert!(median(refused) < base * 3 + slack);
    assert!(median(hung) < Duration::from_millis(30) + base * 3 + slack);
    assert!(median(writes90) < base * 3 + slack);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_cpu_cost_without_latency() {
    let stores: Vec<Arc<MemoryStore>> = (0..N)
        .map(|i| Arc::new(MemoryStore::new(format!("m{i}"))))
        .collect();
    let dyns = stores
        .iter()
        .map(|s| Arc::clone(s) as Arc<dyn ShardStore>)
        .collect();
    let fan = FanOut::new(dyns, config()).unwrap();
    let shards: Vec<Bytes> = (0..N).map(|i| common::bytes(i as u64, 64 << 10)).collect();
    fan.write_segment(1, shards.clone()).await.unwrap();
    let loc = fan.locate(1, 3);
    let range = 8192..8192 + PAGE;
    let rounds = 2000;

    let us = |d: Duration, n: usize| d.as_secs_f64() * 1e6 / n as f64;
    let start = Instant::now();
    for _ in 0..rounds {
        stores[loc.backend]
            .get_range(&loc.key, range.clone())
            .await
            .unwrap();
    }
    let direct = us(start.elapsed(), rounds);

    let start = Instant::now();
    for _ in 0..rounds {
        fan.read_segment(1, N, K, Some(3), Some(range.clone()), &AcceptAll)
            .await
            .unwrap();
    }
    let primary = us(start.elapsed(), rounds);

    // Collecting k pieces (no primary): 22 requests per read.
    let start = Instant::now();
    for _ in 0..rounds / 10 {
        fan.read_segment(1, N, K, None, Some(range.clone()), &AcceptAll)
            .await
            .unwrap();
    }
    let pieces = us(start.elapsed(), rounds / 10);

    let start = Instant::now();
    for i in 0..rounds / 20 {
        fan.write_segment(10 + i as u64, shards.clone())
            .await
            .unwrap();
    }
    let write = us(start.elapsed(), rounds / 20);

    eprintln!("CPU cost per operation, in-memory backends, no injected latency:");
    eprintln!("  one backend get_range        {direct:>9.1} us");
    eprintln!("  fan-out read, primary        {primary:>9.1} us");
    eprintln!("  fan-out read, k = 20 pieces  {pieces:>9.1} us");
    eprintln!("  fan-out write, 100 shards    {write:>9.1} us");
    assert!(primary < direct + 5_000.0);
}
