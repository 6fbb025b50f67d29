//! A wrapper that makes any store slow, flaky, lying or unreachable on
//! purpose, for tests and the simulator.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::store::{Health, ObjectInfo, ShardStore};

/// Distribution of the extra delay added to every request (a stand-in for
/// the network round trip and server time).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Latency {
    /// No added delay.
    #[default]
    None,
    /// The same delay every time.
    Fixed {
        /// Delay in milliseconds.
        ms: f64,
    },
    /// Uniform between two bounds.
    Uniform {
        /// Lower bound in milliseconds.
        min_ms: f64,
        /// Upper bound in milliseconds.
        max_ms: f64,
    },
    /// Log-normal around a median: the usual shape of real request
    /// latencies, with a long right tail governed by `sigma` (0.5 gives a
    /// p99 of about 3.2 times the median).
    LogNormal {
        /// Median in milliseconds.
        median_ms: f64,
        /// Standard deviation of the underlying normal.
        sigma: f64,
    },
}

impl Latency {
    /// A fixed delay.
    pub fn fixed(d: Duration) -> Self {
        Latency::Fixed {
            ms: d.as_secs_f64() * 1e3,
        }
    }

    fn sample(&self, rng: &mut Rng) -> Duration {
        let ms = match *self {
            Latency::None => 0.0,
            Latency::Fixed { ms } => ms,
            Latency::Uniform { min_ms, max_ms } => min_ms + (max_ms - min_ms) * rng.unit(),
            Latency::LogNormal { median_ms, sigma } => median_ms * (sigma * rng.normal()).exp(),
        };
        if ms.is_finite() && ms > 0.0 {
            Duration::from_secs_f64(ms / 1e3)
        } else {
            Duration::ZERO
        }
    }
}

/// Whether the backend is reachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Outage {
    /// Requests go through.
    #[default]
    Up,
    /// Every request fails at once with [`Error::Unavailable`], like a
    /// refused connection.
    Down,
    /// Requests hang with no answer (a partition or a dead host behind a
    /// load balancer) until the outage is lifted or the caller gives up.
    Blackhole,
}

/// What to inject. All rates are probabilities per request, in `0.0..=1.0`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Delay added before every request.
    pub latency: Latency,
    /// Probability that a request fails with [`Error::Unavailable`] (after
    /// its delay, without reaching the inner store).
    pub error_rate: f64,
    /// Probability that a successful read comes back with one bit flipped.
    pub bitflip_rate: f64,
    /// Link speed in bytes per second shared by all requests to this
    /// backend; `None` for unlimited.
    pub bandwidth_bytes_per_sec: Option<u64>,
    /// Seed of the random choices, so a scenario can be replayed.
    pub seed: u64,
}

/// Counters of what a [`FaultyStore`] saw and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultStats {
    /// Requests received.
    pub started: u64,
    /// Requests that returned (with any result).
    pub finished: u64,
    /// Requests dropped by the caller before they returned.
    pub cancelled: u64,
    /// Requests failed by injection (error rate or outage).
    pub injected_errors: u64,
    /// Reads returned with a flipped bit.
    pub bit_flips: u64,
    /// Bytes handed to the inner store by puts.
    pub bytes_written: u64,
    /// Bytes returned by reads.
    pub bytes_read: u64,
}

#[derive(Default)]
struct Counters {
    started: AtomicU64,
    finished: AtomicU64,
    cancelled: AtomicU64,
    injected_errors: AtomicU64,
    bit_flips: AtomicU64,
    bytes_written: AtomicU64,
    bytes_read: AtomicU64,
}

/// Wraps a store and injects latency, errors, bit flips, outages and a
/// bandwidth cap, all adjustable while requests are running.
///
/// A put's delay comes before the inner write, so a put cancelled while
/// "on the wire" never lands, as with a real connection torn down before
/// the request completed.
pub struct FaultyStore<S> {
    inner: S,
    name: String,
    config: Mutex<FaultConfig>,
    outage: watch::Sender<Outage>,
    rng: Mutex<Rng>,
    link_free_at: Mutex<Instant>,
    counters: Counters,
}

impl<S: ShardStore> std::fmt::Debug for FaultyStore<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyStore")
            .field("inner", &self.inner)
            .field("config", &self.config())
            .field("outage", &self.outage())
            .finish()
    }
}

impl<S: ShardStore> FaultyStore<S> {
    /// Wraps `inner` with the given faults.
    pub fn new(inner: S, config: FaultConfig) -> Self {
        let name = format!("faulty:{}", inner.name());
        let seed = config.seed ^ fnv1a(name.as_bytes());
        FaultyStore {
            inner,
            name,
            config: Mutex::new(config),
            outage: watch::Sender::new(Outage::Up),
            rng: Mutex::new(Rng(seed)),
            link_free_at: Mutex::new(Instant::now()),
            counters: Counters::default(),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The faults currently injected.
    pub fn config(&self) -> FaultConfig {
        lock(&self.config).clone()
    }

    /// Replaces the injected faults; requests already waiting keep the
    /// delay they drew.
    pub fn set_config(&self, config: FaultConfig) {
        *lock(&self.config) = config;
    }

    /// The current outage state.
    pub fn outage(&self) -> Outage {
        *self.outage.borrow()
    }

    /// Takes the backend down or brings it back. Lifting a
    /// [`Outage::Blackhole`] releases the requests hanging in it.
    pub fn set_outage(&self, outage: Outage) {
        self.outage.send_replace(outage);
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> FaultStats {
        let c = &self.counters;
        FaultStats {
            started: c.started.load(Ordering::Relaxed),
            finished: c.finished.load(Ordering::Relaxed),
            cancelled: c.cancelled.load(Ordering::Relaxed),
            injected_errors: c.injected_errors.load(Ordering::Relaxed),
            bit_flips: c.bit_flips.load(Ordering::Relaxed),
            bytes_written: c.bytes_written.load(Ordering::Relaxed),
            bytes_read: c.bytes_read.load(Ordering::Relaxed),
        }
    }

    fn draw(&self) -> (Duration, bool, bool, Option<u64>) {
        let config = lock(&self.config).clone();
        let mut rng = lock(&self.rng);
        let delay = config.latency.sample(&mut rng);
        let fail = rng.unit() < config.error_rate;
        let flip = rng.unit() < config.bitflip_rate;
        (delay, fail, flip, config.bandwidth_bytes_per_sec)
    }

    fn injected(&self, reason: &str) -> Error {
        self.counters
            .injected_errors
            .fetch_add(1, Ordering::Relaxed);
        Error::Unavailable {
            backend: self.name.clone(),
            reason: reason.to_owned(),
        }
    }

    /// Waits out the outage state and the drawn delay, then decides whether
    /// the request fails. Returns whether a read should be corrupted and the
    /// bandwidth cap.
    async fn before(&self) -> Result<(bool, Option<u64>)> {
        let mut outage = self.outage.subscribe();
        loop {
            let state = *outage.borrow_and_update();
            match state {
                Outage::Up => break,
                Outage::Down => return Err(self.injected("injected outage")),
                Outage::Blackhole => {
                    if outage.changed().await.is_err() {
                        // The sender lives in self, so this cannot happen
                        // while self is borrowed; hang like the outage would.
                        std::future::pending::<()>().await;
                    }
                }
            }
        }
        let (delay, fail, flip, bandwidth) = self.draw();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        // Re-check: the backend may have gone down while the request was in
        // flight.
        if *self.outage.borrow() == Outage::Down {
            return Err(self.injected("injected outage"));
        }
        if fail {
            return Err(self.injected("injected error"));
        }
        Ok((flip, bandwidth))
    }

    /// Holds the shared link for the time `bytes` take at `bandwidth`.
    async fn transfer(&self, bytes: usize, bandwidth: Option<u64>) {
        let Some(bw) = bandwidth.filter(|&b| b > 0) else {
            return;
        };
        let cost = Duration::from_secs_f64(bytes as f64 / bw as f64);
        let done_at = {
            let mut free_at = lock(&self.link_free_at);
            let start = (*free_at).max(Instant::now());
            *free_at = start + cost;
            *free_at
        };
        tokio::time::sleep_until(done_at.into()).await;
    }

    fn maybe_flip(&self, data: Bytes, flip: bool) -> Bytes {
        if !flip || data.is_empty() {
            return data;
        }
        let bit = {
            let mut rng = lock(&self.rng);
            rng.next() % (data.len() as u64 * 8)
        };
        let mut copy = BytesMut::from(&data[..]);
        // bit < len * 8, so the index is in bounds.
        copy[(bit / 8) as usize] ^= 1 << (bit % 8);
        self.counters.bit_flips.fetch_add(1, Ordering::Relaxed);
        copy.freeze()
    }

    async fn read(&self, fut: impl std::future::Future<Output = Result<Bytes>>) -> Result<Bytes> {
        let (flip, bandwidth) = self.before().await?;
        let data = fut.await?;
        self.transfer(data.len(), bandwidth).await;
        self.counters
            .bytes_read
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(self.maybe_flip(data, flip))
    }

    fn guard(&self) -> OpGuard<'_> {
        self.counters.started.fetch_add(1, Ordering::Relaxed);
        OpGuard {
            counters: &self.counters,
            done: false,
        }
    }
}

/// Counts a request as cancelled if its future is dropped before the
/// request returns.
struct OpGuard<'a> {
    counters: &'a Counters,
    done: bool,
}

impl OpGuard<'_> {
    fn finish<T>(mut self, result: T) -> T {
        self.done = true;
        self.counters.finished.fetch_add(1, Ordering::Relaxed);
        result
    }
}

impl Drop for OpGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.counters.cancelled.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[async_trait]
impl<S: ShardStore> ShardStore for FaultyStore<S> {
    fn name(&self) -> &str {
        &self.name
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<()> {
        let guard = self.guard();
        let result = async {
            let (_, bandwidth) = self.before().await?;
            self.transfer(data.len(), bandwidth).await;
            let len = data.len() as u64;
            self.inner.put(key, data).await?;
            self.counters
                .bytes_written
                .fetch_add(len, Ordering::Relaxed);
            Ok(())
        }
        .await;
        guard.finish(result)
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        let guard = self.guard();
        let result = self.read(self.inner.get(key)).await;
        guard.finish(result)
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        let guard = self.guard();
        let result = self.read(self.inner.get_range(key, range)).await;
        guard.finish(result)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let guard = self.guard();
        let result = async {
            self.before().await?;
            self.inner.delete(key).await
        }
        .await;
        guard.finish(result)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let guard = self.guard();
        let result = async {
            self.before().await?;
            self.inner.list(prefix).await
        }
        .await;
        guard.finish(result)
    }

    async fn health(&self) -> Result<Health> {
        let guard = self.guard();
        let start = Instant::now();
        let result = async {
            self.before().await?;
            self.inner.health().await?;
            Ok(Health {
                latency: start.elapsed(),
            })
        }
        .await;
        guard.finish(result)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section here is a plain read or assignment, so a
    // poisoned lock still holds a consistent value.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// SplitMix64: tiny, fast, seedable, and good enough for fault schedules.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal, by Box-Muller.
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;

    #[tokio::test]
    async fn passthrough_when_no_faults() {
        let store = FaultyStore::new(MemoryStore::new("m"), FaultConfig::default());
        store.put("k", Bytes::from_static(b"abc")).await.unwrap();
        assert_eq!(store.get("k").await.unwrap(), Bytes::from_static(b"abc"));
        assert_eq!(store.get_range("k", 1..2).await.unwrap(), &b"b"[..]);
        let s = store.stats();
        assert_eq!((s.started, s.finished, s.cancelled), (3, 3, 0));
    }

    #[tokio::test]
    async fn outage_down_and_back() {
        let store = FaultyStore::new(MemoryStore::new("m"), FaultConfig::default());
        store.put("k", Bytes::from_static(b"abc")).await.unwrap();
        store.set_outage(Outage::Down);
        assert!(matches!(
            store.get("k").await,
            Err(Error::Unavailable { .. })
        ));
        assert!(store.health().await.is_err());
        store.set_outage(Outage::Up);
        assert!(store.get("k").await.is_ok());
    }

    #[tokio::test]
    async fn blackhole_hangs_until_lifted() {
        let store = std::sync::Arc::new(FaultyStore::new(
            MemoryStore::new("m"),
            FaultConfig::default(),
        ));
        store.put("k", Bytes::from_static(b"abc")).await.unwrap();
        store.set_outage(Outage::Blackhole);
        let hung = tokio::time::timeout(Duration::from_millis(50), store.get("k")).await;
        assert!(hung.is_err());
        assert_eq!(store.stats().cancelled, 1);
        let s2 = store.clone();
        let waiter = tokio::spawn(async move { s2.get("k").await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        store.set_outage(Outage::Up);
        assert_eq!(waiter.await.unwrap().unwrap(), &b"abc"[..]);
    }

    #[tokio::test]
    async fn bit_flips_change_exactly_one_bit_and_not_the_stored_copy() {
        let config = FaultConfig {
            bitflip_rate: 1.0,
            ..FaultConfig::default()
        };
        let store = FaultyStore::new(MemoryStore::new("m"), config);
        let data = Bytes::from(vec![0u8; 256]);
        store.put("k", data.clone()).await.unwrap();
        for _ in 0..20 {
            let got = store.get("k").await.unwrap();
            let ones: u32 = got.iter().map(|b| b.count_ones()).sum();
            assert_eq!(ones, 1);
        }
        assert_eq!(store.inner().get("k").await.unwrap(), data);
        assert_eq!(store.stats().bit_flips, 20);
    }

    #[tokio::test]
    async fn error_rate_is_roughly_honoured() {
        let config = FaultConfig {
            error_rate: 0.3,
            seed: 7,
            ..FaultConfig::default()
        };
        let store = FaultyStore::new(MemoryStore::new("m"), config);
        let mut failed = 0;
        for _ in 0..1000 {
            if store.health().await.is_err() {
                failed += 1;
            }
        }
        assert!((200..400).contains(&failed), "{failed}");
    }

    #[tokio::test]
    async fn bandwidth_cap_slows_transfers() {
        let config = FaultConfig {
            bandwidth_bytes_per_sec: Some(1 << 20),
            ..FaultConfig::default()
        };
        let store = FaultyStore::new(MemoryStore::new("m"), config);
        let start = Instant::now();
        // Two 128 KiB transfers share the 1 MiB/s link: about 250 ms.
        store
            .put("a", Bytes::from(vec![1u8; 128 << 10]))
            .await
            .unwrap();
        store.get("a").await.unwrap();
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(240), "{took:?}");
    }

    #[test]
    fn lognormal_median_is_near_the_configured_one() {
        let mut rng = Rng(42);
        let lat = Latency::LogNormal {
            median_ms: 10.0,
            sigma: 0.5,
        };
        let mut v: Vec<Duration> = (0..10_001).map(|_| lat.sample(&mut rng)).collect();
        v.sort();
        let median = v[5000].as_secs_f64() * 1e3;
        assert!((9.0..11.0).contains(&median), "{median}");
    }
}
