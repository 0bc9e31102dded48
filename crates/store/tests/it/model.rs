//! Random write batches keep the store equal to a map model and to jmt's in-memory tree.

use std::collections::BTreeMap;

use jmt::mock::MockTreeStore;
use jmt::{KeyHash, Sha256Jmt};
use poi_store::{StoreOptions, verify_proof};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

use crate::{Writes, commit, temp_store};

/// Keys of the model: 32 keys under three one-byte prefixes.
const KEYS: u8 = 32;

fn key(index: u8) -> Vec<u8> {
    vec![b'a' + index % 3, index]
}

type Batch = Vec<(u8, Option<Vec<u8>>)>;

fn batches() -> impl Strategy<Value = Vec<Batch>> {
    let value = prop::option::weighted(0.75, prop::collection::vec(any::<u8>(), 0..8));
    let batch = prop::collection::vec((0..KEYS, value), 0..16);
    prop::collection::vec(batch, 1..8)
}

fn scan(store: &poi_store::Store, prefix: &[u8], limit: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut seen = Vec::new();
    store
        .scan_prefix(prefix, &mut |key, value| {
            seen.push((key.to_vec(), value.to_vec()));
            seen.len() < limit
        })
        .expect("scan");
    seen
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn store_matches_model_and_oracle(batches in batches(), start in 0u64..3) {
        let (_a, _, store) = temp_store(StoreOptions::default());
        let pruned = StoreOptions {
            history_heights: 1,
            prune_interval_heights: 1,
            ..StoreOptions::default()
        };
        let (_b, _, twin) = temp_store(pruned);
        let oracle = MockTreeStore::default();
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        // The state and root of every height, to check historic proofs.
        let mut history = Vec::new();
        for (offset, batch) in (0u64..).zip(&batches) {
            let height = start + offset;
            let writes: Writes = batch.iter().map(|(index, value)| (key(*index), value.clone()))
                .collect();
            for (key, value) in &writes {
                match value {
                    Some(value) => model.insert(key.clone(), value.clone()),
                    None => model.remove(key),
                };
            }
            let committed = commit(&store, height, &writes);
            prop_assert_eq!(committed.state_root, commit(&twin, height, &writes).state_root);
            let set = writes
                .iter()
                .map(|(key, value)| (KeyHash(Sha256::digest(key).into()), value.clone()));
            let (root, update) = Sha256Jmt::new(&oracle).put_value_set(set, offset)
                .expect("oracle put");
            oracle.write_tree_update_batch(update).expect("oracle write");
            prop_assert_eq!(committed.state_root, root.0);
            for index in 0..KEYS {
                let expected = model.get(&key(index)).cloned();
                prop_assert_eq!(store.get(&key(index)).expect("get"), expected);
            }
            let expected: Vec<_> = model.range(b"b".to_vec()..b"c".to_vec())
                .map(|(key, value)| (key.clone(), value.clone())).collect();
            prop_assert_eq!(scan(&store, b"b", usize::MAX), expected.clone());
            let first_two: Vec<_> = expected.into_iter().take(2).collect();
            prop_assert_eq!(scan(&store, b"b", 2), first_two);
            history.push((height, committed.state_root, model.clone()));
        }
        // The default window keeps every height of the run; the twin keeps only the latest.
        for (height, root, state) in &history {
            for index in 0..KEYS {
                let key = key(index);
                let (value, proof) = store.get_with_proof(&key, *height).expect("proof");
                prop_assert_eq!(value.as_ref(), state.get(&key));
                prop_assert!(verify_proof(*root, &key, value.as_deref(), &proof).is_ok());
            }
        }
        let (latest, root, state) = history.last().expect("one batch at least");
        for index in 0..KEYS {
            let (value, proof) = twin.get_with_proof(&key(index), *latest).expect("twin proof");
            prop_assert_eq!(value.as_ref(), state.get(&key(index)));
            prop_assert!(verify_proof(*root, &key(index), value.as_deref(), &proof).is_ok());
        }
    }
}
