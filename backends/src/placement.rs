//! Where shard `i` of a segment lives, and under which key.

/// The backend (index into the lake's backend list) that holds shard
/// `shard` of segment `segment_id`, in a lake of `backends` backends.
///
/// Shard `i` goes to backend `(i + segment_id) mod backends`: consecutive
/// segments rotate their data shards across all backends, so no backend
/// holds every segment's data shards (and with them the single-read fast
/// path for every page), and with `backends >= n` the `n` shards of one
/// segment land on `n` distinct backends.
///
/// # Panics
///
/// If `backends` is zero.
pub fn backend_for_shard(segment_id: u64, shard: usize, backends: usize) -> usize {
    assert!(backends > 0, "a lake needs at least one backend");
    // Reduce both terms first so the sum cannot overflow.
    let seg = (segment_id % backends as u64) as usize;
    (seg + shard % backends) % backends
}

/// The object key of shard `shard` of segment `segment_id`.
///
/// Zero-padded hex and decimal keep a listing sorted by segment, then by
/// shard, and put all shards of one segment under one prefix (see
/// [`segment_prefix`]).
pub fn shard_key(segment_id: u64, shard: usize) -> String {
    format!("{}{shard:03}", segment_prefix(segment_id))
}

/// The key prefix shared by every shard of segment `segment_id`.
pub fn segment_prefix(segment_id: u64) -> String {
    format!("seg/{segment_id:016x}/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::validate_key;

    #[test]
    fn one_segment_uses_distinct_backends() {
        for seg in [0u64, 1, 99, 100, 12345, u64::MAX] {
            let mut used: Vec<usize> = (0..100).map(|i| backend_for_shard(seg, i, 100)).collect();
            used.sort_unstable();
            used.dedup();
            assert_eq!(used.len(), 100, "segment {seg}");
        }
    }

    #[test]
    fn data_shards_rotate() {
        // Over 100 consecutive segments every backend holds data shard 0
        // exactly once.
        let mut count = [0usize; 100];
        for seg in 0..100u64 {
            count[backend_for_shard(seg, 0, 100)] += 1;
        }
        assert!(count.iter().all(|&c| c == 1));
        assert_eq!(backend_for_shard(7, 3, 100), 10);
        assert_eq!(backend_for_shard(u64::MAX, usize::MAX, 7), {
            ((u64::MAX % 7) as usize + usize::MAX % 7) % 7
        });
    }

    #[test]
    fn keys_are_valid_and_sorted() {
        let a = shard_key(1, 2);
        let b = shard_key(1, 10);
        let c = shard_key(2, 0);
        assert_eq!(a, "seg/0000000000000001/002");
        assert!(a < b && b < c);
        assert!(validate_key(&a).is_ok());
        assert!(a.starts_with(&segment_prefix(1)));
    }
}
