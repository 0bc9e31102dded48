//! Owns: softmax and log-softmax over rows, and the fused cross-entropy loss and gradient.
//!
//! Order, per row of `x` (length `n`): `max` is a sequential `f32::max` from `-inf` (exact in any
//! order); `e_j = libm::expf(x_j - max)`; `s` is the canonical sum of the `e_j`; softmax is
//! `e_j / s`, log-softmax `(x_j - max) - libm::logf(s)`. Gradients use canonical sums too.

use rayon::prelude::*;

use super::{PAR_MIN_ELEMS, for_each_row, reduce_canonical, sum_canonical};
use crate::tensor::{OpError, OpResult, check_len, checked_elems};

fn row_max(x: &[f32]) -> f32 {
    x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v))
}

fn check_rows(
    op: &'static str,
    bufs: &[(&'static str, usize)],
    rows: usize,
    cols: usize,
) -> OpResult<()> {
    let len = checked_elems(op, &[rows, cols])?;
    bufs.iter()
        .try_for_each(|&(name, got)| check_len(op, name, got, len))
}

/// `y = softmax(x)` over each `cols`-long row.
pub fn softmax_forward(y: &mut [f32], x: &[f32], rows: usize, cols: usize) -> OpResult<()> {
    check_rows(
        "softmax_forward",
        &[("x", x.len()), ("y", y.len())],
        rows,
        cols,
    )?;
    for_each_row(y, cols, |r, out| {
        let row = &x[r * cols..(r + 1) * cols];
        let max = row_max(row);
        for (o, &v) in out.iter_mut().zip(row) {
            *o = libm::expf(v - max);
        }
        let s = sum_canonical(out);
        for o in out.iter_mut() {
            *o /= s;
        }
    });
    Ok(())
}

/// `dx_j = y_j * (dy_j - d)` with `d` the canonical sum of `dy_j * y_j`, per row (`y` is the
/// forward output).
pub fn softmax_backward(
    dx: &mut [f32],
    dy: &[f32],
    y: &[f32],
    rows: usize,
    cols: usize,
) -> OpResult<()> {
    check_rows(
        "softmax_backward",
        &[("dx", dx.len()), ("dy", dy.len()), ("y", y.len())],
        rows,
        cols,
    )?;
    for_each_row(dx, cols, |r, out| {
        let (g, p) = (&dy[r * cols..(r + 1) * cols], &y[r * cols..(r + 1) * cols]);
        let d = reduce_canonical(cols, |j| g[j] * p[j]);
        for ((o, &gj), &pj) in out.iter_mut().zip(g).zip(p) {
            *o = pj * (gj - d);
        }
    });
    Ok(())
}

/// `y = log_softmax(x)` over each `cols`-long row.
pub fn log_softmax_forward(y: &mut [f32], x: &[f32], rows: usize, cols: usize) -> OpResult<()> {
    check_rows(
        "log_softmax_forward",
        &[("x", x.len()), ("y", y.len())],
        rows,
        cols,
    )?;
    for_each_row(y, cols, |r, out| {
        let row = &x[r * cols..(r + 1) * cols];
        let max = row_max(row);
        let log_s = libm::logf(reduce_canonical(cols, |j| libm::expf(row[j] - max)));
        for (o, &v) in out.iter_mut().zip(row) {
            *o = (v - max) - log_s;
        }
    });
    Ok(())
}

/// `dx_j = dy_j - expf(y_j) * s` with `s` the canonical sum of `dy` over the row (`y` is the
/// forward output).
pub fn log_softmax_backward(
    dx: &mut [f32],
    dy: &[f32],
    y: &[f32],
    rows: usize,
    cols: usize,
) -> OpResult<()> {
    check_rows(
        "log_softmax_backward",
        &[("dx", dx.len()), ("dy", dy.len()), ("y", y.len())],
        rows,
        cols,
    )?;
    for_each_row(dx, cols, |r, out| {
        let (g, lp) = (&dy[r * cols..(r + 1) * cols], &y[r * cols..(r + 1) * cols]);
        let s = sum_canonical(g);
        for ((o, &gj), &yj) in out.iter_mut().zip(g).zip(lp) {
            *o = gj - libm::expf(yj) * s;
        }
    });
    Ok(())
}

fn check_targets(op: &'static str, targets: &[u32], rows: usize, classes: usize) -> OpResult<()> {
    check_len(op, "targets", targets.len(), rows)?;
    match targets.iter().position(|&t| t as usize >= classes) {
        Some(position) => Err(OpError::Index {
            op,
            position,
            index: targets[position] as usize,
            bound: classes,
        }),
        None => Ok(()),
    }
}

/// Row `r`'s loss `-(log_softmax(x)[t])` = `logf(s) - (x_t - max)`.
fn row_loss(row: &[f32], target: usize) -> (f32, f32, f32) {
    let max = row_max(row);
    let s = reduce_canonical(row.len(), |j| libm::expf(row[j] - max));
    (libm::logf(s) - (row[target] - max), max, s)
}

/// The mean cross-entropy of `rows x classes` logits against integer targets, fused with its
/// gradient: returns `L = canonical_sum(loss_r) / rows` and writes
/// `dlogits[r][j] = (expf(x_j - max) / s - [j == t_r]) / rows`.
///
/// Allocates one `f32` per row for the per-row losses, summed canonically after the
/// (row-parallel) pass.
pub fn cross_entropy(
    dlogits: &mut [f32],
    logits: &[f32],
    targets: &[u32],
    rows: usize,
    classes: usize,
) -> OpResult<f32> {
    const OP: &str = "cross_entropy";
    check_rows(
        OP,
        &[("logits", logits.len()), ("dlogits", dlogits.len())],
        rows,
        classes,
    )?;
    check_targets(OP, targets, rows, classes)?;
    if rows == 0 {
        return Ok(0.0);
    }
    let n = rows as f32;
    let mut losses = vec![0.0f32; rows];
    let work = |(r, (out, loss)): (usize, (&mut [f32], &mut f32))| {
        let row = &logits[r * classes..(r + 1) * classes];
        let t = targets[r] as usize;
        let (value, max, s) = row_loss(row, t);
        *loss = value;
        for (j, (o, &v)) in out.iter_mut().zip(row).enumerate() {
            let p = libm::expf(v - max) / s;
            *o = (if j == t { p - 1.0 } else { p }) / n;
        }
    };
    // Rows are independent; `classes > 0` here because every target is below it.
    if dlogits.len() < PAR_MIN_ELEMS {
        dlogits
            .chunks_mut(classes)
            .zip(losses.iter_mut())
            .enumerate()
            .for_each(work);
    } else {
        dlogits
            .par_chunks_mut(classes)
            .zip(losses.par_iter_mut())
            .enumerate()
            .for_each(work);
    }
    Ok(sum_canonical(&losses) / n)
}

/// The mean cross-entropy alone (same bits as the value [`cross_entropy`] returns).
pub fn cross_entropy_loss(
    logits: &[f32],
    targets: &[u32],
    rows: usize,
    classes: usize,
) -> OpResult<f32> {
    const OP: &str = "cross_entropy_loss";
    check_rows(OP, &[("logits", logits.len())], rows, classes)?;
    check_targets(OP, targets, rows, classes)?;
    if rows == 0 {
        return Ok(0.0);
    }
    let losses: Vec<f32> = (0..rows)
        .map(|r| row_loss(&logits[r * classes..(r + 1) * classes], targets[r] as usize).0)
        .collect();
    Ok(sum_canonical(&losses) / rows as f32)
}
