//! The conformance suite over the local-directory, in-memory and
//! fault-injecting stores.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use prunedb_backends::{FaultConfig, FaultyStore, Latency, LocalStore, MemoryStore, ShardStore};

#[tokio::test]
async fn memory_conforms() {
    common::conformance(&MemoryStore::new("m"), "ns").await;
}

#[tokio::test]
async fn local_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path().join("b0")).unwrap();
    common::conformance(&store, "ns").await;
}

#[tokio::test]
async fn faulty_without_faults_conforms() {
    let config = FaultConfig {
        latency: Latency::Uniform {
            min_ms: 0.0,
            max_ms: 1.0,
        },
        ..FaultConfig::default()
    };
    common::conformance(&FaultyStore::new(MemoryStore::new("m"), config), "ns").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_overwrites_are_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ShardStore> = Arc::new(LocalStore::open(dir.path()).unwrap());
    common::atomic_overwrites(store, "hot/key", 30).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_overwrites_are_atomic() {
    let store: Arc<dyn ShardStore> = Arc::new(MemoryStore::new("m"));
    common::atomic_overwrites(store, "hot/key", 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_concurrent_writers_to_distinct_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalStore::open(dir.path()).unwrap());
    let mut tasks = Vec::new();
    for w in 0..8u64 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for i in 0..25u64 {
                let key = format!("w{w}/obj-{i:03}");
                store
                    .put(&key, common::bytes(w * 1000 + i, 4096))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let all = store.list("").await.unwrap();
    assert_eq!(all.len(), 200);
    for w in 0..8u64 {
        for i in 0..25u64 {
            let got = store.get(&format!("w{w}/obj-{i:03}")).await.unwrap();
            assert_eq!(got, common::bytes(w * 1000 + i, 4096));
        }
    }
}

#[tokio::test]
async fn local_large_object_and_tail_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let big = common::bytes(9, 48 << 20);
    store.put("big/one", big.clone()).await.unwrap();
    assert_eq!(store.get("big/one").await.unwrap(), big);
    let tail = (48u64 << 20) - 5000..48 << 20;
    assert_eq!(
        store.get_range("big/one", tail.clone()).await.unwrap(),
        big.slice(tail.start as usize..tail.end as usize)
    );
    store.delete("big/one").await.unwrap();
    assert!(store.list("big").await.unwrap().is_empty());
    // Shards of a deleted object leave no file behind.
    assert!(!dir.path().join("big/one").exists());
    let _ = Bytes::new();
}
