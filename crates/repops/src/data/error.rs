//! The error type of [`crate::data`]: bad records, corrupt shards and manifests, bad
//! arguments to samplers and tokenizers.

use std::path::PathBuf;

use crate::commit::Digest;

/// Result alias for the data module.
pub type Result<T> = std::result::Result<T, DataError>;

/// Everything that can go wrong when building, storing, loading or sampling a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Reading or writing a file failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A size is over its documented cap.
    #[error("{what} is {value}, over the limit of {max}")]
    Limit {
        /// What was too large.
        what: &'static str,
        /// Its size.
        value: u64,
        /// The cap.
        max: u64,
    },
    /// A schema is not valid for its record kind.
    #[error("invalid schema: {reason}")]
    Schema {
        /// What is wrong.
        reason: String,
    },
    /// A record does not fit the dataset's schema.
    #[error("record {index}: {reason}")]
    Record {
        /// Position of the record in the batch being added.
        index: u64,
        /// What is wrong.
        reason: String,
    },
    /// A shard's bytes do not parse.
    #[error("{shard}: malformed: {reason}")]
    ShardMalformed {
        /// Which shard, e.g. `shard 3 (3fa1...)`.
        shard: String,
        /// What is wrong.
        reason: String,
    },
    /// A shard's bytes do not hash to the id the manifest lists.
    #[error("shard {index}: corrupt: manifest says {expected}, file hashes to {actual}")]
    ShardHashMismatch {
        /// Position of the shard in the manifest.
        index: u32,
        /// The id in the manifest.
        expected: Digest,
        /// The hash of the bytes found.
        actual: Digest,
    },
    /// The same shard appears twice in one dataset.
    #[error("shard {id} appears twice in the dataset")]
    DuplicateShard {
        /// The repeated shard id.
        id: Digest,
    },
    /// A manifest's bytes do not parse.
    #[error("malformed manifest: {reason}")]
    ManifestMalformed {
        /// What is wrong.
        reason: String,
    },
    /// The manifest is intact but is not the dataset the caller asked for.
    #[error("dataset id mismatch: expected {expected}, manifest hashes to {actual}")]
    DatasetIdMismatch {
        /// The id the caller expected.
        expected: Digest,
        /// The hash of the manifest found.
        actual: Digest,
    },
    /// A dataset or a split of it has no records.
    #[error("dataset `{name}`: {what} is empty")]
    Empty {
        /// The dataset's name.
        name: String,
        /// What is empty (`dataset`, `train split`, `eval split`).
        what: &'static str,
    },
    /// A dataset of one kind was used where another was needed.
    #[error("dataset `{name}` holds {found} records, expected {expected}")]
    KindMismatch {
        /// The dataset's name.
        name: String,
        /// The kind needed.
        expected: &'static str,
        /// The kind found.
        found: &'static str,
    },
    /// A shipped source dataset has a value this code does not map.
    #[error("source dataset `{dataset}` row {row}: {reason}")]
    Source {
        /// The dataset.
        dataset: &'static str,
        /// The row.
        row: u64,
        /// What is wrong.
        reason: String,
    },
    /// Text contains a character outside the tokenizer's vocabulary.
    #[error("character {ch:?} at byte {offset} is not in the vocabulary")]
    UnknownChar {
        /// The character.
        ch: char,
        /// Its byte offset in the text.
        offset: u64,
    },
    /// A token id is outside the vocabulary.
    #[error("token {token} is outside the vocabulary of {vocab_size}")]
    UnknownToken {
        /// The token id.
        token: u32,
        /// The vocabulary size.
        vocab_size: u32,
    },
    /// A token stream is too short for the windows asked for.
    #[error("{have} tokens are too few for windows of context {context} (need {need})")]
    TooFewTokens {
        /// Tokens available.
        have: u64,
        /// Tokens needed.
        need: u64,
        /// The context length.
        context: u32,
    },
    /// An output buffer has the wrong length.
    #[error("buffer `{what}` has {actual} elements, expected {expected}")]
    BufferSize {
        /// Which buffer.
        what: &'static str,
        /// The length needed.
        expected: u64,
        /// The length supplied.
        actual: u64,
    },
    /// An argument is out of its valid range.
    #[error("invalid {what}: {reason}")]
    InvalidArgument {
        /// Which argument.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
}
