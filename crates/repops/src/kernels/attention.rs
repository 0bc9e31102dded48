//! Owns: causal multi-head self-attention, forward and backward, and the head split/merge.
//!
//! Layout: `q`, `k`, `v` and the output are `[bh, t, dh]` (batch x heads outermost, then
//! positions, then the head dimension); probabilities are `[bh, t, t]`.
//!
//! Order, per head: `S = Q * K^T` (canonical GEMM); for row `i` and `j <= i`,
//! `s_ij = S_ij * scale` with `scale = 1 / sqrt(dh)`; `P_i` is the softmax of `s_i0..s_ii`
//! (sequential max, `libm::expf`, canonical sum, division) and `P_ij = +0.0` for `j > i`;
//! `O = P * V`. Backward: `dP = dO * V^T`, `dV = P^T * dO`, `r_i` = canonical sum over
//! `j <= i` of `dP_ij * P_ij`, `dS_ij = (P_ij * (dP_ij - r_i)) * scale` (`+0.0` for `j > i`),
//! `dQ = dS * K`, `dK = dS^T * Q`. Heads run in parallel; each GEMM inside a head then runs on
//! one thread (the result is the same either way).

use rayon::prelude::*;

use super::reduce_canonical;
use crate::gemm::{Accumulate, Dims, GemmConfig, Trans, gemm_with};
use crate::tensor::{OpError, OpResult, check_len, checked_elems};

/// Attention dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttnDims {
    /// Batch size times number of heads.
    pub bh: usize,
    /// Sequence length.
    pub t: usize,
    /// Head dimension.
    pub dh: usize,
}

impl AttnDims {
    fn lens(self, op: &'static str) -> OpResult<(usize, usize)> {
        if self.dh == 0 && self.bh > 0 && self.t > 0 {
            return Err(OpError::Shape {
                op,
                detail: "head dimension 0 has no scale".into(),
            });
        }
        Ok((
            checked_elems(op, &[self.bh, self.t, self.dh])?,
            checked_elems(op, &[self.bh, self.t, self.t])?,
        ))
    }

    fn scale(self) -> f32 {
        1.0 / (self.dh as f32).sqrt()
    }
}

/// One GEMM per head call: single-threaded when heads already run in parallel.
fn head_cfg(bh: usize) -> GemmConfig {
    let global = GemmConfig::global();
    if bh > 1 {
        GemmConfig {
            max_tasks: 1,
            ..global
        }
    } else {
        global
    }
}

/// Causal attention: writes `out = softmax(mask(Q K^T * scale)) V` and the probabilities
/// `probs` (kept for the backward pass).
pub fn attention_forward(
    out: &mut [f32],
    probs: &mut [f32],
    (q, k, v): (&[f32], &[f32], &[f32]),
    dims: AttnDims,
) -> OpResult<()> {
    const OP: &str = "attention_forward";
    let (len, plen) = dims.lens(OP)?;
    for (name, got) in [
        ("q", q.len()),
        ("k", k.len()),
        ("v", v.len()),
        ("out", out.len()),
    ] {
        check_len(OP, name, got, len)?;
    }
    check_len(OP, "probs", probs.len(), plen)?;
    let AttnDims { bh, t, dh } = dims;
    if bh == 0 || t == 0 {
        return Ok(());
    }
    let (cfg, scale) = (head_cfg(bh), dims.scale());
    out.par_chunks_mut(t * dh)
        .zip(probs.par_chunks_mut(t * t))
        .enumerate()
        .try_for_each(|(h, (o, p))| -> OpResult<()> {
            let hs = h * t * dh..(h + 1) * t * dh;
            let (qh, kh, vh) = (&q[hs.clone()], &k[hs.clone()], &v[hs]);
            let nn = Trans::No;
            gemm_with(
                &cfg,
                p,
                qh,
                nn,
                kh,
                Trans::Yes,
                Dims::new(t, dh, t),
                Accumulate::Overwrite,
            )?;
            for (i, row) in p.chunks_exact_mut(t).enumerate() {
                causal_softmax_row(row, i, scale);
            }
            gemm_with(
                &cfg,
                o,
                p,
                nn,
                vh,
                nn,
                Dims::new(t, t, dh),
                Accumulate::Overwrite,
            )
        })
}

/// Row `i` of the scores in place: scale, softmax over `0..=i`, zeros after.
fn causal_softmax_row(row: &mut [f32], i: usize, scale: f32) {
    let (live, masked) = row.split_at_mut(i + 1);
    let mut max = f32::NEG_INFINITY;
    for s in live.iter_mut() {
        *s *= scale;
        max = max.max(*s);
    }
    for s in live.iter_mut() {
        *s = libm::expf(*s - max);
    }
    let sum = reduce_canonical(live.len(), |j| live[j]);
    for s in live.iter_mut() {
        *s /= sum;
    }
    masked.fill(0.0);
}

/// Gradients of [`attention_forward`] given `dout` and the saved `probs`.
pub fn attention_backward(
    (dq, dk, dv): (&mut [f32], &mut [f32], &mut [f32]),
    dout: &[f32],
    (q, k, v): (&[f32], &[f32], &[f32]),
    probs: &[f32],
    dims: AttnDims,
) -> OpResult<()> {
    const OP: &str = "attention_backward";
    let (len, plen) = dims.lens(OP)?;
    for (name, got) in [
        ("q", q.len()),
        ("k", k.len()),
        ("v", v.len()),
        ("dout", dout.len()),
    ] {
        check_len(OP, name, got, len)?;
    }
    for (name, got) in [("dq", dq.len()), ("dk", dk.len()), ("dv", dv.len())] {
        check_len(OP, name, got, len)?;
    }
    check_len(OP, "probs", probs.len(), plen)?;
    let AttnDims { bh, t, dh } = dims;
    if bh == 0 || t == 0 {
        return Ok(());
    }
    let (cfg, scale) = (head_cfg(bh), dims.scale());
    let (nn, tt, over) = (Trans::No, Trans::Yes, Accumulate::Overwrite);
    let heads = dq
        .par_chunks_mut(t * dh)
        .zip(dk.par_chunks_mut(t * dh))
        .zip(dv.par_chunks_mut(t * dh));
    heads.enumerate().try_for_each_init(
        || vec![0.0f32; t * t],
        |ds, (h, ((dqh, dkh), dvh))| -> OpResult<()> {
            let hs = h * t * dh..(h + 1) * t * dh;
            let (qh, kh, vh, doh) = (&q[hs.clone()], &k[hs.clone()], &v[hs.clone()], &dout[hs]);
            let p = &probs[h * t * t..(h + 1) * t * t];
            gemm_with(&cfg, ds, doh, nn, vh, tt, Dims::new(t, dh, t), over)?;
            gemm_with(&cfg, dvh, p, tt, doh, nn, Dims::new(t, t, dh), over)?;
            for (i, (row, prow)) in ds.chunks_exact_mut(t).zip(p.chunks_exact(t)).enumerate() {
                let r = reduce_canonical(i + 1, |j| row[j] * prow[j]);
                for j in 0..t {
                    row[j] = if j <= i {
                        (prow[j] * (row[j] - r)) * scale
                    } else {
                        0.0
                    };
                }
            }
            gemm_with(&cfg, dqh, ds, nn, kh, nn, Dims::new(t, t, dh), over)?;
            gemm_with(&cfg, dkh, ds, tt, qh, nn, Dims::new(t, t, dh), over)
        },
    )
}

fn check_heads(
    op: &'static str,
    (b, t, heads, dh): (usize, usize, usize, usize),
    lens: [usize; 2],
) -> OpResult<()> {
    let want = checked_elems(op, &[b, t, heads, dh])?;
    if heads == 0 && want > 0 {
        return Err(OpError::Shape {
            op,
            detail: "zero heads".into(),
        });
    }
    check_len(op, "input", lens[0], want)?;
    check_len(op, "output", lens[1], want)
}

/// `[b, t, heads * dh]` (a projection's output) to `[b * heads, t, dh]`.
pub fn split_heads(
    out: &mut [f32],
    x: &[f32],
    (b, t, heads, dh): (usize, usize, usize, usize),
) -> OpResult<()> {
    check_heads("split_heads", (b, t, heads, dh), [x.len(), out.len()])?;
    for bi in 0..b {
        for ti in 0..t {
            for h in 0..heads {
                let src = ((bi * t + ti) * heads + h) * dh;
                let dst = ((bi * heads + h) * t + ti) * dh;
                out[dst..dst + dh].copy_from_slice(&x[src..src + dh]);
            }
        }
    }
    Ok(())
}

/// `[b * heads, t, dh]` back to `[b, t, heads * dh]` (the inverse of [`split_heads`]).
pub fn merge_heads(
    out: &mut [f32],
    x: &[f32],
    (b, t, heads, dh): (usize, usize, usize, usize),
) -> OpResult<()> {
    check_heads("merge_heads", (b, t, heads, dh), [x.len(), out.len()])?;
    for bi in 0..b {
        for ti in 0..t {
            for h in 0..heads {
                let dst = ((bi * t + ti) * heads + h) * dh;
                let src = ((bi * heads + h) * t + ti) * dh;
                out[dst..dst + dh].copy_from_slice(&x[src..src + dh]);
            }
        }
    }
    Ok(())
}
