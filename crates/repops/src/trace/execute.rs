//! Owns: [`execute`], the re-execution of one recorded [`OpCall`] on a backend, and
//! [`execute_digest`], its per-output digests.
//!
//! Invariant: [`execute`] runs exactly the backend method [`crate::exec::Exec`] ran for the
//! call, with the same arguments, so its outputs are the traced outputs bit for bit.

use super::call::{OpCall, bad};
use super::tensor_digest;
use crate::backend::Backend;
use crate::commit::Digest;
use crate::gemm::Dims;
use crate::kernels::{self, AttnDims};
use crate::meter::OpKind;
use crate::optim::{AdamW, Sgd};
use crate::train::Result;

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
///
/// `step_state` is not an operator but a hash of the whole state, which needs the tensor
/// names and shapes of the job: it is refused here; [`super::Layout::execute`] runs it.
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
        OpKind::StepState => {
            return Err(bad(
                "step_state is hashed with its layout (Layout::execute)",
            ));
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

/// Re-runs a recorded call and returns the [`tensor_digest`] of each output, in output
/// order: what [`super::TraceEntry::outputs`] records for the call.
pub fn execute_digest(backend: &dyn Backend, call: &OpCall) -> Result<Vec<Digest>> {
    let outs = execute(backend, call)?;
    Ok(outs.iter().map(|o| tensor_digest(o)).collect())
}
