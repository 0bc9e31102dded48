//! The Proof-of-Intelligence module's stored records, their keys and read/write helpers.
//!
//! # Format
//! All integers in keys are big-endian, so byte order is numeric order.
//! - `poi/j/<job u64>` → [`PoiJob`]: one per job submitted through PoI, keyed by the market
//!   job id it drives
//! - `poi/s/<job u64>` → the training job's spec bytes, opaque to the chain (repops'
//!   `train::JobSpec::encode`), at most `poi.spec_bytes_max`
//! - `poi/v/<address 32>` → [`Verifier`]: one per registered verifier
//! - `poi/vi/<ordinal u32>` → the 32-byte address of the verifier with that ordinal: the dense
//!   index spot-check assignment draws from (`u mod count`)
//! - `poi/vn` → the verifier count `n` (borsh `u32`), absent when 0. The ordinals in use are
//!   exactly `0..n`: a deregistration moves the verifier with ordinal `n - 1` into the freed
//!   ordinal (and rewrites its record), so the index never has a hole
//!
//! - `poi/b`, `poi/r/`, `poi/e/`: the beacon, draw targets and recorded seeds ([`super::beacon`])
//!
//! Later steps add checks (`poi/c/`), disputes (`poi/d/`), the model registry (`poi/m/`, `poi/mn/`), slash records
//! (`poi/k/`) and deadlines (`poi/x/`); see `docs/design/proof-of-intelligence.md`.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::Serialize;

use crate::address::Address;
use crate::error::{StateError, TxError};
use crate::event::hex32;
use crate::state::{self, Overlay, StateReader};
use crate::token::Amount;

/// Owned prefix.
pub const PREFIX: &[u8] = b"poi/";
/// Prefix of PoI job records.
pub const JOB_PREFIX: &[u8] = b"poi/j/";
/// Prefix of stored training specs.
pub const SPEC_PREFIX: &[u8] = b"poi/s/";
/// Prefix of verifier records.
pub const VERIFIER_PREFIX: &[u8] = b"poi/v/";
/// Prefix of the dense verifier index.
pub const VERIFIER_INDEX_PREFIX: &[u8] = b"poi/vi/";
/// Key of the verifier count.
pub const VERIFIER_COUNT_KEY: &[u8] = b"poi/vn";

/// What kind of work a PoI job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PoiKind {
    /// A training run of `steps` steps, committed as a Merkle root over `steps + 1` step
    /// digests.
    Training,
    /// `requests` inference requests, committed as a Merkle root over the outputs.
    Inference,
}

impl PoiKind {
    /// The stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Training => "training",
            Self::Inference => "inference",
        }
    }
}

/// Where a PoI job is in verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PoiStatus {
    /// Submitted; the market job is queued, matched or running (or ended without a commit:
    /// cancelled or expired, which the market records).
    Submitted,
    /// The provider committed through PoI and the market job is held for verification (or
    /// the owner's market dispute has taken it over).
    Verifying,
    /// Every spot check passed (or was waived): the market paid the provider.
    Verified,
    /// The referees upheld an accusation: the provider was slashed and the owner refunded.
    Failed,
}

impl PoiStatus {
    /// The stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Verifying => "verifying",
            Self::Verified => "verified",
            Self::Failed => "failed",
        }
    }
}

/// What a provider committed for a PoI job.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct PoiCommitment {
    /// Training: the Merkle root over the `steps + 1` step digests. Inference: the root over
    /// the outputs. Also the market job's `result_root`.
    #[serde(serialize_with = "hex32")]
    pub root: [u8; 32],
    /// Training: the digest of leaf `steps` (verified against `root` and recomputed from the
    /// three digests below). Inference: zero.
    #[serde(serialize_with = "hex32")]
    pub final_digest: [u8; 32],
    /// Training: the digest of the final parameters (names the model). Inference: zero.
    #[serde(serialize_with = "hex32")]
    pub params_digest: [u8; 32],
    /// Training: the digest of the final optimizer state. Inference: zero.
    #[serde(serialize_with = "hex32")]
    pub opt_digest: [u8; 32],
    /// 32 bytes honest agents fill at random (they will hide canaries, build step 7).
    #[serde(serialize_with = "hex32")]
    pub sealed: [u8; 32],
    /// Height of the commit.
    pub height: u64,
}

/// A job submitted through PoI.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct PoiJob {
    /// The market job id.
    pub id: u64,
    /// Training or inference.
    pub kind: PoiKind,
    /// Training: steps `S`. Inference: requests `m`.
    pub steps: u64,
    /// Training: `k = max(1, ceil(S / segments_target))` steps per segment (the spec's
    /// `checkpoint_every`). Inference: 1.
    pub segment_steps: u64,
    /// Training: `ceil(S / k)` segments. Inference: `m`, one per request.
    pub segments: u64,
    /// Training: blake3 of the stored spec (repops' `job_spec_hash`, the market job's
    /// `hyperparams_hash`). Inference: the input root (the market job's `input_hash`).
    #[serde(serialize_with = "hex32")]
    pub spec_hash: [u8; 32],
    /// What the provider committed, once it has.
    pub commitment: Option<PoiCommitment>,
    /// Where verification is.
    pub status: PoiStatus,
    /// The beacon round `(epoch, view)` whose seed draws this job's checks, set at commit
    /// (none on a chain without a beacon).
    pub draw_target: Option<(u64, u64)>,
    /// The drawn seed's randomness ([`crate::beacon::BeaconSeed::randomness`]), once drawn.
    #[serde(serialize_with = "crate::event::hex32_opt")]
    pub randomness: Option<[u8; 32]>,
    /// Checks created so far (spot checks, then referee re-checks): `poi/c/<job>/0..checks`.
    pub checks: u32,
    /// Spot checks still blocking settlement (open, or an accusation not yet decided).
    pub checks_pending: u32,
    /// Training: the quality evaluation ([`super::quality`]). Inference: none.
    pub quality: Option<super::quality::Quality>,
    /// Training: the registry id the job's model got when it settled, if it qualified.
    /// Inference: the registry id of the version it runs.
    pub model_id: Option<u64>,
    /// Whether its issuer revealed it as a canary ([`super::canary`]).
    pub canary_revealed: bool,
    /// Disputes opened so far: `poi/d/<job>/0..disputes`.
    pub disputes: u32,
    /// Disputes still open (they block settlement).
    pub disputes_open: u32,
}

/// A registered verifier: bonded stake locked with [`crate::staking::lock`] behind the spot
/// checks it will be assigned (build step 3).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct Verifier {
    /// The verifier's account.
    pub address: Address,
    /// Base units of its bonded stake locked as the verifier bond (exactly what PoI holds
    /// locked in staking for it).
    #[serde(serialize_with = "crate::event::decimal")]
    pub bond: Amount,
    /// Checks assigned to it and not yet answered (always 0 until spot checks, build step 3).
    pub open_checks: u32,
    /// Compute units it has re-executed (credits), total.
    pub credits_units: u64,
    /// Strikes (missed or wrong checks).
    pub strikes: u32,
    /// First height at which it is no longer jailed (0: never jailed).
    pub jailed_until: u64,
    /// Its position in the dense index `poi/vi/` (`0..count`).
    pub ordinal: u32,
}

/// Every record stored under `prefix`, decoded, in key order.
pub(crate) fn decode_all<T: BorshDeserialize>(
    state: &dyn StateReader,
    prefix: &[u8],
) -> Result<Vec<T>, StateError> {
    let mut out = Vec::new();
    let mut failure = None;
    state.scan_prefix(prefix, &mut |key, value| {
        match state::decode::<T>(key, value) {
            Ok(record) => out.push(record),
            Err(e) => failure = Some(e),
        }
        failure.is_none()
    })?;
    failure.map_or(Ok(out), Err)
}

/// Key of job `id`'s PoI record.
pub fn job_key(id: u64) -> Vec<u8> {
    [JOB_PREFIX, &id.to_be_bytes()].concat()
}

/// Key of job `id`'s stored spec.
pub fn spec_key(id: u64) -> Vec<u8> {
    [SPEC_PREFIX, &id.to_be_bytes()].concat()
}

/// The job id at the end of a `poi/j/` or `poi/s/` key.
pub fn key_id(key: &[u8], prefix: &[u8]) -> Option<u64> {
    let rest = key.strip_prefix(prefix)?;
    Some(u64::from_be_bytes(rest.try_into().ok()?))
}

/// Reads job `id`'s PoI record.
pub fn read_job(state: &dyn StateReader, id: u64) -> Result<Option<PoiJob>, StateError> {
    state::read_borsh(state, &job_key(id))
}

/// Reads job `id`'s stored spec.
pub fn read_spec(state: &dyn StateReader, id: u64) -> Result<Option<Vec<u8>>, StateError> {
    state.get(&spec_key(id))
}

/// Job `id`'s PoI record, or `not_poi_job`.
pub(crate) fn job_or_err(state: &Overlay<'_>, id: u64) -> Result<PoiJob, TxError> {
    read_job(state, id)?.ok_or(TxError::NotPoiJob(id))
}

/// Writes a PoI record.
pub(crate) fn write_job(state: &mut Overlay<'_>, job: &PoiJob) {
    state.put_borsh(job_key(job.id), job);
}

/// Key of `address`'s verifier record.
pub fn verifier_key(address: &Address) -> Vec<u8> {
    [VERIFIER_PREFIX, address.as_bytes()].concat()
}

/// Key of index entry `ordinal`.
pub fn verifier_index_key(ordinal: u32) -> Vec<u8> {
    [VERIFIER_INDEX_PREFIX, &ordinal.to_be_bytes()].concat()
}

/// Reads `address`'s verifier record.
pub fn read_verifier(
    state: &dyn StateReader,
    address: &Address,
) -> Result<Option<Verifier>, StateError> {
    state::read_borsh(state, &verifier_key(address))
}

/// The address at ordinal `ordinal` of the dense index.
pub fn verifier_at(state: &dyn StateReader, ordinal: u32) -> Result<Option<Address>, StateError> {
    state
        .get(&verifier_index_key(ordinal))?
        .map(|bytes| {
            <[u8; 32]>::try_from(bytes.as_slice())
                .map(Address)
                .map_err(|_| StateError(format!("poi verifier index {ordinal}: not an address")))
        })
        .transpose()
}

/// How many verifiers are registered (the dense index holds ordinals `0..count`).
pub fn verifier_count(state: &dyn StateReader) -> Result<u32, StateError> {
    Ok(state::read_borsh(state, VERIFIER_COUNT_KEY)?.unwrap_or(0))
}

/// Writes a verifier record.
pub(crate) fn write_verifier(state: &mut Overlay<'_>, verifier: &Verifier) {
    state.put_borsh(verifier_key(&verifier.address), verifier);
}

/// Writes the verifier count (deleting the key at 0).
pub(crate) fn write_verifier_count(state: &mut Overlay<'_>, count: u32) {
    if count == 0 {
        state.delete(VERIFIER_COUNT_KEY.to_vec());
    } else {
        state.put_borsh(VERIFIER_COUNT_KEY.to_vec(), &count);
    }
}
