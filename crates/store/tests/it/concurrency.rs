//! Readers on other threads see consistent snapshots while one writer commits.

use std::sync::atomic::{AtomicBool, Ordering};

use poi_store::StoreOptions;

use crate::{commit, temp_store, writes};

/// Heights the writer commits.
const HEIGHTS: u64 = 40;
/// Bound on reader iterations, so a broken writer cannot hang the test.
const READS_MAX: u32 = 1_000_000;

#[test]
fn readers_see_monotonic_snapshots_during_commits() {
    let options = StoreOptions {
        history_heights: 4,
        prune_interval_heights: 1,
        ..StoreOptions::default()
    };
    let (_dir, _, store) = temp_store(options);
    commit(&store, 0, &writes(&[("a", Some("0")), ("b", Some("0"))]));
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut last_seen = 0u64;
            let mut reads = 0u32;
            while !done.load(Ordering::Acquire) && reads < READS_MAX {
                let raw = store.get(b"a").expect("get").expect("a is always set");
                let seen: u64 = String::from_utf8(raw)
                    .expect("utf8")
                    .parse()
                    .expect("number");
                assert!(seen >= last_seen, "a went back from {last_seen} to {seen}");
                last_seen = seen;
                let latest = store.latest().expect("committed");
                assert!(store.root_at(latest.height).expect("root").is_some());
                reads += 1;
            }
            reads
        });
        for height in 1..=HEIGHTS {
            let value = height.to_string();
            commit(
                &store,
                height,
                &writes(&[("a", Some(value.as_str())), ("b", Some("x"))]),
            );
        }
        done.store(true, Ordering::Release);
        let reads = reader.join().expect("reader thread");
        assert!(reads > 0);
    });
    assert_eq!(
        store.get(b"a").expect("get"),
        Some(HEIGHTS.to_string().into_bytes())
    );
}
