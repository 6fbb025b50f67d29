//! The S3 store against a real S3-compatible server (moto) over HTTP on
//! 127.0.0.1. Needs `pip install 'moto[server]'`; fails without it unless
//! `PRUNEDB_SKIP_S3=1`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::moto::Moto;
use prunedb_backends::{Error, S3Store, ShardStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_conforms() {
    let Some(moto) = Moto::start("s3_conforms") else {
        return;
    };
    moto.create_bucket("lake");
    let store = S3Store::new(&moto.config("lake", "b007")).unwrap();
    common::conformance(&store, "ns").await;
    // A second backend in the same bucket under another prefix sees none
    // of the first one's objects.
    let other = S3Store::new(&moto.config("lake", "b008")).unwrap();
    assert!(other.list("").await.unwrap().is_empty());
    assert!(other.get("ns/r").await.unwrap_err().is_not_found());
    // And an unprefixed view sees them under the prefix.
    let root = S3Store::new(&moto.config("lake", "")).unwrap();
    assert!(root
        .list("b007/ns/")
        .await
        .unwrap()
        .iter()
        .any(|o| o.key == "b007/ns/r"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_missing_bucket_is_unavailable_not_not_found() {
    let Some(moto) = Moto::start("s3_missing_bucket") else {
        return;
    };
    let store = S3Store::new(&moto.config("no-such-bucket", "")).unwrap();
    assert!(store.health().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_large_objects() {
    let Some(moto) = Moto::start("s3_large_objects") else {
        return;
    };
    moto.create_bucket("big");
    let mut config = moto.config("big", "");
    // 8 MiB parts: a 40 MiB object goes up as a five-part upload.
    config.multipart_threshold_bytes = 8 << 20;
    let store = S3Store::new(&config).unwrap();

    let single = common::bytes(1, 7 << 20);
    store.put("single", single.clone()).await.unwrap();
    assert_eq!(store.get("single").await.unwrap(), single);

    let multi = common::bytes(2, 40 << 20);
    let start = Instant::now();
    store.put("multi", multi.clone()).await.unwrap();
    eprintln!("40 MiB multipart put: {}", common::ms(start.elapsed()));
    assert_eq!(store.list("multi").await.unwrap()[0].size, 40 << 20);
    assert_eq!(store.get("multi").await.unwrap(), multi);
    // Ranges across part boundaries and at the very end.
    for r in [
        (8u64 << 20) - 10..(8 << 20) + 10,
        (40 << 20) - 4096..40 << 20,
        0..1,
    ] {
        let got = store.get_range("multi", r.clone()).await.unwrap();
        assert_eq!(got, multi.slice(r.start as usize..r.end as usize));
    }
    let err = store
        .get_range("multi", (40 << 20) - 1..(40 << 20) + 1)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRange { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_concurrent_writers() {
    let Some(moto) = Moto::start("s3_concurrent_writers") else {
        return;
    };
    moto.create_bucket("conc");
    // moto's in-memory store now and then answers 500 to concurrent writes
    // of one key (a race of its own; S3 serialises them): more retries
    // than the outage tests' short ones ride those out.
    let mut config = moto.config("conc", "p");
    config.max_retries = 8;
    let store = Arc::new(S3Store::new(&config).unwrap());
    let mut tasks = Vec::new();
    for w in 0..8u64 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for i in 0..12u64 {
                let key = format!("w{w}/o{i:02}");
                store
                    .put(&key, common::bytes(w * 100 + i, 20_000))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let all = store.list("").await.unwrap();
    assert_eq!(all.len(), 96);
    for w in 0..8u64 {
        for i in 0..12u64 {
            let got = store.get(&format!("w{w}/o{i:02}")).await.unwrap();
            assert_eq!(got, common::bytes(w * 100 + i, 20_000));
        }
    }
    // Several writers replacing one key while others read it.
    let dyn_store: Arc<dyn ShardStore> = store;
    common::atomic_overwrites(dyn_store, "hot", 8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_server_restarted_mid_run() {
    let Some(mut moto) = Moto::start("s3_server_restarted_mid_run") else {
        return;
    };
    moto.create_bucket("restart");
    let store = Arc::new(S3Store::new(&moto.config("restart", "")).unwrap());

    // A writer that keeps going across the restart.
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (store, ok, failed, stop) = (store.clone(), ok.clone(), failed.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                match store.put(&format!("bg/{i}"), common::bytes(i, 1000)).await {
                    Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        assert!(e.is_transient() || e.is_not_found(), "unexpected: {e}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
                i += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };

    store.put("before", Bytes::from_static(b"1")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ok_before = ok.load(Ordering::Relaxed);
    assert!(ok_before > 0, "background writer made no progress");

    moto.stop();
    let start = Instant::now();
    let err = store.get("before").await.unwrap_err();
    eprintln!("while down: {err} (after {})", common::ms(start.elapsed()));
    assert!(
        err.is_transient(),
        "expected unavailable/timeout, got {err}"
    );
    assert!(store.health().await.is_err());

    // moto keeps its state in memory: the restarted server is empty and
    // the bucket has to be made again.
    moto.restart();
    moto.create_bucket("restart");
    let start = Instant::now();
    let deadline = start + Duration::from_secs(30);
    loop {
        match store.put("after", Bytes::from_static(b"2")).await {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline => {
                eprintln!("not yet: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("client did not recover after restart: {e}"),
        }
    }
    eprintln!("recovered after {}", common::ms(start.elapsed()));
    assert_eq!(store.get("after").await.unwrap(), &b"2"[..]);
    assert!(store.get("before").await.unwrap_err().is_not_found());
    store.health().await.unwrap();

    let ok_at_restart = ok.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    let ok_after = ok.load(Ordering::Relaxed);
    eprintln!(
        "background writer: {ok_before} ok before the stop, {} ok after the restart, {} failed",
        ok_after - ok_at_restart,
        failed.load(Ordering::Relaxed)
    );
    assert!(
        ok_after > ok_at_restart,
        "writer did not resume after restart"
    );
    assert!(
        failed.load(Ordering::Relaxed) > 0,
        "the outage went unnoticed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_silent_server_is_a_timeout() {
    // A listener that accepts connections and never answers: the request
    // must end as Timeout, not hang and not be reported as Unavailable.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for conn in listener.incoming().take(4) {
            conns.push(conn);
        }
        std::thread::sleep(Duration::from_secs(3));
    });
    let mut config = prunedb_backends::S3Config::new(format!("http://127.0.0.1:{port}"), "silent")
        .with_credentials("testing", "testing");
    config.request_timeout_ms = 300;
    config.max_retries = 0;
    let store = S3Store::new(&config).unwrap();
    let start = Instant::now();
    let err = store.get("k").await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(start.elapsed() < Duration::from_secs(10));
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_fanout_over_100_prefixes_with_80_offline() {
    use prunedb_backends::{
        ChunkedBlake3, FanOut, FanOutConfig, FaultConfig, FaultyStore, Fetched, Outage,
    };
    let Some(moto) = Moto::start("s3_fanout_over_100_prefixes") else {
        return;
    };
    moto.create_bucket("fan");
    let stores: Vec<Arc<FaultyStore<S3Store>>> = (0..100)
        .map(|i| {
            let s3 = S3Store::new(&moto.config("fan", &format!("b{i:03}"))).unwrap();
            Arc::new(FaultyStore::new(s3, FaultConfig::default()))
        })
        .collect();
    let fan = FanOut::new(
        stores
            .iter()
            .map(|s| Arc::clone(s) as Arc<dyn ShardStore>)
            .collect(),
        FanOutConfig {
            write_threshold: 100,
            max_concurrency: 32,
            hedge_delay: Duration::from_millis(50),
            ..FanOutConfig::default()
        },
    )
    .unwrap();
    let shards: Vec<Bytes> = (0..100).map(|i| common::bytes(500 + i, 8192)).collect();
    let verifier = ChunkedBlake3::from_shards(1024, &shards);
    let start = Instant::now();
    let report = fan.write_segment(42, shards.clone()).await.unwrap();
    eprintln!(
        "S3 fan-out write of 100 x 8 KiB: {}",
        common::ms(start.elapsed())
    );
    assert_eq!(report.acked.len(), 100);
    // Each shard sits under its backend's prefix, at its placed key.
    let loc = fan.locate(42, 5);
    let root = S3Store::new(&moto.config("fan", "")).unwrap();
    let full = format!("b{:03}/{}", loc.backend, loc.key);
    assert_eq!(root.get(&full).await.unwrap(), shards[5]);

    // 80 offline, all data shards' backends among them.
    let data: Vec<usize> = (0..20).map(|i| fan.locate(42, i).backend).collect();
    let mut offline = data.clone();
    offline.extend((0..100).filter(|b| !data.contains(b)).take(60));
    for &b in &offline {
        stores[b].set_outage(Outage::Down);
    }
    for primary in [0usize, 7, 19] {
        let range = 2048..4096u64;
        let out = fan
            .read_segment(42, 100, 20, Some(primary), Some(range.clone()), &verifier)
            .await
            .unwrap();
        let Fetched::Pieces(pieces) = out.fetched else {
            panic!("the primary is offline");
        };
        assert_eq!(pieces.len(), 20);
        for p in pieces {
            assert_eq!(p.bytes, shards[p.shard].slice(2048..4096));
        }
    }
    // One more and the read fails with no bytes.
    let alive = (0..100).find(|b| !offline.contains(b)).unwrap();
    stores[alive].set_outage(Outage::Down);
    let err = fan
        .read_segment(42, 100, 20, Some(0), Some(0..1024), &verifier)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotEnoughShards { .. }), "{err}");
}
