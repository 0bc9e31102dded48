//! Owns: operator traces and single-operator re-execution, the primitive of dispute
//! bisection: once two parties disagree on a step digest, they compare the step's operator
//! trace, find the first operator whose output digest differs, and a referee re-runs just
//! that operator from its recorded inputs.
//!
//! Invariants: [`outputs_digest`] is a [`tensors_digest`] (canonical NaNs, fixed order) under
//! [`OP_DOMAIN`]; [`execute`] runs exactly the backend method the model ran, so re-executing
//! a captured call reproduces the digest in the trace bit for bit.
//!
//! # Operator file format
//!
//! ```text
//! "POIOPCL1" | header_len u64 LE | header JSON (no whitespace)
//!            | every input: len f32 values, LE, NaN -> 0x7fc0_0000 | ids: u32 LE
//! header = {"kind":"linear_forward","dims":[..],"scalars":[f32 bits as u32..],
//!           "inputs":[len..],"ids":len}
//! ```
//!
//! Stability: ALPHA.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::commit::{Digest, NamedTensor, canonical_f32_bits, tensors_digest};
use crate::gemm::Dims;
use crate::kernels::{self, AttnDims};
use crate::meter::OpKind;
use crate::optim::{AdamW, Sgd};
use crate::train::{Result, TrainError};

/// Domain tag of an operator's output digest.
pub const OP_DOMAIN: &str = "poi/repops/op/v1";
/// Magic bytes opening an operator file.
pub const OP_FILE_MAGIC: &[u8; 8] = b"POIOPCL1";
/// Largest buffer (elements) an operator file may make [`execute`] allocate: 1 GiB of f32.
pub const OP_ELEMS_MAX: u64 = 1 << 28;
/// Largest operator file header, bytes.
const HEADER_BYTES_MAX: u64 = 1 << 16;

/// One entry of an operator trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceEntry {
    /// Position of the call in the step, from 0.
    pub index: u32,
    /// The operator's name ([`OpKind::name`]).
    pub op: String,
    /// [`outputs_digest`] of its outputs.
    pub digest: Digest,
}

/// The digest of an operator's outputs: tensors named `"0"`, `"1"`, ... of shape `[len]`.
pub fn outputs_digest(outputs: &[&[f32]]) -> Digest {
    let names: Vec<String> = (0..outputs.len()).map(|i| i.to_string()).collect();
    let shapes: Vec<[usize; 1]> = outputs.iter().map(|o| [o.len()]).collect();
    let views: Vec<NamedTensor<'_>> = outputs
        .iter()
        .enumerate()
        .map(|(i, o)| NamedTensor::new(&names[i], &shapes[i], o))
        .collect();
    tensors_digest(OP_DOMAIN, &views).expect("1-D views always match their data")
}

/// A recorded operator call: kind, integer dimensions (as in [`crate::meter`]), scalar
/// parameters, and copies of its inputs, in the order [`execute`] documents.
#[derive(Debug, Clone, PartialEq)]
pub struct OpCall {
    /// The operator.
    pub kind: OpKind,
    /// Its dimensions.
    pub dims: Vec<u64>,
    /// Scalar parameters (`eps`; AdamW `lr b1 b2 eps wd`; SGD `lr momentum wd`).
    pub scalars: Vec<f32>,
    /// Float inputs.
    pub inputs: Vec<Vec<f32>>,
    /// Integer inputs (targets, token ids), if any.
    pub ids: Vec<u32>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    kind: String,
    dims: Vec<u64>,
    scalars: Vec<u32>,
    inputs: Vec<u64>,
    ids: u64,
}

fn bad(reason: impl Into<String>) -> TrainError {
    TrainError::OpFile {
        reason: reason.into(),
    }
}

impl OpCall {
    /// The operator file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let header = Header {
            kind: self.kind.name().to_owned(),
            dims: self.dims.clone(),
            scalars: self
                .scalars
                .iter()
                .map(|&s| canonical_f32_bits(s))
                .collect(),
            inputs: self.inputs.iter().map(|i| i.len() as u64).collect(),
            ids: self.ids.len() as u64,
        };
        let json = serde_json::to_vec(&header).expect("headers always serialise");
        let mut out = Vec::with_capacity(16 + json.len());
        out.extend_from_slice(OP_FILE_MAGIC);
        out.extend_from_slice(&(json.len() as u64).to_le_bytes());
        out.extend_from_slice(&json);
        for value in self.inputs.iter().flatten() {
            out.extend_from_slice(&canonical_f32_bits(*value).to_le_bytes());
        }
        for id in &self.ids {
            out.extend_from_slice(&id.to_le_bytes());
        }
        out
    }

    /// Parses an operator file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let rest = bytes
            .strip_prefix(OP_FILE_MAGIC)
            .ok_or_else(|| bad("missing POIOPCL1 magic"))?;
        let (len, rest) = rest.split_at_checked(8).ok_or_else(|| bad("truncated"))?;
        let len = u64::from_le_bytes(len.try_into().expect("8 bytes"));
        if len > HEADER_BYTES_MAX || len > rest.len() as u64 {
            return Err(bad(format!("header length {len} is out of range")));
        }
        let (json, mut data) = rest.split_at(len as usize);
        let header: Header =
            serde_json::from_slice(json).map_err(|e| bad(format!("header: {e}")))?;
        let kind = OpKind::parse(&header.kind)
            .ok_or_else(|| bad(format!("unknown op {}", header.kind)))?;
        if header.dims.len() != kind.dims_len() {
            return Err(bad(format!("{kind} takes {} dims", kind.dims_len())));
        }
        let total: u64 = header
            .inputs
            .iter()
            .fold(header.ids, |a, &l| a.saturating_add(l));
        if total.saturating_mul(4) != data.len() as u64 || total > OP_ELEMS_MAX {
            return Err(bad(format!("{} data bytes for {total} values", data.len())));
        }
        let mut words = |n: u64| -> Vec<u32> {
            let (head, tail) = data.split_at(n as usize * 4);
            data = tail;
            head.chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect()
        };
        let inputs = header
            .inputs
            .iter()
            .map(|&n| words(n).into_iter().map(f32::from_bits).collect())
            .collect();
        let ids = words(header.ids);
        Ok(Self {
            kind,
            dims: header.dims,
            scalars: header.scalars.into_iter().map(f32::from_bits).collect(),
            inputs,
            ids,
        })
    }

    /// Writes the operator file.
    pub fn write(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_bytes()).map_err(TrainError::io(path))
    }

    /// Reads an operator file.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(TrainError::io(path))?;
        Self::from_bytes(&bytes)
    }

    fn input(&self, i: usize) -> Result<&[f32]> {
        self.inputs
            .get(i)
            .map(Vec::as_slice)
            .ok_or_else(|| bad(format!("{} needs input {i}", self.kind)))
    }

    fn scalar(&self, i: usize) -> Result<f32> {
        self.scalars
            .get(i)
            .copied()
            .ok_or_else(|| bad(format!("{} needs scalar {i}", self.kind)))
    }

    /// `product(dims[i] for i in idx)` as a buffer length, bounded by [`OP_ELEMS_MAX`].
    fn len(&self, idx: &[usize]) -> Result<usize> {
        let n = idx
            .iter()
            .try_fold(1u64, |a, &i| a.checked_mul(self.dims[i]))
            .filter(|&n| n <= OP_ELEMS_MAX)
            .ok_or_else(|| bad(format!("{} dims {:?} too large", self.kind, self.dims)))?;
        Ok(n as usize)
    }

    fn dim(&self, i: usize) -> usize {
        self.dims[i] as usize
    }
}

/// Re-runs a recorded call on `backend`; returns its outputs in trace order:
///
/// - `linear_forward` (x, w, \[b\]) -> y; `linear_backward` (x, w, dy) -> \[dx\], dw, \[db\]
/// - `relu/gelu_forward` (x) -> y; `relu/gelu_backward` (dy, x) -> dx
/// - `add_into` (a, b) -> out; `add_assign` (acc, x) -> acc
/// - `cross_entropy` (logits; ids = targets) -> dlogits, \[loss\]
/// - `layer_norm_forward` (x, gamma, beta) -> y, mean, rstd;
///   `layer_norm_backward` (dy, x, gamma, mean, rstd) -> dx, dgamma, dbeta
/// - `embedding_forward` (table; ids) -> out; `embedding_backward` (dout; ids) -> dtable
/// - `attention_forward` (q, k, v) -> out, probs;
///   `attention_backward` (dout, q, k, v, probs) -> dq, dk, dv
/// - `split_heads`, `merge_heads` (x) -> out
/// - `adamw_step` (w, m, v, g) -> w, m, v; `sgd_step` (w, velocity, g) -> w, velocity
pub fn execute(backend: &dyn Backend, call: &OpCall) -> Result<Vec<Vec<f32>>> {
    if call.dims.len() != call.kind.dims_len() {
        return Err(bad(format!(
            "{} takes {} dims",
            call.kind,
            call.kind.dims_len()
        )));
    }
    let zeros = |n: usize| vec![0.0f32; n];
    let d = |i: usize| call.dim(i);
    let outs = match call.kind {
        OpKind::LinearForward => {
            let mut y = zeros(call.len(&[0, 2])?);
            let b = if call.dims[3] == 1 {
                Some(call.input(2)?)
            } else {
                None
            };
            let dims = Dims::new(d(0), d(1), d(2));
            backend.linear_forward(&mut y, call.input(0)?, call.input(1)?, b, dims)?;
            vec![y]
        }
        OpKind::LinearBackward => {
            let (mut dx, mut dw, mut db) = (
                zeros(call.len(&[0, 1])?),
                zeros(call.len(&[1, 2])?),
                zeros(d(2)),
            );
            let dims = Dims::new(d(0), d(1), d(2));
            let (has_dx, has_db) = (call.dims[3] == 1, call.dims[4] == 1);
            backend.linear_backward(
                has_dx.then_some(&mut dx[..]),
                &mut dw,
                has_db.then_some(&mut db[..]),
                call.input(0)?,
                call.input(1)?,
                call.input(2)?,
                dims,
            )?;
            let mut outs = Vec::new();
            if has_dx {
                outs.push(dx);
            }
            outs.push(dw);
            if has_db {
                outs.push(db);
            }
            outs
        }
        OpKind::ReluForward | OpKind::GeluForward => {
            let mut y = zeros(call.len(&[0])?);
            let x = call.input(0)?;
            if call.kind == OpKind::GeluForward {
                backend.gelu_forward(&mut y, x)?;
            } else {
                backend.relu_forward(&mut y, x)?;
            }
            vec![y]
        }
        OpKind::ReluBackward | OpKind::GeluBackward => {
            let mut dx = zeros(call.len(&[0])?);
            let (dy, x) = (call.input(0)?, call.input(1)?);
            if call.kind == OpKind::GeluBackward {
                backend.gelu_backward(&mut dx, dy, x)?;
            } else {
                backend.relu_backward(&mut dx, dy, x)?;
            }
            vec![dx]
        }
        OpKind::AddInto => {
            let mut out = zeros(call.len(&[0])?);
            backend.add_into(&mut out, call.input(0)?, call.input(1)?)?;
            vec![out]
        }
        OpKind::AddAssign => {
            let mut acc = call.input(0)?.to_vec();
            backend.add_assign(&mut acc, call.input(1)?)?;
            vec![acc]
        }
        OpKind::CrossEntropy => {
            let mut dl = zeros(call.len(&[0, 1])?);
            let loss = backend.cross_entropy(&mut dl, call.input(0)?, &call.ids, d(0), d(1))?;
            vec![dl, vec![loss]]
        }
        OpKind::LayerNormForward => {
            let (mut y, mut mean, mut rstd) = (zeros(call.len(&[0, 1])?), zeros(d(0)), zeros(d(0)));
            let (x, g, b) = (call.input(0)?, call.input(1)?, call.input(2)?);
            let eps = call.scalar(0)?;
            backend.layer_norm_forward(&mut y, &mut mean, &mut rstd, x, g, b, d(0), d(1), eps)?;
            vec![y, mean, rstd]
        }
        OpKind::LayerNormBackward => {
            let (mut dx, mut dg, mut db) = (zeros(call.len(&[0, 1])?), zeros(d(1)), zeros(d(1)));
            let saved = (call.input(3)?, call.input(4)?);
            let (dy, x, g) = (call.input(0)?, call.input(1)?, call.input(2)?);
            backend.layer_norm_backward(&mut dx, &mut dg, &mut db, dy, x, g, saved, d(0), d(1))?;
            vec![dx, dg, db]
        }
        OpKind::EmbeddingForward => {
            let mut out = zeros(call.len(&[0, 2])?);
            backend.embedding_forward(&mut out, call.input(0)?, &call.ids, d(1), d(2))?;
            vec![out]
        }
        OpKind::EmbeddingBackward => {
            let mut dt = zeros(call.len(&[1, 2])?);
            backend.embedding_backward(&mut dt, call.input(0)?, &call.ids, d(1), d(2))?;
            vec![dt]
        }
        OpKind::AttentionForward => {
            let dims = AttnDims {
                bh: d(0),
                t: d(1),
                dh: d(2),
            };
            let (mut out, mut probs) = (zeros(call.len(&[0, 1, 2])?), zeros(call.len(&[0, 1, 1])?));
            let (q, k, v) = (call.input(0)?, call.input(1)?, call.input(2)?);
            backend.attention_forward(&mut out, &mut probs, q, k, v, dims)?;
            vec![out, probs]
        }
        OpKind::AttentionBackward => {
            let dims = AttnDims {
                bh: d(0),
                t: d(1),
                dh: d(2),
            };
            let n = call.len(&[0, 1, 2])?;
            let (mut dq, mut dk, mut dv) = (zeros(n), zeros(n), zeros(n));
            let qkv = (call.input(1)?, call.input(2)?, call.input(3)?);
            let (dout, probs) = (call.input(0)?, call.input(4)?);
            backend.attention_backward(&mut dq, &mut dk, &mut dv, dout, qkv, probs, dims)?;
            vec![dq, dk, dv]
        }
        OpKind::SplitHeads | OpKind::MergeHeads => {
            let mut out = zeros(call.len(&[0, 1, 2, 3])?);
            let shape = (d(0), d(1), d(2), d(3));
            if call.kind == OpKind::MergeHeads {
                kernels::merge_heads(&mut out, call.input(0)?, shape)?;
            } else {
                kernels::split_heads(&mut out, call.input(0)?, shape)?;
            }
            vec![out]
        }
        OpKind::AdamwStep => {
            let opt = AdamW {
                lr: call.scalar(0)?,
                beta1: call.scalar(1)?,
                beta2: call.scalar(2)?,
                eps: call.scalar(3)?,
                weight_decay: call.scalar(4)?,
            };
            let (mut w, mut m, mut v) = (
                call.input(0)?.to_vec(),
                call.input(1)?.to_vec(),
                call.input(2)?.to_vec(),
            );
            let t = u32::try_from(call.dims[1]).map_err(|_| bad("adamw step over u32"))?;
            backend.adamw_step(&opt, &mut w, &mut m, &mut v, call.input(3)?, t)?;
            vec![w, m, v]
        }
        OpKind::SgdStep => {
            let opt = Sgd {
                lr: call.scalar(0)?,
                momentum: call.scalar(1)?,
                weight_decay: call.scalar(2)?,
            };
            let (mut w, mut vel) = (call.input(0)?.to_vec(), call.input(1)?.to_vec());
            backend.sgd_step(&opt, &mut w, &mut vel, call.input(2)?)?;
            vec![w, vel]
        }
    };
    Ok(outs)
}

/// Re-runs a recorded call and returns the digest of its outputs.
pub fn execute_digest(backend: &dyn Backend, call: &OpCall) -> Result<Digest> {
    let outs = execute(backend, call)?;
    let views: Vec<&[f32]> = outs.iter().map(Vec::as_slice).collect();
    Ok(outputs_digest(&views))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::CpuBackend;

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
        let digest = execute_digest(&CpuBackend, &call).unwrap();
        assert_eq!(digest, execute_digest(&CpuBackend, &back).unwrap());
        let mut bytes = call.to_bytes();
        bytes.pop();
        assert!(OpCall::from_bytes(&bytes).is_err());
        assert!(OpCall::from_bytes(b"nonsense").is_err());
    }
}
