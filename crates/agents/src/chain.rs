//! Typed views of what the node's API answers about PoI jobs, checks and providers: the
//! fields the agents use, decoded from `GET /jobs/{id}` (with its `poi` object), `GET
//! /validators/{address}/checks` and `GET /providers/{address}`.

use poi_core::Address;
use poi_repops::commit::Digest;
use serde::Deserialize;

use crate::client::NodeClient;
use crate::{AgentError, Result};

/// A hex-encoded 32-byte value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Hex32(pub [u8; 32]);

impl TryFrom<String> for Hex32 {
    type Error = String;
    fn try_from(text: String) -> std::result::Result<Self, String> {
        let bytes = hex::decode(&text).map_err(|e| format!("{text:?}: {e}"))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| format!("{text:?} is not 32 bytes"))?;
        Ok(Hex32(bytes))
    }
}

impl Hex32 {
    /// As a repops digest.
    pub fn digest(self) -> Digest {
        Digest(self.0)
    }
}

/// What the provider committed (the `commitment` of a PoI record).
#[derive(Debug, Clone, Deserialize)]
pub struct CommitmentView {
    /// Training: the root over the step digests; inference: over the outputs.
    pub root: Hex32,
    /// Training: the final step digest.
    pub final_digest: Hex32,
    /// Training: the final parameters' digest (names the model).
    pub params_digest: Hex32,
}

/// A job's PoI record with its stored spec (the `poi` object of `GET /jobs/{id}`).
#[derive(Debug, Clone, Deserialize)]
pub struct PoiJobView {
    /// The job id.
    pub id: u64,
    /// `training` or `inference`.
    pub kind: String,
    /// Training: steps `S`; inference: requests `m`.
    pub steps: u64,
    /// Training: steps per segment `k`.
    pub segment_steps: u64,
    /// Segments (requests for inference).
    pub segments: u64,
    /// Training: the spec hash; inference: the input root.
    pub spec_hash: Hex32,
    /// The commitment, once made.
    pub commitment: Option<CommitmentView>,
    /// `submitted`, `verifying`, `verified` or `failed`.
    pub status: String,
    /// The spec bytes in hex (training).
    pub spec: Option<String>,
    /// Training: the quality evaluation.
    #[serde(default)]
    pub quality: Option<QualityView>,
}

/// A training job's quality record (the fields agents use).
#[derive(Debug, Clone, Deserialize)]
pub struct QualityView {
    /// `"evaluating"`, `"done"`, `{"awaiting_reveal": {"due": h}}` or
    /// `{"awaiting_claim": {"due": h}}`.
    pub stage: serde_json::Value,
    /// The registered version the job fine-tunes.
    pub base_model: Option<u64>,
    /// Whether the owner revealed an eval subset.
    pub reveal: Option<serde_json::Value>,
    /// The provider's claimed score, micro-nats.
    pub claim: Option<u64>,
}

impl QualityView {
    /// Whether the claim window is open.
    pub fn awaiting_claim(&self) -> bool {
        self.stage.get("awaiting_claim").is_some()
    }
}

/// A registered model version (`GET /models/{id}`).
#[derive(Debug, Clone, Deserialize)]
pub struct ModelView {
    /// Registry id.
    pub id: u64,
    /// `<model>-<dataset>`.
    pub name: String,
    /// The market model kind.
    pub model: String,
    /// Digest of its parameters.
    pub params_digest: Hex32,
    /// The training job that produced it.
    pub job: Option<u64>,
    /// The provider that serves its weights.
    pub provider: Option<Address>,
}

/// Reads model version `id` (404 is [`AgentError::Job`] naming the id).
pub fn model(node: &NodeClient, id: u64) -> Result<ModelView> {
    let path = format!("/models/{id}");
    let value = node.get_opt(&path)?.ok_or(AgentError::Job {
        job: id,
        reason: format!("no model version {id}"),
    })?;
    decode(&path, value)
}

impl PoiJobView {
    /// Whether this is a training job.
    pub fn is_training(&self) -> bool {
        self.kind == "training"
    }

    /// The spec bytes.
    pub fn spec_bytes(&self) -> Result<Vec<u8>> {
        let text = self.spec.as_deref().ok_or_else(|| AgentError::BadSpec {
            job: self.id,
            reason: "no spec stored".into(),
        })?;
        hex::decode(text).map_err(|e| AgentError::BadSpec {
            job: self.id,
            reason: format!("spec is not hex: {e}"),
        })
    }

    /// Steps `first..=last` of training segment `j`: the checkpoint at `j*k` starts it.
    pub fn segment_range(&self, j: u64) -> (u64, u64) {
        let start = j.saturating_mul(self.segment_steps);
        let end = start.saturating_add(self.segment_steps).min(self.steps);
        (start, end)
    }
}

/// A market job with its PoI record (`GET /jobs/{id}`).
#[derive(Debug, Clone, Deserialize)]
pub struct JobView {
    /// The id.
    pub id: u64,
    /// The market status (`matched`, `running`, `committed`, ...).
    pub status: String,
    /// The owner.
    pub owner: Address,
    /// The assigned provider.
    pub provider: Option<Address>,
    /// The market spec (`{"kind": "training", ...}` or `{"kind": "inference", ...}`).
    pub spec: serde_json::Value,
    /// The PoI record, for a job submitted through PoI.
    pub poi: Option<PoiJobView>,
}

impl JobView {
    /// Inference: the registry id of the model version the owner named.
    pub fn inference_version(&self) -> Option<u64> {
        (self.spec["kind"] == "inference")
            .then(|| self.spec["version"].as_u64())
            .flatten()
    }
}

/// What a check re-executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectView {
    /// Training segment `j`.
    Segment(u64),
    /// Inference request `i`.
    Request(u64),
    /// The eval of the committed model and its base.
    Eval,
}

/// One open check assigned to a validator (`GET /validators/{address}/checks`).
#[derive(Debug, Clone, Deserialize)]
pub struct CheckView {
    /// The job.
    pub job: u64,
    /// The check's number within the job.
    pub index: u32,
    /// The subject.
    pub subject: SubjectView,
    /// `"spot"` or `{"referee": {"of": n}}`.
    pub role: serde_json::Value,
    /// Height by which the verdict is due.
    pub deadline: u64,
    /// Assignments so far.
    pub attempts: u32,
}

/// Reads job `id` (404 is [`AgentError::Job`]).
pub fn job(node: &NodeClient, id: u64) -> Result<JobView> {
    let value = node
        .get_opt(&format!("/jobs/{id}"))?
        .ok_or(AgentError::Job {
            job: id,
            reason: "no such job".into(),
        })?;
    decode(&format!("/jobs/{id}"), value)
}

/// The open spot and referee checks assigned to `address` on segments, requests and evals.
pub fn assigned_checks(node: &NodeClient, address: &Address) -> Result<Vec<CheckView>> {
    let path = format!("/validators/{address}/checks");
    let value = node.get(&path)?;
    let listed: Vec<serde_json::Value> = decode(&path, value["checks"].clone())?;
    let mut out = Vec::with_capacity(listed.len());
    for check in listed {
        // Checks this agent cannot answer (a dispute's one-operator arbiter checks) are
        // skipped; their deadlines pass them to other validators.
        match serde_json::from_value::<CheckView>(check.clone()) {
            Ok(c) if c.role == "spot" || c.role.get("referee").is_some() => out.push(c),
            _ => tracing::debug!(%check, "skipping a check this agent does not answer"),
        }
    }
    Ok(out)
}

/// The endpoint a provider registered (`GET /providers/{address}`).
pub fn provider_endpoint(node: &NodeClient, address: &Address) -> Result<String> {
    let path = format!("/providers/{address}");
    let value = node.get(&path)?;
    value["endpoint"]
        .as_str()
        .map(|e| e.trim_end_matches('/').to_owned())
        .ok_or_else(|| AgentError::BadResponse {
            url: path,
            cause: "no endpoint".into(),
        })
}

fn decode<T: for<'de> Deserialize<'de>>(what: &str, value: serde_json::Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| AgentError::BadResponse {
        url: what.to_owned(),
        cause: e.to_string(),
    })
}
