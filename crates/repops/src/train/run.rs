//! Owns: [`train_job`], the training loop with its commitments, checkpoints and summary.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::files::{self, DigestsFile, write_json};
use super::{JobSpec, Result, TrainError, Trainer};
use crate::backend::Backend;
use crate::commit::{Digest, MerkleBuilder};
use crate::exec::Exec;
use crate::meter::Meter;

/// What the loop reports after each step.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Steps done.
    pub step: u64,
    /// Steps in the job.
    pub steps: u64,
    /// This step's training loss.
    pub loss: f32,
}

/// Measured time of one operator kind.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OpTime {
    /// Calls.
    pub calls: u64,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Deterministic FLOPs of those calls.
    pub flops: u64,
}

/// The result of a training job (`summary.json`; `--json` prints it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSummary {
    /// `mlp` or `charlm`.
    pub model: String,
    /// The dataset.
    pub dataset: String,
    /// Hash of the job spec.
    pub job_spec_hash: Digest,
    /// Steps trained.
    pub steps: u64,
    /// Merkle root over the `steps + 1` step digests.
    pub root: Digest,
    /// Digest of the final state.
    pub final_digest: Digest,
    /// Loss of the last training step.
    pub final_loss: f32,
    /// Held-out loss (nats).
    pub eval_loss: f64,
    /// Held-out accuracy (MLP).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub eval_accuracy: Option<f64>,
    /// Held-out per-character perplexity (char LM).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub eval_perplexity: Option<f64>,
    /// The unigram baseline's perplexity on the same text (char LM).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub unigram_perplexity: Option<f64>,
    /// Parameters.
    pub params: u64,
    /// Deterministic training FLOPs (every step's operators, see [`crate::meter`]).
    pub flops: u64,
    /// Deterministic training bytes moved.
    pub bytes: u64,
    /// Wall time of the whole job, seconds.
    pub seconds: f64,
    /// Wall time of the training steps alone.
    pub train_seconds: f64,
    /// Wall time of step digests and Merkle pushes.
    pub commit_seconds: f64,
    /// Wall time of writing checkpoints.
    pub checkpoint_seconds: f64,
    /// Wall time of evaluation.
    pub eval_seconds: f64,
    /// Training examples (rows, or tokens for the char LM) per second of training.
    pub examples_per_second: f64,
    /// Threads in the pool.
    pub threads: usize,
    /// Checkpointed steps.
    pub checkpoints: Vec<u64>,
    /// Measured time per operator kind during training.
    pub op_seconds: BTreeMap<String, OpTime>,
}

fn op_times(meter: &Meter) -> BTreeMap<String, OpTime> {
    meter
        .kinds()
        .map(|(k, t)| {
            let time = OpTime {
                calls: t.calls,
                seconds: t.nanos as f64 * 1e-9,
                flops: t.cost.flops,
            };
            (k.name().to_owned(), time)
        })
        .collect()
}

/// Removes checkpoints a previous run left in `dir`, so the directory holds one job.
fn clear_checkpoints(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(TrainError::io(dir)(e)),
    };
    for entry in entries {
        let path = entry.map_err(TrainError::io(dir))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("step-") && name.ends_with(".safetensors") {
            std::fs::remove_file(&path).map_err(TrainError::io(&path))?;
        }
    }
    Ok(())
}

/// Trains `spec` into the job directory `out` (created; checkpoints of an earlier run there
/// are replaced), calling `progress` after every step. Runs on the current rayon pool.
pub fn train_job(
    spec: &JobSpec,
    out: &Path,
    backend: &dyn Backend,
    progress: &mut dyn FnMut(Progress),
) -> Result<TrainSummary> {
    let started = Instant::now();
    spec.validate()?;
    let ckpt_dir = out.join(files::CHECKPOINT_DIR);
    std::fs::create_dir_all(&ckpt_dir).map_err(TrainError::io(&ckpt_dir))?;
    clear_checkpoints(&ckpt_dir)?;
    files::write_job(out, spec)?;

    let mut trainer = Trainer::new(spec)?;
    let mut exec = Exec::new(backend);
    let mut tree = MerkleBuilder::new();
    let mut digests: Vec<Digest> = Vec::with_capacity(spec.steps as usize + 1);
    let (mut checkpoints, mut ckpt_nanos, mut commit_nanos, mut train_nanos) =
        (vec![0], 0u128, 0u128, 0u128);
    let t = Instant::now();
    let d0 = trainer.write_checkpoint(&files::checkpoint_path(out, 0))?;
    ckpt_nanos += t.elapsed().as_nanos();
    tree.push(&d0);
    digests.push(d0);
    let mut loss = f32::NAN;
    for step in 1..=spec.steps {
        let t = Instant::now();
        loss = trainer.train_step(&mut exec)?;
        train_nanos += t.elapsed().as_nanos();
        let t = Instant::now();
        let digest = if spec.is_checkpoint(step) {
            let d = trainer.write_checkpoint(&files::checkpoint_path(out, step))?;
            ckpt_nanos += t.elapsed().as_nanos();
            checkpoints.push(step);
            d
        } else {
            let d = trainer.digest()?;
            commit_nanos += t.elapsed().as_nanos();
            d
        };
        let t = Instant::now();
        tree.push(&digest);
        commit_nanos += t.elapsed().as_nanos();
        digests.push(digest);
        progress(Progress {
            step,
            steps: spec.steps,
            loss,
        });
    }
    let meter = exec.take_meter();
    let t = Instant::now();
    let mut eval_exec = Exec::new(backend);
    let eval = trainer.evaluate(&mut eval_exec)?;
    let eval_seconds = t.elapsed().as_secs_f64();
    let root = tree.root();
    let job_spec_hash = trainer.job_hash();
    write_json(
        &out.join(files::DIGESTS_FILE),
        &DigestsFile {
            job_spec_hash,
            root,
            digests: digests.clone(),
        },
    )?;
    let cost = meter.total();
    let train_seconds = train_nanos as f64 * 1e-9;
    let per_step = match &spec.model {
        crate::model::ModelSpec::Mlp(_) => u64::from(spec.batch),
        crate::model::ModelSpec::Charlm(c) => u64::from(spec.batch) * u64::from(c.context),
    };
    let summary = TrainSummary {
        model: spec.model.kind().to_owned(),
        dataset: spec.dataset.clone(),
        job_spec_hash,
        steps: spec.steps,
        root,
        final_digest: *digests.last().expect("step 0 is committed"),
        final_loss: loss,
        eval_loss: eval.loss,
        eval_accuracy: eval.accuracy,
        eval_perplexity: eval.perplexity,
        unigram_perplexity: eval.unigram_perplexity,
        params: trainer.model().param_count(),
        flops: cost.flops,
        bytes: cost.bytes,
        seconds: started.elapsed().as_secs_f64(),
        train_seconds,
        commit_seconds: commit_nanos as f64 * 1e-9,
        checkpoint_seconds: ckpt_nanos as f64 * 1e-9,
        eval_seconds,
        examples_per_second: (per_step * spec.steps) as f64 / train_seconds.max(1e-9),
        threads: rayon::current_num_threads(),
        checkpoints,
        op_seconds: op_times(&meter),
    };
    write_json(&out.join(files::SUMMARY_FILE), &summary)?;
    Ok(summary)
}
