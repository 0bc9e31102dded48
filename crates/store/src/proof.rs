//! Merkle proofs of state against a state root.
//!
//! Owns: [`StateProof`] and [`verify_proof`]. Invariants: a proof is a jmt `SparseMerkleProof`
//! over SHA-256, keyed by SHA-256 of the raw key; its bytes are its borsh encoding.

use borsh::{BorshDeserialize, BorshSerialize};
use jmt::RootHash;
use jmt::proof::SparseMerkleProof;
use sha2::Sha256;

use crate::error::{Result, StoreError};
use crate::tree::key_hash;

/// Proof that a key has a value, or has none, under a state root.
///
/// Its byte form is borsh ([`StateProof::to_bytes`]), suitable for hex in RPC answers.
#[derive(Clone, Debug, PartialEq, BorshSerialize, BorshDeserialize)]
pub struct StateProof {
    inner: SparseMerkleProof<Sha256>,
}

impl StateProof {
    pub(crate) fn new(inner: SparseMerkleProof<Sha256>) -> Self {
        Self { inner }
    }

    /// Borsh bytes of the proof.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Writing into a Vec cannot fail, and a proof has at most 256 siblings (u32 lengths).
        borsh::to_vec(self).expect("borsh encoding of a proof into a Vec is infallible")
    }

    /// Decodes borsh bytes made by [`StateProof::to_bytes`]; trailing bytes are refused.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        borsh::from_slice(bytes).map_err(StoreError::ProofDecode)
    }
}

/// Verifies that `key` maps to `value` under `root`, or is absent when `value` is `None`.
pub fn verify_proof(
    root: [u8; 32],
    key: &[u8],
    value: Option<&[u8]>,
    proof: &StateProof,
) -> Result<()> {
    proof
        .inner
        .verify(RootHash(root), key_hash(key), value)
        .map_err(|err| StoreError::ProofInvalid {
            reason: err.to_string(),
        })
}
