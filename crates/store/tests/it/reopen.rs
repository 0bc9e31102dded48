//! Reopening a store gives back exactly what was committed.

use poi_store::{Store, StoreError, StoreOptions, TxRecord};

use crate::{block, commit, temp_store, writes};

#[test]
fn reopen_keeps_height_root_values_blocks_and_txs() {
    let (_dir, path, store) = temp_store(StoreOptions::default());
    commit(&store, 0, &writes(&[("a", Some("1")), ("b", Some("2"))]));
    let prepared = store
        .prepare(1, &writes(&[("b", None), ("c", Some("3"))]))
        .expect("prepare");
    let mut record = block(1, 7);
    record.txs = vec![([1; 32], b"receipt one".to_vec()), ([2; 32], vec![])];
    let last = store.commit(&prepared, record.clone()).expect("commit");
    drop(store);

    let store = Store::open(&path).expect("reopen");
    assert_eq!(store.latest(), Some(last));
    assert_eq!(store.root_at(1).expect("root"), Some(last.state_root));
    assert_eq!(store.get(b"a").expect("get").as_deref(), Some(&b"1"[..]));
    assert_eq!(store.get(b"b").expect("get"), None);
    assert_eq!(store.get(b"c").expect("get").as_deref(), Some(&b"3"[..]));
    assert_eq!(
        store.block_by_height(1).expect("block"),
        Some(record.bytes.clone())
    );
    assert_eq!(store.block_by_height(2).expect("block"), None);
    assert_eq!(
        store.height_by_block_hash(&record.hash).expect("hash"),
        Some(1)
    );
    assert_eq!(store.height_by_block_hash(&[9; 32]).expect("hash"), None);
    let expected = TxRecord {
        height: 1,
        index: 0,
        bytes: b"receipt one".to_vec(),
    };
    assert_eq!(store.tx_record(&[1; 32]).expect("tx"), Some(expected));
    let expected = TxRecord {
        height: 1,
        index: 1,
        bytes: vec![],
    };
    assert_eq!(store.tx_record(&[2; 32]).expect("tx"), Some(expected));
    assert_eq!(store.tx_record(&[3; 32]).expect("tx"), None);
    // The chain goes on from the reopened height.
    let next = commit(&store, 2, &writes(&[("d", Some("4"))]));
    assert_eq!(store.latest(), Some(next));
}

#[test]
fn empty_store_reopens_empty() {
    let (_dir, path, store) = temp_store(StoreOptions::default());
    drop(store);
    let store = Store::open(&path).expect("reopen");
    assert_eq!(store.latest(), None);
    assert_eq!(store.oldest_provable(), None);
    assert_eq!(store.get(b"a").expect("get"), None);
}

#[test]
fn a_second_open_is_refused_with_a_typed_error() {
    let (_dir, path, _store) = temp_store(StoreOptions::default());
    let second = Store::open(&path);
    assert!(
        matches!(second, Err(StoreError::Locked { .. })),
        "{:?}",
        second.err()
    );
}

#[test]
fn invalid_options_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = StoreOptions {
        history_heights: 0,
        ..StoreOptions::default()
    };
    let opened = Store::open_with(&dir.path().join("state.redb"), options);
    assert!(matches!(
        opened,
        Err(StoreError::InvalidOption {
            name: "history_heights",
            ..
        })
    ));
}

#[test]
fn a_file_that_is_not_a_store_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.redb");
    std::fs::write(&path, vec![0x5a; 8192]).expect("write junk");
    assert!(Store::open(&path).is_err());
}
