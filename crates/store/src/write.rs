//! The write path: computing a block's root, committing it, pruning old versions.
//!
//! Owns: [`Prepared`], [`BlockCommit`], `Store::prepare`, `Store::prepare_after` and
//! `Store::commit`. Invariants: a commit is one redb write transaction with immediate
//! durability; it lands only on the state (height and root) its [`Prepared`] was computed
//! from, so a block prepared over an uncommitted parent commits only after that parent; every leaf is written with the value it commits to;
//! pruning never deletes a node that a version in `[oldest, latest]` reaches.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use redb::{Durability, ReadableDatabase, ReadableTable, WriteTransaction};

use crate::error::{Result, StoreError};
use crate::format::{
    BLOCK_HASHES, BLOCKS, FLAT, LATEST_BYTES, META, META_LATEST, META_OLDEST, NODES,
    RECEIPT_ENTRY_HEADER_BYTES, RECEIPTS, RECEIPTS_PER_CHUNK, ROOTS, STALE, TX_INDEX,
    decode_tx_places, encode_tx_place, for_each_stale, push_receipt_entry, receipt_chunk_key,
    receipt_entry, tx_index_key,
};
use crate::limits::{
    BLOCK_BYTES_MAX, BLOCK_TXS_MAX, BLOCK_WRITES_MAX, KEY_BYTES_MAX, RECEIPT_BYTES_MAX,
    VALUE_BYTES_MAX,
};
use crate::store::{Committed, Meta, Store, StoreOptions, read_meta};
use crate::tree::key_hash;
use crate::update::{self, TreeUpdate, Write};

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
    /// Height and state root this was computed on (`None`: the empty store); commit refuses
    /// any other latest state.
    base: Option<(u64, [u8; 32])>,
    tree: TreeUpdate,
    /// Keys and values of the writes, back to back.
    flat_bytes: Vec<u8>,
    /// The writes in key order: key range and value range (`None` deletes) in `flat_bytes`.
    flat: FlatWrites,
}

type FlatWrites = Vec<(Range<usize>, Option<Range<usize>>)>;

const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Prepared>();
};

impl Prepared {
    /// State root after the block.
    pub fn state_root(&self) -> [u8; 32] {
        self.tree.root
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
            .field("base", &self.base.map(|(height, _)| height))
            .field("state_root", &hex::encode(self.tree.root))
            .field("writes", &self.flat.len())
            .field("nodes", &self.tree.nodes.len())
            .finish_non_exhaustive()
    }
}

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
        check_next_height(base.map(|base| base.height), height)?;
        let base = base.map(|base| (base.height, base.state_root));
        self.prepare_on(&txn, None, base, height, writes)
    }

    /// Like [`Store::prepare`], on top of `parent`, a block prepared but perhaps not committed
    /// yet: execution of a block can then overlap the commit of its parent. Commit `parent`
    /// first; committing the result on any other state fails with
    /// [`StoreError::StalePrepared`].
    ///
    /// Fails with [`StoreError::StalePrepared`] unless the latest committed state is
    /// `parent`'s base or `parent` itself.
    pub fn prepare_after(
        &self,
        parent: &Prepared,
        height: u64,
        writes: &BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    ) -> Result<Prepared> {
        check_writes(writes)?;
        check_next_height(Some(parent.height), height)?;
        let txn = self.db.begin_read()?;
        let latest = read_meta(&txn.open_table(META)?)?
            .latest
            .map(|latest| (latest.height, latest.state_root));
        let parent_state = Some((parent.height, parent.tree.root));
        if latest != parent.base && latest != parent_state {
            return Err(StoreError::StalePrepared {
                prepared: height,
                latest: latest.map(|(height, _)| height),
            });
        }
        self.prepare_on(&txn, Some(&parent.tree), parent_state, height, writes)
    }

    fn prepare_on(
        &self,
        txn: &redb::ReadTransaction,
        pending: Option<&TreeUpdate>,
        base: Option<(u64, [u8; 32])>,
        height: u64,
        writes: &BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    ) -> Result<Prepared> {
        let mut sorted: Vec<Write<'_>> = writes
            .iter()
            .map(|(key, value)| Write {
                hash: key_hash(key),
                value: value.as_deref(),
            })
            .collect();
        sorted.sort_unstable_by_key(|write| write.hash);
        let nodes = txn.open_table(NODES)?;
        let base_height = base.map(|(height, _)| height);
        let tree = update::apply(&nodes, pending, base_height, height, &sorted)?;
        let (flat_bytes, flat) = flat_writes(writes);
        Ok(Prepared {
            height,
            base,
            tree,
            flat_bytes,
            flat,
        })
    }

    /// Writes `prepared` and `block` in one durable redb transaction, prunes history older than
    /// the retained window, and returns the new latest block.
    ///
    /// Fails with [`StoreError::StalePrepared`] unless `prepared` was computed on the latest
    /// committed state; nothing is written then.
    pub fn commit(&self, prepared: &Prepared, block: BlockCommit) -> Result<Committed> {
        check_block(prepared, &block)?;
        let committed = Committed {
            height: prepared.height,
            state_root: prepared.tree.root,
            block_hash: block.hash,
        };
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        let previous = read_meta(&txn.open_table(META)?)?;
        let latest = previous
            .latest
            .map(|latest| (latest.height, latest.state_root));
        if latest != prepared.base {
            return Err(StoreError::StalePrepared {
                prepared: prepared.height,
                latest: previous.latest.map(|latest| latest.height),
            });
        }
        let oldest = next_oldest(previous.oldest, committed.height, self.options);
        write_block(&txn, &block, &committed)?;
        write_tree(&txn, prepared)?;
        write_flat(&txn, prepared)?;
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

/// Copies the writes, in key order, into one buffer of keys and values and their ranges.
fn flat_writes(writes: &BTreeMap<Vec<u8>, Option<Vec<u8>>>) -> (Vec<u8>, FlatWrites) {
    let bytes_len = writes
        .iter()
        .map(|(key, value)| key.len() + value.as_ref().map_or(0, Vec::len));
    let mut bytes = Vec::with_capacity(bytes_len.sum());
    let mut flat = Vec::with_capacity(writes.len());
    for (key, value) in writes {
        let key = push_range(&mut bytes, key);
        let value = value.as_ref().map(|value| push_range(&mut bytes, value));
        flat.push((key, value));
    }
    (bytes, flat)
}

fn push_range(bytes: &mut Vec<u8>, part: &[u8]) -> Range<usize> {
    let start = bytes.len();
    bytes.extend_from_slice(part);
    start..bytes.len()
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

fn check_next_height(latest: Option<u64>, height: u64) -> Result<()> {
    // The tree reserves u64::MAX as its pre-genesis version and increments past each version.
    if height == u64::MAX {
        return Err(StoreError::HeightOutOfRange { height });
    }
    match latest {
        Some(latest) if latest + 1 != height => Err(StoreError::UnexpectedHeight {
            expected: latest + 1,
            got: height,
        }),
        _ => Ok(()),
    }
}

/// Oldest height still provable after committing `height`, keeping `history` heights.
///
/// The window start moves once it is `prune_interval_heights` ahead of the previous oldest, so
/// that one commit prunes several heights: their stale nodes share pages, which are then
/// rewritten once instead of once per height.
fn next_oldest(previous: Option<u64>, height: u64, options: StoreOptions) -> u64 {
    assert!(options.history_heights >= 1 && options.prune_interval_heights >= 1);
    let window_start = height.saturating_sub(options.history_heights - 1);
    let oldest = match previous {
        None => height,
        Some(previous) if window_start >= previous + options.prune_interval_heights => window_start,
        Some(previous) => previous,
    };
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
    write_receipts_and_index(txn, height, &block.txs)
}

/// Writes a block's receipts in chunks and indexes its transactions by hash prefix.
fn write_receipts_and_index(
    txn: &WriteTransaction,
    height: u64,
    txs: &[([u8; 32], Vec<u8>)],
) -> Result<()> {
    let too_many = || StoreError::TooLarge {
        what: "txs",
        size: txs.len() as u64,
        max: u64::from(BLOCK_TXS_MAX),
    };
    let mut receipts = txn.open_table(RECEIPTS)?;
    for (chunk_index, chunk_txs) in txs.chunks(RECEIPTS_PER_CHUNK as usize).enumerate() {
        let first = u32::try_from(chunk_index)
            .ok()
            .and_then(|c| c.checked_mul(RECEIPTS_PER_CHUNK))
            .ok_or_else(too_many)?;
        let bytes: usize = chunk_txs
            .iter()
            .map(|(_, r)| RECEIPT_ENTRY_HEADER_BYTES + r.len())
            .sum();
        let mut chunk = Vec::with_capacity(bytes);
        for (hash, receipt) in chunk_txs {
            push_receipt_entry(&mut chunk, hash, receipt);
        }
        receipts.insert(&receipt_chunk_key(height, first), chunk.as_slice())?;
    }
    let mut places = Vec::with_capacity(txs.len());
    for (position, (hash, _)) in txs.iter().enumerate() {
        let position = u32::try_from(position).map_err(|_| too_many())?;
        places.push((hash, position));
    }
    // Tx hashes are random: in hash order, consecutive inserts walk neighbouring pages.
    places.sort_unstable_by_key(|(hash, _)| **hash);
    let mut index = txn.open_table(TX_INDEX)?;
    for (hash, position) in places {
        let key = tx_index_key(hash);
        let place = encode_tx_place(height, position);
        let Some(existing) = index.insert(&key, place.as_slice())? else {
            continue;
        };
        // Another transaction shares the first 8 bytes of this hash (or is this one again).
        let mut listed = existing.value().to_vec();
        drop(existing);
        for (other_height, other_index) in decode_tx_places(&listed)? {
            if place_hash(&receipts, other_height, other_index)? == *hash {
                return Err(StoreError::DuplicateTx {
                    hash: hex::encode(hash),
                });
            }
        }
        listed.extend_from_slice(&place);
        index.insert(&key, listed.as_slice())?;
    }
    Ok(())
}

/// The full hash of the transaction at `(height, index)`, read from its receipts chunk.
fn place_hash(
    receipts: &redb::Table<'_, &'static [u8; 12], &'static [u8]>,
    height: u64,
    index: u32,
) -> Result<[u8; 32]> {
    let chunk = receipts
        .get(&receipt_chunk_key(height, index))?
        .ok_or_else(|| StoreError::corrupt("indexed transaction has no receipts chunk"))?;
    let (hash, _) = receipt_entry(chunk.value(), index % RECEIPTS_PER_CHUNK)?;
    Ok(hash)
}

/// Writes the new tree nodes (leaves with their values) and the version's stale node list.
fn write_tree(txn: &WriteTransaction, prepared: &Prepared) -> Result<()> {
    let tree = &prepared.tree;
    let mut nodes = txn.open_table(NODES)?;
    for (key, range) in &tree.nodes {
        let replaced = nodes
            .insert(key.as_slice(), &tree.records[range.clone()])?
            .is_some();
        assert!(
            !replaced,
            "a node key of the new version was already stored"
        );
    }
    if !tree.stale.is_empty() {
        txn.open_table(STALE)?
            .insert(prepared.height, tree.stale.as_slice())?;
    }
    Ok(())
}

/// Applies the writes to the flat latest-state table, in key order.
fn write_flat(txn: &WriteTransaction, prepared: &Prepared) -> Result<()> {
    let mut flat = txn.open_table(FLAT)?;
    let bytes = &prepared.flat_bytes;
    for (key, value) in &prepared.flat {
        let key = &bytes[key.clone()];
        match value {
            Some(value) => flat.insert(key, &bytes[value.clone()])?,
            None => flat.remove(key)?,
        };
    }
    Ok(())
}

/// Deletes the tree nodes listed as stale since `oldest` or earlier, and their lists.
fn prune(txn: &WriteTransaction, oldest: u64) -> Result<()> {
    let mut lists = Vec::new();
    for entry in txn
        .open_table(STALE)?
        .extract_from_if(..=oldest, |_, _| true)?
    {
        let (_, record) = entry?;
        lists.extend_from_slice(record.value());
    }
    let mut keys = Vec::new();
    for_each_stale(&lists, |key| {
        keys.push(key);
        Ok(())
    })?;
    // In key order, consecutive deletes walk neighbouring pages.
    keys.sort_unstable();
    let mut nodes = txn.open_table(NODES)?;
    for key in keys {
        if nodes.remove(key)?.is_none() {
            return Err(StoreError::corrupt("stale node list names a missing node"));
        }
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
