//! Owns: layer normalisation over the last axis, forward and backward.
//!
//! Order, per row of `x` (length `d`): `mean = sum(x) / d`, `var = sum((x - mean) * (x - mean))
//! / d` (both canonical sums, no fma), `rstd = 1 / sqrt(var + eps)`,
//! `xhat = (x - mean) * rstd`, `y = xhat * gamma + beta`. The forward pass saves `mean` and
//! `rstd` per row; the backward pass recomputes `xhat` from them bit for bit.

use super::{column_sums, for_each_row, reduce_canonical, sum_canonical};
use crate::tensor::{OpError, OpResult, check_len, checked_elems};

fn check(op: &'static str, bufs: &[(&'static str, usize, usize)]) -> OpResult<()> {
    bufs.iter()
        .try_for_each(|&(name, got, want)| check_len(op, name, got, want))
}

/// Layer norm of `rows x cols` `x` with per-column `gamma` and `beta`. Writes `y` and, per
/// row, `mean` and `rstd` (needed by [`layer_norm_backward`]). `eps` must be finite and
/// positive.
#[allow(clippy::too_many_arguments)]
pub fn layer_norm_forward(
    y: &mut [f32],
    mean: &mut [f32],
    rstd: &mut [f32],
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    (rows, cols): (usize, usize),
    eps: f32,
) -> OpResult<()> {
    const OP: &str = "layer_norm_forward";
    let len = checked_elems(OP, &[rows, cols])?;
    check(
        OP,
        &[
            ("x", x.len(), len),
            ("y", y.len(), len),
            ("gamma", gamma.len(), cols),
        ],
    )?;
    check(
        OP,
        &[
            ("beta", beta.len(), cols),
            ("mean", mean.len(), rows),
            ("rstd", rstd.len(), rows),
        ],
    )?;
    if !(eps.is_finite() && eps > 0.0) {
        return Err(OpError::Parameter {
            op: OP,
            name: "eps",
            value: eps,
        });
    }
    let d = cols as f32;
    for (r, (m, s)) in mean.iter_mut().zip(rstd.iter_mut()).enumerate() {
        let row = &x[r * cols..(r + 1) * cols];
        let mu = sum_canonical(row) / d;
        let var = reduce_canonical(cols, |j| (row[j] - mu) * (row[j] - mu)) / d;
        *m = mu;
        *s = 1.0 / (var + eps).sqrt();
    }
    let (mean, rstd) = (&*mean, &*rstd);
    for_each_row(y, cols, |r, out| {
        let row = &x[r * cols..(r + 1) * cols];
        for (j, o) in out.iter_mut().enumerate() {
            let xhat = (row[j] - mean[r]) * rstd[r];
            *o = xhat * gamma[j] + beta[j];
        }
    });
    Ok(())
}

/// Gradients of [`layer_norm_forward`]. Per row, with `g = dy * gamma`:
/// `a = sum(g) / d`, `b = sum(g * xhat) / d` (canonical), `dx = ((g - a) - xhat * b) * rstd`.
/// `dgamma[c] = sum_r dy * xhat` and `dbeta[c] = sum_r dy`, each summed sequentially over rows
/// from `+0.0`.
#[allow(clippy::too_many_arguments)]
pub fn layer_norm_backward(
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
    dy: &[f32],
    x: &[f32],
    gamma: &[f32],
    (mean, rstd): (&[f32], &[f32]),
    (rows, cols): (usize, usize),
) -> OpResult<()> {
    const OP: &str = "layer_norm_backward";
    let len = checked_elems(OP, &[rows, cols])?;
    check(
        OP,
        &[
            ("dx", dx.len(), len),
            ("dy", dy.len(), len),
            ("x", x.len(), len),
        ],
    )?;
    check(
        OP,
        &[
            ("gamma", gamma.len(), cols),
            ("dgamma", dgamma.len(), cols),
            ("dbeta", dbeta.len(), cols),
        ],
    )?;
    check(
        OP,
        &[("mean", mean.len(), rows), ("rstd", rstd.len(), rows)],
    )?;
    let d = cols as f32;
    let xhat = |r: usize, j: usize| (x[r * cols + j] - mean[r]) * rstd[r];
    for_each_row(dx, cols, |r, out| {
        let g = |j: usize| dy[r * cols + j] * gamma[j];
        let a = reduce_canonical(cols, g) / d;
        let b = reduce_canonical(cols, |j| g(j) * xhat(r, j)) / d;
        for (j, o) in out.iter_mut().enumerate() {
            *o = ((g(j) - a) - xhat(r, j) * b) * rstd[r];
        }
    });
    column_sums(dgamma, rows, |r, j| dy[r * cols + j] * xhat(r, j));
    column_sums(dbeta, rows, |r, j| dy[r * cols + j]);
    Ok(())
}
