//! Owns: [`verify_segment`] (what a validator runs) and [`replay`] (the same on a job
//! directory): check the committed digests against the root, the checkpoint against its leaf,
//! then re-execute steps and compare every digest bit for bit.

use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::files::{self, DIGESTS_FILE, JOB_FILE};
use super::{JobSpec, Result, TrainError, Trainer, job_spec_hash};
use crate::backend::Backend;
use crate::commit::{CheckpointProof, Digest, merkle_proof, merkle_root, read_checkpoint};
use crate::exec::Exec;

/// The first step whose recomputed digest differs from the committed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mismatch {
    /// The step.
    pub step: u64,
    /// The committed digest.
    pub expected: Digest,
    /// The recomputed digest.
    pub computed: Digest,
}

/// The outcome of re-executing a segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentReport {
    /// Whether every re-executed digest matched.
    pub ok: bool,
    /// The job.
    pub job_spec_hash: Digest,
    /// The committed root the segment was checked against.
    pub root: Digest,
    /// The checkpoint's step.
    pub from: u64,
    /// Steps requested.
    pub steps: u64,
    /// Steps re-executed and compared.
    pub checked: u64,
    /// The first differing step, if any.
    pub first_mismatch: Option<Mismatch>,
    /// Wall time of the re-execution, seconds (loading and proofs excluded).
    pub seconds: f64,
    /// Deterministic FLOPs re-executed.
    pub flops: u64,
}

/// Re-executes `steps` steps of `spec` from the checkpoint at `checkpoint` (which must hold
/// step `from` when given) against the committed `digests` (all `spec.steps + 1` of them)
/// and `root`.
pub fn verify_segment(
    spec: &JobSpec,
    (checkpoint, from): (&Path, Option<u64>),
    digests: &[Digest],
    root: &Digest,
    steps: u64,
    backend: &dyn Backend,
) -> Result<SegmentReport> {
    let committed = (digests, root);
    Ok(replay_segment(spec, (checkpoint, from), committed, steps, backend)?.0)
}

/// [`verify_segment`], also returning the trainer where it stopped (after the last step
/// checked: the end of the segment when every digest matched).
pub(super) fn replay_segment(
    spec: &JobSpec,
    (checkpoint, from): (&Path, Option<u64>),
    (digests, root): (&[Digest], &Digest),
    steps: u64,
    backend: &dyn Backend,
) -> Result<(SegmentReport, Trainer)> {
    spec.validate()?;
    let computed = merkle_root(digests);
    if computed != *root {
        return Err(TrainError::RootMismatch {
            root: *root,
            computed,
        });
    }
    if digests.len() as u64 != spec.steps + 1 {
        return Err(TrainError::invalid(
            "digests",
            format!(
                "{} digests for a job of {} steps (expected steps + 1)",
                digests.len(),
                spec.steps
            ),
        ));
    }
    let ckpt = read_checkpoint(checkpoint, None)?;
    let job_hash = job_spec_hash(spec);
    if ckpt.meta.job_spec_hash != job_hash {
        return Err(TrainError::WrongJob {
            expected: job_hash,
            found: ckpt.meta.job_spec_hash,
        });
    }
    if let Some(expected) = from
        && expected != ckpt.meta.step
    {
        return Err(TrainError::CheckpointStep {
            expected,
            found: ckpt.meta.step,
        });
    }
    let from = ckpt.meta.step;
    let end = from.checked_add(steps).filter(|&e| e <= spec.steps);
    let Some(end) = end else {
        return Err(TrainError::StepOutOfRange {
            step: from.saturating_add(steps),
            steps: spec.steps,
        });
    };
    let proof = CheckpointProof {
        step_digest: digests[from as usize],
        proof: merkle_proof(digests, from)?,
    };
    proof.verify(&ckpt, root)?;
    let mut trainer = Trainer::from_checkpoint(spec, &ckpt)?;
    let mut exec = Exec::new(backend);
    let started = Instant::now();
    let (mut checked, mut first_mismatch) = (0, None);
    for step in from + 1..=end {
        trainer.train_step(&mut exec)?;
        let (computed, expected) = (trainer.digest()?, digests[step as usize]);
        checked += 1;
        if computed != expected {
            first_mismatch = Some(Mismatch {
                step,
                expected,
                computed,
            });
            break;
        }
    }
    let report = SegmentReport {
        ok: first_mismatch.is_none(),
        job_spec_hash: job_hash,
        root: *root,
        from,
        steps,
        checked,
        first_mismatch,
        seconds: started.elapsed().as_secs_f64(),
        flops: exec.meter().total().flops,
    };
    Ok((report, trainer))
}

/// [`verify_segment`] on job directory `out`: its spec, digests, root and the checkpoint of
/// step `from`.
pub fn replay(out: &Path, from: u64, steps: u64, backend: &dyn Backend) -> Result<SegmentReport> {
    let spec = files::read_job(&out.join(JOB_FILE))?;
    let digests = files::read_digests(&out.join(DIGESTS_FILE))?;
    let path = files::checkpoint_path(out, from);
    if !path.exists() {
        let every = spec.checkpoint_every;
        return Err(TrainError::invalid(
            "--from",
            format!(
                "no checkpoint of step {from} in {} (checkpoints are every {every} steps, plus step 0 and the last)",
                out.display()
            ),
        ));
    }
    verify_segment(
        &spec,
        (&path, Some(from)),
        &digests.digests,
        &digests.root,
        steps,
        backend,
    )
}
