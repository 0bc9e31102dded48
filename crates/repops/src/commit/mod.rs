//! Commitments to training: step digests, the Merkle tree over them, checkpoints and the
//! proofs that tie a checkpoint to a committed root.
//!
//! Stability: ALPHA; the encodings are versioned by their domain tags and may change before
//! the first network launch, but only by bumping a tag.
//!
//! Owns: the canonical byte encoding of named f32 tensors, the step digest, the Merkle tree
//! (leaf and node hashing, proofs), and the checkpoint file format.
//!
//! Invariants:
//! - A digest is a pure function of names, shapes, the bits of the data (every NaN
//!   canonicalised to `0x7fc0_0000`), the step number and the job spec hash; never of
//!   memory layout, thread count or platform.
//! - Every hash is domain separated: tensor groups, step digests, Merkle leaves and nodes each
//!   start with their own tag, so no input of one kind hashes like another.
//! - A checkpoint file is a pure function of its contents (byte-stable), and loading one
//!   either returns tensors whose recomputed digest equals the stored one or a typed error.
//!
//! - [`digest`]: [`Digest`], [`NamedTensor`], [`tensors_digest`], [`step_digest`],
//!   [`state_digests`].
//! - [`merkle`]: RFC 6962-shaped Merkle tree, [`MerkleProof`], [`MerkleBuilder`].
//! - [`checkpoint`]: safetensors checkpoints and [`CheckpointProof`]; loading them:
//!   [`read_checkpoint`], [`decode_checkpoint`].

pub mod checkpoint;
pub mod digest;
mod error;
pub mod merkle;
mod restore;

pub use checkpoint::{
    Checkpoint, CheckpointMeta, CheckpointProof, OwnedTensor, checkpoint_bytes, write_checkpoint,
};
pub use digest::{
    Digest, NamedTensor, canonical_f32_bits, state_digests, step_digest, tensors_digest,
};
pub use error::{CommitError, Result};
pub use merkle::{MerkleBuilder, MerkleProof, merkle_proof, merkle_root};
pub use restore::{decode_checkpoint, read_checkpoint};
