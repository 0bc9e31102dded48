//! The error type of models, training, replay and operator traces.

use std::path::PathBuf;

use crate::commit::{CommitError, Digest};
use crate::data::DataError;
use crate::tensor::OpError;

/// Result alias for [`crate::train`], [`crate::model`] and [`crate::trace`].
pub type Result<T> = std::result::Result<T, TrainError>;

/// Everything that can go wrong when building, training, replaying or tracing a job.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// An operator rejected its input.
    #[error(transparent)]
    Op(#[from] OpError),
    /// A digest, checkpoint or proof failed.
    #[error(transparent)]
    Commit(#[from] CommitError),
    /// A dataset could not be loaded or sampled.
    #[error(transparent)]
    Data(#[from] DataError),
    /// Reading or writing a file failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A JSON file does not parse as what it should hold.
    #[error("{path}: invalid json: {source}")]
    Json {
        /// The file involved.
        path: PathBuf,
        /// The parser's complaint.
        source: serde_json::Error,
    },
    /// A job spec or option is invalid.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What was invalid (`steps`, `model`, ...).
        what: &'static str,
        /// Why, quoting the value.
        reason: String,
    },
    /// Tensors loaded from a file do not fit the model the spec describes.
    #[error("parameter `{name}`: {reason}")]
    ParamMismatch {
        /// The parameter (or optimizer buffer) name.
        name: String,
        /// What differs.
        reason: String,
    },
    /// A checkpoint does not belong to the job being replayed.
    #[error("checkpoint is for job {found}, expected job {expected}")]
    WrongJob {
        /// The job spec hash of the spec given.
        expected: Digest,
        /// The hash stored in the checkpoint.
        found: Digest,
    },
    /// A checkpoint holds another step than the one asked for.
    #[error("checkpoint holds step {found}, expected step {expected}")]
    CheckpointStep {
        /// The step asked for.
        expected: u64,
        /// The step inside the checkpoint.
        found: u64,
    },
    /// Committed digests do not hash to the committed root.
    #[error("committed digests hash to root {computed}, committed root is {root}")]
    RootMismatch {
        /// The root claimed.
        root: Digest,
        /// The root of the digest list.
        computed: Digest,
    },
    /// A requested step or segment lies outside the committed run.
    #[error("step {step} is outside the committed run of {steps} steps")]
    StepOutOfRange {
        /// The requested step.
        step: u64,
        /// Steps committed.
        steps: u64,
    },
    /// The rayon pool could not be built.
    #[error("cannot start {threads} threads: {reason}")]
    Threads {
        /// Requested thread count.
        threads: usize,
        /// The builder's complaint.
        reason: String,
    },
    /// Re-executing a committed step did not reproduce its committed digest.
    #[error("step {step} re-executes to digest {computed}, the committed digest is {expected}")]
    Diverged {
        /// The step.
        step: u64,
        /// The committed digest.
        expected: Digest,
        /// The recomputed digest.
        computed: Digest,
    },
    /// A recorded operator file is malformed.
    #[error("operator file: {reason}")]
    OpFile {
        /// What is wrong.
        reason: String,
    },
}

impl TrainError {
    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            what,
            reason: reason.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
