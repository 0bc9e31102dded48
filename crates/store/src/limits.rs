//! Caps on every input the store accepts, and their costs.
//!
//! Owns: the size limits checked by `prepare` and `commit`. Invariants: a write that passes them
//! fits in one redb pair, and a block that passes them fits in one redb transaction in memory.

/// Largest state key, in bytes. Keys are state paths; the flat table and the value history both
/// store them, so each extra byte costs two bytes per key on disk.
pub const KEY_BYTES_MAX: u32 = 1024;

/// Largest state value, in bytes. A prepared block holds its values twice in memory (tree batch
/// and flat table update) until it commits.
pub const VALUE_BYTES_MAX: u32 = 1 << 20;

/// Most key writes in one block. At 20,000 writes a block costs about 10 MB of tree nodes; the
/// cap bounds the memory of one [`Prepared`](crate::Prepared) to a few GiB in the worst case.
pub const BLOCK_WRITES_MAX: u32 = 1 << 20;

/// Largest block record, in bytes. Stored once, never pruned.
pub const BLOCK_BYTES_MAX: u32 = 64 << 20;

/// Most transactions indexed for one block; the index of a transaction must fit a `u32`.
pub const BLOCK_TXS_MAX: u32 = 1 << 20;

/// Largest receipt stored for one transaction, in bytes. Stored once, never pruned.
pub const RECEIPT_BYTES_MAX: u32 = 1 << 20;

/// Heights of history kept for proofs when [`StoreOptions`](crate::StoreOptions) is defaulted.
///
/// Cost: every retained height keeps the tree nodes its block replaced, about 0.5 KB per updated
/// key (≈10 MB for a block of 20,000 random updates on a 100,000-key tree), so the default keeps
/// up to ~10 GB at that load. Lower it for small disks; it must be at least 1.
pub const HISTORY_HEIGHTS_DEFAULT: u64 = 1_000;

/// Heights between prunes when [`StoreOptions`](crate::StoreOptions) is defaulted.
///
/// Pruning one height deletes nodes spread over the pages of many older heights; pruning eight
/// at once rewrites each such page about once instead of eight times. At 20,000 random updates
/// per block this halves the bytes a commit writes (about 40 MB to 21 MB), for at most 7 extra
/// provable heights and a prune commit every 8 heights that does 8 heights of deletes.
pub const PRUNE_INTERVAL_HEIGHTS_DEFAULT: u64 = 8;

/// redb cache used when [`StoreOptions`](crate::StoreOptions) is defaulted, in bytes. It only
/// fills as pages are read; tree nodes near the root stay hot.
pub const CACHE_BYTES_DEFAULT: u64 = 512 << 20;

/// redb refuses pairs over 3 GiB; a flat-table pair is key + version + value.
const REDB_PAIR_BYTES_MAX: u64 = 3 << 30;

const _: () = assert!(KEY_BYTES_MAX as u64 + 8 + VALUE_BYTES_MAX as u64 <= REDB_PAIR_BYTES_MAX);
const _: () = assert!(BLOCK_BYTES_MAX as u64 <= REDB_PAIR_BYTES_MAX);
const _: () = assert!(RECEIPT_BYTES_MAX as u64 + 12 <= REDB_PAIR_BYTES_MAX);
const _: () = assert!(HISTORY_HEIGHTS_DEFAULT >= 1);
const _: () = assert!(PRUNE_INTERVAL_HEIGHTS_DEFAULT >= 1);
const _: () = assert!(PRUNE_INTERVAL_HEIGHTS_DEFAULT <= HISTORY_HEIGHTS_DEFAULT);
