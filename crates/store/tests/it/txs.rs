//! The transaction index and receipts: every committed transaction is found by its full hash,
//! across receipt chunks and hash-prefix collisions, and nothing else is.

use poi_store::format::RECEIPTS_PER_CHUNK;
use poi_store::{StoreError, StoreOptions, TxRecord};
use proptest::prelude::*;

use crate::{block, temp_store, writes};

fn hash(prefix: u64, rest: u8) -> [u8; 32] {
    let mut hash = [rest; 32];
    hash[..8].copy_from_slice(&prefix.to_be_bytes());
    hash
}

#[test]
fn every_transaction_of_a_many_chunk_block_is_found_with_its_place_and_receipt() {
    let (_dir, _, store) = temp_store(StoreOptions::default());
    let count = RECEIPTS_PER_CHUNK * 2 + 17;
    let txs: Vec<([u8; 32], Vec<u8>)> = (0..count)
        .map(|i| {
            let receipt = format!("receipt {i}").repeat((i % 5) as usize);
            (hash(u64::from(i) * 7919 + 1, i as u8), receipt.into_bytes())
        })
        .collect();
    let prepared = store.prepare(0, &writes(&[("a", Some("1"))])).unwrap();
    let mut record = block(0, 1);
    record.txs = txs.clone();
    store.commit(&prepared, record).unwrap();
    for (i, (tx_hash, receipt)) in txs.iter().enumerate() {
        let expected = TxRecord {
            height: 0,
            index: i as u32,
            bytes: receipt.clone(),
        };
        assert_eq!(store.tx_record(tx_hash).unwrap(), Some(expected), "tx {i}");
    }
    assert_eq!(store.tx_record(&hash(u64::MAX, 0)).unwrap(), None);
}

#[test]
fn hashes_sharing_their_first_eight_bytes_are_told_apart() {
    let (_dir, path, store) = temp_store(StoreOptions::default());
    let (first, second, never) = (hash(42, 1), hash(42, 2), hash(42, 3));
    let prepared = store.prepare(0, &writes(&[("a", Some("1"))])).unwrap();
    let mut record = block(0, 1);
    record.txs = vec![(first, b"one".to_vec())];
    store.commit(&prepared, record).unwrap();
    let prepared = store.prepare(1, &writes(&[("a", Some("2"))])).unwrap();
    let mut record = block(1, 1);
    record.txs = vec![(hash(7, 7), vec![]), (second, b"two".to_vec())];
    store.commit(&prepared, record).unwrap();
    drop(store);
    let store = poi_store::Store::open(&path).unwrap();
    let found = |h: &[u8; 32]| {
        store
            .tx_record(h)
            .unwrap()
            .map(|r| (r.height, r.index, r.bytes))
    };
    assert_eq!(found(&first), Some((0, 0, b"one".to_vec())));
    assert_eq!(found(&second), Some((1, 1, b"two".to_vec())));
    assert_eq!(found(&never), None);

    // The same full hash again, behind a shared prefix, is still a duplicate.
    let prepared = store.prepare(2, &writes(&[("a", Some("3"))])).unwrap();
    let mut record = block(2, 1);
    record.txs = vec![(hash(42, 9), vec![]), (second, vec![])];
    let refused = store.commit(&prepared, record);
    assert!(matches!(refused, Err(StoreError::DuplicateTx { .. })));
    assert_eq!(found(&hash(42, 9)), None, "a refused block indexes nothing");
    assert_eq!(found(&second), Some((1, 1, b"two".to_vec())));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Random blocks whose hashes often share prefixes: each committed hash is found at its
    /// place with its receipt; hashes never committed are not found.
    #[test]
    fn index_finds_exactly_the_committed_transactions(
        blocks in prop::collection::vec(
            prop::collection::btree_set((0u64..40, any::<u8>()), 0..300),
            1..4,
        ),
        probes in prop::collection::vec((0u64..40, any::<u8>()), 0..50),
    ) {
        let (_dir, _, store) = temp_store(StoreOptions::default());
        let mut committed = std::collections::BTreeMap::new();
        for (height, txs) in blocks.iter().enumerate() {
            let height = height as u64;
            let fresh: Vec<([u8; 32], Vec<u8>)> = txs
                .iter()
                .map(|(prefix, rest)| hash(*prefix, *rest))
                .filter(|h| !committed.contains_key(h))
                .map(|h| (h, h[8..12].to_vec()))
                .collect();
            let value = height.to_string();
            let prepared = store.prepare(height, &writes(&[("h", Some(&value))])).unwrap();
            let mut record = block(height, 1);
            record.txs = fresh.clone();
            store.commit(&prepared, record).unwrap();
            for (index, (h, receipt)) in fresh.into_iter().enumerate() {
                committed.insert(h, (height, index as u32, receipt));
            }
        }
        for (h, (height, index, bytes)) in &committed {
            let expected = TxRecord { height: *height, index: *index, bytes: bytes.clone() };
            prop_assert_eq!(store.tx_record(h).unwrap(), Some(expected));
        }
        for (prefix, rest) in probes {
            let h = hash(prefix, rest);
            let found = store.tx_record(&h).unwrap().map(|r| (r.height, r.index, r.bytes));
            prop_assert_eq!(found, committed.get(&h).cloned());
        }
    }
}
