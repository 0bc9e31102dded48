//! Inference with a committed model: loading the final checkpoint of a training job (checked
//! against its commitment) and answering requests deterministically.
//!
//! An inference job's `version` is a registry id (`GET /models/{id}`): the version names its
//! params digest, the training job that produced it, and the provider serving its final
//! checkpoint. A request is JSON: `{"prompt": "...", "tokens": n}` for a
//! char LM (greedy continuation of `n <= 256` characters; the output is the text) or
//! `{"features": [..]}` for an MLP (standardised features of one row; the output is the class
//! index in decimal). A request that does not parse or fit the model gets the output
//! `error: <reason>`, so every request has one reproducible output.

use std::path::Path;

use poi_repops::backend::CpuBackend;
use poi_repops::commit::digest::PARAMS_DOMAIN;
use poi_repops::commit::{Checkpoint, Digest, decode_checkpoint, tensors_digest};
use poi_repops::exec::Exec;
use poi_repops::model::{Model, argmax};
use poi_repops::train::{JobSpec, Trainer};
use serde::Deserialize;

use crate::client::NodeClient;
use crate::{AgentError, Result, chain, spec};

/// Most characters one char-LM request may generate.
pub const TOKENS_MAX: usize = 256;

/// A model ready to answer requests.
pub struct LoadedModel {
    trainer: Trainer,
    params_digest: Digest,
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel")
            .field("params_digest", &self.params_digest)
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    prompt: Option<String>,
    tokens: Option<usize>,
    features: Option<Vec<f32>>,
}

impl LoadedModel {
    /// The model of `spec` in `ckpt` (already verified).
    pub fn new(spec: &JobSpec, ckpt: &Checkpoint) -> Result<Self> {
        let params_digest = tensors_digest(PARAMS_DOMAIN, &ckpt.param_views())?;
        Ok(Self {
            trainer: Trainer::from_checkpoint(spec, ckpt)?,
            params_digest,
        })
    }

    /// The digest of the model's parameters (what the training job committed).
    pub fn params_digest(&self) -> Digest {
        self.params_digest
    }

    /// The output of `request` (see the module docs).
    pub fn run(&mut self, request: &[u8]) -> Vec<u8> {
        match self.try_run(request) {
            Ok(out) => out,
            Err(why) => format!("error: {why}").into_bytes(),
        }
    }

    fn try_run(&mut self, request: &[u8]) -> std::result::Result<Vec<u8>, String> {
        let req: Request = serde_json::from_slice(request).map_err(|e| e.to_string())?;
        let backend = CpuBackend;
        let mut exec = Exec::new(&backend);
        let tokenizer = self.trainer.tokenizer().cloned();
        match (self.trainer.model_mut(), req) {
            (
                Model::CharLm(m),
                Request {
                    prompt: Some(p),
                    tokens,
                    features: None,
                },
            ) => {
                let count = tokens.unwrap_or(16);
                if count > TOKENS_MAX {
                    return Err(format!("{count} tokens, at most {TOKENS_MAX}"));
                }
                let tk = tokenizer.ok_or("no tokenizer")?;
                let prompt = tk.encode(&p).map_err(|e| e.to_string())?;
                let out = m
                    .generate(&mut exec, &prompt, count, None)
                    .map_err(|e| e.to_string())?;
                Ok(tk.decode(&out).map_err(|e| e.to_string())?.into_bytes())
            }
            (
                Model::Mlp(m),
                Request {
                    features: Some(x),
                    prompt: None,
                    tokens: None,
                },
            ) => {
                let logits = m.logits(&mut exec, &x).map_err(|e| e.to_string())?;
                Ok(argmax(&logits).to_string().into_bytes())
            }
            _ => Err("the request does not fit the model".into()),
        }
    }
}

/// The model of registry version `version`: the final checkpoint of the training job that
/// produced it, from the provider serving it (cached under `cache`), checked against that
/// job's committed final digest and the version's params digest.
pub fn fetch_model(node: &NodeClient, cache: &Path, version: u64) -> Result<LoadedModel> {
    let registered = chain::model(node, version)?;
    let id = registered.job.ok_or(AgentError::Job {
        job: version,
        reason: format!(
            "model version {version} ({}) has no training job to fetch weights from",
            registered.name
        ),
    })?;
    let job = chain::job(node, id)?;
    let bad = |reason: &str| AgentError::Job {
        job: id,
        reason: reason.to_owned(),
    };
    let poi = job
        .poi
        .as_ref()
        .filter(|p| p.is_training())
        .ok_or_else(|| bad("not a PoI training job"))?;
    let commitment = poi
        .commitment
        .as_ref()
        .ok_or_else(|| bad("not committed yet"))?;
    let spec = spec::job_spec(poi)?;
    let path = cache.join(format!("{id}.safetensors"));
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(_) => {
            let provider = registered
                .provider
                .or(job.provider)
                .ok_or_else(|| bad("no provider"))?;
            let endpoint = chain::provider_endpoint(node, &provider)?;
            let url = format!("{endpoint}/v1/jobs/{id}/checkpoints/{}", poi.steps);
            node.get_bytes(&url)?
        }
    };
    let ckpt = decode_checkpoint(&bytes, Some(&commitment.final_digest.digest()))?;
    let model = LoadedModel::new(&spec, &ckpt)?;
    if model.params_digest() != commitment.params_digest.digest()
        || model.params_digest() != registered.params_digest.digest()
    {
        return Err(bad("the served model is not the committed one"));
    }
    std::fs::create_dir_all(cache).map_err(AgentError::io(cache))?;
    std::fs::write(&path, &bytes).map_err(AgentError::io(&path))?;
    Ok(model)
}
