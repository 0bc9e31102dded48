//! An agent's directory and the job records a provider keeps there.
//!
//! # Layout
//! ```text
//! HOME/agents/<name>/jobs/<id>/train/          the repops job directory (train_job's output)
//! HOME/agents/<name>/jobs/<id>/record.json     what was committed (JobRecord), once computed
//! HOME/agents/<name>/jobs/<id>/requests.json   an inference job's requests, as posted
//! HOME/agents/<name>/models/<job>.safetensors  a validator's or provider's fetched models
//! ```
//! `record.json` is written (atomically) before the commit is sent, so a restarted provider
//! re-sends the same commit and keeps serving the same digests.

use std::path::{Path, PathBuf};

use poi_repops::commit::Digest;
use serde::{Deserialize, Serialize};

use crate::wire::RequestsBody;
use crate::{AgentError, Result};

/// What a provider committed for a job (the digests it serves are these, faked or not).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobRecord {
    /// A training job.
    Training {
        /// The job.
        job: u64,
        /// Every committed step digest (`S + 1`).
        digests: Vec<Digest>,
        /// Their root.
        root: Digest,
        /// The final parameters' digest.
        params_digest: Digest,
        /// The final optimizer state's digest.
        opt_digest: Digest,
    },
    /// An inference job.
    Inference {
        /// The job.
        job: u64,
        /// The model's params digest.
        params_digest: Digest,
        /// Requests, hex.
        requests: Vec<String>,
        /// Outputs, hex.
        outputs: Vec<String>,
        /// Output leaf digests.
        leaves: Vec<Digest>,
        /// Their root.
        root: Digest,
    },
}

/// An agent's directory.
#[derive(Debug, Clone)]
pub struct AgentDir {
    root: PathBuf,
}

impl AgentDir {
    /// `home/agents/<name>`.
    pub fn new(home: &Path, name: &str) -> Self {
        Self {
            root: home.join("agents").join(name),
        }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Job `id`'s directory.
    pub fn job_dir(&self, id: u64) -> PathBuf {
        self.root.join("jobs").join(id.to_string())
    }

    /// Job `id`'s repops directory.
    pub fn train_dir(&self, id: u64) -> PathBuf {
        self.job_dir(id).join("train")
    }

    /// Where fetched model checkpoints are cached.
    pub fn models_dir(&self) -> PathBuf {
        self.root.join("models")
    }

    /// Job `id`'s record, if written.
    pub fn record(&self, id: u64) -> Result<Option<JobRecord>> {
        read_json(&self.job_dir(id).join("record.json"))
    }

    /// Writes job `id`'s record.
    pub fn write_record(&self, record: &JobRecord) -> Result<()> {
        let id = match record {
            JobRecord::Training { job, .. } | JobRecord::Inference { job, .. } => *job,
        };
        write_json(&self.job_dir(id).join("record.json"), record)
    }

    /// Job `id`'s posted requests, if any.
    pub fn requests(&self, id: u64) -> Result<Option<RequestsBody>> {
        read_json(&self.job_dir(id).join("requests.json"))
    }

    /// Stores job `id`'s requests.
    pub fn write_requests(&self, id: u64, body: &RequestsBody) -> Result<()> {
        write_json(&self.job_dir(id).join("requests.json"), body)
    }
}

pub(crate) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| AgentError::Json {
                path: path.to_owned(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AgentError::io(path)(e)),
    }
}

pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(AgentError::io(dir))?;
    let text = serde_json::to_vec_pretty(value).map_err(|source| AgentError::Json {
        path: path.to_owned(),
        source,
    })?;
    let temp = path.with_extension("json.tmp");
    std::fs::write(&temp, text).map_err(AgentError::io(&temp))?;
    std::fs::rename(&temp, path).map_err(AgentError::io(path))
}
