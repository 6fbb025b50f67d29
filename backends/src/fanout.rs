//! Writing a segment's shards to many backends, and reading a page back
//! from whichever backends answer first.
//!
//! The fan-out moves shard bytes; it never decodes. A read returns either
//! the primary's bytes (the range of the data shard that holds the page) or
//! `k` verified ranges of other shards for the caller to decode.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::future::Future;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::placement::{backend_for_shard, segment_prefix, shard_key};
use crate::store::{Health, ShardStore};

/// How the fan-out behaves. See the field docs for defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FanOutConfig {
    /// Acknowledgements a segment write needs before it is reported
    /// durable; the remaining writes are then cancelled. 0 means "all
    /// shards".
    pub write_threshold: usize,
    /// Requests in flight at once per operation (writes and reads).
    pub max_concurrency: usize,
    /// How long a read waits for the primary (or, later, for the current
    /// round of requests) before asking more backends.
    pub hedge_delay: Duration,
    /// Spare requests sent in a hedge round beyond the number of ranges
    /// still missing, to absorb a few slow or dead backends without waiting
    /// for another round.
    pub hedge_spare: usize,
    /// A request older than this counts as failed (and is replaced, for
    /// reads). `None`: requests are only cut short by the operation ending.
    pub request_timeout: Option<Duration>,
    /// Upper bound on a whole read; past it the read fails with
    /// [`Error::Timeout`]. `None`: no bound beyond running out of
    /// backends.
    pub read_timeout: Option<Duration>,
    /// How long a backend that failed, lied or hung stays at the back of
    /// the read order (and, as a primary, is hedged at once rather than
    /// after the hedge delay). A success clears it early.
    pub suspect_for: Duration,
}

impl Default for FanOutConfig {
    fn default() -> Self {
        FanOutConfig {
            write_threshold: 0,
            max_concurrency: 128,
            hedge_delay: Duration::from_millis(50),
            hedge_spare: 2,
            request_timeout: None,
            read_timeout: Some(Duration::from_secs(60)),
            suspect_for: Duration::from_secs(10),
        }
    }
}

/// Decides whether bytes that came back for a shard may be used.
///
/// Bytes that fail are treated exactly like a missing shard: they are never
/// returned and another backend is asked instead.
pub trait ShardVerifier: Send + Sync {
    /// `range` is the byte range that was read, `None` for a whole shard.
    fn verify(&self, shard: usize, range: Option<&Range<u64>>, bytes: &[u8]) -> bool;
}

impl<F> ShardVerifier for F
where
    F: Fn(usize, Option<&Range<u64>>, &[u8]) -> bool + Send + Sync,
{
    fn verify(&self, shard: usize, range: Option<&Range<u64>>, bytes: &[u8]) -> bool {
        self(shard, range, bytes)
    }
}

/// Accepts everything. Only for callers that check every byte themselves
/// before use (and can then tell which shard was bad).
#[derive(Debug, Clone, Copy, Default)]
pub struct AcceptAll;

impl ShardVerifier for AcceptAll {
    fn verify(&self, _: usize, _: Option<&Range<u64>>, _: &[u8]) -> bool {
        true
    }
}

/// Checks whole shards against their blake3 hashes (as listed in a
/// segment manifest). A ranged read cannot be checked against a
/// whole-shard hash and is rejected unless it covers the whole shard, whose
/// length is then the length of the bytes.
#[derive(Debug, Clone)]
pub struct WholeShardBlake3 {
    hashes: Vec<[u8; 32]>,
}

impl WholeShardBlake3 {
    /// `hashes[i]` is the blake3 hash of shard `i`.
    pub fn new(hashes: Vec<[u8; 32]>) -> Self {
        WholeShardBlake3 { hashes }
    }
}

impl ShardVerifier for WholeShardBlake3 {
    fn verify(&self, shard: usize, range: Option<&Range<u64>>, bytes: &[u8]) -> bool {
        let whole = match range {
            None => true,
            Some(r) => r.start == 0 && r.end == bytes.len() as u64,
        };
        whole
            && self
                .hashes
                .get(shard)
                .is_some_and(|h| blake3::hash(bytes).as_bytes() == h)
    }
}

/// Checks ranges against blake3 hashes of fixed-size chunks of each shard,
/// so a small range read can be verified without the whole shard.
///
/// A range is accepted only if it starts and ends on chunk boundaries (the
/// end may also be the shard's end); use [`ChunkedBlake3::covering`] to
/// widen a page's range before reading.
#[derive(Debug, Clone)]
pub struct ChunkedBlake3 {
    chunk_len: u64,
    shard_len: u64,
    hashes: Vec<Vec<[u8; 32]>>,
}

impl ChunkedBlake3 {
    /// `hashes[i][c]` is the hash of bytes `c*chunk_len ..
    /// min((c+1)*chunk_len, shard_len)` of shard `i`.
    pub fn new(chunk_len: u64, shard_len: u64, hashes: Vec<Vec<[u8; 32]>>) -> Self {
        ChunkedBlake3 {
            chunk_len: chunk_len.max(1),
            shard_len,
            hashes,
        }
    }

    /// Hashes shards the way [`new`](Self::new) expects; all shards must
    /// have the same length.
    pub fn from_shards(chunk_len: u64, shards: &[impl AsRef<[u8]>]) -> Self {
        let chunk = usize::try_from(chunk_len.max(1)).unwrap_or(usize::MAX);
        let shard_len = shards.first().map_or(0, |s| s.as_ref().len() as u64);
        let hashes = shards
            .iter()
            .map(|s| {
                s.as_ref()
                    .chunks(chunk)
                    .map(|c| *blake3::hash(c).as_bytes())
                    .collect()
            })
            .collect();
        ChunkedBlake3::new(chunk_len, shard_len, hashes)
    }

    /// The smallest chunk-aligned range that contains `range`.
    pub fn covering(&self, range: Range<u64>) -> Range<u64> {
        let start = range.start / self.chunk_len * self.chunk_len;
        let end = range
            .end
            .div_ceil(self.chunk_len)
            .saturating_mul(self.chunk_len)
            .min(self.shard_len);
        start..end
    }
}

impl ShardVerifier for ChunkedBlake3 {
    fn verify(&self, shard: usize, range: Option<&Range<u64>>, bytes: &[u8]) -> bool {
        let Some(chunks) = self.hashes.get(shard) else {
            return false;
        };
        let range = range.cloned().unwrap_or(0..self.shard_len);
        let aligned = range.start % self.chunk_len == 0
            && (range.end % self.chunk_len == 0 || range.end == self.shard_len)
            && range.end <= self.shard_len
            && range.end - range.start == bytes.len() as u64;
        if !aligned {
            return false;
        }
        let first = (range.start / self.chunk_len) as usize;
        let chunk = self.chunk_len as usize;
        bytes.chunks(chunk).enumerate().all(|(i, c)| {
            chunks
                .get(first + i)
                .is_some_and(|h| blake3::hash(c).as_bytes() == h)
        })
    }
}

/// One shard to write.
#[derive(Debug, Clone)]
pub struct ShardWrite {
    /// Shard index within the segment.
    pub shard: usize,
    /// Index of the backend to write to.
    pub backend: usize,
    /// Object key.
    pub key: String,
    /// Shard bytes.
    pub data: Bytes,
}

/// One place a shard can be read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardLocation {
    /// Shard index within the segment.
    pub shard: usize,
    /// Index of the backend that holds it.
    pub backend: usize,
    /// Object key.
    pub key: String,
}

/// Why a shard is not on its backend after a write.
#[derive(Debug)]
pub enum MissingReason {
    /// The write failed.
    Failed(Error),
    /// The write was still running when the threshold was reached and was
    /// cancelled (it may still have landed; repair checks).
    Cancelled,
    /// The write was never started because the threshold was reached first.
    NotStarted,
}

/// A shard a write left for repair.
#[derive(Debug)]
pub struct MissingShard {
    /// Shard index within the segment.
    pub shard: usize,
    /// Backend it should be on.
    pub backend: usize,
    /// Its object key.
    pub key: String,
    /// Why it is missing.
    pub reason: MissingReason,
}

/// Outcome of a successful fan-out write.
#[derive(Debug)]
pub struct WriteReport {
    /// Shard indices acknowledged, in the order the acknowledgements came.
    pub acked: Vec<usize>,
    /// Shards that are (or may be) missing, for repair.
    pub missing: Vec<MissingShard>,
    /// Wall time of the write.
    pub elapsed: Duration,
}

/// What to read.
#[derive(Debug, Clone)]
pub struct ReadPlan {
    /// Where each shard can be read, in order of preference. With
    /// `primary` set, the first entry is the primary.
    pub candidates: Vec<ShardLocation>,
    /// Bytes to read from each shard; `None` for whole shards.
    pub range: Option<Range<u64>>,
    /// Verified pieces needed to decode.
    pub k: usize,
    /// Whether the first candidate alone suffices (it holds the wanted
    /// bytes themselves, e.g. the data shard of a page): it is asked first,
    /// others only after the hedge delay or its failure, and its verified
    /// answer ends the read whenever it comes.
    pub primary: bool,
}

/// A verified range of one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardPiece {
    /// Shard index within the segment.
    pub shard: usize,
    /// The bytes (a range of the shard, or all of it).
    pub bytes: Bytes,
}

/// What a read produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The primary answered: these are the wanted bytes, no decoding needed.
    Primary(ShardPiece),
    /// Exactly `k` verified pieces of distinct shards, sorted by shard
    /// index, to decode from.
    Pieces(Vec<ShardPiece>),
}

/// Counters of one read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadStats {
    /// Requests sent.
    pub requests: usize,
    /// Requests that failed or returned bytes that failed verification.
    pub failures: usize,
    /// Of those, verification failures.
    pub rejected: usize,
    /// Hedge rounds started (0: the primary alone answered).
    pub hedge_rounds: usize,
    /// Wall time of the read.
    pub elapsed: Duration,
}

/// Result of a successful read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOutcome {
    /// The bytes.
    pub fetched: Fetched,
    /// How it went.
    pub stats: ReadStats,
}

/// Writes and reads shards across a lake's backends.
#[derive(Clone)]
pub struct FanOut {
    backends: Vec<Arc<dyn ShardStore>>,
    config: FanOutConfig,
    suspicion: Arc<Suspicion>,
}

/// Per-backend memory of recent trouble, shared by clones of a [`FanOut`].
struct Suspicion {
    epoch: Instant,
    window_ms: u64,
    /// Milliseconds since `epoch` until which a backend is suspect; 0 when
    /// it is not.
    until: Vec<AtomicU64>,
}

impl Suspicion {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn mark(&self, backend: usize) {
        if let Some(slot) = self.until.get(backend) {
            let until = self.now_ms().saturating_add(self.window_ms).max(1);
            slot.store(until, Ordering::Relaxed);
        }
    }

    fn clear(&self, backend: usize) {
        if let Some(slot) = self.until.get(backend) {
            slot.store(0, Ordering::Relaxed);
        }
    }

    fn is_suspect(&self, backend: usize) -> bool {
        self.is_suspect_at(backend, self.now_ms())
    }

    fn is_suspect_at(&self, backend: usize, now_ms: u64) -> bool {
        self.until
            .get(backend)
            .is_some_and(|slot| slot.load(Ordering::Relaxed) > now_ms)
    }
}

/// Whether an error says something about the backend's health (as opposed
/// to the object or the request).
fn blames_backend(e: &Error) -> bool {
    matches!(
        e,
        Error::Unavailable { .. }
            | Error::Timeout { .. }
            | Error::Corrupt { .. }
            | Error::Io { .. }
    )
}

impl fmt::Debug for FanOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FanOut")
            .field("backends", &self.backends.len())
            .field("config", &self.config)
            .finish()
    }
}

/// Requests in flight, each a tokio task so that several cores share the
/// per-request work (signing, hashing, copying). Dropping the set aborts
/// every task still running: that is how stragglers are cancelled.
struct Tasks<T> {
    set: JoinSet<(usize, Result<T>)>,
    ids: HashMap<tokio::task::Id, usize>,
}

impl<T: Send + 'static> Tasks<T> {
    fn new() -> Self {
        Tasks {
            set: JoinSet::new(),
            ids: HashMap::new(),
        }
    }

    fn len(&self) -> usize {
        self.set.len()
    }

    fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    fn push(&mut self, idx: usize, fut: impl Future<Output = Result<T>> + Send + 'static) {
        let handle = self.set.spawn(async move { (idx, fut.await) });
        self.ids.insert(handle.id(), idx);
    }

    /// The next finished request; a task that panicked counts as a failed
    /// request of its index.
    async fn next(&mut self) -> Option<(usize, Result<T>)> {
        loop {
            match self.set.join_next_with_id().await? {
                Ok((id, out)) => {
                    self.ids.remove(&id);
                    return Some(out);
                }
                Err(e) => {
                    if let Some(idx) = self.ids.remove(&e.id()) {
                        return Some((
                            idx,
                            Err(Error::Unavailable {
                                backend: "fan-out task".into(),
                                reason: e.to_string(),
                            }),
                        ));
                    }
                }
            }
        }
    }
}

impl FanOut {
    /// A fan-out over `backends` (indexed as placement indexes them).
    pub fn new(backends: Vec<Arc<dyn ShardStore>>, config: FanOutConfig) -> Result<Self> {
        if backends.is_empty() {
            return Err(Error::Config("a fan-out needs at least one backend".into()));
        }
        if config.max_concurrency == 0 {
            return Err(Error::Config("max_concurrency must be at least 1".into()));
        }
        let suspicion = Arc::new(Suspicion {
            epoch: Instant::now(),
            window_ms: u64::try_from(config.suspect_for.as_millis()).unwrap_or(u64::MAX),
            until: backends.iter().map(|_| AtomicU64::new(0)).collect(),
        });
        Ok(FanOut {
            backends,
            config,
            suspicion,
        })
    }

    /// The backends, by index.
    pub fn backends(&self) -> &[Arc<dyn ShardStore>] {
        &self.backends
    }

    /// The configuration.
    pub fn config(&self) -> &FanOutConfig {
        &self.config
    }

    /// Where shard `shard` of segment `segment_id` lives.
    pub fn locate(&self, segment_id: u64, shard: usize) -> ShardLocation {
        ShardLocation {
            shard,
            backend: backend_for_shard(segment_id, shard, self.backends.len()),
            key: shard_key(segment_id, shard),
        }
    }

    fn with_timeout<'a, T: Send + 'a>(
        &self,
        store: &Arc<dyn ShardStore>,
        fut: impl Future<Output = Result<T>> + Send + 'a,
    ) -> impl Future<Output = Result<T>> + Send + 'a {
        let timeout = self.config.request_timeout;
        let store = Arc::clone(store);
        async move {
            match timeout {
                None => fut.await,
                Some(limit) => match tokio::time::timeout(limit, fut).await {
                    Ok(r) => r,
                    Err(_) => Err(Error::Timeout {
                        backend: store.name().to_owned(),
                        after: limit,
                    }),
                },
            }
        }
    }

    fn store(&self, backend: usize) -> Result<&Arc<dyn ShardStore>> {
        self.backends.get(backend).ok_or_else(|| {
            Error::Config(format!(
                "backend index {backend} out of range (lake has {})",
                self.backends.len()
            ))
        })
    }

    /// Writes all shards of `segment_id` to their placed backends (see
    /// [`FanOut::locate`]) with the configured threshold.
    pub async fn write_segment(&self, segment_id: u64, shards: Vec<Bytes>) -> Result<WriteReport> {
        let writes = shards
            .into_iter()
            .enumerate()
            .map(|(shard, data)| {
                let loc = self.locate(segment_id, shard);
                ShardWrite {
                    shard,
                    backend: loc.backend,
                    key: loc.key,
                    data,
                }
            })
            .collect();
        let threshold = self.config.write_threshold;
        self.write(writes, threshold)
            .instrument(tracing::info_span!("fanout_write_segment", segment_id))
            .await
    }

    /// Writes `writes` in parallel, at most `max_concurrency` at a time, and
    /// returns once `threshold` of them (0: all) have been acknowledged,
    /// cancelling the rest. Fails with [`Error::WriteQuorum`] as soon as
    /// the threshold can no longer be reached.
    pub async fn write(&self, writes: Vec<ShardWrite>, threshold: usize) -> Result<WriteReport> {
        let start = Instant::now();
        let total = writes.len();
        let threshold = if threshold == 0 { total } else { threshold };
        if threshold > total {
            return Err(Error::Config(format!(
                "write threshold {threshold} exceeds the {total} shards to write"
            )));
        }
        for w in &writes {
            self.store(w.backend)?;
        }
        let span = tracing::info_span!("fanout_write", shards = total, threshold);
        async move {
            let meta: Vec<(usize, usize, String)> = writes
                .iter()
                .map(|w| (w.shard, w.backend, w.key.clone()))
                .collect();
            // 0 = not started, 1 = in flight, 2 = done
            let mut state = vec![0u8; total];
            let mut queue = writes.into_iter().enumerate();
            let mut inflight: Tasks<()> = Tasks::new();
            let mut acked = Vec::with_capacity(threshold);
            let mut failures: Vec<(usize, Error)> = Vec::new();
            loop {
                while inflight.len() < self.config.max_concurrency {
                    let Some((i, w)) = queue.next() else { break };
                    state[i] = 1;
                    let store = Arc::clone(&self.backends[w.backend]);
                    let fut = self.with_timeout(&store.clone(), async move {
                        store.put(&w.key, w.data).await
                    });
                    inflight.push(i, fut);
                }
                let Some((i, result)) = inflight.next().await else {
                    break;
                };
                state[i] = 2;
                match result {
                    Ok(()) => {
                        self.suspicion.clear(meta[i].1);
                        acked.push(meta[i].0);
                        if acked.len() >= threshold {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::debug!(shard = meta[i].0, backend = meta[i].1, error = %e, "shard write failed");
                        if blames_backend(&e) {
                            self.suspicion.mark(meta[i].1);
                        }
                        failures.push((i, e));
                        let possible = total - failures.len();
                        if possible < threshold {
                            drop(inflight);
                            let failed = failures.len();
                            tracing::warn!(acked = acked.len(), threshold, failed, "write quorum lost");
                            return Err(Error::WriteQuorum {
                                acked: acked.len(),
                                needed: threshold,
                                failed,
                                failures: failures
                                    .into_iter()
                                    .map(|(i, e)| (meta[i].0, e))
                                    .collect(),
                            });
                        }
                    }
                }
            }
            // Dropping the in-flight futures cancels the stragglers.
            drop(inflight);
            let mut missing: Vec<MissingShard> = failures
                .into_iter()
                .map(|(i, e)| MissingShard {
                    shard: meta[i].0,
                    backend: meta[i].1,
                    key: meta[i].2.clone(),
                    reason: MissingReason::Failed(e),
                })
                .collect();
            for (i, s) in state.iter().enumerate() {
                let reason = match s {
                    0 => MissingReason::NotStarted,
                    1 => MissingReason::Cancelled,
                    _ => continue,
                };
                missing.push(MissingShard {
                    shard: meta[i].0,
                    backend: meta[i].1,
                    key: meta[i].2.clone(),
                    reason,
                });
            }
            missing.sort_by_key(|m| m.shard);
            let elapsed = start.elapsed();
            tracing::debug!(acked = acked.len(), missing = missing.len(), ?elapsed, "write done");
            Ok(WriteReport {
                acked,
                missing,
                elapsed,
            })
        }
        .instrument(span)
        .await
    }

    /// Reads bytes `range` (or, for `None`, the whole shard) of segment
    /// `segment_id`, whose `n` shards were placed by [`FanOut::locate`] and
    /// of which any `k` decode. `primary` names the data shard that holds
    /// the wanted bytes; `None` asks for `k` pieces straight away (repair,
    /// whole-segment reads).
    ///
    /// Candidates after the primary are the other data shards (pieces of
    /// data shards need no decoding work when all `k` of them arrive),
    /// then the parity shards.
    #[allow(clippy::too_many_arguments)]
    pub async fn read_segment(
        &self,
        segment_id: u64,
        n: usize,
        k: usize,
        primary: Option<usize>,
        range: Option<Range<u64>>,
        verifier: &dyn ShardVerifier,
    ) -> Result<ReadOutcome> {
        let mut order: Vec<usize> = Vec::with_capacity(n);
        if let Some(p) = primary {
            if p >= n {
                return Err(Error::Config(format!("primary shard {p} out of 0..{n}")));
            }
            order.push(p);
        }
        order.extend((0..n).filter(|&i| Some(i) != primary));
        let prefix = segment_prefix(segment_id);
        let plan = ReadPlan {
            candidates: order
                .into_iter()
                .map(|shard| {
                    // One shared prefix instead of a full format per shard:
                    // a read builds all n locations up front.
                    let mut key = String::with_capacity(prefix.len() + 4);
                    key.push_str(&prefix);
                    let _ = write!(key, "{shard:03}");
                    ShardLocation {
                        shard,
                        backend: backend_for_shard(segment_id, shard, self.backends.len()),
                        key,
                    }
                })
                .collect(),
            range,
            k,
            primary: primary.is_some(),
        };
        self.read(plan, verifier)
            .instrument(tracing::info_span!("fanout_read_segment", segment_id))
            .await
    }

    /// Runs a read plan (see [`ReadPlan`]): returns the primary's verified
    /// bytes, or the first `k` verified pieces of distinct shards, and
    /// cancels every request still running. Fails with
    /// [`Error::NotEnoughShards`] once too few candidates remain, and
    /// returns no bytes at all in that case.
    pub async fn read(&self, plan: ReadPlan, verifier: &dyn ShardVerifier) -> Result<ReadOutcome> {
        if plan.k == 0 {
            return Err(Error::Config("k must be at least 1".into()));
        }
        for c in &plan.candidates {
            self.store(c.backend)?;
        }
        let span = tracing::info_span!(
            "fanout_read",
            candidates = plan.candidates.len(),
            k = plan.k,
            primary = plan.primary,
            range = ?plan.range,
        );
        let deadline = self.config.read_timeout;
        let fut = self.read_inner(plan, verifier).instrument(span);
        match deadline {
            None => fut.await,
            Some(limit) => tokio::time::timeout(limit, fut)
                .await
                .unwrap_or(Err(Error::Timeout {
                    backend: "fan-out read".into(),
                    after: limit,
                })),
        }
    }

    async fn read_inner(
        &self,
        plan: ReadPlan,
        verifier: &dyn ShardVerifier,
    ) -> Result<ReadOutcome> {
        let start = Instant::now();
        let ReadPlan {
            mut candidates,
            range,
            k,
            primary,
        } = plan;
        // Backends that recently failed or hung go to the back of the
        // queue, so a lake with many dead backends stops paying a hedge
        // round per dead backend on every read.
        let now = self.suspicion.now_ms();
        let first = usize::from(primary).min(candidates.len());
        if candidates[first..]
            .iter()
            .any(|c| self.suspicion.is_suspect_at(c.backend, now))
        {
            candidates[first..]
                .sort_by_cached_key(|c| self.suspicion.is_suspect_at(c.backend, now));
        }
        let primary_suspect = primary
            && candidates
                .first()
                .is_some_and(|c| self.suspicion.is_suspect_at(c.backend, now));

        let mut stats = ReadStats::default();
        let mut inflight: Tasks<Bytes> = Tasks::new();
        let mut launched_at: Vec<Option<Instant>> = vec![None; candidates.len()];
        let mut next = 0usize;
        let mut pieces: Vec<ShardPiece> = Vec::with_capacity(k);
        let mut failures: Vec<(usize, Error)> = Vec::new();
        let mut hedging = false;
        let mut round_size = 0usize;
        let spare = self.config.hedge_spare;

        let launch = |count: usize,
                      next: &mut usize,
                      launched_at: &mut Vec<Option<Instant>>,
                      inflight: &mut Tasks<Bytes>,
                      stats: &mut ReadStats| {
            let mut launched = 0;
            while launched < count
                && *next < candidates.len()
                && inflight.len() < self.config.max_concurrency
            {
                let idx = *next;
                *next += 1;
                let loc = &candidates[idx];
                let store = Arc::clone(&self.backends[loc.backend]);
                let key = loc.key.clone();
                let range = range.clone();
                let fut = self.with_timeout(&store.clone(), async move {
                    match range {
                        Some(r) => store.get_range(&key, r).await,
                        None => store.get(&key).await,
                    }
                });
                inflight.push(idx, fut);
                launched_at[idx] = Some(Instant::now());
                stats.requests += 1;
                launched += 1;
            }
        };

        if primary {
            launch(1, &mut next, &mut launched_at, &mut inflight, &mut stats);
        }
        if !primary || primary_suspect {
            // No primary, or one that is probably down: ask for k pieces
            // at once rather than waiting out the hedge delay.
            hedging = true;
            stats.hedge_rounds = 1;
            round_size = k + spare;
            launch(
                round_size,
                &mut next,
                &mut launched_at,
                &mut inflight,
                &mut stats,
            );
        }
        let timer = tokio::time::sleep(self.config.hedge_delay);
        tokio::pin!(timer);

        let outcome = loop {
            if pieces.len() >= k {
                pieces.truncate(k);
                pieces.sort_by_key(|p| p.shard);
                break Ok(Fetched::Pieces(pieces));
            }
            let remaining = candidates.len() - next;
            if pieces.len() + inflight.len() + remaining < k {
                break Err(pieces.len());
            }
            if inflight.is_empty() {
                // Everything asked so far has answered without enough
                // pieces; ask more now rather than after the timer.
                hedging = true;
                stats.hedge_rounds += 1;
                round_size = k - pieces.len() + spare;
                launch(
                    round_size,
                    &mut next,
                    &mut launched_at,
                    &mut inflight,
                    &mut stats,
                );
                timer
                    .as_mut()
                    .reset(tokio::time::Instant::now() + self.config.hedge_delay);
                continue;
            }
            tokio::select! {
                biased;
                Some((idx, result)) = inflight.next() => {
                    launched_at[idx] = None;
                    let loc = &candidates[idx];
                    let result = result.and_then(|bytes| {
                        if verifier.verify(loc.shard, range.as_ref(), &bytes) {
                            Ok(bytes)
                        } else {
                            stats.rejected += 1;
                            Err(Error::Corrupt {
                                backend: self.backends[loc.backend].name().to_owned(),
                                key: loc.key.clone(),
                                reason: "failed verification".into(),
                            })
                        }
                    });
                    match result {
                        Ok(bytes) => {
                            self.suspicion.clear(loc.backend);
                            let piece = ShardPiece { shard: loc.shard, bytes };
                            if primary && idx == 0 {
                                break Ok(Fetched::Primary(piece));
                            }
                            pieces.push(piece);
                        }
                        Err(e) => {
                            tracing::debug!(shard = loc.shard, backend = loc.backend, error = %e, "shard read failed");
                            if blames_backend(&e) {
                                self.suspicion.mark(loc.backend);
                            }
                            stats.failures += 1;
                            failures.push((loc.shard, e));
                            if hedging {
                                launch(1, &mut next, &mut launched_at, &mut inflight, &mut stats);
                            } else {
                                hedging = true;
                                stats.hedge_rounds += 1;
                                round_size = k - pieces.len() + spare;
                                launch(round_size, &mut next, &mut launched_at, &mut inflight, &mut stats);
                                timer.as_mut().reset(tokio::time::Instant::now() + self.config.hedge_delay);
                            }
                        }
                    }
                }
                () = &mut timer => {
                    stats.hedge_rounds += 1;
                    let missing = k - pieces.len() + spare;
                    round_size = if hedging {
                        // Requests of earlier rounds are still hanging:
                        // widen the net, doubling each round, so that even
                        // a lake with most backends unresponsive is
                        // covered within a few rounds.
                        round_size.saturating_mul(2).max(missing)
                    } else {
                        missing
                    };
                    hedging = true;
                    launch(round_size, &mut next, &mut launched_at, &mut inflight, &mut stats);
                    timer.as_mut().reset(tokio::time::Instant::now() + self.config.hedge_delay);
                }
            }
        };
        // Cancel whatever is still running, and remember who was hanging:
        // a request outstanding past the hedge delay while others answered
        // is a backend worth asking last next time.
        drop(inflight);
        let slow = self.config.hedge_delay;
        for (idx, at) in launched_at.iter().enumerate() {
            if at.is_some_and(|t| t.elapsed() > slow) {
                self.suspicion.mark(candidates[idx].backend);
            }
        }
        stats.elapsed = start.elapsed();
        match outcome {
            Ok(fetched) => {
                tracing::debug!(
                    ?stats,
                    primary = matches!(fetched, Fetched::Primary(_)),
                    "read done"
                );
                Ok(ReadOutcome { fetched, stats })
            }
            Err(got) => {
                let failed = failures.len();
                tracing::warn!(got, k, failed, "read failed: not enough shards");
                Err(Error::NotEnoughShards {
                    got,
                    needed: k,
                    failed,
                    failures,
                })
            }
        }
    }

    /// Indices of the backends currently considered suspect (recent
    /// failure or hang, no success since), which reads ask last.
    pub fn suspects(&self) -> Vec<usize> {
        (0..self.backends.len())
            .filter(|&b| self.suspicion.is_suspect(b))
            .collect()
    }

    /// Probes every backend concurrently.
    pub async fn health_all(&self) -> Vec<Result<Health>> {
        let span = tracing::info_span!("fanout_health", backends = self.backends.len());
        futures::future::join_all(self.backends.iter().map(|b| {
            let b = Arc::clone(b);
            self.with_timeout(&b.clone(), async move { b.health().await })
        }))
        .instrument(span)
        .await
    }
}
