//! The error type of [`crate::commit`]: bad tensors, corrupt checkpoints, failed proofs.

use std::path::PathBuf;

use super::digest::Digest;

/// Result alias for the commit module.
pub type Result<T> = std::result::Result<T, CommitError>;

/// Everything that can go wrong when digesting, checkpointing or proving.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// A tensor's shape does not describe its data.
    #[error("tensor `{name}` has shape {shape:?} ({elements} elements) but {data_len} values")]
    ShapeMismatch {
        /// Tensor name.
        name: String,
        /// The declared shape.
        shape: Vec<usize>,
        /// The product of the shape (saturating).
        elements: u64,
        /// The number of values supplied.
        data_len: u64,
    },
    /// Two tensors in one group share a name.
    #[error("duplicate tensor name `{name}`")]
    DuplicateName {
        /// The repeated name.
        name: String,
    },
    /// A hex string is not 64 hex digits.
    #[error("invalid digest hex `{text}`: expected 64 hex digits")]
    BadHex {
        /// The text that failed to parse.
        text: String,
    },
    /// Reading or writing a file failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The safetensors layer rejected the file (truncated, bad header, bad offsets).
    #[error("invalid safetensors checkpoint: {0}")]
    Safetensors(#[from] safetensors::SafeTensorError),
    /// A metadata entry is missing or has a bad value.
    #[error("checkpoint metadata `{key}`: {reason}")]
    Metadata {
        /// The metadata key.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The tensors in the file do not match the names listed in the metadata.
    #[error("checkpoint tensor `{name}`: {reason}")]
    Tensor {
        /// The full tensor name in the file (`param/...` or `opt/...`).
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The digest recomputed from the checkpoint's tensors differs from the one it stores.
    #[error("checkpoint digest mismatch: file says {stored}, tensors hash to {computed}")]
    StoredDigestMismatch {
        /// The digest in the file's metadata.
        stored: Digest,
        /// The digest of the loaded tensors.
        computed: Digest,
    },
    /// The checkpoint is intact but is not the one the caller expected.
    #[error("checkpoint digest mismatch: expected {expected}, tensors hash to {computed}")]
    ExpectedDigestMismatch {
        /// The digest the caller asked for.
        expected: Digest,
        /// The digest of the loaded tensors.
        computed: Digest,
    },
    /// A Merkle proof names a leaf outside its tree.
    #[error("merkle leaf index {index} out of range for {leaf_count} leaves")]
    ProofIndexOutOfRange {
        /// The leaf index.
        index: u64,
        /// The number of leaves.
        leaf_count: u64,
    },
    /// A Merkle proof has the wrong number of siblings for its index and leaf count.
    #[error("merkle proof has {actual} siblings, expected {expected}")]
    ProofLength {
        /// The number the tree shape requires.
        expected: u64,
        /// The number supplied.
        actual: u64,
    },
    /// A Merkle proof does not lead to the committed root.
    #[error("merkle proof leads to root {computed}, committed root is {root}")]
    ProofRootMismatch {
        /// The root the proof was checked against.
        root: Digest,
        /// The root the proof computes.
        computed: Digest,
    },
    /// A checkpoint proof's step digest is not the checkpoint's.
    #[error("checkpoint proof is for digest {proof}, checkpoint digest is {checkpoint}")]
    ProofDigestMismatch {
        /// The digest in the proof.
        proof: Digest,
        /// The checkpoint's recomputed digest.
        checkpoint: Digest,
    },
}
