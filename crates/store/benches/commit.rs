//! Prepare and commit of 20,000 random key updates on a 100,000-key store, no baseline.
//!
//! Scenario: the target load of 10,000 transfers per block (two balance writes each). The store
//! keeps 16 heights of history with the default prune interval, and setup commits enough blocks
//! that measured commits prune as in steady state (every 8th commit prunes 8 heights).
//! `prepare` is also measured alone: it is the part a proposer pays before it can gossip a root.
//! `prepare_commit_10k_transfers` adds what a real block carries: a 2 MiB block record and
//! 10,000 indexed transactions with 64-byte receipts.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use poi_store::{BlockCommit, Store, StoreOptions};

/// Keys in the state before the measured blocks.
const KEYS: u64 = 100_000;
/// Key updates per measured block.
const UPDATES: u64 = 20_000;
/// Heights of history kept.
const HISTORY_HEIGHTS: u64 = 16;
/// Transactions per block in the full-block scenario.
const TXS: u64 = 10_000;

type Writes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// splitmix64: a fixed, seedable sequence so every run measures the same blocks.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn account_key(index: u64) -> Vec<u8> {
    let mut key = b"bank/balance/".to_vec();
    key.extend_from_slice(&index.to_be_bytes());
    key
}

fn balance(state: &mut u64) -> Vec<u8> {
    let mut value = u128::from(next(state)).to_le_bytes().to_vec();
    value.extend_from_slice(&next(state).to_le_bytes());
    value
}

fn random_updates(state: &mut u64) -> Writes {
    let mut writes = Writes::new();
    while (writes.len() as u64) < UPDATES {
        let key = account_key(next(state) % KEYS);
        writes.insert(key, Some(balance(state)));
    }
    writes
}

fn block(height: u64) -> BlockCommit {
    let mut hash = [0u8; 32];
    hash[..8].copy_from_slice(&height.to_be_bytes());
    BlockCommit {
        height,
        hash,
        bytes: vec![0; 1024],
        txs: vec![],
    }
}

fn full_block(height: u64, state: &mut u64) -> BlockCommit {
    let txs = (0..TXS)
        .map(|_| {
            let mut hash = [0u8; 32];
            for chunk in hash.chunks_mut(8) {
                chunk.copy_from_slice(&next(state).to_le_bytes());
            }
            (hash, vec![1; 64])
        })
        .collect();
    BlockCommit {
        txs,
        bytes: vec![0; 2 << 20],
        ..block(height)
    }
}

fn setup(dir: &tempfile::TempDir, state: &mut u64) -> Store {
    let options = StoreOptions {
        history_heights: HISTORY_HEIGHTS,
        ..StoreOptions::default()
    };
    let store = Store::open_with(&dir.path().join("state.redb"), options).expect("open");
    let genesis: Writes = (0..KEYS)
        .map(|index| (account_key(index), Some(balance(state))))
        .collect();
    let prepared = store.prepare(0, &genesis).expect("prepare genesis");
    store.commit(&prepared, block(0)).expect("commit genesis");
    // Fill the history window, so that the measured commits prune.
    let warm_heights = HISTORY_HEIGHTS + StoreOptions::default().prune_interval_heights;
    for height in 1..=warm_heights {
        let prepared = store
            .prepare(height, &random_updates(state))
            .expect("prepare");
        store.commit(&prepared, block(height)).expect("commit");
    }
    store
}

fn bench_commit(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut state = 7u64;
    let store = setup(&dir, &mut state);
    let mut group = c.benchmark_group("store_100k_keys");
    group.sample_size(10);
    group.throughput(Throughput::Elements(UPDATES));
    group.bench_function("prepare_20k_updates", |bench| {
        let writes = random_updates(&mut state);
        let height = store.latest().expect("genesis").height + 1;
        bench.iter(|| black_box(store.prepare(height, &writes).expect("prepare")));
    });
    group.bench_function("prepare_commit_20k_updates", |bench| {
        bench.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let writes = random_updates(&mut state);
                let height = store.latest().expect("genesis").height + 1;
                let start = Instant::now();
                let prepared = store.prepare(height, &writes).expect("prepare");
                black_box(store.commit(&prepared, block(height)).expect("commit"));
                total += start.elapsed();
            }
            total
        });
    });
    group.bench_function("prepare_commit_10k_transfers", |bench| {
        bench.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let writes = random_updates(&mut state);
                let height = store.latest().expect("genesis").height + 1;
                let block = full_block(height, &mut state);
                let start = Instant::now();
                let prepared = store.prepare(height, &writes).expect("prepare");
                black_box(store.commit(&prepared, block).expect("commit"));
                total += start.elapsed();
            }
            total
        });
    });
    group.finish();
}

// Written out instead of `criterion_group!`, whose generated function has no doc comment.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench_commit(&mut criterion);
    criterion.final_summary();
}
