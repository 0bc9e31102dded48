//! What a provider computes for a job, honestly or as its behaviour cheats: a training run's
//! committed digests and final state digests, or an inference job's outputs.

use std::path::Path;

use poi_repops::backend::CpuBackend;
use poi_repops::commit::digest::{OPT_DOMAIN, PARAMS_DOMAIN};
use poi_repops::commit::{
    Digest, merkle_root, read_checkpoint, step_digest, tensors_digest, write_checkpoint,
};
use poi_repops::exec::Exec;
use poi_repops::train::{self, JobSpec, Trainer, checkpoint_path, job_spec_hash, with_threads};

use crate::behaviour::ProviderBehaviour;
use crate::infer::LoadedModel;
use crate::store::JobRecord;
use crate::wire::{output_digest, request_digest};
use crate::{AgentError, Result};

/// Whether a `fake-segments=bps` provider fakes segment `j` of `job`.
pub fn fakes_segment(job: u64, j: u64, bps: u32) -> bool {
    let mut h = blake3::Hasher::new();
    h.update(b"poi/agents/fake/v1");
    h.update(&job.to_le_bytes());
    h.update(&j.to_le_bytes());
    let u = u64::from_le_bytes(h.finalize().as_bytes()[..8].try_into().expect("8 bytes"));
    u % 10_000 < u64::from(bps)
}

fn perturb(d: &Digest) -> Digest {
    let mut h = blake3::Hasher::new();
    h.update(b"poi/agents/perturb/v1");
    h.update(d.as_bytes());
    Digest(*h.finalize().as_bytes())
}

/// Perturbs the leaves of the segments a `fake-segments=bps` provider fakes: every leaf of
/// the segment but its end (which starts the next segment's checkpoint); a one-step
/// segment's only leaf unless it is the final one (which the chain recomputes).
pub fn fake_segments(job: u64, spec: &JobSpec, digests: &mut [Digest], bps: u32) -> u64 {
    let (k, steps) = (spec.checkpoint_every, spec.steps);
    let mut faked = 0;
    for j in 0..steps.div_ceil(k) {
        if !fakes_segment(job, j, bps) {
            continue;
        }
        let (start, end) = (j * k, (j * k + k).min(steps));
        let last = if end - start >= 2 {
            end - 1
        } else if end != steps {
            end
        } else {
            continue;
        };
        for s in start + 1..=last {
            digests[s as usize] = perturb(&digests[s as usize]);
        }
        faked += 1;
    }
    faked
}

/// Trains `spec` for job `job` into `out` on `threads` threads as `behaviour` says; returns
/// what to commit and serve.
pub fn train(
    job: u64,
    spec: &JobSpec,
    out: &Path,
    behaviour: ProviderBehaviour,
    threads: usize,
) -> Result<JobRecord> {
    let (mut digests, params_digest, opt_digest) = match behaviour {
        ProviderBehaviour::SkipSteps => with_threads(threads, || skip_steps(spec, out))??,
        _ => with_threads(threads, || honest(spec, out))??,
    };
    if let ProviderBehaviour::FakeSegments { bps } = behaviour {
        let faked = fake_segments(job, spec, &mut digests, bps);
        tracing::warn!(job, faked, "faking segments");
    }
    let root = merkle_root(&digests);
    Ok(JobRecord::Training {
        job,
        digests,
        root,
        params_digest,
        opt_digest,
    })
}

type Trained = (Vec<Digest>, Digest, Digest);

fn honest(spec: &JobSpec, out: &Path) -> Result<Trained> {
    let backend = CpuBackend;
    let mut last = 0;
    let summary = train::train_job(spec, out, &backend, &mut |p| {
        if p.step == p.steps || p.step >= last + 100 {
            last = p.step;
            tracing::debug!(step = p.step, steps = p.steps, loss = p.loss, "training");
        }
    })?;
    let file = train::read_digests(&out.join(train::DIGESTS_FILE))?;
    let ckpt = read_checkpoint(
        &checkpoint_path(out, spec.steps),
        Some(&summary.final_digest),
    )?;
    Ok((
        file.digests,
        tensors_digest(PARAMS_DOMAIN, &ckpt.param_views())?,
        tensors_digest(OPT_DOMAIN, &ckpt.opt_views())?,
    ))
}

/// Runs only the odd steps; claims every step, each digest of the state it holds.
fn skip_steps(spec: &JobSpec, out: &Path) -> Result<Trained> {
    let dir = out.join(train::CHECKPOINT_DIR);
    std::fs::create_dir_all(&dir).map_err(AgentError::io(&dir))?;
    let hash = job_spec_hash(spec);
    let mut trainer = Trainer::new(spec)?;
    let backend = CpuBackend;
    let mut exec = Exec::new(&backend);
    let mut digests = vec![trainer.write_checkpoint(&checkpoint_path(out, 0))?];
    for step in 1..=spec.steps {
        if step % 2 == 1 {
            trainer.train_step(&mut exec)?;
        }
        let (params, opt) = (trainer.model().param_views(), trainer.opt_views());
        let digest = if spec.is_checkpoint(step) {
            write_checkpoint(&checkpoint_path(out, step), &hash, step, &params, &opt)?
        } else {
            step_digest(&hash, step, &params, &opt)?
        };
        digests.push(digest);
    }
    let (params, opt) = (trainer.model().param_views(), trainer.opt_views());
    Ok((
        digests,
        tensors_digest(PARAMS_DOMAIN, &params)?,
        tensors_digest(OPT_DOMAIN, &opt)?,
    ))
}

/// Answers every request of inference job `job` with `model`; a `wrong-inference` provider
/// appends a byte to every output.
pub fn infer(
    job: u64,
    model: &mut LoadedModel,
    requests: &[Vec<u8>],
    behaviour: ProviderBehaviour,
) -> JobRecord {
    let params_digest = model.params_digest();
    let mut outputs = Vec::with_capacity(requests.len());
    let mut leaves = Vec::with_capacity(requests.len());
    for request in requests {
        let mut output = model.run(request);
        if behaviour == ProviderBehaviour::WrongInference {
            output.push(b'!');
        }
        leaves.push(output_digest(&params_digest, request, &output));
        outputs.push(hex::encode(&output));
    }
    JobRecord::Inference {
        job,
        params_digest,
        requests: requests.iter().map(hex::encode).collect(),
        outputs,
        root: merkle_root(&leaves),
        leaves,
    }
}

/// The input root of `requests` (what the owner committed on chain).
pub fn input_root(requests: &[Vec<u8>]) -> Digest {
    let digests: Vec<Digest> = requests.iter().map(|r| request_digest(r)).collect();
    merkle_root(&digests)
}
