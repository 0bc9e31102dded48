//! The eval score agents measure for a training job's quality: the mean held-out
//! cross-entropy in micro-nats, `floor(loss x 10^6)`, of repops' `Trainer::evaluate` on the
//! dataset's public eval split. The base score is the same for the job's own step-0 state.
//!
//! Limits of this build: an owner's revealed subset (`RevealEval`) and a `base_model` are
//! not applied yet; agents measure the whole public eval split against the job's own initial
//! state, which is what the chain specifies when the owner does not reveal and the job names
//! no base. Honest providers and validators compute the same numbers either way, so a claim
//! made by this code is never an accusation among honest agents.

use poi_repops::backend::CpuBackend;
use poi_repops::commit::Checkpoint;
use poi_repops::exec::Exec;
use poi_repops::train::{JobSpec, Trainer, with_threads};

use crate::{AgentError, Result};

/// Micro-nats of a loss in nats (a non-finite or negative loss is an error).
pub fn micro_nats(loss: f64) -> Result<u64> {
    if !loss.is_finite() || !(0.0..=1e12).contains(&loss) {
        return Err(AgentError::Job {
            job: 0,
            reason: format!("eval loss {loss} is not a finite non-negative number"),
        });
    }
    Ok((loss * 1e6).floor() as u64)
}

fn score_of(mut trainer: Trainer) -> Result<u64> {
    let backend = CpuBackend;
    let mut exec = Exec::new(&backend);
    micro_nats(trainer.evaluate(&mut exec)?.loss)
}

/// `(score, base_score)` of the model in `final_ckpt` (verified) and of the job's step-0
/// state, on `threads` threads.
pub fn scores(spec: &JobSpec, final_ckpt: &Checkpoint, threads: usize) -> Result<(u64, u64)> {
    with_threads(threads, || {
        let score = score_of(Trainer::from_checkpoint(spec, final_ckpt)?)?;
        let base = score_of(Trainer::new(spec)?)?;
        Ok((score, base))
    })?
}
