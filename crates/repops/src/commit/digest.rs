//! Canonical digests of named f32 tensors and of a whole training step.
//!
//! # Format
//!
//! Every integer is little endian. A *group* of tensors (the parameters, or the optimizer
//! state) hashes as
//!
//! ```text
//! blake3( tag_len u64 | tag bytes            domain tag, e.g. "poi/repops/params/v1"
//!       | count u64                          number of tensors
//!       | per tensor, in the order given:
//!           name_len u64 | name (UTF-8)
//!           rank u64 | dim u64 * rank        shape, outermost first
//!           value u32 * product(dims)        f32 bits, row-major; NaN -> 0x7fc0_0000 )
//! ```
//!
//! A *step digest* hashes the two group digests with the job and the step:
//!
//! ```text
//! blake3( tag_len u64 | "poi/repops/step/v1"
//!       | job_spec_hash [32] | step u64
//!       | params_digest [32] | opt_digest [32] )
//! ```
//!
//! The order of tensors is part of the digest: the model defines it and must keep it fixed.
//! NaNs are canonicalised because their payload bits are not reproducible across
//! instruction sets; `-0.0` and `+0.0` are *not* merged, because every deterministic kernel
//! produces the same signed zero and a difference there is a real divergence. The job spec
//! hash is included so a step digest cannot be replayed as a commitment of another job, and
//! so every byte of a checkpoint's metadata is covered by the digest or a format check.

use std::fmt;

use super::error::{CommitError, Result};

/// Domain tag of the parameter group in [`step_digest`].
pub const PARAMS_DOMAIN: &str = "poi/repops/params/v1";
/// Domain tag of the optimizer-state group in [`step_digest`].
pub const OPT_DOMAIN: &str = "poi/repops/opt/v1";
/// Domain tag of the step digest.
pub const STEP_DOMAIN: &str = "poi/repops/step/v1";
/// The bit pattern every NaN is hashed as (the default quiet NaN).
pub const CANONICAL_NAN_BITS: u32 = 0x7fc0_0000;

/// Values hashed per `Hasher::update` call (64 KiB on the stack): blake3 hashes the 1 KiB
/// chunks of one call in parallel SIMD lanes, so large calls run several times faster than
/// 4 KiB ones. The bytes hashed, and so the digest, do not depend on this size.
const CHUNK_VALUES: usize = 16 * 1024;

/// A 32-byte BLAKE3 digest. Displays (and serialises) as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(text: &str) -> Result<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| CommitError::BadHex {
            text: text.chars().take(80).collect(),
        })?;
        Ok(Self(bytes))
    }

    /// BLAKE3 of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }
}

impl From<blake3::Hash> for Digest {
    fn from(hash: blake3::Hash) -> Self {
        Self(*hash.as_bytes())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

/// A borrowed view of one named tensor: a name, a row-major shape and its values.
#[derive(Debug, Clone, Copy)]
pub struct NamedTensor<'a> {
    /// The tensor's name, unique within its group.
    pub name: &'a str,
    /// Dimensions, outermost first; `[]` is a scalar.
    pub shape: &'a [usize],
    /// `product(shape)` values, row-major.
    pub data: &'a [f32],
}

impl<'a> NamedTensor<'a> {
    /// A view; the shape is checked when the tensor is digested or written.
    pub fn new(name: &'a str, shape: &'a [usize], data: &'a [f32]) -> Self {
        Self { name, shape, data }
    }

    /// Checks that the shape describes exactly `data.len()` values.
    pub fn validate(&self) -> Result<()> {
        let elements = self
            .shape
            .iter()
            .try_fold(1u64, |acc, &dim| acc.checked_mul(dim as u64));
        if elements == Some(self.data.len() as u64) {
            return Ok(());
        }
        Err(CommitError::ShapeMismatch {
            name: self.name.to_owned(),
            shape: self.shape.to_vec(),
            elements: elements.unwrap_or(u64::MAX),
            data_len: self.data.len() as u64,
        })
    }
}

/// The bits a value is hashed as: its own, except that every NaN becomes
/// [`CANONICAL_NAN_BITS`].
#[inline]
pub fn canonical_f32_bits(value: f32) -> u32 {
    if value.is_nan() {
        CANONICAL_NAN_BITS
    } else {
        value.to_bits()
    }
}

fn update_len_prefixed(hasher: &mut blake3::Hasher, bytes: &[u8]) {
    hasher.update(&(bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

fn update_values(hasher: &mut blake3::Hasher, data: &[f32]) {
    let mut buffer = [0u8; CHUNK_VALUES * 4];
    for chunk in data.chunks(CHUNK_VALUES) {
        for (slot, &value) in buffer.chunks_exact_mut(4).zip(chunk) {
            slot.copy_from_slice(&canonical_f32_bits(value).to_le_bytes());
        }
        hasher.update(&buffer[..chunk.len() * 4]);
    }
}

/// The digest of a group of tensors under domain tag `domain`, in the order given (see the
/// module docs for the exact bytes).
pub fn tensors_digest(domain: &str, tensors: &[NamedTensor<'_>]) -> Result<Digest> {
    let mut hasher = blake3::Hasher::new();
    update_len_prefixed(&mut hasher, domain.as_bytes());
    hasher.update(&(tensors.len() as u64).to_le_bytes());
    for tensor in tensors {
        tensor.validate()?;
        update_len_prefixed(&mut hasher, tensor.name.as_bytes());
        hasher.update(&(tensor.shape.len() as u64).to_le_bytes());
        for &dim in tensor.shape {
            hasher.update(&(dim as u64).to_le_bytes());
        }
        update_values(&mut hasher, tensor.data);
    }
    Ok(hasher.finalize().into())
}

/// The digest of the training state after step `step` of the job whose spec hashes to
/// `job_spec_hash`: parameters and optimizer state, each in the model's fixed order.
pub fn step_digest(
    job_spec_hash: &Digest,
    step: u64,
    params: &[NamedTensor<'_>],
    opt: &[NamedTensor<'_>],
) -> Result<Digest> {
    let [_, _, step_digest] = state_digests(job_spec_hash, step, params, opt)?;
    Ok(step_digest)
}

/// The parameter group digest, the optimizer group digest and the [`step_digest`] built
/// from them, in that order (the outputs of a trace's `step_state` entry).
pub fn state_digests(
    job_spec_hash: &Digest,
    step: u64,
    params: &[NamedTensor<'_>],
    opt: &[NamedTensor<'_>],
) -> Result<[Digest; 3]> {
    let params_digest = tensors_digest(PARAMS_DOMAIN, params)?;
    let opt_digest = tensors_digest(OPT_DOMAIN, opt)?;
    let mut hasher = blake3::Hasher::new();
    update_len_prefixed(&mut hasher, STEP_DOMAIN.as_bytes());
    hasher.update(&job_spec_hash.0);
    hasher.update(&step.to_le_bytes());
    hasher.update(&params_digest.0);
    hasher.update(&opt_digest.0);
    Ok([params_digest, opt_digest, hasher.finalize().into()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_garbage() {
        let digest = Digest::of(b"poi");
        assert_eq!(Digest::from_hex(&digest.to_hex()).unwrap(), digest);
        assert!(Digest::from_hex("zz").is_err());
        assert!(Digest::from_hex(&"0".repeat(63)).is_err());
    }

    #[test]
    fn chunk_boundaries_do_not_change_the_digest_encoding() {
        // 2.5 chunks of values hash as one contiguous little-endian stream.
        let data: Vec<f32> = (0..2_560).map(|i| i as f32 * 0.5).collect();
        let shape = [data.len()];
        let digest = tensors_digest("t", &[NamedTensor::new("x", &shape, &data)]).unwrap();
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&1u64.to_le_bytes());
        bytes.extend_from_slice(b"t");
        bytes.extend_from_slice(&1u64.to_le_bytes());
        bytes.extend_from_slice(&1u64.to_le_bytes());
        bytes.extend_from_slice(b"x");
        bytes.extend_from_slice(&1u64.to_le_bytes());
        bytes.extend_from_slice(&(data.len() as u64).to_le_bytes());
        for value in &data {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
        assert_eq!(digest, Digest::of(&bytes));
    }

    #[test]
    fn shape_must_match_data() {
        let err = tensors_digest("t", &[NamedTensor::new("x", &[2, 3], &[0.0; 5])]);
        assert!(matches!(
            err,
            Err(CommitError::ShapeMismatch { elements: 6, .. })
        ));
    }
}
