//! Unit tests of the write path that look inside the tables.

use std::collections::{BTreeMap, BTreeSet};

use jmt::ValueHash;
use jmt::storage::{LeafNode, Node};
use redb::ReadableDatabase;
use sha2::{Digest, Sha256};

use super::*;
use crate::StoreOptions;
use crate::format::{NODES, NodeKeyBytes, decode_node};
use crate::tree::TreeSnapshot;

type Writes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

fn temp_store(history_heights: u64) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = StoreOptions {
        history_heights,
        prune_interval_heights: 1,
        ..StoreOptions::default()
    };
    let store = Store::open_with(&dir.path().join("state.redb"), options).expect("open");
    (dir, store)
}

fn block(height: u64) -> BlockCommit {
    BlockCommit {
        height,
        hash: Sha256::digest(height.to_be_bytes()).into(),
        bytes: vec![],
        txs: vec![],
    }
}

/// Deterministic pseudo-random writes: `count` draws over `keys` keys, some deleted.
fn random_writes(seed: u64, count: u64, keys: u64, delete_one_in: u8) -> Writes {
    let mut writes = Writes::new();
    for index in 0..count {
        let draw: [u8; 32] =
            Sha256::digest([seed.to_be_bytes(), index.to_be_bytes()].concat()).into();
        let pick = u64::from_be_bytes(draw[..8].try_into().expect("8 bytes")) % keys;
        let deleted = delete_one_in != 0 && draw[8].is_multiple_of(delete_one_in);
        writes.insert(
            pick.to_be_bytes().to_vec(),
            (!deleted).then(|| draw[9..20].to_vec()),
        );
    }
    writes
}

fn encode_node_key(version: u64, nibbles: &[u8]) -> Vec<u8> {
    let mut out = version.to_be_bytes().to_vec();
    out.push(nibbles.len() as u8);
    for pair in nibbles.chunks(2) {
        out.push(pair[0] << 4 | pair.get(1).copied().unwrap_or(0));
    }
    out
}

/// Encoded keys of every node reachable from the roots of `versions`.
fn reachable(store: &Store, versions: std::ops::RangeInclusive<u64>) -> BTreeSet<Vec<u8>> {
    let txn = store.db.begin_read().expect("read");
    let nodes = txn.open_table(NODES).expect("nodes");
    let mut seen = BTreeSet::new();
    for version in versions {
        let mut stack = vec![(version, Vec::<u8>::new())];
        while let Some((version, path)) = stack.pop() {
            let key = encode_node_key(version, &path);
            if !seen.insert(key.clone()) {
                continue;
            }
            let raw = nodes
                .get(key.as_slice())
                .expect("get")
                .expect("reachable node is stored");
            let (node, _) = decode_node(raw.value()).expect("decode");
            if let Node::Internal(internal) = node {
                for (nibble, child) in internal.children_sorted() {
                    let mut child_path = path.clone();
                    child_path.push(u8::from(nibble));
                    stack.push((child.version, child_path));
                }
            }
        }
    }
    seen
}

/// Encoded keys of every stored node; asserts that each leaf carries the value it commits to.
fn stored_node_keys(store: &Store) -> BTreeSet<Vec<u8>> {
    let txn = store.db.begin_read().expect("read");
    let nodes = txn.open_table(NODES).expect("nodes");
    let mut keys = BTreeSet::new();
    for entry in nodes.range::<&[u8]>(..).expect("range") {
        let (key, record) = entry.expect("entry");
        if let (Node::Leaf(leaf), value) = decode_node(record.value()).expect("decode") {
            let expected = LeafNode::new(leaf.key_hash(), ValueHash::with::<Sha256>(value));
            assert_eq!(leaf, expected, "leaf value does not match its hash");
        }
        keys.insert(key.value().to_vec());
    }
    keys
}

/// Root, new nodes by encoded key, and encoded stale keys of one jmt update.
type JmtUpdate = ([u8; 32], BTreeMap<Vec<u8>, Node>, BTreeSet<Vec<u8>>);

/// jmt's own update of `writes` at `version` over `snapshot`: root, new nodes by encoded key,
/// and encoded stale keys. `per_key` picks jmt's per-key path over its batch path.
fn jmt_update(snapshot: &TreeSnapshot, version: u64, writes: &Writes, per_key: bool) -> JmtUpdate {
    let tree = jmt::Sha256Jmt::new(snapshot);
    let mut set: Vec<(jmt::KeyHash, Option<Vec<u8>>)> = writes
        .iter()
        .map(|(key, value)| (key_hash(key), value.clone()))
        .collect();
    set.sort_by_key(|(hash, _)| *hash);
    let upserts = !set.is_empty() && set.iter().all(|(_, value)| value.is_some());
    let (root, batch) = if upserts && !per_key {
        let set = set
            .into_iter()
            .filter_map(|(hash, value)| Some((hash, value?)))
            .collect();
        let (roots, batch) = tree
            .batch_put_value_sets(vec![set], None, version)
            .expect("jmt");
        (roots[0], batch)
    } else {
        tree.put_value_set(set, version).expect("jmt")
    };
    let nodes = batch
        .node_batch
        .nodes()
        .iter()
        .map(|(key, node)| (NodeKeyBytes::new(key).as_slice().to_vec(), node.clone()))
        .collect();
    let stale = batch
        .stale_node_index_batch
        .iter()
        .map(|entry| NodeKeyBytes::new(&entry.node_key).as_slice().to_vec())
        .collect();
    (root.0, nodes, stale)
}

/// Prepares `writes` and checks it against both of jmt's update paths: the same root always,
/// and node for node when the block only upserts. (With deletions, jmt's per-key path may
/// re-create a leaf that ends where it started; the updater keeps such a leaf.)
fn prepare_like_jmt(store: &Store, height: u64, writes: &Writes) -> Prepared {
    let prepared = store.prepare(height, writes).expect("prepare");
    let ours: BTreeMap<Vec<u8>, Node> = prepared
        .tree
        .nodes
        .iter()
        .map(|(key, range)| {
            let (node, _) = decode_node(&prepared.tree.records[range.clone()]).expect("decode");
            (key.as_slice().to_vec(), node)
        })
        .collect();
    let mut our_stale = BTreeSet::new();
    for_each_stale(&prepared.tree.stale, |key| {
        assert!(our_stale.insert(key.to_vec()), "stale listed twice");
        Ok(())
    })
    .expect("stale list");
    let txn = store.db.begin_read().expect("read");
    let snapshot = TreeSnapshot::open(&txn).expect("snapshot");
    let upserts = writes.values().all(Option::is_some);
    for per_key in [false, true] {
        let (root, nodes, mut stale) = jmt_update(&snapshot, height, writes, per_key);
        assert_eq!(
            prepared.state_root(),
            root,
            "root at {height}, per key {per_key}"
        );
        if !upserts {
            continue;
        }
        let differ: Vec<_> = ours
            .keys()
            .chain(nodes.keys())
            .filter(|key| ours.get(*key) != nodes.get(*key))
            .take(3)
            .map(|key| (key, ours.get(key), nodes.get(key)))
            .collect();
        assert!(
            differ.is_empty(),
            "nodes at {height}, per key {per_key}: {differ:#?}"
        );
        if let Some(base) = prepared.base {
            // jmt leaves the parent root off its index when the root did not change.
            stale.insert(NodeKeyBytes::from_nibbles(base.0, &[]).as_slice().to_vec());
        }
        assert_eq!(our_stale, stale, "stale at {height}, per key {per_key}");
    }
    prepared
}

#[test]
fn updates_match_jmt_node_for_node() {
    let (_dir, store) = temp_store(10);
    let blocks: Vec<Writes> = vec![
        Writes::new(),
        random_writes(1, 1, 50, 0),
        random_writes(2, 1, 50, 0),
        random_writes(3, 300, 2_000, 0),
        random_writes(4, 200, 2_000, 3),
        BTreeMap::from([(b"absent".to_vec(), None)]),
        Writes::new(),
        random_writes(5, 400, 2_000, 0),
        random_writes(6, 2_000, 2_000, 1),
        random_writes(7, 3, 2_000, 0),
        random_writes(8, 2_000, 2_000, 1),
        Writes::new(),
    ];
    for (height, writes) in (0u64..).zip(&blocks) {
        let prepared = prepare_like_jmt(&store, height, writes);
        store.commit(&prepared, block(height)).expect("commit");
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

    #[test]
    fn random_batches_match_jmt(
        batches in proptest::collection::vec(
            (
                proptest::bool::ANY,
                proptest::collection::vec(
                    (0u16..64, proptest::option::weighted(0.7, 0u8..4)),
                    0..40,
                ),
            ),
            1..6,
        ),
    ) {
        let (_dir, store) = temp_store(2);
        for (height, (upserts_only, batch)) in (0u64..).zip(&batches) {
            let writes: Writes = batch
                .iter()
                .map(|(key, value)| {
                    let value = if *upserts_only { Some(value.unwrap_or(9)) } else { *value };
                    (key.to_be_bytes().to_vec(), value.map(|value| vec![value]))
                })
                .collect();
            let prepared = prepare_like_jmt(&store, height, &writes);
            store.commit(&prepared, block(height)).expect("commit");
        }
    }
}

/// Checks every retained version against the state models: values read through the tree.
fn assert_history(store: &Store, states: &[(u64, Writes)], oldest: u64, keys: u64) {
    let txn = store.db.begin_read().expect("read");
    let snapshot = TreeSnapshot::open(&txn).expect("snapshot");
    for (height, state) in states.iter().filter(|(height, _)| *height >= oldest) {
        for index in 0..keys {
            let key = index.to_be_bytes().to_vec();
            let found = snapshot.value(*height, key_hash(&key)).expect("value");
            assert_eq!(
                found.as_ref(),
                state.get(&key).and_then(Option::as_ref),
                "{height}"
            );
        }
    }
}

#[test]
fn pruning_keeps_exactly_what_retained_versions_reach() {
    let history = 3;
    let keys = 300;
    let (_dir, store) = temp_store(history);
    let mut state = Writes::new();
    let mut states = Vec::new();
    for height in 0..40u64 {
        let writes = match height % 10 {
            // Empty blocks and no-op deletions copy the root without marking the parent stale.
            4 => Writes::new(),
            7 => BTreeMap::from([(b"never written".to_vec(), None)]),
            9 => random_writes(height, 200, keys, 1),
            _ => random_writes(height, 40, keys, 4),
        };
        for (key, value) in &writes {
            match value {
                Some(_) => state.insert(key.clone(), value.clone()),
                None => state.remove(key),
            };
        }
        states.push((height, state.clone()));
        let prepared = store.prepare(height, &writes).expect("prepare");
        store.commit(&prepared, block(height)).expect("commit");
        let oldest = store.oldest_provable().expect("oldest");
        assert_eq!(oldest, height.saturating_sub(history - 1));
        let stored = stored_node_keys(&store);
        let live = reachable(&store, oldest..=height);
        let leaked: Vec<_> = stored.difference(&live).take(4).collect();
        assert!(
            leaked.is_empty(),
            "height {height}: unreachable nodes kept: {leaked:?}"
        );
        assert_eq!(stored.len(), live.len(), "height {height}");
        assert_history(&store, &states, oldest, keys);
    }
}

/// Leaves of `prepared` whose keys the block did not write: moved by a neighbour.
fn moved_leaves(prepared: &Prepared, writes: &Writes) -> usize {
    let written: BTreeSet<jmt::KeyHash> = writes.keys().map(|key| key_hash(key)).collect();
    let records = &prepared.tree.records;
    let leaves = prepared.tree.nodes.iter().filter_map(|(_, range)| {
        match decode_node(&records[range.clone()]).expect("decode") {
            (Node::Leaf(leaf), _) => Some(leaf.key_hash()),
            _ => None,
        }
    });
    leaves.filter(|hash| !written.contains(hash)).count()
}

#[test]
fn moved_leaves_keep_their_values() {
    let (_dir, store) = temp_store(100);
    // Many keys, then inserts and deletes that split and collapse their neighbours' paths.
    let first = random_writes(1, 2_000, 1_000_000, 0);
    store
        .commit(&store.prepare(0, &first).expect("prepare"), block(0))
        .expect("commit");
    let mut grow = random_writes(2, 2_000, 1_000_000, 0);
    grow.retain(|key, _| !first.contains_key(key));
    let prepared = prepare_like_jmt(&store, 1, &grow);
    assert!(
        moved_leaves(&prepared, &grow) > 0,
        "inserts moved no leaf; the test lost its point"
    );
    store.commit(&prepared, block(1)).expect("commit");
    let shrink: Writes = grow.keys().map(|key| (key.clone(), None)).collect();
    let prepared = prepare_like_jmt(&store, 2, &shrink);
    assert!(
        moved_leaves(&prepared, &shrink) > 0,
        "deletes moved no leaf; the test lost its point"
    );
    let root = prepared.state_root();
    store.commit(&prepared, block(2)).expect("commit");
    assert_eq!(
        store.root_at(0).expect("root"),
        Some(root),
        "same keys, same root"
    );
    stored_node_keys(&store);
    let txn = store.db.begin_read().expect("read");
    let snapshot = TreeSnapshot::open(&txn).expect("snapshot");
    for (key, value) in &first {
        assert_eq!(
            snapshot.value(2, key_hash(key)).expect("value").as_ref(),
            value.as_ref()
        );
    }
}

#[test]
fn next_oldest_slides_a_window() {
    let options = |history_heights, prune_interval_heights| StoreOptions {
        history_heights,
        prune_interval_heights,
        ..StoreOptions::default()
    };
    assert_eq!(next_oldest(None, 5, options(1000, 1)), 5);
    assert_eq!(next_oldest(Some(5), 6, options(1000, 1)), 5);
    assert_eq!(next_oldest(Some(0), 10, options(3, 1)), 8);
    assert_eq!(next_oldest(Some(9), 10, options(3, 1)), 9);
    assert_eq!(next_oldest(Some(0), 10, options(1, 1)), 10);
    // With an interval, the window start jumps once it is that far ahead.
    assert_eq!(next_oldest(Some(0), 10, options(3, 8)), 8);
    assert_eq!(next_oldest(Some(8), 17, options(3, 8)), 8);
    assert_eq!(next_oldest(Some(8), 18, options(3, 8)), 16);
}
