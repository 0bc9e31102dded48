//! Integration tests of `poi-store`, one module per topic.

mod concurrency;
mod crash;
mod errors;
mod model;
mod pipeline;
mod proofs;
mod prune;
mod reopen;
mod roots;
mod txs;

use std::collections::BTreeMap;
use std::path::PathBuf;

use poi_store::{BlockCommit, Committed, Store, StoreOptions};
use tempfile::TempDir;

/// A write set, as `prepare` takes it.
pub(crate) type Writes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Builds a write set from string pairs; `None` deletes.
pub(crate) fn writes(pairs: &[(&str, Option<&str>)]) -> Writes {
    pairs
        .iter()
        .map(|(key, value)| {
            (
                key.as_bytes().to_vec(),
                value.map(|v| v.as_bytes().to_vec()),
            )
        })
        .collect()
}

/// A block record for `height` whose hash is derived from the height and a salt.
pub(crate) fn block(height: u64, salt: u8) -> BlockCommit {
    let mut hash = [salt; 32];
    hash[..8].copy_from_slice(&height.to_be_bytes());
    BlockCommit {
        height,
        hash,
        bytes: format!("block {height}").into_bytes(),
        txs: vec![],
    }
}

/// A fresh store file in a fresh directory; keep the directory alive while the store is used.
pub(crate) fn temp_store(options: StoreOptions) -> (TempDir, PathBuf, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.redb");
    let store = Store::open_with(&path, options).expect("open store");
    (dir, path, store)
}

/// Prepares and commits `writes` at `height`.
pub(crate) fn commit(store: &Store, height: u64, writes: &Writes) -> Committed {
    let prepared = store.prepare(height, writes).expect("prepare");
    let root = prepared.state_root();
    let committed = store.commit(&prepared, block(height, 0)).expect("commit");
    assert_eq!(committed.state_root, root);
    committed
}
