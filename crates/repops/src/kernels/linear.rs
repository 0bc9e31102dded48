//! Owns: the linear layer and matrix-product gradients, as calls of the canonical GEMM.
//!
//! Layout: `x` is `m x k` (a batch of `m` rows), the weight `w` is `k x n` (inputs x outputs),
//! `y` is `m x n`. With a bias, each output's fma chain starts at `b[j]` instead of `+0.0`
//! (`y` is filled with the bias, then the GEMM accumulates), which is both exact to specify
//! and one pass cheaper than adding the bias afterwards.

use super::bias_grad;
use crate::gemm::{Accumulate, Dims, Trans, gemm};
use crate::tensor::{OpResult, check_len, checked_elems};

/// `y = x * w (+ b)`.
pub fn linear_forward(
    y: &mut [f32],
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    dims: Dims,
) -> OpResult<()> {
    const OP: &str = "linear_forward";
    check_len(OP, "y", y.len(), checked_elems(OP, &[dims.m, dims.n])?)?;
    let acc = match b {
        Some(b) => {
            check_len(OP, "b", b.len(), dims.n)?;
            if dims.n > 0 {
                y.chunks_exact_mut(dims.n)
                    .for_each(|row| row.copy_from_slice(b));
            }
            Accumulate::Add
        }
        None => Accumulate::Overwrite,
    };
    gemm(y, x, Trans::No, w, Trans::No, dims, acc)
}

/// Gradients of [`linear_forward`]: `dx = dy * w^T` (`m x k`), `dw = x^T * dy` (`k x n`),
/// `db` = column sums of `dy` (sequential over rows). Pass `None` for gradients not needed.
pub fn linear_backward(
    dx: Option<&mut [f32]>,
    dw: &mut [f32],
    db: Option<&mut [f32]>,
    (x, w, dy): (&[f32], &[f32], &[f32]),
    dims: Dims,
) -> OpResult<()> {
    let Dims { m, k, n } = dims;
    if let Some(dx) = dx {
        gemm(
            dx,
            dy,
            Trans::No,
            w,
            Trans::Yes,
            Dims::new(m, n, k),
            Accumulate::Overwrite,
        )?;
    }
    gemm(
        dw,
        x,
        Trans::Yes,
        dy,
        Trans::No,
        Dims::new(k, m, n),
        Accumulate::Overwrite,
    )?;
    if let Some(db) = db {
        bias_grad(db, dy, m, n)?;
    }
    Ok(())
}

/// Gradients of `c = a * b` (`a` is `m x k`, `b` is `k x n`): `da = dc * b^T`,
/// `db = a^T * dc`.
pub fn matmul_backward(
    da: &mut [f32],
    db: &mut [f32],
    a: &[f32],
    b: &[f32],
    dc: &[f32],
    dims: Dims,
) -> OpResult<()> {
    let Dims { m, k, n } = dims;
    gemm(
        da,
        dc,
        Trans::No,
        b,
        Trans::Yes,
        Dims::new(m, n, k),
        Accumulate::Overwrite,
    )?;
    gemm(
        db,
        a,
        Trans::Yes,
        dc,
        Trans::No,
        Dims::new(k, m, n),
        Accumulate::Overwrite,
    )
}
