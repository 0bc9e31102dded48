//! Decodes the repops job spec a training job stores on chain (`JobSpec::encode` bytes,
//! format in `poi_repops::train`) and checks it against the job record.
//!
//! The chain never decodes a spec; a provider checks it before `StartJob`, a validator before
//! re-executing. A spec is accepted only if it decodes, validates, re-encodes to exactly the
//! stored bytes (so the decoding is the canonical one), hashes to the job's `spec_hash`, and
//! has the job's steps and `checkpoint_every = segment_steps`.

use poi_repops::commit::Digest;
use poi_repops::model::{Activation, CharLmSpec, MlpSpec, ModelSpec};
use poi_repops::train::{JOB_DOMAIN, JobSpec, OptimizerSpec, job_spec_hash};

use crate::chain::PoiJobView;
use crate::{AgentError, Result};

/// Longest string field accepted (names and tags).
const STRING_BYTES_MAX: u64 = 256;
/// Most hidden layers accepted while decoding (validation applies the model's own limit).
const LAYERS_MAX: u64 = 64;

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> std::result::Result<&'a [u8], String> {
        if self.bytes.len() < n {
            return Err(format!("truncated at {what}"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u64(&mut self, what: &str) -> std::result::Result<u64, String> {
        let b = self.take(8, what)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    fn u32(&mut self, what: &str) -> std::result::Result<u32, String> {
        u32::try_from(self.u64(what)?).map_err(|_| format!("{what} does not fit 32 bits"))
    }

    fn f32(&mut self, what: &str) -> std::result::Result<f32, String> {
        let b = self.take(4, what)?;
        Ok(f32::from_bits(u32::from_le_bytes(
            b.try_into().expect("4 bytes"),
        )))
    }

    fn text(&mut self, what: &str) -> std::result::Result<String, String> {
        let len = self.u64(what)?;
        if len > STRING_BYTES_MAX {
            return Err(format!("{what} is {len} bytes"));
        }
        let b = self.take(len as usize, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| format!("{what} is not UTF-8"))
    }
}

fn decode_fields(bytes: &[u8]) -> std::result::Result<JobSpec, String> {
    let mut r = Reader { bytes };
    let domain = r.text("domain")?;
    if domain != JOB_DOMAIN {
        return Err(format!("domain {domain:?}, expected {JOB_DOMAIN:?}"));
    }
    let model = match r.text("model kind")?.as_str() {
        "mlp" => {
            let count = r.u64("layer count")?;
            if count > LAYERS_MAX {
                return Err(format!("{count} hidden layers"));
            }
            let hidden = (0..count)
                .map(|_| r.u32("layer width"))
                .collect::<std::result::Result<Vec<u32>, String>>()?;
            let activation = match r.text("activation")?.as_str() {
                "relu" => Activation::Relu,
                "gelu" => Activation::Gelu,
                other => return Err(format!("unknown activation {other:?}")),
            };
            ModelSpec::Mlp(MlpSpec { hidden, activation })
        }
        "charlm" => ModelSpec::Charlm(CharLmSpec {
            d_model: r.u32("d_model")?,
            heads: r.u32("heads")?,
            layers: r.u32("layers")?,
            context: r.u32("context")?,
            d_ff: r.u32("d_ff")?,
        }),
        other => return Err(format!("unknown model kind {other:?}")),
    };
    let dataset = r.text("dataset")?;
    let dataset_id = Digest(r.take(32, "dataset id")?.try_into().expect("32 bytes"));
    let (steps, seed, batch) = (r.u64("steps")?, r.u64("seed")?, r.u32("batch")?);
    let optimizer = match r.text("optimizer")?.as_str() {
        "adamw" => OptimizerSpec::Adamw {
            lr: r.f32("lr")?,
            beta1: r.f32("beta1")?,
            beta2: r.f32("beta2")?,
            eps: r.f32("eps")?,
            weight_decay: r.f32("weight_decay")?,
        },
        "sgd" => OptimizerSpec::Sgd {
            lr: r.f32("lr")?,
            momentum: r.f32("momentum")?,
            weight_decay: r.f32("weight_decay")?,
        },
        other => return Err(format!("unknown optimizer {other:?}")),
    };
    let checkpoint_every = r.u64("checkpoint_every")?;
    if !r.bytes.is_empty() {
        return Err(format!("{} trailing bytes", r.bytes.len()));
    }
    Ok(JobSpec {
        model,
        dataset,
        dataset_id,
        steps,
        seed,
        batch,
        optimizer,
        checkpoint_every,
    })
}

/// Decodes spec bytes: they must decode, validate and re-encode to exactly `bytes`.
pub fn decode_spec(bytes: &[u8]) -> std::result::Result<JobSpec, String> {
    let spec = decode_fields(bytes)?;
    spec.validate().map_err(|e| e.to_string())?;
    // Floats are read bit for bit and the encoding canonicalises them, so the round trip
    // also refuses a non-canonical NaN.
    if spec.encode() != bytes {
        return Err("the spec is not in canonical encoding".into());
    }
    Ok(spec)
}

/// The spec of training job `job`, checked against its record (hash, steps, segment size).
pub fn job_spec(job: &PoiJobView) -> Result<JobSpec> {
    let bad = |reason: String| AgentError::BadSpec {
        job: job.id,
        reason,
    };
    let bytes = job.spec_bytes()?;
    let spec = decode_spec(&bytes).map_err(bad)?;
    if job_spec_hash(&spec).0 != job.spec_hash.0 {
        return Err(bad("the spec does not hash to the job's spec_hash".into()));
    }
    if spec.steps != job.steps || spec.checkpoint_every != job.segment_steps {
        return Err(bad(format!(
            "steps {} / checkpoint_every {} differ from the job's {} / {}",
            spec.steps, spec.checkpoint_every, job.steps, job.segment_steps
        )));
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_round_trip_and_garbage_is_refused() {
        let mlp = JobSpec::default_for("mlp", Some("iris"), 12, 3).expect("mlp");
        let charlm = JobSpec::default_for("charlm", None, 5, 1).expect("charlm");
        let mut sgd = mlp.clone();
        sgd.optimizer = OptimizerSpec::sgd(0.1, 0.9);
        for spec in [mlp, charlm, sgd] {
            assert_eq!(decode_spec(&spec.encode()), Ok(spec));
        }
        let bytes = JobSpec::default_for("mlp", Some("iris"), 12, 3)
            .expect("mlp")
            .encode();
        for cut in [0, 5, 30, bytes.len() - 1] {
            assert!(decode_spec(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode_spec(&long).unwrap_err().contains("trailing"));
        assert!(decode_spec(b"garbage").is_err());
    }
}
