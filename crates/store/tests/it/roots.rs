//! State roots are a function of the state alone.

use poi_store::{EMPTY_ROOT, StoreOptions, verify_proof};

use crate::{Writes, commit, temp_store, writes};

fn pairs(count: u8) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    (0..count)
        .map(|i| (format!("key/{i}").into_bytes(), Some(vec![i; 3])))
        .collect()
}

#[test]
fn map_construction_order_does_not_change_root() {
    let forward: Writes = pairs(200).into_iter().collect();
    let reverse: Writes = pairs(200).into_iter().rev().collect();
    let (_a, _, store_a) = temp_store(StoreOptions::default());
    let (_b, _, store_b) = temp_store(StoreOptions::default());
    let root_a = store_a.prepare(0, &forward).expect("prepare").state_root();
    let root_b = store_b.prepare(0, &reverse).expect("prepare").state_root();
    assert_eq!(root_a, root_b);
    assert_ne!(root_a, EMPTY_ROOT);
}

#[test]
fn two_stores_fed_the_same_blocks_agree() {
    let blocks = [
        writes(&[("a", Some("1")), ("b", Some("2")), ("c", Some("3"))]),
        writes(&[("b", None), ("d", Some("4"))]),
        writes(&[]),
        writes(&[("a", Some("10")), ("zz", None)]),
    ];
    let (_a, _, store_a) = temp_store(StoreOptions::default());
    let options = StoreOptions {
        history_heights: 1,
        prune_interval_heights: 1,
        ..StoreOptions::default()
    };
    let (_b, _, store_b) = temp_store(options);
    for (height, block) in (0u64..).zip(&blocks) {
        let a = commit(&store_a, height, block);
        let b = commit(&store_b, height, block);
        assert_eq!(a.state_root, b.state_root, "height {height}");
        assert_eq!(store_a.root_at(height).expect("root"), Some(a.state_root));
    }
    // Same state reached along another path has the same root.
    let (_c, _, store_c) = temp_store(StoreOptions::default());
    let direct = commit(
        &store_c,
        0,
        &writes(&[("a", Some("10")), ("c", Some("3")), ("d", Some("4"))]),
    );
    assert_eq!(
        store_a.latest().map(|latest| latest.state_root),
        Some(direct.state_root)
    );
}

#[test]
fn empty_store_and_empty_blocks() {
    let (_dir, _, store) = temp_store(StoreOptions::default());
    assert_eq!(store.latest(), None);
    let first = commit(&store, 0, &writes(&[]));
    assert_eq!(first.state_root, EMPTY_ROOT);
    let (value, proof) = store.get_with_proof(b"nobody", 0).expect("proof");
    assert_eq!(value, None);
    verify_proof(EMPTY_ROOT, b"nobody", None, &proof).expect("absent in empty tree");

    let second = commit(&store, 1, &writes(&[("k", Some("v"))]));
    let third = commit(&store, 2, &writes(&[]));
    assert_eq!(
        second.state_root, third.state_root,
        "an empty block keeps the root"
    );
    let (value, proof) = store
        .get_with_proof(b"k", 2)
        .expect("proof at the empty block");
    assert_eq!(value.as_deref(), Some(&b"v"[..]));
    verify_proof(third.state_root, b"k", Some(b"v"), &proof).expect("verifies");
}

#[test]
fn deleting_every_key_gives_the_empty_root() {
    let (_dir, _, store) = temp_store(StoreOptions::default());
    commit(&store, 0, &writes(&[("a", Some("1")), ("b", Some("2"))]));
    let cleared = commit(&store, 1, &writes(&[("a", None), ("b", None)]));
    assert_eq!(cleared.state_root, EMPTY_ROOT);
    let refilled = commit(&store, 2, &writes(&[("c", Some("3"))]));
    assert_ne!(refilled.state_root, EMPTY_ROOT);
    assert_eq!(store.get(b"c").expect("get").as_deref(), Some(&b"3"[..]));
    assert_eq!(store.get(b"a").expect("get"), None);
}

#[test]
fn an_empty_store_may_start_at_any_height() {
    let block = writes(&[("a", Some("1")), ("b", Some("2"))]);
    let (_a, _, from_zero) = temp_store(StoreOptions::default());
    let (_b, _, from_ten) = temp_store(StoreOptions::default());
    let zero = commit(&from_zero, 0, &block);
    let ten = commit(&from_ten, 10, &block);
    assert_eq!(
        zero.state_root, ten.state_root,
        "the root does not depend on the version"
    );
    assert_eq!(from_ten.oldest_provable(), Some(10));
    let (value, proof) = from_ten.get_with_proof(b"a", 10).expect("proof");
    verify_proof(ten.state_root, b"a", value.as_deref(), &proof).expect("verifies");
    let next = commit(&from_ten, 11, &writes(&[]));
    assert_eq!(next.state_root, ten.state_root);
    let (_c, _, empty_start) = temp_store(StoreOptions::default());
    assert_eq!(commit(&empty_start, 5, &writes(&[])).state_root, EMPTY_ROOT);
    assert_eq!(
        commit(&empty_start, 6, &writes(&[("x", None)])).state_root,
        EMPTY_ROOT
    );
}

/// Pins the tree encoding: a change here changes every root of every chain.
#[test]
fn golden_root() {
    let (_dir, _, store) = temp_store(StoreOptions::default());
    let root = commit(
        &store,
        0,
        &writes(&[("alice", Some("10")), ("bob", Some("20"))]),
    )
    .state_root;
    assert_eq!(hex::encode(root), GOLDEN_ROOT);
}

const GOLDEN_ROOT: &str = "c762b2db7701df80d858b09a2e08b30da1800104169942e956a73382caa4e3fa";
