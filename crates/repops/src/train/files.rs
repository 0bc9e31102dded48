//! The files of a job directory (layout in [`crate::train`]): reading and writing them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::run::TrainSummary;
use super::{JobSpec, Result, TrainError, job_spec_hash};
use crate::commit::Digest;

/// The spec file.
pub const JOB_FILE: &str = "job.json";
/// The step digests file.
pub const DIGESTS_FILE: &str = "digests.json";
/// The summary file.
pub const SUMMARY_FILE: &str = "summary.json";
/// The checkpoint directory.
pub const CHECKPOINT_DIR: &str = "checkpoints";
/// Largest JSON file read (64 MiB: 2^24 steps of hex digests fit in 1.2 GiB, far beyond
/// what one job directory is meant to hold; larger runs will use a binary digest file).
const JSON_BYTES_MAX: u64 = 64 << 20;

/// `job.json`: the spec and, for readers, its hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct JobFile {
    job_spec_hash: Digest,
    spec: JobSpec,
}

/// `digests.json`: every step digest of a run and their root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DigestsFile {
    /// The job the digests commit.
    pub job_spec_hash: Digest,
    /// Merkle root over `digests`.
    pub root: Digest,
    /// Digest of the state after step `i`, for `i = 0..=steps`.
    pub digests: Vec<Digest>,
}

/// The checkpoint file of step `step` in job directory `out`.
pub fn checkpoint_path(out: &Path, step: u64) -> PathBuf {
    out.join(CHECKPOINT_DIR)
        .join(format!("step-{step:06}.safetensors"))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let len = std::fs::metadata(path).map_err(TrainError::io(path))?.len();
    if len > JSON_BYTES_MAX {
        return Err(TrainError::invalid(
            "file",
            format!("{} is {len} bytes", path.display()),
        ));
    }
    let bytes = std::fs::read(path).map_err(TrainError::io(path))?;
    serde_json::from_slice(&bytes).map_err(|source| TrainError::Json {
        path: path.to_owned(),
        source,
    })
}

pub(super) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).expect("plain data serialises");
    text.push('\n');
    let temp = path.with_extension("json.tmp");
    std::fs::write(&temp, text).map_err(TrainError::io(&temp))?;
    std::fs::rename(&temp, path).map_err(TrainError::io(path))
}

pub(super) fn write_job(out: &Path, spec: &JobSpec) -> Result<()> {
    let file = JobFile {
        job_spec_hash: job_spec_hash(spec),
        spec: spec.clone(),
    };
    write_json(&out.join(JOB_FILE), &file)
}

/// Reads a spec from `job.json` (or a bare spec JSON) and validates it. The hash written
/// beside it is ignored: it is recomputed from the spec.
pub fn read_job(path: &Path) -> Result<JobSpec> {
    let value: serde_json::Value = read_json(path)?;
    let inner = value.get("spec").cloned().unwrap_or(value);
    let spec: JobSpec = serde_json::from_value(inner).map_err(|source| TrainError::Json {
        path: path.to_owned(),
        source,
    })?;
    spec.validate()?;
    Ok(spec)
}

/// Reads `digests.json`.
pub fn read_digests(path: &Path) -> Result<DigestsFile> {
    read_json(path)
}

/// Reads `summary.json`.
pub fn read_summary(path: &Path) -> Result<TrainSummary> {
    read_json(path)
}
