//! Typed errors of the consensus driver.
//!
//! Owns: [`ConfigError`] (a [`ConsensusConfig`](super::ConsensusConfig) that commonware would
//! reject, usually by panicking), [`BeaconKeyError`] (beacon key material that cannot be used)
//! and [`ConsensusError`] (everything [`run`](super::run) and [`start`](super::start) can fail
//! with). Invariant: every check that commonware asserts inside
//! `Engine::new` or the p2p network is repeated here first, so a bad configuration is an error,
//! never a panic.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

/// A [`ConsensusConfig`](super::ConsensusConfig) that cannot drive consensus.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The validator set is empty.
    #[error("validator set is empty")]
    NoValidators,
    /// More validators than [`VALIDATORS_MAX`](super::VALIDATORS_MAX).
    #[error("validator set has {count} members, at most {max} are supported")]
    TooManyValidators {
        /// Validators configured.
        count: usize,
        /// The supported maximum.
        max: u32,
    },
    /// A validator public key is not a valid ed25519 point encoding.
    #[error("validator {index} has an invalid ed25519 public key {key}")]
    InvalidValidatorKey {
        /// Position in [`ConsensusConfig::validators`](super::ConsensusConfig::validators).
        index: usize,
        /// The key, hex encoded.
        key: String,
    },
    /// The same public key appears twice in the validator set.
    #[error("validator key {key} appears more than once")]
    DuplicateValidator {
        /// The key, hex encoded.
        key: String,
    },
    /// The signing key of this node is not in the validator set.
    #[error("this node's public key {key} is not in the validator set")]
    NotAValidator {
        /// This node's public key, hex encoded.
        key: String,
    },
    /// A full node's key is in the validator set (a validator must vote with its share).
    #[error("this node's public key {key} is a validator: run it with its beacon share")]
    FullNodeIsValidator {
        /// This node's public key, hex encoded.
        key: String,
    },
    /// A full-node entry names a validator's key, or the same key twice.
    #[error("full node key {key} is a validator or appears more than once")]
    DuplicateFullNode {
        /// The key, hex encoded.
        key: String,
    },
    /// A full-node entry's key is not an ed25519 public key.
    #[error("full node {index} has an invalid ed25519 public key {key}")]
    InvalidFullNodeKey {
        /// Position in the configured list.
        index: usize,
        /// The key, hex encoded.
        key: String,
    },
    /// The namespace (chain id) is empty, so signatures could replay across chains.
    #[error("namespace (chain id) is empty")]
    EmptyNamespace,
    /// `journal_prefix` is empty or has characters other than ASCII letters, digits, `-`, `_`.
    #[error("journal prefix {0:?} must be non-empty ASCII letters, digits, '-' or '_'")]
    JournalPrefix(String),
    /// `timeouts.leader` is zero.
    #[error("leader timeout must be greater than zero")]
    LeaderTimeoutZero,
    /// `timeouts.certification` does not exceed `timeouts.leader`.
    #[error("certification timeout {certification:?} must exceed leader timeout {leader:?}")]
    CertificationNotAfterLeader {
        /// Configured leader timeout.
        leader: Duration,
        /// Configured certification timeout.
        certification: Duration,
    },
    /// `timeouts.nullify_retry` is zero.
    #[error("nullify retry interval must be greater than zero")]
    NullifyRetryZero,
    /// `timeouts.skip` does not exceed both the certification timeout and the nullify retry.
    #[error(
        "skip timeout {skip:?} must exceed certification timeout {certification:?} \
         and nullify retry {nullify_retry:?}"
    )]
    SkipTooShort {
        /// Configured skip timeout.
        skip: Duration,
        /// Configured certification timeout.
        certification: Duration,
        /// Configured nullify retry interval.
        nullify_retry: Duration,
    },
    /// `timeouts.fetch` is zero.
    #[error("fetch timeout must be greater than zero")]
    FetchTimeoutZero,
    /// The block interval is not shorter than the leader timeout, so every paced view would
    /// time out before its proposal is released.
    #[error("block interval {interval:?} must be shorter than leader timeout {leader:?}")]
    BlockIntervalTooLong {
        /// Configured block interval.
        interval: Duration,
        /// Configured leader timeout.
        leader: Duration,
    },
    /// `view_retention` is zero.
    #[error("view retention must be greater than zero")]
    ViewRetentionZero,
    /// `max_block_bytes` is zero or above what the p2p transport can frame.
    #[error("max block size {bytes} bytes is outside 1..={max}")]
    MaxBlockBytes {
        /// Configured maximum block size.
        bytes: u32,
        /// Largest payload the p2p transport supports.
        max: u32,
    },
    /// `worker_threads` is zero.
    #[error("worker thread count must be greater than zero")]
    WorkerThreadsZero,
    /// The beacon polynomial was dealt for a different number of validators.
    #[error("beacon key was dealt for {dealt} validators, the validator set has {validators}")]
    BeaconSetSize {
        /// Validators the polynomial covers.
        dealt: u32,
        /// Validators configured.
        validators: usize,
    },
    /// The beacon polynomial's threshold is not the consensus quorum of the validator set.
    #[error("beacon key threshold is {threshold}, the validator set's quorum is {quorum}")]
    BeaconThreshold {
        /// Signatures the polynomial needs.
        threshold: u32,
        /// Quorum of the validator set (`2f + 1`).
        quorum: u32,
    },
    /// The beacon share belongs to another position in the validator set.
    #[error(
        "beacon share has index {share_index} but this validator is number {position} of the \
         sorted validator set"
    )]
    BeaconShareNotOurs {
        /// Index of the share.
        share_index: u32,
        /// Position of this node's key in the sorted validator set.
        position: u32,
    },
}

/// Beacon key material (a share, a polynomial, a dealing) that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BeaconKeyError {
    /// The share bytes do not decode.
    #[error("beacon share does not decode: {0}")]
    Share(String),
    /// The polynomial bytes do not decode.
    #[error("beacon polynomial does not decode: {0}")]
    Polynomial(String),
    /// The share's index is outside the polynomial's participants.
    #[error("beacon share index {index} is outside the {validators} dealt validators")]
    ShareIndex {
        /// Index of the share.
        index: u32,
        /// Validators the polynomial covers.
        validators: u32,
    },
    /// The share is not a point of the polynomial (a share of another dealing).
    #[error("beacon share {index} does not belong to this polynomial")]
    ShareMismatch {
        /// Index of the share.
        index: u32,
    },
    /// A dealing over no validators or more than [`VALIDATORS_MAX`](super::VALIDATORS_MAX).
    #[error("cannot deal beacon keys to {count} validators")]
    Validators {
        /// Validators given.
        count: usize,
    },
    /// A validator key given to the dealer is not an ed25519 public key.
    #[error("validator {index} has an invalid ed25519 public key {key}")]
    InvalidValidatorKey {
        /// Position in the list given.
        index: usize,
        /// The key, hex encoded.
        key: String,
    },
    /// The same validator key was given to the dealer twice.
    #[error("a validator key appears more than once")]
    DuplicateValidator,
    /// commonware's dealer failed.
    #[error("dealing failed: {0}")]
    Deal(String),
}

/// Why [`run`](super::run) or [`start`](super::start) failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsensusError {
    /// The configuration was rejected before anything started.
    #[error("invalid consensus config: {0}")]
    Config(#[from] ConfigError),
    /// The storage directory could not be created.
    #[error("cannot create storage directory {path}: {source}")]
    StorageDir {
        /// The configured directory.
        path: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// The p2p listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The configured listen address.
        addr: SocketAddr,
        /// The runtime's failure.
        source: commonware_runtime::Error,
    },
    /// The application factory passed to [`run`](super::run) failed.
    #[error("application failed to start: {0}")]
    Application(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Consensus, the driver or the p2p network stopped without a shutdown request.
    #[error("consensus stopped unexpectedly")]
    Stopped,
    /// Tasks did not finish within the shutdown deadline after a shutdown request.
    #[error("shutdown did not complete within {0:?}")]
    ShutdownTimeout(Duration),
}
