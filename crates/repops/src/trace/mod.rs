//! Owns: operator traces, their commitment, the layout a step's trace must follow, the
//! referee's check of one served operator call, and single-operator re-execution: the
//! primitives of dispute bisection. Once two parties disagree on step `s`, they commit to
//! the step's operator trace, bisect to the first entry where they differ, and a referee
//! checks that one call against the [`Layout`] ([`check_call`]) and re-runs it
//! ([`Layout::execute`]).
//!
//! - [`call`]: [`OpCall`] and its operator file.
//! - `execute`: [`execute`], [`execute_digest`].
//! - [`layout`]: [`Layout`], [`Expected`], [`Source`], [`BatchPart`].
//! - [`check`]: [`check_call`], [`verify_prefix`], [`CheckError`].
//!
//! # Format
//!
//! ```text
//! tensor_digest(x) = tensors_digest("poi/repops/op-tensor/v1", [("", [len x], x)])
//! leaf(prev, e)    = blake3( 16 u64 | "poi/repops/op/v2" | prev [32] | index u32
//!                          | kind_len u64 | kind | count u32 | outputs [32] * count )
//! l_0 = leaf(start, e_0),  l_i = leaf(l_(i-1), e_i),  start = step digest of s - 1
//! trace_root = commit::merkle_root([l_0, .., l_(N-1)])
//! ```
//!
//! Integers are little endian. `outputs` are the entry's per-output digests: the
//! [`tensor_digest`] of each output tensor alone, so that an input of a later call can be
//! checked against exactly one earlier output (and against a state tensor or a batch part,
//! hashed the same way). The last entry of a step is the `step_state` pseudo-operator: its
//! inputs are the optimizer's outputs, and its outputs are not tensors but the parameter
//! digest, the optimizer digest and the step digest ([`crate::commit::state_digests`]), so a
//! trace ends at the value the job's step tree commits as leaf `s`.
//!
//! The leaves are chained (each hashes the one before, the first hashes the agreed state's
//! step digest): two traces that agree on leaf `i` agree on every entry up to `i`. Without
//! the chain a bisection over a plain list finds *an* index `i` whose predecessor agrees,
//! not the first divergence, and a referee could not tell whose earlier outputs feed call
//! `i`. The tree is the job tree's ([`crate::commit::merkle`]), proofs are [`MerkleProof`]s.
//!
//! Invariants: a [`crate::exec::Exec`] trace has one entry per call, numbered from 0, with
//! the digests of the outputs the call wrote; [`execute_digest`] of a captured call equals
//! its entry's outputs bit for bit; a traced step has [`Layout::len`] entries and every
//! captured call passes [`check_call`].
//!
//! Stability: ALPHA; encodings are versioned by their domain tags.

pub mod call;
pub mod check;
mod execute;
pub mod layout;
mod layout_charlm;

use serde::{Deserialize, Serialize};

pub use call::{OP_ELEMS_MAX, OP_FILE_MAGIC, OpCall};
pub use check::{CheckError, check_call, verify_prefix};
pub use execute::{execute, execute_digest};
pub use layout::{BatchPart, Expected, Layout, Source};

use crate::commit::{Digest, MerkleProof, NamedTensor, merkle_proof, merkle_root, tensors_digest};
use crate::train::Result;

/// Domain tag of a trace entry's leaf.
pub const OP_DOMAIN: &str = "poi/repops/op/v2";
/// Domain tag of one operator input or output tensor.
pub const TENSOR_DOMAIN: &str = "poi/repops/op-tensor/v1";

/// One entry of an operator trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceEntry {
    /// Position of the call in the step, from 0.
    pub index: u32,
    /// The operator's name ([`crate::meter::OpKind::name`]).
    pub op: String,
    /// One digest per output, in output order: [`tensor_digest`] of each output tensor, or
    /// for `step_state` the parameter, optimizer and step digests.
    pub outputs: Vec<Digest>,
}

impl TraceEntry {
    /// The entry's Merkle leaf, chained to `prev` (the previous entry's leaf, or the agreed
    /// state's step digest for entry 0); see the module format.
    pub fn leaf(&self, prev: &Digest) -> Digest {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&(OP_DOMAIN.len() as u64).to_le_bytes());
        hasher.update(OP_DOMAIN.as_bytes());
        hasher.update(&prev.0);
        hasher.update(&self.index.to_le_bytes());
        hasher.update(&(self.op.len() as u64).to_le_bytes());
        hasher.update(self.op.as_bytes());
        hasher.update(&(self.outputs.len() as u32).to_le_bytes());
        for output in &self.outputs {
            hasher.update(&output.0);
        }
        hasher.finalize().into()
    }
}

/// The digest of one operator tensor (an output, or an input checked against one).
pub fn tensor_digest(values: &[f32]) -> Digest {
    let shape = [values.len()];
    tensors_digest(TENSOR_DOMAIN, &[NamedTensor::new("", &shape, values)])
        .expect("a 1-D view always matches its data")
}

/// The chained leaves of `entries`, starting from `start` (the agreed state's step digest).
pub fn trace_leaves(start: &Digest, entries: &[TraceEntry]) -> Vec<Digest> {
    let mut prev = *start;
    entries
        .iter()
        .map(|e| {
            prev = e.leaf(&prev);
            prev
        })
        .collect()
}

/// The trace root: [`merkle_root`] over [`trace_leaves`].
pub fn trace_root(start: &Digest, entries: &[TraceEntry]) -> Digest {
    merkle_root(&trace_leaves(start, entries))
}

/// The proof that leaf `index` of the trace is under [`trace_root`]; verify it with
/// [`MerkleProof::verify`] on that entry's chained leaf.
pub fn trace_proof(start: &Digest, entries: &[TraceEntry], index: u32) -> Result<MerkleProof> {
    Ok(merkle_proof(
        &trace_leaves(start, entries),
        u64::from(index),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::CpuBackend;
    use crate::meter::OpKind;

    #[test]
    fn op_files_round_trip_and_reject_garbage() {
        let call = OpCall {
            kind: OpKind::CrossEntropy,
            dims: vec![2, 3],
            scalars: vec![],
            inputs: vec![vec![0.5, -1.0, 2.0, 0.0, 1.0, 3.0]],
            ids: vec![2, 0],
        };
        let back = OpCall::from_bytes(&call.to_bytes()).unwrap();
        assert_eq!(back, call);
        let digests = execute_digest(&CpuBackend, &call).unwrap();
        assert_eq!(digests.len(), 2, "dlogits and loss");
        assert_eq!(digests, execute_digest(&CpuBackend, &back).unwrap());
        let mut bytes = call.to_bytes();
        bytes.pop();
        assert!(OpCall::from_bytes(&bytes).is_err());
        assert!(OpCall::from_bytes(b"nonsense").is_err());
    }

    #[test]
    fn leaves_chain_and_commit_every_field() {
        let entry = |index: u32, op: &str, outs: &[&[u8]]| TraceEntry {
            index,
            op: op.into(),
            outputs: outs.iter().map(|o| Digest::of(o)).collect(),
        };
        let start = Digest::of(b"state s-1");
        let a = [
            entry(0, "add_into", &[b"x"]),
            entry(1, "relu_forward", &[b"y"]),
        ];
        let leaves = trace_leaves(&start, &a);
        assert_eq!(leaves[1], a[1].leaf(&a[0].leaf(&start)));
        // Changing entry 0 changes every later leaf; so does the start.
        let mut b = a.clone();
        b[0].outputs[0] = Digest::of(b"z");
        assert!(
            trace_leaves(&start, &b)
                .iter()
                .zip(&leaves)
                .all(|(x, y)| x != y)
        );
        assert_ne!(trace_leaves(&Digest::of(b"other"), &a)[1], leaves[1]);
        for changed in [
            entry(0, "add_into", &[b"x", b"x"]),
            entry(0, "add_assign", &[b"x"]),
            entry(1, "add_into", &[b"x"]),
        ] {
            assert_ne!(changed.leaf(&start), leaves[0]);
        }
        let root = trace_root(&start, &a);
        for i in 0..2 {
            let proof = trace_proof(&start, &a, i).unwrap();
            proof.verify(&leaves[i as usize], &root).unwrap();
            assert!(proof.verify(&leaves[1 - i as usize], &root).is_err());
        }
        // One tensor's digest is independent of where it sits.
        assert_eq!(
            tensor_digest(&[1.0, f32::NAN]),
            tensor_digest(&[1.0, -f32::NAN])
        );
        assert_ne!(tensor_digest(&[0.0]), tensor_digest(&[-0.0]));
    }

    #[test]
    fn leaf_and_tensor_encodings_follow_the_format_and_are_pinned() {
        let values = [1.0f32, -0.0, 2.5];
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&(TENSOR_DOMAIN.len() as u64).to_le_bytes());
        bytes.extend_from_slice(TENSOR_DOMAIN.as_bytes());
        bytes.extend_from_slice(&1u64.to_le_bytes()); // one tensor
        bytes.extend_from_slice(&0u64.to_le_bytes()); // named ""
        bytes.extend_from_slice(&1u64.to_le_bytes()); // rank 1
        bytes.extend_from_slice(&3u64.to_le_bytes());
        values
            .iter()
            .for_each(|v| bytes.extend_from_slice(&v.to_le_bytes()));
        let tensor = tensor_digest(&values);
        assert_eq!(tensor, Digest::of(&bytes));

        let entry = TraceEntry {
            index: 7,
            op: "relu_forward".into(),
            outputs: vec![tensor],
        };
        let prev = Digest::of(b"prev");
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&16u64.to_le_bytes());
        bytes.extend_from_slice(b"poi/repops/op/v2");
        bytes.extend_from_slice(&prev.0);
        bytes.extend_from_slice(&7u32.to_le_bytes());
        bytes.extend_from_slice(&12u64.to_le_bytes());
        bytes.extend_from_slice(b"relu_forward");
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&tensor.0);
        assert_eq!(entry.leaf(&prev), Digest::of(&bytes));
        assert_eq!(
            trace_root(&prev, std::slice::from_ref(&entry)),
            merkle_root(&[Digest::of(&bytes)])
        );
        assert_eq!(
            tensor.to_hex(),
            "1193f76a86c05f39e494e2af70028ecfc70bbdcdbac60b9aee0ec5c03c57557c"
        );
        assert_eq!(
            entry.leaf(&prev).to_hex(),
            "22c3369f50652b0666d060103cdbaaaa91126b722c47369fa6e04a0b3f2b1e24"
        );
    }
}
