//! Typed errors of the node.

use std::path::{Path, PathBuf};

use poi_core::error::StateError;
use poi_store::StoreError;

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, NodeError>;

/// What can go wrong running a node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// State read failed during execution.
    #[error(transparent)]
    State(#[from] StateError),
    /// A file-system operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What we tried.
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The genesis file is invalid or does not match the data directory.
    #[error("genesis: {0}")]
    Genesis(String),
    /// The node configuration is invalid.
    #[error("config: {0}")]
    Config(String),
    /// A block cannot be built or verified on the current tip (not yet, or never).
    #[error("block parent {parent} is not the committed tip")]
    NotOnTip {
        /// Parent hash, hex.
        parent: String,
    },
    /// A block we were asked about is not known here.
    #[error("unknown block {0}")]
    UnknownBlock(String),
    /// A peer's block is invalid.
    #[error("invalid block: {0}")]
    InvalidBlock(String),
    /// Stored data does not decode: the data directory is damaged.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// Safety violation: the node must stop rather than continue on a broken chain.
    #[error("halting: {0}")]
    Halt(String),
    /// Block execution failed.
    #[error(transparent)]
    Block(#[from] poi_core::chain::BlockError),
    /// Consensus failed to start or stopped.
    #[error("consensus: {0}")]
    Consensus(String),
}

impl NodeError {
    /// An I/O error with its action and path.
    pub fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        NodeError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}
