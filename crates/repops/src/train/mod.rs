//! Training jobs: the job spec and its hash, the training loop that commits to every step,
//! checkpoints, replay of committed segments, and the thread pool training runs in.
//!
//! Owns: [`JobSpec`] (canonical encoding, [`job_spec_hash`]), [`Trainer`], [`train_job`],
//! [`verify_segment`], [`replay`], the on-disk layout of a job directory, and what a party
//! serves in a dispute: [`StepReplay`], [`trace_step`].
//!
//! Invariants:
//! - the state after step `s` (`s = 0` is the initial state) is a pure function of the spec;
//!   its [`crate::commit::step_digest`] is leaf `s` of the job's Merkle tree, so a job of `S`
//!   steps commits `S + 1` leaves;
//! - step `s >= 1` reads the minibatch of data index `s - 1` (seeded by the spec's seed) and
//!   updates with optimizer step `t = s`; nothing it does depends on the thread count;
//! - a replay trusts nothing it loads: digests must hash to the root, the checkpoint must be
//!   the committed leaf (a [`crate::commit::CheckpointProof`]), and every re-executed step must
//!   reproduce its committed digest bit for bit;
//! - a served trace of step `s` ([`trace_step`]) is re-executed from the verified checkpoint
//!   that starts `s`'s segment and ends at the committed digest of `s`.
//!
//! # Job spec encoding
//!
//! `job_spec_hash = blake3(encoding)`, every integer u64 LE, every string `len u64 | UTF-8`,
//! every f32 as its bits (u32 LE):
//!
//! ```text
//! "poi/repops/job/v1" | model kind | model fields | dataset name | dataset id [32]
//!   | steps | seed | batch | optimizer kind | optimizer f32 fields | checkpoint_every
//! mlp fields:    count | width * count | activation name
//! charlm fields: d_model | heads | layers | context | d_ff
//! adamw fields:  lr | beta1 | beta2 | eps | weight_decay      sgd: lr | momentum | weight_decay
//! ```
//!
//! # Job directory
//!
//! ```text
//! OUT/job.json                         the spec (JSON) and its hash
//! OUT/digests.json                     {"job_spec_hash","root","digests":[S + 1 hex digests]}
//! OUT/summary.json                     root, final digest, metrics, metering, timings
//! OUT/checkpoints/step-NNNNNN.safetensors   every checkpoint_every steps, step 0 and the last
//! ```
//!
//! Stability: ALPHA; the spec encoding is versioned by its domain tag.

mod dispute;
mod error;
mod files;
mod replay;
mod run;
mod spec;
mod trainer;

pub use dispute::{StepReplay, StepTrace, trace_step};
pub use error::{Result, TrainError};
pub use files::{
    CHECKPOINT_DIR, DIGESTS_FILE, DigestsFile, JOB_FILE, SUMMARY_FILE, checkpoint_path,
    read_digests, read_job, read_summary,
};
pub use replay::{Mismatch, SegmentReport, replay, verify_segment};
pub use run::{OpTime, Progress, TrainSummary, train_job};
pub use spec::{
    BATCH_MAX, JOB_DOMAIN, JobSpec, OptimizerSpec, STEPS_MAX, job_spec_hash, resolve_dataset,
};
pub(crate) use trainer::data_shape;
pub use trainer::{EvalReport, OwnedBatch, Trainer, step_batch};

/// The environment variable that sets the training thread count.
pub const THREADS_ENV: &str = "POI_THREADS";
/// Most threads a pool may have.
pub const THREADS_MAX: usize = 1024;

/// The thread count from `POI_THREADS`, or the number of available cores when unset.
pub fn threads_from_env() -> Result<usize> {
    match std::env::var(THREADS_ENV) {
        Ok(text) => match text.trim().parse::<usize>() {
            Ok(n) if (1..=THREADS_MAX).contains(&n) => Ok(n),
            _ => Err(TrainError::invalid(
                "POI_THREADS",
                format!("`{text}` is not a thread count in 1..={THREADS_MAX}"),
            )),
        },
        Err(_) => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

/// Runs `f` inside a fresh rayon pool of `threads` threads (every parallel kernel then
/// splits its work over that pool; results are the same for any count).
pub fn with_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> Result<R> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| TrainError::Threads {
            threads,
            reason: e.to_string(),
        })?;
    Ok(pool.install(f))
}
