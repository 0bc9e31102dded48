//! Typed errors of the store.
//!
//! Owns: [`StoreError`] and the [`Result`] alias. Invariants: every failure caused by a caller,
//! by the file system or by a peer's bytes is one of these variants; panics are reserved for
//! broken invariants of this crate.

use std::path::PathBuf;

/// Result alias used by every fallible function of this crate.
pub type Result<T> = std::result::Result<T, StoreError>;

/// Everything that can go wrong while reading, writing or proving state.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another process (or another [`Store`](crate::Store) in this one) holds the file lock.
    #[error("cannot open store {}: locked by another process", path.display())]
    Locked {
        /// The redb file that could not be locked.
        path: PathBuf,
    },

    /// The file was written with an on-disk format this build does not read.
    #[error(
        "store format version {found} is not supported (this build reads version {expected}): the data directory was written by another poi version; start a new home or resync it"
    )]
    UnsupportedFormat {
        /// Format version recorded in the file.
        found: u32,
        /// Format version this build writes, [`FORMAT_VERSION`](crate::format::FORMAT_VERSION).
        expected: u32,
    },

    /// A [`StoreOptions`](crate::StoreOptions) field is out of range.
    #[error("invalid store option {name}: {reason}")]
    InvalidOption {
        /// Field name.
        name: &'static str,
        /// Why it was refused.
        reason: &'static str,
    },

    /// `prepare` was asked for a height that is not the next one.
    #[error("cannot prepare height {got}: expected height {expected}")]
    UnexpectedHeight {
        /// The only height that may be prepared now.
        expected: u64,
        /// The height that was asked for.
        got: u64,
    },

    /// The height cannot be used as a version (`u64::MAX` is reserved by the tree).
    #[error("height {height} is out of range")]
    HeightOutOfRange {
        /// The refused height.
        height: u64,
    },

    /// `commit` got a [`Prepared`](crate::Prepared) that was not built on the latest state.
    #[error("prepared height {prepared} is stale: latest committed height is {latest:?}")]
    StalePrepared {
        /// Height the prepared state is for.
        prepared: u64,
        /// Latest committed height, `None` when nothing is committed.
        latest: Option<u64>,
    },

    /// The block record and the prepared state name different heights.
    #[error("block height {block} does not match prepared height {prepared}")]
    BlockHeightMismatch {
        /// Height in the [`Prepared`](crate::Prepared).
        prepared: u64,
        /// Height in the [`BlockCommit`](crate::BlockCommit).
        block: u64,
    },

    /// A block with this hash is already stored.
    #[error("block hash {hash} is already stored at height {height}")]
    DuplicateBlockHash {
        /// Hex of the block hash.
        hash: String,
        /// Height that already carries it.
        height: u64,
    },

    /// A transaction with this hash is already indexed.
    #[error("transaction hash {hash} is already indexed")]
    DuplicateTx {
        /// Hex of the transaction hash.
        hash: String,
    },

    /// An input is larger than its documented cap (see [`crate::limits`]).
    #[error("{what} is {size} bytes or items, over the limit of {max}")]
    TooLarge {
        /// Which input: `key`, `value`, `writes`, `block`, `txs` or `receipt`.
        what: &'static str,
        /// Its size.
        size: u64,
        /// The cap.
        max: u64,
    },

    /// Proofs for this height were pruned.
    #[error("height {height} is pruned: oldest provable height is {oldest}")]
    Pruned {
        /// The requested height.
        height: u64,
        /// Oldest height that still has proofs.
        oldest: u64,
    },

    /// The height is above the latest committed one.
    #[error("height {height} is not committed: latest committed height is {latest:?}")]
    NotCommitted {
        /// The requested height.
        height: u64,
        /// Latest committed height, `None` when nothing is committed.
        latest: Option<u64>,
    },

    /// A proof does not verify against the given root, key and value.
    #[error("proof does not verify: {reason}")]
    ProofInvalid {
        /// The verifier's explanation.
        reason: String,
    },

    /// Proof bytes are not a borsh-encoded [`StateProof`](crate::StateProof).
    #[error("cannot decode proof: {0}")]
    ProofDecode(#[source] std::io::Error),

    /// A stored record does not decode; the file was altered outside this crate.
    #[error("store is corrupt: {what}")]
    Corrupt {
        /// The record that failed to decode.
        what: String,
    },

    /// The Jellyfish Merkle tree reported an error.
    #[error("merkle tree error: {0}")]
    Tree(#[source] anyhow::Error),

    /// redb reported an error (I/O, storage, transaction).
    #[error("database error: {0}")]
    Db(#[from] redb::Error),
}

impl StoreError {
    /// Builds [`StoreError::Corrupt`] for the record named by `what`.
    pub(crate) fn corrupt(what: impl Into<String>) -> Self {
        Self::Corrupt { what: what.into() }
    }

    /// Recovers a typed error that crossed the tree's `anyhow` boundary.
    pub(crate) fn from_tree(err: anyhow::Error) -> Self {
        match err.downcast::<StoreError>() {
            Ok(typed) => typed,
            Err(other) => Self::Tree(other),
        }
    }
}

macro_rules! from_redb {
    ($($ty:ty),* $(,)?) => {
        $(impl From<$ty> for StoreError {
            fn from(err: $ty) -> Self {
                Self::Db(redb::Error::from(err))
            }
        })*
    };
}

from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lowercase() {
        let errors = [
            StoreError::Locked {
                path: PathBuf::from("/x/state.redb"),
            },
            StoreError::UnexpectedHeight {
                expected: 3,
                got: 5,
            },
            StoreError::Pruned {
                height: 1,
                oldest: 9,
            },
            StoreError::corrupt("meta latest"),
        ];
        for err in errors {
            let text = err.to_string();
            let first = text.chars().next();
            assert!(first.is_some_and(|c| c.is_lowercase()), "{text}");
        }
    }

    #[test]
    fn typed_error_survives_anyhow() {
        let err = anyhow::Error::from(StoreError::corrupt("node"));
        let err = err.context("failed to insert key");
        assert!(matches!(
            StoreError::from_tree(err),
            StoreError::Corrupt { .. }
        ));
    }
}
