//! What a provider serves and validators read: the JSON bodies of the `/v1/jobs/...`
//! endpoints, and the request and output digests inference commits to.
//!
//! # Endpoints (served by [`crate::provider::server`])
//! - `GET /v1/jobs/{id}/checkpoints/{step}`: the safetensors checkpoint of that step;
//! - `GET /v1/jobs/{id}/digests?from=a&to=b`: [`DigestsAnswer`], leaves `a..=b` each with
//!   its Merkle proof under the committed root (at most [`DIGESTS_PAGE_MAX`] leaves);
//! - `POST /v1/jobs/{id}/requests` with [`RequestsBody`], `GET` the same path: the owner's
//!   inference requests;
//! - `GET /v1/jobs/{id}/outputs/{i}`: [`OutputAnswer`], request `i`, its output and both
//!   proofs.
//!
//! # Digests
//! - request `r`: `blake3("poi/req/v1" | r)`; the job's `input_root` is the repops Merkle
//!   root over them;
//! - output `o` of request `r` under the model with params digest `p`:
//!   `blake3("poi/infer/v1" | p | r | o)`; the committed output root is over these.

use poi_repops::commit::{Digest, MerkleProof};
use serde::{Deserialize, Serialize};

/// Most leaves one digests answer holds.
pub const DIGESTS_PAGE_MAX: u64 = 4_096;
/// Most requests one inference job takes (the chain's `requests_max` cap).
pub const REQUESTS_MAX: usize = 4_096;
/// Largest request accepted, bytes.
pub const REQUEST_BYTES_MAX: usize = 16 * 1024;

/// Domain of request digests.
pub const REQUEST_DOMAIN: &[u8] = b"poi/req/v1";
/// Domain of output leaves.
pub const OUTPUT_DOMAIN: &[u8] = b"poi/infer/v1";

/// One committed step digest with its proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leaf {
    /// The step (leaf index).
    pub step: u64,
    /// The committed digest.
    pub digest: Digest,
    /// Its proof under the committed root.
    pub proof: MerkleProof,
}

/// `GET /v1/jobs/{id}/digests`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestsAnswer {
    /// The job.
    pub job: u64,
    /// The committed root.
    pub root: Digest,
    /// Leaves `from..=to`, in order.
    pub leaves: Vec<Leaf>,
}

/// `POST /v1/jobs/{id}/requests` (and `GET`'s answer): requests in hex, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestsBody {
    /// Request bytes, hex.
    pub requests: Vec<String>,
}

/// `GET /v1/jobs/{id}/outputs/{i}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputAnswer {
    /// The job.
    pub job: u64,
    /// The request index.
    pub index: u64,
    /// The request bytes, hex.
    pub request: String,
    /// Proof of the request digest under the job's input root.
    pub request_proof: MerkleProof,
    /// The output bytes, hex.
    pub output: String,
    /// The output leaf digest.
    pub digest: Digest,
    /// Proof of the output leaf under the committed output root.
    pub proof: MerkleProof,
}

/// A request's digest.
pub fn request_digest(request: &[u8]) -> Digest {
    let mut h = blake3::Hasher::new();
    h.update(REQUEST_DOMAIN);
    h.update(request);
    Digest(*h.finalize().as_bytes())
}

/// An output's leaf digest.
pub fn output_digest(params_digest: &Digest, request: &[u8], output: &[u8]) -> Digest {
    let mut h = blake3::Hasher::new();
    h.update(OUTPUT_DOMAIN);
    h.update(params_digest.as_bytes());
    h.update(request);
    h.update(output);
    Digest(*h.finalize().as_bytes())
}
