//! A full audit of PoI's records against the market's jobs (run by
//! [`crate::chain::Chain::audit`]); the invariants are listed in the module docs.

use crate::market::{self, JobSpec, JobStatus};
use crate::state::{self, StateReader};

use super::merkle;
use super::records::{JOB_PREFIX, PREFIX, PoiJob, PoiKind, PoiStatus, SPEC_PREFIX, key_id};

type Check = Result<(), String>;

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Check {
    if ok { Ok(()) } else { Err(what()) }
}

/// Checks every PoI invariant; returns the first violation.
pub(crate) fn check(state: &dyn StateReader) -> Check {
    let mut jobs: Vec<PoiJob> = Vec::new();
    let mut specs: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut failure: Option<String> = None;
    state
        .scan_prefix(PREFIX, &mut |key, value| {
            if let Some(id) = key_id(key, JOB_PREFIX) {
                match state::decode::<PoiJob>(key, value) {
                    Ok(job) if job.id == id => jobs.push(job),
                    Ok(job) => failure = Some(format!("poi job {} stored under id {id}", job.id)),
                    Err(e) => failure = Some(e.to_string()),
                }
            } else if let Some(id) = key_id(key, SPEC_PREFIX) {
                specs.push((id, value.to_vec()));
            } else {
                failure = Some(format!("stray poi key {}", hex::encode(key)));
            }
            failure.is_none()
        })
        .map_err(|e| e.to_string())?;
    if let Some(failure) = failure {
        return Err(failure);
    }
    for job in &jobs {
        check_job(state, job)?;
    }
    // Specs: exactly one per training record (both lists are in id order).
    let training: Vec<&PoiJob> = jobs
        .iter()
        .filter(|j| j.kind == PoiKind::Training)
        .collect();
    ensure(training.len() == specs.len(), || {
        format!(
            "{} training jobs but {} stored specs",
            training.len(),
            specs.len()
        )
    })?;
    for (job, (id, spec)) in training.iter().zip(&specs) {
        ensure(job.id == *id, || {
            format!("stored spec {id} has no training job")
        })?;
        ensure(*blake3::hash(spec).as_bytes() == job.spec_hash, || {
            format!("poi job {id}: the stored spec does not hash to spec_hash")
        })?;
    }
    check_held(state, &jobs)
}

fn check_job(state: &dyn StateReader, job: &PoiJob) -> Check {
    let id = job.id;
    let mj = market::job(state, id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("poi job {id} has no market job"))?;
    match (&mj.spec, job.kind) {
        (
            JobSpec::Training {
                hyperparams_hash,
                steps,
                ..
            },
            PoiKind::Training,
        ) => {
            ensure(
                *hyperparams_hash == job.spec_hash && *steps == job.steps,
                || format!("poi job {id}: spec hash or steps differ from the market job"),
            )?;
            ensure(
                job.segment_steps >= 1 && job.segments == job.steps.div_ceil(job.segment_steps),
                || format!("poi job {id}: segments != ceil(steps / segment_steps)"),
            )?;
        }
        (JobSpec::Inference { input_hash, .. }, PoiKind::Inference) => {
            ensure(*input_hash == job.spec_hash, || {
                format!("poi job {id}: input root differs from the market job")
            })?;
            ensure(job.segment_steps == 1 && job.segments == job.steps, || {
                format!("poi job {id}: an inference job has one segment per request")
            })?;
        }
        _ => return Err(format!("poi job {id}: kind differs from the market job")),
    }
    match job.status {
        PoiStatus::Submitted => {
            ensure(job.commitment.is_none(), || {
                format!("submitted poi job {id} has a commitment")
            })?;
            ensure(
                matches!(
                    mj.status,
                    JobStatus::Queued
                        | JobStatus::Matched
                        | JobStatus::Running
                        | JobStatus::Cancelled
                        | JobStatus::Expired
                ),
                || {
                    format!(
                        "submitted poi job {id}: the market job is {}",
                        mj.status.as_str()
                    )
                },
            )?;
        }
        PoiStatus::Verifying => {
            let c = job
                .commitment
                .as_ref()
                .ok_or_else(|| format!("verifying poi job {id} has no commitment"))?;
            ensure(mj.result_root == Some(c.root), || {
                format!("poi job {id}: committed root differs from the market job's")
            })?;
            if job.kind == PoiKind::Training {
                let digest =
                    merkle::step_digest(&job.spec_hash, job.steps, &c.params_digest, &c.opt_digest);
                ensure(digest == c.final_digest, || {
                    format!("poi job {id}: final digest is not the step digest of its inputs")
                })?;
            }
            ensure(
                mj.is_held()
                    || matches!(
                        mj.status,
                        JobStatus::Disputed | JobStatus::Settled | JobStatus::Failed
                    ),
                || {
                    format!(
                        "verifying poi job {id}: the market job is {} and not held",
                        mj.status.as_str()
                    )
                },
            )?;
        }
    }
    Ok(())
}

/// Every held market job is a verifying PoI job (only PoI holds jobs).
fn check_held(state: &dyn StateReader, jobs: &[PoiJob]) -> Check {
    let mut held = Vec::new();
    let mut failure = None;
    state
        .scan_prefix(market::records::JOB_PREFIX, &mut |key, value| {
            match state::decode::<market::Job>(key, value) {
                Ok(job) if job.is_held() => held.push(job.id),
                Ok(_) => {}
                Err(e) => failure = Some(e.to_string()),
            }
            failure.is_none()
        })
        .map_err(|e| e.to_string())?;
    if let Some(failure) = failure {
        return Err(failure);
    }
    for id in held {
        let verifying = jobs
            .binary_search_by_key(&id, |j| j.id)
            .is_ok_and(|i| jobs[i].status == PoiStatus::Verifying);
        ensure(verifying, || {
            format!("market job {id} is held but not a verifying poi job")
        })?;
    }
    Ok(())
}
