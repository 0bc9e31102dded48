//! PoI's submit and commit messages: the job spec stored and the market job submitted; the
//! provider's commitment checked (Merkle proof of the final leaf, the final digest recomputed)
//! before the market commits the job and holds it for verification.

use crate::address::Address;
use crate::error::TxError;
use crate::event::Event;
use crate::market::{self, JobSpec};
use crate::module::ExecContext;
use crate::token::Amount;

use super::NAME;
use super::merkle::{self, Digest, FINAL_PROOF_SIBLINGS_MAX};
use super::quality::Quality;
use super::records::{PoiCommitment, PoiJob, PoiKind, PoiStatus, job_or_err, spec_key, write_job};
use super::registry;

/// What `SubmitTraining` carries besides the spec.
pub(crate) struct Training<'a> {
    pub model: &'a str,
    pub datasets: &'a [String],
    pub spec: &'a [u8],
    pub steps: u64,
    pub eval_commitment: [u8; 32],
    pub base_model: Option<u64>,
    pub units: u64,
    pub max_price: Amount,
}

/// `SubmitTraining`: stores the spec under `poi/s/<job>` and submits the market job with
/// `hyperparams_hash = blake3(spec)` (repops' `job_spec_hash` when the spec is
/// `JobSpec::encode`). The chain does not decode the spec.
pub(crate) fn submit_training(
    ctx: &mut ExecContext<'_, '_>,
    signer: Address,
    t: &Training<'_>,
) -> Result<(), TxError> {
    let params = &ctx.params.poi;
    let max = u64::from(params.spec_bytes_max);
    if t.spec.len() as u64 > max {
        return Err(TxError::SpecTooLarge {
            size: t.spec.len() as u64,
            max,
        });
    }
    if t.spec.is_empty() {
        return Err(TxError::InvalidMessage("the job spec is empty".into()));
    }
    if t.steps == 0 || t.steps > params.steps_max {
        return Err(TxError::InvalidMessage(format!(
            "a training job has 1..={} steps, not {}",
            params.steps_max, t.steps
        )));
    }
    if let Some(base) = t.base_model {
        registry::read_model(ctx.state, base)?.ok_or_else(|| {
            TxError::InvalidMessage(format!("base model {base} is not in the registry"))
        })?;
    }
    let segment_steps = params
        .segment_steps(t.steps)
        .ok_or(TxError::Overflow("segment steps"))?;
    let segments = t.steps.div_ceil(segment_steps);
    let spec_hash = *blake3::hash(t.spec).as_bytes();
    let market_spec = JobSpec::Training {
        model: t.model.to_owned(),
        datasets: t.datasets.to_vec(),
        hyperparams_hash: spec_hash,
        steps: t.steps,
        eval_commitment: t.eval_commitment,
    };
    let id = market::submit_for_poi(ctx, signer, market_spec, t.units, t.max_price)?;
    ctx.state.put(spec_key(id), t.spec.to_vec());
    write_job(
        ctx.state,
        &PoiJob {
            id,
            kind: PoiKind::Training,
            steps: t.steps,
            segment_steps,
            segments,
            spec_hash,
            commitment: None,
            status: PoiStatus::Submitted,
            draw_target: None,
            randomness: None,
            checks: 0,
            checks_pending: 0,
            quality: Some(Quality::new(t.eval_commitment, t.base_model)),
            model_id: None,
            canary_revealed: false,
            disputes: 0,
            disputes_open: 0,
        },
    );
    ctx.emit(
        Event::new(NAME, "training_submitted")
            .with("job", id)
            .with("spec_hash", hex::encode(spec_hash))
            .with("steps", t.steps)
            .with("segment_steps", segment_steps)
            .with("segments", segments),
    );
    Ok(())
}

/// What `SubmitInference` carries.
pub(crate) struct Inference<'a> {
    pub model: &'a str,
    pub version: u32,
    pub requests: u64,
    pub input_root: [u8; 32],
    pub units: u64,
    pub max_price: Amount,
}

/// `SubmitInference`: submits the market job with `input_hash = input_root`. The model
/// registry check (`unknown_model_version`) comes with the registry (build step 6); until
/// then the market's `market.models` check applies.
pub(crate) fn submit_inference(
    ctx: &mut ExecContext<'_, '_>,
    signer: Address,
    i: &Inference<'_>,
) -> Result<(), TxError> {
    let max = ctx.params.poi.requests_max;
    if i.requests == 0 || i.requests > max {
        return Err(TxError::InvalidMessage(format!(
            "an inference job has 1..={max} requests, not {}",
            i.requests
        )));
    }
    // A name's default version: `model` names the registry name.
    let (id, named_default) = if i.version == registry::DEFAULT_VERSION {
        let id = registry::default_version(ctx.state, i.model)?.ok_or_else(|| {
            TxError::InvalidMessage(format!(
                "`{}` has no default version (no such name, or its versions are retired)",
                i.model
            ))
        })?;
        (id, true)
    } else {
        (u64::from(i.version), false)
    };
    let version = registry::read_model(ctx.state, id)?.ok_or_else(|| {
        TxError::InvalidMessage(format!(
            "model version {id} is not in the registry (GET /models lists it)"
        ))
    })?;
    if registry::is_retired(ctx.state, id)? {
        return Err(TxError::InvalidMessage(format!(
            "model version {id} was retired by governance"
        )));
    }
    let version_id = u32::try_from(id).map_err(|_| TxError::Overflow("model version id"))?;
    if !named_default && version.model != i.model {
        return Err(TxError::InvalidMessage(format!(
            "registry version {} is a {} model, not {}",
            i.version, version.model, i.model
        )));
    }
    let market_spec = JobSpec::Inference {
        model: version.model.clone(),
        version: version_id,
        input_hash: i.input_root,
    };
    let id = market::submit_for_poi(ctx, signer, market_spec, i.units, i.max_price)?;
    write_job(
        ctx.state,
        &PoiJob {
            id,
            kind: PoiKind::Inference,
            steps: i.requests,
            segment_steps: 1,
            segments: i.requests,
            spec_hash: i.input_root,
            commitment: None,
            status: PoiStatus::Submitted,
            draw_target: None,
            randomness: None,
            checks: 0,
            checks_pending: 0,
            quality: None,
            model_id: Some(u64::from(version_id)),
            canary_revealed: false,
            disputes: 0,
            disputes_open: 0,
        },
    );
    ctx.emit(
        Event::new(NAME, "inference_submitted")
            .with("job", id)
            .with("requests", i.requests)
            .with("input_root", hex::encode(i.input_root)),
    );
    Ok(())
}

/// The PoI job `id` of `kind`, waiting for its commit by `signer`, its assigned provider.
fn committable(
    ctx: &ExecContext<'_, '_>,
    signer: Address,
    id: u64,
    kind: PoiKind,
) -> Result<PoiJob, TxError> {
    let job = job_or_err(ctx.state, id)?;
    if job.kind != kind {
        return Err(TxError::WrongJobKind {
            job: id,
            kind: job.kind.as_str(),
        });
    }
    let market_job = market::job(ctx.state, id)?.ok_or(TxError::UnknownJob(id))?;
    if market_job.provider != Some(signer) || market_job.status.is_final() {
        return Err(TxError::NotAssignedProvider { job: id, signer });
    }
    if job.status != PoiStatus::Submitted {
        return Err(TxError::BadJobState {
            job: id,
            state: job.status.as_str(),
            expected: PoiStatus::Submitted.as_str(),
        });
    }
    Ok(job)
}

/// Commits the market job (all units bought delivered), holds it, and records `commitment`.
fn commit_and_hold(
    ctx: &mut ExecContext<'_, '_>,
    mut job: PoiJob,
    commitment: PoiCommitment,
) -> Result<(), TxError> {
    let id = job.id;
    let units = market::job(ctx.state, id)?
        .ok_or(TxError::UnknownJob(id))?
        .units;
    market::commit_for_poi(ctx, id, commitment.root, units)?;
    market::hold(ctx, id)?;
    ctx.emit(
        Event::new(NAME, "committed")
            .with("job", id)
            .with("kind", job.kind.as_str())
            .with("root", hex::encode(commitment.root))
            .with("final_digest", hex::encode(commitment.final_digest))
            .with("params_digest", hex::encode(commitment.params_digest)),
    );
    job.commitment = Some(commitment);
    job.status = PoiStatus::Verifying;
    job.draw_target = super::beacon::target_for_commit(ctx, id)?;
    if job.quality.is_some() {
        super::quality::on_commit(ctx, &mut job)?;
    }
    write_job(ctx.state, &job);
    Ok(())
}

/// What `CommitTraining` carries.
pub(crate) struct TrainingCommit<'a> {
    pub job: u64,
    pub root: Digest,
    pub final_digest: Digest,
    pub params_digest: Digest,
    pub opt_digest: Digest,
    pub final_proof: &'a [Digest],
    pub sealed: [u8; 32],
}

/// `CommitTraining`, by the assigned provider of a running job: `final_digest` must be
/// repops' step digest of (spec hash, `steps`, `params_digest`, `opt_digest`)
/// (`digest_mismatch`), and `final_proof` must prove it is leaf `steps` of the
/// `steps + 1`-leaf tree with root `root` (`proof_too_long`, `bad_proof`). Then the market
/// commits the job with every unit delivered and holds it for verification.
pub(crate) fn commit_training(
    ctx: &mut ExecContext<'_, '_>,
    signer: Address,
    c: &TrainingCommit<'_>,
) -> Result<(), TxError> {
    let job = committable(ctx, signer, c.job, PoiKind::Training)?;
    if c.final_proof.len() > FINAL_PROOF_SIBLINGS_MAX {
        return Err(TxError::ProofTooLong {
            len: c.final_proof.len() as u64,
            max: FINAL_PROOF_SIBLINGS_MAX as u64,
        });
    }
    let computed = merkle::step_digest(&job.spec_hash, job.steps, &c.params_digest, &c.opt_digest);
    if computed != c.final_digest {
        return Err(TxError::DigestMismatch {
            job: c.job,
            what: "final_digest",
            claimed: hex::encode(c.final_digest),
            computed: hex::encode(computed),
        });
    }
    let leaves = job
        .steps
        .checked_add(1)
        .ok_or(TxError::Overflow("leaf count"))?;
    merkle::verify(job.steps, leaves, c.final_proof, &c.final_digest, &c.root).map_err(|e| {
        TxError::BadProof {
            job: c.job,
            leaf: job.steps,
            reason: e.to_string(),
        }
    })?;
    let commitment = PoiCommitment {
        root: c.root,
        final_digest: c.final_digest,
        params_digest: c.params_digest,
        opt_digest: c.opt_digest,
        sealed: c.sealed,
        height: ctx.block.height,
    };
    commit_and_hold(ctx, job, commitment)
}

/// `CommitInference`, by the assigned provider of a running job: the output root, after which
/// the market commits the job with every unit delivered and holds it for verification.
pub(crate) fn commit_inference(
    ctx: &mut ExecContext<'_, '_>,
    signer: Address,
    id: u64,
    output_root: [u8; 32],
    sealed: [u8; 32],
) -> Result<(), TxError> {
    let job = committable(ctx, signer, id, PoiKind::Inference)?;
    let commitment = PoiCommitment {
        root: output_root,
        final_digest: [0; 32],
        params_digest: [0; 32],
        opt_digest: [0; 32],
        sealed,
        height: ctx.block.height,
    };
    commit_and_hold(ctx, job, commitment)
}
