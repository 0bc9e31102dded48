//! The crate's error type.

use std::path::PathBuf;

/// Why an agent operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// No answer from a node or a provider endpoint.
    #[error("cannot reach {url}: {cause}")]
    Unreachable {
        /// The URL asked.
        url: String,
        /// What the transport said.
        cause: String,
    },
    /// The server answered with an error status.
    #[error("{url} answered {status}: {message} ({code})")]
    Rejected {
        /// The URL asked.
        url: String,
        /// HTTP status.
        status: u16,
        /// The stable error code (`unknown` if the body had none).
        code: String,
        /// The message.
        message: String,
    },
    /// The answer was not what the endpoint promises.
    #[error("unexpected answer from {url}: {cause}")]
    BadResponse {
        /// The URL asked.
        url: String,
        /// What was wrong.
        cause: String,
    },
    /// A transaction was included but failed.
    #[error("transaction {hash} failed in block {height}: {message} ({code})")]
    TxFailed {
        /// Its hash, hex.
        hash: String,
        /// The block.
        height: u64,
        /// The stable error code.
        code: String,
        /// The message.
        message: String,
    },
    /// A transaction was not committed in time.
    #[error("transaction {hash} not committed after {secs} s")]
    TxTimeout {
        /// Its hash, hex.
        hash: String,
        /// Seconds waited.
        secs: u64,
    },
    /// A job's stored spec does not decode, or disagrees with the job record.
    #[error("job {job}: bad spec: {reason}")]
    BadSpec {
        /// The job.
        job: u64,
        /// What is wrong.
        reason: String,
    },
    /// A job cannot be worked on as it is.
    #[error("job {job}: {reason}")]
    Job {
        /// The job.
        job: u64,
        /// What is wrong.
        reason: String,
    },
    /// A behaviour string did not parse.
    #[error("unknown behaviour {text:?}: {reason}")]
    Behaviour {
        /// What was given.
        text: String,
        /// Why it is refused (lists the known ones).
        reason: String,
    },
    /// Training, replay or model execution failed.
    #[error(transparent)]
    Train(#[from] poi_repops::train::TrainError),
    /// A checkpoint, digest or proof failed to decode or verify.
    #[error(transparent)]
    Commit(#[from] poi_repops::commit::CommitError),
    /// A file of the agent's directory.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file of the agent's directory holds bad JSON.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// The provider's HTTP server could not start.
    #[error("cannot serve on {addr}: {cause}")]
    Serve {
        /// The address.
        addr: String,
        /// The cause.
        cause: String,
    },
}

impl AgentError {
    /// An I/O error on `path`.
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> AgentError + '_ {
        move |source| AgentError::Io {
            path: path.to_owned(),
            source,
        }
    }

    /// The stable code of a rejection or failed transaction, if this is one.
    pub fn code(&self) -> Option<&str> {
        match self {
            AgentError::Rejected { code, .. } | AgentError::TxFailed { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, AgentError>;
