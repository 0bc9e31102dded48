//! Bad input is a typed error and leaves the store unchanged.

use poi_store::limits::KEY_BYTES_MAX;
use poi_store::{Store, StoreError, StoreOptions};

use crate::{Writes, block, commit, temp_store, writes};

fn assert_unchanged(store: &Store, before: Option<poi_store::Committed>) {
    assert_eq!(store.latest(), before);
    assert_eq!(store.get(b"a").expect("get").as_deref(), Some(&b"1"[..]));
}

#[test]
fn prepare_for_the_wrong_height_is_refused() {
    let (_dir, _, store) = temp_store(StoreOptions::default());
    commit(&store, 0, &writes(&[("a", Some("1"))]));
    for height in [0, 2, 100] {
        let refused = store.prepare(height, &writes(&[]));
        let expected = matches!(
            refused,
            Err(StoreError::UnexpectedHeight { expected: 1, got }) if got == height
        );
        assert!(expected, "{refused:?}");
    }
    let (_dir, _, empty) = temp_store(StoreOptions::default());
    let refused = empty.prepare(u64::MAX, &writes(&[]));
    assert!(matches!(refused, Err(StoreError::HeightOutOfRange { .. })));
}

#[test]
fn a_stale_prepared_is_refused() {
    let (_dir, _, store) = temp_store(StoreOptions::default());
    commit(&store, 0, &writes(&[("a", Some("1"))]));
    let winner = store
        .prepare(1, &writes(&[("b", Some("2"))]))
        .expect("prepare");
    let loser = store
        .prepare(1, &writes(&[("a", Some("666"))]))
        .expect("prepare");
    let committed = store.commit(&winner, block(1, 0)).expect("commit");
    let refused = store.commit(&loser, block(1, 1));
    assert!(matches!(
        refused,
        Err(StoreError::StalePrepared {
            prepared: 1,
            latest: Some(1)
        })
    ));
    assert_unchanged(&store, Some(committed));

    let (_dir, _, empty) = temp_store(StoreOptions::default());
    let first = empty.prepare(0, &writes(&[])).expect("prepare");
    let second = empty.prepare(0, &writes(&[])).expect("prepare");
    empty.commit(&first, block(0, 0)).expect("commit");
    let refused = empty.commit(&second, block(0, 1));
    assert!(matches!(
        refused,
        Err(StoreError::StalePrepared {
            prepared: 0,
            latest: Some(0)
        })
    ));
}

#[test]
fn block_height_must_match_prepared_height() {
    let (_dir, _, store) = temp_store(StoreOptions::default());
    let before = commit(&store, 0, &writes(&[("a", Some("1"))]));
    let prepared = store
        .prepare(1, &writes(&[("a", Some("2"))]))
        .expect("prepare");
    let refused = store.commit(&prepared, block(2, 0));
    assert!(matches!(
        refused,
        Err(StoreError::BlockHeightMismatch {
            prepared: 1,
            block: 2
        })
    ));
    assert_unchanged(&store, Some(before));
}

#[test]
fn duplicate_block_hash_and_tx_hash_are_refused_atomically() {
    let (_dir, _, store) = temp_store(StoreOptions::default());
    let mut first = block(0, 0);
    first.txs = vec![([7; 32], b"r".to_vec())];
    let prepared = store
        .prepare(0, &writes(&[("a", Some("1"))]))
        .expect("prepare");
    let before = store.commit(&prepared, first.clone()).expect("commit");

    let prepared = store
        .prepare(1, &writes(&[("a", Some("2"))]))
        .expect("prepare");
    let mut same_hash = block(1, 0);
    same_hash.hash = first.hash;
    let refused = store.commit(&prepared, same_hash);
    assert!(matches!(
        refused,
        Err(StoreError::DuplicateBlockHash { height: 0, .. })
    ));
    assert_unchanged(&store, Some(before));
    assert_eq!(store.block_by_height(1).expect("block"), None);

    let prepared = store
        .prepare(1, &writes(&[("a", Some("2"))]))
        .expect("prepare");
    let mut same_tx = block(1, 0);
    same_tx.txs = vec![([8; 32], vec![]), ([7; 32], vec![])];
    let refused = store.commit(&prepared, same_tx);
    assert!(matches!(refused, Err(StoreError::DuplicateTx { .. })));
    assert_unchanged(&store, Some(before));
    assert_eq!(store.tx_record(&[8; 32]).expect("tx"), None);
    assert_eq!(
        store.tx_record(&[7; 32]).expect("tx").map(|tx| tx.height),
        Some(0)
    );
}

#[test]
fn oversized_keys_are_refused() {
    let (_dir, _, store) = temp_store(StoreOptions::default());
    let mut big: Writes = Writes::new();
    big.insert(vec![0; KEY_BYTES_MAX as usize + 1], Some(vec![1]));
    let refused = store.prepare(0, &big);
    assert!(matches!(
        refused,
        Err(StoreError::TooLarge { what: "key", .. })
    ));
    let mut fits: Writes = Writes::new();
    fits.insert(vec![0; KEY_BYTES_MAX as usize], Some(vec![1]));
    store.prepare(0, &fits).expect("a key at the limit fits");
}
