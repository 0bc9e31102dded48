//! The store handle: opening the file and serving reads.
//!
//! Owns: [`Store`], its options and the records it returns. Invariants: `meta.latest` names the
//! only height whose state the flat table holds; the cached [`Meta`] never runs ahead of disk
//! and only moves forward.

use std::ops::RangeFrom;
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock};

use jmt::Sha256Jmt;
use redb::{Builder, Database, DatabaseError, ReadableDatabase, ReadableTable};

use crate::error::{Result, StoreError};
use crate::format::{
    BLOCK_HASHES, BLOCKS, FLAT, FORMAT_VERSION, LATEST_BYTES, META, META_FORMAT, META_LATEST,
    META_OLDEST, NODES, RECEIPTS, RECEIPTS_PER_CHUNK, ROOTS, STALE, TX_INDEX, decode_tx_places,
    read_32, read_u64, receipt_chunk_key, receipt_entry, tx_index_key,
};
use crate::limits::{CACHE_BYTES_DEFAULT, HISTORY_HEIGHTS_DEFAULT, PRUNE_INTERVAL_HEIGHTS_DEFAULT};
use crate::proof::StateProof;
use crate::tree::{TreeSnapshot, key_hash};

/// The latest committed block as the store knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Committed {
    /// Block height, which is also the tree version of its state.
    pub height: u64,
    /// Jellyfish Merkle root of the state after the block.
    pub state_root: [u8; 32],
    /// Hash of the block, as given by the caller.
    pub block_hash: [u8; 32],
}

/// A transaction's place in the chain and its opaque receipt bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TxRecord {
    /// Height of the block that holds the transaction.
    pub height: u64,
    /// Position of the transaction in its block.
    pub index: u32,
    /// Receipt bytes given by the caller at commit.
    pub bytes: Vec<u8>,
}

/// Tunables of [`Store::open_with`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// Heights kept provable: `get_with_proof` works for at least the last `history_heights`
    /// heights. At least 1; see [`HISTORY_HEIGHTS_DEFAULT`] for the cost.
    pub history_heights: u64,
    /// Heights between prunes: older heights are pruned in one commit once this many have left
    /// the window, so up to `history_heights + prune_interval_heights - 1` heights are provable.
    /// At least 1; see [`PRUNE_INTERVAL_HEIGHTS_DEFAULT`] for the trade-off.
    pub prune_interval_heights: u64,
    /// Bytes of redb page cache.
    pub cache_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            history_heights: HISTORY_HEIGHTS_DEFAULT,
            prune_interval_heights: PRUNE_INTERVAL_HEIGHTS_DEFAULT,
            cache_bytes: CACHE_BYTES_DEFAULT,
        }
    }
}

/// The latest height and the oldest provable height, as stored in `meta`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) latest: Option<Committed>,
    pub(crate) oldest: Option<u64>,
}

/// Versioned, authenticated key-value state with a block and transaction index, in one redb file.
///
/// `Send + Sync`: readers open their own redb read transaction and never wait for the writer;
/// commits are serialized by redb.
pub struct Store {
    pub(crate) db: Database,
    pub(crate) options: StoreOptions,
    meta: RwLock<Meta>,
}

const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Store>();
};

impl Store {
    /// Opens the redb file at `path` (for example `DIR/state.redb`) with default options,
    /// creating it if missing.
    pub fn open(path: &Path) -> Result<Store> {
        Self::open_with(path, StoreOptions::default())
    }

    /// Opens the redb file at `path` with `options`, creating it if missing.
    ///
    /// Fails with [`StoreError::Locked`] when another process has it open.
    pub fn open_with(path: &Path, options: StoreOptions) -> Result<Store> {
        if options.history_heights == 0 {
            return Err(StoreError::InvalidOption {
                name: "history_heights",
                reason: "must be at least 1",
            });
        }
        if options.prune_interval_heights == 0 {
            return Err(StoreError::InvalidOption {
                name: "prune_interval_heights",
                reason: "must be at least 1",
            });
        }
        let cache_bytes =
            usize::try_from(options.cache_bytes).map_err(|_| StoreError::InvalidOption {
                name: "cache_bytes",
                reason: "does not fit in memory",
            })?;
        let db = Builder::new()
            .set_cache_size(cache_bytes)
            .create(path)
            .map_err(|err| match err {
                DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
                    StoreError::Locked {
                        path: PathBuf::from(path),
                    }
                }
                other => StoreError::from(other),
            })?;
        init_tables(&db)?;
        let meta = {
            let txn = db.begin_read()?;
            read_meta(&txn.open_table(META)?)?
        };
        let store = Store {
            db,
            options,
            meta: RwLock::new(meta),
        };
        if let Some(latest) = meta.latest {
            // Paired with the check after every commit: what commit wrote is what reopen reads.
            store.assert_root(&latest)?;
        }
        Ok(store)
    }

    /// The latest committed block, `None` before the first commit.
    pub fn latest(&self) -> Option<Committed> {
        self.meta().latest
    }

    /// A read view of the latest committed state that stays consistent across many reads: one
    /// redb read transaction, opened once. Use it for block execution, where per-read
    /// transactions would dominate; a commit made after it was taken is not visible through it.
    pub fn snapshot(&self) -> Result<Snapshot> {
        let txn = self.db.begin_read()?;
        let flat = txn.open_table(FLAT)?;
        Ok(Snapshot { flat })
    }

    /// Oldest height [`Store::get_with_proof`] still serves, `None` before the first commit.
    pub fn oldest_provable(&self) -> Option<u64> {
        self.meta().oldest
    }

    /// Value of `key` in the latest committed state, from the flat table.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let txn = self.db.begin_read()?;
        let flat = txn.open_table(FLAT)?;
        let Some(entry) = flat.get(key)? else {
            return Ok(None);
        };
        Ok(Some(entry.value().to_vec()))
    }

    /// Visits the latest committed entries whose key starts with `prefix`, keys ascending, until
    /// `visit` returns `false`.
    pub fn scan_prefix(
        &self,
        prefix: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        let txn = self.db.begin_read()?;
        let flat = txn.open_table(FLAT)?;
        let range: RangeFrom<&[u8]> = prefix..;
        for entry in flat.range(range)? {
            let (key, value) = entry?;
            let key = key.value();
            if !key.starts_with(prefix) {
                break;
            }
            if !visit(key, value.value()) {
                break;
            }
        }
        Ok(())
    }

    /// Value of `key` at `height` and its proof against [`Store::root_at`] of `height`.
    ///
    /// Fails with [`StoreError::NotCommitted`] above the latest height and with
    /// [`StoreError::Pruned`] below [`Store::oldest_provable`].
    pub fn get_with_proof(&self, key: &[u8], height: u64) -> Result<(Option<Vec<u8>>, StateProof)> {
        let txn = self.db.begin_read()?;
        let meta = read_meta(&txn.open_table(META)?)?;
        let (Some(latest), Some(oldest)) = (meta.latest, meta.oldest) else {
            return Err(StoreError::NotCommitted {
                height,
                latest: None,
            });
        };
        if height > latest.height {
            return Err(StoreError::NotCommitted {
                height,
                latest: Some(latest.height),
            });
        }
        if height < oldest {
            return Err(StoreError::Pruned { height, oldest });
        }
        let snapshot = TreeSnapshot::open(&txn)?;
        let (value, proof) = Sha256Jmt::new(&snapshot)
            .get_with_proof(key_hash(key), height)
            .map_err(StoreError::from_tree)?;
        Ok((value, StateProof::new(proof)))
    }

    /// Block bytes committed at `height`.
    pub fn block_by_height(&self, height: u64) -> Result<Option<Vec<u8>>> {
        let txn = self.db.begin_read()?;
        let blocks = txn.open_table(BLOCKS)?;
        Ok(blocks.get(height)?.map(|bytes| bytes.value().to_vec()))
    }

    /// Height of the block with hash `hash`.
    pub fn height_by_block_hash(&self, hash: &[u8; 32]) -> Result<Option<u64>> {
        let txn = self.db.begin_read()?;
        let hashes = txn.open_table(BLOCK_HASHES)?;
        Ok(hashes.get(hash)?.map(|height| height.value()))
    }

    /// Where the transaction with hash `tx_hash` was committed, and its receipt bytes.
    pub fn tx_record(&self, tx_hash: &[u8; 32]) -> Result<Option<TxRecord>> {
        let txn = self.db.begin_read()?;
        let Some(places) = txn.open_table(TX_INDEX)?.get(&tx_index_key(tx_hash))? else {
            return Ok(None);
        };
        let receipts = txn.open_table(RECEIPTS)?;
        // Almost always one place; more only when hashes share their first 8 bytes.
        for (height, index) in decode_tx_places(places.value())? {
            let Some(chunk) = receipts.get(&receipt_chunk_key(height, index))? else {
                return Err(StoreError::corrupt(
                    "indexed transaction has no receipts chunk",
                ));
            };
            let (hash, receipt) = receipt_entry(chunk.value(), index % RECEIPTS_PER_CHUNK)?;
            if hash == *tx_hash {
                return Ok(Some(TxRecord {
                    height,
                    index,
                    bytes: receipt.to_vec(),
                }));
            }
        }
        Ok(None)
    }

    /// State root committed at `height`; kept for every height, pruned or not.
    pub fn root_at(&self, height: u64) -> Result<Option<[u8; 32]>> {
        let txn = self.db.begin_read()?;
        let roots = txn.open_table(ROOTS)?;
        Ok(roots.get(height)?.map(|root| *root.value()))
    }

    pub(crate) fn meta(&self) -> Meta {
        *self.meta.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes `meta` unless a later commit already did.
    pub(crate) fn advance_meta(&self, meta: Meta) {
        let mut cached = self.meta.write().unwrap_or_else(PoisonError::into_inner);
        let newer = match (cached.latest, meta.latest) {
            (Some(cached), Some(next)) => next.height > cached.height,
            (None, _) => true,
            (Some(_), None) => false,
        };
        if newer {
            *cached = meta;
        }
    }

    /// Asserts that the tree root stored for `committed.height` hashes to its state root.
    pub(crate) fn assert_root(&self, committed: &Committed) -> Result<()> {
        let txn = self.db.begin_read()?;
        let meta = read_meta(&txn.open_table(META)?)?;
        if meta.oldest.is_some_and(|oldest| oldest > committed.height) {
            // A later commit pruned this height between our commit and this read.
            return Ok(());
        }
        let root = TreeSnapshot::open(&txn)?.root(committed.height)?;
        assert_eq!(
            root,
            Some(committed.state_root),
            "tree root stored for height {} differs from the committed state root",
            committed.height
        );
        Ok(())
    }
}

/// Creates every table and checks or records the format version.
fn init_tables(db: &Database) -> Result<()> {
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(META)?;
        let found = match meta.get(META_FORMAT)? {
            Some(raw) => Some(
                <[u8; 4]>::try_from(raw.value())
                    .map(u32::from_be_bytes)
                    .map_err(|_| StoreError::corrupt("meta format is not 4 bytes"))?,
            ),
            None => None,
        };
        match found {
            Some(found) if found != FORMAT_VERSION => {
                return Err(StoreError::UnsupportedFormat {
                    found,
                    expected: FORMAT_VERSION,
                });
            }
            Some(_) => {}
            None => {
                meta.insert(META_FORMAT, FORMAT_VERSION.to_be_bytes().as_slice())?;
            }
        }
        txn.open_table(NODES)?;
        txn.open_table(STALE)?;
        txn.open_table(FLAT)?;
        txn.open_table(ROOTS)?;
        txn.open_table(BLOCKS)?;
        txn.open_table(BLOCK_HASHES)?;
        txn.open_table(TX_INDEX)?;
        txn.open_table(RECEIPTS)?;
    }
    txn.commit()?;
    Ok(())
}

/// Decodes `meta.latest` and `meta.oldest`.
pub(crate) fn read_meta(table: &impl ReadableTable<&'static str, &'static [u8]>) -> Result<Meta> {
    let latest = match table.get(META_LATEST)? {
        None => None,
        Some(raw) => {
            let raw = raw.value();
            if raw.len() != LATEST_BYTES {
                return Err(StoreError::corrupt("meta latest has the wrong length"));
            }
            Some(Committed {
                height: read_u64(raw, "meta latest")?,
                state_root: read_32(raw, 8, "meta latest")?,
                block_hash: read_32(raw, 40, "meta latest")?,
            })
        }
    };
    let oldest = match table.get(META_OLDEST)? {
        None => None,
        Some(raw) => Some(read_u64(raw.value(), "meta oldest")?),
    };
    if latest.is_some() != oldest.is_some() {
        return Err(StoreError::corrupt("meta latest and oldest disagree"));
    }
    Ok(Meta { latest, oldest })
}

/// A consistent view of the latest committed flat state; see [`Store::snapshot`].
pub struct Snapshot {
    flat: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
}

impl Snapshot {
    /// The value under `key` in this view.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.flat.get(key)?.map(|entry| entry.value().to_vec()))
    }

    /// Visits keys starting with `prefix` in ascending order until `visit` returns false.
    pub fn scan_prefix(
        &self,
        prefix: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        let range: RangeFrom<&[u8]> = prefix..;
        for entry in self.flat.range(range)? {
            let (key, value) = entry?;
            let key = key.value();
            if !key.starts_with(prefix) || !visit(key, value.value()) {
                break;
            }
        }
        Ok(())
    }
}
