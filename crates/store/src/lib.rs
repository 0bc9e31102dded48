//! Persist chain state in redb and prove it with a Jellyfish Merkle root.
//!
//! ## Feature Flags
//!
//! None.
//!
//! Stability: ALPHA; the API and the on-disk [`format`](mod@format) may change.
//!
//! # Model
//!
//! The store is a generic, byte-oriented, versioned key-value map. A version is a block height.
//! Each block goes through two steps:
//!
//! 1. [`Store::prepare`] applies a write set (`None` deletes) on top of the latest committed
//!    state in memory and returns a [`Prepared`] with the new Jellyfish Merkle root. Nothing is
//!    written, so a proposer may prepare and throw away.
//! 2. [`Store::commit`] writes the prepared tree nodes, the flat latest-state table, the block,
//!    its transaction index and the new latest height in one durable redb transaction.
//!
//! Reads of the latest state ([`Store::get`], [`Store::scan_prefix`]) use the flat table and
//! never walk the tree. [`Store::get_with_proof`] walks the tree of any retained height and
//! returns a [`StateProof`] that [`verify_proof`] checks against that height's root.
//!
//! Keys are hashed with SHA-256 into the tree; the empty tree's root is [`EMPTY_ROOT`]. A block
//! with no writes still creates its version, with the parent's root.
//!
//! # Pruning
//!
//! At least the last [`StoreOptions::history_heights`] heights stay provable. Once the window
//! has moved [`StoreOptions::prune_interval_heights`] past the oldest provable height, a commit
//! deletes the tree nodes that only older heights reach, using the stale node lists the updates
//! recorded; blocks, transactions and roots ([`Store::root_at`]) are kept forever.
//!
//! # Example
//!
//! ```
//! use std::collections::BTreeMap;
//! use poi_store::{BlockCommit, Store, verify_proof};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(&dir.path().join("state.redb"))?;
//! let writes = BTreeMap::from([(b"alice".to_vec(), Some(b"10".to_vec()))]);
//! let prepared = store.prepare(0, &writes)?;
//! let block = BlockCommit { height: 0, hash: [1; 32], bytes: vec![], txs: vec![] };
//! let committed = store.commit(&prepared, block)?;
//! let (value, proof) = store.get_with_proof(b"alice", 0)?;
//! verify_proof(committed.state_root, b"alice", value.as_deref(), &proof)?;
//! # Ok(())
//! # }
//! ```

mod error;
pub mod format;
pub mod limits;
mod proof;
mod store;
mod tree;
mod update;
mod write;

pub use error::{Result, StoreError};
pub use proof::{StateProof, verify_proof};
pub use store::{Committed, Snapshot, Store, StoreOptions, TxRecord};
pub use tree::EMPTY_ROOT;
pub use write::{BlockCommit, Prepared};
