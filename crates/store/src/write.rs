//! The write path: computing a block's root, committing it, pruning old versions.
//!
//! Owns: [`Prepared`], [`BlockCommit`], `Store::prepare` and `Store::commit`. Invariants: a
//! commit is one redb write transaction with immediate durability; it lands only on the state
//! its [`Prepared`] was computed from; every leaf is written with the value it commits to;
//! pruning never deletes a node that a version in `[oldest, latest]` reaches.

use std::collections::BTreeMap;
use std::fmt;

use jmt::storage::{LeafNode, Node, TreeUpdateBatch};
use jmt::{KeyHash, OwnedValue, Sha256Jmt, ValueHash};
use redb::{Durability, ReadableDatabase, WriteTransaction};
use sha2::Sha256;

use crate::error::{Result, StoreError};
use crate::format::{
    BLOCK_HASHES, BLOCKS, FLAT, LATEST_BYTES, META, META_LATEST, META_OLDEST, NODES, NodeKeyBytes,
    RECEIPTS, ROOTS, STALE, TX_INDEX, encode_node, for_each_stale, push_stale, receipt_key,
};
use crate::limits::{
    BLOCK_BYTES_MAX, BLOCK_TXS_MAX, BLOCK_WRITES_MAX, KEY_BYTES_MAX, RECEIPT_BYTES_MAX,
    VALUE_BYTES_MAX,
};
use crate::store::{Committed, Meta, Store, read_meta};
use crate::tree::{TreeSnapshot, key_hash};

/// What a block adds besides state: its bytes and its transaction index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockCommit {
    /// Height of the block; must equal the [`Prepared`] height.
    pub height: u64,
    /// Hash of the block; unique across the chain.
    pub hash: [u8; 32],
    /// Opaque block bytes, returned by [`Store::block_by_height`].
    pub bytes: Vec<u8>,
    /// `(tx hash, receipt bytes)` in block order; a transaction's index is its position.
    pub txs: Vec<([u8; 32], Vec<u8>)>,
}

/// A block's state changes with their new root, computed but not written.
pub struct Prepared {
    height: u64,
    /// Latest committed block when this was prepared; commit refuses any other base.
    base: Option<Committed>,
    state_root: [u8; 32],
    batch: TreeUpdateBatch,
    /// Written keys sorted by key hash: the order of `batch`'s value entries.
    keys: Vec<(KeyHash, Vec<u8>)>,
    /// Values of leaves the block moved without writing them, read from the parent tree.
    moved: BTreeMap<KeyHash, Vec<u8>>,
    /// The tree left the parent root off its stale index (no-op or empty-root update).
    stale_parent_root: bool,
}

impl Prepared {
    /// State root after the block.
    pub fn state_root(&self) -> [u8; 32] {
        self.state_root
    }

    /// Height (tree version) this state is for.
    pub fn height(&self) -> u64 {
        self.height
    }
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("height", &self.height)
            .field("base", &self.base.map(|base| base.height))
            .field("writes", &self.keys.len())
            .field("nodes", &self.batch.node_batch.nodes().len())
            .finish_non_exhaustive()
    }
}

/// One write, by key hash: `(key hash, raw key, new value or None to delete)`.
type Entry<'a> = (KeyHash, &'a [u8], Option<&'a [u8]>);

impl Store {
    /// Computes the state root of `height` = latest height + 1 (any height on an empty store)
    /// after `writes` (`None` deletes). Writes nothing; pass the result to [`Store::commit`].
    pub fn prepare(
        &self,
        height: u64,
        writes: &BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    ) -> Result<Prepared> {
        check_writes(writes)?;
        let txn = self.db.begin_read()?;
        let base = read_meta(&txn.open_table(META)?)?.latest;
        check_next_height(base.as_ref(), height)?;
        // An empty store may start at any height: the tree then needs an empty root below it.
        let null_root = match base {
            None if height > 0 => Some(height - 1),
            _ => None,
        };
        let snapshot = TreeSnapshot::open(&txn, null_root)?;
        let mut entries: Vec<Entry<'_>> = writes
            .iter()
            .map(|(key, value)| (key_hash(key), key.as_slice(), value.as_deref()))
            .collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let (state_root, batch) = update_tree(&snapshot, height, &entries, false)?;
        assert_eq!(batch.node_batch.values().len(), entries.len());
        let stale_parent_root = base.is_some_and(|base| {
            !batch.stale_node_index_batch.iter().any(|stale| {
                stale.stale_since_version == height
                    && stale.node_key.version() == base.height
                    && stale.node_key.nibble_path().is_empty()
            })
        });
        let moved = moved_values(&snapshot, base.as_ref(), height, &batch)?;
        let keys = entries
            .into_iter()
            .map(|(hash, key, _)| (hash, key.to_vec()))
            .collect();
        Ok(Prepared {
            height,
            base,
            state_root,
            batch,
            keys,
            moved,
            stale_parent_root,
        })
    }

    /// Writes `prepared` and `block` in one durable redb transaction, prunes history older than
    /// the retained window, and returns the new latest block.
    ///
    /// Fails with [`StoreError::StalePrepared`] unless `prepared` was computed on the latest
    /// committed state; nothing is written then.
    pub fn commit(&self, prepared: Prepared, block: BlockCommit) -> Result<Committed> {
        check_block(&prepared, &block)?;
        let committed = Committed {
            height: prepared.height,
            state_root: prepared.state_root,
            block_hash: block.hash,
        };
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        let previous = read_meta(&txn.open_table(META)?)?;
        if previous.latest != prepared.base {
            return Err(StoreError::StalePrepared {
                prepared: prepared.height,
                latest: previous.latest.map(|latest| latest.height),
            });
        }
        let oldest = next_oldest(previous.oldest, committed.height, self.history_heights);
        write_block(&txn, &block, &committed)?;
        write_tree(&txn, &prepared)?;
        write_flat(&txn, &prepared)?;
        prune(&txn, oldest)?;
        write_meta(&txn, &committed, oldest)?;
        txn.commit()?;
        self.advance_meta(Meta {
            latest: Some(committed),
            oldest: Some(oldest),
        });
        // Paired with the check in `open`: the root reads back from what was just written.
        self.assert_root(&committed)?;
        Ok(committed)
    }
}

/// Applies `entries` (sorted by key hash) to the tree at version `height`.
///
/// Blocks without deletions take jmt's batch path, which hashes each new node once; blocks with
/// deletions (or `per_key`, for tests) take the per-key path. Both give the same tree.
pub(crate) fn update_tree(
    snapshot: &TreeSnapshot,
    height: u64,
    entries: &[Entry<'_>],
    per_key: bool,
) -> Result<([u8; 32], TreeUpdateBatch)> {
    let tree = Sha256Jmt::new(snapshot);
    let upserts_only = !entries.is_empty() && entries.iter().all(|entry| entry.2.is_some());
    if upserts_only && !per_key {
        let set: Vec<(KeyHash, OwnedValue)> = entries
            .iter()
            .filter_map(|&(hash, _, value)| value.map(|value| (hash, value.to_vec())))
            .collect();
        let (roots, batch) = tree
            .batch_put_value_sets(vec![set], None, height)
            .map_err(StoreError::from_tree)?;
        assert_eq!(roots.len(), 1, "one value set gives one root");
        return Ok((roots[0].0, batch));
    }
    let set = entries
        .iter()
        .map(|&(hash, _, value)| (hash, value.map(<[u8]>::to_vec)));
    let (root, batch) = tree
        .put_value_set(set, height)
        .map_err(StoreError::from_tree)?;
    Ok((root.0, batch))
}

/// Values of the leaves in `batch` whose keys the block did not write: jmt re-creates a leaf
/// under a new node key when a neighbour's insert or delete moves it up or down the tree.
fn moved_values(
    snapshot: &TreeSnapshot,
    base: Option<&Committed>,
    height: u64,
    batch: &TreeUpdateBatch,
) -> Result<BTreeMap<KeyHash, Vec<u8>>> {
    let mut moved = BTreeMap::new();
    for node in batch.node_batch.nodes().values() {
        let Node::Leaf(leaf) = node else { continue };
        let hash = leaf.key_hash();
        if batch.node_batch.values().contains_key(&(height, hash)) {
            continue;
        }
        let base = base.ok_or_else(|| StoreError::corrupt("moved leaf in an empty tree"))?;
        let value = snapshot
            .value(base.height, hash)?
            .ok_or_else(|| StoreError::corrupt("moved leaf has no value in the parent tree"))?;
        assert_eq!(
            *leaf,
            LeafNode::new(hash, ValueHash::with::<Sha256>(&value))
        );
        moved.insert(hash, value);
    }
    Ok(moved)
}

fn check_writes(writes: &BTreeMap<Vec<u8>, Option<Vec<u8>>>) -> Result<()> {
    check_size("writes", writes.len(), BLOCK_WRITES_MAX)?;
    for (key, value) in writes {
        check_size("key", key.len(), KEY_BYTES_MAX)?;
        if let Some(value) = value {
            check_size("value", value.len(), VALUE_BYTES_MAX)?;
        }
    }
    Ok(())
}

fn check_block(prepared: &Prepared, block: &BlockCommit) -> Result<()> {
    if block.height != prepared.height {
        return Err(StoreError::BlockHeightMismatch {
            prepared: prepared.height,
            block: block.height,
        });
    }
    check_size("block", block.bytes.len(), BLOCK_BYTES_MAX)?;
    check_size("txs", block.txs.len(), BLOCK_TXS_MAX)?;
    for (_, receipt) in &block.txs {
        check_size("receipt", receipt.len(), RECEIPT_BYTES_MAX)?;
    }
    Ok(())
}

fn check_size(what: &'static str, size: usize, max: u32) -> Result<()> {
    let size = size as u64;
    if size > u64::from(max) {
        return Err(StoreError::TooLarge {
            what,
            size,
            max: u64::from(max),
        });
    }
    Ok(())
}

fn check_next_height(latest: Option<&Committed>, height: u64) -> Result<()> {
    // The tree reserves u64::MAX as its pre-genesis version and increments past each version.
    if height == u64::MAX {
        return Err(StoreError::HeightOutOfRange { height });
    }
    match latest {
        Some(latest) if latest.height + 1 != height => Err(StoreError::UnexpectedHeight {
            expected: latest.height + 1,
            got: height,
        }),
        _ => Ok(()),
    }
}

/// Oldest height still provable after committing `height`, keeping `history` heights.
fn next_oldest(previous: Option<u64>, height: u64, history: u64) -> u64 {
    assert!(history >= 1);
    let window_start = height.saturating_sub(history - 1);
    let oldest = previous.map_or(height, |previous| previous.max(window_start));
    assert!(oldest <= height);
    oldest
}

fn write_block(txn: &WriteTransaction, block: &BlockCommit, committed: &Committed) -> Result<()> {
    let height = committed.height;
    let replaced = txn
        .open_table(BLOCKS)?
        .insert(height, block.bytes.as_slice())?
        .is_some();
    assert!(!replaced, "block {height} written twice");
    txn.open_table(ROOTS)?
        .insert(height, &committed.state_root)?;
    let mut hashes = txn.open_table(BLOCK_HASHES)?;
    if let Some(existing) = hashes.insert(&block.hash, height)? {
        let height = existing.value();
        return Err(StoreError::DuplicateBlockHash {
            hash: hex::encode(block.hash),
            height,
        });
    }
    let mut index = txn.open_table(TX_INDEX)?;
    let mut receipts = txn.open_table(RECEIPTS)?;
    for (position, (hash, receipt)) in block.txs.iter().enumerate() {
        let position = u32::try_from(position).map_err(|_| StoreError::TooLarge {
            what: "txs",
            size: block.txs.len() as u64,
            max: u64::from(BLOCK_TXS_MAX),
        })?;
        let key = receipt_key(height, position);
        if index.insert(hash, &key)?.is_some() {
            return Err(StoreError::DuplicateTx {
                hash: hex::encode(hash),
            });
        }
        receipts.insert(&key, receipt.as_slice())?;
    }
    Ok(())
}

/// Writes new tree nodes, each leaf with its value, and the version's stale node list.
fn write_tree(txn: &WriteTransaction, prepared: &Prepared) -> Result<()> {
    let values = prepared.batch.node_batch.values();
    let mut record = Vec::with_capacity(1024);
    let mut nodes = txn.open_table(NODES)?;
    for (node_key, node) in prepared.batch.node_batch.nodes() {
        let value = match node {
            Node::Leaf(leaf) => {
                let hash = leaf.key_hash();
                let written = values.get(&(prepared.height, hash)).map(Option::as_deref);
                let value = written
                    .flatten()
                    .or(prepared.moved.get(&hash).map(Vec::as_slice));
                Some(value.ok_or_else(|| StoreError::corrupt("tree leaf without a value"))?)
            }
            Node::Internal(_) | Node::Null => None,
        };
        encode_node(&mut record, node, value);
        nodes.insert(NodeKeyBytes::new(node_key).as_slice(), record.as_slice())?;
    }
    record.clear();
    for entry in &prepared.batch.stale_node_index_batch {
        assert_eq!(entry.stale_since_version, prepared.height);
        push_stale(&mut record, &NodeKeyBytes::new(&entry.node_key));
    }
    if let (true, Some(base)) = (prepared.stale_parent_root, prepared.base) {
        push_stale(&mut record, &NodeKeyBytes::from_nibbles(base.height, &[]));
    }
    if !record.is_empty() {
        txn.open_table(STALE)?
            .insert(prepared.height, record.as_slice())?;
    }
    Ok(())
}

/// Applies the writes to the flat latest-state table.
fn write_flat(txn: &WriteTransaction, prepared: &Prepared) -> Result<()> {
    let mut flat = txn.open_table(FLAT)?;
    let values = prepared.batch.node_batch.values();
    assert_eq!(values.len(), prepared.keys.len());
    for ((hash, key), ((version, value_hash), value)) in prepared.keys.iter().zip(values) {
        assert_eq!(
            (hash, *version),
            (value_hash, prepared.height),
            "keys and values align"
        );
        match value {
            Some(value) => flat.insert(key.as_slice(), value.as_slice())?,
            None => flat.remove(key.as_slice())?,
        };
    }
    Ok(())
}

/// Deletes the tree nodes listed as stale since `oldest` or earlier, and their lists.
fn prune(txn: &WriteTransaction, oldest: u64) -> Result<()> {
    let mut stale = txn.open_table(STALE)?;
    let mut nodes = txn.open_table(NODES)?;
    for entry in stale.extract_from_if(..=oldest, |_, _| true)? {
        let (_, record) = entry?;
        for_each_stale(record.value(), |node_key| match nodes.remove(node_key)? {
            Some(_) => Ok(()),
            None => Err(StoreError::corrupt("stale node list names a missing node")),
        })?;
    }
    Ok(())
}

fn write_meta(txn: &WriteTransaction, committed: &Committed, oldest: u64) -> Result<()> {
    let mut latest = [0u8; LATEST_BYTES];
    latest[..8].copy_from_slice(&committed.height.to_be_bytes());
    latest[8..40].copy_from_slice(&committed.state_root);
    latest[40..].copy_from_slice(&committed.block_hash);
    let mut meta = txn.open_table(META)?;
    meta.insert(META_LATEST, latest.as_slice())?;
    meta.insert(META_OLDEST, oldest.to_be_bytes().as_slice())?;
    Ok(())
}

#[cfg(test)]
#[path = "write_tests.rs"]
mod tests;
