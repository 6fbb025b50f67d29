//! Shared test code: a conformance suite every store must pass, and a
//! harness that runs a moto S3 server on loopback.
#![allow(dead_code)]

pub mod moto;

use std::sync::Arc;

use bytes::Bytes;
use prunedb_backends::{Error, ShardStore};

/// Deterministic pseudo-random bytes.
pub fn bytes(seed: u64, len: usize) -> Bytes {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

/// The behaviour every store promises (see `ShardStore`). `ns` keeps runs
/// on shared storage apart.
pub async fn conformance(store: &dyn ShardStore, ns: &str) {
    let k = |s: &str| format!("{ns}/{s}");

    // put / get / overwrite
    let v1 = bytes(1, 1000);
    store.put(&k("a/one"), v1.clone()).await.unwrap();
    assert_eq!(store.get(&k("a/one")).await.unwrap(), v1);
    let v2 = bytes(2, 333);
    store.put(&k("a/one"), v2.clone()).await.unwrap();
    assert_eq!(store.get(&k("a/one")).await.unwrap(), v2);

    // empty object
    store.put(&k("empty"), Bytes::new()).await.unwrap();
    assert_eq!(store.get(&k("empty")).await.unwrap().len(), 0);

    // not found is its own error
    let err = store.get(&k("nope")).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    let err = store.get_range(&k("nope"), 0..1).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");

    // ranges
    let v = bytes(3, 10_000);
    store.put(&k("r"), v.clone()).await.unwrap();
    for r in [0..1u64, 0..10_000, 4096..8192, 9_999..10_000, 123..4567] {
        let got = store.get_range(&k("r"), r.clone()).await.unwrap();
        assert_eq!(got, v.slice(r.start as usize..r.end as usize), "{r:?}");
    }
    for r in [5..5u64, 9_000..10_001, 10_000..10_010, 20_000..20_001] {
        let err = store.get_range(&k("r"), r.clone()).await.unwrap_err();
        assert!(matches!(err, Error::InvalidRange { .. }), "{r:?}: {err}");
    }

    // list by string prefix, sorted, with sizes
    for name in ["l/x1", "l/x2", "l/x10", "l/y", "l/sub/x3", "lz"] {
        store.put(&k(name), bytes(4, name.len())).await.unwrap();
    }
    let keys = |v: Vec<prunedb_backends::ObjectInfo>| -> Vec<String> {
        v.into_iter().map(|o| o.key).collect()
    };
    assert_eq!(
        keys(store.list(&k("l/x")).await.unwrap()),
        vec![k("l/x1"), k("l/x10"), k("l/x2")]
    );
    assert_eq!(
        keys(store.list(&k("l/")).await.unwrap()),
        vec![k("l/sub/x3"), k("l/x1"), k("l/x10"), k("l/x2"), k("l/y")]
    );
    assert_eq!(
        keys(store.list(&k("l")).await.unwrap()),
        vec![
            k("l/sub/x3"),
            k("l/x1"),
            k("l/x10"),
            k("l/x2"),
            k("l/y"),
            k("lz")
        ]
    );
    assert!(store.list(&k("none/")).await.unwrap().is_empty());
    let sized = store.list(&k("l/x10")).await.unwrap();
    assert_eq!(sized.len(), 1);
    assert_eq!(sized[0].size, "l/x10".len() as u64);

    // delete, including an absent key
    store.delete(&k("l/x1")).await.unwrap();
    store.delete(&k("l/x1")).await.unwrap();
    assert!(store.get(&k("l/x1")).await.unwrap_err().is_not_found());
    assert_eq!(store.list(&k("l/x")).await.unwrap().len(), 2);

    // keys the stores must refuse
    for bad in ["../up", "/abs", "a//b", "", "a/../b", "sp ace"] {
        let err = store.put(bad, Bytes::new()).await.unwrap_err();
        assert!(matches!(err, Error::InvalidKey { .. }), "{bad:?}: {err}");
    }

    store.health().await.unwrap();
}

/// Writers replace one key over and over while readers read it: every
/// read must be exactly one of the written versions.
pub async fn atomic_overwrites(store: Arc<dyn ShardStore>, key: &str, rounds: usize) {
    let versions: Vec<Bytes> = (0..4).map(|i| bytes(100 + i, 256 << 10)).collect();
    store.put(key, versions[0].clone()).await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..4usize {
        let store = Arc::clone(&store);
        let versions = versions.clone();
        let key = key.to_owned();
        tasks.push(tokio::spawn(async move {
            for i in 0..rounds {
                store
                    .put(&key, versions[(w + i) % versions.len()].clone())
                    .await
                    .unwrap();
            }
        }));
    }
    for _ in 0..2 {
        let store = Arc::clone(&store);
        let versions = versions.clone();
        let key = key.to_owned();
        tasks.push(tokio::spawn(async move {
            for _ in 0..rounds {
                let got = store.get(&key).await.unwrap();
                assert!(versions.contains(&got), "read a mixed or partial object");
                let part = store.get_range(&key, 1000..200_000).await.unwrap();
                assert!(
                    versions.iter().any(|v| v.slice(1000..200_000) == part),
                    "range read mixed two versions"
                );
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Percentile (0..=100) of a sorted sample.
pub fn percentile(sorted: &[std::time::Duration], p: f64) -> std::time::Duration {
    if sorted.is_empty() {
        return std::time::Duration::ZERO;
    }
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Milliseconds with two decimals, for printed figures.
pub fn ms(d: std::time::Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}
